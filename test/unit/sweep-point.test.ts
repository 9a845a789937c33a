/**
 * A point's training set-up (src/core/sweep-point.ts), where a mutation run found code no other test
 * could tell wrong: the step count handed to pruning schedules, and CEAG's reference (which rows the
 * dense model got right). Expected values are written by hand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { runSession } from '../../src/core/session';
import { saveModel, topologyOf, type LoadedModel } from '../../src/core/model-io';
import { sweepRuntime, type SweepSetup } from '../../src/core/sweep-point';
import { Rng } from '../../src/core/rng';
import { tempDir, useCpu } from '../helpers';
import { request } from '../session-fixture';

test('the step count a point hands its pruning schedule is ⌈training rows / batch⌉ × epochs', async () => {
  await useCpu();
  const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 1, activation: 'sigmoid' })] });
  const x = tf.zeros([1, 2]);
  try {
    // 100 training rows in batches of 32: 4 steps an epoch (the last one 4 rows); 3 epochs: 12 steps.
    const setup = {
      req: { batchSize: 32, epochs: 3 },
      trainRows: new Int32Array(100),
      testRows: new Int32Array([0]),
      teacher: new Float32Array([0.7]),
    } as unknown as SweepSetup;
    const loaded = { model, task: 'binary', numClasses: 2 } as unknown as LoadedModel;
    assert.equal(sweepRuntime(setup, loaded, x, model).steps, 12);
    (setup.req as { epochs: number }).epochs = 1;
    assert.equal(sweepRuntime(setup, loaded, x, model).steps, 4);
  } finally {
    x.dispose();
    model.dispose();
  }
});

/**
 * A model that cannot change (learning rate 0) and whose pruning cannot change a prediction: one
 * sigmoid unit with kernel [10, 0.01, …, 0.07], so the class is the sign of x1 (|x1| ≥ 0.5, the other
 * seven inputs in [−1, 1] add at most 0.28) and the four smallest weights go at sparsity 0.5. The label
 * is the sign of x1 in the north and the opposite in the south: the dense model (and the pruned one)
 * is right on every north row and wrong on every south row.
 */
async function rightNorthWrongSouth(dir: string): Promise<{ csv: string; modelPath: string; features: string[] }> {
  const features = Array.from({ length: 8 }, (_, i) => `x${i + 1}`);
  const rng = new Rng(3);
  const lines = [[...features, 'region', 'decision', 'split'].join(',')];
  const splits = ['train', 'train', 'train', 'val', 'test'];
  for (let i = 0; i < 200; i++) {
    const x1 = (i % 2 ? 1 : -1) * (0.5 + rng.next());
    const rest = Array.from({ length: 7 }, () => 2 * rng.next() - 1);
    const south = i % 3 === 0;
    const positive = south ? x1 < 0 : x1 > 0;
    lines.push([x1, ...rest, south ? 'south' : 'north', positive ? 'denied' : 'approved', splits[i % 5]].join(','));
  }
  const csv = path.join(dir, 'loans.csv');
  fs.writeFileSync(csv, lines.join('\n') + '\n');
  await useCpu();
  const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [8], units: 1, activation: 'sigmoid' })] });
  model.setWeights([tf.tensor2d([10, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07], [8, 1]), tf.zeros([1])]);
  const modelDir = path.join(dir, 'model');
  await saveModel(model, modelDir, topologyOf(model));
  model.dispose();
  return { csv, modelPath: path.join(modelDir, 'model.json'), features };
}

test("CEAG measures its gaps against the dense model's own right and wrong rows; a gradual schedule ending at step 0 prunes before the first step", async () => {
  const dir = tempDir();
  const { csv, modelPath, features } = await rightNorthWrongSouth(dir);
  const results = await runSession(
    request(modelPath, csv, path.join(dir, '.fairprune'), {
      data: { features, ignore: undefined, splitColumn: 'split' },
      sparsities: [0.5],
      losses: ['ceag'],
      epochs: 1,
      batchSize: 32,
      learningRate: 0,
      // 120 training rows: ⌈120 / 32⌉ = 4 steps; the end, 1% of them, rounds to step 0
      schedule: { name: 'gradual', begin: 0, end: 0.01, frequency: 1, power: 3 },
      bootstrapResamples: 0,
      workers: 1,
    }),
  );
  assert.equal(results.status, 'completed');
  const [point] = results.points;
  // the schedule reached its target (4 of the 8 weights) before training: the step count it was given is the session's 4
  assert.equal(point.achievedSparsity, 0.5);
  assert.equal(point.training.steps, 4);
  // nothing changed a prediction: north all right, south all wrong, as for the dense model
  const accuracy = Object.fromEntries(point.evaluation.groups.map((g) => [g.group, g.accuracy.value]));
  assert.deepEqual(accuracy, { 'region=north': 1, 'region=south': 0 });
  // CEAG's excess gap of a group is (dense accuracy − recent accuracy) − (dense overall − recent overall):
  // north (1 − 1) − d, south (0 − 0) − d, where the overall drop d is 0 since the recent accuracies
  // equal the dense ones. So every gap is 0 and no multiplier rises above 0.
  assert.equal(point.objective?.objective, 'ceag');
  assert.equal(point.objective?.steps, 4);
  assert.deepEqual(
    point.objective?.groups.map((g) => [g.group, g.excessGap, g.multiplier]),
    [
      ['region=north', 0, 0],
      ['region=south', 0, 0],
    ],
  );
});
