/**
 * The metric table (src/core/metric-table.ts) with hand-written expected values: which metrics apply
 * to which task, what each rate counts, how results.json is read through it, and how values and
 * changes read for people.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  appliesTo,
  betweenGroupsEstimate,
  changeDirection,
  changeEstimate,
  fairnessDifferences,
  formatChange,
  formatEstimate,
  formatValue,
  groupEstimate,
  groupMetrics,
  METRICS,
  metricDef,
  metricsOf,
  overallEstimate,
  pct,
  signedPts,
  taskOf,
  type ClassRateMetric,
  type RateMetric,
} from '../../src/shared/metric-table';
import type { Comparison, Estimate, Evaluation, GroupMetrics } from '../../src/protocol/results';

const names = (ms: Array<{ name: string }>) => ms.map((m) => m.name);

test('metric table: a model with 1 or 2 outputs is binary, with 3 or more multiclass', () => {
  assert.equal(taskOf(1), 'binary');
  assert.equal(taskOf(2), 'binary');
  assert.equal(taskOf(3), 'multiclass');
  assert.equal(taskOf(10), 'multiclass');
});

test('metric table: the metrics of each kind for each task, in table order', () => {
  assert.deepEqual(names(metricsOf('rate', 'binary')), [
    'accuracy',
    'true_positive_rate',
    'false_positive_rate',
    'selection_rate',
  ]);
  assert.deepEqual(names(metricsOf('rate', 'multiclass')), ['accuracy']);
  assert.deepEqual(names(metricsOf('class-rate', 'binary')), ['class_accuracy']);
  assert.deepEqual(names(metricsOf('class-rate', 'multiclass')), ['class_accuracy']);
  assert.deepEqual(names(metricsOf('score', 'multiclass')), ['auroc']);
  assert.deepEqual(names(metricsOf('paired-group', 'multiclass')), ['excess_gap']);
  assert.deepEqual(names(metricsOf('between-groups', 'binary')), [
    'worst_group_accuracy',
    'largest_gap',
    'demographic_parity_difference',
    'equal_opportunity_difference',
    'equalized_odds_difference',
  ]);
  assert.deepEqual(names(metricsOf('between-groups', 'multiclass')), ['worst_group_accuracy', 'largest_gap']);
  assert.deepEqual(names(fairnessDifferences('binary')), [
    'demographic_parity_difference',
    'equal_opportunity_difference',
    'equalized_odds_difference',
  ]);
  assert.deepEqual(names(fairnessDifferences('multiclass')), []);
  assert.deepEqual(names(groupMetrics('binary')), [
    'accuracy',
    'auroc',
    'true_positive_rate',
    'false_positive_rate',
    'selection_rate',
  ]);
  assert.deepEqual(names(groupMetrics('multiclass')), ['accuracy', 'auroc']);
  assert.equal(appliesTo(metricDef('selection_rate'), 'binary'), true);
  assert.equal(appliesTo(metricDef('selection_rate'), 'multiclass'), false);
  assert.equal(appliesTo(metricDef('accuracy'), 'multiclass'), true);
  assert.equal(metricDef('largest_gap').name, 'largest_gap');
  assert.throws(() => metricDef('recall'), /no metric 'recall' in the metric table/);
});

test("metric table: each rate's samples (among) and what it counts, on every label × predicted cell of a binary task", () => {
  // [y, p]: TN = [0, 0], FP = [0, 1], FN = [1, 0], TP = [1, 1]
  const cells = [
    [0, 0],
    [0, 1],
    [1, 0],
    [1, 1],
  ];
  const table = (name: string) => {
    const m = metricDef(name) as RateMetric;
    return cells
      .map(([y, p]) => `${m.among(y, p) ? 'A' : '-'}${m.among(y, p) && m.counts(y, p) ? 'C' : '-'}`)
      .join(' ');
  };
  assert.equal(table('accuracy'), 'AC A- A- AC');
  assert.equal(table('true_positive_rate'), '-- -- A- AC');
  assert.equal(table('false_positive_rate'), 'A- AC -- --');
  assert.equal(table('selection_rate'), 'A- AC A- AC');
  // accuracy on class k of three: the samples of class k, counted when predicted k
  const perClass = metricDef('class_accuracy') as ClassRateMetric;
  for (let k = 0; k < 3; k++) {
    for (let y = 0; y < 3; y++) {
      for (let p = 0; p < 3; p++) {
        assert.equal(perClass.among(y, p, k), y === k, `among y=${y} p=${p} k=${k}`);
        assert.equal(
          perClass.among(y, p, k) && perClass.counts(y, p, k),
          y === k && p === k,
          `counts y=${y} p=${p} k=${k}`,
        );
      }
    }
  }
});

const est = (value: number): Estimate => ({ value, low: value - 0.01, high: value + 0.01 });

test('metric table: results.json read through the table, schema-1 fields and the maps alike', () => {
  const group = {
    group: 'g=A',
    n: 10,
    accuracy: est(0.8),
    auroc: est(0.7),
    rates: { true_positive_rate: est(0.6) },
    classAccuracy: [],
  } as GroupMetrics;
  assert.deepEqual(groupEstimate(metricDef('accuracy'), group), est(0.8));
  assert.deepEqual(groupEstimate(metricDef('auroc'), group), est(0.7));
  assert.deepEqual(groupEstimate(metricDef('true_positive_rate'), group), est(0.6));
  assert.equal(groupEstimate(metricDef('selection_rate'), group), null);
  assert.equal(groupEstimate(metricDef('selection_rate'), { ...group, rates: undefined }), null);
  assert.equal(groupEstimate(metricDef('auroc'), { ...group, auroc: null }), null);

  const ev = {
    accuracy: est(0.75),
    auroc: est(0.65),
    rates: { selection_rate: est(0.4) },
    worstGroup: { group: 'g=B', accuracy: est(0.55) },
    largestGap: est(0.2),
    fairness: { demographic_parity_difference: est(0.1) },
  } as unknown as Evaluation;
  assert.deepEqual(overallEstimate(metricDef('accuracy'), ev), est(0.75));
  assert.deepEqual(overallEstimate(metricDef('auroc'), ev), est(0.65));
  assert.deepEqual(overallEstimate(metricDef('selection_rate'), ev), est(0.4));
  assert.equal(overallEstimate(metricDef('true_positive_rate'), ev), null);
  assert.equal(overallEstimate(metricDef('true_positive_rate'), { ...ev, rates: undefined }), null);
  assert.deepEqual(betweenGroupsEstimate(metricDef('worst_group_accuracy'), ev), est(0.55));
  assert.deepEqual(betweenGroupsEstimate(metricDef('largest_gap'), ev), est(0.2));
  assert.deepEqual(betweenGroupsEstimate(metricDef('demographic_parity_difference'), ev), est(0.1));
  assert.equal(betweenGroupsEstimate(metricDef('equalized_odds_difference'), ev), null);
  assert.equal(betweenGroupsEstimate(metricDef('equalized_odds_difference'), { ...ev, fairness: undefined }), null);

  const c = {
    worstGroupChange: est(-0.05),
    gapChange: est(0.03),
    fairnessChange: { equal_opportunity_difference: est(0.02) },
  } as unknown as Comparison;
  assert.deepEqual(changeEstimate(metricDef('worst_group_accuracy'), c), est(-0.05));
  assert.deepEqual(changeEstimate(metricDef('largest_gap'), c), est(0.03));
  assert.deepEqual(changeEstimate(metricDef('equal_opportunity_difference'), c), est(0.02));
  assert.equal(changeEstimate(metricDef('demographic_parity_difference'), c), null);
  assert.equal(changeEstimate(metricDef('demographic_parity_difference'), { ...c, fairnessChange: undefined }), null);
});

test('metric table: values read as percent, signed points or a 3-decimal score; nothing to show is –', () => {
  assert.equal(pct(0.1234), '12.3%');
  assert.equal(pct(0.1234, 2), '12.34%');
  assert.equal(pct(1), '100.0%');
  assert.equal(pct(NaN), '–');
  assert.equal(pct(Infinity), '–');
  assert.equal(signedPts(0.0123), '+1.2 pts');
  assert.equal(signedPts(-0.0123), '−1.2 pts');
  assert.equal(signedPts(-0.01234, 2), '−1.23 pts');
  assert.equal(signedPts(0), '+0.0 pts');
  assert.equal(signedPts(-0.0004), '+0.0 pts');
  assert.equal(signedPts(NaN), '–');
  assert.equal(signedPts(-Infinity), '–');
  assert.equal(formatValue(metricDef('accuracy'), 0.5), '50.0%');
  assert.equal(formatValue(metricDef('auroc'), 0.91264), '0.913');
  assert.equal(formatValue(metricDef('auroc'), NaN), '–');
  assert.equal(formatValue(metricDef('excess_gap'), -0.02), '−2.0 pts');
  assert.equal(formatChange(metricDef('accuracy'), -0.02), '−2.0 pts');
  assert.equal(formatChange(metricDef('auroc'), 0.0123), '+0.012');
  assert.equal(formatChange(metricDef('auroc'), -0.0123), '−0.012');
  assert.equal(formatChange(metricDef('auroc'), 0), '+0.000');
  assert.equal(formatChange(metricDef('auroc'), NaN), '–');
  assert.equal(formatEstimate(metricDef('accuracy'), { value: 0.8, low: 0.75, high: 0.85 }), '80.0% [75.0%, 85.0%]');
  assert.equal(
    formatEstimate(metricDef('largest_gap'), { value: 0.02, low: -0.01, high: 0.05 }, true),
    '+2.0 pts [−1.0 pts, +5.0 pts]',
  );
  assert.equal(
    formatEstimate(metricDef('auroc'), { value: 0.1, low: -0.02, high: 0.2 }, true),
    '+0.100 [−0.020, +0.200]',
  );
  assert.equal(formatEstimate(metricDef('auroc'), { value: 0.1, low: 0.05, high: 0.2 }), '0.100 [0.050, 0.200]');
  assert.equal(formatEstimate(metricDef('accuracy'), null), '–');
  assert.equal(formatEstimate(metricDef('accuracy'), undefined), '–');
});

test('metric table: a change is better or worse by the metric’s direction, the same within half a point', () => {
  const accuracy = metricDef('accuracy'); // higher is better
  const gap = metricDef('largest_gap'); // lower is better
  const selection = metricDef('selection_rate'); // neither
  assert.equal(changeDirection(accuracy, 0.01), 'better');
  assert.equal(changeDirection(accuracy, -0.01), 'worse');
  assert.equal(changeDirection(accuracy, 0.005), 'same');
  assert.equal(changeDirection(accuracy, -0.005), 'same');
  assert.equal(changeDirection(accuracy, 0.0051), 'better');
  assert.equal(changeDirection(accuracy, -0.0051), 'worse');
  assert.equal(changeDirection(gap, 0.01), 'worse');
  assert.equal(changeDirection(gap, -0.01), 'better');
  assert.equal(changeDirection(gap, 0), 'same');
  assert.equal(changeDirection(selection, 0.3), 'same');
  assert.equal(changeDirection(selection, -0.3), 'same');
});

test('metric table: which way is better, how each value reads, and which metrics are binary only', () => {
  // better: what a user of the pruned model wants; format: percent, points or a 3-decimal score
  assert.deepEqual(
    METRICS.map((m) => `${m.name} ${m.better} ${m.format}${m.binaryOnly ? ' binary' : ''}${m.schemaV1 ? ' v1' : ''}`),
    [
      'accuracy higher percent v1',
      'auroc higher score v1',
      'true_positive_rate higher percent binary',
      'false_positive_rate lower percent binary',
      'selection_rate neither percent binary',
      'class_accuracy higher percent',
      'worst_group_accuracy higher percent v1',
      'largest_gap lower percent v1',
      'demographic_parity_difference lower percent binary',
      'equal_opportunity_difference lower percent binary',
      'equalized_odds_difference lower percent binary',
      'excess_gap lower points v1',
    ],
  );
});
