import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadDataset, loadDatasetForTraining, LoadSpec } from '../../src/core/data/dataset';
import { PREPROCESSING_FILE, preprocessingJson, readPreprocessingBeside } from '../../src/core/data/preprocessing';
import { writeFileAtomic } from '../../src/core/atomic';
import { UserError } from '../../src/core/errors';
import { Rng } from '../../src/core/rng';

const isUserError =
  (re: RegExp, extra: (e: UserError) => boolean = () => true) =>
  (e: unknown) =>
    e instanceof UserError && re.test(e.message) && extra(e);

interface Row {
  age: number;
  income: number;
  colour: string;
  g: string;
  y: string;
  split: string;
}

function makeRows(n: number, seed: number): Row[] {
  const rng = new Rng(seed);
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const split = i % 5 === 0 ? 'test' : i % 10 === 1 ? 'validation' : 'train';
    // 'purple' appears only in test rows: training never sees it
    const colour = split === 'test' && i % 15 === 0 ? 'purple' : ['red', 'green', 'blue'][rng.int(3)];
    rows.push({
      age: 18 + rng.int(60),
      income: Math.round(rng.normal() * 1000) / 10,
      colour,
      g: rng.next() < 0.5 ? 'F' : 'M',
      y: rng.next() < 0.4 ? 'pos' : 'neg',
      split,
    });
  }
  return rows;
}

function writeCsv(rows: Row[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-data-pre-'));
  const p = path.join(dir, 'd.csv');
  fs.writeFileSync(
    p,
    [
      'age,colour,income,g,y,split',
      ...rows.map((r) => `${r.age},"${r.colour}",${r.income},"${r.g}","${r.y}",${r.split}`),
    ].join('\n'),
  );
  return p;
}

test('training standardises numbers and one-hot encodes text, fitted on train rows only', async () => {
  const rows = makeRows(300, 11);
  const file = writeCsv(rows);
  const spec: LoadSpec = { csvPath: file, label: 'y', groups: ['g'], seed: 1 };
  const { dataset, preprocessing } = await loadDatasetForTraining(spec);
  const train = rows.filter((r) => r.split === 'train');
  const stats = (xs: number[]) => {
    const m = xs.reduce((a, b) => a + b, 0) / xs.length;
    return { mean: m, std: Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length) };
  };
  const age = stats(train.map((r) => r.age));
  const income = stats(train.map((r) => r.income));
  assert.equal(preprocessing.columns!.length, 3);
  const [a, c, inc] = preprocessing.columns!;
  assert.equal(a.kind, 'standardize');
  assert.equal(inc.kind, 'standardize');
  assert.equal(c.kind, 'onehot');
  if (a.kind === 'standardize' && inc.kind === 'standardize' && c.kind === 'onehot') {
    assert.ok(Math.abs(a.mean - age.mean) < 1e-9 && Math.abs(a.std - age.std) < 1e-9);
    assert.ok(Math.abs(inc.mean - income.mean) < 1e-9 && Math.abs(inc.std - income.std) < 1e-9);
    assert.deepEqual(c.categories, ['blue', 'green', 'red']); // sorted, train rows only: no 'purple'
  }
  assert.deepEqual(preprocessing.outputFeatures, ['age', 'colour=blue', 'colour=green', 'colour=red', 'income']);
  assert.deepEqual(dataset.record.features, preprocessing.outputFeatures);
  assert.deepEqual(dataset.sampleShape, [5]);
  rows.forEach((r, i) => {
    const expected = [
      (r.age - age.mean) / age.std,
      r.colour === 'blue' ? 1 : 0,
      r.colour === 'green' ? 1 : 0,
      r.colour === 'red' ? 1 : 0,
      (r.income - income.mean) / income.std,
    ];
    expected.forEach((v, j) => assert.ok(Math.abs(dataset.x[i * 5 + j] - v) < 1e-5, `row ${i + 1} input ${j}`));
  });
  const purple = rows.filter((r) => r.colour === 'purple');
  assert.ok(purple.length > 0);
  assert.ok(dataset.record.warnings.some((w) => w.includes("'purple'") && w.includes(`${purple.length} rows`)));
  assert.deepEqual(preprocessing.label, { column: 'y', classes: ['neg', 'pos'], order: 'sorted' });
});

