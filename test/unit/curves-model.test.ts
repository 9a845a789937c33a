/**
 * The fairness curves panel's state logic: which series the chart draws and with which numbers,
 * the dense reference lines, worst-group/gap summaries, the table of points with the gate's
 * verdicts, the commit button's state and reason, the CSV export, restored state, and the FLOPs
 * estimate (multiply-adds per weight from a topology, zeros from weight files).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import type { Estimate, Evaluation, LossName, PrunedPoint, SessionResults } from '../../src/protocol/results';
import type { CurvesState, SessionView } from '../../src/protocol/webview';
import { checkPoint, DEFAULT_POLICY, recommendPoint } from '../../src/shared/gate';
import {
  chartTextRows,
  commitState,
  DEFAULT_CURVES_STATE,
  flopsReduction,
  groupSeries,
  macProfile,
  OKABE_ITO,
  pointDetail,
  referenceLines,
  sanitizeState,
  seedRuns,
  summarySeries,
  tableCsv,
  tableRows,
  tableCells,
  toggle,
  weightZeroCounts,
} from '../../src/ui/curves-model';
import { repoRoot } from '../helpers';

const est = (value: number, half = 0.02): Estimate => ({ value, low: value - half, high: value + half });

function evaluation(acc: Record<string, number>, n: Record<string, number>): Evaluation {
  const groups = Object.entries(acc).map(([group, a]) => ({
    group,
    n: n[group],
    accuracy: est(a),
    auroc: est(Math.min(1, a + 0.05), 0.01),
  }));
  const worst = groups.reduce((w, g) => (g.accuracy.value < w.accuracy.value ? g : w));
  const best = groups.reduce((w, g) => (g.accuracy.value > w.accuracy.value ? g : w));
  const total = groups.reduce((s, g) => s + g.n, 0);
  const overall = groups.reduce((s, g) => s + g.accuracy.value * g.n, 0) / total;
  return {
    split: 'test',
    n: total,
    accuracy: est(overall, 0.01),
    auroc: null,
    groups,
    worstGroup: { group: worst.group, accuracy: worst.accuracy },
    largestGap: est(best.accuracy.value - worst.accuracy.value, 0.03),
  };
}

const N = { 'ink=warm': 400, 'ink=cool': 100 };
const DENSE = { 'ink=warm': 0.95, 'ink=cool': 0.9 };

function point(
  sparsity: number,
  loss: LossName,
  acc: Record<string, number>,
  achieved = sparsity - 0.001,
): PrunedPoint {
  const evaluationP = evaluation(acc, N);
  const denseE = evaluation(DENSE, N);
  const overallChange = evaluationP.accuracy.value - denseE.accuracy.value;
  return {
    id: `s${sparsity.toFixed(2)}-${loss}`,
    targetSparsity: sparsity,
    loss,
    method: 'magnitude-layer',
    achievedSparsity: achieved,
    size: {
      parameters: 1000,
      prunableParameters: 900,
      nonZeroParameters: Math.round(100 + 900 * (1 - achieved)),
      weightBytes: 4000,
      gzipBytes: 2048,
    },
    training: {
      epochs: 1,
      steps: 10,
      seconds: 1,
      finalTrainLoss: 0.1,
      validationLoss: null,
      validationAccuracy: null,
      stoppedEarly: false,
      samplesPerSecond: 100,
    },
    evaluation: evaluationP,
    comparison: {
      accuracyChange: est(overallChange, 0.01),
      worstGroupChange: est(evaluationP.worstGroup.accuracy.value - denseE.worstGroup.accuracy.value, 0.01),
      gapChange: est(evaluationP.largestGap.value - denseE.largestGap.value, 0.01),
      groups: Object.keys(acc).map((g) => ({
        group: g,
        accuracyChange: est(acc[g] - DENSE[g as keyof typeof DENSE], 0.02),
        excessGap: est(DENSE[g as keyof typeof DENSE] - acc[g] - -overallChange, 0.02),
      })),
      exemplars: { total: 0, byGroup: [] },
    },
    modelDir: `points/s${sparsity.toFixed(2)}-${loss}`,
  };
}

function session(points: PrunedPoint[], canCommit = true): SessionView {
  const results = {
    schemaVersion: 1,
    sessionId: '2025-01-01T00-00-00-abc',
    status: 'completed',
    createdAt: '2025-01-01T00:00:00Z',
    engine: {
      version: '0',
      backend: { name: 'cpu', tfjsBackend: 'cpu', tfjsVersion: '4.22.0', notes: [] },
      node: 'v20',
      platform: 'linux-x64',
    },
    model: {
      path: '/w/model/model.json',
      format: 'tfjs-layers',
      sha256: '',
      inputShape: [3],
      outputUnits: 1,
      task: 'binary',
      size: points[0]?.size ?? {
        parameters: 1000,
        prunableParameters: 900,
        nonZeroParameters: 1000,
        weightBytes: 4000,
        gzipBytes: 3900,
      },
    },
    data: {
      path: '/w/data.csv',
      sha256: '',
      rows: 500,
      label: { column: 'y', classes: ['0', '1'], order: 'integer' },
      groupColumns: ['ink'],
      groups: [
        { name: 'ink=warm', values: { ink: 'warm' }, counts: { train: 1, validation: 1, test: 400 } },
        { name: 'ink=cool', values: { ink: 'cool' }, counts: { train: 1, validation: 1, test: 100 } },
      ],
      features: ['a'],
      imageColumn: null,
      pixelScale: null,
      preprocessing: null,
      split: { source: 'seeded', counts: { train: 1, validation: 1, test: 500 }, assignment: '' },
      warnings: [],
    },
    config: {
      sparsities: [0.5, 0.9],
      losses: ['ce', 'pw'],
      method: 'magnitude-layer',
      epochs: 1,
      batchSize: 8,
      learningRate: 0.01,
      patience: 0,
      seed: 1,
      pw: { minWeight: 0.75, gamma: 5 },
      bootstrap: { resamples: 100, confidence: 0.95 },
    },
    dense: evaluation(DENSE, N),
    points,
  } as SessionResults;
  return {
    sessionDir: '/w/.fairprune/sessions/x',
    results,
    verdicts: Object.fromEntries(points.map((p) => [p.id, checkPoint(p, DEFAULT_POLICY)])),
    canCommit,
    recommendation: recommendPoint(results, DEFAULT_POLICY),
  };
}

// points listed out of order on purpose: the model sorts by x
const POINTS = [
  point(0.9, 'pw', { 'ink=warm': 0.93, 'ink=cool': 0.86 }),
  point(0.5, 'ce', { 'ink=warm': 0.95, 'ink=cool': 0.89 }),
  point(0.9, 'ce', { 'ink=warm': 0.92, 'ink=cool': 0.7 }),
  point(0.5, 'pw', { 'ink=warm': 0.95, 'ink=cool': 0.9 }),
];
const VIEW = session(POINTS);
const state = (s: Partial<CurvesState> = {}): CurvesState => ({ ...DEFAULT_CURVES_STATE, ...s });

test('one series per group × loss, with the session numbers sorted by sparsity; groups by colour, losses by dash', () => {
  const series = groupSeries(VIEW, state());
  assert.deepEqual(
    series.map((s) => s.key),
    ['ink=warm|ce', 'ink=warm|pw', 'ink=cool|ce', 'ink=cool|pw'],
  );
  const coolCe = series.find((s) => s.key === 'ink=cool|ce')!;
  assert.deepEqual(
    coolCe.points.map((p) => [p.x, p.y, p.n, p.pointId]),
    [
      [0.499, 0.89, 100, 's0.50-ce'],
      [0.899, 0.7, 100, 's0.90-ce'],
    ],
  );
  assert.equal(coolCe.points[1].low, 0.7 - 0.02);
  assert.equal(coolCe.points[1].high, 0.7 + 0.02);
  // same group, same colour; same loss, same dash; the two differ
  assert.equal(series[0].colour, OKABE_ITO[0]);
  assert.equal(series[2].colour, OKABE_ITO[1]);
  assert.equal(series[0].colour, series[1].colour);
  assert.deepEqual(series[0].dash, series[2].dash);
  assert.notDeepEqual(series[0].dash, series[1].dash);
});

test('toggles hide groups and losses; a loss with no point yet draws no series (live sessions)', () => {
  const hidden = toggle(toggle(state(), { group: 'ink=warm' }), { loss: 'pw' });
  assert.deepEqual(
    groupSeries(VIEW, hidden).map((s) => s.key),
    ['ink=cool|ce'],
  );
  assert.deepEqual(toggle(hidden, { group: 'ink=warm' }).hiddenGroups, []);
  const live = session(POINTS.filter((p) => p.loss === 'ce').slice(0, 1));
  assert.deepEqual(
    groupSeries(live, state()).map((s) => [s.key, s.points.length]),
    [
      ['ink=warm|ce', 1],
      ['ink=cool|ce', 1],
    ],
  );
});

test('metric switch: AUROC and the excess gap ψ per group; dense references match the dense model (ψ: one line at 0)', () => {
  const auroc = groupSeries(VIEW, state({ metric: 'auroc' })).find((s) => s.key === 'ink=warm|pw')!;
  assert.deepEqual(
    auroc.points.map((p) => p.y),
    [1, 0.93 + 0.05],
  ); // min(1, acc + 0.05)
  const psi = groupSeries(VIEW, state({ metric: 'excessGap' })).find((s) => s.key === 'ink=cool|ce')!;
  // ψ = [A_g(dense) − A_g(pruned)] − [A(dense) − A(pruned)], overall accuracy weighted by n (400 warm, 100 cool)
  const overall = (w: number, c: number) => (400 * w + 100 * c) / 500;
  const psi90 = 0.9 - 0.7 - (overall(0.95, 0.9) - overall(0.92, 0.7));
  assert.ok(Math.abs(psi.points[1].y - psi90) < 1e-12);
  assert.ok(Math.abs(psi90 - 0.136) < 1e-12); // 0.2 − 0.064 by hand
  assert.deepEqual(
    referenceLines(VIEW, state()).map((r) => [r.group, r.y]),
    [
      ['ink=warm', 0.95],
      ['ink=cool', 0.9],
    ],
  );
  assert.deepEqual(
    referenceLines(VIEW, state({ metric: 'excessGap' })).map((r) => r.y),
    [0],
  );
  assert.deepEqual(
    referenceLines(VIEW, state({ hiddenGroups: ['ink=cool'] })).map((r) => r.group),
    ['ink=warm'],
  );
});

test('worst-group accuracy and largest gap per loss against sparsity', () => {
  const s = summarySeries(VIEW, state());
  assert.deepEqual(
    s.map((x) => x.key),
    ['worst|ce', 'gap|ce', 'worst|pw', 'gap|pw'],
  );
  assert.deepEqual(
    s[0].points.map((p) => [p.y, p.group]),
    [
      [0.89, 'ink=cool'],
      [0.7, 'ink=cool'],
    ],
  );
  assert.ok(Math.abs(s[1].points[1].y - 0.22) < 1e-12); // 0.92 − 0.70
  assert.ok(Math.abs(s[3].points[0].y - 0.05) < 1e-12); // 0.95 − 0.90
});

test('the table holds every point in sparsity then loss order with the gate verdict; the commit button says why it is disabled', () => {
  const rows = tableRows(VIEW);
  assert.deepEqual(
    rows.map((r) => [r.pointId, r.verdict]),
    [
      ['s0.50-ce', 'pass'],
      ['s0.50-pw', 'pass'],
      ['s0.90-ce', 'fail'], // cool drops 20 pts: over the 5-pt worst-group limit
      ['s0.90-pw', 'pass'], // worst 0.86 vs dense 0.90: 4 pts + 1 pt interval = 5, within the limit
    ],
  );
  // the recommended point: the sparsest that passes (s0.90-pw), marked in the table and its gate cell
  assert.deepEqual(
    rows.filter((r) => r.recommended).map((r) => r.pointId),
    ['s0.90-pw'],
  );
  assert.equal(tableCells(rows[3])[2], '★ pw');
  assert.equal(tableCells(rows[1])[2], 'pw');
  assert.equal(rows[2].worstGroup, 'ink=cool');
  assert.equal(rows[2].worstAccuracy.value, 0.7);
  assert.ok(Math.abs(rows[2].gap.value - 0.22) < 1e-12);
  assert.equal(rows[2].nonZeroParameters, 100 + Math.round(900 * 0.101));

  assert.deepEqual(commitState(VIEW, 's0.50-ce'), { enabled: true, label: 'Commit s0.50-ce' });
  const failing = commitState(VIEW, 's0.90-ce');
  assert.equal(failing.enabled, false);
  assert.match(failing.reason!, /^Fails the fairness gate: worst-group accuracy drops 21\.0 pts at the 95% bound/);
  assert.match(commitState(session(POINTS, false), 's0.50-ce').reason!, /Restricted Mode/);
  assert.match(commitState(VIEW, null).reason!, /Select a point/);
  assert.match(commitState(VIEW, 'nope').reason!, /no point nope/);

  const d = pointDetail(VIEW, 's0.90-ce')!;
  assert.deepEqual(
    d.groups.map((g) => [g.group, g.n, g.dense?.value, g.pruned?.value]),
    [
      ['ink=warm', 400, 0.95, 0.92],
      ['ink=cool', 100, 0.9, 0.7],
    ],
  );
  assert.deepEqual(
    d.rules.map((r) => r.passed),
    [false, false, true],
  );
});

test('CSV export: a header and one RFC 4180 row per point at full precision', () => {
  const csv = tableCsv(tableRows(VIEW, { 's0.50-ce': 0.25 }));
  const lines = csv.trimEnd().split('\r\n');
  assert.equal(lines.length, 5);
  assert.ok(csv.endsWith('\r\n'));
  const header = lines[0].split(',');
  const first = lines[1].split(',');
  const col = (name: string) => first[header.indexOf(name)];
  assert.equal(col('point'), 's0.50-ce');
  assert.equal(col('achieved_sparsity'), '0.499');
  assert.equal(col('flops_reduction'), '0.25');
  assert.equal(col('worst_group'), 'ink=cool');
  assert.equal(col('worst_group_accuracy'), '0.89');
  assert.equal(Number(col('accuracy')), (400 * 0.95 + 100 * 0.89) / 500);
  assert.equal(col('gate'), 'pass');
  assert.equal(lines[2].split(',')[header.indexOf('flops_reduction')], ''); // unknown stays empty
  // a group name with a comma and a quote is quoted
  const odd = session([point(0.5, 'ce', { 'ink=warm': 0.95, 'ink=cool': 0.89 })]);
  const p = odd.results.points[0];
  p.evaluation.worstGroup = { group: 'a, "b"', accuracy: est(0.5) };
  assert.match(tableCsv(tableRows(odd)), /,"a, ""b""",0\.5,/);
});

test('the screen-reader table has one row per plotted value', () => {
  const series = groupSeries(VIEW, state());
  const rows = chartTextRows(series, 'accuracy');
  assert.equal(rows.length, 8);
  assert.deepEqual(
    rows.find((r) => r[6] === 's0.90-ce' && r[0] === 'ink=cool'),
    ['ink=cool', 'ce', '89.9%', '70.0%', '68.0% – 72.0%', '100', 's0.90-ce'],
  );
});

test('a restored state is cleaned field by field', () => {
  assert.deepEqual(sanitizeState(null), DEFAULT_CURVES_STATE);
  assert.deepEqual(
    sanitizeState({
      sessionDir: '/s',
      xAxis: 'flops',
      metric: 'bogus',
      hiddenGroups: ['a', 3],
      hiddenLosses: ['pw', 'xx'],
      selected: 's0.50-ce',
    }),
    {
      sessionDir: '/s',
      xAxis: 'flops',
      metric: 'accuracy',
      hiddenGroups: ['a'],
      hiddenLosses: ['pw'],
      selected: 's0.50-ce',
    },
  );
});

test('FLOPs: multiply-adds per weight through a Sequential CNN, and the reduction from zero counts', () => {
  const layer = (class_name: string, config: Record<string, unknown>) => ({ class_name, config });
  const topology = {
    model_config: {
      class_name: 'Sequential',
      config: {
        layers: [
          layer('Conv2D', {
            name: 'c1',
            batch_input_shape: [null, 28, 28, 1],
            filters: 4,
            kernel_size: [3, 3],
            strides: [1, 1],
            padding: 'valid',
          }), // 26×26
          layer('MaxPooling2D', { name: 'p1', pool_size: [2, 2], strides: [2, 2], padding: 'valid' }), // 13×13
          layer('Conv2D', { name: 'c2', filters: 8, kernel_size: [3, 3], strides: [2, 2], padding: 'same' }), // 7×7
          layer('Flatten', { name: 'f' }),
          layer('Dense', { name: 'd', units: 10 }),
        ],
      },
    },
  };
  const profile = macProfile(topology);
  assert.ok(!('problem' in profile));
  assert.deepEqual(profile.kernels, [
    { layer: 'c1', weight: 'kernel', macsPerWeight: 676 },
    { layer: 'c2', weight: 'kernel', macsPerWeight: 49 },
    { layer: 'd', weight: 'kernel', macsPerWeight: 1 },
  ]);
  const stats = {
    'c1/kernel': { size: 36, zeros: 18 },
    'c2/kernel': { size: 288, zeros: 144 },
    'd/kernel': { size: 3920, zeros: 3920 },
    'c1/bias': { size: 4, zeros: 0 },
  };
  const dense = 36 * 676 + 288 * 49 + 3920;
  const kept = 18 * 676 + 144 * 49 + 0;
  assert.ok(Math.abs(flopsReduction(profile, stats)! - (1 - kept / dense)) < 1e-12);
  assert.equal(flopsReduction(profile, { 'c1/kernel': stats['c1/kernel'] }), undefined); // a kernel missing: unknown
  assert.match((macProfile({ class_name: 'Model', config: {} }) as { problem: string }).problem, /Sequential/);

  // zero counts from weight shards split mid-weight
  const values = new Float32Array([0, 1, 0, 2, 0, 0, 3]);
  const bytes = new Uint8Array(values.buffer);
  const shards: Record<string, Uint8Array> = { a: bytes.slice(0, 10), b: bytes.slice(10) };
  const counts = weightZeroCounts(
    [
      {
        paths: ['a', 'b'],
        weights: [
          { name: 'x/kernel', shape: [2, 2] },
          { name: 'x/bias', shape: [3] },
        ],
      },
    ],
    (p) => shards[p],
  );
  assert.deepEqual(counts, { 'x/kernel': { size: 4, zeros: 2 }, 'x/bias': { size: 3, zeros: 2 } });
});

test('FLOPs profile of the shared fashion-MNIST CNN (from its model.json)', (t) => {
  const file = path.resolve(repoRoot, '..', 'shared', 'models', 'tfjs-layers-fashion-mnist-cnn', 'model.json');
  if (!fs.existsSync(file)) return t.skip('../shared/models/tfjs-layers-fashion-mnist-cnn is absent');
  const profile = macProfile(JSON.parse(fs.readFileSync(file, 'utf8')).modelTopology);
  assert.ok(!('problem' in profile));
  // 28 → conv3 26 → pool 13 → conv3 11 → pool 5 → flatten → dense → dense
  assert.deepEqual(
    profile.kernels.map((k) => k.macsPerWeight),
    [676, 121, 1, 1],
  );
});

test('with --seeds: the chart and table show run 1 (the model to commit); the summary charts the mean across runs, whiskers their range', () => {
  const run2 = { ...point(0.9, 'ce', { 'ink=warm': 0.9, 'ink=cool': 0.6 }), id: 's0.90-ce-r2', run: 2 };
  const view = session([...POINTS, run2]);
  view.results.summaries = [
    {
      sparsity: 0.9,
      loss: 'ce',
      runs: 2,
      pointIds: ['s0.90-ce', 's0.90-ce-r2'],
      accuracy: { mean: 0.8, sd: 0.05, min: 0.78, max: 0.83 },
      worstGroupAccuracy: { mean: 0.65, sd: 0.07, min: 0.6, max: 0.7 },
      largestGap: { mean: 0.26, sd: 0.05, min: 0.22, max: 0.3 },
    },
  ];
  assert.ok(!tableRows(view).some((r) => r.pointId === 's0.90-ce-r2'), 'run 2 is no row to commit');
  assert.ok(!groupSeries(view, state()).some((s) => s.points.some((p) => p.pointId === 's0.90-ce-r2')));
  assert.equal(seedRuns(view), 2);
  const worstCe = summarySeries(view, state()).find((s) => s.key === 'worst|ce')!;
  assert.deepEqual(
    worstCe.points.map((p) => [p.pointId, p.y, p.low, p.high, p.runs]),
    [
      ['s0.50-ce', 0.89, 0.89 - 0.02, 0.89 + 0.02, 1], // one run: its value and 95% interval
      ['s0.90-ce', 0.65, 0.6, 0.7, 2], // two runs: the mean, whiskers from the least to the largest
    ],
  );
  const gapCe = summarySeries(view, state()).find((s) => s.key === 'gap|ce')!;
  assert.deepEqual([gapCe.points[1].y, gapCe.points[1].low, gapCe.points[1].high], [0.26, 0.22, 0.3]);
});
