/**
 * Edges of the fairness core that the broader tests pass over, found by `npm run mutate`
 * (docs/testing.md): the small-group warning's threshold, the exemplar list's cap and class-name
 * fallback, intervals of resamples with undefined values, and the losses' shapes and messages.
 * Every expected value is written by hand.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  auroc,
  compare,
  evaluate,
  interval,
  predictedClass,
  predictedClasses,
  SMALL_GROUP,
  MAX_EXEMPLARS_PER_GROUP,
} from '../../src/core/metrics';
import { UserError } from '../../src/core/errors';
import { Rng } from '../../src/core/rng';
import type { EvaluationInput, Predictions } from '../../src/core/metrics';
import {
  correctedTargets,
  lossTargets,
  oneHotTargets,
  outputWidth,
  pwWeights,
  teacherIsRight,
  trueClassConfidence,
  weightedCrossEntropyAndGradient,
} from '../../src/core/losses';

const NONE = { resamples: 0, confidence: 0.95, seed: 1 };

/** n binary samples of label 1; the model is right on the first `right` of them. */
function binary(n: number, right: number): { pred: Predictions; labels: number[] } {
  const probs = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    probs[2 * i] = i < right ? 0.2 : 0.8;
    probs[2 * i + 1] = i < right ? 0.8 : 0.2;
  }
  return { pred: { probs, numClasses: 2 }, labels: Array(n).fill(1) };
}

function input(labels: number[], groups: number[], groupNames: string[], classNames = ['no', 'yes']): EvaluationInput {
  return {
    labels: Int32Array.from(labels),
    groupIds: Int32Array.from(groups),
    groupNames,
    rows: Int32Array.from(labels.map((_, i) => i + 1)),
    classNames,
    split: 'test',
  };
}

test('evaluate: a group of exactly 30 has no small-group warning; 29 has one', () => {
  assert.equal(SMALL_GROUP, 30);
  const a = binary(59, 50);
  const groups = [...Array(30).fill(0), ...Array(29).fill(1)];
  const ev = evaluate(a.pred, input(a.labels, groups, ['g=big', 'g=small']), NONE);
  assert.equal(ev.groups[0].n, 30);
  assert.equal(ev.groups[0].warning, undefined);
  assert.equal(ev.groups[1].warning, 'only 29 test samples: the interval is wide');
  assert.equal(ev.worstGroup.group, 'g=small'); // 30/30 right vs 20/29
  assert.equal(ev.worstGroup.accuracy.value, 20 / 29);
  assert.equal(ev.largestGap.value, 1 - 20 / 29);
});

test('compare: at most 50 exemplars listed per group, all counted; class names fall back to the index', () => {
  assert.equal(MAX_EXEMPLARS_PER_GROUP, 50);
  const n = 52;
  const dense = binary(n, n); // all right
  const pruned = binary(n, 1); // right only on the first: 51 changed
  const c = compare(dense.pred, pruned.pred, input(dense.labels, Array(n).fill(0), ['g=A'], ['no']), NONE);
  const e = c.exemplars.byGroup[0];
  assert.equal(e.count, 51);
  assert.equal(c.exemplars.total, 51);
  assert.equal(e.rate, 51 / 52);
  assert.equal(e.samples.length, 50);
  assert.deepEqual(e.samples[0], { row: 2, label: '1', dense: '1', pruned: 'no' }); // class 1 has no name: '1'
  assert.equal(e.samples[49].row, 51);
  assert.equal(c.accuracyChange.value, 1 / 52 - 1);
});

