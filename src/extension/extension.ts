/**
 * Fair Prune in VS Code. Activation registers commands and views only: no TensorFlow.js is loaded
 * in the extension host; sessions run in the engine's own process (dist/engine.js).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { UserError } from '../core/errors';
import { askRunRequest, SessionRunner } from './prune';
import { commitCommand, pickPoint } from './commit';
import { SessionsView } from './sessions-view';
import type { Node } from './sessions-view';
import { ReportView } from './report-view';
import { CurvesPanel } from './curves-panel';
import { installNativeBackend, nativeEnv } from './native';
import { askDemoRequest } from './demo';

let runner: SessionRunner | undefined;

/** Runs a command body, turning a UserError into a message that names the file, field and fix. */
function guarded<A extends unknown[]>(fn: (...args: A) => Promise<unknown> | unknown) {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      const message = e instanceof UserError ? e.message : `unexpected error: ${(e as Error).message}`;
      void vscode.window.showErrorMessage(`Fair Prune: ${message}`);
    }
  };
}

export function activate(context: vscode.ExtensionContext) {
  const started = performance.now();
  // A log channel: every line carries its time and level, and the user can set how much is shown.
  const output = vscode.window.createOutputChannel('Fair Prune', { log: true });
  const sessions = new SessionsView(() => runner?.runningViews() ?? []);
  const report = new ReportView(context.extensionUri);
  const curves = new CurvesPanel(
    context.extensionUri,
    output,
    () => report.currentSession ?? sessions.sessions()[0]?.dir,
  );
  runner = new SessionRunner({
    output,
    enginePath: path.join(context.extensionPath, 'dist', 'engine.js'),
    nativeEnv: () => nativeEnv(context),
    onEvent: (e, run) => {
      // A starting session opens the curves panel (without taking focus) so its points land live.
      if (e.type === 'started') curves.show(e.sessionDir, { preserveFocus: true });
      curves.onEngineEvent(e, e.type === 'started' ? e.sessionDir : run.sessionDir);
      if (e.type === 'started') {
        sessions.refreshSoon();
        void report.show(e.sessionDir);
      }
      if (e.type === 'point' || e.type === 'dense' || e.type === 'finished') {
        sessions.refreshSoon();
        report.refresh(run.sessionDir);
      }
    },
    onEnded: (o) => {
      sessions.refreshSoon();
      report.refresh(o.sessionDir);
      curves.refresh(o.sessionDir);
    },
  });
  const sessionsTree = vscode.window.createTreeView('fairPrune.sessions', { treeDataProvider: sessions });
  // In Restricted Mode the commands stay visible and say why they will not run (a greyed-out menu
  // entry would not), with the way to trust the workspace one click away.
  const requireTrust = (what: string, why = 'it trains on your files in a separate process') => {
    if (vscode.workspace.isTrusted) return true;
    const manage = 'Manage Workspace Trust';
    void vscode.window
      .showErrorMessage(
        `Fair Prune ${what} only in a trusted workspace: ${why}. Reading reports works in Restricted Mode; trust this workspace to ${what.replace(/^(\w+?)s /, '$1 ')}.`,
        manage,
      )
      .then((pick) => pick === manage && vscode.commands.executeCommand('workbench.trust.manage'));
    return false;
  };

  context.subscriptions.push(
    output,
    sessions,
    report,
    curves,
    runner,
    runner.onDidChange((modelPath) => sessions.runningChanged(modelPath)),
    sessionsTree,
    sessionsTree.onDidChangeVisibility((e) => e.visible && runner?.viewShown()),
    vscode.window.registerWebviewViewProvider(ReportView.id, report),
    vscode.window.registerWebviewPanelSerializer(CurvesPanel.viewType, {
      deserializeWebviewPanel: async (panel, state) => curves.restore(panel, state),
    }),
    vscode.commands.registerCommand('fairPrune.showCurves', (arg?: string | Node) => {
      const dir =
        typeof arg === 'string'
          ? arg
          : arg && (arg.kind === 'session' || arg.kind === 'point')
            ? arg.session.dir
            : undefined;
      curves.show(dir);
    }),
    vscode.commands.registerCommand(
      'fairPrune.prune',
      guarded(async (uri?: vscode.Uri) => {
        if (!requireTrust('runs pruning sessions')) return;
        const request = await askRunRequest(context, uri instanceof vscode.Uri ? uri : undefined);
        if (request) await runner!.start(request);
      }),
    ),
    vscode.commands.registerCommand(
      'fairPrune.tryDemo',
      guarded(async () => {
        if (!requireTrust('runs the demo', 'it writes the demo into the workspace and trains in a separate process'))
          return;
        const asked = await askDemoRequest();
        if (asked) await runner!.start(asked.request, asked.demo);
      }),
    ),
    // From a running item's Cancel: that session; from the view's title bar, the palette or the keybinding: all.
    vscode.commands.registerCommand('fairPrune.cancel', (arg?: Node) => {
      const modelPath = arg && typeof arg === 'object' && arg.kind === 'running' ? arg.modelPath : undefined;
      if (!runner!.cancel(modelPath)) void vscode.window.showInformationMessage('Fair Prune: no session is running.');
    }),
    vscode.commands.registerCommand(
      'fairPrune.commit',
      guarded(async (arg?: string | Node, pointId?: string) => {
        if (!requireTrust('commits pruned models')) return;
        let target: { sessionDir: string; pointId: string } | undefined;
        if (typeof arg === 'string' && pointId) target = { sessionDir: arg, pointId };
        else if (arg && typeof arg === 'object' && arg.kind === 'point')
          target = { sessionDir: arg.session.dir, pointId: arg.point.id };
        else {
          const current = report.currentSession;
          const list = sessions.sessions();
          target = await pickPoint(
            current ? [...list.filter((s) => s.dir === current), ...list.filter((s) => s.dir !== current)] : list,
          );
        }
        if (target) await commitCommand(target.sessionDir, target.pointId, output);
      }),
    ),
    vscode.commands.registerCommand('fairPrune.showSession', async (sessionDir?: string | Node) => {
      const dir =
        typeof sessionDir === 'string'
          ? sessionDir
          : sessionDir && (sessionDir.kind === 'session' || sessionDir.kind === 'point')
            ? sessionDir.session.dir
            : sessions.sessions()[0]?.dir;
      if (dir) await report.show(dir);
      else void vscode.window.showInformationMessage('Fair Prune: no session yet in this workspace.');
    }),
    vscode.commands.registerCommand('fairPrune.openReport', async (sessionDir?: string | Node) => {
      const dir =
        typeof sessionDir === 'string'
          ? sessionDir
          : sessionDir && (sessionDir.kind === 'session' || sessionDir.kind === 'point')
            ? sessionDir.session.dir
            : report.currentSession;
      const file = dir && path.join(dir, 'report.md');
      if (!file || !fs.existsSync(file)) {
        void vscode.window.showInformationMessage(
          'Fair Prune: this session has no report yet (it is written when the session ends).',
        );
        return;
      }
      await vscode.commands.executeCommand('markdown.showPreview', vscode.Uri.file(file));
    }),
    vscode.commands.registerCommand('fairPrune.refresh', () => sessions.refresh()),
    vscode.commands.registerCommand('fairPrune.showLog', () => output.show(true)),
    vscode.commands.registerCommand(
      'fairPrune.installNativeBackend',
      guarded(
        () =>
          requireTrust('installs a native backend', 'it runs npm, which downloads and builds code') &&
          installNativeBackend(context, output),
      ),
    ),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('fairPrune.gate') || e.affectsConfiguration('fairPrune.outputFolder')) {
        sessions.refresh();
        report.refresh();
        curves.refresh();
      }
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      report.refresh();
      curves.refresh();
    }),
  );
  const ms = performance.now() - started;
  output.appendLine(`Fair Prune activated in ${ms.toFixed(1)} ms`);
  return { activationMs: ms };
}

export function deactivate(): void {
  runner?.dispose();
  runner = undefined;
}
