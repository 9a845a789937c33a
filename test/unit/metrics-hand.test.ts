/**
 * Pieces of src/core/metrics.ts that join the formulas, with hand-written expected values (the
 * formulas themselves are checked in metrics.test, metrics-fairness.test and fairness-edges.test).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluationInputOf } from '../../src/core/metrics';

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
