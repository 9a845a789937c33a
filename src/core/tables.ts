/**
 * The session's numbers as tables a data scientist loads next to Fairlearn: `predictions.csv` (one
 * row per test sample: its groups, its label, and every model's prediction and probability) and
 * `metrics.csv` (long format: every metric of the metric table, per model, per group, with its 95%
 * interval and its sample count). Both are written next to results.json, whole or not at all.
 *
 * `predictions.csv` holds the test rows only: the pruned models are measured there, and every number
 * in metrics.csv is computed from them. Probabilities: binary tasks, of the positive class (the
 * second class, as Fairlearn's `roc_auc_score` takes it); multiclass, of the predicted class.
 *
 * Metric names come from the metric table (src/core/metric-table.ts), so a metric added there
 * appears here without a change.
 */
import * as path from 'path';
import type { Evaluation, PrunedPoint, SessionResults } from '../protocol/results';
import { betweenGroupsEstimate, groupEstimate, METRICS, overallEstimate } from '../shared/metric-table';
import type { EvaluationInput, Predictions } from './metrics';
import { predictedClasses } from './metrics';
import { writeFileAtomic } from './atomic';

export const PREDICTIONS_FILE = 'predictions.csv';
export const METRICS_FILE = 'metrics.csv';
/** The `point` value of the dense model's rows, and the prefix of its prediction columns. */
export const DENSE = 'dense';
/** The `group` value of a metric over all test samples; between-group figures name no group (empty). */
export const ALL_GROUPS = 'all';

/** One CSV field: quoted when it holds a comma, a quote or a line break (RFC 4180). */
export function csvField(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : v;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const line = (cells: Array<string | number | null | undefined>) => cells.map(csvField).join(',');

/** Class index and probability shown for each sample of one model's test predictions. */
function predictionColumns(pred: Predictions): { classes: Int32Array; probability: Float32Array } {
  const classes = predictedClasses(pred);
  const K = pred.numClasses;
  const probability = new Float32Array(classes.length);
  for (let i = 0; i < classes.length; i++) probability[i] = pred.probs[i * K + (K === 2 ? 1 : classes[i])];
  return { classes, probability };
}

/**
 * `predictions.csv`: row (1-based CSV data row), split, every group column, label, the dense model's
 * prediction and probability, then `<point>_prediction`, `<point>_probability` for every point
 * (points without predictions, e.g. of an older session, are left out).
 */
export function predictionsCsv(
  results: SessionResults,
  input: EvaluationInput,
  dense: Predictions,
  points: Map<string, Predictions>,
): string {
  const columns = results.data.groupColumns;
  const byName = new Map(results.data.groups.map((g) => [g.name, g.values]));
  const models: Array<[string, ReturnType<typeof predictionColumns>]> = [[DENSE, predictionColumns(dense)]];
  for (const p of results.points) {
    const pred = points.get(p.id);
    if (pred) models.push([p.id, predictionColumns(pred)]);
  }
  const classes = input.classNames;
  const out = [
    line(['row', 'split', ...columns, 'label', ...models.flatMap(([id]) => [`${id}_prediction`, `${id}_probability`])]),
  ];
  for (let i = 0; i < input.labels.length; i++) {
    const values = byName.get(input.groupNames[input.groupIds[i]]) ?? {};
    out.push(
      line([
        input.rows[i],
        input.split,
        ...columns.map((c) => values[c] ?? ''),
        classes[input.labels[i]],
        ...models.flatMap(([, m]) => [classes[m.classes[i]], Number(m.probability[i].toPrecision(7))]),
      ]),
    );
  }
  return out.join('\n') + '\n';
}

export const METRICS_HEADER = [
  'point',
  'loss',
  'sparsity',
  'seed',
  'group',
  'metric',
  'value',
  'low',
  'high',
  'n',
] as const;

/**
 * `metrics.csv`, long format: for the dense model and every point, each per-group metric of the table
 * over all samples (group `all`) and for each group, each class's accuracy (metric
 * `class_accuracy[<class>]`), each between-group figure (group empty) and, for points, each group's
 * excess gap ψ. Sparsity is the point's target (0 for the dense model); seed is the fine-tuning run.
 */
export function metricsCsv(results: SessionResults): string {
  const task = results.model.task;
  const out = [line([...METRICS_HEADER])];
  const models: Array<{ id: string; point?: PrunedPoint; e: Evaluation }> = [
    { id: DENSE, e: results.dense },
    ...results.points.map((p) => ({ id: p.id, point: p, e: p.evaluation })),
  ];
  for (const { id, point, e } of models) {
    const head = [id, point?.loss ?? '', point?.targetSparsity ?? 0, point ? (point.run ?? 1) : ''];
    const row = (
      group: string,
      metric: string,
      est: { value: number; low: number; high: number } | null,
      n: number,
    ) => {
      if (est) out.push(line([...head, group, metric, est.value, est.low, est.high, n]));
    };
    for (const m of METRICS) {
      if (m.binaryOnly && task !== 'binary') continue;
      if (m.kind === 'rate' || m.kind === 'score') {
        row(ALL_GROUPS, m.name, overallEstimate(m, e), e.n);
        for (const g of e.groups) row(g.group, m.name, groupEstimate(m, g), g.n);
      } else if (m.kind === 'class-rate') {
        for (const c of e.classAccuracy ?? []) row(ALL_GROUPS, `${m.name}[${c.class}]`, c.accuracy, c.n);
        for (const g of e.groups)
          for (const c of g.classAccuracy ?? []) row(g.group, `${m.name}[${c.class}]`, c.accuracy, c.n);
      } else if (m.kind === 'between-groups') {
        row('', m.name, betweenGroupsEstimate(m, e), e.n);
      } else if (m.kind === 'paired-group' && point) {
        for (const g of point.comparison.groups) {
          row(g.group, m.name, g.excessGap, e.groups.find((x) => x.group === g.group)?.n ?? 0);
        }
      }
    }
  }
  return out.join('\n') + '\n';
}

/** Writes both tables into the session folder; returns their paths. */
export function writeSessionTables(
  sessionDir: string,
  results: SessionResults,
  input: EvaluationInput,
  dense: Predictions,
  points: Map<string, Predictions>,
): { predictions: string; metrics: string } {
  const predictions = path.join(sessionDir, PREDICTIONS_FILE);
  const metrics = path.join(sessionDir, METRICS_FILE);
  writeFileAtomic(predictions, predictionsCsv(results, input, dense, points));
  writeFileAtomic(metrics, metricsCsv(results));
  return { predictions, metrics };
}
