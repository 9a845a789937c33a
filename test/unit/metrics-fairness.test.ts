import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_POLICY } from '../../src/shared/gate';
import {
  compare,
  evaluate,
  type BootstrapOptions,
  type EvaluationInput,
  type Predictions,
} from '../../src/core/metrics';
import {
  betweenGroupsEstimate,
  changeEstimate,
  groupEstimate,
  METRICS,
  metricDef,
  overallEstimate,
  appliesTo,
  fairnessDifferences,
  formatChange,
  metricsOf,
  type MetricDef,
} from '../../src/shared/metric-table';
import { interval, StratifiedResampler, groupMembers } from '../../src/core/bootstrap';
import { Rng } from '../../src/core/rng';
import type { Comparison, Estimate, Evaluation, PrunedPoint, SessionResults, Task } from '../../src/protocol/results';
import type { SessionView } from '../../src/protocol/webview';
import { renderReport } from '../../src/core/report';
import { renderReportBody } from '../../src/ui/report-html';
import {
  curvesMetrics,
  DEFAULT_CURVES_STATE,
  formatMetric,
  groupSeries,
  METRIC_LABELS,
  referenceLines,
  sanitizeState,
  tooltipLines,
} from '../../src/ui/curves-model';

/** A view with no recommendation (these tests are about the metric tables). */
const NO_RECOMMENDATION = { policy: DEFAULT_POLICY, pointId: null, runnersUp: [], sentence: '' };

const BOOT: BootstrapOptions = { resamples: 300, confidence: 0.95, seed: 5 };

/** One sample per entry: [label, predicted]; the probabilities make `predicted` the predicted class. */
function binary(
  samples: Array<[number, number]>,
  groups: number[],
  G: number,
  sigmoid = false,
): { pred: Predictions; input: EvaluationInput } {
  const K = sigmoid ? 1 : 2;
  const probs = new Float32Array(samples.length * K);
  samples.forEach(([, p], i) => {
    if (sigmoid) probs[i] = p === 1 ? 0.8 : 0.3;
    else {
      probs[i * 2] = p === 1 ? 0.2 : 0.7;
      probs[i * 2 + 1] = p === 1 ? 0.8 : 0.3;
    }
  });
  return {
    pred: { probs, numClasses: K },
    input: {
      labels: Int32Array.from(samples.map(([y]) => y)),
      groupIds: Int32Array.from(groups),
      groupNames: Array.from({ length: G }, (_, g) => `g=${String.fromCharCode(65 + g)}`),
      rows: Int32Array.from(samples.map((_, i) => i + 1)),
      classNames: ['no', 'yes'],
      split: 'test',
    },
  };
}

/** n copies of [label, predicted]. */
const rep = (n: number, y: number, p: number): Array<[number, number]> =>
  Array.from({ length: n }, () => [y, p] as [number, number]);

// The hand-made example: 2 groups × 10 samples.
// Group A: 5 positives (4 predicted positive: TP = 4, FN = 1), 5 negatives (1 predicted positive: FP = 1, TN = 4).
//   TPR = 4/5 = 0.8, FPR = 1/5 = 0.2, selection rate = (TP + FP)/10 = 5/10 = 0.5, accuracy = (4 + 4)/10 = 0.8,
//   accuracy on class 0 = TN/5 = 0.8, on class 1 = TP/5 = 0.8.
// Group B: 4 positives (1 predicted positive: TP = 1, FN = 3), 6 negatives (5 predicted positive: FP = 5, TN = 1).
//   TPR = 1/4 = 0.25, FPR = 5/6, selection rate = (1 + 5)/10 = 0.6, accuracy = (1 + 1)/10 = 0.2,
//   accuracy on class 0 = 1/6, on class 1 = 1/4.
// Differences: demographic parity = 0.6 − 0.5 = 0.1; equal opportunity = 0.8 − 0.25 = 0.55;
//   FPR gap = 5/6 − 1/5 = 19/30 ≈ 0.633 > 0.55, so equalized odds = 19/30.
// All 20: TP = 5 of 9 positives, FP = 6 of 11 negatives, 11 of 20 selected.
const A: Array<[number, number]> = [...rep(4, 1, 1), ...rep(1, 1, 0), ...rep(1, 0, 1), ...rep(4, 0, 0)];
const Bgroup: Array<[number, number]> = [...rep(1, 1, 1), ...rep(3, 1, 0), ...rep(5, 0, 1), ...rep(1, 0, 0)];
// interleave the groups, so that nothing depends on data order
const SAMPLES: Array<[number, number]> = [];
const GROUPS: number[] = [];
for (let i = 0; i < 10; i++) {
  SAMPLES.push(A[i], Bgroup[i]);
  GROUPS.push(0, 1);
}

