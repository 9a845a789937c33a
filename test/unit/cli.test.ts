/** The `fairprune` command line as a user runs it: a real process, real files. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { SessionResults } from '../../src/protocol/results';
import { repoRoot, sharedDir, tempDir, useCpu } from '../helpers';

const cli = path.join(repoRoot, 'out', 'src', 'cli', 'main.js');

function fairprune(args: string[], cwd = repoRoot) {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('help documents every command and the data contract', () => {
  const main = fairprune(['help']);
  assert.equal(main.code, 0);
  assert.match(main.stdout, /fairprune run/);
  const run = fairprune(['run', '--help']);
  assert.equal(run.code, 0);
  for (const option of [
    '--model',
    '--data',
    '--label',
    '--group',
    '--features',
    '--ignore',
    '--split-column',
    '--image-column',
    '--classes',
    '--pixel-scale',
    '--sparsity',
    '--loss',
    '--method',
    '--epochs',
    '--backend',
    '--workers',
    '--out',
    '--reuse-split',
  ]) {
    assert.ok(run.stdout.includes(option), `run --help mentions ${option}`);
  }
  const data = fairprune(['help', 'data']);
  assert.equal(data.stdout.trim(), fs.readFileSync(path.join(repoRoot, 'docs', 'data-contract.md'), 'utf8').trim());
});

test('usage errors name the option and the fix, and exit non-zero', () => {
  const missing = fairprune(['run', '--model', 'm.json', '--data', 'd.csv', '--group', 'g']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^error: '--label': this option is required\. Fix: add --label COLUMN/m);
  const unknown = fairprune(['run', '--modle', 'x']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /--modle/);
  const badSparsity = fairprune([
    'run',
    '--model',
    'm',
    '--data',
    'd',
    '--label',
    'l',
    '--group',
    'g',
    '--sparsity',
    '0.5,1.2',
  ]);
  assert.match(badSparsity.stderr, /'1\.2' is not a sparsity.*--sparsity 0\.5,0\.8,0\.9/);
  const noFile = fairprune([
    'run',
    '--model',
    '/nonexistent/model.json',
    '--data',
    'd.csv',
    '--label',
    'l',
    '--group',
    'g',
    '--backend',
    'cpu',
  ]);
  assert.equal(noFile.code, 1);
  assert.match(noFile.stderr, /\/nonexistent\/model\.json: no such file/);
  const badWorkers = fairprune([
    'run',
    '--model',
    'm',
    '--data',
    'd',
    '--label',
    'l',
    '--group',
    'g',
    '--workers',
    '1.5',
  ]);
  assert.equal(badWorkers.code, 1);
  assert.match(badWorkers.stderr, /'--workers': '1\.5' is not a whole number/);
});

/**
 * A data set the project never trained on: train a baseline on it, prune it from the command line,
 * and recompute the dense model's per-group test accuracy from the raw CSV with the saved
 * preprocessing applied by this test's own code.
 */
test(
  'train and run on the Toronto arrests data: the numbers match an independent computation',
  { skip: !sharedDir && 'no ../shared' },
  async () => {
    const dir = tempDir();
    const csv = path.join(sharedDir!, 'data', 'arrests.csv');
    const modelDir = path.join(dir, 'model');
    const train = fairprune([
      'train',
      '--data',
      csv,
      '--label',
      'released',
      '--group',
      'colour',
      '--out',
      modelDir,
      '--epochs',
      '4',
      '--backend',
      'cpu',
      '--seed',
      '3',
    ]);
    assert.equal(train.code, 0, train.stderr);
    assert.match(train.stdout, /test accuracy \d+\.\d%; colour=Black/);
    const pre = JSON.parse(fs.readFileSync(path.join(modelDir, 'fairprune.preprocessing.json'), 'utf8'));

    const run = fairprune(
      [
        'run',
        '--model',
        path.join(modelDir, 'model.json'),
        '--data',
        csv,
        '--label',
        'released',
        '--group',
        'colour',
        '--sparsity',
        '0.8',
        '--loss',
        'ce,pw',
        '--epochs',
        '1',
        '--backend',
        'cpu',
        '--seed',
        '3',
        '--out',
        path.join(dir, 'fp'),
        '--bootstrap',
        '200',
      ],
      dir,
    );
    assert.equal(run.code, 0, run.stderr);
    // Which way it fine-tunes, and why not a heap step.
    assert.match(
      run.stderr,
      /^training path: tfjs's tape on cpu \(the heap training steps run on wasm; here cpu's own kernels run each layer\)$/m,
    );
    assert.match(run.stdout, /colour=Black/);
    assert.match(run.stdout, /At 80% sparsity, ce keeps worst-group accuracy at/);
    const resultsPath = /Results: (.*)/.exec(run.stdout)![1].trim();
    const results: SessionResults = JSON.parse(fs.readFileSync(resultsPath, 'utf8'));
    assert.equal(results.data.preprocessing !== null, true);
    assert.deepEqual(results.data.label.classes, ['No', 'Yes']);

    // independent: raw CSV lines → the saved transforms → the saved dense model → accuracy by group
    const lines = fs
      .readFileSync(csv, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(',').map((s) => s.replace(/^"|"$/g, '')));
    const header = lines[0];
    const rows = lines.slice(1);
    const assignment = results.data.split.assignment;
    assert.equal(assignment.length, rows.length);
    const testRows = rows.filter((_, i) => assignment[i] === 'x');
    const features = testRows.map((r) =>
      pre.columns.flatMap((c: { column: string; kind: string; mean?: number; std?: number; categories?: string[] }) => {
        const v = r[header.indexOf(c.column)];
        return c.kind === 'standardize'
          ? [(Number(v) - c.mean!) / c.std!]
          : c.categories!.map((cat) => (cat === v ? 1 : 0));
      }),
    );
    await useCpu();
    const json = JSON.parse(fs.readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
    const w = fs.readFileSync(path.join(modelDir, 'weights.bin'));
    const model = await tfl.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest[0].weights,
        weightData: w.buffer.slice(w.byteOffset, w.byteOffset + w.length),
      }),
    );
    const p = (model.predict(tf.tensor2d(features)) as tf.Tensor).dataSync();
    for (const g of results.dense.groups) {
      const colour = g.group.split('=')[1];
      let n = 0;
      let right = 0;
      testRows.forEach((r, i) => {
        if (r[header.indexOf('colour')] !== colour) return;
        n++;
        if ((p[i] >= 0.5 ? 'Yes' : 'No') === r[header.indexOf('released')]) right++;
      });
      assert.equal(g.n, n);
      assert.ok(Math.abs(g.accuracy.value - right / n) < 1e-12, `${g.group}: ${g.accuracy.value} vs ${right / n}`);
    }
    model.dispose();
  },
);
