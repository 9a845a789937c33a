import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { train, predictProbabilities } from '../../src/core/train';
import type { TrainingData } from '../../src/core/train';
import { lossTargets, weightedCrossEntropyAndGradient } from '../../src/core/losses';
import {
  Ceag,
  CEAG_BUFFER,
  GroupDro,
  groupBalancedOrder,
  groupBalancedTraining,
  groupBalancedWeights,
  batchReweightingFor,
} from '../../src/core/objectives';
import type { GroupContext } from '../../src/core/objectives';
import { parseLossNames } from '../../src/core/options';
import { Rng } from '../../src/core/rng';
import type { LossName } from '../../src/protocol/results';
import { useCpu } from '../helpers';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('group-balanced: inverse group counts over the training rows, mean 1, every group the same total', () => {
  // rows 0-2 group a (train), row 3 group b (train), row 4 group b (test), row 5 group c (test only)
  const ctx: GroupContext = { groupIds: [0, 0, 0, 1, 1, 2], groupNames: ['a', 'b', 'c'], trainRows: [0, 1, 2, 3] };
  const { weights, record } = groupBalancedWeights(ctx);
  // N = 4 training rows, G = 2 groups with training rows: a 4 / (2 · 3), b 4 / (2 · 1); c has none: 1
  assert.deepEqual(
    Array.from(weights).map((w) => +w.toFixed(12)),
    [0.666666666667, 0.666666666667, 0.666666666667, 2, 2, 1],
  );
  close((weights[0] + weights[1] + weights[2] + weights[3]) / 4, 1);
  close(weights[0] * 3, weights[3] * 1);
  assert.deepEqual(
    record.groups.map((g) => [g.group, g.trainingRows]),
    [
      ['a', 3],
      ['b', 1],
      ['c', 0],
    ],
  );
  // the loss's targets are the one-hot labels, its weights these
  const t = lossTargets(
    'group-balanced',
    'binary',
    [1, 0, 1, 0, 1, 0],
    1,
    undefined,
    { minWeight: 0.3, gamma: 1 },
    ctx,
  );
  assert.deepEqual(Array.from(t.targets), [1, 0, 1, 0, 1, 0]);
  assert.deepEqual(Array.from(t.weights), Array.from(weights));
  assert.throws(
    () => lossTargets('group-balanced', 'binary', [1], 1, undefined, { minWeight: 0.3, gamma: 1 }),
    /subgroups/,
  );
});

test("group-balanced batches: each epoch takes N rows, every group an equal share, a group's rows cycled before any recurs", () => {
  // 10 training rows: 8 of a (rows 0-7), 2 of b (rows 8, 9); row 10 (b) and row 11 (c) are not training rows
  const ctx: GroupContext = {
    groupIds: [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2],
    groupNames: ['a', 'b', 'c'],
    trainRows: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  };
  const rng = new Rng(5);
  const nextEpoch = groupBalancedOrder(ctx);
  const seen = new Map<number, number>();
  for (let epoch = 0; epoch < 4; epoch++) {
    const order = nextEpoch(rng);
    assert.equal(order.length, 10, 'as many rows as the data has: the same steps as ce');
    const count = (g: number) => Array.from(order).filter((r) => ctx.groupIds[r] === g).length;
    // N / G = 5 rows for each of the 2 groups that have training rows
    assert.deepEqual([count(0), count(1), count(2)], [5, 5, 0]);
    const b = Array.from(order).filter((r) => r >= 8);
    // b's 2 rows fill 5 slots: each of them 2 or 3 times (cycled, never one row 4 times)
    assert.ok(
      [8, 9].every((r) => [2, 3].includes(b.filter((x) => x === r).length)),
      `b's rows: ${b}`,
    );
    // a's 8 rows fill 5 slots: a row comes up twice in one epoch only where its deck ran out and was reshuffled
    const a = Array.from(order).filter((r) => r < 8);
    assert.ok(new Set(a).size >= 4, `a's rows: ${a}`);
    assert.ok(!order.includes(10) && !order.includes(11), 'only training rows');
    for (const r of order) seen.set(r, (seen.get(r) ?? 0) + 1);
  }
  // a's rows are dealt from a deck across epochs: 20 slots for 8 rows, so each came up 2 or 3 times
  for (let r = 0; r < 8; r++)
    assert.ok([2, 3].includes(seen.get(r)!), `row ${r} came up ${seen.get(r)} times in 4 epochs`);
  // the same seed, the same order
  assert.deepEqual(groupBalancedOrder(ctx)(new Rng(9)), groupBalancedOrder(ctx)(new Rng(9)));
  // 7 rows over 2 groups: 4 and 3, or 3 and 4
  const odd: GroupContext = {
    groupIds: [0, 0, 0, 0, 0, 0, 1],
    groupNames: ['a', 'b'],
    trainRows: [0, 1, 2, 3, 4, 5, 6],
  };
  const o = groupBalancedOrder(odd)(new Rng(1));
  assert.equal(o.length, 7);
  const nb = Array.from(o).filter((r) => r === 6).length;
  assert.ok(nb === 3 || nb === 4, `b has ${nb} of 7`);
});

