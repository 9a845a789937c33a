/**
 * The heap training step for plain CNNs (src/core/conv-step.ts): which models take it, its loss and
 * gradients against tf.variableGrads on the same batch, what it leaves on the heap, and a training run
 * through it against the tfjs path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../src/core/backend';
import { convStackOf, convStepFor } from '../../src/core/conv-step';
import { lossTargets, weightedCrossEntropyOnHost } from '../../src/core/losses';
import { Rng } from '../../src/core/rng';
import { relDiff, useCpu } from '../helpers';
import {
  ceTrainingData,
  firstNonFinite,
  poisonHeapOutputs,
  referenceOnCpu,
  scaledDiff,
  trainWithAndWithoutHeapStep,
} from '../wasm-reference';

const init = (seed: number) => tfl.initializers.glorotUniform({ seed });
const biasInit = (seed: number) => tfl.initializers.randomNormal({ seed, stddev: 0.3 });

interface Cnn {
  input: [number, number, number];
  convs: {
    filters: number;
    kernel?: number;
    strides?: number;
    padding?: 'same' | 'valid';
    activation?: 'relu' | 'linear' | 'elu';
    pool?: boolean;
    useBias?: boolean;
  }[];
  dense: { units: number; activation?: 'relu' | 'linear' }[];
}

function cnn(c: Cnn): tfl.LayersModel {
  const layers: tfl.layers.Layer[] = [];
  c.convs.forEach((v, i) => {
    layers.push(
      tfl.layers.conv2d({
        ...(i === 0 ? { inputShape: c.input } : {}),
        filters: v.filters,
        kernelSize: v.kernel ?? 3,
        strides: v.strides ?? 1,
        padding: v.padding ?? 'same',
        activation: v.activation ?? 'relu',
        useBias: v.useBias ?? true,
        kernelInitializer: init(10 + i),
        biasInitializer: biasInit(20 + i),
      }),
    );
    if (v.pool) layers.push(tfl.layers.maxPooling2d({ poolSize: 2 }));
  });
  layers.push(tfl.layers.flatten());
  c.dense.forEach((d, i) =>
    layers.push(
      tfl.layers.dense({
        units: d.units,
        activation: d.activation ?? 'linear',
        kernelInitializer: init(30 + i),
        biasInitializer: biasInit(40 + i),
      }),
    ),
  );
  return tfl.sequential({ layers });
}

const CNN32: Cnn = {
  input: [32, 32, 3],
  convs: [
    { filters: 16, pool: true },
    { filters: 32, pool: true },
  ],
  dense: [{ units: 2 }],
};
const DEMO: Cnn = {
  input: [28, 28, 3],
  convs: [
    { filters: 16, pool: true },
    { filters: 32, pool: true },
  ],
  dense: [{ units: 64, activation: 'relu' }, { units: 10 }],
};

test('convStackOf: conv / 2×2 max-pool / flatten / dense chains, and nothing else', async () => {
  await initBackend('wasm');
  const cases: [string, () => tfl.LayersModel, boolean][] = [
    ["the bench's cnn32", () => cnn(CNN32), true],
    ['the demo CNN', () => cnn(DEMO), true],
    [
      'first conv 5×5, stride 2, valid, no bias; odd pooling (9 → 4)',
      () =>
        cnn({
          input: [21, 21, 1],
          convs: [{ filters: 8, kernel: 5, strides: 2, padding: 'valid', useBias: false, pool: true }, { filters: 8 }],
          dense: [{ units: 3 }],
        }),
      true,
    ],
    [
      'a later conv with stride 2',
      () => cnn({ input: [16, 16, 3], convs: [{ filters: 8 }, { filters: 8, strides: 2 }], dense: [{ units: 2 }] }),
      false,
    ],
    ['elu', () => cnn({ input: [8, 8, 3], convs: [{ filters: 8, activation: 'elu' }], dense: [{ units: 2 }] }), false],
    ['6 filters', () => cnn({ input: [8, 8, 3], convs: [{ filters: 6 }], dense: [{ units: 2 }] }), false],
    [
      'a hidden dense layer of 6',
      () => cnn({ input: [8, 8, 3], convs: [{ filters: 8 }], dense: [{ units: 6, activation: 'relu' }, { units: 2 }] }),
      false,
    ],
    [
      'no dense layer at the end',
      () =>
        tfl.sequential({
          layers: [tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3 }), tfl.layers.flatten()],
        }),
      false,
    ],
    [
      'dropout',
      () =>
        tfl.sequential({
          layers: [
            tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3 }),
            tfl.layers.dropout({ rate: 0.5 }),
            tfl.layers.flatten(),
            tfl.layers.dense({ units: 2 }),
          ],
        }),
      true,
    ],
    [
      'dropout of whole channels (a noise shape)',
      () =>
        tfl.sequential({
          layers: [
            tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3 }),
            tfl.layers.dropout({ rate: 0.5, noiseShape: [1, 1, 1, 4] }),
            tfl.layers.flatten(),
            tfl.layers.dense({ units: 2 }),
          ],
        }),
      false,
    ],
    [
      'dropout after the last layer',
      () =>
        tfl.sequential({
          layers: [
            tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3 }),
            tfl.layers.flatten(),
            tfl.layers.dense({ units: 2 }),
            tfl.layers.dropout({ rate: 0.5 }),
          ],
        }),
      false,
    ],
    [
      'batch norm',
      () =>
        tfl.sequential({
          layers: [
            tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3 }),
            tfl.layers.batchNormalization(),
            tfl.layers.flatten(),
            tfl.layers.dense({ units: 2 }),
          ],
        }),
      false,
    ],
    [
      'average pooling',
      () =>
        tfl.sequential({
          layers: [
            tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3 }),
            tfl.layers.averagePooling2d({ poolSize: 2 }),
            tfl.layers.flatten(),
            tfl.layers.dense({ units: 2 }),
          ],
        }),
      false,
    ],
    [
      '3×3 pooling',
      () =>
        tfl.sequential({
          layers: [
            tfl.layers.conv2d({ inputShape: [9, 9, 3], filters: 4, kernelSize: 3 }),
            tfl.layers.maxPooling2d({ poolSize: 3 }),
            tfl.layers.flatten(),
            tfl.layers.dense({ units: 2 }),
          ],
        }),
      false,
    ],
    [
      "an MLP (the dense step's)",
      () =>
        tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [8], units: 4 }), tfl.layers.dense({ units: 2 })] }),
      false,
    ],
  ];
  for (const [name, build, ok] of cases) {
    const model = build();
    assert.equal(convStackOf(model) !== null, ok, name);
    model.dispose();
  }
  const frozen = cnn(CNN32);
  frozen.layers[0].trainable = false;
  assert.equal(convStackOf(frozen), null, 'a frozen layer');
  frozen.dispose();
  const plan = convStackOf(cnn(DEMO))!;
  assert.deepEqual(
    plan.map((l) => l.kind),
    ['conv', 'pool', 'conv', 'pool', 'flatten', 'dense', 'dense'],
  );
});

test('the conv step: loss and every gradient equal tf.variableGrads on the same batch, and it leaves only its gradients', async () => {
  await initBackend('wasm');
  const configs: { name: string; net: Cnn; task: 'binary' | 'multiclass'; classes: number; batch: number }[] = [
    { name: 'cnn32', net: CNN32, task: 'multiclass', classes: 2, batch: 16 },
    { name: 'demo CNN', net: DEMO, task: 'multiclass', classes: 10, batch: 7 },
    {
      name: 'binary (one logit, padded to 4), stride-2 5×5 valid first layer without bias, odd pooling, linear conv',
      task: 'binary',
      classes: 1,
      batch: 5,
      net: {
        input: [21, 21, 1],
        convs: [
          { filters: 8, kernel: 5, strides: 2, padding: 'valid', useBias: false, pool: true },
          { filters: 12, activation: 'linear' },
        ],
        dense: [{ units: 1 }],
      },
    },
    {
      name: 'Winograd layers (16 → 16 → 32), last dense of 4 (no padding)',
      task: 'multiclass',
      classes: 4,
      batch: 3,
      net: {
        input: [10, 10, 16],
        convs: [{ filters: 16 }, { filters: 32, pool: true }],
        dense: [{ units: 8, activation: 'relu' }, { units: 4 }],
      },
    },
  ];
  for (const c of configs) {
    const rng = new Rng(11);
    const n = 24;
    const size = c.net.input.reduce((a, b) => a * b, 1);
    const xData = Float32Array.from({ length: n * size }, () => (rng.next() < 0.2 ? 0 : rng.normal()));
    const width = c.task === 'binary' ? 1 : c.classes;
    const labels = Int32Array.from({ length: n }, () => rng.int(c.task === 'binary' ? 2 : width));
    const t = lossTargets(
      'pw',
      c.task,
      labels,
      width,
      Float32Array.from({ length: n * width }, () => rng.next()),
      { minWeight: 0.5, gamma: 2 },
    );
    const model = cnn(c.net);
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const step = convStepFor(model, variables);
    assert.ok(step, `${c.name}: the conv step applies`);
    const x = tf.tensor4d(xData, [n, ...c.net.input]);
    const rows = Int32Array.from({ length: c.batch }, () => rng.int(n));
    const before = tf.memory().numTensors;
    const heapData = tf.engine().backend.numDataIds();
    const ours = step.run(c.task, x, rows, t.targets, t.weights);
    assert.equal(
      tf.engine().backend.numDataIds() - heapData,
      Object.keys(ours.grads).length,
      `${c.name}: nothing left on the heap but the gradients`,
    );
    const reference = tf.variableGrads(() => {
      const xb = tf.gather(x, tf.tensor1d(rows, 'int32'));
      return weightedCrossEntropyOnHost(
        c.task,
        model.apply(xb, { training: true }) as tf.Tensor2D,
        t.targets,
        t.weights,
        rows,
      );
    }, variables);
    assert.ok(
      Math.abs(ours.loss - reference.value.dataSync()[0]) < 1e-5 * Math.max(1, Math.abs(ours.loss)),
      `${c.name}: loss ${ours.loss} vs ${reference.value.dataSync()[0]}`,
    );
    assert.deepEqual(Object.keys(ours.grads).sort(), Object.keys(reference.grads).sort());
    for (const name of Object.keys(reference.grads)) {
      assert.deepEqual(ours.grads[name].shape, reference.grads[name].shape, name);
      const d = relDiff(ours.grads[name].dataSync(), reference.grads[name].dataSync());
      assert.ok(d < 1e-5, `${c.name} ${name}: relative difference ${d}`);
    }
    assert.equal(
      tf.memory().numTensors - before,
      Object.keys(ours.grads).length + Object.keys(reference.grads).length + 1,
      'the step leaves only its gradients',
    );
    tf.dispose([ours.grads, reference.grads, reference.value, x]);
    model.dispose();
  }
});

test("convStepFor: not on cpu, not for variables other than the model's; bad samples are refused", async () => {
  await initBackend('wasm');
  const model = cnn(CNN32);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const step = convStepFor(model, vars);
  assert.ok(step);
  assert.equal(convStepFor(model, vars.slice(1)), null, 'a subset of the variables');
  const wrong = tf.zeros([4, 28, 28, 3]);
  assert.throws(
    () => step.run('multiclass', wrong, Int32Array.of(0), [1, 0], [1]),
    /the samples are \[4,28,28,3\], the model takes \[32,32,3\]/,
  );
  wrong.dispose();
  await useCpu();
  assert.equal(convStepFor(model, vars), null, 'cpu backend: the tfjs path');
  model.dispose();
});

/** 96 noisy 12×12×3 images, two classes: class 1 has a brighter top-left quarter; every 4th a validation row. */
function brightQuarter(seed: number) {
  const rng = new Rng(seed);
  const n = 96;
  const input: [number, number, number] = [12, 12, 3];
  const size = 12 * 12 * 3;
  const xData = Float32Array.from({ length: n * size }, () => rng.normal());
  const labels = Int32Array.from({ length: n }, (_, i) => i % 2);
  for (let i = 0; i < n; i++)
    if (labels[i])
      for (let y = 0; y < 6; y++)
        for (let xx = 0; xx < 6; xx++) for (let ch = 0; ch < 3; ch++) xData[i * size + (y * 12 + xx) * 3 + ch] += 1.5;
  return { input, data: ceTrainingData(xData, input, labels, 'multiclass', 2, 4) };
}

