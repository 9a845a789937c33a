/**
 * The side-panel fairness report as HTML, from a session and the gate's verdicts. No `vscode`
 * import, so it is unit-tested like the engine. Its stylesheet and script are webview/report.{css,ts}:
 * colours from VS Code's theme variables (light, dark and high-contrast themes), Commit buttons from
 * VS Code Elements, clicks turned into typed `WebviewToHost` messages.
 */
import type { SessionView } from '../protocol/webview';
import type { Comparison, Estimate, Evaluation, PrunedPoint, Task } from '../protocol/results';
import {
  betweenGroupsEstimate,
  changeDirection,
  changeEstimate,
  fairnessDifferences,
  formatChange,
  formatValue,
  pct,
  signedPts,
  type MetricDef,
} from '../shared/metric-table';
import { webviewCsp, webviewPage, type PageAssets } from './webview-assets';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const ci = (e: Estimate | null | undefined, f: (x: number) => string = (x) => pct(x)) =>
  e ? `${escapeHtml(f(e.value))} <span class="ci">[${escapeHtml(f(e.low))}, ${escapeHtml(f(e.high))}]</span>` : '–';

/** A group name that may wrap only after its '=' and '×' (a narrow side bar never splits a word). */
const groupName = (g: string) => escapeHtml(g).replace(/(=|×)/g, '$1<wbr>');

const delta = (x: number) =>
  `<span class="${x < -0.005 ? 'worse' : x > 0.005 ? 'better' : ''}">${escapeHtml(signedPts(x))}</span>`;

const ciOf = (m: MetricDef, e: Estimate | null, change = false) =>
  e ? ci(e, (x) => (change ? formatChange(m, x) : formatValue(m, x))) : '–';

/**
 * Binary tasks: Fairlearn's between-group differences (from the metric table) as a small table, with
 * the paired change against dense for a pruned point. Empty for multiclass and older results files.
 */
export function fairnessDifferencesHtml(task: Task, e: Evaluation, c: Comparison | null): string {
  const defs = fairnessDifferences(task);
  if (!defs.length || !e.fairness) return '';
  const rows = defs
    .map((m) => {
      const ch = c ? changeEstimate(m, c) : null;
      const dir = ch ? changeDirection(m, ch.value) : 'same';
      const changeCell = ch
        ? `<span class="${dir === 'same' ? '' : dir}">${escapeHtml(formatChange(m, ch.value))}</span>`
        : '–';
      const change = c ? `<td>${changeCell}</td>` : '';
      const name = `<th scope="row" title="${escapeHtml(m.description)}">${escapeHtml(m.label)}</th>`;
      return `<tr>${name}<td>${ciOf(m, betweenGroupsEstimate(m, e))}</td>${change}</tr>`;
    })
    .join('');
  const head =
    '<th scope="col">difference</th><th scope="col">value [95% CI]</th>' + (c ? '<th scope="col">change</th>' : '');
  const caption = `Differences between groups (Fairlearn's definitions; lower is fairer)${c ? ', change against dense' : ''}`;
  return (
    `<div class="table-wrap"><table class="fairness"><caption>${caption}</caption>` +
    `<thead><tr>${head}</tr></thead><tbody>${rows}</tbody></table></div>`
  );
}

function pointSection(view: SessionView, p: PrunedPoint): string {
  const r = view.results;
  const verdict = view.verdicts[p.id];
  const passed = verdict?.passed ?? false;
  const why = verdict ? verdict.summary : 'no verdict';
  const disabledReason = !view.canCommit
    ? 'Committing is disabled in Restricted Mode: trust this workspace to commit.'
    : !passed
      ? `Fails the fairness gate: ${why}`
      : '';
  const rows = p.comparison.groups
    .map((g) => {
      const d = r.dense.groups.find((x) => x.group === g.group);
      const e = p.evaluation.groups.find((x) => x.group === g.group);
      return `<tr><th scope="row">${groupName(g.group)}</th><td>${d ? escapeHtml(pct(d.accuracy.value)) : '–'}</td><td>${ci(e?.accuracy)}</td><td>${delta(g.accuracyChange.value)}</td><td>${ci(g.excessGap, (x) => signedPts(x))}</td><td>${e ? e.n : '–'}${e?.warning ? ` <span class="warn" title="${escapeHtml(e.warning)}">⚠</span>` : ''}</td></tr>`;
    })
    .join('');
  return `<section class="point ${passed ? 'pass' : 'fail'}" data-point="${escapeHtml(p.id)}">
<h3><span class="badge ${passed ? 'pass' : 'fail'}">${passed ? 'PASS' : 'FAIL'}</span> ${escapeHtml(pct(p.targetSparsity, 0))} sparsity · ${escapeHtml(p.loss)}</h3>
<p class="summary">Accuracy ${ci(p.evaluation.accuracy)} (${delta(p.comparison.accuracyChange.value)}); worst group ${escapeHtml(p.evaluation.worstGroup.group)} ${escapeHtml(pct(p.evaluation.worstGroup.accuracy.value))} (${delta(p.comparison.worstGroupChange.value)}); gap ${escapeHtml(pct(p.evaluation.largestGap.value))}; ${p.size.nonZeroParameters.toLocaleString('en')} non-zero parameters.</p>
<div class="table-wrap"><table><caption>Test accuracy by group, dense vs pruned</caption><thead><tr><th scope="col">group</th><th scope="col">dense</th><th scope="col">pruned [95% CI]</th><th scope="col">change</th><th scope="col">ψ [95% CI]</th><th scope="col">n</th></tr></thead><tbody>${rows}</tbody></table></div>
${fairnessDifferencesHtml(r.model.task, p.evaluation, p.comparison)}
<p class="verdict">${escapeHtml(why)}</p>
<vscode-button class="commit" data-session="${escapeHtml(view.sessionDir)}" data-point="${escapeHtml(p.id)}" ${disabledReason ? `disabled title="${escapeHtml(disabledReason)}" aria-disabled="true"` : `title="Write this pruned model, fairness.json and FAIRNESS.md beside the dense model"`}>Commit ${escapeHtml(p.id)}</vscode-button>${disabledReason ? `<p class="why-disabled">${escapeHtml(disabledReason)}</p>` : ''}
</section>`;
}

