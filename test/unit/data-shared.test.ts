import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { loadDataset, loadDatasetForTraining } from '../../src/core/data/dataset';

function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'fair-prune') return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('repository root not found');
    dir = up;
  }
}
const shared = path.resolve(repoRoot(), '..', 'shared');
const dataDir = path.join(shared, 'data');

/** Independent reading of these R exports: no field holds a comma or a line break. */
function naiveRead(file: string): { header: string[]; rows: string[][] } {
  const lines = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0);
  const cells = lines.map((l) => l.split(',').map((c) => c.replace(/^"|"$/g, '')));
  return { header: cells[0], rows: cells.slice(1) };
}

test('arrests.csv (R write.csv): label released, group colour', async (t) => {
  const file = path.join(dataDir, 'arrests.csv');
  if (!fs.existsSync(file)) return t.skip(`${file} is absent`);
  const { header, rows } = naiveRead(file);
  const d = await loadDataset(
    { csvPath: file, label: 'released', groups: ['colour'], ignore: ['sex', 'employed', 'citizen'], seed: 1 },
    { inputShape: [3], outputUnits: 1 },
  );
  assert.equal(d.record.rows, rows.length);
  assert.equal(d.record.rows, 5226);
  assert.deepEqual(d.record.label.classes, ['No', 'Yes']);
  assert.deepEqual(d.record.features, ['year', 'age', 'checks']);
  const col = (name: string) => header.indexOf(name);
  rows.forEach((r, i) => {
    assert.equal(d.labels[i], r[col('released')] === 'Yes' ? 1 : 0);
    assert.equal(d.groupNames[d.groupIds[i]], `colour=${r[col('colour')]}`);
    assert.equal(d.x[i * 3], Number(r[col('year')]));
    assert.equal(d.x[i * 3 + 1], Number(r[col('age')]));
    assert.equal(d.x[i * 3 + 2], Number(r[col('checks')]));
  });
  const total = (name: string) => rows.filter((r) => r[col('colour')] === name).length;
  for (const g of d.record.groups) {
    const n = total(g.values.colour);
    assert.equal(g.counts.train + g.counts.validation + g.counts.test, n);
    assert.ok(Math.abs(g.counts.test - 0.2 * n) <= 2, `${g.name} test ${g.counts.test} of ${n}`);
  }
  assert.deepEqual(d.record.split.counts, { train: 3658, validation: 523, test: 1045 });
  assert.deepEqual(d.record.warnings, []);
});

test('resume-names.csv: label call, intersectional groups ethnicity × gender, trained preprocessing', async (t) => {
  const file = path.join(dataDir, 'resume-names.csv');
  if (!fs.existsSync(file)) return t.skip(`${file} is absent`);
  const { header, rows } = naiveRead(file);
  const { dataset: d, preprocessing } = await loadDatasetForTraining({
    csvPath: file,
    label: 'call',
    groups: ['ethnicity', 'gender'],
    seed: 3,
  });
  assert.equal(d.record.rows, 4870);
  assert.deepEqual(d.record.label.classes, ['no', 'yes']);
  const call = header.indexOf('call');
  assert.equal(
    d.labels.reduce((a, b) => a + b, 0),
    rows.filter((r) => r[call] === 'yes').length,
  );
  assert.equal(
    d.labels.reduce((a, b) => a + b, 0),
    392,
  );
  const eth = header.indexOf('ethnicity');
  const gen = header.indexOf('gender');
  for (const g of d.record.groups) {
    const n = rows.filter((r) => r[eth] === g.values.ethnicity && r[gen] === g.values.gender).length;
    assert.equal(g.counts.train + g.counts.validation + g.counts.test, n, g.name);
  }
  assert.deepEqual(d.groupNames, [
    'ethnicity=afam & gender=female',
    'ethnicity=afam & gender=male',
    'ethnicity=cauc & gender=female',
    'ethnicity=cauc & gender=male',
  ]);
  // neither the label nor the subgroup columns are inputs
  const inputs = preprocessing.columns!.map((c) => c.column);
  for (const c of ['call', 'ethnicity', 'gender']) assert.ok(!inputs.includes(c));
  assert.equal(inputs.length, header.length - 3);
  assert.equal(d.sampleShape[0], preprocessing.outputFeatures!.length);
});