const near = (a: number | undefined, b: number, what: string) =>
  assert.ok(a !== undefined && Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);
const val = (e: Estimate | null | undefined) => e?.value;

for (const sigmoid of [false, true]) {
  test(`fairness rates and Fairlearn's differences match a hand count (${sigmoid ? 'sigmoid' : 'softmax'} output)`, () => {
    const { pred, input } = binary(SAMPLES, GROUPS, 2, sigmoid);
    const ev = evaluate(pred, input, BOOT);
    const [a, b] = ev.groups;
    near(val(a.rates?.true_positive_rate), 0.8, 'TPR A');
    near(val(a.rates?.false_positive_rate), 0.2, 'FPR A');
    near(val(a.rates?.selection_rate), 0.5, 'selection A');
    near(val(b.rates?.true_positive_rate), 0.25, 'TPR B');
    near(val(b.rates?.false_positive_rate), 5 / 6, 'FPR B');
    near(val(b.rates?.selection_rate), 0.6, 'selection B');
    near(a.accuracy.value, 0.8, 'accuracy A');
    near(b.accuracy.value, 0.2, 'accuracy B');
    near(val(ev.rates?.true_positive_rate), 5 / 9, 'TPR all');
    near(val(ev.rates?.false_positive_rate), 6 / 11, 'FPR all');
    near(val(ev.rates?.selection_rate), 11 / 20, 'selection all');
    near(val(ev.fairness?.demographic_parity_difference), 0.1, 'demographic parity difference');
    near(val(ev.fairness?.equal_opportunity_difference), 0.55, 'equal opportunity difference');
    near(val(ev.fairness?.equalized_odds_difference), 19 / 30, 'equalized odds difference');
    assert.deepEqual(
      a.classAccuracy?.map((c) => [c.class, c.n, c.accuracy?.value]),
      [
        ['no', 5, 0.8],
        ['yes', 5, 0.8],
      ],
    );
    assert.equal(b.classAccuracy?.[0].n, 6);
    near(val(b.classAccuracy?.[0].accuracy), 1 / 6, 'B class 0');
    near(val(b.classAccuracy?.[1].accuracy), 0.25, 'B class 1');
    near(val(ev.classAccuracy?.[0].accuracy), 5 / 11, 'all class 0');
    near(val(ev.classAccuracy?.[1].accuracy), 5 / 9, 'all class 1');
    // every new estimate has an interval around its value, and JSON holds it exactly
    const ests = [
      ...Object.values(ev.fairness ?? {}),
      ...Object.values(ev.rates ?? {}),
      ...ev.groups.flatMap((g) => [...Object.values(g.rates ?? {}), ...(g.classAccuracy ?? []).map((c) => c.accuracy)]),
    ];
    // (every rate of the table stored in `rates`: overall and 2 groups; the differences; 2 groups × 2 classes)
    const rates = metricsOf('rate', 'binary').filter((m) => !m.schemaV1).length;
    assert.ok(rates >= 3);
    assert.equal(ests.length, rates + fairnessDifferences('binary').length + 2 * (rates + 2));
    for (const e of ests) assert.ok(e && e.low <= e.value && e.value <= e.high && e.low < e.high, JSON.stringify(e));
    assert.deepEqual(JSON.parse(JSON.stringify(ev)), ev);
  });
}