test('training a CNN through the conv step follows the tfjs path on wasm (same seed: weights within float rounding)', async () => {
  await initBackend('wasm');
  const { input, data } = brightQuarter(5);
  const build = () =>
    cnn({
      input,
      convs: [
        { filters: 8, pool: true },
        { filters: 16, pool: true },
      ],
      dense: [{ units: 8, activation: 'relu' }, { units: 2 }],
    });
  const { summaries, weights } = await trainWithAndWithoutHeapStep(build, data, {
    task: 'multiclass',
    epochs: 6,
    batchSize: 16,
    learningRate: 0.01,
    patience: 0,
    seed: 5,
  });
  assert.ok(summaries[0].validationAccuracy! > 0.9, `learns: ${summaries[0].validationAccuracy}`);
  assert.ok(
    Math.abs(summaries[0].finalTrainLoss - summaries[1].finalTrainLoss) < 1e-4,
    `${summaries[0].finalTrainLoss} vs ${summaries[1].finalTrainLoss}`,
  );
  // Within float rounding, as Adam amplifies it: a weight whose gradient is rounding noise around zero
  // moves by ±lr either way (measured: most weights within 3e-7, the second convolution's 2e-4 to 4e-4
  // of its largest weight; a wrong gradient moves them by far more).
  weights[0].forEach((w, i) =>
    assert.ok(relDiff(w, weights[1][i]) < 2e-3, `weights ${i}: ${relDiff(w, weights[1][i])}`),
  );
  tf.dispose([data.x, data.targets, data.weights]);
});

