import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadDataset, LoadSpec } from '../../src/core/data/dataset';
import { apportion } from '../../src/core/data/splits';
import { UserError } from '../../src/core/errors';

function tmpCsv(content: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-data-splits-'));
  const p = path.join(dir, 'd.csv');
  fs.writeFileSync(p, content);
  return p;
}
const isUserError =
  (re: RegExp, extra: (e: UserError) => boolean = () => true) =>
  (e: unknown) =>
    e instanceof UserError && re.test(e.message) && extra(e);
const model = { inputShape: [1], outputUnits: 1 };

/** n rows: group g from `groupOf`, label y from `labelOf`, feature a = row number. */
function makeCsv(
  n: number,
  groupOf: (i: number) => string,
  labelOf: (i: number) => number,
  splitOf?: (i: number) => string,
): string {
  const lines = [splitOf ? 'a,g,y,split' : 'a,g,y'];
  for (let i = 0; i < n; i++) lines.push(`${i + 1},${groupOf(i)},${labelOf(i)}${splitOf ? ',' + splitOf(i) : ''}`);
  return tmpCsv(lines.join('\n'));
}

test('split column: train / validation / val / valid / test in any case', async () => {
  const values = ['train', 'TRAIN', 'Validation', 'val', 'VALID', 'test', 'Test', ' test '];
  const file = tmpCsv(['a,g,y,split', ...values.map((v, i) => `${i},${i % 2 ? 'u' : 'v'},${i % 2},"${v}"`)].join('\n'));
  const d = await loadDataset({ csvPath: file, label: 'y', groups: ['g'], seed: 1 }, model);
  assert.deepEqual([...d.split], [0, 0, 1, 1, 1, 2, 2, 2]);
  assert.equal(d.record.split.source, 'column');
  assert.equal(d.record.split.column, 'split');
  assert.equal(d.record.split.assignment, 'ttvvvxxx');
  assert.deepEqual(d.record.split.counts, { train: 2, validation: 3, test: 3 });
  assert.deepEqual([...d.indices('validation')], [2, 3, 4]);
  assert.deepEqual([...d.indices('test')], [5, 6, 7]);
});

test('--split-column names another column; any other value is an error naming it and the row', async () => {
  const file = tmpCsv('a,g,y,part\n1,u,0,train\n2,v,1,test\n3,u,0,holdout\n4,v,1,test\n');
  await assert.rejects(
    loadDataset({ csvPath: file, label: 'y', groups: ['g'], seed: 1, splitColumn: 'part' }, model),
    isUserError(/split column 'part' has the value 'holdout'/, (e) => e.row === 3 && e.field === 'part'),
  );
  const ok = tmpCsv('a,g,y,part\n1,u,0,train\n2,v,1,test\n3,u,0,train\n4,v,1,test\n');
  const d = await loadDataset({ csvPath: ok, label: 'y', groups: ['g'], seed: 1, splitColumn: 'part' }, model);
  assert.deepEqual(d.record.features, ['a']); // the split column is not a feature
  // a split column without test rows
  const noTest = tmpCsv('a,g,y,split\n1,u,0,train\n2,v,1,train\n');
  await assert.rejects(
    loadDataset({ csvPath: noTest, label: 'y', groups: ['g'], seed: 1 }, model),
    isUserError(/no row is in the test split/),
  );
});

test('no validation rows in the split column: validation is drawn from train, seeded and stratified', async () => {
  const n = 400;
  const group = (i: number) => (i % 4 === 0 ? 'small' : 'big');
  const label = (i: number) => (i % 3 === 0 ? 1 : 0);
  const splitOf = (i: number) => (i % 5 === 0 ? 'test' : 'train');
  const file = makeCsv(n, group, label, splitOf);
  const spec: LoadSpec = { csvPath: file, label: 'y', groups: ['g'], seed: 7 };
  const d = await loadDataset(spec, model);
  assert.equal(d.record.split.validationDrawnFromTrain, true);
  // test rows are exactly the column's test rows; validation only from train rows
  for (let i = 0; i < n; i++) {
    if (splitOf(i) === 'test') assert.equal(d.split[i], 2);
    else assert.notEqual(d.split[i], 2);
  }
  const trainRows = n - n / 5; // 320
  const expectedVal = Math.round(trainRows * (0.1 / 0.8)); // 40
  assert.equal(d.record.split.counts.validation, expectedVal);
  // stratified: each group × label stratum of the train rows gives ~1/8 of its rows to validation
  const strata = new Map<string, { train: number; val: number }>();
  for (let i = 0; i < n; i++) {
    if (splitOf(i) === 'test') continue;
    const k = `${group(i)}|${label(i)}`;
    const s = strata.get(k) ?? { train: 0, val: 0 };
    s.train++;
    if (d.split[i] === 1) s.val++;
    strata.set(k, s);
  }
  for (const [k, s] of strata) assert.ok(Math.abs(s.val - s.train / 8) <= 1, `${k}: ${s.val} of ${s.train}`);
  // same seed, same draw; other seed, other draw
  const again = await loadDataset(spec, model);
  assert.equal(again.record.split.assignment, d.record.split.assignment);
  const other = await loadDataset({ ...spec, seed: 8 }, model);
  assert.notEqual(other.record.split.assignment, d.record.split.assignment);
});