test("group-aware objectives train on balanced batches; group-balanced's training rows then weigh 1, its others keep their weights", () => {
  const ctx: GroupContext = { groupIds: [0, 0, 0, 1, 1], groupNames: ['a', 'b'], trainRows: [0, 1, 2, 3] };
  const { weights } = groupBalancedWeights(ctx);
  const gb = groupBalancedTraining('group-balanced', ctx, weights)!;
  // rows 0-3 train (weight 1 under balanced sampling); row 4 (b, not a training row) keeps 4 / (2 · 1) = 2
  assert.deepEqual(Array.from(gb.trainWeights), [1, 1, 1, 1, 2]);
  const order = gb.epochOrder(new Rng(3));
  assert.equal(Array.from(order).filter((r) => r === 3).length, 2, "b's one row fills half the epoch");
  for (const loss of ['group-dro', 'ceag'] as const) {
    const t = groupBalancedTraining(loss, ctx, [1, 1, 1, 1, 1])!;
    assert.deepEqual(Array.from(t.trainWeights), [1, 1, 1, 1, 1], `${loss} keeps its weights`);
  }
  for (const loss of ['ce', 'pw', 'kd'] as const)
    assert.equal(groupBalancedTraining(loss, ctx, [1, 1, 1, 1, 1]), null, `${loss} keeps the data's mix`);
});

test("ceag on a batch that is not in the data's mix: L weighs the groups by their training share, so the objective does not depend on the sampling", () => {
  // training shares: a 6/8, b 2/8; a balanced batch: 2 of a, 2 of b
  const ctx: GroupContext = {
    groupIds: [0, 0, 0, 0, 0, 0, 1, 1],
    groupNames: ['a', 'b'],
    trainRows: [0, 1, 2, 3, 4, 5, 6, 7],
  };
  const ceag = new Ceag(ctx, new Uint8Array(8).fill(1), 0.02, 0.5);
  const rows = [0, 1, 6, 7];
  const ce = Float64Array.from([0.2, 0.4, 1.0, 2.0]);
  // λ = 0: mean_i w_i CE_i = 0.75 · L_a + 0.25 · L_b = 0.75 · 0.3 + 0.25 · 1.5 = 0.6
  const w1 = ceag.step(rows, ce, Uint8Array.from([1, 1, 0, 0]));
  assert.deepEqual(
    Array.from(w1).map((w) => +w.toFixed(12)),
    [1.5, 1.5, 0.5, 0.5],
  );
  close((w1[0] * 0.2 + w1[1] * 0.4 + w1[2] * 1.0 + w1[3] * 2.0) / 4, 0.6);
  // ψ_b = (1 − 0) − (1 − 0.75) = 0.75 (A = (6 · 1 + 2 · 0) / 8), so λ_b = 0.5 · (0.75 − 0.02) = 0.365
  close(ceag.multipliers[1], 0.365);
  const lb = ceag.multipliers[1];
  const w2 = ceag.step(rows, ce, Uint8Array.from([1, 1, 1, 1]));
  // L + λ_b (L_b − L) with L = 0.6: w_a = 4 · 0.75 · (1 − λ_b) / 2, w_b = 4 · (0.25 · (1 − λ_b) + λ_b) / 2
  close(w2[0], 1.5 * (1 - lb));
  close(w2[2], 2 * (0.25 * (1 - lb) + lb));
  close((w2[0] * 0.2 + w2[1] * 0.4 + w2[2] * 1.0 + w2[3] * 2.0) / 4, 0.6 + lb * (1.5 - 0.6));
});

