/**
 * "Fair Prune: Commit Pruned Model…": the fairness gate checks the point against the policy in
 * settings; a pass, once the developer confirms the destination folder (and where the gate policy
 * came from) in a modal dialog, writes the model, fairness.json and FAIRNESS.md beside the dense model in one
 * atomic step (and stages them in git when `fairPrune.git.stage` is on); a fail is refused with the
 * rules it broke, unless the developer overrides it with a reason.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import { readSession, sessionProblem } from '../core/session-store';
import type { StoredSession } from '../core/session-store';
import { checkPoint } from '../shared/gate';
import { assertInsideWorkspace, commitPoint, defaultCommitDir } from '../core/commit';
import { pct } from '../core/report';
import { EXTENSION_DEFAULTS } from '../protocol/defaults';
import { policy, policySource, settings } from './config';

export async function pickPoint(
  sessions: StoredSession[],
): Promise<{ sessionDir: string; pointId: string } | undefined> {
  const p = policy();
  const items = sessions.flatMap((s) =>
    s.results.points.map((pt) => {
      const v = checkPoint(pt, p);
      return {
        label: `${v.passed ? '$(pass)' : '$(error)'} ${pct(pt.targetSparsity, 0)} · ${pt.loss}`,
        description: `${path.basename(path.dirname(s.results.model.path))} · ${s.results.sessionId}`,
        detail: `worst group ${pt.evaluation.worstGroup.group} ${pct(pt.evaluation.worstGroup.accuracy.value)} · ${v.passed ? 'passes the fairness gate' : v.summary}`,
        sessionDir: s.dir,
        pointId: pt.id,
      };
    }),
  );
  if (!items.length) {
    void vscode.window.showInformationMessage(
      'Fair Prune: no pruned point to commit yet. Run "Fair Prune: Prune with Fairness Check…" first.',
    );
    return undefined;
  }
  return vscode.window.showQuickPick(items, {
    title: 'Fair Prune: the pruned point to commit',
    matchOnDescription: true,
    matchOnDetail: true,
  });
}

async function stageInGit(dir: string, output: vscode.OutputChannel): Promise<void> {
  type Repository = { add(paths: string[]): Promise<void> };
  const git = vscode.extensions.getExtension<{
    getAPI(v: 1): {
      getRepository(uri: vscode.Uri): Repository | null;
      openRepository?(root: vscode.Uri): Promise<Repository | null>;
    };
  }>('vscode.git');
  if (!git) {
    output.appendLine("fairPrune.git.stage is on, but VS Code's git extension is not available: not staged");
    return;
  }
  const api = (git.isActive ? git.exports : await git.activate()).getAPI(1);
  // A repository git has not opened yet (made after the window opened, say) is opened by asking.
  const repo =
    api.getRepository(vscode.Uri.file(dir)) ??
    (await api.openRepository?.(vscode.Uri.file(path.dirname(dir))).catch(() => null)) ??
    null;
  if (!repo) {
    output.appendLine(`fairPrune.git.stage is on, but ${dir} is not in a git repository: not staged`);
    return;
  }
  await repo.add([dir]);
  output.appendLine(`staged ${dir}`);
}

export async function commitCommand(
  sessionDir: string,
  pointId: string,
  output: vscode.OutputChannel,
): Promise<string | undefined> {
  if (!vscode.workspace.isTrusted) {
    void vscode.window.showErrorMessage(
      'Fair Prune commits pruned models only in a trusted workspace. Trust this workspace (Manage Workspace Trust) to commit.',
    );
    return undefined;
  }
  const session = readSession(sessionDir);
  if (!session) {
    const problem = sessionProblem(sessionDir);
    void vscode.window.showErrorMessage(
      problem
        ? `Fair Prune: not committed: ${problem}. Run the session again.`
        : `Fair Prune: ${path.join(sessionDir, 'results.json')} cannot be read; the session folder was moved or deleted.`,
    );
    return undefined;
  }
  const point = session.results.points.find((p) => p.id === pointId);
  if (!point) {
    void vscode.window.showErrorMessage(`Fair Prune: session ${session.results.sessionId} has no point ${pointId}.`);
    return undefined;
  }
  const gate = policy();
  const verdict = checkPoint(point, gate);
  let override: { reason: string } | undefined;
  if (!verdict.passed) {
    const overrideItem = 'Override with a Reason…';
    const choice = await vscode.window.showWarningMessage(
      `Fair Prune: ${pointId} fails the fairness gate and was not committed.`,
      {
        modal: true,
        detail:
          verdict.rules
            .filter((r) => !r.passed)
            .map((r) => `✗ ${r.message}`)
            .join('\n') +
          `\n\nGate policy from ${policySource()}. Change the limits in the fairPrune.gate settings, pick another point, or override (the reason is recorded in fairness.json and FAIRNESS.md).`,
      },
      overrideItem,
    );
    if (choice !== overrideItem) {
      output.appendLine(`${pointId} was not committed: it fails the fairness gate (${verdict.summary})`);
      return undefined;
    }
    const reason = await vscode.window.showInputBox({
      title: `Why may ${pointId} ship despite failing the fairness gate?`,
      prompt: 'Recorded with the model in fairness.json and FAIRNESS.md',
      ignoreFocusOut: true,
      validateInput: (v) => (v.trim().length < 3 ? 'Give a reason (it is recorded with the model).' : undefined),
    });
    if (!reason) return undefined;
    override = { reason };
  }
  const workspaceRoot = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(sessionDir))?.uri.fsPath;
  // The folder is named from results.json (the dense model's path): it is shown, and must lie in the workspace, before anything is written.
  const targetDir = defaultCommitDir(session.results, point);
  assertInsideWorkspace(targetDir, workspaceRoot, path.join(sessionDir, 'results.json'));
  const confirm = 'Commit';
  const stage = settings().gitStage;
  // Asked unless switched off in user settings (a workspace cannot switch it off).
  const ask =
    vscode.workspace.getConfiguration('fairPrune').inspect<boolean>('commit.confirm')?.globalValue ??
    EXTENSION_DEFAULTS.commitConfirm;
  const pick = !ask
    ? confirm
    : await vscode.window.showInformationMessage(
        `Fair Prune: commit ${pointId} to ${vscode.workspace.asRelativePath(targetDir)}?`,
        {
          modal: true,
          detail:
            `Writes the pruned model, fairness.json and FAIRNESS.md into the new folder ${targetDir}${stage ? ' and stages them in git' : ''}.\n` +
            `${override ? 'Committed by override: the reason is recorded.' : 'The point passes the fairness gate.'} Gate policy from ${policySource()}.`,
        },
        confirm,
      );
  if (pick !== confirm) {
    output.appendLine(`${pointId} was not committed: the commit to ${targetDir} was cancelled`);
    return undefined;
  }
  if (!ask)
    output.appendLine(
      `committing ${pointId} to ${targetDir} without asking (fairPrune.commit.confirm is off in user settings; gate policy from ${policySource()})`,
    );
  const result = commitPoint({
    sessionDir,
    results: session.results,
    pointId,
    policy: gate,
    override,
    workspaceRoot,
    targetDir,
  });
  output.appendLine(`committed ${pointId} (${result.record.decision}) to ${result.dir}: ${result.files.join(', ')}`);
  if (stage) await stageInGit(result.dir, output);
  const open = 'Open FAIRNESS.md';
  const reveal = 'Reveal in Explorer';
  void vscode.window
    .showInformationMessage(
      `Fair Prune: committed ${pointId}${override ? ' by override' : ''} to ${vscode.workspace.asRelativePath(result.dir)} (gate policy from ${policySource()}).`,
      open,
      reveal,
    )
    .then((pick) => {
      if (pick === open) void vscode.window.showTextDocument(vscode.Uri.file(path.join(result.dir, 'FAIRNESS.md')));
      if (pick === reveal) void vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(result.dir));
    });
  return result.dir;
}