test('no split column: seeded splits stratified by subgroup × label, exact overall fractions', async () => {
  const n = 1000;
  const group = (i: number) => ['a', 'b', 'c'][i % 3];
  const label = (i: number) => (i % 7 < 2 ? 1 : 0);
  const file = makeCsv(n, group, label);
  const spec: LoadSpec = { csvPath: file, label: 'y', groups: ['g'], seed: 42 };
  const d = await loadDataset(spec, model);
  assert.equal(d.record.split.source, 'seeded');
  assert.equal(d.record.split.seed, 42);
  assert.deepEqual(d.record.split.counts, { train: 700, validation: 100, test: 200 });
  assert.equal(d.record.split.assignment.length, n);
  const per = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    const k = `${group(i)}|${label(i)}`;
    const c = per.get(k) ?? [0, 0, 0];
    c[d.split[i]]++;
    per.set(k, c);
  }
  for (const [k, c] of per) {
    const size = c[0] + c[1] + c[2];
    assert.ok(Math.abs(c[2] - size * 0.2) <= 1, `${k} test ${c[2]} of ${size}`);
    assert.ok(Math.abs(c[1] - size * 0.1) <= 1, `${k} validation ${c[1]} of ${size}`);
  }
  const again = await loadDataset(spec, model);
  assert.equal(again.record.split.assignment, d.record.split.assignment);
  const other = await loadDataset({ ...spec, seed: 43 }, model);
  assert.notEqual(other.record.split.assignment, d.record.split.assignment);
  // other fractions
  const f = await loadDataset({ ...spec, splitFractions: { train: 0.5, validation: 0.25, test: 0.25 } }, model);
  assert.deepEqual(f.record.split.counts, { train: 500, validation: 250, test: 250 });
  await assert.rejects(
    loadDataset({ ...spec, splitFractions: { train: 0.5, validation: 0.1, test: 0.1 } }, model),
    isUserError(/add up to 1/),
  );
});

test('a later run reuses the recorded split; a split of another row count is an error', async () => {
  const file = makeCsv(
    60,
    (i) => (i % 2 ? 'u' : 'v'),
    (i) => (i % 3) % 2,
  );
  const first = await loadDataset({ csvPath: file, label: 'y', groups: ['g'], seed: 1 }, model);
  const reused = await loadDataset(
    { csvPath: file, label: 'y', groups: ['g'], seed: 999, reuseSplit: first.record.split.assignment },
    model,
  );
  assert.deepEqual([...reused.split], [...first.split]);
  assert.ok(reused.record.warnings.some((w) => /reused/.test(w)));
  await assert.rejects(
    loadDataset(
      { csvPath: file, label: 'y', groups: ['g'], seed: 1, reuseSplit: first.record.split.assignment.slice(1) },
      model,
    ),
    isUserError(/covers 59 rows, but this CSV has 60 data rows/),
  );
  await assert.rejects(
    loadDataset({ csvPath: file, label: 'y', groups: ['g'], seed: 1, reuseSplit: 'q'.repeat(60) }, model),
    isUserError(/'q' for row 1/),
  );
});

test('apportion: proportional, capped, sums to the total', () => {
  assert.deepEqual(apportion(10, [1, 1, 2], [100, 100, 100]), [3, 2, 5]);
  assert.deepEqual(apportion(5, [1, 1], [1, 10]), [1, 4]);
  assert.deepEqual(apportion(0, [3, 4], [3, 4]), [0, 0]);
  const caps = [3, 0, 7, 12];
  const a = apportion(15, caps, caps);
  assert.equal(
    a.reduce((x, y) => x + y, 0),
    15,
  );
  a.forEach((v, i) => assert.ok(v <= caps[i]));
});