test('the saved preprocessing is read beside the model and reused by later runs, label order included', async () => {
  const rows = makeRows(200, 12);
  const file = writeCsv(rows);
  const { dataset, preprocessing } = await loadDatasetForTraining({
    csvPath: file,
    label: 'y',
    groups: ['g'],
    seed: 1,
    classes: ['pos', 'neg'],
  });
  const modelDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-data-model-'));
  fs.writeFileSync(path.join(modelDir, 'model.json'), '{}');
  assert.equal(readPreprocessingBeside(path.join(modelDir, 'model.json')), undefined);
  writeFileAtomic(path.join(modelDir, PREPROCESSING_FILE), preprocessingJson(preprocessing));
  const pre = readPreprocessingBeside(path.join(modelDir, 'model.json'))!;
  assert.equal(pre.path, path.join(modelDir, PREPROCESSING_FILE));
  assert.deepEqual(pre.value, preprocessing);
  assert.deepEqual(readPreprocessingBeside(modelDir)!.value, preprocessing); // the folder works too
  // a later run without --classes: the saved order (pos first) is kept
  const later = await loadDataset(
    { csvPath: file, label: 'y', groups: ['g'], seed: 1 },
    { inputShape: [5], outputUnits: 1 },
    pre,
  );
  assert.deepEqual(later.record.label, { column: 'y', classes: ['pos', 'neg'], order: 'given' });
  assert.deepEqual(
    [...later.labels],
    rows.map((r) => (r.y === 'pos' ? 0 : 1)),
  );
  assert.deepEqual([...later.x], [...dataset.x]);
  assert.equal(later.record.preprocessing, pre.path);
  // a model whose input does not match the preprocessing: both counts named
  await assert.rejects(
    loadDataset({ csvPath: file, label: 'y', groups: ['g'], seed: 1 }, { inputShape: [4], outputUnits: 1 }, pre),
    isUserError(/gives 5 input values per sample, but the model takes 4/),
  );
  // conflicting --classes and --features
  await assert.rejects(
    loadDataset(
      { csvPath: file, label: 'y', groups: ['g'], seed: 1, classes: ['neg', 'pos'] },
      { inputShape: [5], outputUnits: 1 },
      pre,
    ),
    isUserError(/differs from the classes the model was trained with/),
  );
  await assert.rejects(
    loadDataset(
      { csvPath: file, label: 'y', groups: ['g'], seed: 1, features: ['income', 'age', 'colour'] },
      { inputShape: [5], outputUnits: 1 },
      pre,
    ),
    isUserError(/differs from the model's inputs/),
  );
  // a CSV without a column the model was trained on
  const other = path.join(path.dirname(file), 'other.csv');
  fs.writeFileSync(other, fs.readFileSync(file, 'utf8').replace('income', 'salary'));
  await assert.rejects(
    loadDataset({ csvPath: other, label: 'y', groups: ['g'], seed: 1 }, { inputShape: [5], outputUnits: 1 }, pre),
    isUserError(/trained on column 'income', which this CSV does not have/),
  );
});

test('a bad preprocessing file is a UserError naming the file and the field', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-data-badpre-'));
  const file = path.join(dir, PREPROCESSING_FILE);
  const good = {
    version: 1,
    label: { column: 'y', classes: ['a', 'b'], order: 'sorted' },
    groupColumns: ['g'],
    columns: [{ column: 'x', kind: 'standardize', mean: 1, std: 2 }],
    outputFeatures: ['x'],
    image: null,
  };
  fs.writeFileSync(file, JSON.stringify(good));
  assert.deepEqual(readPreprocessingBeside(dir)!.value, good);
  const bad = (value: unknown, re: RegExp, field?: string) => {
    fs.writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
    assert.throws(
      () => readPreprocessingBeside(dir),
      (e: unknown) =>
        e instanceof UserError && e.file === file && re.test(e.message) && (field === undefined || e.field === field),
    );
  };
  bad('{not json', /not valid JSON/);
  bad({ ...good, version: 2 }, /version 2/, 'version');
  bad(
    { ...good, columns: [{ column: 'x', kind: 'standardize', mean: 1, std: 0 }] },
    /positive number/,
    'columns[0].std',
  );
  bad({ ...good, columns: [{ column: 'x', kind: 'scale' }] }, /'standardize' or 'onehot'/, 'columns[0].kind');
  bad({ ...good, outputFeatures: ['z'] }, /input names/, 'outputFeatures');
  bad({ ...good, label: { column: 'y', classes: ['a'], order: 'sorted' } }, /at least two/, 'label.classes');
  bad({ ...good, image: { column: 'f', height: 2, width: 2, channels: 3, pixelScale: 255 } }, /exactly one/, 'columns');
});