test("compare: the paired change of Fairlearn's differences, pruned − dense, on a hand-made pruned model", () => {
  // Pruned: in group A one more positive is missed (TP 4 → 3); group B unchanged.
  // Pruned group A: TPR 3/5 = 0.6, FPR 0.2, selection 4/10 = 0.4.
  // Demographic parity: |0.4 − 0.6| = 0.2 (dense 0.1): change +0.1.
  // Equal opportunity: 0.6 − 0.25 = 0.35 (dense 0.55): change −0.2.
  // Equalized odds: max(0.35, 19/30) = 19/30 (dense 19/30): change 0, and exactly 0 in every resample?
  //   No: a resample can make the TPR gap the larger one; only the point is 0.
  const prunedSamples = SAMPLES.map((s, i) => (i === 0 ? ([1, 0] as [number, number]) : s));
  assert.deepEqual(SAMPLES[0], [1, 1]); // sample 0 is a true positive of group A
  const dense = binary(SAMPLES, GROUPS, 2);
  const pruned = binary(prunedSamples, GROUPS, 2);
  const c = compare(dense.pred, pruned.pred, dense.input, BOOT);
  near(val(c.fairnessChange?.demographic_parity_difference), 0.1, 'DPD change');
  near(val(c.fairnessChange?.equal_opportunity_difference), -0.2, 'EOpp change');
  near(val(c.fairnessChange?.equalized_odds_difference), 0, 'EOdds change');
  // the change is the difference of the two evaluations' figures
  const evD = evaluate(dense.pred, dense.input, BOOT);
  const evP = evaluate(pruned.pred, dense.input, BOOT);
  for (const name of ['demographic_parity_difference', 'equal_opportunity_difference', 'equalized_odds_difference']) {
    near(val(c.fairnessChange?.[name]), val(evP.fairness?.[name])! - val(evD.fairness?.[name])!, name);
    const e = c.fairnessChange![name]!;
    assert.ok(e.low <= e.value && e.value <= e.high);
  }
  // identical models: every change is exactly zero in every resample
  const same = compare(dense.pred, dense.pred, dense.input, BOOT);
  for (const e of Object.values(same.fairnessChange ?? {})) assert.deepEqual(e, { value: 0, low: 0, high: 0 });
  assert.deepEqual(JSON.parse(JSON.stringify(c)), c);
});

test('a group with no positive sample has no true-positive rate and is left out of the equal-opportunity difference', () => {
  // A: TPR 0.8 as above; B: 3 negatives only (1 predicted positive); C: 2 positives, both found (TPR 1).
  const samples = [...A, ...rep(1, 0, 1), ...rep(2, 0, 0), ...rep(2, 1, 1)];
  const groups = [...A.map(() => 0), 1, 1, 1, 2, 2];
  const { pred, input } = binary(samples, groups, 3);
  const ev = evaluate(pred, input, BOOT);
  assert.equal(ev.groups[1].rates?.true_positive_rate, null);
  near(val(ev.groups[1].rates?.false_positive_rate), 1 / 3, 'FPR B');
  assert.equal(ev.groups[2].rates?.false_positive_rate, null);
  near(val(ev.fairness?.equal_opportunity_difference), 0.2, 'EOpp over A and C'); // 1 − 0.8
  near(val(ev.fairness?.demographic_parity_difference), 1 - 1 / 3, 'DPD'); // C selects 2/2, B 1/3, A 5/10
  // equalized odds: TPR gap over {A, C} = 0.2, FPR gap over {A, B} = 1/3 − 0.2
  near(val(ev.fairness?.equalized_odds_difference), 0.2, 'EOdds');
  assert.equal(ev.groups[1].classAccuracy?.[1].n, 0);
  assert.equal(ev.groups[1].classAccuracy?.[1].accuracy, null);
  assert.deepEqual(JSON.parse(JSON.stringify(ev)), ev);
});

