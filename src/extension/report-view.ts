/**
 * The "Fairness Report" webview view in the Fair Prune side bar: dense vs pruned accuracy by group,
 * worst group, gap, intervals and the gate's verdict for the selected session, with Commit buttons.
 * Locked down: no remote content, `default-src 'none'`, its nonce'd script and stylesheet inline (VS Code
 * Elements' styles take the same nonce), no local resource roots.
 */
import * as vscode from 'vscode';
import type { HostToReport, WebviewToHost } from '../protocol/webview';
import { renderReportBody, renderReportDocument } from '../ui/report-html';
import { newNonce, pageAssets } from '../ui/webview-assets';
import { sessionViewOf } from './config';

export class ReportView implements vscode.WebviewViewProvider, vscode.Disposable {
  static readonly id = 'fairPrune.report';
  private view?: vscode.WebviewView;
  private sessionDir?: string;
  private loaded = false;
  /** The loaded document's script has posted `ready` (it then gets the current body). */
  private ready = false;
  private hidden = false;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly extensionUri: vscode.Uri) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    // The document carries its styles and script: it loads no file, so it may read none.
    view.webview.options = { enableScripts: true, localResourceRoots: [] };
    this.disposables.push(
      view.webview.onDidReceiveMessage((m: WebviewToHost) => this.onMessage(m)),
      // Hidden, the view's document is dropped; shown again after that, it is loaded afresh. (Only
      // then: setting the document twice in a row, as a first show can fire, may leave it blank.)
      view.onDidChangeVisibility(() => {
        if (!view.visible) this.hidden = true;
        else if (this.hidden) {
          this.hidden = false;
          this.render(true);
        }
      }),
      view.onDidDispose(() => {
        this.view = undefined;
        this.loaded = false;
      }),
    );
    this.loaded = false;
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

  /** The document is loaded once per visible lifetime; later renders post the new body, which keeps
   *  the reader's scroll position and avoids reloading the frame on every point that lands. */
  private render(reload = false): void {
    if (!this.view) return;
    const view = sessionViewOf(this.sessionDir);
    if (reload || !this.loaded) {
      const assets = pageAssets(this.extensionUri.fsPath, 'report');
      this.view.webview.html = renderReportDocument(view, newNonce(), this.view.webview.cspSource, assets);
      this.loaded = true;
      this.ready = false;
    } else if (this.ready) {
      void this.view.webview.postMessage({ type: 'body', html: renderReportBody(view) } satisfies HostToReport);
    }
    this.view.description = view?.results.sessionId;
  }

  private onMessage(m: WebviewToHost): void {
    switch (m.type) {
      case 'ready':
        // A (re)loaded document shows the current report, whatever happened while it loaded.
        this.ready = true;
        this.render();
        return;
      case 'commit':
        void vscode.commands.executeCommand('fairPrune.commit', m.sessionDir, m.pointId);
        return;
      case 'openReport':
        void vscode.commands.executeCommand('fairPrune.openReport', m.sessionDir);
        return;
      case 'showCurves':
        void vscode.commands.executeCommand('fairPrune.showCurves', m.sessionDir);
        return;
    }
  }

  dispose(): void {
    this.disposables.forEach((d) => d.dispose());
  }
}
