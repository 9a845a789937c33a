/**
 * Schedules (gradual polynomial decay, iterative) and every structured method × schedule driven
 * through the real training loop on small conv and dense models: the target is reached, removed
 * channels stay exactly zero, removal only grows, and the shrunk model predicts what the masked one
 * does.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { useCpu } from '../helpers';
import { analyzeModel, maxOutputDifference, shrinkModel, StructuredPruning } from '../../src/core/structured';
import { gradualSchedule, iterativeSchedule, normalizeSchedule } from '../../src/core/pruning/schedules';
import { oneShot, scheduleByName, ScheduledPruning, PRUNING_METHODS, measuredSparsity } from '../../src/core/pruning';
import type { StructuredMethod } from '../../src/core/pruning';
import { prunableKernels } from '../../src/core/model-io';
import { train } from '../../src/core/train';
import type { TrainingData } from '../../src/core/train';
import { Rng } from '../../src/core/rng';
import { UserError } from '../../src/core/errors';

test('gradual schedule follows s_f + (s_i − s_f)(1 − (t − t_b)/(t_e − t_b))^p and updates every `frequency` steps', () => {
  const s = gradualSchedule({ begin: 0.1, end: 0.6, frequency: 10, power: 3 });
  const total = 100; // t_b = 10, t_e = 60
  const expect = (t: number) => (t < 10 ? 0 : t >= 60 ? 0.8 : 0.8 + (0 - 0.8) * Math.pow(1 - (t - 10) / 50, 3));
  for (const t of [0, 5, 10, 20, 30, 45, 59, 60, 99])
    assert.ok(Math.abs(s.sparsityAt(t, total, 0.8) - expect(t)) < 1e-12, `step ${t}`);
  assert.ok(Math.abs(s.sparsityAt(20, total, 0.8) - (0.8 - 0.8 * 0.8 ** 3)) < 1e-12);
  const updates = Array.from({ length: total }, (_, t) => t).filter((t) => s.updatesAt(t, total));
  assert.deepEqual(updates, [10, 20, 30, 40, 50, 60]);
  // monotone, and with no fine-tuning the target is applied at once
  let prev = -1;
  for (let t = 0; t < total; t++) {
    const v = s.sparsityAt(t, total, 0.8);
    assert.ok(v >= prev);
    prev = v;
  }
  assert.equal(s.sparsityAt(0, 0, 0.7), 0.7);
  assert.ok(s.updatesAt(0, 0));
});

test('iterative schedule: equal rounds every n steps, then holds', () => {
  const s = iterativeSchedule({ every: 5, rounds: 4 });
  const updates = Array.from({ length: 40 }, (_, t) => t).filter((t) => s.updatesAt(t, 40));
  assert.deepEqual(updates, [0, 5, 10, 15]);
  assert.deepEqual(
    [0, 4, 5, 10, 15, 39].map((t) => s.sparsityAt(t, 40, 0.8)),
    [0.2, 0.2, 0.4, 0.6000000000000001, 0.8, 0.8],
  );
});

test('schedule options are checked with the option named', () => {
  assert.throws(
    () => normalizeSchedule({ name: 'gradual', begin: 0.5, end: 0.2 }),
    (e: unknown) => e instanceof UserError && e.field === '--schedule-end',
  );
  assert.throws(
    () => normalizeSchedule({ name: 'sometimes' }),
    (e: unknown) => e instanceof UserError && e.field === '--schedule',
  );
  assert.equal(scheduleByName({ name: 'one-shot' }), oneShot);
  assert.equal(scheduleByName({ name: 'gradual' }).name, 'gradual');
});

function seeded(model: tfl.LayersModel, seed: number) {
  const rng = new Rng(seed);
  model.setWeights(
    model.weights.map((w) =>
      tf.tensor(
        Float32Array.from({ length: w.shape.reduce((a: number, d) => a * (d as number), 1) }, () =>
          /variance|gamma/.test(w.originalName) ? 1 : rng.normal() * 0.4,
        ),
        w.shape as number[],
      ),
    ),
  );
}

function makeData(shape: number[], width: number, seed: number): TrainingData {
  const rng = new Rng(seed);
  const n = shape[0];
  const x = tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()),
    shape,
  );
  const labels = Int32Array.from({ length: n }, () => rng.int(width));
  const t = new Float32Array(n * width);
  labels.forEach((l, i) => (t[i * width + l] = 1));
  return {
    x,
    targets: tf.tensor2d(t, [n, width]),
    weights: tf.tensor1d(Float32Array.from({ length: n }, () => 0.75 + 0.5 * rng.next())),
    labels,
    train: Int32Array.from({ length: n }, (_, i) => i),
    validation: new Int32Array(0),
  };
}

const models: Record<string, { make: () => tfl.LayersModel; shape: number[] }> = {
  dense: {
    make: () =>
      tfl.sequential({
        layers: [
          tfl.layers.dense({ inputShape: [6], units: 10, activation: 'relu', name: 'd1' }),
          tfl.layers.dense({ units: 8, activation: 'relu', name: 'd2' }),
          tfl.layers.dense({ units: 3, name: 'out' }),
        ],
      }),
    shape: [48, 6],
  },
  conv: {
    make: () =>
      tfl.sequential({
        layers: [
          tfl.layers.conv2d({
            inputShape: [6, 6, 1],
            filters: 4,
            kernelSize: 3,
            padding: 'same',
            activation: 'relu',
            name: 'c1',
          }),
          tfl.layers.batchNormalization({ name: 'bn' }),
          tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }),
          tfl.layers.conv2d({ filters: 6, kernelSize: 2, activation: 'relu', name: 'c2' }),
          tfl.layers.flatten({ name: 'flat' }),
          tfl.layers.dense({ units: 3, name: 'out' }),
        ],
      }),
    shape: [32, 6, 6, 1],
  },
};

const schedules = {
  'one-shot': () => oneShot,
  gradual: () => gradualSchedule({ begin: 0, end: 0.6, frequency: 2, power: 3 }),
  iterative: () => iterativeSchedule({ every: 3, rounds: 3 }),
};

for (const [modelName, spec] of Object.entries(models)) {
  // Every structured method of the table, so a new one is driven through every schedule too.
  const structured = Object.values(PRUNING_METHODS).filter((m): m is StructuredMethod => m.kind === 'structured');
  for (const method of structured) {
    for (const [scheduleName, schedule] of Object.entries(schedules)) {
      test(`${modelName} model, ${method.name} × ${scheduleName}: target reached, pruned channels stay zero, shrunk = masked`, async () => {
        await useCpu();
        const model = spec.make();
        seeded(model, 21);
        const data = makeData(spec.shape, 3, 22);
        const graph = analyzeModel(model);
        const target = {
          metric: modelName === 'conv' ? ('flops' as const) : ('weights' as const),
          scope: 'layer' as const,
        };
        const pruning = new StructuredPruning(model, graph, {
          method,
          schedule: schedule(),
          target,
          finalSparsity: 0.4,
          skip: new Set(),
          taylor: {
            x: data.x,
            targets: data.targets,
            weights: data.weights,
            indices: data.train.subarray(0, 24),
            task: 'multiclass',
          },
        });
        const steps = 2 * Math.ceil(data.train.length / 8);
        pruning.prepare(steps);
        const removedSizes: number[][] = [];
        const wrapped = {
          beforeStep: (s: number, t: number) => {
            pruning.beforeStep(s, t);
            removedSizes.push([...pruning.removed().values()].map((r) => r.length));
          },
          maskGradient: (n: string, g: tf.Tensor) => pruning.maskGradient(n, g),
          afterStep: () => pruning.afterStep(),
        };
        await train(model, data, {
          task: 'multiclass',
          epochs: 2,
          batchSize: 8,
          learningRate: 0.01,
          patience: 0,
          seed: 3,
          pruning: wrapped,
        });
        assert.ok(pruning.reached >= 0.4 - 1e-9, `reached ${pruning.reached}`);
        // removal only grows over the steps
        for (let i = 1; i < removedSizes.length; i++)
          removedSizes[i].forEach((n, g) => assert.ok(n >= removedSizes[i - 1][g]));
        // the schedule's trajectory: targets rise to the final value, reached follows
        const traj = pruning.trajectory;
        assert.ok(traj.length >= (scheduleName === 'one-shot' ? 1 : 3));
        assert.equal(traj[traj.length - 1].target, 0.4);
        for (let i = 1; i < traj.length; i++)
          assert.ok(traj[i].target >= traj[i - 1].target && traj[i].reached >= traj[i - 1].reached - 1e-12);
        // pruned kernel columns and biases are exactly zero after Adam
        const removed = pruning.removed();
        for (const [layer, gone] of removed) {
          const [k, b] = model.getLayer(layer).getWeights();
          const C = k.shape[k.shape.length - 1];
          const kv = k.dataSync();
          const bv = b.dataSync();
          for (const c of gone) {
            assert.ok(bv[c] === 0, `${layer} bias ${c} = ${bv[c]}`);
            for (let i = c; i < kv.length; i += C) assert.ok(kv[i] === 0, `${layer} kernel ${i} = ${kv[i]}`);
          }
        }
        const shr = await shrinkModel(model, graph, removed);
        const diff = maxOutputDifference(model, shr.model, data.x);
        assert.ok(diff < 1e-4, `max difference ${diff}`);
        shr.model.dispose();
        pruning.dispose();
        [data.x, data.targets, data.weights].forEach((t) => t.dispose());
        model.dispose();
      });
    }
  }
}

test('gradual schedule drives unstructured pruning too: sparsity rises over the steps to the target', async () => {
  await useCpu();
  const model = models.dense.make();
  seeded(model, 31);
  const data = makeData([48, 6], 3, 32);
  const kernels = prunableKernels(model);
  const pruning = new ScheduledPruning(
    kernels,
    PRUNING_METHODS['magnitude-layer'],
    gradualSchedule({ begin: 0, end: 0.5, frequency: 1, power: 3 }),
    0.6,
    new Rng(1),
  );
  const seen: number[] = [];
  const steps = 12;
  pruning.prepare(steps);
  await train(model, data, {
    task: 'multiclass',
    epochs: 2,
    batchSize: 8,
    learningRate: 0.01,
    patience: 0,
    seed: 3,
    pruning: {
      beforeStep: (s, t) => {
        pruning.beforeStep(s, t);
        seen.push(measuredSparsity(kernels));
      },
      maskGradient: (n, g) => pruning.maskGradient(n, g),
      afterStep: () => pruning.afterStep(),
    },
  });
  const s = gradualSchedule({ begin: 0, end: 0.5, frequency: 1, power: 3 });
  seen.forEach((v, t) =>
    assert.ok(Math.abs(v - s.sparsityAt(t, steps, 0.6)) < 0.02, `step ${t}: ${v} vs ${s.sparsityAt(t, steps, 0.6)}`),
  );
  assert.ok(Math.abs(measuredSparsity(kernels) - 0.6) < 0.01);
  pruning.dispose();
  model.dispose();
});
