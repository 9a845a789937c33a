/**
 * The fairness curves panel's logic, with no `vscode` and no DOM: which series the chart draws
 * (one per subgroup × loss), the dense reference lines, worst-group and gap summaries, what the
 * table of points holds, the selected point's detail and commit state, the CSV export, the text
 * table that stands in for the chart for screen readers, and the FLOPs estimate behind the
 * "FLOPs reduction" axis. The host (src/extension/curves-panel.ts) and the webview bundle
 * (webview/curves.ts) both import it; the unit tests check it against hand-computed values.
 */
import type { Estimate, LossName, PrunedPoint } from '../protocol/results';
import { LOSS_NAMES } from '../protocol/results';
import type { CurvesMetric, CurvesState, CurvesXAxis, SessionView } from '../protocol/webview';
import {
  formatValue,
  groupEstimate,
  groupMetrics,
  metricDef,
  METRICS,
  pct,
  signedPts,
  type MetricDef,
} from '../shared/metric-table';

export const DEFAULT_CURVES_STATE: CurvesState = {
  sessionDir: null,
  xAxis: 'sparsity',
  metric: 'accuracy',
  hiddenGroups: [],
  hiddenLosses: [],
  selected: null,
};

/**
 * Okabe & Ito's colour-blind-safe palette, minus black (invisible on dark themes); yellow last as it
 * is the weakest on light backgrounds. Groups take colours in the order the session lists them.
 */
export const OKABE_ITO = ['#E69F00', '#56B4E9', '#009E73', '#D55E00', '#0072B2', '#CC79A7', '#F0E442'] as const;

/** Losses are told apart by dash pattern and marker shape (not colour, which belongs to groups). */
type PointStyle = 'circle' | 'triangle' | 'rect' | 'rectRot' | 'star' | 'crossRot' | 'rectRounded' | 'cross';
export const LOSS_STYLE: Record<LossName, { dash: number[]; pointStyle: PointStyle }> = {
  ce: { dash: [], pointStyle: 'circle' },
  pw: { dash: [7, 4], pointStyle: 'triangle' },
  kd: { dash: [2, 3], pointStyle: 'rect' },
  'pw-weight-only': { dash: [10, 3, 2, 3], pointStyle: 'rectRot' },
  'pw-correction-only': { dash: [1, 3], pointStyle: 'star' },
  'group-balanced': { dash: [12, 4], pointStyle: 'rectRounded' },
  'group-dro': { dash: [4, 2], pointStyle: 'crossRot' },
  ceag: { dash: [8, 2, 1, 2], pointStyle: 'cross' },
};

/**
 * The table entry behind a curves metric: a per-group metric of the metric table by its name, or
 * `excessGap` (the name the panel's saved state has always used) for the table's `excess_gap`.
 */
export function curvesMetricDef(metric: CurvesMetric): MetricDef {
  return metricDef(metric === 'excessGap' ? 'excess_gap' : metric);
}

/** Every per-group metric the chart can plot, for any task: the table's rates and scores, then ψ. */
const ALL_CURVES_METRICS: CurvesMetric[] = [
  ...METRICS.filter((m) => m.kind === 'rate' || m.kind === 'score').map((m) => m.name),
  'excessGap',
];

/** The metrics the picker offers for a session: those of the table that apply to its task, then ψ. */
export function curvesMetrics(view: SessionView): CurvesMetric[] {
  return [...groupMetrics(view.results.model?.task ?? 'multiclass').map((m) => m.name), 'excessGap'];
}

/** The picker's labels, from the metric table. */
export const METRIC_LABELS: Record<CurvesMetric, string> = Object.fromEntries(
  ALL_CURVES_METRICS.map((m) => [m, curvesMetricDef(m).label]),
);

export const X_LABELS: Record<CurvesXAxis, string> = {
  sparsity: 'sparsity (fraction of prunable weights removed)',
  flops: 'FLOPs reduction (estimated)',
};

export { pct, signedPts };
export const formatMetric = (metric: CurvesMetric, x: number): string => formatValue(curvesMetricDef(metric), x);