test("the differences' intervals are the stratified bootstrap of the figure, resamples where a covered group's rate is undefined skipped", () => {
  // Reproduced by materialising each resample with the same draws: for each group in order, n_g draws
  // rng.int(n_g) among the group's members in data order.
  const rng = new Rng(17);
  const samples: Array<[number, number]> = [];
  const groups: number[] = [];
  for (let i = 0; i < 90; i++) {
    const g = i % 3;
    // group 2: 2 positives of 30, so about (28/30)^30 ≈ 13% of resamples draw none
    const y = g === 2 ? (i < 6 ? 1 : 0) : rng.next() < 0.5 ? 1 : 0;
    const p = rng.next() < 0.7 ? y : 1 - y;
    samples.push([y, p]);
    groups.push(g);
  }
  const { pred, input } = binary(samples, groups, 3);
  const opts: BootstrapOptions = { resamples: 400, confidence: 0.9, seed: 11 };
  const ev = evaluate(pred, input, opts);
  const members = [0, 1, 2].map((g) => groups.map((x, i) => (x === g ? i : -1)).filter((i) => i >= 0));
  const rate = (idx: number[], among: (y: number, p: number) => boolean, counts: (y: number, p: number) => boolean) => {
    const sel = idx.filter((i) => among(...samples[i]));
    return sel.length ? sel.filter((i) => counts(...samples[i])).length / sel.length : NaN;
  };
  const tpr = (idx: number[]) =>
    rate(
      idx,
      (y) => y === 1,
      (_y, p) => p === 1,
    );
  const fpr = (idx: number[]) =>
    rate(
      idx,
      (y) => y === 0,
      (_y, p) => p === 1,
    );
  const sel = (idx: number[]) =>
    rate(
      idx,
      () => true,
      (_y, p) => p === 1,
    );
  const range = (xs: number[]) => (xs.some(Number.isNaN) ? NaN : Math.max(...xs) - Math.min(...xs));
  const figures = (sample: number[][]) => {
    const t = range(sample.map(tpr));
    const f = range(sample.map(fpr));
    return { dpd: range(sample.map(sel)), eopp: t, eodds: Number.isNaN(t) || Number.isNaN(f) ? NaN : Math.max(t, f) };
  };
  const point = figures(members);
  assert.ok(!Number.isNaN(point.eopp), 'every group has a positive sample');
  const boot = { dpd: [] as number[], eopp: [] as number[], eodds: [] as number[] };
  const r = new Rng(opts.seed);
  let skipped = 0;
  for (let b = 0; b < opts.resamples; b++) {
    const sample = members.map((m) => Array.from({ length: m.length }, () => m[r.int(m.length)]));
    const f = figures(sample);
    if (Number.isNaN(f.eopp)) skipped++;
    boot.dpd.push(f.dpd);
    boot.eopp.push(f.eopp);
    boot.eodds.push(f.eodds);
  }
  assert.ok(skipped > 0, 'some resamples draw no positive of group 2: the case under test');
  const want = (v: number, xs: number[]) => interval(v, Float64Array.from(xs), opts.confidence);
  const close = (got: Estimate | null | undefined, w: Estimate, what: string) =>
    assert.ok(
      got &&
        Math.abs(got.value - w.value) < 1e-12 &&
        Math.abs(got.low - w.low) < 1e-12 &&
        Math.abs(got.high - w.high) < 1e-12,
      `${what}: ${JSON.stringify(got)} vs ${JSON.stringify(w)}`,
    );
  close(ev.fairness?.demographic_parity_difference, want(point.dpd, boot.dpd), 'demographic parity');
  close(ev.fairness?.equal_opportunity_difference, want(point.eopp, boot.eopp), 'equal opportunity');
  close(ev.fairness?.equalized_odds_difference, want(point.eodds, boot.eodds), 'equalized odds');
  // the per-group rate's own interval: resamples with no positive skipped too
  const g2 = members[2];
  const r2 = new Rng(opts.seed);
  const tprBoot: number[] = [];
  for (let b = 0; b < opts.resamples; b++) {
    const sample = members.map((m) => Array.from({ length: m.length }, () => m[r2.int(m.length)]));
    tprBoot.push(tpr(sample[2]));
  }
  close(ev.groups[2].rates?.true_positive_rate, want(tpr(g2), tprBoot), 'TPR of group 2');
});

