/** The `fairPrune.*` settings, read in one place. */
import * as vscode from 'vscode';
import type { FairnessPolicy, JudgeOn } from '../protocol/gate';
import { checkPoint, DEFAULT_POLICY, recommendPoint } from '../shared/gate';
import { readSession } from '../core/session-store';
import { resolveOutputFolder } from '../core/output-folder';
import type { SessionView } from '../protocol/webview';
import type { BackendPreference, LossName, PruningMethodName } from '../protocol/results';
import { EXTENSION_DEFAULTS as E, RUN_DEFAULTS as D } from '../protocol/defaults';

export function settings() {
  const c = vscode.workspace.getConfiguration('fairPrune', null);
  return {
    sparsities: c.get<number[]>('sparsities', D.sparsities),
    losses: c.get<LossName[]>('losses', D.losses as LossName[]),
    method: c.get<PruningMethodName>('method', D.method as PruningMethodName),
    epochs: c.get<number>('epochs', D.epochs),
    batchSize: c.get<number>('batchSize', D.batchSize),
    learningRate: c.get<number>('learningRate', D.learningRate),
    patience: c.get<number>('patience', D.patience),
    seed: c.get<number>('seed', D.seed),
    seeds: c.get<number>('seeds', D.seeds),
    droEta: c.get<number>('groupDro.eta', D.droEta),
    ceagTolerance: c.get<number>('ceag.tolerance', D.ceagTolerance),
    minWeight: c.get<number>('pw.minWeight', D.minWeight),
    gamma: c.get<number>('pw.gamma', D.gamma),
    bootstrapResamples: c.get<number>('bootstrapResamples', D.bootstrap),
    backend: c.get<BackendPreference>('backend', D.backend),
    workers: c.get<number>('workers', D.workers),
    outputFolder: c.get<string>('outputFolder', D.out),
    gitStage: c.get<boolean>('git.stage', E.gitStage),
  };
}

export function policy(): FairnessPolicy {
  const c = vscode.workspace.getConfiguration('fairPrune.gate', null);
  return {
    maxWorstGroupDrop: c.get<number>('maxWorstGroupDrop', DEFAULT_POLICY.maxWorstGroupDrop),
    maxGapIncrease: c.get<number>('maxGapIncrease', DEFAULT_POLICY.maxGapIncrease),
    minAccuracy: c.get<number>('minAccuracy', DEFAULT_POLICY.minAccuracy),
    judgeOn: c.get<JudgeOn>('judgeOn', DEFAULT_POLICY.judgeOn),
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
  const c = vscode.workspace.getConfiguration('fairPrune.gate', null);
  const keys = ['maxWorstGroupDrop', 'maxGapIncrease', 'minAccuracy', 'judgeOn'];
  const from = keys
    .map((k) => c.inspect(k))
    .map((i) =>
      i?.workspaceFolderValue !== undefined || i?.workspaceValue !== undefined
        ? 'workspace'
        : i?.globalValue !== undefined
          ? 'user'
          : 'default',
    );
  if (from.includes('workspace'))
    return vscode.workspace.isTrusted
      ? 'workspace settings'
      : 'user settings (workspace settings are ignored until the workspace is trusted)';
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
    recommendation: recommendPoint(s.results, p),
  };
}
