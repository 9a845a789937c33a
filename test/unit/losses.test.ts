import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import { checkVectors } from '../../src/core/conformance';
import {
  correctedTargets,
  lossTargets,
  pwWeights,
  pwWeightSummary,
  softCrossEntropy,
  weightedCrossEntropy,
} from '../../src/core/losses';
import { parseLossNames } from '../../src/core/options';
import { UserError } from '../../src/core/errors';
import { repoRoot, sharedDir, useCpu } from '../helpers';

test("losses reproduce the project's own NumPy reference vectors", async () => {
  await useCpu();
  const results = checkVectors(path.join(repoRoot, 'test', 'fixtures', 'pw-loss-vectors.own.json'));
  assert.equal(results.length, 6 * 7);
  const failed = results.filter((r) => !r.passed);
  assert.deepEqual(failed, []);
});

test('losses reproduce the shared conformance vectors', { skip: !sharedDir && 'no ../shared' }, async () => {
  await useCpu();
  const results = checkVectors(path.join(sharedDir!, 'conformance'));
  assert.ok(results.length >= 28);
  assert.deepEqual(
    results.filter((r) => !r.passed),
    [],
  );
});

test('PW weights by hand: m + (1 − m)(1 − s)^γ', () => {
  // multiclass, K = 3: teacher confident-right, unsure-right, wrong
  const teacher = [0.9, 0.05, 0.05, 0.4, 0.35, 0.25, 0.1, 0.7, 0.2];
  const labels = [0, 0, 0];
  const w = pwWeights('multiclass', teacher, labels, 3, { minWeight: 0.5, gamma: 2 });
  assert.ok(Math.abs(w[0] - (0.5 + 0.5 * 0.1 ** 2)) < 1e-12);
  assert.ok(Math.abs(w[1] - (0.5 + 0.5 * 0.6 ** 2)) < 1e-12);
  assert.ok(Math.abs(w[2] - (0.5 + 0.5 * 0.9 ** 2)) < 1e-12);
  const t = correctedTargets('multiclass', teacher, labels, 3);
  assert.deepEqual(Array.from(t.subarray(0, 6)), teacher.slice(0, 6)); // right: teacher's probabilities
  assert.deepEqual(Array.from(t.subarray(6)), [1, 0, 0]); // wrong: one-hot label
  // binary: s = p for label 1, 1 − p for label 0; right when round(p) = label
  const wb = pwWeights('binary', [0.8, 0.8], [1, 0], 1, { minWeight: 0, gamma: 1 });
  assert.ok(Math.abs(wb[0] - 0.2) < 1e-12 && Math.abs(wb[1] - 0.8) < 1e-12);
  assert.deepEqual(
    Array.from(correctedTargets('binary', [0.8, 0.8], [1, 0], 1)).map((v) => +v.toFixed(6)),
    [0.8, 0],
  );
});

test('soft cross-entropy: multiclass equals −Σ t log softmax, binary equals BCE with logits', async () => {
  await useCpu();
  const z = [2, -1, 0.5];
  const t = [0.7, 0.1, 0.2];
  const lse = Math.log(z.reduce((a, v) => a + Math.exp(v), 0));
  const expected = -t.reduce((a, tc, c) => a + tc * (z[c] - lse), 0);
  const got = tf.tidy(() => softCrossEntropy('multiclass', tf.tensor2d([z]), tf.tensor2d([t])).dataSync()[0]);
  assert.ok(Math.abs(got - expected) < 1e-6, `${got} vs ${expected}`);
  const p = 1 / (1 + Math.exp(-1.5));
  const bce = -(0.3 * Math.log(p) + 0.7 * Math.log(1 - p));
  const gotB = tf.tidy(() => softCrossEntropy('binary', tf.tensor2d([[1.5]]), tf.tensor2d([[0.3]])).dataSync()[0]);
  assert.ok(Math.abs(gotB - bce) < 1e-6);
  // stable at extreme logits: no Infinity/NaN
  const extreme = tf.tidy(() =>
    softCrossEntropy('binary', tf.tensor2d([[80], [-80]]), tf.tensor2d([[0], [1]])).dataSync(),
  );
  assert.ok(Math.abs(extreme[0] - 80) < 1e-3 && Math.abs(extreme[1] - 80) < 1e-3);
});

