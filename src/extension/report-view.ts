/**
 * The "Fairness Report" webview view in the Fair Prune side bar: dense vs pruned accuracy by group,
 * worst group, gap, intervals and the gate's verdict for the selected session, with Commit buttons.
 * Locked down: no remote content, `default-src 'none'`, one nonce'd script.
 */
import * as crypto from 'crypto';
import * as vscode from 'vscode';
import type { SessionView, WebviewToHost } from '../protocol/webview';
import { readSession } from '../core/session-store';
import { checkPoint } from '../core/gate';
import { renderReportDocument } from '../ui/report-html';
import { policy } from './config';

export class ReportView implements vscode.WebviewViewProvider, vscode.Disposable {
  static readonly id = 'fairPrune.report';
  private view?: vscode.WebviewView;
  private sessionDir?: string;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly extensionUri: vscode.Uri) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    view.webview.options = { enableScripts: true, localResourceRoots: [this.extensionUri] };
    this.disposables.push(
      view.webview.onDidReceiveMessage((m: WebviewToHost) => this.onMessage(m)),
      view.onDidChangeVisibility(() => view.visible && this.render()),
    );
    this.render();
  }

  /** Shows a session. */
  async show(sessionDir: string): Promise<void> {
    this.sessionDir = sessionDir;
    if (!this.view) await vscode.commands.executeCommand(`${ReportView.id}.focus`);
    else this.view.show?.(true);
    this.render();
  }

  /** Re-render if the shown session changed on disk. */
  refresh(sessionDir?: string): void {
    if (!sessionDir || sessionDir === this.sessionDir) this.render();
  }

  get currentSession(): string | undefined {
    return this.sessionDir;
  }

  sessionView(): SessionView | null {
    const s = this.sessionDir ? readSession(this.sessionDir) : undefined;
    if (!s) return null;
    const p = policy();
    return {
      sessionDir: s.dir,
      results: s.results,
      verdicts: Object.fromEntries(s.results.points.map((pt) => [pt.id, checkPoint(pt, p)])),
      canCommit: vscode.workspace.isTrusted,
    };
  }

  private render(): void {
    if (!this.view) return;
    const nonce = crypto.randomBytes(16).toString('base64');
    this.view.webview.html = renderReportDocument(this.sessionView(), nonce, this.view.webview.cspSource);
    this.view.description = this.sessionDir ? readSession(this.sessionDir)?.results.sessionId : undefined;
  }

  private onMessage(m: WebviewToHost): void {
    switch (m.type) {
      case 'ready':
        return;
      case 'commit':
        void vscode.commands.executeCommand('fairPrune.commit', m.sessionDir, m.pointId);
        return;
      case 'openReport':
        void vscode.commands.executeCommand('fairPrune.openReport', m.sessionDir);
        return;
    }
  }

  dispose(): void {
    this.disposables.forEach((d) => d.dispose());
  }
}