export function groupColour(view: SessionView, group: string): string {
  const i = groupNames(view).indexOf(group);
  return OKABE_ITO[(i < 0 ? 0 : i) % OKABE_ITO.length];
}

/** Group names in the session's order (data record first, then anything only the evaluations name). */
export function groupNames(view: SessionView): string[] {
  const names = view.results.data.groups.map((g) => g.name);
  for (const g of view.results.dense?.groups ?? []) if (!names.includes(g.group)) names.push(g.group);
  for (const p of view.results.points)
    for (const g of p.evaluation.groups) if (!names.includes(g.group)) names.push(g.group);
  return names;
}

/** Losses present in the session, in the canonical order (configured ones first, even before their first point). */
export function lossNames(view: SessionView): LossName[] {
  const present = new Set<LossName>([
    ...(view.results.config?.losses ?? []),
    ...view.results.points.map((p) => p.loss),
  ]);
  return LOSS_NAMES.filter((l) => present.has(l));
}

/** The x of a point: achieved sparsity, or its estimated FLOPs reduction (undefined when not known). */
export function xOf(point: PrunedPoint, axis: CurvesXAxis, flops: Record<string, number> | null): number | undefined {
  if (axis === 'sparsity') return point.achievedSparsity;
  const f = flops?.[point.id];
  return f === undefined || !Number.isFinite(f) ? undefined : f;
}

/** A group's value of the metric at a point, with its interval; null when undefined (AUROC of one class). */
export function groupMetric(point: PrunedPoint, group: string, metric: CurvesMetric): Estimate | null {
  if (metric === 'excessGap') return point.comparison.groups.find((g) => g.group === group)?.excessGap ?? null;
  const g = point.evaluation.groups.find((x) => x.group === group);
  if (!g) return null;
  return groupEstimate(curvesMetricDef(metric), g);
}

export interface SeriesPoint {
  x: number;
  y: number;
  low: number;
  high: number;
  /** Test samples of the group. */
  n: number;
  pointId: string;
}

export interface Series {
  /** `group|loss`, stable. */
  key: string;
  group: string;
  loss: LossName;
  label: string;
  colour: string;
  dash: number[];
  pointStyle: string;
  /** Sorted by x. */
  points: SeriesPoint[];
}

const visible = (state: CurvesState) => ({
  group: (g: string) => !state.hiddenGroups.includes(g),
  loss: (l: LossName) => !state.hiddenLosses.includes(l),
});

/** The points that are models to commit: run 1 of each sparsity × loss (runs 2…N of `--seeds` are spread). */
export function firstRuns(view: SessionView): PrunedPoint[] {
  return view.results.points.filter((p) => !p.run || p.run === 1);
}

/** How many fine-tuning runs the session made per point (1 without `--seeds`). */
export function seedRuns(view: SessionView): number {
  return Math.max(1, ...(view.results.summaries ?? []).map((s) => s.runs));
}

/**
 * The main chart: one series per visible subgroup × loss that has at least one point with a value,
 * y = the metric of the group at each point, sorted by x.
 */
export function groupSeries(
  view: SessionView,
  state: CurvesState,
  flops: Record<string, number> | null = null,
): Series[] {
  const show = visible(state);
  const out: Series[] = [];
  for (const group of groupNames(view).filter(show.group)) {
    for (const loss of lossNames(view).filter(show.loss)) {
      const points: SeriesPoint[] = [];
      for (const p of firstRuns(view)) {
        if (p.loss !== loss) continue;
        const x = xOf(p, state.xAxis, flops);
        const e = groupMetric(p, group, state.metric);
        if (x === undefined || !e) continue;
        const n = p.evaluation.groups.find((g) => g.group === group)?.n ?? 0;
        points.push({ x, y: e.value, low: e.low, high: e.high, n, pointId: p.id });
      }
      if (!points.length) continue;
      points.sort((a, b) => a.x - b.x);
      out.push({
        key: `${group}|${loss}`,
        group,
        loss,
        label: `${group} · ${loss}`,
        colour: groupColour(view, group),
        dash: LOSS_STYLE[loss].dash,
        pointStyle: LOSS_STYLE[loss].pointStyle,
        points,
      });
    }
  }
  return out;
}