test("weighted mean: weight-only PW with m = 1 is plain distillation; its targets are the teacher's own", async () => {
  await useCpu();
  const labels = [0, 2, 1, 2];
  const teacher = [0.2, 0.3, 0.5, 0.1, 0.1, 0.8, 0.3, 0.3, 0.4, 0.6, 0.2, 0.2];
  const logits = tf.tensor2d([
    [1, 2, 3],
    [0, 0, 1],
    [2, -1, 0],
    [0.5, 0.5, 0.5],
  ]);
  const kd = lossTargets('kd', 'multiclass', labels, 3, teacher, { minWeight: 0.75, gamma: 5 });
  const weightOnly = lossTargets('pw-weight-only', 'multiclass', labels, 3, teacher, { minWeight: 1, gamma: 5 });
  // uncorrected: row 0 is wrong (argmax 2, label 0) and still keeps the teacher's probabilities
  assert.deepEqual(Array.from(weightOnly.targets), teacher);
  assert.deepEqual(Array.from(weightOnly.weights), [1, 1, 1, 1]);
  const v = (t: { targets: Float64Array; weights: Float64Array }) =>
    tf.tidy(
      () =>
        weightedCrossEntropy(
          'multiclass',
          logits,
          tf.tensor2d(Float32Array.from(t.targets), [4, 3]),
          tf.tensor1d(Float32Array.from(t.weights)),
        ).dataSync()[0],
    );
  assert.ok(Math.abs(v(kd) - v(weightOnly)) < 1e-7);
  // with m < 1 the weights differ from 1 and the targets stay the teacher's
  const spread = lossTargets('pw-weight-only', 'multiclass', labels, 3, teacher, { minWeight: 0.3, gamma: 1 });
  assert.deepEqual(Array.from(spread.targets), teacher);
  assert.ok(Math.abs(spread.weights[0] - (0.3 + 0.7 * 0.8)) < 1e-12); // s = 0.2
  logits.dispose();
});

test('binary: a teacher at p = 0.5 exactly predicts class 0, so it is right for label 0 only', () => {
  const t = correctedTargets('binary', [0.5, 0.5], [0, 1], 1);
  assert.deepEqual(Array.from(t), [0.5, 1]); // label 0: right, keeps 0.5; label 1: wrong, one-hot 1
});

test("every loss but ce needs the dense model's predictions", () => {
  assert.throws(() => lossTargets('pw', 'binary', [0, 1], 1, undefined, { minWeight: 0.5, gamma: 1 }), /dense model/);
  assert.throws(() => lossTargets('kd', 'binary', [0, 1], 1, [0.5], { minWeight: 0.5, gamma: 1 }), /expected 2/);
});

test('loss names: aliases, order kept, duplicates dropped, unknown names are a clear error', () => {
  assert.deepEqual(parseLossNames('ce, PW,cross-entropy'), ['ce', 'pw']);
  assert.throws(
    () => parseLossNames('ce,focal'),
    (e: unknown) => e instanceof UserError && /--loss/.test(e.message) && /focal/.test(e.message),
  );
});

test("each group's mean PW weight on the given rows, by hand", () => {
  // binary, m = 0.3, γ = 1: w = 0.3 + 0.7 (1 − s)
  const teacher = [0.9, 0.6, 0.2, 0.5, 0.99];
  const labels = [1, 1, 1, 0, 0];
  const groupIds = [0, 0, 1, 1, 0];
  // s = 0.9, 0.6, 0.2, 0.5, 0.01 → w = 0.37, 0.58, 0.86, 0.65, 0.993; row 4 is not a training row
  const s = pwWeightSummary('binary', teacher, labels, 1, { minWeight: 0.3, gamma: 1 }, [0, 1, 2, 3], groupIds, [
    'a',
    'b',
    'c',
  ]);
  assert.equal(s.minWeight, 0.3);
  assert.ok(Math.abs(s.mean - (0.37 + 0.58 + 0.86 + 0.65) / 4) < 1e-12);
  assert.deepEqual(
    s.groups.map((g) => [g.group, g.n]),
    [
      ['a', 2],
      ['b', 2],
      ['c', 0],
    ],
  );
  assert.ok(Math.abs(s.groups[0].meanWeight - (0.37 + 0.58) / 2) < 1e-12);
  assert.ok(Math.abs(s.groups[1].meanWeight - (0.86 + 0.65) / 2) < 1e-12);
  assert.ok(Number.isNaN(s.groups[2].meanWeight));
});