test("group-dro: the worst group's weight rises by exponentiated gradient; the loss is Σ q_g L_g", () => {
  const ctx: GroupContext = { groupIds: [0, 0, 0, 1], groupNames: ['a', 'b'], trainRows: [0, 1, 2, 3] };
  const dro = new GroupDro(ctx, 0.5);
  assert.deepEqual(Array.from(dro.q), [0.5, 0.5]);
  // batch: rows 0, 1, 3; group a's mean loss 0.2, group b's 2.0
  const w = dro.step([0, 1, 3], Float64Array.from([0.1, 0.3, 2.0]), new Uint8Array(3));
  const qa = 0.5 * Math.exp(0.5 * 0.2);
  const qb = 0.5 * Math.exp(0.5 * 2.0);
  close(dro.q[0], qa / (qa + qb));
  close(dro.q[1], qb / (qa + qb));
  assert.ok(dro.q[1] > dro.q[0], 'the group with the larger loss gains weight');
  // mean_i w_i · CE_i = q_a · L_a + q_b · L_b
  const mean = (w[0] * 0.1 + w[1] * 0.3 + w[2] * 2.0) / 3;
  close(mean, dro.q[0] * 0.2 + dro.q[1] * 2.0);
  // a group absent from the batch keeps its weight before renormalisation (loss 0: factor 1)
  const before = Array.from(dro.q);
  dro.step([0, 1], Float64Array.from([1, 1]), new Uint8Array(2));
  const a = before[0] * Math.exp(0.5);
  close(dro.q[0], a / (a + before[1]));
  const rec = dro.record();
  assert.equal(rec.objective, 'group-dro');
  assert.equal(rec.steps, 2);
  close(rec.groups[0].weight! + rec.groups[1].weight!, 1);
});

test("ceag: a violated constraint's multiplier rises, a satisfied one falls to zero; the gradient is L + Σ λ_g (L_g − L)", () => {
  // 8 training rows: 6 of group a, 2 of group b; the dense model got every row right
  const ctx: GroupContext = {
    groupIds: [0, 0, 0, 0, 0, 0, 1, 1],
    groupNames: ['a', 'b'],
    trainRows: [0, 1, 2, 3, 4, 5, 6, 7],
  };
  const ceag = new Ceag(ctx, new Uint8Array(8).fill(1), 0.02, 0.5);
  close(ceag.denseAccuracy, 1);
  const rows = [0, 1, 2, 6];
  const ce = Float64Array.from([0.1, 0.1, 0.1, 1.5]);
  // step 1: a right, b wrong → A_a = 1, A_b = 0, A = (6 · 1 + 2 · 0) / 8 = 0.75;
  // ψ_b = (1 − 0) − (1 − 0.75) = 0.75 > ε; ψ_a = 0 − 0.25 < ε
  const w1 = ceag.step(rows, ce, Uint8Array.from([1, 1, 1, 0]));
  assert.deepEqual(Array.from(w1), [1, 1, 1, 1], 'the multipliers start at 0: plain cross-entropy');
  close(ceag.multipliers[1], 0.5 * (0.75 - 0.02));
  assert.equal(ceag.multipliers[0], 0);
  // step 2: the weights carry λ_b: w = 1 − λ_b + λ_b · B / n_b for b, 1 − λ_b for a
  const lb = ceag.multipliers[1];
  const w2 = ceag.step(rows, ce, Uint8Array.from([1, 1, 1, 1]));
  close(w2[3], 1 - lb + lb * 4);
  close(w2[0], 1 - lb);
  // mean_i w_i CE_i = L + λ_b (L_b − L)
  const L = (0.1 * 3 + 1.5) / 4;
  close((w2[0] * 0.1 * 3 + w2[3] * 1.5) / 4, L + lb * (1.5 - L));
  // from now on b is right: its recent accuracy climbs back, the gap falls below ε, and λ_b falls — by
  // η · (ψ − ε) a step, never below 0 — to exactly 0
  const trace: number[] = [];
  for (let k = 0; k < CEAG_BUFFER; k++) {
    ceag.step(rows, ce, Uint8Array.from([1, 1, 1, 1]));
    trace.push(ceag.multipliers[1]);
  }
  const peakAt = trace.indexOf(Math.max(...trace));
  assert.ok(trace[peakAt] > lb, 'it first keeps rising while the gap is above ε');
  for (let k = peakAt + 1; k < trace.length; k++) assert.ok(trace[k] <= trace[k - 1], `λ_b rose again at step ${k}`);
  assert.equal(trace[trace.length - 1], 0);
  assert.equal(ceag.multipliers[0], 0);
  const rec = ceag.record();
  assert.equal(rec.objective, 'ceag');
  assert.equal(rec.tolerance, 0.02);
  assert.equal(rec.groups[1].multiplier, 0);
  assert.equal(rec.steps, 2 + CEAG_BUFFER);
  assert.equal(rec.stepSize, 0.5);
  assert.ok(
    rec.groups[1].excessGap! < 0.02,
    `the last measured gap is within the tolerance: ${rec.groups[1].excessGap}`,
  );
  assert.deepEqual(
    rec.groups.map((g) => g.trainingRows),
    [6, 2],
  );
});

