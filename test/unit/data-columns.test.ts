import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadDataset, LoadSpec } from '../../src/core/data/dataset';
import { UserError } from '../../src/core/errors';

function tmpCsv(content: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-data-cols-'));
  const p = path.join(dir, 'd.csv');
  fs.writeFileSync(p, content);
  return p;
}

// label y, group g, split column, a text column `note`, numeric a, b, c
const CSV = [
  'a,note,y,g,b,split,c',
  '1,"x",0,u,10,train,100',
  '2,"y",1,u,20,train,200',
  '3,"z",0,v,30,test,300',
  '4,"w",1,v,40,test,400',
].join('\n');

const base = (file: string): LoadSpec => ({ csvPath: file, label: 'y', groups: ['g'], seed: 3, ignore: ['note'] });
const isUserError =
  (re: RegExp, extra: (e: UserError) => boolean = () => true) =>
  (e: unknown) =>
    e instanceof UserError && re.test(e.message) && extra(e);

test('default features: every column but label, groups, split (and ignored), in file order; values exactly as in the CSV', async () => {
  const file = tmpCsv(CSV);
  const d = await loadDataset(base(file), { inputShape: [3], outputUnits: 1 });
  assert.deepEqual(d.record.features, ['a', 'b', 'c']);
  assert.deepEqual(d.sampleShape, [3]);
  assert.deepEqual([...d.x], [1, 10, 100, 2, 20, 200, 3, 30, 300, 4, 40, 400]);
  assert.deepEqual([...d.rowNumbers], [1, 2, 3, 4]);
  assert.equal(d.record.preprocessing, null);
});

test('--features picks the columns and their order', async () => {
  const file = tmpCsv(CSV);
  const d = await loadDataset(
    { ...base(file), ignore: undefined, features: ['c', 'a'] },
    { inputShape: [2], outputUnits: 1 },
  );
  assert.deepEqual(d.record.features, ['c', 'a']);
  assert.deepEqual([...d.x], [100, 1, 200, 2, 300, 3, 400, 4]);
});

test('a subgroup column is never silently a feature; naming it in --features is recorded', async () => {
  const csv = 'y,g,a\n0,1,5\n1,2,6\n0,1,7\n1,2,8\n';
  const file = tmpCsv(csv);
  const spec: LoadSpec = {
    csvPath: file,
    label: 'y',
    groups: ['g'],
    seed: 1,
    splitFractions: { train: 0.5, validation: 0, test: 0.5 },
  };
  const d = await loadDataset(spec, { inputShape: [1], outputUnits: 1 });
  assert.deepEqual(d.record.features, ['a']); // g is numeric, still not a feature
  const e = await loadDataset({ ...spec, features: ['a', 'g'] }, { inputShape: [2], outputUnits: 1 });
  assert.deepEqual(e.record.features, ['a', 'g']);
  assert.ok(e.record.warnings.some((w) => /Subgroup column 'g' is also a model input/.test(w)));
});

test('a text value in a feature column is an error naming column and row, suggesting --ignore', async () => {
  const file = tmpCsv(CSV);
  await assert.rejects(
    loadDataset(
      { ...base(file), ignore: undefined, features: ['a', 'note', 'c'] },
      { inputShape: [3], outputUnits: 1 },
    ),
    isUserError(/'note' has the text value 'x'.*--ignore note/, (e) => e.row === 1 && e.field === 'note'),
  );
  // a text value further down a mostly numeric column
  const f2 = tmpCsv('y,g,a\n0,u,1\n1,u,2\n0,v,three\n1,v,4\n');
  await assert.rejects(
    loadDataset({ csvPath: f2, label: 'y', groups: ['g'], seed: 1 }, { inputShape: [1], outputUnits: 1 }),
    isUserError(
      /'a' has the text value 'three'/,
      (e) => e.row === 3 && e.field === 'a' && /--ignore a/.test(e.message),
    ),
  );
});

test('a feature count that does not fit the model is an error naming both counts', async () => {
  const file = tmpCsv(CSV);
  await assert.rejects(
    loadDataset({ ...base(file), ignore: undefined }, { inputShape: [3], outputUnits: 1 }),
    isUserError(
      /takes 3 input values per sample, but 4 feature columns were selected: a, note, b, c \(text columns among them: note\)/,
    ),
  );
  await assert.rejects(
    loadDataset(base(file), { inputShape: [5], outputUnits: 1 }),
    isUserError(/takes 5 input values per sample, but 3 feature columns/),
  );
  // a multi-dimensional input takes prod(shape) columns, e.g. [1, 3]
  const d = await loadDataset(base(file), { inputShape: [1, 3], outputUnits: 1 });
  assert.deepEqual(d.sampleShape, [1, 3]);
});

test('unknown and contradictory column names are UserErrors naming the column', async () => {
  const file = tmpCsv(CSV);
  const cases: Array<[Partial<LoadSpec>, RegExp]> = [
    [{ label: 'Y' }, /no column 'Y' \(given as --label\)\. Its columns are: a, note, y, g, b, split, c/],
    [{ groups: ['gg'] }, /no column 'gg' \(given as --group\)/],
    [{ groups: ['y'] }, /both the label and a subgroup column/],
    [{ features: ['a', 'y'], ignore: undefined }, /--features names the label column 'y'/],
    [{ features: ['a', 'split'], ignore: undefined }, /--features names the split column/],
    [{ features: ['a', 'note'] }, /'note' is in both --features and --ignore/],
    [{ ignore: ['g'] }, /--ignore names 'g', which is a subgroup column/],
    [{ ignore: ['nope'] }, /no column 'nope' \(given as --ignore\)/],
    [{ groups: [] }, /no subgroup column/],
    [{ splitColumn: 'g' }, /both the split column and a subgroup column/],
  ];
  for (const [over, re] of cases) {
    await assert.rejects(
      loadDataset({ ...base(file), ...over }, { inputShape: [3], outputUnits: 1 }),
      isUserError(re),
      re.source,
    );
  }
});

test('missing values (empty or NA) in used columns are errors naming row and column; in unused columns they are fine', async () => {
  const rows = ['y,g,a,unused', '0,u,1,NA', '1,u,2,', '0,v,3,x', '1,v,4,y'];
  const ok = tmpCsv(rows.join('\n'));
  const spec = (file: string): LoadSpec => ({ csvPath: file, label: 'y', groups: ['g'], seed: 1, ignore: ['unused'] });
  await loadDataset(spec(ok), { inputShape: [1], outputUnits: 1 });
  const withMissing = (r: number, c: number, v: string) => {
    const copy = rows.map((l) => l.split(','));
    copy[r][c] = v;
    return tmpCsv(copy.map((l) => l.join(',')).join('\n'));
  };
  await assert.rejects(
    loadDataset(spec(withMissing(3, 2, 'NA')), { inputShape: [1], outputUnits: 1 }),
    isUserError(/feature column 'a' has a missing value/, (e) => e.row === 3 && e.field === 'a'),
  );
  await assert.rejects(
    loadDataset(spec(withMissing(2, 1, '')), { inputShape: [1], outputUnits: 1 }),
    isUserError(/subgroup column 'g' has a missing value/, (e) => e.row === 2 && e.field === 'g'),
  );
  await assert.rejects(
    loadDataset(spec(withMissing(4, 0, 'NA')), { inputShape: [1], outputUnits: 1 }),
    isUserError(/label column 'y' has a missing value/, (e) => e.row === 4 && e.field === 'y'),
  );
});
