/**
 * The training step's fused pieces on wasm: Adam on the heap (bit-for-bit tf.train.adam) and the loss
 * computed on the host (the tensor loss's value and gradient up to float rounding).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../../src/core/backend';
import { Rng } from '../../src/core/rng';
import { HeapAdam, createAdam } from '../../src/core/kernels/adam';
import { weightedCrossEntropy, weightedCrossEntropyOnHost } from '../../src/core/losses';

function values(n: number, rng: Rng, scale = 1): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < v.length; i++) v[i] = scale * rng.normal();
  return v;
}

test('HeapAdam gives bit-for-bit the weights of tf.train.adam on wasm (cosine learning rate, tiny and zero gradients)', async () => {
  await initBackend('wasm');
  const shapes = [[7, 5], [5], [3, 3, 2, 4], [1]];
  const rng = new Rng(5);
  const init = shapes.map((s) =>
    values(
      s.reduce((a, b) => a * b, 1),
      rng,
    ),
  );
  const make = (tag: string) => shapes.map((s, i) => tf.variable(tf.tensor(init[i], s), true, `adam-test-${tag}-${i}`));
  const stock = make('stock');
  const fused = make('fused');
  const loop = make('loop');
  const baseline = tf.memory().numTensors;
  const a = tf.train.adam(0.01);
  const b = new HeapAdam(0.01); // the SIMD module's adam_update
  const c = new HeapAdam(0.01, undefined, undefined, undefined, false); // the JavaScript loop
  const before = tf.memory().numTensors;
  for (let step = 0; step < 60; step++) {
    const lr = 0.01 * 0.5 * (1 + Math.cos((Math.PI * step) / 60));
    (a as unknown as { learningRate: number }).learningRate = lr;
    b.learningRate = lr;
    c.learningRate = lr;
    const scale = step % 7 === 3 ? 1e-30 : step % 7 === 5 ? 0 : step % 2 ? 1 : 1e3;
    const grads = shapes.map((s) =>
      tf.tensor(
        values(
          s.reduce((p, d) => p * d, 1),
          rng,
          scale,
        ),
        s,
      ),
    );
    tf.tidy(() =>
      a.applyGradients(
        Object.fromEntries(stock.map((v, i) => [v.name, grads[i]])) as unknown as Parameters<
          typeof a.applyGradients
        >[0],
      ),
    );
    tf.tidy(() => b.applyGradients(Object.fromEntries(fused.map((v, i) => [v.name, grads[i]]))));
    tf.tidy(() => c.applyGradients(Object.fromEntries(loop.map((v, i) => [v.name, grads[i]]))));
    tf.dispose(grads);
    if (step === 0)
      assert.equal(
        tf.memory().numTensors,
        before + 3 * 2 * shapes.length,
        'each optimizer holds its two moments per variable, and nothing else',
      );
    stock.forEach((v, i) => {
      const x = v.dataSync();
      const y = fused[i].dataSync();
      const z = loop[i].dataSync();
      for (let j = 0; j < x.length; j++) {
        assert.ok(Object.is(x[j], y[j]), `SIMD: step ${step}, variable ${i}[${j}]: ${x[j]} vs ${y[j]}`);
        assert.ok(Object.is(x[j], z[j]), `loop: step ${step}, variable ${i}[${j}]: ${x[j]} vs ${z[j]}`);
      }
    });
  }
  a.dispose();
  b.dispose();
  c.dispose();
  assert.equal(tf.memory().numTensors, baseline, 'disposing the optimizers frees their moments');
  tf.dispose([...stock, ...fused, ...loop]);
});

test('createAdam: the fused Adam on wasm, tf.train.adam elsewhere', async () => {
  await initBackend('wasm');
  const w = createAdam(0.1);
  assert.ok(w instanceof HeapAdam);
  w.dispose();
  await tf.setBackend('cpu');
  const c = createAdam(0.1);
  assert.ok(!(c instanceof HeapAdam));
  assert.equal(c.learningRate, 0.1);
  c.dispose();
  await initBackend('wasm');
});

test('the host loss: value and logit gradient = weightedCrossEntropy, multiclass and binary (a logit of exactly 0 too)', async () => {
  await tf.setBackend('cpu');
  const rng = new Rng(8);
  for (const task of ['multiclass', 'binary'] as const) {
    const width = task === 'binary' ? 1 : 4;
    const n = 20;
    const all = 30;
    const targets = new Float32Array(all * width);
    for (let i = 0; i < all; i++) {
      if (task === 'binary') targets[i] = rng.next();
      else {
        let s = 0;
        for (let c = 0; c < width; c++) s += targets[i * width + c] = rng.next();
        for (let c = 0; c < width; c++) targets[i * width + c] /= s;
      }
    }
    const weights = Float32Array.from({ length: all }, () => 0.5 + rng.next());
    const rows = Int32Array.from({ length: n }, (_, i) => (i * 7) % all);
    const z = values(n * width, rng, 4);
    z[3 * width] = 0; // binary: the kink of relu and |z|
    z[5 * width] = 60;
    z[6 * width] = -60;
    const logits = tf.variable(tf.tensor2d(z, [n, width]));
    const tb = tf.tensor2d(
      Array.from(rows).flatMap((r) => Array.from(targets.subarray(r * width, (r + 1) * width))),
      [n, width],
    );
    const wb = tf.tensor1d(Array.from(rows, (r) => weights[r]));
    const ref = tf.variableGrads(() => weightedCrossEntropy(task, logits as unknown as tf.Tensor2D, tb, wb), [logits]);
    const got = tf.variableGrads(
      () => weightedCrossEntropyOnHost(task, logits as unknown as tf.Tensor2D, targets, weights, rows),
      [logits],
    );
    const v0 = ref.value.dataSync()[0];
    const v1 = got.value.dataSync()[0];
    assert.ok(Math.abs(v0 - v1) <= 1e-6 * Math.abs(v0), `${task}: loss ${v1} vs ${v0}`);
    const g0 = ref.grads[logits.name].dataSync();
    const g1 = got.grads[logits.name].dataSync();
    let scale = 0;
    for (const g of g0) scale = Math.max(scale, Math.abs(g));
    for (let i = 0; i < g0.length; i++)
      assert.ok(Math.abs(g0[i] - g1[i]) <= 1e-6 * scale, `${task}: gradient ${i}: ${g1[i]} vs ${g0[i]}`);
    tf.dispose([logits, tb, wb, ref.value, got.value, ...Object.values(ref.grads), ...Object.values(got.grads)]);
  }
  assert.throws(
    () =>
      weightedCrossEntropyOnHost(
        'multiclass',
        tf.zeros([2, 3]) as tf.Tensor2D,
        new Float32Array(6),
        new Float32Array(2),
        [0],
      ),
    /2 logits rows for 1 samples/,
  );
  assert.throws(
    () =>
      weightedCrossEntropyOnHost(
        'multiclass',
        tf.zeros([1, 3]) as tf.Tensor2D,
        new Float32Array(4),
        new Float32Array(2),
        [0],
      ),
    /4 targets for 2 samples of width 3/,
  );
  await initBackend('wasm');
});
