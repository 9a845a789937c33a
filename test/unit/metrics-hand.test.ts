/**
 * Pieces of src/core/metrics.ts that join the formulas, with hand-written expected values (the
 * formulas themselves are checked in metrics.test, metrics-fairness.test and fairness-edges.test).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compare, evaluate, evaluationInputOf, type EvaluationInput } from '../../src/core/metrics';
import type { ClassAccuracy } from '../../src/protocol/results';

test('evaluationInputOf: the labels, groups and CSV row numbers of the chosen rows, in their order', () => {
  const data = {
    labels: [1, 0, 1, 0],
    groupIds: [0, 1, 1, 0],
    groupNames: ['region=north', 'region=south'],
    rowNumbers: [2, 3, 4, 7],
    record: { label: { classes: ['approved', 'denied'] } },
  };
  const input = evaluationInputOf(data, Int32Array.from([3, 0, 2]), 'validation');
  assert.deepEqual(input, {
    labels: Int32Array.from([0, 1, 1]),
    groupIds: Int32Array.from([0, 0, 1]),
    groupNames: ['region=north', 'region=south'],
    rows: Int32Array.from([7, 2, 4]),
    classNames: ['approved', 'denied'],
    split: 'validation',
  });
});

test('evaluate, three classes: accuracy on each class per group and overall, by hand; no binary-only rates', () => {
  // [label, predicted] per sample; group A then group B
  const A: Array<[number, number]> = [
    [0, 0],
    [0, 1],
    [1, 1],
    [1, 1],
    [2, 2],
    [2, 0],
  ];
  const B: Array<[number, number]> = [
    [0, 0],
    [0, 0],
    [0, 2],
    [1, 0],
    [2, 2],
  ];
  const samples = [...A, ...B];
  const probs = new Float32Array(samples.length * 3).fill(0.2);
  samples.forEach(([, p], i) => (probs[i * 3 + p] = 0.6));
  const input: EvaluationInput = {
    labels: Int32Array.from(samples.map(([y]) => y)),
    groupIds: Int32Array.from(samples.map((_, i) => (i < A.length ? 0 : 1))),
    groupNames: ['g=A', 'g=B'],
    rows: Int32Array.from(samples.map((_, i) => i + 1)),
    classNames: ['cat', 'dog'], // the third class has no name: it reads as its index
    split: 'test',
  };
  const ev = evaluate({ probs, numClasses: 3 }, input, { resamples: 0, confidence: 0.95, seed: 1 });
  const perClass = (cs: ClassAccuracy[] | undefined) => cs?.map((c) => [c.class, c.n, c.accuracy?.value]);
  // A: cat 1 of 2, dog 2 of 2, eel 1 of 2 (4 of 6); B: cat 2 of 3, dog 0 of 1, eel 1 of 1 (3 of 5)
  assert.deepEqual(perClass(ev.groups[0].classAccuracy), [
    ['cat', 2, 0.5],
    ['dog', 2, 1],
    ['2', 2, 0.5],
  ]);
  assert.deepEqual(perClass(ev.groups[1].classAccuracy), [
    ['cat', 3, 2 / 3],
    ['dog', 1, 0],
    ['2', 1, 1],
  ]);
  assert.deepEqual(perClass(ev.classAccuracy), [
    ['cat', 5, 3 / 5],
    ['dog', 3, 2 / 3],
    ['2', 3, 2 / 3],
  ]);
  assert.deepEqual(
    [ev.groups[0].accuracy.value, ev.groups[1].accuracy.value, ev.accuracy.value],
    [4 / 6, 3 / 5, 7 / 11],
  );
  assert.deepEqual(ev.worstGroup, { group: 'g=B', accuracy: { value: 3 / 5, low: 3 / 5, high: 3 / 5 } });
  assert.ok(Math.abs(ev.largestGap.value - (4 / 6 - 3 / 5)) < 1e-15);
  assert.equal(ev.rates, undefined);
  assert.equal(ev.fairness, undefined);
  assert.equal(ev.groups[0].rates, undefined);
  // a pruned model that gets the dense model's one dog in B right and its two right eels wrong
  const pruned = Float32Array.from(probs);
  const set = (i: number, p: number) => {
    pruned.fill(0.2, i * 3, i * 3 + 3);
    pruned[i * 3 + p] = 0.6;
  };
  set(A.length + 3, 1); // B's dog: right now
  set(4, 0); // A's right eel: wrong now
  set(A.length + 4, 0); // B's right eel: wrong now
  const c = compare({ probs, numClasses: 3 }, { probs: pruned, numClasses: 3 }, input, {
    resamples: 0,
    confidence: 0.95,
    seed: 1,
  });
  // A 4/6 → 3/6, B 3/5 → 3/5: the worst group is now A (0.5), was B (0.6): −0.1; the gap 1/15 → 0.1
  assert.ok(Math.abs(c.worstGroupChange.value - -0.1) < 1e-12, String(c.worstGroupChange.value));
  assert.ok(Math.abs(c.gapChange.value - (0.1 - 1 / 15)) < 1e-12, String(c.gapChange.value));
  assert.equal(c.fairnessChange, undefined);
  assert.deepEqual(
    c.groups.map((g) => g.accuracyChange.value),
    [-1 / 6, 0],
  );
  assert.equal(c.exemplars.total, 3);
  assert.deepEqual(
    c.exemplars.byGroup.map((g) => [g.count, g.rate]),
    [
      [1, 1 / 6],
      [2, 2 / 5],
    ],
  );
  assert.deepEqual(c.exemplars.byGroup[1].samples, [
    { row: 10, label: 'dog', dense: 'cat', pruned: 'dog' },
    { row: 11, label: '2', dense: '2', pruned: 'cat' },
  ]);
});