test('bootstrap.ts: the stratified resampler draws n_g members of each group in the documented order', () => {
  const groupIds = Int32Array.from([1, 0, 1, 1, 0, 2]);
  const members = groupMembers(groupIds, 4);
  assert.deepEqual(
    members.map((m) => [...m]),
    [[1, 4], [0, 2, 3], [5], []],
  );
  const rs = new StratifiedResampler(members, 9);
  const rng = new Rng(9);
  for (let b = 0; b < 5; b++) {
    const drawn = rs.next().map((d) => [...d]);
    const want = members.map((m) => Array.from({ length: m.length }, () => m[rng.int(m.length)]));
    assert.deepEqual(drawn, want);
  }
});

// ---- The table covers everything evaluate and compare output ------------------------------------

/** Every metric an evaluation (and a comparison) holds, found by walking the objects, as table names. */
function outputNames(ev: Evaluation, c: Comparison): Set<string> {
  const names = new Set<string>();
  const fail = (where: string, key: string) =>
    assert.fail(
      `${where}.${key} is not a metric of the metric table: add an entry to METRICS in src/core/metric-table.ts`,
    );
  const evFields: Record<string, string | null> = {
    split: null,
    n: null,
    groups: null,
    accuracy: 'accuracy',
    auroc: 'auroc',
    worstGroup: 'worst_group_accuracy',
    largestGap: 'largest_gap',
    classAccuracy: 'class_accuracy',
    rates: null,
    fairness: null,
  };
  for (const key of Object.keys(ev)) {
    if (!(key in evFields)) fail('Evaluation', key);
    if (evFields[key]) names.add(evFields[key]!);
  }
  const groupFields: Record<string, string | null> = {
    group: null,
    n: null,
    warning: null,
    accuracy: 'accuracy',
    auroc: 'auroc',
    classAccuracy: 'class_accuracy',
    rates: null,
  };
  for (const g of ev.groups) {
    for (const key of Object.keys(g)) {
      if (!(key in groupFields)) fail('GroupMetrics', key);
      if (groupFields[key]) names.add(groupFields[key]!);
    }
    for (const key of Object.keys(g.rates ?? {})) names.add(key);
  }
  for (const key of Object.keys(ev.rates ?? {})) names.add(key);
  for (const key of Object.keys(ev.fairness ?? {})) names.add(key);
  const cFields: Record<string, string | null> = {
    groups: null,
    exemplars: null,
    accuracyChange: 'accuracy',
    worstGroupChange: 'worst_group_accuracy',
    gapChange: 'largest_gap',
    fairnessChange: null,
  };
  for (const key of Object.keys(c)) {
    if (!(key in cFields)) fail('Comparison', key);
    if (cFields[key]) names.add(cFields[key]!);
  }
  for (const key of Object.keys(c.fairnessChange ?? {})) names.add(key);
  for (const g of c.groups) {
    for (const key of Object.keys(g)) {
      const map: Record<string, string | null> = { group: null, accuracyChange: 'accuracy', excessGap: 'excess_gap' };
      if (!(key in map)) fail('Comparison.groups[]', key);
      if (map[key]) names.add(map[key]!);
    }
  }
  return names;
}

for (const [task, K] of [
  ['binary', 2],
  ['multiclass', 3],
] as Array<[Task, number]>) {
  test(`the metric table lists every metric evaluate and compare output, and they output every entry (${task})`, () => {
    const rng = new Rng(3);
    const n = 120;
    const probs = Float32Array.from({ length: n * K }, () => rng.next());
    const probs2 = Float32Array.from({ length: n * K }, () => rng.next());
    const input: EvaluationInput = {
      labels: Int32Array.from({ length: n }, () => rng.int(K)),
      groupIds: Int32Array.from({ length: n }, (_, i) => i % 3),
      groupNames: ['a', 'b', 'c'],
      rows: Int32Array.from({ length: n }, (_, i) => i + 1),
      classNames: Array.from({ length: K }, (_, k) => `c${k}`),
      split: 'test',
    };
    const ev = evaluate({ probs, numClasses: K }, input, { ...BOOT, resamples: 20 });
    const c = compare({ probs, numClasses: K }, { probs: probs2, numClasses: K }, input, { ...BOOT, resamples: 20 });
    const names = outputNames(ev, c);
    for (const name of names) {
      const m = METRICS.find((x) => x.name === name);
      assert.ok(m, `evaluate outputs '${name}', which the metric table lacks`);
      assert.ok(appliesTo(m, task), `'${name}' is output for a ${task} task but the table says binary only`);
    }
    const expected = METRICS.filter((m) => appliesTo(m, task)).map((m) => m.name);
    assert.deepEqual([...names].sort(), [...expected].sort(), 'every table entry for the task is in the output');
    // and the readers find each one through the table
    for (const m of METRICS.filter((x) => appliesTo(x, task))) {
      const found = readThroughTable(m, ev, c);
      assert.ok(found, `the table's reader finds no value of '${m.name}'`);
    }
    if (task === 'multiclass') {
      assert.equal(ev.fairness, undefined);
      assert.equal(ev.groups[0].rates, undefined);
      assert.equal(c.fairnessChange, undefined);
      assert.equal(ev.classAccuracy?.length, 3);
    }
  });
}

