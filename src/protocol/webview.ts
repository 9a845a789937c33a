/**
 * Messages between the extension host and its webviews (the side-panel fairness report now, the
 * curves panel), and what the host renders them from. A webview posts `ready` once its script runs;
 * the host sends nothing before it.
 */
import type { GateVerdict } from './gate';
import type { LossName, Recommendation, SessionResults } from './results';

export interface SessionView {
  sessionDir: string;
  results: SessionResults;
  /** The gate's verdict for each point, by point id, under the current policy. */
  verdicts: Record<string, GateVerdict>;
  /** Workspace is trusted: running and committing are allowed. */
  canCommit: boolean;
  /** The sparsest point that passes the gate under the current policy (src/core/gate.ts). */
  recommendation: Recommendation;
}

export type WebviewToHost =
  | { type: 'ready' }
  | { type: 'commit'; sessionDir: string; pointId: string }
  | { type: 'openReport'; sessionDir: string }
  | { type: 'showCurves'; sessionDir: string };

/** Host → side-panel report: the report's new body (sent instead of reloading the whole document, so
 *  the reader's scroll position survives points landing while they read). */
export type HostToReport = { type: 'body'; html: string };

// ---- The fairness curves panel ("Fair Prune: Show Fairness Curves") --------------------------------

/** The x axis of the curves: achieved sparsity, or the estimated reduction of multiply-adds. */
export type CurvesXAxis = 'sparsity' | 'flops';
/**
 * The y metric of the per-group curves: the name of a per-group metric of the metric table
 * (src/core/metric-table.ts: `accuracy`, `auroc`, `true_positive_rate`, ...), or `excessGap` (ψ).
 */
export type CurvesMetric = string;

/** What the panel keeps with `setState` and the serializer hands back after a reload. */
export interface CurvesState {
  sessionDir: string | null;
  xAxis: CurvesXAxis;
  metric: CurvesMetric;
  /** Groups and losses switched off by the toggles. */
  hiddenGroups: string[];
  hiddenLosses: LossName[];
  /** The point picked in the table or on the chart. */
  selected: string | null;
}

/** One pruning-identified exemplar with its image, read by the host (null when it cannot be shown). */
export interface ExemplarImage {
  group: string;
  row: number;
  label: string;
  dense: string;
  pruned: string;
  /** A `data:` URI of the image file (the panel's resource roots stay the extension's own files). */
  src: string | null;
  /** Why there is no image (file missing, too large, not an image). */
  problem?: string;
}

export type HostToCurves =
  /** The whole session as on disk (sent on `ready`, and again whenever results.json changed). */
  | { type: 'session'; view: SessionView; flops: Record<string, number> | null; flopsNote: string }
  /** No session to show (none yet, or the folder was removed). */
  | { type: 'empty'; message: string }
  /** A running session's progress, one line. */
  | { type: 'progress'; sessionDir: string; text: string; fraction: number }
  | { type: 'exemplars'; sessionDir: string; pointId: string; images: ExemplarImage[]; note: string };

export type CurvesToHost =
  | { type: 'ready'; state: CurvesState | null }
  | { type: 'state'; state: CurvesState }
  | { type: 'commit'; sessionDir: string; pointId: string }
  | { type: 'exemplars'; sessionDir: string; pointId: string }
  | { type: 'exportPng'; dataUrl: string; fileName: string }
  | { type: 'exportCsv'; text: string; fileName: string };
