import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadDataset, loadDatasetForTraining, LoadSpec } from '../../src/core/data/dataset';
import { UserError } from '../../src/core/errors';

function tmpCsv(content: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-data-labels-'));
  const p = path.join(dir, 'd.csv');
  fs.writeFileSync(p, content);
  return p;
}
function csvWithLabels(labels: string[]): string {
  return tmpCsv(['y,g,a', ...labels.map((l, i) => `${l},${i % 2 ? 'u' : 'v'},${i}`)].join('\n'));
}
const spec = (file: string, extra: Partial<LoadSpec> = {}): LoadSpec => ({
  csvPath: file,
  label: 'y',
  groups: ['g'],
  seed: 1,
  ...extra,
});
const isUserError =
  (re: RegExp, extra: (e: UserError) => boolean = () => true) =>
  (e: unknown) =>
    e instanceof UserError && re.test(e.message) && extra(e);

test('one sigmoid output: two classes; text labels map in sorted order, index 1 positive', async () => {
  const labels = ['Yes', 'No', 'No', 'Yes', 'Yes', 'No'];
  const d = await loadDataset(spec(csvWithLabels(labels)), { inputShape: [1], outputUnits: 1 });
  assert.equal(d.numClasses, 2);
  assert.deepEqual(d.record.label, { column: 'y', classes: ['No', 'Yes'], order: 'sorted' });
  assert.deepEqual(
    [...d.labels],
    labels.map((l) => (l === 'Yes' ? 1 : 0)),
  );
});

test('integer labels 0..K-1 are output indices (also written 1.0 by pandas); K outputs = K classes', async () => {
  const labels = ['2', '0', '1.0', '2', '0', '1'];
  const d = await loadDataset(spec(csvWithLabels(labels)), { inputShape: [1], outputUnits: 3 });
  assert.equal(d.numClasses, 3);
  assert.deepEqual(d.record.label, { column: 'y', classes: ['0', '1', '2'], order: 'integer' });
  assert.deepEqual([...d.labels], [2, 0, 1, 2, 0, 1]);
  // an integer label outside 0..K-1 names value and row
  await assert.rejects(
    loadDataset(spec(csvWithLabels(['0', '1', '2', '1'])), { inputShape: [1], outputUnits: 1 }),
    isUserError(
      /the label '2' is not one of the model's classes \(0: 0, 1: 1\)/,
      (e) => e.row === 3 && e.field === 'y',
    ),
  );
  // labels coded 1/2 for a binary model: the fix names --classes
  await assert.rejects(
    loadDataset(spec(csvWithLabels(['1', '2', '1', '2'])), { inputShape: [1], outputUnits: 1 }),
    isUserError(/label '2'.*--classes/),
  );
});

test('--classes gives the order; an unknown label is an error naming the value and the row', async () => {
  const labels = ['low', 'high', 'mid', 'low'];
  const d = await loadDataset(spec(csvWithLabels(labels), { classes: ['low', 'mid', 'high'] }), {
    inputShape: [1],
    outputUnits: 3,
  });
  assert.deepEqual(d.record.label, { column: 'y', classes: ['low', 'mid', 'high'], order: 'given' });
  assert.deepEqual([...d.labels], [0, 2, 1, 0]);
  await assert.rejects(
    loadDataset(spec(csvWithLabels([...labels, 'huge']), { classes: ['low', 'mid', 'high'] }), {
      inputShape: [1],
      outputUnits: 3,
    }),
    isUserError(/the label 'huge' is not one of the model's classes/, (e) => e.row === 5),
  );
  // --classes with a count that does not fit the model
  await assert.rejects(
    loadDataset(spec(csvWithLabels(labels), { classes: ['low', 'mid', 'high'] }), { inputShape: [1], outputUnits: 1 }),
    isUserError(/--classes names 3 classes, but the model has 2/),
  );
});

test('text labels whose count does not fit the model are errors naming the values', async () => {
  await assert.rejects(
    loadDataset(spec(csvWithLabels(['a', 'b', 'c', 'a'])), { inputShape: [1], outputUnits: 1 }),
    isUserError(
      /has 3 distinct values, 'a' \(first at row 1\), 'b' \(first at row 2\), 'c' \(first at row 3\), but the model has 2 classes/,
    ),
  );
  await assert.rejects(
    loadDataset(spec(csvWithLabels(['a', 'a', 'a', 'a'])), { inputShape: [1], outputUnits: 3 }),
    isUserError(/has 1 distinct values.*--classes/),
  );
});

test('training decides the classes from the data', async () => {
  const t = await loadDatasetForTraining(
    spec(csvWithLabels(['cat', 'dog', 'bird', 'cat', 'dog', 'bird', 'cat', 'dog', 'bird', 'cat'])),
  );
  assert.deepEqual(t.dataset.record.label.classes, ['bird', 'cat', 'dog']);
  assert.equal(t.dataset.numClasses, 3);
  assert.deepEqual(t.preprocessing.label, t.dataset.record.label);
  const i = await loadDatasetForTraining(spec(csvWithLabels(['0', '3', '1', '2', '0', '1', '2', '3'])));
  assert.deepEqual(i.dataset.record.label, { column: 'y', classes: ['0', '1', '2', '3'], order: 'integer' });
});
