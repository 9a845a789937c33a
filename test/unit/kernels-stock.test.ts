/**
 * `--kernels stock` (and FAIRPRUNE_KERNELS=stock) runs tfjs's own kernels only: a small session on
 * wasm (an MLP, a few hundred rows, one epoch) gives the same numbers with Fair Prune's kernels, heap
 * training steps and fused Adam as without them, up to float rounding — so a result that changes
 * between the two is a kernel's doing. Each run is its own process: kernels are registered into
 * tfjs's global registry, once per process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import type { SessionResults } from '../../src/protocol/results';
import * as tf from '@tensorflow/tfjs-core';
import { fastHeap, resolveKernels, useKernels } from '../../src/core/kernels/choice';
import { wasmInternals } from '../../src/core/kernels/wasm-heap';
import { initBackend } from '../../src/core/backend';
import { UserError } from '../../src/core/errors';
import { makeFixture } from '../session-fixture';
import { repoRoot, tempDir } from '../helpers';

const cli = path.join(repoRoot, 'out', 'src', 'cli', 'main.js');

function run(cwd: string, out: string, extra: string[], env: Record<string, string> = {}) {
  const args = [
    'run',
    '--model',
    'model/model.json',
    '--data',
    'loans.csv',
    '--label',
    'decision',
    '--group',
    'region',
    '--sparsity',
    '0.5',
    '--loss',
    'ce,pw',
    '--epochs',
    '1',
    '--batch-size',
    '16',
    '--backend',
    'wasm',
    '--workers',
    '1',
    '--bootstrap',
    '50',
    '--out',
    out,
    ...extra,
  ];
  const r = spawnSync(process.execPath, [cli, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 240_000,
    env: { ...process.env, FAIRPRUNE_KERNELS: '', ...env },
  });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const sessions = path.join(cwd, out, 'sessions');
  const dir = path.join(sessions, fs.readdirSync(sessions)[0]);
  const results = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as SessionResults;
  const weights = (id: string) => {
    const b = fs.readFileSync(path.join(dir, 'points', id, 'weights.bin'));
    return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  };
  return { results, weights, log: r.stdout + r.stderr };
}

function close(a: number, b: number, what: string, tol = 1e-4): void {
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(a)), `${what}: ${a} vs ${b}`);
}

test("a small session on wasm gives the same numbers with stock kernels as with Fair Prune's, and says which ran", async () => {
  const dir = tempDir();
  await makeFixture(dir, 300, 'plain');
  const own = run(dir, 'own', []);
  const stock = run(dir, 'stock', ['--kernels', 'stock']);
  const fromEnv = run(dir, 'env', [], { FAIRPRUNE_KERNELS: 'stock' });

  assert.equal(own.results.engine.backend.name, 'wasm');
  assert.equal(own.results.engine.backend.kernels, 'fairprune');
  assert.equal(stock.results.engine.backend.kernels, 'stock');
  assert.equal(fromEnv.results.engine.backend.kernels, 'stock');
  assert.match(stock.log, /kernels: tfjs's stock kernels only/);
  assert.match(own.log, /kernels: Fair Prune's kernels/);
  assert.match(
    stock.log,
    /training path: tfjs's tape on wasm \(--kernels stock/,
    'the training path says the stock kernels chose the tape',
  );
  assert.match(own.log, /training path: the heap step for dense layers/);

  for (const other of [stock, fromEnv]) {
    close(other.results.dense.accuracy.value, own.results.dense.accuracy.value, 'dense accuracy', 0);
    assert.equal(other.results.points.length, 2);
    other.results.points.forEach((p, i) => {
      const q = own.results.points[i];
      assert.equal(p.id, q.id);
      assert.ok(p.training.steps > 5, `${p.training.steps} steps`);
      assert.equal(p.achievedSparsity, q.achievedSparsity, p.id);
      close(p.training.finalTrainLoss, q.training.finalTrainLoss, `${p.id} training loss`);
      close(p.training.validationLoss!, q.training.validationLoss!, `${p.id} validation loss`);
      close(p.evaluation.accuracy.value, q.evaluation.accuracy.value, `${p.id} accuracy`, 0.02);
      const a = other.weights(p.id);
      const b = own.weights(p.id);
      assert.equal(a.length, b.length);
      let worst = 0;
      for (let j = 0; j < a.length; j++) {
        assert.equal(a[j] === 0, b[j] === 0, `${p.id}: weight ${j} pruned in one run only`);
        worst = Math.max(worst, Math.abs(a[j] - b[j]));
      }
      assert.ok(worst < 1e-4, `${p.id}: weights differ by up to ${worst}`);
    });
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the kernels are chosen by --kernels, else FAIRPRUNE_KERNELS, else fairprune; a bad value names where it came from', () => {
  const saved = process.env.FAIRPRUNE_KERNELS;
  try {
    delete process.env.FAIRPRUNE_KERNELS;
    assert.equal(resolveKernels(), 'fairprune');
    assert.equal(resolveKernels('stock'), 'stock');
    process.env.FAIRPRUNE_KERNELS = 'stock';
    assert.equal(resolveKernels(), 'stock');
    assert.equal(resolveKernels('fairprune'), 'fairprune');
    process.env.FAIRPRUNE_KERNELS = 'tfjs';
    assert.throws(
      () => resolveKernels(),
      (e: unknown) => e instanceof UserError && /FAIRPRUNE_KERNELS/.test(e.message) && /stock/.test(e.message),
    );
    assert.throws(
      () => resolveKernels('fast'),
      (e: unknown) => e instanceof UserError && /--kernels/.test(e.message),
    );
  } finally {
    if (saved === undefined) delete process.env.FAIRPRUNE_KERNELS;
    else process.env.FAIRPRUNE_KERNELS = saved;
  }
});

test("with stock kernels, starting wasm registers none of Fair Prune's kernels but the gradients wasm lacks, and the heap passes are off", async () => {
  const stockFunc = (name: string) => tf.getKernel(name, 'wasm')?.kernelFunc;
  const names = [tf.GatherV2, tf.Slice, tf.BatchMatMul, tf.Identity, tf.Sum, tf.Conv2DBackpropInput, tf.MaxPoolGrad];
  const before = names.map(stockFunc);
  const info = await initBackend('wasm', undefined, 'stock');
  assert.equal(info.kernels, 'stock');
  assert.deepEqual(names.map(stockFunc), before);
  assert.ok(wasmInternals(tf.backend()), 'wasm runs');
  assert.equal(fastHeap(), null);
  assert.throws(() => useKernels('fairprune'), /new process/);

  // wasm has no filter gradient for a convolution nor either gradient of a depthwise one: those gaps are
  // filled (from wasm's own kernels) even with stock kernels, or no CNN could train. Against the cpu backend.
  const x = tf.tensor4d(
    Float32Array.from({ length: 2 * 6 * 6 * 3 }, (_, i) => Math.sin(i)),
    [2, 6, 6, 3],
  );
  const w = tf.variable(
    tf.tensor4d(
      Float32Array.from({ length: 3 * 3 * 3 * 4 }, (_, i) => Math.cos(i) / 4),
      [3, 3, 3, 4],
    ),
  );
  const d = tf.variable(
    tf.tensor4d(
      Float32Array.from({ length: 3 * 3 * 4 }, (_, i) => Math.sin(2 * i) / 3),
      [3, 3, 4, 1],
    ),
  );
  const gradients = () => {
    const { grads } = tf.variableGrads(
      () => tf.sum(tf.square(tf.depthwiseConv2d(tf.relu(tf.conv2d(x, w, 1, 'same')), d, 2, 'same'))) as tf.Scalar,
      [w, d],
    );
    return [w, d].map((v) => Float32Array.from(grads[v.name].dataSync()));
  };
  const onWasm = gradients();
  await tf.setBackend('cpu');
  const onCpu = gradients();
  await tf.setBackend('wasm');
  onWasm.forEach((g, i) => {
    const scale = onCpu[i].reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    g.forEach((v, j) =>
      assert.ok(Math.abs(v - onCpu[i][j]) <= 1e-4 * scale, `gradient ${i}[${j}]: ${v} vs ${onCpu[i][j]}`),
    );
  });
  tf.dispose([x, w, d]);
});