function readThroughTable(m: MetricDef, ev: Evaluation, c: Comparison): boolean {
  switch (m.kind) {
    case 'rate':
    case 'score':
      return overallEstimate(m, ev) !== null && ev.groups.every((g) => groupEstimate(m, g) !== null);
    case 'class-rate':
      return (ev.classAccuracy?.length ?? 0) > 0;
    case 'between-groups':
      return betweenGroupsEstimate(m, ev) !== null && changeEstimate(m, c) !== null;
    case 'paired-group':
      return c.groups.every((g) => g.excessGap !== undefined);
  }
}

test('the metric table: names are unique, between-group figures compare rates of the table', () => {
  const names = METRICS.map((m) => m.name);
  assert.equal(new Set(names).size, names.length);
  for (const m of METRICS) {
    if (m.kind !== 'between-groups') continue;
    for (const of of m.of) {
      const r = metricDef(of);
      assert.equal(r.kind, 'rate', `${m.name} compares ${of}, which must be a rate`);
      assert.ok(!r.binaryOnly || m.binaryOnly, `${m.name} applies to every task but ${of} is binary only`);
    }
  }
  assert.throws(() => metricDef('no_such_metric'), /metric table/);
});

// ---- The report, the side panel and the curves panel read the table -----------------------------

/** A session of the hand-made example: the dense model and one pruned point (sample 0 missed), both measured for real. */
function handSession(task: Task = 'binary', older = false): SessionResults {
  const dense = binary(SAMPLES, GROUPS, 2);
  const prunedSamples = SAMPLES.map((s, i) => (i === 0 ? ([1, 0] as [number, number]) : s));
  const pruned = binary(prunedSamples, GROUPS, 2);
  const strip = <T>(x: T): T => {
    // a results file written before the metric table: none of the new fields
    const y = JSON.parse(JSON.stringify(x));
    const walk = (o: Record<string, unknown>) => {
      for (const k of ['rates', 'fairness', 'classAccuracy', 'fairnessChange']) delete o[k];
      for (const v of Object.values(o)) if (v && typeof v === 'object') walk(v as Record<string, unknown>);
    };
    walk(y);
    return y;
  };
  const evD = evaluate(dense.pred, dense.input, BOOT);
  const evP = evaluate(pruned.pred, dense.input, BOOT);
  const cmp = compare(dense.pred, pruned.pred, dense.input, BOOT);
  const size = { parameters: 10, prunableParameters: 8, nonZeroParameters: 4, weightBytes: 40, gzipBytes: 30 };
  const point: PrunedPoint = {
    id: 's0.50-pw',
    targetSparsity: 0.5,
    loss: 'pw',
    method: 'magnitude-layer',
    achievedSparsity: 0.5,
    size,
    training: {
      epochs: 1,
      steps: 1,
      seconds: 1,
      finalTrainLoss: 0.1,
      validationLoss: null,
      validationAccuracy: null,
      stoppedEarly: false,
      samplesPerSecond: 1,
    },
    evaluation: older ? strip(evP) : evP,
    comparison: older ? strip(cmp) : cmp,
    modelDir: 'points/s0.50-pw',
  };
  return {
    schemaVersion: 1,
    sessionId: 'hand',
    status: 'completed',
    createdAt: '2026-01-01T00:00:00Z',
    engine: {
      version: '0',
      backend: { name: 'cpu', tfjsBackend: 'cpu', tfjsVersion: '4.22.0', notes: [] },
      node: 'v20',
      platform: 'linux-x64',
    },
    model: { path: '/w/model.json', format: 'tfjs-layers', sha256: '', inputShape: [3], outputUnits: 2, task, size },
    data: {
      path: '/w/data.csv',
      sha256: '',
      rows: 20,
      label: { column: 'y', classes: ['no', 'yes'], order: 'given' },
      groupColumns: ['g'],
      groups: ['g=A', 'g=B'].map((name) => ({
        name,
        values: { g: name.slice(2) },
        counts: { train: 0, validation: 0, test: 10 },
      })),
      features: ['a'],
      imageColumn: null,
      pixelScale: null,
      preprocessing: null,
      split: { source: 'column', column: 'split', counts: { train: 0, validation: 0, test: 20 }, assignment: '' },
      warnings: [],
    },
    config: {
      sparsities: [0.5],
      losses: ['pw'],
      method: 'magnitude-layer',
      epochs: 1,
      batchSize: 8,
      learningRate: 0.01,
      patience: 0,
      seed: 1,
      pw: { minWeight: 0.3, gamma: 1 },
      bootstrap: { resamples: BOOT.resamples, confidence: BOOT.confidence },
    },
    dense: older ? strip(evD) : evD,
    points: [point],
  };
}

