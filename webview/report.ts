/**
 * The side-bar fairness report's page script (bundled by esbuild into dist/webview/report.js). The host
 * renders the report's HTML (src/ui/report-html.ts); this turns its buttons into typed `WebviewToHost`
 * messages and swaps in each new body the host posts. Commit buttons are VS Code Elements buttons.
 */
import './lit-nonce';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import type { HostToReport, WebviewToHost } from '../src/protocol/webview';
import './report.css';

declare function acquireVsCodeApi(): { postMessage(m: WebviewToHost): void };
const vscode = acquireVsCodeApi();

window.addEventListener('message', (e: MessageEvent<HostToReport>) => {
  if (e.data?.type === 'body') document.getElementById('report')!.innerHTML = e.data.html;
});

document.addEventListener('click', (e) => {
  const b = (e.target as HTMLElement).closest?.('button, vscode-button') as HTMLElement | null;
  if (!b || b.hasAttribute('disabled')) return;
  const d = b.dataset;
  if (d.showCurves) vscode.postMessage({ type: 'showCurves', sessionDir: d.showCurves });
  else if (d.openReport) vscode.postMessage({ type: 'openReport', sessionDir: d.openReport });
  else if (b.classList.contains('commit') && d.session && d.point)
    vscode.postMessage({ type: 'commit', sessionDir: d.session, pointId: d.point });
});

vscode.postMessage({ type: 'ready' });