export function renderReportBody(view: SessionView | null): string {
  if (!view) {
    return '<p class="empty">No session selected. Run <b>Fair Prune: Prune with Fairness Check…</b> on a model, or pick a session in the Sessions view.</p>';
  }
  const r = view.results;
  const denseRows = r.dense
    ? r.dense.groups
        .map(
          (g) =>
            `<tr><th scope="row">${groupName(g.group)}</th><td>${g.n}</td><td>${ci(g.accuracy)}</td><td>${ci(g.auroc, (x) => x.toFixed(3))}</td></tr>`,
        )
        .join('')
    : '';
  const status =
    r.status === 'completed'
      ? ''
      : ` <span class="status">${escapeHtml(r.status)}${r.error ? `: ${escapeHtml(r.error)}` : ''}</span>`;
  return `<header><h2>${escapeHtml(r.model.path.split(/[\\/]/).slice(-2).join('/'))}</h2>
<p class="meta">Session ${escapeHtml(r.sessionId)}${status} · ${escapeHtml(r.data.path.split(/[\\/]/).pop() ?? '')} · label ${escapeHtml(r.data.label.column)} · groups by ${escapeHtml(r.data.groupColumns.join(' × '))} · ${escapeHtml(r.engine.backend.name)} backend</p>
<p class="links"><button class="link" data-show-curves="${escapeHtml(view.sessionDir)}">Show fairness curves</button> · <button class="link" data-open-report="${escapeHtml(view.sessionDir)}">Open report.md</button></p></header>
${view.recommendation ? `<p class="recommendation${view.recommendation.pointId ? '' : ' none'}">${escapeHtml(view.recommendation.sentence)}</p>` : ''}
${r.data.warnings.length ? `<ul class="warnings">${r.data.warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join('')}</ul>` : ''}
${
  r.dense
    ? `<section class="dense"><h3>Dense model</h3><p class="summary">Accuracy ${ci(r.dense.accuracy)}; worst group ${escapeHtml(r.dense.worstGroup.group)} ${escapeHtml(pct(r.dense.worstGroup.accuracy.value))}; gap ${escapeHtml(pct(r.dense.largestGap.value))}.</p>
<div class="table-wrap"><table><caption>Test accuracy by group, dense model</caption><thead><tr><th scope="col">group</th><th scope="col">n</th><th scope="col">accuracy [95% CI]</th><th scope="col">AUROC</th></tr></thead><tbody>${denseRows}</tbody></table></div>
${fairnessDifferencesHtml(r.model.task, r.dense, null)}</section>`
    : ''
}
${r.points.map((p) => pointSection(view, p)).join('\n')}
${r.points.length === 0 ? '<p class="empty">No pruned point has finished yet.</p>' : ''}`;
}

/**
 * The whole document: the CSP (src/ui/webview-assets.ts: `default-src 'none'`, nonce'd script and style),
 * the report's stylesheet and script (dist/webview/report.{css,js}) inline, the body in `<main id="report">`.
 */
export function renderReportDocument(
  view: SessionView | null,
  nonce: string,
  cspSource: string,
  assets: PageAssets,
): string {
  const body = `<main id="report">${renderReportBody(view)}</main>`;
  return webviewPage({
    title: 'Fairness report',
    nonce,
    csp: webviewCsp(nonce, cspSource),
    style: assets.style,
    body,
    script: assets.script,
  });
}
