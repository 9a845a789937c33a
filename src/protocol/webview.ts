/**
 * Messages between the extension host and its webviews (the side-panel fairness report now, the
 * curves panel next), and what the host renders them from. A webview posts `ready` once its script
 * runs.
 */
import type { GateVerdict } from '../core/gate';
import type { SessionResults } from './results';

export interface SessionView {
  sessionDir: string;
  results: SessionResults;
  /** The gate's verdict for each point, by point id, under the current policy. */
  verdicts: Record<string, GateVerdict>;
  /** Workspace is trusted: running and committing are allowed. */
  canCommit: boolean;
}

export type WebviewToHost =
  | { type: 'ready' }
  | { type: 'commit'; sessionDir: string; pointId: string }
  | { type: 'openReport'; sessionDir: string };