export interface ReferenceLine {
  group: string;
  label: string;
  colour: string;
  y: number;
  low: number;
  high: number;
}

/**
 * The dense model's per-group value as horizontal reference lines. The excess gap is 0 for the
 * dense model by definition: one "dense" line at 0.
 */
export function referenceLines(view: SessionView, state: CurvesState): ReferenceLine[] {
  const dense = view.results.dense;
  if (!dense) return [];
  if (state.metric === 'excessGap') return [{ group: '', label: 'dense (ψ = 0)', colour: '', y: 0, low: 0, high: 0 }];
  const show = visible(state);
  return dense.groups
    .filter((g) => show.group(g.group))
    .flatMap((g) => {
      const e = groupEstimate(curvesMetricDef(state.metric), g);
      return e
        ? [
            {
              group: g.group,
              label: `${g.group} · dense`,
              colour: groupColour(view, g.group),
              y: e.value,
              low: e.low,
              high: e.high,
            },
          ]
        : [];
    });
}

export interface SummarySeries {
  key: string;
  loss: LossName;
  kind: 'worst' | 'gap';
  label: string;
  dash: number[];
  pointStyle: string;
  points: Array<{ x: number; y: number; low: number; high: number; pointId: string; group?: string; runs?: number }>;
}

/** Worst-group accuracy and the largest gap against x, one series of each per visible loss. */
export function summarySeries(
  view: SessionView,
  state: CurvesState,
  flops: Record<string, number> | null = null,
): SummarySeries[] {
  const show = visible(state);
  const out: SummarySeries[] = [];
  for (const loss of lossNames(view).filter(show.loss)) {
    const pts = firstRuns(view)
      .filter((p) => p.loss === loss)
      .map((p) => ({ p, x: xOf(p, state.xAxis, flops) }))
      .filter((q): q is { p: PrunedPoint; x: number } => q.x !== undefined)
      .sort((a, b) => a.x - b.x);
    if (!pts.length) continue;
    // With several seeds: the mean across runs, the whisker their range; with one: the run, its 95% interval.
    const across = (p: PrunedPoint) => view.results.summaries?.find((s) => s.pointIds[0] === p.id && s.runs > 1);
    const w = pts.map(({ p, x }) => {
      const s = across(p);
      const e = p.evaluation.worstGroup.accuracy;
      return {
        x,
        y: s ? s.worstGroupAccuracy.mean : e.value,
        low: s ? s.worstGroupAccuracy.min : e.low,
        high: s ? s.worstGroupAccuracy.max : e.high,
        pointId: p.id,
        group: p.evaluation.worstGroup.group,
        runs: s?.runs ?? 1,
      };
    });
    const g = pts.map(({ p, x }) => {
      const s = across(p);
      const e = p.evaluation.largestGap;
      return {
        x,
        y: s ? s.largestGap.mean : e.value,
        low: s ? s.largestGap.min : e.low,
        high: s ? s.largestGap.max : e.high,
        pointId: p.id,
        runs: s?.runs ?? 1,
      };
    });
    out.push({
      key: `worst|${loss}`,
      loss,
      kind: 'worst',
      label: `worst group · ${loss}`,
      dash: LOSS_STYLE[loss].dash,
      pointStyle: LOSS_STYLE[loss].pointStyle,
      points: w,
    });
    out.push({
      key: `gap|${loss}`,
      loss,
      kind: 'gap',
      label: `largest gap · ${loss}`,
      dash: LOSS_STYLE[loss].dash,
      pointStyle: LOSS_STYLE[loss].pointStyle,
      points: g,
    });
  }
  return out;
}

export interface CommitState {
  enabled: boolean;
  label: string;
  /** Why the button is disabled, in words (also its tooltip). */
  reason?: string;
}