test('report.md: a table of the binary fairness differences with their change, the group rates, and accuracy by class', () => {
  const md = renderReport(handSession());
  const section = md.slice(md.indexOf('## Fairness differences between groups'));
  assert.ok(md.includes('## Fairness differences between groups'), 'the section is there');
  assert.match(
    section,
    /\| model \| demographic parity difference \[95% CI\] \| equal opportunity difference \[95% CI\] \| equalized odds difference \[95% CI\] \|/,
  );
  // dense: 10.0%, 55.0%, 63.3% (hand values above); pruned: 20.0% (+10.0 pts), 35.0% (−20.0 pts), 63.3% (+0.0 pts)
  assert.match(section, /\| dense \| 10\.0% \[[^\]]+\] \| 55\.0% \[[^\]]+\] \| 63\.3% \[[^\]]+\] \|/);
  assert.match(
    section,
    /\| s0\.50-pw \| 20\.0% \[[^\]]+\]; change \+10\.0 pts \[[^\]]+\] \| 35\.0% \[[^\]]+\]; change −20\.0 pts \[[^\]]+\] \| 63\.3% \[[^\]]+\]; change \+0\.0 pts/,
  );
  // dense per-group rates: A 80.0% / 20.0% / 50.0%, B 25.0% / 83.3% / 60.0%
  assert.match(md, /\| g=A \| 10 \| 80\.0% \[[^\]]+\] \| 20\.0% \[[^\]]+\] \| 50\.0% \[[^\]]+\] \|/);
  assert.match(md, /\| g=B \| 10 \| 25\.0% \[[^\]]+\] \| 83\.3% \[[^\]]+\] \| 60\.0% \[[^\]]+\] \|/);
  // accuracy by group × class: B class no 1/6, class yes 1/4
  assert.match(md, /\| g=B \| 16\.7% \(n 6\) \| 25\.0% \(n 4\) \|/);
});

test('report.md and the side panel: no fairness table for multiclass tasks or for results files older than the table', () => {
  for (const r of [handSession('multiclass'), handSession('binary', true)]) {
    const md = renderReport(r);
    assert.ok(!md.includes('Fairness differences'), 'no section');
    assert.ok(!md.includes('true-positive rate'));
    const html = renderReportBody({
      sessionDir: '/s',
      results: r,
      verdicts: {},
      canCommit: true,
      recommendation: NO_RECOMMENDATION,
    });
    assert.ok(!html.includes('demographic parity difference'));
  }
});