test('interval: resamples that are undefined (NaN) are left out; none left gives a zero-width interval at the estimate', () => {
  // sorted usable values 1..5; 90%: type-7 quantiles at 0.05 and 0.95 of 4 steps: 1.2 and 4.8
  const boot = Float64Array.from([NaN, 5, 1, NaN, 3, 2, 4]);
  const e = interval(3, boot, 0.9);
  assert.ok(Math.abs(e.low - 1.2) < 1e-12 && Math.abs(e.high - 4.8) < 1e-12, JSON.stringify(e));
  assert.equal(e.value, 3);
  // widened to contain the estimate on either side
  assert.deepEqual(interval(0.5, Float64Array.from([1, 1, 1]), 0.9), { value: 0.5, low: 0.5, high: 1 });
  assert.deepEqual(interval(2, Float64Array.from([1, 1, 1]), 0.9), { value: 2, low: 1, high: 2 });
  assert.deepEqual(interval(0.7, Float64Array.from([NaN, NaN]), 0.95), { value: 0.7, low: 0.7, high: 0.7 });
  assert.deepEqual(interval(0.7, new Float64Array(0), 0.95), { value: 0.7, low: 0.7, high: 0.7 });
  // 95% of 1..101: 2.5 and 98.5
  const hundred = Float64Array.from({ length: 101 }, (_, i) => 101 - i);
  const h = interval(50, hundred, 0.95);
  assert.ok(Math.abs(h.low - 3.5) < 1e-12 && Math.abs(h.high - 98.5) < 1e-12 && h.value === 50, JSON.stringify(h));
});

test('predictedClass: ties go to the lowest index, and only a strictly larger value wins', () => {
  assert.equal(predictedClass([0.3, 0.3, 0.4, 0.4], 4, 0), 2);
  assert.equal(predictedClass([0.5, 0.5], 2, 0), 0);
  assert.equal(predictedClass([0.1, 0.2, 0.7, 0.5, 0.5, 0], 3, 1), 0);
  assert.equal(predictedClass([0.5000001], 1, 0), 1);
  assert.deepEqual(
    Array.from(predictedClasses({ probs: Float32Array.from([0.9, 0.5, 0.1]), numClasses: 1 })),
    [1, 0, 0],
  );
  assert.throws(
    () => predictedClasses({ probs: new Float32Array(2), numClasses: 0 }),
    /numClasses must be a positive integer, got 0/,
  );
  assert.throws(() => predictedClasses({ probs: new Float32Array(2), numClasses: 1.5 }), /got 1\.5/);
});

test("losses: output widths, the true class's confidence, and who was right, by hand", () => {
  assert.equal(outputWidth('binary', 2), 1);
  assert.equal(outputWidth('multiclass', 3), 3);
  assert.equal(trueClassConfidence('binary', [0.8], 1, 0, 1), 0.8);
  assert.ok(Math.abs(trueClassConfidence('binary', [0.8], 1, 0, 0) - 0.2) < 1e-15);
  assert.equal(trueClassConfidence('multiclass', [0.1, 0.2, 0.7, 0.6, 0.3, 0.1], 3, 1, 1), 0.3);
  assert.equal(teacherIsRight([0.1, 0.2, 0.7], 3, 0, 2), true);
  assert.equal(teacherIsRight([0.1, 0.2, 0.7], 3, 0, 1), false);
  // multiclass targets: the teacher's row where it is right, one-hot where it is wrong
  const teacher = [0.1, 0.2, 0.7, 0.6, 0.3, 0.1];
  assert.deepEqual(Array.from(correctedTargets('multiclass', teacher, [2, 1], 3)), [0.1, 0.2, 0.7, 0, 1, 0]);
  assert.deepEqual(Array.from(oneHotTargets('multiclass', [2, 0], 3)), [0, 0, 1, 1, 0, 0]);
  assert.deepEqual(Array.from(oneHotTargets('binary', [1, 0], 1)), [1, 0]);
  // PW weights: m + (1 − m)(1 − s)^γ with m = 0.5, γ = 2: s = 0.7 → 0.5 + 0.5 · 0.09; s = 0.3 → 0.5 + 0.5 · 0.49
  const w = pwWeights('multiclass', teacher, [2, 1], 3, { minWeight: 0.5, gamma: 2 });
  assert.ok(Math.abs(w[0] - 0.545) < 1e-12 && Math.abs(w[1] - 0.745) < 1e-12, Array.from(w).join());
});

