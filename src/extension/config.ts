/** The `fairPrune.*` settings, read in one place. */
import * as vscode from 'vscode';
import type { FairnessPolicy } from '../core/gate';
import { checkPoint } from '../core/gate';
import { readSession } from '../core/session-store';
import { resolveOutputFolder } from '../core/output-folder';
import type { SessionView } from '../protocol/webview';
import type { BackendPreference, LossName, PruningMethodName } from '../protocol/results';

export function settings() {
  const c = vscode.workspace.getConfiguration('fairPrune');
  return {
    sparsities: c.get<number[]>('sparsities', [0.5, 0.8, 0.9]),
    losses: c.get<LossName[]>('losses', ['ce', 'pw']),
    method: c.get<PruningMethodName>('method', 'magnitude-layer'),
    epochs: c.get<number>('epochs', 3),
    batchSize: c.get<number>('batchSize', 64),
    learningRate: c.get<number>('learningRate', 0.001),
    patience: c.get<number>('patience', 0),
    seed: c.get<number>('seed', 1),
    minWeight: c.get<number>('pw.minWeight', 0.75),
    gamma: c.get<number>('pw.gamma', 5),
    bootstrapResamples: c.get<number>('bootstrapResamples', 1000),
    backend: c.get<BackendPreference>('backend', 'auto'),
    workers: c.get<number>('workers', 0),
    outputFolder: c.get<string>('outputFolder', '.fairprune'),
    gitStage: c.get<boolean>('git.stage', false),
  };
}

export function policy(): FairnessPolicy {
  const c = vscode.workspace.getConfiguration('fairPrune.gate');
  return {
    maxWorstGroupDrop: c.get<number>('maxWorstGroupDrop', 0.05),
    maxGapIncrease: c.get<number>('maxGapIncrease', 0.03),
    minAccuracy: c.get<number>('minAccuracy', 0),
    judgeOn: c.get<'interval' | 'estimate'>('judgeOn', 'interval'),
  };
}

const warnedOutputFolder = new Set<string>();

/** The sessions folder inside workspace folder `root` (the setting is not followed outside it). */
function outDirIn(root: string): string {
  const { dir, problem } = resolveOutputFolder(root, settings().outputFolder);
  if (problem && !warnedOutputFolder.has(problem)) {
    warnedOutputFolder.add(problem);
    void vscode.window.showWarningMessage(`Fair Prune: ${problem}`);
  }
  return dir;
}

/** The sessions folder of the workspace folder that holds `file` (or the first folder). */
export function outDirFor(file?: vscode.Uri): string | undefined {
  const folder = (file && vscode.workspace.getWorkspaceFolder(file)) ?? vscode.workspace.workspaceFolders?.[0];
  return folder ? outDirIn(folder.uri.fsPath) : undefined;
}

export function allOutDirs(): string[] {
  return (vscode.workspace.workspaceFolders ?? []).map((f) => outDirIn(f.uri.fsPath));
}

/** Where the fairness gate's limits come from: 'defaults', 'user settings' or 'workspace settings'. */
export function policySource(): string {
  const c = vscode.workspace.getConfiguration('fairPrune.gate');
  const keys = ['maxWorstGroupDrop', 'maxGapIncrease', 'minAccuracy', 'judgeOn'];
  const from = keys.map((k) => c.inspect(k)).map((i) =>
    i?.workspaceFolderValue !== undefined || i?.workspaceValue !== undefined ? 'workspace' : i?.globalValue !== undefined ? 'user' : 'default',
  );
  if (from.includes('workspace')) return vscode.workspace.isTrusted ? 'workspace settings' : 'user settings (workspace settings are ignored until the workspace is trusted)';
  return from.includes('user') ? 'user settings' : 'the defaults';
}

/** What the report and the curves panel show of a session: its results, the gate's verdict on each
 *  point under the current policy, and whether committing is allowed (a trusted workspace). */
export function sessionViewOf(dir: string | undefined): SessionView | null {
  const s = dir ? readSession(dir) : undefined;
  if (!s) return null;
  const p = policy();
  return {
    sessionDir: s.dir,
    results: s.results,
    verdicts: Object.fromEntries(s.results.points.map((pt) => [pt.id, checkPoint(pt, p)])),
    canCommit: vscode.workspace.isTrusted,
  };
}
