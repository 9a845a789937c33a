/**
 * A non-finite loss, gradient or prediction is never blamed on the user without evidence (issue 25): the
 * same step (or sample) runs again on the cpu backend, and the message says whether the engine failed
 * (the reference computes numbers: report it, `--backend cpu` as the way around) or the training
 * diverged (the reference does not either), or the model's weights hold non-numbers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../src/core/backend';
import { ConvStep } from '../../src/core/conv-step';
import { lossTargets } from '../../src/core/losses';
import { diagnosePredictions, nonFiniteTensor } from '../../src/core/non-finite';
import { Rng } from '../../src/core/rng';
import { predictProbabilities, train, type TrainingData } from '../../src/core/train';
import { expectUserError, useCpu } from '../helpers';

function cnn(): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.conv2d({
        inputShape: [8, 8, 3],
        filters: 4,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
      }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 3, kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
}

function data(): TrainingData {
  const rng = new Rng(3);
  const n = 24;
  const labels = Int32Array.from({ length: n }, () => rng.int(3));
  const t = lossTargets('ce', 'multiclass', labels, 3, undefined, { minWeight: 1, gamma: 0 });
  const all = Int32Array.from({ length: n }, (_, i) => i);
  return {
    x: tf.tensor4d(
      Float32Array.from({ length: n * 192 }, () => rng.next()),
      [n, 8, 8, 3],
    ),
    targets: tf.tensor2d(Float32Array.from(t.targets), [n, 3]),
    weights: tf.tensor1d(Float32Array.from(t.weights)),
    labels,
    train: all,
    validation: new Int32Array(0),
  };
}

const opts = { task: 'multiclass' as const, epochs: 2, batchSize: 8, learningRate: 0.01, patience: 0, seed: 1 };

test('nonFiniteTensor on the wasm heap: NaN, +∞ or −∞ anywhere (in each lane of four and the tail), or none', async () => {
  await initBackend('wasm');
  const finite = tf.tensor1d(Float32Array.from({ length: 11 }, (_, i) => (i - 5) * 1e30));
  try {
    assert.equal(nonFiniteTensor({ a: finite }), null, 'large and negative values, all finite');
    for (const bad of [NaN, Infinity, -Infinity])
      for (let at = 0; at < 11; at++) {
        const values = Float32Array.from({ length: 11 }, (_, i) => i);
        values[at] = bad;
        const t = tf.tensor1d(values);
        try {
          assert.equal(nonFiniteTensor({ a: finite, b: t }), 'b', `${bad} at ${at}`);
        } finally {
          t.dispose();
        }
      }
  } finally {
    finite.dispose();
  }
});

test('a wasm step whose gradient is NaN where the cpu backend computes numbers: an engine fault, --backend cpu as the way around', async () => {
  await initBackend('wasm');
  const d = data();
  const model = cnn();
  // A fault injected into the heap step's output (the kind issue 25 found): one gradient turns NaN on the third step.
  const run = ConvStep.prototype.run;
  let calls = 0;
  ConvStep.prototype.run = function (this: ConvStep, ...args: Parameters<ConvStep['run']>) {
    const out = run.apply(this, args);
    if (++calls === 3) {
      const name = Object.keys(out.grads)[0];
      const broken = tf.fill(out.grads[name].shape, NaN);
      out.grads[name].dispose();
      out.grads[name] = broken;
    }
    return out;
  };
  try {
    const before = model.getWeights().map((w) => w.dataSync().slice());
    await assert.rejects(train(model, d, opts), (e: unknown) => {
      expectUserError(
        /step 3 \(epoch 1\) on the wasm backend gave a gradient that is not a number .* the cpu backend \(the reference\) computes the same step .* as numbers .* a fault in Fair Prune's wasm engine/,
      )(e);
      assert.match((e as Error).message, /--backend cpu/);
      return true;
    });
    assert.equal(calls, 3, 'the run stopped at the faulty step');
    // No optimizer step was taken with the NaN gradient: the weights are numbers.
    model.getWeights().forEach((w, i) => assert.ok(w.dataSync().every(Number.isFinite), `weight ${i} is finite`));
    assert.ok(before.length > 0);
  } finally {
    ConvStep.prototype.run = run;
    tf.dispose([d.x, d.targets, d.weights]);
    model.dispose();
  }
});

test('weights so large that the loss overflows on wasm and on cpu: divergence, not an engine fault', async () => {
  for (const backend of ['wasm', 'cpu'] as const) {
    if (backend === 'wasm') await initBackend('wasm');
    else await useCpu();
    const d = data();
    const model = cnn();
    model.setWeights(model.getWeights().map((w) => tf.mul(w, 1e30)));
    await assert.rejects(
      train(model, d, opts),
      (e: unknown) => {
        expectUserError(
          /step 1 \(epoch 1\) on the (wasm|cpu) backend gave a (loss of NaN|gradient that is not a number).*the training diverged/,
        )(e);
        assert.doesNotMatch((e as Error).message, /fault/);
        if (backend === 'cpu') assert.match((e as Error).message, /the cpu backend is the reference/);
        else assert.match((e as Error).message, /the cpu backend \(the reference\) gives the same step/);
        return true;
      },
      backend,
    );
    tf.dispose([d.x, d.targets, d.weights]);
    model.dispose();
  }
});

test("predictions that are not numbers: the model's NaN weights, an engine fault, or outputs that overflow everywhere", async () => {
  await initBackend('wasm');
  const d = data();
  const model = cnn();
  const idx = Int32Array.of(0, 1, 2);
  // Healthy: nothing to say.
  const probs = predictProbabilities(model, 'multiclass', d.x, idx);
  assert.equal(diagnosePredictions(model, 'multiclass', d.x, idx, probs, 3), null);
  // The wasm engine handed back a NaN the model does not compute (as a faulty kernel would).
  const faulty = Float32Array.from(probs);
  faulty[4] = NaN;
  const fault = diagnosePredictions(model, 'multiclass', d.x, idx, faulty, 3);
  assert.ok(fault);
  expectUserError(
    /output 1\).* the cpu backend \(the reference\) computes numbers for the same sample .* a fault in Fair Prune's wasm engine/,
  )(fault);
  // Huge weights: the cpu backend's outputs are not numbers either.
  const big = cnn();
  big.setWeights(model.getWeights().map((w) => tf.mul(w, 1e30)));
  assert.throws(
    () => predictProbabilities(big, 'multiclass', d.x, idx),
    expectUserError(/the cpu backend \(the reference\) gives the same: the model's outputs overflow/),
  );
  // A weight that is NaN: the model file.
  const broken = cnn();
  broken.setWeights(model.getWeights().map((w, i) => (i === 0 ? tf.fill(w.shape, NaN) : w)));
  assert.throws(
    () => predictProbabilities(broken, 'multiclass', d.x, idx),
    expectUserError(/its weight .*kernel holds values that are not numbers/),
  );
  assert.equal(tf.getBackend(), 'wasm', 'the backend is switched back');
  tf.dispose([d.x, d.targets, d.weights]);
  [model, big, broken].forEach((m) => m.dispose());
});
