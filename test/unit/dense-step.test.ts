/**
 * The JavaScript training step for small dense chains (src/core/dense-step.ts): which models take it,
 * its loss and gradients against tf.variableGrads on the same batch, and a training run through it
 * against the tfjs path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../src/core/backend';
import { denseStackOf, denseStepFor, MAX_MULTIPLY_ADDS, multiplyAddsPerStep } from '../../src/core/dense-step';
import { lossTargets, weightedCrossEntropyOnHost } from '../../src/core/losses';
import { train, type TrainingData } from '../../src/core/train';
import { Rng } from '../../src/core/rng';
import { relDiff, useCpu } from '../helpers';

const init = (seed: number) => tfl.initializers.glorotUniform({ seed });

/** An MLP of layers `sizes` (the last linear), with a Dropout of `dropout` after each hidden layer where it is > 0. */
function mlp(sizes: number[], activation: string, useBias = true, dropout = 0): tfl.LayersModel {
  return tfl.sequential({
    layers: sizes.slice(1).flatMap((units, i) => {
      const last = i === sizes.length - 2;
      const dense = tfl.layers.dense({
        ...(i === 0 ? { inputShape: [sizes[0]] } : {}),
        units,
        useBias,
        activation: (last ? 'linear' : activation) as 'relu',
        kernelInitializer: init(10 + i),
        biasInitializer: tfl.initializers.randomNormal({ seed: 20 + i, stddev: 0.3 }),
      });
      return dropout > 0 && !last ? [dense, tfl.layers.dropout({ rate: dropout })] : [dense];
    }),
  });
}

test('denseStackOf: chains of Dense layers (sequential or functional) and nothing else', async () => {
  await initBackend('wasm');
  const models: [string, tfl.LayersModel, boolean][] = [];
  models.push(['sequential relu', mlp([5, 8, 3], 'relu'), true]);
  models.push(['tanh, no bias', mlp([5, 8, 3], 'tanh', false), true]);
  const input = tfl.input({ shape: [4] });
  const h = tfl.layers.dense({ units: 6, activation: 'sigmoid' }).apply(input) as tfl.SymbolicTensor;
  models.push([
    'functional',
    tfl.model({ inputs: input, outputs: tfl.layers.dense({ units: 2 }).apply(h) as tfl.SymbolicTensor }),
    true,
  ]);
  models.push(['dropout after each hidden layer', mlp([5, 8, 8, 3], 'relu', true, 0.5), true]);
  const chain = (...layers: tfl.layers.Layer[]) => tfl.sequential({ layers });
  const drop = (first = false) => tfl.layers.dropout({ rate: 0.5, ...(first ? { inputShape: [4] } : {}) });
  models.push(['dropout on the features', chain(drop(true), tfl.layers.dense({ units: 2 })), false]);
  const dense = () => tfl.layers.dense({ inputShape: [4], units: 2 });
  models.push(['dropout on the logits', chain(dense(), drop()), false]);
  models.push(['two dropouts in a row', chain(dense(), drop(), drop(), tfl.layers.dense({ units: 2 })), false]);
  models.push([
    'softsign',
    tfl.sequential({
      layers: [tfl.layers.dense({ inputShape: [4], units: 6, activation: 'softsign' }), tfl.layers.dense({ units: 2 })],
    }),
    false,
  ]);
  models.push([
    'conv',
    tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [4, 4, 1], filters: 2, kernelSize: 2 }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 2 }),
      ],
    }),
    false,
  ]);
  const frozen = mlp([4, 6, 2], 'relu');
  frozen.layers[0].trainable = false;
  models.push(['a frozen layer', frozen, false]);
  const a = tfl.input({ shape: [3] });
  const b = tfl.input({ shape: [3] });
  const joined = tfl.layers.concatenate().apply([a, b]) as tfl.SymbolicTensor;
  models.push([
    'two inputs',
    tfl.model({ inputs: [a, b], outputs: tfl.layers.dense({ units: 2 }).apply(joined) as tfl.SymbolicTensor }),
    false,
  ]);
  const i2 = tfl.input({ shape: [4] });
  const d1 = tfl.layers.dense({ units: 4 });
  const twice = d1.apply(d1.apply(i2)) as tfl.SymbolicTensor;
  models.push([
    'a layer called twice',
    tfl.model({ inputs: i2, outputs: tfl.layers.dense({ units: 2 }).apply(twice) as tfl.SymbolicTensor }),
    false,
  ]);
  for (const [name, model, ok] of models) {
    assert.equal(denseStackOf(model) !== null, ok, name);
    model.dispose();
  }
  const plan = denseStackOf(mlp([24, 32, 16, 2], 'relu'))!;
  assert.deepEqual(
    plan.map((l) => [l.inputs, l.units, l.activation, l.bias !== null]),
    [
      [24, 32, 'relu', true],
      [32, 16, 'relu', true],
      [16, 2, 'linear', true],
    ],
  );
  assert.equal(multiplyAddsPerStep(plan, 64), 64 * (24 * 32 * 2 + 32 * 16 * 3 + 16 * 2 * 3));
});