export function commitState(view: SessionView, pointId: string | null): CommitState {
  if (!pointId)
    return { enabled: false, label: 'Commit', reason: 'Select a point in the table or on the chart to commit it.' };
  const point = view.results.points.find((p) => p.id === pointId);
  if (!point) return { enabled: false, label: 'Commit', reason: `This session has no point ${pointId}.` };
  const label = `Commit ${pointId}`;
  if (!view.canCommit)
    return {
      enabled: false,
      label,
      reason: 'Committing is disabled in Restricted Mode: trust this workspace to commit.',
    };
  const v = view.verdicts[pointId];
  if (!v) return { enabled: false, label, reason: 'No gate verdict for this point yet.' };
  if (!v.passed) {
    const failed = v.rules.filter((r) => !r.passed).map((r) => r.message);
    return {
      enabled: false,
      label,
      reason:
        `Fails the fairness gate: ${failed.join('; ')}. ` +
        'Change the fairPrune.gate settings, pick a passing point, ' +
        'or use "Fair Prune: Commit Pruned Model…" to override with a reason.',
    };
  }
  return { enabled: true, label };
}

export interface TableRow {
  pointId: string;
  targetSparsity: number;
  achievedSparsity: number;
  flopsReduction: number | null;
  loss: LossName;
  accuracy: Estimate;
  worstGroup: string;
  worstAccuracy: Estimate;
  gap: Estimate;
  nonZeroParameters: number;
  gzipBytes: number;
  passed: boolean | null;
  verdict: string;
  /** The recommended point: the sparsest that passes the gate. */
  recommended: boolean;
}

/** Every point of the session, by target sparsity then loss (canonical order). */
export function tableRows(view: SessionView, flops: Record<string, number> | null = null): TableRow[] {
  return [...firstRuns(view)]
    .sort((a, b) => a.targetSparsity - b.targetSparsity || LOSS_NAMES.indexOf(a.loss) - LOSS_NAMES.indexOf(b.loss))
    .map((p) => {
      const v = view.verdicts[p.id];
      return {
        pointId: p.id,
        targetSparsity: p.targetSparsity,
        achievedSparsity: p.achievedSparsity,
        flopsReduction: flops?.[p.id] ?? null,
        loss: p.loss,
        accuracy: p.evaluation.accuracy,
        worstGroup: p.evaluation.worstGroup.group,
        worstAccuracy: p.evaluation.worstGroup.accuracy,
        gap: p.evaluation.largestGap,
        nonZeroParameters: p.size.nonZeroParameters,
        gzipBytes: p.size.gzipBytes,
        passed: v ? v.passed : null,
        verdict: v ? (v.passed ? 'pass' : 'fail') : 'unknown',
        recommended: view.recommendation?.pointId === p.id,
      };
    });
}

/** The table's cells as text (what the data grid shows). */
export function tableCells(r: TableRow): string[] {
  return [
    pct(r.targetSparsity, 0),
    pct(r.achievedSparsity),
    r.recommended ? `★ ${r.loss}` : r.loss,
    `${pct(r.accuracy.value)} [${pct(r.accuracy.low)}, ${pct(r.accuracy.high)}]`,
    `${r.worstGroup} ${pct(r.worstAccuracy.value)}`,
    pct(r.gap.value),
    `${r.nonZeroParameters.toLocaleString('en')} · ${(r.gzipBytes / 1024).toFixed(1)} KiB`,
    r.verdict === 'pass' ? '✓ pass' : r.verdict === 'fail' ? '✗ fail' : '?',
  ];
}

export const TABLE_HEADERS = [
  'sparsity',
  'achieved',
  'loss',
  'accuracy [95% CI]',
  'worst group',
  'gap',
  'non-zero · gzip',
  'gate',
];

