/**
 * The one table of fairness metrics. `evaluate` and `compare` (metrics.ts) compute what it lists,
 * the report (report.ts, ui/report-html.ts) and the curves panel (ui/curves-model.ts) read labels,
 * directions and stored values through it. Adding a metric is one entry here: a rate is defined by
 * two predicates on a sample's label and predicted class, a between-group figure by the rates it
 * compares; `evaluate` computes, bootstraps and stores it, and every reader lists it.
 * (test/unit/metrics-fairness.test.ts fails when `evaluate` outputs a metric this table lacks.)
 *
 * Names are Fairlearn's where Fairlearn has the metric (`true_positive_rate`, `selection_rate`,
 * `demographic_parity_difference`, ...); they are the keys in results.json.
 *
 * Pure: no imports but types, so the webview bundle and the extension host can read it.
 */
import type { Comparison, Estimate, Evaluation, GroupMetrics, Task } from '../protocol/results';

/** Which way is better for a user of the pruned model: higher, lower, or neither (a description). */
export type Better = 'higher' | 'lower' | 'neither';

/**
 * How a value reads: `percent` (a fraction shown as %; its changes in points), `points` (a
 * difference of fractions, shown as signed points), `score` (3 decimals).
 */
export type MetricFormat = 'percent' | 'points' | 'score';

interface MetricCommon {
  /** Key in results.json and in this table. */
  name: string;
  /** Short label for people (table headers, the metric picker). */
  label: string;
  /** One sentence: what it measures. */
  description: string;
  better: Better;
  /** Defined for binary tasks only (binary: class 1 is the positive class). */
  binaryOnly: boolean;
  format: MetricFormat;
  /**
   * Kept in the fixed fields of results.json schema 1 (`accuracy`, `auroc`, `worstGroup`,
   * `largestGap`) rather than in the `rates` / `fairness` maps. Only for metrics older than the table.
   */
  schemaV1?: true;
}

/**
 * A rate over a group's samples: of the samples `among` selects, the fraction `counts` selects,
 * from each sample's label y and predicted class p. Undefined (null in results.json) when `among`
 * selects no sample. Computed per group, over all samples, and in every bootstrap resample.
 */
export interface RateMetric extends MetricCommon {
  kind: 'rate';
  among(y: number, p: number): boolean;
  counts(y: number, p: number): boolean;
}

/** A rate per class k (every class of the task), per group and over all samples. */
export interface ClassRateMetric extends MetricCommon {
  kind: 'class-rate';
  among(y: number, p: number, k: number): boolean;
  counts(y: number, p: number, k: number): boolean;
}

/** Computed from the predicted probabilities rather than the classes (its own code in metrics.ts). */
export interface ScoreMetric extends MetricCommon {
  kind: 'score';
}

/**
 * One figure across the groups from per-group rates: `min` is the lowest group's value, `range` the
 * largest minus the smallest (Fairlearn's `difference(method="between_groups")`). With several
 * rates in `of`, the largest of their figures (Fairlearn's `agg="worst_case"`). Groups with no
 * samples, or where the rate is undefined on the full sample, are left out. `compare` also reports
 * its paired change, pruned − dense.
 */
export interface BetweenGroupsMetric extends MetricCommon {
  kind: 'between-groups';
  aggregate: 'min' | 'range';
  of: readonly string[];
}

/** Per group, from the dense and the pruned model together (`compare` only; its own code in metrics.ts). */
export interface PairedGroupMetric extends MetricCommon {
  kind: 'paired-group';
}

export type MetricDef = RateMetric | ClassRateMetric | ScoreMetric | BetweenGroupsMetric | PairedGroupMetric;