test('the host loss with a reweighting: value and gradient are the reweighted mean, and the objective sees right and wrong', () => {
  const ctx: GroupContext = { groupIds: [0, 1], groupNames: ['a', 'b'], trainRows: [0, 1] };
  const seen: Uint8Array[] = [];
  const objective = {
    step(_rows: ArrayLike<number>, _ce: Float64Array, correct: Uint8Array) {
      seen.push(correct);
      return Float64Array.from([1, 3]);
    },
    record: () => ({ objective: 'group-dro' as const, groups: [] }),
  };
  // binary logits: row 0 z = 2 (predicts 1, label 1: right), row 1 z = 0 (predicts 0, label 1: wrong)
  const z = [2, 0];
  const grad = new Float64Array(2);
  const v = weightedCrossEntropyAndGradient('binary', z, 1, [1, 1], [1, 1], [0, 1], grad, {
    objective,
    labels: [1, 1],
  });
  const ce = (zi: number) => Math.max(zi, 0) - zi + Math.log1p(Math.exp(-Math.abs(zi)));
  close(v, (ce(2) + 3 * ce(0)) / 2);
  close(grad[0], (1 / (1 + Math.exp(-2)) - 1) / 2);
  close(grad[1], (3 * (0.5 - 1)) / 2);
  assert.deepEqual(Array.from(seen[0]), [1, 0]);
  void ctx;
});

test('the host loss tells the objective right from wrong by the logits: binary z > 0 (not p > 0.5), multiclass argmax', () => {
  const seen: number[][] = [];
  const objective = {
    step(_rows: ArrayLike<number>, _ce: Float64Array, correct: Uint8Array) {
      seen.push(Array.from(correct));
      return new Float64Array(correct.length).fill(1);
    },
    record: () => ({ objective: 'ceag' as const, groups: [] }),
  };
  // Binary logits 0.3 (predicts 1, label 1) and −0.2 (predicts 0, label 0): both right, though 0.3 < 0.5.
  weightedCrossEntropyAndGradient('binary', [0.3, -0.2], 1, [1, 0], [1, 1], [0, 1], new Float64Array(2), {
    objective,
    labels: [1, 0],
  });
  // Three classes: row 0 argmax 1 (label 1, right), row 1 argmax 0 (label 1, wrong) though its logit 1 is 0.
  weightedCrossEntropyAndGradient(
    'multiclass',
    [0.1, 2, -1, 3, 0, -1],
    3,
    [0, 1, 0, 0, 1, 0],
    [1, 1],
    [0, 1],
    new Float64Array(6),
    {
      objective,
      labels: [1, 1],
    },
  );
  assert.deepEqual(seen, [
    [1, 1],
    [1, 0],
  ]);
});

test('loss names: the group-aware objectives and their short names', () => {
  assert.deepEqual(parseLossNames('ce,balanced,dro,ceag'), ['ce', 'group-balanced', 'group-dro', 'ceag']);
});