test('side panel: the binary fairness differences in a small table, the change coloured by which way is better', () => {
  const html = renderReportBody({
    sessionDir: '/s',
    results: handSession(),
    verdicts: {},
    canCommit: true,
    recommendation: NO_RECOMMENDATION,
  });
  const dense = html.slice(html.indexOf('<section class="dense">'), html.indexOf('</section>'));
  assert.match(dense, /<table class="fairness">/);
  assert.match(dense, /demographic parity difference<\/th><td>10\.0% <span class="ci">/);
  const point = html.slice(html.indexOf('data-point="s0.50-pw"'));
  // demographic parity difference rose 10 points: worse; equal opportunity fell 20 points: better
  assert.match(
    point,
    /demographic parity difference<\/th><td>20\.0% <span class="ci">\[[^\]]+\]<\/span><\/td><td><span class="worse">\+10\.0 pts<\/span>/,
  );
  assert.match(
    point,
    /equal opportunity difference<\/th><td>35\.0% <span class="ci">\[[^\]]+\]<\/span><\/td><td><span class="better">−20\.0 pts<\/span>/,
  );
  assert.match(
    point,
    /equalized odds difference<\/th><td>63\.3% <span class="ci">\[[^\]]+\]<\/span><\/td><td><span class="">\+0\.0 pts<\/span>/,
  );
});

test("curves panel: the metric picker lists the table's per-group metrics for the task, and plots a rate per group", () => {
  const r = handSession();
  const view: SessionView = {
    sessionDir: '/s',
    results: r,
    verdicts: {},
    canCommit: true,
    recommendation: NO_RECOMMENDATION,
  };
  const binaryMetrics = curvesMetrics(view);
  for (const m of ['accuracy', 'auroc', 'true_positive_rate', 'false_positive_rate', 'selection_rate', 'excessGap'])
    assert.ok(binaryMetrics.includes(m), m);
  const multi = curvesMetrics({ ...view, results: handSession('multiclass') });
  assert.deepEqual(multi.slice(0, 2), ['accuracy', 'auroc']);
  assert.equal(multi.at(-1), 'excessGap');
  assert.ok(multi.every((m) => m === 'excessGap' || !metricDef(m).binaryOnly));
  assert.equal(METRIC_LABELS.true_positive_rate, 'true-positive rate');
  const state = { ...DEFAULT_CURVES_STATE, metric: 'true_positive_rate' };
  const series = groupSeries(view, state);
  // pruned point: TPR of A 3/5, of B 1/4
  assert.deepEqual(
    series.map((s) => [s.group, s.points.map((p) => p.y)]),
    [
      ['g=A', [0.6]],
      ['g=B', [0.25]],
    ],
  );
  assert.deepEqual(
    referenceLines(view, state).map((l) => l.y),
    [0.8, 0.25],
  );
  const lines = tooltipLines(series[0], series[0].points[0], 'true_positive_rate', 'sparsity');
  assert.match(lines[1], /^true-positive rate 60\.0%, 95% CI/);
  assert.match(lines[2], /fraction of the positive samples predicted positive; higher is better/);
  assert.equal(sanitizeState({ metric: 'selection_rate' }).metric, 'selection_rate');
  assert.equal(sanitizeState({ metric: 'excessGap' }).metric, 'excessGap');
  assert.equal(sanitizeState({ metric: 'no_such' }).metric, 'accuracy');
  assert.equal(formatMetric('excessGap', 0.02), '+2.0 pts');
  assert.equal(formatMetric('auroc', 0.91234), '0.912');
});

test('changes that round to zero read +0.0, never −0.0', () => {
  const m = metricDef('demographic_parity_difference');
  assert.equal(formatChange(m, -2.7e-17), '+0.0 pts');
  assert.equal(formatChange(m, -0.0004), '+0.0 pts');
  assert.equal(formatChange(m, -0.0006), '−0.1 pts');
  assert.equal(formatChange(m, 0.1), '+10.0 pts');
  assert.equal(formatChange(metricDef('auroc'), -0.0001), '+0.000');
  assert.equal(formatChange(metricDef('auroc'), -0.002), '−0.002');
});