test("lossTargets: each loss's targets and weights for a 3-class teacher, by hand", () => {
  const teacher = [0.1, 0.2, 0.7, 0.6, 0.3, 0.1];
  const labels = [2, 1];
  const pw = { minWeight: 0.5, gamma: 2 };
  const get = (loss: Parameters<typeof lossTargets>[0]) => {
    const t = lossTargets(loss, 'multiclass', labels, 3, teacher, pw);
    return { targets: Array.from(t.targets), weights: Array.from(t.weights).map((v) => Math.round(v * 1e12) / 1e12) };
  };
  const corrected = [0.1, 0.2, 0.7, 0, 1, 0];
  assert.deepEqual(get('ce'), { targets: [0, 0, 1, 0, 1, 0], weights: [1, 1] });
  assert.deepEqual(get('kd'), { targets: teacher, weights: [1, 1] });
  assert.deepEqual(get('pw'), { targets: corrected, weights: [0.545, 0.745] });
  assert.deepEqual(get('pw-weight-only'), { targets: teacher, weights: [0.545, 0.745] });
  assert.deepEqual(get('pw-correction-only'), { targets: corrected, weights: [1, 1] });
  assert.deepEqual(get('ce'), {
    targets: Array.from(lossTargets('ce', 'multiclass', labels, 3, undefined, pw).targets),
    weights: [1, 1],
  });
  assert.throws(
    () => lossTargets('pw-correction-only', 'multiclass', labels, 3, undefined, pw),
    /^Error: the pw-correction-only loss needs the dense model's predictions$/,
  );
  assert.throws(
    () => lossTargets('pw', 'multiclass', labels, 3, [0.5, 0.5], pw),
    /^Error: teacher predictions have 2 values, expected 2 × 3$/,
  );
});

test('weightedCrossEntropyAndGradient: value and gradient by hand, and shape errors named', () => {
  // multiclass, one row z = [0, ln 3] (softmax [1/4, 3/4]), target [0, 1], weight 2, row 0 of 1:
  // CE = −ln(3/4); value = 2 · CE / 1; gradient = (softmax · Σt − t) · w / n = [1/4, −1/4] · 2
  const grad = [0, 0];
  const v = weightedCrossEntropyAndGradient('multiclass', [0, Math.log(3)], 2, [0, 1], [2], [0], grad);
  assert.ok(Math.abs(v - 2 * -Math.log(0.75)) < 1e-12, String(v));
  assert.ok(Math.abs(grad[0] - 0.5) < 1e-12 && Math.abs(grad[1] + 0.5) < 1e-12, grad.join());
  // binary, z = 0, t = 1, w = 1, two rows of which row 1 (t = 0.25, w = 3) is the second:
  // BCE(0, 1) = ln 2; BCE(ln 3, 0.25) = ln(1 + 3) − 0.25 · ln 3; mean of w · BCE; gradient (σ(z) − t) · w / n
  const g2 = [0, 0];
  const v2 = weightedCrossEntropyAndGradient('binary', [0, Math.log(3)], 1, [1, 0.25], [1, 3], [0, 1], g2);
  const want = (Math.log(2) + 3 * (Math.log(4) - 0.25 * Math.log(3))) / 2;
  assert.ok(Math.abs(v2 - want) < 1e-12, `${v2} vs ${want}`);
  assert.ok(Math.abs(g2[0] - (0.5 - 1) / 2) < 1e-12 && Math.abs(g2[1] - ((0.75 - 0.25) * 3) / 2) < 1e-12, g2.join());
  // negative logit: σ(−ln 3) = 1/4
  const g3 = [0];
  weightedCrossEntropyAndGradient('binary', [-Math.log(3)], 1, [0], [1], [0], g3);
  assert.ok(Math.abs(g3[0] - 0.25) < 1e-12, String(g3[0]));
  // multiclass, two logit rows taking the target rows in reverse (rows [1, 0]): the first logit row
  // [0, ln 3] (softmax [1/4, 3/4]) against target row 1, [0, 1], weight 2; the second [ln 3, 0]
  // ([3/4, 1/4]) against target row 0, [1, 0], weight 1. Both CEs are −ln(3/4); value (2 + 1) · CE / 2;
  // gradients [1/4, −1/4] · 2 / 2 and [−1/4, 1/4] · 1 / 2, each in its own logit row.
  const g4 = [0, 0, 0, 0];
  const v4 = weightedCrossEntropyAndGradient(
    'multiclass',
    [0, Math.log(3), Math.log(3), 0],
    2,
    [1, 0, 0, 1],
    [1, 2],
    [1, 0],
    g4,
  );
  assert.ok(Math.abs(v4 - (3 * -Math.log(0.75)) / 2) < 1e-12, String(v4));
  [0.25, -0.25, -0.125, 0.125].forEach((want, j) => assert.ok(Math.abs(g4[j] - want) < 1e-12, g4.join()));
  assert.throws(
    () => weightedCrossEntropyAndGradient('multiclass', [0, 0, 0], 2, [0, 1], [1], [0], [0, 0]),
    /^Error: weightedCrossEntropyOnHost: 1\.5 logits rows for 1 samples$/,
  );
  assert.throws(
    () => weightedCrossEntropyAndGradient('multiclass', [0, 0], 2, [0, 1, 0], [1], [0], [0, 0]),
    /^Error: weightedCrossEntropyOnHost: 3 targets for 1 samples of width 2$/,
  );
});