test('a CNN with dropout layers (as most Keras CNNs have) trains through the conv step to the weights of the tfjs path', async () => {
  await initBackend('wasm');
  const { input, data } = brightQuarter(7);
  // Dropout on the images themselves (before the first layer, which passes no gradient back), after a pooling
  // (4-D), after the flatten and between dense layers, as the shared Keras and tfjs CNNs have it; one with a seed
  // of its own (the same mask every step), one that drops nothing.
  const build = (rate: number) => () =>
    tfl.sequential({
      layers: [
        tfl.layers.dropout({ inputShape: input, rate: 0.1 }),
        tfl.layers.conv2d({
          filters: 8,
          kernelSize: 3,
          padding: 'same',
          activation: 'relu',
          kernelInitializer: init(1),
        }),
        tfl.layers.maxPooling2d({ poolSize: 2 }),
        tfl.layers.dropout({ rate }),
        tfl.layers.conv2d({
          filters: 16,
          kernelSize: 3,
          padding: 'same',
          activation: 'relu',
          kernelInitializer: init(2),
        }),
        tfl.layers.maxPooling2d({ poolSize: 2 }),
        tfl.layers.flatten(),
        tfl.layers.dropout({ rate, seed: 11 }),
        tfl.layers.dense({ units: 8, activation: 'relu', kernelInitializer: init(3) }),
        tfl.layers.dropout({ rate: 0 }),
        tfl.layers.dense({ units: 2, kernelInitializer: init(4) }),
      ],
    });
  assert.deepEqual(
    convStackOf(build(0.5)())!.map((l) => l.kind),
    ['dropout', 'conv', 'pool', 'dropout', 'conv', 'pool', 'flatten', 'dropout', 'dense', 'dropout', 'dense'],
  );
  const opts = { task: 'multiclass', epochs: 4, batchSize: 16, learningRate: 0.01, patience: 0, seed: 9 } as const;
  const runs = [];
  const rates = [0.5, 0.25];
  for (const rate of rates) runs.push(await trainWithAndWithoutHeapStep(build(rate), data, opts));
  for (const [r, { summaries, weights }] of runs.entries()) {
    assert.ok(
      Math.abs(summaries[0].finalTrainLoss - summaries[1].finalTrainLoss) < 1e-4,
      `rate ${rates[r]}: ${summaries[0].finalTrainLoss} vs ${summaries[1].finalTrainLoss}`,
    );
    weights[0].forEach((w, i) =>
      assert.ok(relDiff(w, weights[1][i]) < 2e-3, `rate ${rates[r]}, weights ${i}: ${relDiff(w, weights[1][i])}`),
    );
  }
  // A different mask would train elsewhere: the two rates end apart, by far more than the paths do.
  assert.ok(relDiff(runs[0].weights[0][6], runs[1].weights[0][6]) > 0.05, 'the rate matters');
  tf.dispose([data.x, data.targets, data.weights]);
});