export const METRICS: readonly MetricDef[] = [
  {
    kind: 'rate',
    name: 'accuracy',
    label: 'accuracy',
    description: 'fraction of samples whose predicted class is their label',
    better: 'higher',
    binaryOnly: false,
    format: 'percent',
    schemaV1: true,
    among: () => true,
    counts: (y, p) => y === p,
  },
  {
    kind: 'score',
    name: 'auroc',
    label: 'AUROC',
    description: 'chance that a random positive scores above a random negative (multiclass: mean one-vs-rest)',
    better: 'higher',
    binaryOnly: false,
    format: 'score',
    schemaV1: true,
  },
  {
    kind: 'rate',
    name: 'true_positive_rate',
    label: 'true-positive rate',
    description: 'fraction of the positive samples predicted positive',
    better: 'higher',
    binaryOnly: true,
    format: 'percent',
    among: (y) => y === 1,
    counts: (_y, p) => p === 1,
  },
  {
    kind: 'rate',
    name: 'false_positive_rate',
    label: 'false-positive rate',
    description: 'fraction of the negative samples predicted positive',
    better: 'lower',
    binaryOnly: true,
    format: 'percent',
    among: (y) => y === 0,
    counts: (_y, p) => p === 1,
  },
  {
    kind: 'rate',
    name: 'selection_rate',
    label: 'selection rate',
    description: 'fraction of all samples predicted positive',
    better: 'neither',
    binaryOnly: true,
    format: 'percent',
    among: () => true,
    counts: (_y, p) => p === 1,
  },
  {
    kind: 'class-rate',
    name: 'class_accuracy',
    label: 'accuracy on the class',
    description: 'fraction of the samples of one class predicted as that class',
    better: 'higher',
    binaryOnly: false,
    format: 'percent',
    among: (y, _p, k) => y === k,
    counts: (_y, p, k) => p === k,
  },
  {
    kind: 'between-groups',
    name: 'worst_group_accuracy',
    label: 'worst-group accuracy',
    description: 'accuracy of the group with the lowest accuracy',
    better: 'higher',
    binaryOnly: false,
    format: 'percent',
    schemaV1: true,
    aggregate: 'min',
    of: ['accuracy'],
  },
  {
    kind: 'between-groups',
    name: 'largest_gap',
    label: 'largest accuracy gap',
    description: 'highest minus lowest group accuracy',
    better: 'lower',
    binaryOnly: false,
    format: 'percent',
    schemaV1: true,
    aggregate: 'range',
    of: ['accuracy'],
  },
  {
    kind: 'between-groups',
    name: 'demographic_parity_difference',
    label: 'demographic parity difference',
    description: 'largest difference in selection rate between two groups',
    better: 'lower',
    binaryOnly: true,
    format: 'percent',
    aggregate: 'range',
    of: ['selection_rate'],
  },
  {
    kind: 'between-groups',
    name: 'equal_opportunity_difference',
    label: 'equal opportunity difference',
    description: 'largest difference in true-positive rate between two groups',
    better: 'lower',
    binaryOnly: true,
    format: 'percent',
    aggregate: 'range',
    of: ['true_positive_rate'],
  },
  {
    kind: 'between-groups',
    name: 'equalized_odds_difference',
    label: 'equalized odds difference',
    description:
      'larger of the largest true-positive-rate difference and the ' +
      'largest false-positive-rate difference between two groups',
    better: 'lower',
    binaryOnly: true,
    format: 'percent',
    aggregate: 'range',
    of: ['true_positive_rate', 'false_positive_rate'],
  },
  {
    kind: 'paired-group',
    name: 'excess_gap',
    label: 'excess accuracy gap ψ',
    description: 'how much more accuracy the group lost to pruning than the model as a whole',
    better: 'lower',
    binaryOnly: false,
    format: 'points',
    schemaV1: true,
  },
];

/** The table entry of a name; throws on an unknown name (a programming error, not a user's). */
export function metricDef(name: string): MetricDef {
  const m = METRICS.find((x) => x.name === name);
  if (!m) throw new Error(`no metric '${name}' in the metric table (src/core/metric-table.ts)`);
  return m;
}

/** Whether a metric is defined for a task. */
export const appliesTo = (m: MetricDef, task: Task): boolean => task === 'binary' || !m.binaryOnly;

/** The task of a model with K outputs (K = 1 is a sigmoid). */
export const taskOf = (numClasses: number): Task => (numClasses <= 2 ? 'binary' : 'multiclass');