test('compare: the error for models of different widths, and for a non-number in either model, names which', () => {
  const a = binary(3, 3);
  const inp = input(a.labels, [0, 0, 0], ['g=A']);
  const three: Predictions = { probs: new Float32Array(9).fill(1 / 3), numClasses: 3 };
  assert.throws(
    () => compare(a.pred, three, inp, NONE),
    (e: unknown) => {
      const u = e as UserError;
      assert.ok(u instanceof UserError);
      assert.match(u.message, /the dense model has 2 outputs but the pruned model has 3\./);
      assert.equal(u.field, 'numClasses');
      assert.equal(u.fix, 'compare a pruned model with the dense model it was pruned from.');
      return true;
    },
  );
  const nan = binary(3, 3);
  nan.pred.probs[3] = NaN;
  assert.throws(() => compare(a.pred, nan.pred, inp, NONE), /the pruned predictions contain NaN \(output 1\)/);
  assert.throws(() => compare(nan.pred, a.pred, inp, NONE), /the dense predictions contain NaN \(output 1\)/);
  assert.throws(() => auroc([0.1, 0.2], [true]), /^Error: auroc: 2 scores but 1 labels$/);
});

test('interval: a single usable resample is its own percentile interval', () => {
  assert.deepEqual(interval(0.5, Float64Array.from([0.7]), 0.9), { value: 0.5, low: 0.5, high: 0.7 });
  assert.deepEqual(interval(0.7, Float64Array.from([NaN, 0.6]), 0.95), { value: 0.7, low: 0.6, high: 0.7 });
});

test('evaluate: one sigmoid output (K = 1) is P(class 1): accuracy and AUROC by hand', () => {
  // p = 0.9 (label 1, right), 0.4 (label 1, wrong), 0.2 (label 0, right), 0.6 (label 0, wrong)
  const pred: Predictions = { probs: Float32Array.from([0.9, 0.4, 0.2, 0.6]), numClasses: 1 };
  const ev = evaluate(pred, input([1, 1, 0, 0], [0, 0, 0, 0], ['g=A']), NONE);
  assert.equal(ev.accuracy.value, 0.5);
  // positives 0.9, 0.4 against negatives 0.2, 0.6: 0.9 beats both, 0.4 beats 0.2 only: 3 of 4
  assert.equal(ev.auroc!.value, 0.75);
  assert.equal(ev.groups[0].auroc!.value, 0.75);
});

