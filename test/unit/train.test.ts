import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { train, predictProbabilities, evaluateLoss } from '../../src/core/train';
import type { TrainingData } from '../../src/core/train';
import { lossTargets } from '../../src/core/losses';
import { prunableKernels } from '../../src/core/model-io';
import { PRUNING_METHODS, pruneModelKernels, measuredSparsity, ScheduledPruning } from '../../src/core/pruning';
import { CancelledError } from '../../src/core/errors';
import { Rng } from '../../src/core/rng';
import { useCpu } from '../helpers';
import { initBackend } from '../../src/core/backend';

/** Two Gaussian blobs per class in 2-D, 3 classes: learnable, not trivially. */
function blobs(n: number, seed: number) {
  const rng = new Rng(seed);
  const x = new Float32Array(n * 2);
  const labels = new Int32Array(n);
  const centres = [
    [-2, 0],
    [2, 0],
    [0, 2.5],
  ];
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    labels[i] = c;
    x[2 * i] = centres[c][0] + rng.normal();
    x[2 * i + 1] = centres[c][1] + rng.normal();
  }
  return { x, labels };
}

function setup(n = 600, seed = 3) {
  const { x, labels } = blobs(n, seed);
  const t = lossTargets('ce', 'multiclass', labels, 3, undefined, { minWeight: 1, gamma: 0 });
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const data: TrainingData = {
    x: tf.tensor2d(x, [n, 2]),
    targets: tf.tensor2d(Float32Array.from(t.targets), [n, 3]),
    weights: tf.tensor1d(Float32Array.from(t.weights)),
    labels,
    train: all.filter((i) => i % 5 !== 0),
    validation: all.filter((i) => i % 5 === 0),
  };
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({
        inputShape: [2],
        units: 16,
        activation: 'relu',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
      }),
      tfl.layers.dense({ units: 3, kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
  const dispose = () => {
    data.x.dispose();
    data.targets.dispose();
    data.weights.dispose();
    model.dispose();
  };
  return { data, model, dispose };
}

const opts = { task: 'multiclass' as const, epochs: 8, batchSize: 32, learningRate: 0.02, patience: 0, seed: 1 };

test('training lowers the loss and learns the task', async () => {
  await useCpu();
  const { data, model, dispose } = setup();
  const before = evaluateLoss(model, 'multiclass', data, data.validation);
  const summary = await train(model, data, opts);
  assert.ok(summary.validationLoss! < before.loss * 0.6, `${summary.validationLoss} < ${before.loss}`);
  assert.ok(summary.validationAccuracy! > 0.85, `accuracy ${summary.validationAccuracy}`);
  assert.equal(summary.epochs, 8);
  assert.equal(summary.steps, 8 * Math.ceil(data.train.length / 32));
  const probs = predictProbabilities(model, 'multiclass', data.x, data.validation);
  for (let i = 0; i < data.validation.length; i++) {
    const s = probs[3 * i] + probs[3 * i + 1] + probs[3 * i + 2];
    assert.ok(Math.abs(s - 1) < 1e-5);
  }
  dispose();
});

test('the same seed gives the same weights; another seed does not', async () => {
  await useCpu();
  const runs: number[][] = [];
  for (const seed of [1, 1, 2]) {
    const { data, model, dispose } = setup();
    await train(model, data, { ...opts, epochs: 2, seed });
    runs.push(Array.from(model.getWeights()[0].dataSync()));
    dispose();
  }
  assert.deepEqual(runs[0], runs[1]);
  assert.notDeepEqual(runs[0], runs[2]);
});

test('dropout and Gaussian noise are seeded by the run: the same seed gives the same weights, on cpu and on wasm; Math.random is restored', async () => {
  for (const backend of ['cpu', 'wasm'] as const) {
    if (backend === 'cpu') await useCpu();
    else await initBackend('wasm');
    const runs: number[][] = [];
    for (const seed of [1, 1, 2]) {
      const { data, dispose } = setup();
      const model = tfl.sequential({
        layers: [
          tfl.layers.dense({
            inputShape: [2],
            units: 16,
            activation: 'relu',
            kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
          }),
          tfl.layers.dropout({ rate: 0.5 }),
          tfl.layers.gaussianNoise({ stddev: 0.1 }),
          tfl.layers.dense({ units: 3, kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }),
        ],
      });
      const random = Math.random;
      await train(model, data, { ...opts, epochs: 2, seed });
      assert.equal(Math.random, random, 'Math.random is the original again');
      runs.push(Array.from(model.getWeights()[0].dataSync()));
      model.dispose();
      dispose();
    }
    assert.deepEqual(runs[0], runs[1], `${backend}: same seed, same weights`);
    assert.notDeepEqual(runs[0], runs[2], `${backend}: another seed, other weights`);
  }
  await useCpu();
});

test('pruned weights stay exactly zero through fine-tuning (masks held after every step)', async () => {
  await useCpu();
  const { data, model, dispose } = setup();
  const kernels = prunableKernels(model);
  const masks = pruneModelKernels(kernels, PRUNING_METHODS['magnitude-layer'], 0.6, new Rng(1));
  const zerosBefore = kernels.map((k) => Array.from(k.variable.dataSync()).map((v) => v === 0));
  await train(model, data, { ...opts, epochs: 3, pruning: masks });
  kernels.forEach((k, i) => {
    const v = k.variable.dataSync();
    zerosBefore[i].forEach((z, j) => z && assert.ok(v[j] === 0, `weight ${j} of ${k.layer} is ${v[j]}`));
  });
  assert.ok(Math.abs(measuredSparsity(kernels) - 0.6) < 0.01);
  masks.dispose();
  dispose();
});

test('tensor count stays flat over a long run', async () => {
  await useCpu();
  const { data, model, dispose } = setup(300);
  const masks = pruneModelKernels(prunableKernels(model), PRUNING_METHODS['magnitude-layer'], 0.5, new Rng(1));
  await train(model, data, { ...opts, epochs: 1, pruning: masks, patience: 1 });
  const after1 = tf.memory().numTensors;
  await train(model, data, { ...opts, epochs: 12, pruning: masks, patience: 50 });
  assert.equal(tf.memory().numTensors, after1);
  masks.dispose();
  dispose();
});

test('cancellation stops between steps with a CancelledError and frees the optimizer', async () => {
  await useCpu();
  const { data, model, dispose } = setup();
  const n0 = tf.memory().numTensors;
  const controller = new AbortController();
  let steps = 0;
  await assert.rejects(
    train(model, data, {
      ...opts,
      epochs: 50,
      signal: controller.signal,
      progressInterval: 0,
      onProgress: (p) => {
        steps = p.step;
        if (p.step >= 5) controller.abort();
      },
    }),
    CancelledError,
  );
  assert.ok(steps >= 5 && steps < 10, `stopped after ${steps} steps`);
  assert.equal(tf.memory().numTensors, n0);
  dispose();
});

test('early stopping keeps the best validation weights', async () => {
  await useCpu();
  const { data, model, dispose } = setup();
  // a learning rate so high that the loss gets worse after the first epochs
  const summary = await train(model, data, { ...opts, epochs: 30, learningRate: 0.5, patience: 2 });
  const now = evaluateLoss(model, 'multiclass', data, data.validation);
  assert.ok(
    Math.abs(now.loss - summary.validationLoss!) < 1e-5,
    `restored weights score the reported best (${now.loss} vs ${summary.validationLoss})`,
  );
  // the loss gets worse after the first epochs, so patience 2 ends the run long before epoch 30:
  // at least one epoch to set the best and two without improvement
  assert.equal(summary.stoppedEarly, true);
  assert.ok(summary.epochs >= 3 && summary.epochs < 30, `ran ${summary.epochs} epochs`);
  dispose();
});

test('progress reports step, loss, samples/s and time left', async () => {
  await useCpu();
  const { data, model, dispose } = setup(200);
  const seen: Array<{ step: number; steps: number; samplesPerSecond: number; secondsLeft: number; trainLoss: number }> =
    [];
  await train(model, data, { ...opts, epochs: 2, progressInterval: 0, onProgress: (p) => seen.push(p) });
  const last = seen[seen.length - 1];
  assert.equal(last.step, last.steps);
  assert.equal(last.secondsLeft, 0);
  assert.ok(seen.every((p) => p.samplesPerSecond > 0 && Number.isFinite(p.trainLoss)));
  dispose();
});

test('off wasm the step losses are read together, not after every step: same losses, the epoch loss their sample-weighted mean', async () => {
  await useCpu();
  const run = async (onProgress?: (p: { step: number; trainLoss: number }) => void) => {
    const { data, model, dispose } = setup(200);
    const n0 = tf.memory().numTensors;
    const summary = await train(model, data, { ...opts, epochs: 2, batchSize: 48, progressInterval: 0, onProgress });
    const w = (model.getWeights()[0].dataSync() as Float32Array).slice();
    assert.equal(tf.memory().numTensors, n0, 'no step loss left behind');
    dispose();
    return { summary, w };
  };
  const steps: number[] = [];
  const everyStep = await run((p) => steps.push(p.trainLoss));
  const atEpochEnd = await run();
  assert.deepEqual(atEpochEnd.w, everyStep.w);
  assert.equal(atEpochEnd.summary.finalTrainLoss, everyStep.summary.finalTrainLoss);
  // 160 training rows in batches of 48: 48, 48, 48, 16; the second epoch is steps 5..8
  const sizes = [48, 48, 48, 16];
  const mean = steps.slice(4).reduce((a, l, i) => a + l * sizes[i], 0) / 160;
  assert.ok(Math.abs(everyStep.summary.finalTrainLoss - mean) < 1e-6, `${everyStep.summary.finalTrainLoss} vs ${mean}`);
});

test('a gradual schedule plugs into the loop unchanged: masks follow the schedule step by step', async () => {
  await useCpu();
  const { data, model, dispose } = setup(320);
  const kernels = prunableKernels(model);
  const seen: Array<[number, number]> = [];
  // a schedule written here, not in the engine: 20% more every 5 steps up to the final sparsity
  const stepwise = {
    name: 'test-stepwise',
    sparsityAt: (step: number, _total: number, final: number) => Math.min(final, 0.2 * (1 + Math.floor(step / 5))),
    updatesAt: (step: number) => step % 5 === 0,
  };
  const pruning = new ScheduledPruning(kernels, PRUNING_METHODS['magnitude-layer'], stepwise, 0.8, new Rng(1));
  pruning.prepare(0);
  seen.push([0, measuredSparsity(kernels)]);
  const steps = Math.ceil(data.train.length / 32) * 2; // 16 steps
  await train(model, data, {
    ...opts,
    epochs: 2,
    pruning,
    progressInterval: 0,
    onProgress: (p) => seen.push([p.step, measuredSparsity(kernels)]),
  });
  assert.equal(seen[0][1].toFixed(2), '0.20');
  assert.equal(seen.find(([s]) => s === 6)![1].toFixed(2), '0.40'); // step index 5 updated before the 6th step
  assert.equal(seen[seen.length - 1][0], steps);
  assert.equal(measuredSparsity(kernels).toFixed(2), '0.80');
  pruning.dispose();
  dispose();
});

/** The weights of a run, as plain arrays. */
const weightsOf = (model: tfl.LayersModel) => model.getWeights().map((w) => Array.from(w.dataSync()));

test('on wasm (heap Adam, host loss, heap kernels): the loop learns, is reproducible by seed, holds the masks, frees its tensors, and follows cpu', async () => {
  await initBackend('wasm');
  const { data, model, dispose } = setup();
  const before = evaluateLoss(model, 'multiclass', data, data.validation);
  const summary = await train(model, data, opts);
  assert.ok(summary.validationLoss! < before.loss * 0.6, `${summary.validationLoss} < ${before.loss}`);
  assert.ok(summary.validationAccuracy! > 0.85, `accuracy ${summary.validationAccuracy}`);
  dispose();

  const runs: number[][][] = [];
  for (const seed of [1, 1, 2]) {
    const s = setup();
    await train(s.model, s.data, { ...opts, epochs: 2, seed });
    runs.push(weightsOf(s.model));
    s.dispose();
  }
  assert.deepEqual(runs[0], runs[1]);
  assert.notDeepEqual(runs[0], runs[2]);

  // The same 2 epochs on cpu (tf.train.adam, the tensor loss): the same run up to float rounding.
  await useCpu();
  const c = setup();
  const cpuSummary = await train(c.model, c.data, { ...opts, epochs: 2, seed: 1 });
  const cpuWeights = weightsOf(c.model);
  c.dispose();
  await initBackend('wasm');
  const w = setup();
  const wasmSummary = await train(w.model, w.data, { ...opts, epochs: 2, seed: 1 });
  w.dispose();
  assert.ok(
    Math.abs(wasmSummary.finalTrainLoss - cpuSummary.finalTrainLoss) < 1e-4 * cpuSummary.finalTrainLoss,
    `${wasmSummary.finalTrainLoss} vs ${cpuSummary.finalTrainLoss}`,
  );
  runs[0].forEach((v, i) =>
    v.forEach((x, j) =>
      assert.ok(Math.abs(x - cpuWeights[i][j]) < 1e-4, `weight ${i}[${j}]: wasm ${x}, cpu ${cpuWeights[i][j]}`),
    ),
  );

  const p = setup(300);
  const kernels = prunableKernels(p.model);
  const masks = pruneModelKernels(kernels, PRUNING_METHODS['magnitude-layer'], 0.6, new Rng(1));
  const zerosBefore = kernels.map((k) => Array.from(k.variable.dataSync()).map((v) => v === 0));
  await train(p.model, p.data, { ...opts, epochs: 1, pruning: masks, patience: 1 });
  const after1 = tf.memory().numTensors;
  await train(p.model, p.data, { ...opts, epochs: 4, pruning: masks, patience: 50 });
  assert.equal(tf.memory().numTensors, after1, 'tensor count flat');
  kernels.forEach((k, i) => {
    const v = k.variable.dataSync();
    zerosBefore[i].forEach((z, j) => z && assert.ok(v[j] === 0, `weight ${j} of ${k.layer} is ${v[j]}`));
  });
  assert.ok(Math.abs(measuredSparsity(kernels) - 0.6) < 0.01);
  masks.dispose();
  p.dispose();
  await useCpu();
});

test('on wasm: a small CNN (conv, max pool, dense; binary task) trains like on cpu', async () => {
  const rng = new Rng(12);
  const n = 48;
  const x = new Float32Array(n * 8 * 8 * 2);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const labels = Int32Array.from({ length: n }, (_, i) => i % 2);
  const t = lossTargets(
    'pw-weight-only',
    'binary',
    labels,
    1,
    Float64Array.from(labels, (l) => (l ? 0.7 : 0.4)),
    { minWeight: 0.5, gamma: 2 },
  );
  const run = async () => {
    const data: TrainingData = {
      x: tf.tensor4d(x, [n, 8, 8, 2]),
      targets: tf.tensor2d(Float32Array.from(t.targets), [n, 1]),
      weights: tf.tensor1d(Float32Array.from(t.weights)),
      labels,
      train: Int32Array.from({ length: 40 }, (_, i) => i),
      validation: Int32Array.from({ length: 8 }, (_, i) => 40 + i),
    };
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({
          inputShape: [8, 8, 2],
          filters: 4,
          kernelSize: 3,
          padding: 'same',
          activation: 'relu',
          kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }),
        }),
        tfl.layers.maxPooling2d({ poolSize: 2 }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 1, kernelInitializer: tfl.initializers.glorotUniform({ seed: 4 }) }),
      ],
    });
    const summary = await train(model, data, {
      task: 'binary',
      epochs: 2,
      batchSize: 16,
      learningRate: 0.01,
      patience: 0,
      seed: 3,
    });
    const weights = weightsOf(model);
    model.dispose();
    tf.dispose([data.x, data.targets, data.weights]);
    return { summary, weights };
  };
  await useCpu();
  const cpu = await run();
  await initBackend('wasm');
  const wasm = await run();
  await useCpu();
  assert.ok(
    Math.abs(wasm.summary.finalTrainLoss - cpu.summary.finalTrainLoss) < 1e-4 * cpu.summary.finalTrainLoss,
    `${wasm.summary.finalTrainLoss} vs ${cpu.summary.finalTrainLoss}`,
  );
  wasm.weights.forEach((v, i) =>
    v.forEach((w, j) =>
      assert.ok(Math.abs(w - cpu.weights[i][j]) < 1e-4, `weight ${i}[${j}]: wasm ${w}, cpu ${cpu.weights[i][j]}`),
    ),
  );
});