function csvField(v: string | number | null): string {
  if (v === null) return '';
  const s = typeof v === 'number' ? String(v) : v;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The table as CSV (RFC 4180, numbers at full precision, fractions not percentages). */
export function tableCsv(rows: TableRow[]): string {
  const header = [
    'point',
    'target_sparsity',
    'achieved_sparsity',
    'flops_reduction',
    'loss',
    'accuracy',
    'accuracy_low',
    'accuracy_high',
    'worst_group',
    'worst_group_accuracy',
    'worst_group_accuracy_low',
    'worst_group_accuracy_high',
    'largest_gap',
    'largest_gap_low',
    'largest_gap_high',
    'nonzero_parameters',
    'gzip_bytes',
    'gate',
  ];
  const lines = rows.map((r) =>
    [
      r.pointId,
      r.targetSparsity,
      r.achievedSparsity,
      r.flopsReduction,
      r.loss,
      r.accuracy.value,
      r.accuracy.low,
      r.accuracy.high,
      r.worstGroup,
      r.worstAccuracy.value,
      r.worstAccuracy.low,
      r.worstAccuracy.high,
      r.gap.value,
      r.gap.low,
      r.gap.high,
      r.nonZeroParameters,
      r.gzipBytes,
      r.verdict,
    ]
      .map(csvField)
      .join(','),
  );
  return [header.join(','), ...lines].join('\r\n') + '\r\n';
}

export interface GroupDetail {
  group: string;
  n: number;
  dense: Estimate | null;
  pruned: Estimate | null;
  change: Estimate | null;
  excessGap: Estimate | null;
  auroc: Estimate | null;
  colour: string;
  warning?: string;
}

/** The selected point's per-group detail: dense vs pruned, change, ψ, AUROC. */
export function pointDetail(
  view: SessionView,
  pointId: string,
): {
  point: PrunedPoint;
  groups: GroupDetail[];
  commit: CommitState;
  rules: Array<{ passed: boolean; message: string }>;
} | null {
  const point = view.results.points.find((p) => p.id === pointId);
  if (!point) return null;
  const groups = groupNames(view).map((group) => {
    const e = point.evaluation.groups.find((g) => g.group === group);
    const c = point.comparison.groups.find((g) => g.group === group);
    return {
      group,
      n: e?.n ?? 0,
      dense: view.results.dense?.groups.find((g) => g.group === group)?.accuracy ?? null,
      pruned: e?.accuracy ?? null,
      change: c?.accuracyChange ?? null,
      excessGap: c?.excessGap ?? null,
      auroc: e?.auroc ?? null,
      colour: groupColour(view, group),
      ...(e?.warning ? { warning: e.warning } : {}),
    };
  });
  const v = view.verdicts[pointId];
  return {
    point,
    groups,
    commit: commitState(view, pointId),
    rules: v ? v.rules.map((r) => ({ passed: r.passed, message: r.message })) : [],
  };
}

/** The chart as a text table for screen readers: one row per series point. */
export function chartTextRows(series: Series[], metric: CurvesMetric): string[][] {
  return series.flatMap((s) =>
    s.points.map((p) => [
      s.group,
      s.loss,
      pct(p.x),
      formatMetric(metric, p.y),
      `${formatMetric(metric, p.low)} – ${formatMetric(metric, p.high)}`,
      String(p.n),
      p.pointId,
    ]),
  );
}

/** Tooltip lines for a point of a group series: value, interval and count. */
export function tooltipLines(s: Series, p: SeriesPoint, metric: CurvesMetric, axis: CurvesXAxis): string[] {
  return [
    `${s.group} · ${s.loss} (${p.pointId})`,
    `${METRIC_LABELS[metric] ?? metric} ${formatMetric(metric, p.y)}, ` +
      `95% CI ${formatMetric(metric, p.low)} – ${formatMetric(metric, p.high)}`,
    `(${curvesMetricDef(metric).description}; ${betterWords(curvesMetricDef(metric))})`,
    `${axis === 'flops' ? 'FLOPs reduction' : 'sparsity'} ${pct(p.x)} · n = ${p.n} test samples`,
  ];
}

const betterWords = (m: MetricDef): string =>
  m.better === 'higher' ? 'higher is better' : m.better === 'lower' ? 'lower is better' : 'neither way is better';

/** Applies a state change from the toggles, keeping the state valid for the session. */
export function toggle(state: CurvesState, what: { group?: string; loss?: LossName }): CurvesState {
  const flip = <T>(list: T[], v: T) => (list.includes(v) ? list.filter((x) => x !== v) : [...list, v]);
  return {
    ...state,
    hiddenGroups: what.group !== undefined ? flip(state.hiddenGroups, what.group) : state.hiddenGroups,
    hiddenLosses: what.loss !== undefined ? flip(state.hiddenLosses, what.loss) : state.hiddenLosses,
  };
}

/** A restored state is only trusted field by field (it may come from an older version). */
export function sanitizeState(raw: unknown): CurvesState {
  const s = (raw && typeof raw === 'object' ? raw : {}) as Partial<Record<keyof CurvesState, unknown>>;
  const strings = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  return {
    sessionDir: typeof s.sessionDir === 'string' ? s.sessionDir : null,
    xAxis: s.xAxis === 'flops' ? 'flops' : 'sparsity',
    metric: typeof s.metric === 'string' && ALL_CURVES_METRICS.includes(s.metric) ? s.metric : 'accuracy',
    hiddenGroups: strings(s.hiddenGroups),
    hiddenLosses: strings(s.hiddenLosses).filter((l): l is LossName => (LOSS_NAMES as readonly string[]).includes(l)),
    selected: typeof s.selected === 'string' ? s.selected : null,
  };
}

// ---- FLOPs ------------------------------------------------------------------------------------

export interface MacProfile {
  /** Per prunable kernel (weight name suffix `<layer>/kernel`): multiply-adds each of its weights costs per sample. */
  kernels: Array<{ layer: string; weight: string; macsPerWeight: number }>;
}

type LayerJson = { class_name: string; config: Record<string, unknown> };

const pair = (v: unknown, d: number): [number, number] =>
  Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : typeof v === 'number' ? [v, v] : [d, d];

function outSize(size: number, k: number, stride: number, dilation: number, padding: unknown): number {
  const eff = (k - 1) * dilation + 1;
  return padding === 'same' ? Math.ceil(size / stride) : Math.floor((size - eff) / stride) + 1;
}

/**
 * Multiply-adds per weight of each Dense/Conv2D/DepthwiseConv2D kernel of a Sequential tfjs-layers
 * (or Keras) topology, by propagating the spatial size through the layers. A Dense weight costs one
 * multiply-add per position it is applied at (1 after Flatten); a conv weight one per output pixel.
 * Returns a reason instead when the topology is not one it can follow.
 */
export function macProfile(topology: unknown): MacProfile | { problem: string } {
  const t = topology as {
    model_config?: { class_name?: string; config?: unknown };
    class_name?: string;
    config?: unknown;
  } | null;
  const model = t?.model_config ?? t;
  if (!model || model.class_name !== 'Sequential')
    return {
      problem:
        'the FLOPs estimate follows Sequential models only; this model is ' +
        (model?.class_name ?? 'of an unknown kind'),
    };
  const cfg = model.config as { layers?: LayerJson[] } | LayerJson[] | undefined;
  const layers = Array.isArray(cfg) ? cfg : cfg?.layers;
  if (!layers?.length) return { problem: 'the model topology lists no layers' };
  let spatial: [number, number] | null = null;
  let started = false;
  const kernels: MacProfile['kernels'] = [];
  for (const l of layers) {
    const c = l.config;
    const name = String(c.name ?? '');
    const input = (c.batch_input_shape ?? c.batchInputShape) as Array<number | null> | undefined;
    if (!started && input) {
      spatial =
        input.length >= 4 ? [Number(input[1]), Number(input[2])] : input.length === 3 ? [1, Number(input[1])] : null;
      started = true;
    }
    if (c.data_format === 'channels_first')
      return { problem: `layer ${name} uses channels_first, which the FLOPs estimate does not follow` };
    switch (l.class_name) {
      case 'InputLayer':
      case 'Dropout':
      case 'Activation':
      case 'BatchNormalization':
      case 'ReLU':
      case 'LeakyReLU':
      case 'Softmax':
      case 'GaussianNoise':
      case 'Rescaling':
        break;
      case 'Flatten':
      case 'GlobalAveragePooling2D':
      case 'GlobalMaxPooling2D':
        spatial = null;
        break;
      case 'MaxPooling2D':
      case 'AveragePooling2D': {
        if (!spatial) return { problem: `layer ${name} (${l.class_name}) has no known input size` };
        const k = pair(c.pool_size, 2);
        const s = pair(c.strides ?? c.pool_size, 2);
        spatial = [outSize(spatial[0], k[0], s[0], 1, c.padding), outSize(spatial[1], k[1], s[1], 1, c.padding)];
        break;
      }
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        if (!spatial) return { problem: `layer ${name} (${l.class_name}) has no known input size` };
        const k = pair(c.kernel_size, 1);
        const s = pair(c.strides, 1);
        const d = pair(c.dilation_rate, 1);
        spatial = [outSize(spatial[0], k[0], s[0], d[0], c.padding), outSize(spatial[1], k[1], s[1], d[1], c.padding)];
        kernels.push({
          layer: name,
          weight: l.class_name === 'Conv2D' ? 'kernel' : 'depthwise_kernel',
          macsPerWeight: spatial[0] * spatial[1],
        });
        break;
      }
      case 'Dense':
        kernels.push({ layer: name, weight: 'kernel', macsPerWeight: spatial ? spatial[0] * spatial[1] : 1 });
        break;
      default:
        return { problem: `layer ${name} (${l.class_name}) is not one the FLOPs estimate follows` };
    }
  }
  return { kernels };
}