test('issue 25: the CNN `fairprune train` makes, pruned as taylor-filter pruned it, steps on a heap that held NaN as the cpu backend does', async () => {
  // conv16-pool-conv32-pool-dense64-dense10 on 28×28 grey digits loaded as 3 channels, with conv2 keeping
  // 11 of its 32 filters and dense1 23 of its 64 units (their kernel slices, biases and the consumers'
  // input rows zeroed, as the masks leave them). Every float32 tensor the wasm backend allocates starts
  // full of NaN, as the heap may hold anything: the step read the padding columns of the logits'
  // gradient (10 classes, padded to 12) without writing them, and NaN × the zero rows of the padded
  // weights made every gradient below the last layer NaN.
  await initBackend('wasm');
  const rng = new Rng(25);
  const B = 4;
  const n = 8;
  const pixels = 28 * 28;
  const xData = new Float32Array(n * pixels * 3);
  for (let i = 0; i < n * pixels; i++) {
    // Noisy background, exact zeros and ones where it clips, the same value in all three channels.
    const v = Math.min(1, Math.max(0, 0.2 + 0.3 * rng.normal() + (rng.next() < 0.15 ? 0.8 : 0)));
    xData.fill(v, 3 * i, 3 * i + 3);
  }
  const model = cnn(DEMO);
  const removed = (channels: number, keep: number) =>
    rng
      .fork(channels)
      .shuffle(Array.from({ length: channels }, (_, c) => c))
      .slice(keep);
  const conv2Gone = removed(32, 11);
  const dense1Gone = removed(64, 23);
  const weights = model.getWeights().map((w) => Float32Array.from(w.dataSync()));
  // getWeights order: conv1 kernel, bias; conv2 kernel, bias; dense1 kernel [1568, 64], bias; dense2 kernel [64, 10], bias.
  for (let i = 0; i < weights[2].length; i++) if (conv2Gone.includes(i % 32)) weights[2][i] = 0;
  for (const c of conv2Gone) weights[3][c] = 0;
  for (let i = 0; i < weights[4].length; i++)
    if (conv2Gone.includes(Math.floor(i / 64) % 32) || dense1Gone.includes(i % 64)) weights[4][i] = 0;
  for (const u of dense1Gone) weights[5][u] = 0;
  for (let i = 0; i < weights[6].length; i++) if (dense1Gone.includes(Math.floor(i / 10))) weights[6][i] = 0;
  model.setWeights(model.weights.map((w, i) => tf.tensor(weights[i], w.shape as number[])));
  const labels = Int32Array.from({ length: n }, () => rng.int(10));
  const t = lossTargets(
    'pw',
    'multiclass',
    labels,
    10,
    Float32Array.from({ length: n * 10 }, () => rng.next()),
    { minWeight: 0.75, gamma: 5 },
  );
  const rows = Int32Array.from({ length: B }, (_, i) => i + 2);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const step = convStepFor(model, variables);
  assert.ok(step, 'the conv step takes the model');
  const x = tf.tensor4d(xData, [n, 28, 28, 3]);
  const restore = poisonHeapOutputs();
  let ours: { loss: number; grads: Record<string, tf.Tensor> };
  try {
    ours = step.run('multiclass', x, rows, t.targets, t.weights);
  } finally {
    restore();
  }
  const batch = new Float32Array(B * pixels * 3);
  rows.forEach((r, i) => batch.set(xData.subarray(r * pixels * 3, (r + 1) * pixels * 3), i * pixels * 3));
  const pick = (a: ArrayLike<number>, w: number) =>
    Float32Array.from({ length: B * w }, (_, i) => a[rows[Math.floor(i / w)] * w + (i % w)]);
  const ref = await referenceOnCpu(
    () => cnn(DEMO),
    weights,
    { values: batch, shape: [B, 28, 28, 3] },
    'multiclass',
    pick(t.targets, 10),
    pick(t.weights, 1),
  );
  assert.ok(Math.abs(ours.loss - ref.loss) < 1e-5 * Math.max(1, ref.loss), `loss ${ours.loss} vs cpu ${ref.loss}`);
  variables.forEach((v, i) => {
    const g = ours.grads[v.name].dataSync();
    assert.equal(
      firstNonFinite(g, ref.grads[i]),
      -1,
      `${v.name}: a non-finite gradient where the cpu backend's is finite`,
    );
    const d = scaledDiff(g, ref.grads[i]);
    assert.ok(d < 1e-4, `${v.name}: ${d} from the cpu backend's gradient`);
  });
  tf.dispose([Object.values(ours.grads), x]);
  model.dispose();
});