test('the dense step: loss and every gradient equal tf.variableGrads on the same batch (activations, no bias, odd sizes, binary and multiclass)', async () => {
  await initBackend('wasm');
  const configs: {
    sizes: number[];
    activation: string;
    useBias?: boolean;
    task: 'binary' | 'multiclass';
    batch: number;
  }[] = [
    { sizes: [24, 32, 16, 3], activation: 'relu', task: 'multiclass', batch: 64 },
    { sizes: [5, 7, 1], activation: 'tanh', task: 'binary', batch: 9 }, // odd batch, widths not multiples of 2 or 4
    { sizes: [6, 9, 10, 2], activation: 'sigmoid', useBias: false, task: 'multiclass', batch: 13 },
    { sizes: [3, 1], activation: 'linear', task: 'binary', batch: 1 }, // logistic regression, one sample
  ];
  for (const c of configs) {
    const rng = new Rng(7);
    const n = 40;
    const features = c.sizes[0];
    const width = c.sizes.at(-1)!;
    const xData = Float32Array.from({ length: n * features }, () => (rng.next() < 0.2 ? 0 : rng.normal()));
    const labels = Int32Array.from({ length: n }, () => rng.int(c.task === 'binary' ? 2 : width));
    const t = lossTargets(
      'pw',
      c.task,
      labels,
      width,
      Float32Array.from({ length: n * width }, () => rng.next()),
      { minWeight: 0.5, gamma: 2 },
    );
    const model = mlp(c.sizes, c.activation, c.useBias ?? true);
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const step = denseStepFor(model, variables, c.batch);
    assert.ok(step, `${JSON.stringify(c)}: the dense step applies`);
    const x = tf.tensor2d(xData, [n, features]);
    const rows = Int32Array.from({ length: c.batch }, () => rng.int(n));
    const before = tf.memory().numTensors;
    const ours = step.run(c.task, x, rows, t.targets, t.weights);
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
      `${JSON.stringify(c)}: loss ${ours.loss} vs ${reference.value.dataSync()[0]}`,
    );
    assert.deepEqual(Object.keys(ours.grads).sort(), Object.keys(reference.grads).sort());
    for (const name of Object.keys(reference.grads)) {
      assert.deepEqual(ours.grads[name].shape, reference.grads[name].shape, name);
      const d = relDiff(ours.grads[name].dataSync(), reference.grads[name].dataSync());
      assert.ok(d < 1e-5, `${JSON.stringify(c)} ${name}: relative difference ${d}`);
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

test("denseStepFor: not on cpu, not for a model too big for plain loops, not for variables other than the model's", async () => {
  await initBackend('wasm');
  const small = mlp([8, 16, 2], 'relu');
  const vars = small.trainableWeights.map((w) => w.read() as tf.Variable);
  assert.ok(denseStepFor(small, vars, 64));
  assert.equal(denseStepFor(small, vars.slice(1), 64), null, 'a subset of the variables');
  const wide = mlp([512, 512, 256, 10], 'relu');
  assert.ok(multiplyAddsPerStep(denseStackOf(wide)!, 64) > MAX_MULTIPLY_ADDS);
  assert.equal(
    denseStepFor(
      wide,
      wide.trainableWeights.map((w) => w.read() as tf.Variable),
      64,
    ),
    null,
    'too wide: XNNPACK is faster',
  );
  wide.dispose();
  await useCpu();
  assert.equal(denseStepFor(small, vars, 64), null, 'cpu backend: the tfjs path');
  small.dispose();
});

test('training through the dense step follows the tfjs path on wasm (same seed: weights within float rounding)', async () => {
  await initBackend('wasm');
  const rng = new Rng(3);
  const n = 500;
  const xData = Float32Array.from({ length: n * 6 }, () => rng.normal());
  const labels = Int32Array.from({ length: n }, (_, i) => (xData[i * 6] + xData[i * 6 + 1] > 0 ? 1 : 0));
  const t = lossTargets('ce', 'binary', labels, 1, undefined, { minWeight: 1, gamma: 0 });
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const data: TrainingData = {
    x: tf.tensor2d(xData, [n, 6]),
    targets: tf.tensor2d(Float32Array.from(t.targets), [n, 1]),
    weights: tf.tensor1d(Float32Array.from(t.weights)),
    labels,
    train: all.filter((i) => i % 5 !== 0),
    validation: all.filter((i) => i % 5 === 0),
  };
  for (const [name, build] of [
    ['relu', () => mlp([6, 12, 8, 1], 'relu')],
    // tanh's gradient reads the layer's outputs before the dropout, the next layer its outputs after it.
    ['tanh with dropout after each hidden layer', () => mlp([6, 12, 8, 1], 'tanh', true, 0.3)],
  ] as const)
    await trainsAlike(name, build, data);
  tf.dispose([data.x, data.targets, data.weights]);
});

/** Trains `build()` with the dense step and on tfjs's tape, same seed: losses and weights within float rounding. */
async function trainsAlike(name: string, build: () => tfl.LayersModel, data: TrainingData): Promise<void> {
  const weights: number[][][] = [];
  const summaries = [];
  for (const denseStep of [true, false]) {
    const model = build();
    if (denseStep) assert.ok(denseStackOf(model), `${name}: the dense step takes it`);
    summaries.push(
      await train(model, data, {
        task: 'binary',
        epochs: 8,
        batchSize: 32,
        learningRate: 0.03,
        patience: 0,
        seed: 5,
        denseStep,
      }),
    );
    weights.push(model.getWeights().map((w) => Array.from(w.dataSync())));
    model.dispose();
  }
  assert.ok(summaries[0].validationAccuracy! > 0.9, `${name} learns: ${summaries[0].validationAccuracy}`);
  assert.ok(
    Math.abs(summaries[0].finalTrainLoss - summaries[1].finalTrainLoss) < 1e-4,
    `${name}: ${summaries[0].finalTrainLoss} vs ${summaries[1].finalTrainLoss}`,
  );
  weights[0].forEach((w, i) =>
    assert.ok(relDiff(w, weights[1][i]) < 1e-4, `${name}, weights ${i}: ${relDiff(w, weights[1][i])}`),
  );
}