/**
 * Fraction of the kernels' multiply-adds removed: 1 − Σ nonzero·macs / Σ size·macs, from the zero
 * count of each kernel weight (keyed by its manifest name, matched on `<layer>/<weight>`).
 */
export function flopsReduction(
  profile: MacProfile,
  stats: Record<string, { size: number; zeros: number }>,
): number | undefined {
  let dense = 0;
  let kept = 0;
  for (const k of profile.kernels) {
    const suffix = `${k.layer}/${k.weight}`;
    const key = Object.keys(stats).find((n) => n === suffix || n.endsWith('/' + suffix));
    if (!key) return undefined;
    const s = stats[key];
    dense += s.size * k.macsPerWeight;
    kept += (s.size - s.zeros) * k.macsPerWeight;
  }
  return dense > 0 ? 1 - kept / dense : undefined;
}

export type WeightsManifest = Array<{
  paths: string[];
  weights: Array<{ name: string; shape: number[]; dtype?: string }>;
}>;

/** Size and zero count of every weight of a tfjs weights manifest; `read` returns a shard file's bytes. */
export function weightZeroCounts(
  manifest: WeightsManifest,
  read: (shard: string) => Uint8Array,
): Record<string, { size: number; zeros: number }> {
  const out: Record<string, { size: number; zeros: number }> = {};
  for (const group of manifest) {
    const parts = group.paths.map(read);
    const bytes = new Uint8Array(parts.reduce((a, b) => a + b.byteLength, 0));
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.byteLength;
    }
    const f32 = new Float32Array(bytes.buffer, 0, Math.floor(bytes.byteLength / 4));
    let offset = 0;
    for (const w of group.weights) {
      const size = w.shape.reduce((a, b) => a * b, 1);
      if ((w.dtype ?? 'float32') !== 'float32') throw new Error(`weight ${w.name} is ${w.dtype}, not float32`);
      if (offset + size > f32.length) throw new Error(`the weight files end before weight ${w.name}`);
      let zeros = 0;
      for (let i = offset; i < offset + size; i++) if (f32[i] === 0) zeros++;
      out[w.name] = { size, zeros };
      offset += size;
    }
  }
  return out;
}