/** Entries of one kind that apply to a task, in table order. */
export function metricsOf<K extends MetricDef['kind']>(kind: K, task: Task): Array<Extract<MetricDef, { kind: K }>> {
  return METRICS.filter((m): m is Extract<MetricDef, { kind: K }> => m.kind === kind && appliesTo(m, task));
}

/** The between-group figures stored in `Evaluation.fairness` (not the schema-1 ones): Fairlearn's differences. */
export const fairnessDifferences = (task: Task): BetweenGroupsMetric[] =>
  metricsOf('between-groups', task).filter((m) => !m.schemaV1);

/** Per-group metrics a chart can plot for a task (rates and scores, not the per-class family). */
export const groupMetrics = (task: Task): Array<RateMetric | ScoreMetric> =>
  METRICS.filter((m): m is RateMetric | ScoreMetric => (m.kind === 'rate' || m.kind === 'score') && appliesTo(m, task));

// ---- Reading results.json through the table ---------------------------------------------------

/** A group's value of a rate or score metric; null when undefined or not recorded (older files). */
export function groupEstimate(m: MetricDef, g: GroupMetrics): Estimate | null {
  if (m.name === 'accuracy') return g.accuracy;
  if (m.name === 'auroc') return g.auroc;
  return g.rates?.[m.name] ?? null;
}

/** The value over all samples of a rate or score metric. */
export function overallEstimate(m: MetricDef, e: Evaluation): Estimate | null {
  if (m.name === 'accuracy') return e.accuracy;
  if (m.name === 'auroc') return e.auroc;
  return e.rates?.[m.name] ?? null;
}

/** A between-group figure of an evaluation. */
export function betweenGroupsEstimate(m: MetricDef, e: Evaluation): Estimate | null {
  if (m.name === 'worst_group_accuracy') return e.worstGroup.accuracy;
  if (m.name === 'largest_gap') return e.largestGap;
  return e.fairness?.[m.name] ?? null;
}

/** The paired change, pruned − dense, of a between-group figure. */
export function changeEstimate(m: MetricDef, c: Comparison): Estimate | null {
  if (m.name === 'worst_group_accuracy') return c.worstGroupChange;
  if (m.name === 'largest_gap') return c.gapChange;
  return c.fairnessChange?.[m.name] ?? null;
}

// ---- Formatting ---------------------------------------------------------------------------------

export const pct = (x: number, digits = 1): string => (Number.isFinite(x) ? `${(x * 100).toFixed(digits)}%` : '–');
/** A change in points: "+2.0 pts", "−1.5 pts"; a change that rounds to zero reads "+0.0 pts", never "−0.0". */
export const signedPts = (x: number, digits = 1): string => {
  if (!Number.isFinite(x)) return '–';
  const abs = Math.abs(x * 100).toFixed(digits);
  return `${x < 0 && Number(abs) !== 0 ? '−' : '+'}${abs} pts`;
};

/** A value of a metric as people read it. */
export const formatValue = (m: MetricDef, x: number): string =>
  m.format === 'score' ? (Number.isFinite(x) ? x.toFixed(3) : '–') : m.format === 'points' ? signedPts(x) : pct(x);

/** A change of a metric as people read it (points for percentages). */
export const formatChange = (m: MetricDef, x: number): string => {
  if (m.format !== 'score') return signedPts(x);
  if (!Number.isFinite(x)) return '–';
  const abs = Math.abs(x).toFixed(3);
  return `${x < 0 && Number(abs) !== 0 ? '−' : '+'}${abs}`;
};

/** "12.0% [8.0%, 16.0%]", or – when there is no value. */
export function formatEstimate(m: MetricDef, e: Estimate | null | undefined, change = false): string {
  if (!e) return '–';
  const f = (x: number) => (change ? formatChange(m, x) : formatValue(m, x));
  return `${f(e.value)} [${f(e.low)}, ${f(e.high)}]`;
}

/** Whether a change is for the better, worse, or neither (within half a point / 0.005). */
export function changeDirection(m: MetricDef, change: number): 'better' | 'worse' | 'same' {
  if (m.better === 'neither' || Math.abs(change) <= 0.005) return 'same';
  return change > 0 === (m.better === 'higher') ? 'better' : 'worse';
}
