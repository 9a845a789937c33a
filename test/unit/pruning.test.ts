import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { PRUNING_METHODS, pruneModelKernels, measuredSparsity, pruningMethod, MaskSet } from '../../src/core/pruning';
import { parseSparsities } from '../../src/core/options';
import type { KernelValues } from '../../src/core/pruning';
import { prunableKernels, type PrunableKernel } from '../../src/core/model-io';
import { initBackend } from '../../src/core/backend';
import { Rng } from '../../src/core/rng';
import { UserError } from '../../src/core/errors';
import { useCpu } from '../helpers';

function fakeKernels(values: number[][]): KernelValues[] {
  return values.map((v, i) => ({
    kernel: { layer: `l${i}`, className: 'Dense', variable: undefined as never, shape: [v.length], size: v.length },
    values: Float32Array.from(v),
  }));
}

test('magnitude per layer removes exactly the smallest |w| of each layer', () => {
  const masks = PRUNING_METHODS['magnitude-layer'].masks(
    fakeKernels([
      [0.5, -0.1, 2, -3],
      [1, 1, -0.2, 0.3],
    ]),
    0.5,
    new Rng(1),
  );
  assert.deepEqual(Array.from(masks[0]), [0, 0, 1, 1]);
  assert.deepEqual(Array.from(masks[1]), [1, 1, 0, 0]);
});

test('magnitude per layer: ties are broken by position, so the count is exact', () => {
  const masks = PRUNING_METHODS['magnitude-layer'].masks(
    fakeKernels([[1, 1, 1, 1, 1, 1, 1, 1, 1, 1]]),
    0.3,
    new Rng(1),
  );
  assert.equal(masks[0].filter((m) => m === 0).length, 3);
  assert.deepEqual(Array.from(masks[0].subarray(0, 3)), [0, 0, 0]);
});

test('global magnitude pools every layer: a layer of small weights loses most', () => {
  const masks = PRUNING_METHODS['magnitude-global'].masks(
    fakeKernels([
      [0.01, 0.02, 0.03, 0.04],
      [1, 2, 3, 4],
    ]),
    0.5,
    new Rng(1),
  );
  assert.deepEqual(Array.from(masks[0]), [0, 0, 0, 0]);
  assert.deepEqual(Array.from(masks[1]), [1, 1, 1, 1]);
});

test('random pruning: same count per layer as magnitude, reproducible by seed, different across seeds', () => {
  const k = fakeKernels([Array.from({ length: 100 }, (_, i) => i + 1)]);
  const a = PRUNING_METHODS.random.masks(k, 0.8, new Rng(5))[0];
  const b = PRUNING_METHODS.random.masks(k, 0.8, new Rng(5))[0];
  const c = PRUNING_METHODS.random.masks(k, 0.8, new Rng(6))[0];
  assert.equal(a.filter((m) => m === 0).length, 80);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  // magnitude would keep the 20 largest (81..100); random keeps some small ones
  assert.ok(Array.from(a.subarray(0, 80)).some((m) => m === 1));
});

test('a pruned model really holds zeros where its mask says so, and only there', async () => {
  await useCpu();
  const model = tfl.sequential({
    layers: [tfl.layers.dense({ inputShape: [6], units: 8, activation: 'relu' }), tfl.layers.dense({ units: 3 })],
  });
  const kernels = prunableKernels(model);
  assert.deepEqual(
    kernels.map((k) => k.layer),
    model.layers.map((l) => l.name),
  );
  assert.deepEqual(
    kernels.map((k) => k.size),
    [48, 24],
  );
  const before = kernels.map((k) => Float32Array.from(k.variable.dataSync()));
  const masks = pruneModelKernels(kernels, PRUNING_METHODS['magnitude-layer'], 0.75, new Rng(1));
  assert.ok(Math.abs(measuredSparsity(kernels) - 0.75) < 1e-9);
  kernels.forEach((k, i) => {
    const after = k.variable.dataSync();
    const threshold = [...before[i]].map(Math.abs).sort((a, b) => a - b)[Math.round(before[i].length * 0.75) - 1];
    for (let j = 0; j < after.length; j++) {
      if (after[j] === 0) assert.ok(Math.abs(before[i][j]) <= threshold);
      else assert.equal(after[j], before[i][j]);
    }
  });
  // biases are not pruned
  assert.ok(
    model.layers[0]
      .getWeights()[1]
      .dataSync()
      .every((v) => v === 0),
  ); // zeros-initialised, untouched
  masks.dispose();
  model.dispose();
});

test('sparsity and method options: fractions, percents, sorting, clear errors', () => {
  assert.deepEqual(parseSparsities('0.9, 50%,0.8,0.8'), [0.5, 0.8, 0.9]);
  for (const bad of ['0', '1', '1.5', 'abc', '-0.2']) {
    assert.throws(
      () => parseSparsities(bad),
      (e: unknown) => e instanceof UserError && /--sparsity/.test(e.message),
    );
  }
  assert.equal(pruningMethod('random').name, 'random');
  assert.throws(
    () => pruningMethod('taylor'),
    (e: unknown) => e instanceof UserError && /magnitude-layer/.test(e.message),
  );
});

test('tensors are freed: pruning leaves no tensors behind', async () => {
  await useCpu();
  const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [4], units: 4 })] });
  const n0 = tf.memory().numTensors;
  const masks = pruneModelKernels(prunableKernels(model), PRUNING_METHODS['magnitude-global'], 0.5, new Rng(1));
  masks.apply();
  masks.dispose();
  assert.equal(tf.memory().numTensors, n0);
  model.dispose();
});

test('on wasm, masks are applied on the heap: the same values as tf.mul (−0, NaN too), gradients masked, no tensors left', async () => {
  await initBackend('wasm');
  const v = tf.variable(tf.tensor2d([1.5, -2, NaN, 0.25, -0.5, 3], [2, 3]));
  const kernel: PrunableKernel = { layer: 'd', className: 'Dense', variable: v, shape: [2, 3], size: 6 };
  const keep = Uint8Array.from([1, 0, 0, 1, 0, 1]);
  const expected = tf.tidy(() => Array.from(tf.mul(v, tf.tensor2d(Float32Array.from(keep), [2, 3])).dataSync()));
  const masks = new MaskSet([kernel], [keep]);
  const before = tf.memory().numTensors;
  masks.apply();
  assert.deepEqual(Array.from(v.dataSync()), expected);
  assert.ok(Object.is(v.dataSync()[4], -0), 'a pruned negative weight is −0, as tf.mul gives');
  const grad = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
  const masked = masks.maskGradient(v.name, grad);
  assert.deepEqual(Array.from(masked.dataSync()), [1, 0, 0, 4, 0, 6]);
  assert.equal(masks.maskGradient('another variable', grad), grad, 'other variables pass through');
  masked.dispose();
  grad.dispose();
  assert.equal(tf.memory().numTensors, before, 'apply and maskGradient leave only what they return');
  masks.dispose();
  v.dispose();
  await useCpu();
});
