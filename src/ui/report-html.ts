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
  const caption =
    `Differences between groups (Fairlearn's definitions; ` + `lower is fairer)${c ? ', change against dense' : ''}`;
  return (
    `<div class="table-wrap"><table class="fairness"><caption>${caption}</caption>` +
    `<thead><tr>${head}</tr></thead><tbody>${rows}</tbody></table></div>`
  );
}

/** A table row: the group as its header cell, then the cells. */
const groupRow = (group: string, cells: string[]) =>
  `<tr><th scope="row">${groupName(group)}</th>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`;

/** A captioned table of group rows in its scrolling wrapper. */
const groupTable = (caption: string, columns: string[], rows: string) =>
  `<div class="table-wrap"><table><caption>${caption}</caption><thead><tr>` +
  columns.map((c) => `<th scope="col">${c}</th>`).join('') +
  `</tr></thead><tbody>${rows}</tbody></table></div>`;

const COMMIT_TITLE = 'Write this pruned model, fairness.json and FAIRNESS.md beside the dense model';

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
      const warning = e?.warning ? ` <span class="warn" title="${escapeHtml(e.warning)}">⚠</span>` : '';
      return groupRow(g.group, [
        d ? escapeHtml(pct(d.accuracy.value)) : '–',
        ci(e?.accuracy),
        delta(g.accuracyChange.value),
        ci(g.excessGap, (x) => signedPts(x)),
        `${e ? e.n : '–'}${warning}`,
      ]);
    })
    .join('');
  const ev = p.evaluation;
  const summary =
    `Accuracy ${ci(ev.accuracy)} (${delta(p.comparison.accuracyChange.value)}); ` +
    `worst group ${escapeHtml(ev.worstGroup.group)} ${escapeHtml(pct(ev.worstGroup.accuracy.value))} ` +
    `(${delta(p.comparison.worstGroupChange.value)}); gap ${escapeHtml(pct(ev.largestGap.value))}; ` +
    `${p.size.nonZeroParameters.toLocaleString('en')} non-zero parameters.`;
  const commitState = disabledReason
    ? `disabled title="${escapeHtml(disabledReason)}" aria-disabled="true"`
    : `title="${COMMIT_TITLE}"`;
  const commit =
    `<vscode-button class="commit" data-session="${escapeHtml(view.sessionDir)}" ` +
    `data-point="${escapeHtml(p.id)}" ${commitState}>Commit ${escapeHtml(p.id)}</vscode-button>` +
    (disabledReason ? `<p class="why-disabled">${escapeHtml(disabledReason)}</p>` : '');
  const badge = `<span class="badge ${passed ? 'pass' : 'fail'}">${passed ? 'PASS' : 'FAIL'}</span>`;
  const columns = ['group', 'dense', 'pruned [95% CI]', 'change', 'ψ [95% CI]', 'n'];
  return `<section class="point ${passed ? 'pass' : 'fail'}" data-point="${escapeHtml(p.id)}">
<h3>${badge} ${escapeHtml(pct(p.targetSparsity, 0))} sparsity · ${escapeHtml(p.loss)}</h3>
<p class="summary">${summary}</p>
${groupTable('Test accuracy by group, dense vs pruned', columns, rows)}
${fairnessDifferencesHtml(r.model.task, p.evaluation, p.comparison)}
<p class="verdict">${escapeHtml(why)}</p>
${commit}
</section>`;
}

export function renderReportBody(view: SessionView | null): string {
  if (!view) {
    return (
      '<p class="empty">No session selected. Run <b>Fair Prune: ' +
      'Prune with Fairness Check…</b> on a model, ' +
      'or pick a session in the Sessions view.</p>'
    );
  }
  const r = view.results;
  const status =
    r.status === 'completed'
      ? ''
      : ` <span class="status">${escapeHtml(r.status)}${r.error ? `: ${escapeHtml(r.error)}` : ''}</span>`;
  const meta =
    `Session ${escapeHtml(r.sessionId)}${status} · ${escapeHtml(r.data.path.split(/[\\/]/).pop() ?? '')} · ` +
    `label ${escapeHtml(r.data.label.column)} · groups by ${escapeHtml(r.data.groupColumns.join(' × '))} · ` +
    `${escapeHtml(r.engine.backend.name)} backend`;
  const dir = escapeHtml(view.sessionDir);
  const links =
    `<button class="link" data-show-curves="${dir}">Show fairness curves</button> · ` +
    `<button class="link" data-open-report="${dir}">Open report.md</button>`;
  const rec = view.recommendation;
  const recommendation = rec
    ? `<p class="recommendation${rec.pointId ? '' : ' none'}">${escapeHtml(rec.sentence)}</p>`
    : '';
  const warnings = r.data.warnings.length
    ? `<ul class="warnings">${r.data.warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join('')}</ul>`
    : '';
  return `<header><h2>${escapeHtml(r.model.path.split(/[\\/]/).slice(-2).join('/'))}</h2>
<p class="meta">${meta}</p>
<p class="links">${links}</p></header>
${recommendation}
${warnings}
${r.dense ? denseSection(r.dense, r.model.task) : ''}
${r.points.map((p) => pointSection(view, p)).join('\n')}
${r.points.length === 0 ? '<p class="empty">No pruned point has finished yet.</p>' : ''}`;
}

function denseSection(dense: Evaluation, task: Task): string {
  const rows = dense.groups
    .map((g) => groupRow(g.group, [String(g.n), ci(g.accuracy), ci(g.auroc, (x) => x.toFixed(3))]))
    .join('');
  const summary =
    `Accuracy ${ci(dense.accuracy)}; worst group ${escapeHtml(dense.worstGroup.group)} ` +
    `${escapeHtml(pct(dense.worstGroup.accuracy.value))}; gap ${escapeHtml(pct(dense.largestGap.value))}.`;
  const columns = ['group', 'n', 'accuracy [95% CI]', 'AUROC'];
  return `<section class="dense"><h3>Dense model</h3><p class="summary">${summary}</p>
${groupTable('Test accuracy by group, dense model', columns, rows)}
${fairnessDifferencesHtml(task, dense, null)}</section>`;
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