/**
 * A task where pruning-style capacity limits hurt a rare group: 2 features, the group is a third input;
 * the common group's label is x1 > 0, the rare group's (5%) is x1 < 0. A small MLP trained with
 * cross-entropy mostly learns the common rule.
 */
function rareGroupTask(n: number, seed: number) {
  const rng = new Rng(seed);
  const x = new Float32Array(n * 3);
  const labels = new Int32Array(n);
  const groupIds = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const rare = rng.next() < 0.05 ? 1 : 0;
    const x1 = rng.normal();
    const x2 = rng.normal();
    x[3 * i] = x1;
    x[3 * i + 1] = x2;
    x[3 * i + 2] = rare;
    groupIds[i] = rare;
    labels[i] = (x1 > 0 ? 1 : 0) ^ rare;
  }
  return { x, labels, groupIds };
}

async function rareGroupAccuracy(
  loss: LossName,
): Promise<{ rare: number; common: number; record?: ReturnType<GroupDro['record']> }> {
  const n = 4000;
  const { x, labels, groupIds } = rareGroupTask(n, 11);
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const trainRows = all.filter((i) => i % 4 !== 0);
  const testRows = all.filter((i) => i % 4 === 0);
  const ctx: GroupContext = { groupIds, groupNames: ['common', 'rare'], trainRows };
  const t = lossTargets(loss, 'binary', labels, 1, undefined, { minWeight: 0.3, gamma: 1 }, ctx);
  const reweight = batchReweightingFor(
    loss,
    ctx,
    { droEta: 0.05, ceagTolerance: 0.02, ceagDualLearningRate: 0.05 },
    () => new Uint8Array(n).fill(1),
  );
  const balanced = groupBalancedTraining(loss, ctx, t.weights);
  const data: TrainingData = {
    x: tf.tensor2d(x, [n, 3]),
    targets: tf.tensor2d(Float32Array.from(t.targets), [n, 1]),
    weights: tf.tensor1d(balanced ? balanced.trainWeights : Float32Array.from(t.weights)),
    ...(balanced ? { epochOrder: balanced.epochOrder } : {}),
    labels,
    train: trainRows,
    validation: new Int32Array(0),
    reweight: reweight ?? undefined,
  };
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({
        inputShape: [3],
        units: 8,
        activation: 'relu',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
      }),
      tfl.layers.dense({ units: 1, kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
  try {
    await train(model, data, { task: 'binary', epochs: 3, batchSize: 64, learningRate: 0.01, patience: 0, seed: 1 });
    const p = predictProbabilities(model, 'binary', data.x, testRows);
    const acc = (g: number) => {
      let right = 0;
      let count = 0;
      testRows.forEach((r, i) => {
        if (groupIds[r] !== g) return;
        count++;
        if ((p[i] > 0.5 ? 1 : 0) === labels[r]) right++;
      });
      return right / count;
    };
    return { rare: acc(1), common: acc(0), record: reweight?.record() };
  } finally {
    tf.dispose([data.x, data.targets, data.weights]);
    model.dispose();
  }
}

test('on a task where cross-entropy neglects a rare group, each group-aware objective keeps it far better off, with the same steps', async () => {
  await useCpu();
  const ce = await rareGroupAccuracy('ce');
  assert.ok(ce.rare < 0.5, `cross-entropy learns the common rule and gets the rare group mostly wrong: ${ce.rare}`);
  for (const loss of ['group-balanced', 'group-dro', 'ceag'] as const) {
    const r = await rareGroupAccuracy(loss);
    assert.ok(r.rare >= ce.rare + 0.25, `${loss}: rare group ${r.rare.toFixed(3)} vs ce ${ce.rare.toFixed(3)}`);
    assert.ok(r.common > 0.8, `${loss}: the common group keeps ${r.common.toFixed(3)}`);
    if (loss === 'group-dro')
      assert.ok(r.record!.groups[1].weight! > 0.5, 'Group DRO ends weighting the rare group above the common one');
    if (loss === 'ceag')
      assert.ok(
        r.record!.groups.some((g) => (g.multiplier ?? 0) > 0) || r.rare > 0.9,
        'CEAG raised a multiplier, or never needed to',
      );
  }
});