test("evaluate: a class absent from a group is left out of that group's macro AUROC", () => {
  // three classes; group B has labels 0 and 1 only, so class 2 has no positives there
  const rows = [
    [0.8, 0.1, 0.1],
    [0.1, 0.8, 0.1],
    [0.1, 0.1, 0.8], // group A: one of each, all right
    [0.6, 0.3, 0.1],
    [0.5, 0.4, 0.1],
    [0.2, 0.7, 0.1],
    [0.4, 0.5, 0.1], // group B: labels 0, 0, 1, 1
  ];
  const pred: Predictions = { probs: Float32Array.from(rows.flat()), numClasses: 3 };
  const ev = evaluate(pred, input([0, 1, 2, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1, 1], ['g=A', 'g=B'], ['a', 'b', 'c']), NONE);
  // group B, class 0 (scores 0.6, 0.5 vs 0.2, 0.4): 1; class 1 (0.7, 0.5 vs 0.3, 0.4): 1; class 2 undefined
  assert.equal(ev.groups[1].auroc!.value, 1);
  assert.equal(ev.groups[0].auroc!.value, 1);
});

test('evaluate: the overall AUROC gets a bootstrap interval even when no single group has both classes', () => {
  // group A: all label 0, group B: all label 1; the scores overlap, so the overall AUROC is below 1
  const n = 40;
  const probs = new Float32Array(2 * n);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = i < 20 ? 0 : 1;
    const p1 = y === 1 ? 0.3 + (i % 10) * 0.05 : 0.1 + (i % 10) * 0.05;
    probs[2 * i] = 1 - p1;
    probs[2 * i + 1] = p1;
    labels.push(y);
  }
  const groups = labels.slice();
  const ev = evaluate({ probs, numClasses: 2 }, input(labels, groups, ['g=A', 'g=B']), {
    resamples: 200,
    confidence: 0.95,
    seed: 3,
  });
  assert.equal(ev.groups[0].auroc, null);
  assert.equal(ev.groups[1].auroc, null);
  assert.ok(ev.auroc && ev.auroc.value > 0.5 && ev.auroc.value < 1, JSON.stringify(ev.auroc));
  assert.ok(ev.auroc.low < ev.auroc.high, `a real interval: ${JSON.stringify(ev.auroc)}`);
});

test('evaluate: without any AUROC, the accuracy intervals are still the stratified bootstrap, reproduced by hand', () => {
  // every label is 1: no AUROC anywhere, so the resamples take the path without AUROC weights
  const a = binary(25, 18);
  const groups = Array.from({ length: 25 }, (_, i) => (i % 5 === 0 ? 1 : 0));
  const opts = { resamples: 120, confidence: 0.9, seed: 77 };
  const ev = evaluate(a.pred, input(a.labels, groups, ['g=A', 'g=B']), opts);
  assert.equal(ev.auroc, null);
  const right = a.labels.map((_, i) => (i < 18 ? 1 : 0));
  const members = [0, 1].map((g) => groups.map((x, i) => (x === g ? i : -1)).filter((i) => i >= 0));
  const rng = new Rng(opts.seed);
  const acc: number[] = [];
  for (let b = 0; b < opts.resamples; b++) {
    let c = 0;
    for (const m of members) for (let j = 0; j < m.length; j++) c += right[m[rng.int(m.length)]];
    acc.push(c / 25);
  }
  const want = interval(18 / 25, Float64Array.from(acc), 0.9);
  assert.ok(
    Math.abs(ev.accuracy.low - want.low) < 1e-12 && Math.abs(ev.accuracy.high - want.high) < 1e-12,
    `${JSON.stringify(ev.accuracy)} vs ${JSON.stringify(want)}`,
  );
  assert.ok(ev.accuracy.low < ev.accuracy.high);
});
