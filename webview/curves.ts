/**
 * The fairness curves panel (runs in the webview; bundled by esbuild into dist/webview/curves.js).
 * All decisions (series, verdicts, table, CSV) come from src/ui/curves-model.ts; this file draws
 * them with Chart.js and VS Code Elements (docs/webviews.md) and turns clicks and keys into typed
 * `CurvesToHost` messages. It posts `ready` first and draws only what the host sends after that.
 */
import './lit-nonce';
import { Chart, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip } from 'chart.js';
import type { ChartConfiguration, Plugin } from 'chart.js';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-progress-ring/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import type {
  CurvesMetric,
  CurvesState,
  CurvesToHost,
  CurvesXAxis,
  ExemplarImage,
  HostToCurves,
  SessionView,
} from '../src/protocol/webview';
import type { LossName } from '../src/protocol/results';
import {
  chartTextRows,
  commitState,
  curvesMetrics,
  DEFAULT_CURVES_STATE,
  formatMetric,
  groupColour,
  groupNames,
  groupSeries,
  LOSS_STYLE,
  lossNames,
  METRIC_LABELS,
  pct,
  pointDetail,
  referenceLines,
  sanitizeState,
  signedPts,
  seedRuns,
  summarySeries,
  TABLE_HEADERS,
  tableCells,
  tableCsv,
  tableRows,
  toggle,
  tooltipLines,
  X_LABELS,
} from '../src/ui/curves-model';
import type { ReferenceLine, Series, SummarySeries } from '../src/ui/curves-model';
import './curves.css';

Chart.register(LineController, LineElement, PointElement, LinearScale, Tooltip, Legend);

declare function acquireVsCodeApi(): {
  postMessage(m: CurvesToHost): void;
  getState(): unknown;
  setState(s: unknown): void;
};
const vscode = acquireVsCodeApi();

let state: CurvesState = sanitizeState(vscode.getState() ?? DEFAULT_CURVES_STATE);
let view: SessionView | null = null;
let flops: Record<string, number> | null = null;
let flopsNote = '';
let progress: { text: string; fraction: number } | null = null;
let exemplars: { pointId: string; images: ExemplarImage[]; note: string } | null = null;
const charts: Chart[] = [];

const app = document.getElementById('app')!;
const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function save(): void {
  vscode.setState(state);
  vscode.postMessage({ type: 'state', state });
}

// ---- theme ------------------------------------------------------------------------------------

function themeColours() {
  const css = getComputedStyle(document.body);
  const v = (name: string, fallback: string) => css.getPropertyValue(name).trim() || fallback;
  const highContrast =
    document.body.classList.contains('vscode-high-contrast') ||
    document.body.classList.contains('vscode-high-contrast-light');
  return {
    fg: v('--vscode-editor-foreground', v('--vscode-foreground', '#333')),
    muted: v('--vscode-descriptionForeground', '#717171'),
    grid: highContrast
      ? v('--vscode-contrastBorder', '#6fc3df')
      : v('--vscode-editorWidget-border', 'rgba(128,128,128,0.35)'),
    bg: v('--vscode-editor-background', '#ffffff'),
    font: v('--vscode-font-family', 'sans-serif'),
    highContrast,
  };
}

// ---- chart plugins: interval whiskers, dense reference lines, opaque background for PNG export -----

type Whiskers = Array<Array<{ low: number; high: number }>>;
const whiskerData = new WeakMap<Chart, { whiskers: Whiskers; colours: string[] }>();
const referenceData = new WeakMap<Chart, ReferenceLine[]>();

const whiskerPlugin: Plugin = {
  id: 'fpWhiskers',
  afterDatasetsDraw(chart) {
    const data = whiskerData.get(chart);
    if (!data) return;
    const { ctx } = chart;
    const y = chart.scales.y;
    ctx.save();
    data.whiskers.forEach((list, di) => {
      const meta = chart.getDatasetMeta(di);
      if (meta.hidden) return;
      ctx.strokeStyle = data.colours[di];
      ctx.globalAlpha = 0.75;
      ctx.lineWidth = 1.5;
      list.forEach((w, i) => {
        const el = meta.data[i];
        if (!el) return;
        const top = y.getPixelForValue(w.high);
        const bottom = y.getPixelForValue(w.low);
        ctx.beginPath();
        ctx.moveTo(el.x, top);
        ctx.lineTo(el.x, bottom);
        ctx.moveTo(el.x - 4, top);
        ctx.lineTo(el.x + 4, top);
        ctx.moveTo(el.x - 4, bottom);
        ctx.lineTo(el.x + 4, bottom);
        ctx.stroke();
      });
    });
    ctx.restore();
  },
};

const referencePlugin: Plugin = {
  id: 'fpReference',
  beforeDatasetsDraw(chart) {
    const lines = referenceData.get(chart);
    if (!lines?.length) return;
    const { ctx, chartArea } = chart;
    const y = chart.scales.y;
    const theme = themeColours();
    ctx.save();
    for (const l of lines) {
      const py = y.getPixelForValue(l.y);
      if (py < chartArea.top || py > chartArea.bottom) continue;
      ctx.strokeStyle = l.colour || theme.fg;
      ctx.globalAlpha = 0.9;
      ctx.lineWidth = theme.highContrast ? 2 : 1.25;
      ctx.setLineDash([1, 4]);
      ctx.beginPath();
      ctx.moveTo(chartArea.left, py);
      ctx.lineTo(chartArea.right, py);
      ctx.stroke();
    }
    ctx.restore();
  },
};

const backgroundPlugin: Plugin = {
  id: 'fpBackground',
  beforeDraw(chart) {
    const { ctx } = chart;
    ctx.save();
    ctx.globalCompositeOperation = 'destination-over';
    ctx.fillStyle = themeColours().bg;
    ctx.fillRect(0, 0, chart.width, chart.height);
    ctx.restore();
  },
};

// ---- rendering ---------------------------------------------------------------------------------

function destroyCharts(): void {
  charts.splice(0).forEach((c) => c.destroy());
}

function render(): void {
  destroyCharts();
  app.removeAttribute('aria-busy');
  if (!view) {
    app.innerHTML = `<p class="empty">${esc(progress?.text ?? 'No session to show.')}</p>`;
    return;
  }
  const v = view;
  const r = v.results;
  if (state.selected && !r.points.some((p) => p.id === state.selected)) state.selected = null;
  if (state.xAxis === 'flops' && !flops) state.xAxis = 'sparsity';
  if (!curvesMetrics(v).includes(state.metric)) state.metric = 'accuracy';
  const groups = groupNames(v);
  const losses = lossNames(v);
  const series = groupSeries(v, state, flops);
  const summary = summarySeries(v, state, flops);
  const rows = tableRows(v, flops);
  const running = r.status === 'running';
  app.innerHTML = `
<header>
  <h1>${esc(r.model.path.split(/[\\/]/).slice(-2).join('/'))} <span class="status ${esc(r.status)}">${esc(r.status)}</span></h1>
  <p class="meta">Session ${esc(r.sessionId)} · ${esc(r.data.path.split(/[\\/]/).pop() ?? '')} · groups by ${esc(r.data.groupColumns.join(' × '))} · ${r.points.length} point${r.points.length === 1 ? '' : 's'} · ${esc(r.engine.backend.name)} backend</p>
  ${v.recommendation && r.points.length ? `<p class="recommendation${v.recommendation.pointId ? '' : ' none'}" ` + `id="recommendation">${v.recommendation.pointId ? `<button class="link" id="select-recommended" data-point="${esc(v.recommendation.pointId)}">★</button> ` : ''}${esc(v.recommendation.sentence)}</p>` : ''}
  <p class="progress" role="status" aria-live="polite">${running && progress ? `<vscode-progress-ring></vscode-progress-ring> ${esc(progress.text)}` : ''}</p>
</header>
<section class="controls" aria-label="Chart options">
  <span class="control"><label for="x-axis">x axis</label><vscode-single-select id="x-axis" aria-label="x axis">
    <vscode-option value="sparsity" ${state.xAxis === 'sparsity' ? 'selected' : ''}>sparsity</vscode-option>
    <vscode-option value="flops" ${state.xAxis === 'flops' ? 'selected' : ''} ${flops ? '' : 'disabled'}>FLOPs reduction</vscode-option>
  </vscode-single-select></span>
  <span class="control"><label for="metric">metric</label><vscode-single-select id="metric" aria-label="metric">
    ${curvesMetrics(v)
      .map(
        (m) =>
          '<vscode-option ' +
          `value="${m}" ${state.metric === m ? 'selected' : ''}>${esc(METRIC_LABELS[m])}</vscode-option>`,
      )
      .join('')}
  </vscode-single-select></span>
  <fieldset><legend>groups</legend>${groups
    .map(
      (g) =>
        '<vscode-checkbox ' +
        `data-group="${esc(g)}" ${state.hiddenGroups.includes(g) ? '' : 'checked'}><span ` +
        'class="swatch" ' +
        `data-colour="${esc(groupColour(v, g))}"></span>${esc(g)}</vscode-checkbox>`,
    )
    .join('')}</fieldset>
  <fieldset><legend>losses</legend>${losses
    .map(
      (l) =>
        '<vscode-checkbox ' +
        `data-loss="${esc(l)}" ${state.hiddenLosses.includes(l) ? '' : 'checked'}><canvas ` +
        `class="dash" width="28" height="10" data-loss-dash="${esc(l)}" ` +
        `aria-hidden="true"></canvas>${esc(l)}</vscode-checkbox>`,
    )
    .join('')}</fieldset>
  <span class="exports"><vscode-button id="export-png" secondary>Export Chart PNG</vscode-button> <vscode-button id="export-csv" secondary>Export Table CSV</vscode-button></span>
</section>
${state.xAxis === 'flops' || !flops ? `<p class="note">${esc(flopsNote)}</p>` : ''}
<section class="charts">
  <figure class="main-chart" id="main-figure" data-series="${esc(JSON.stringify([]))}">
    <figcaption>${esc(METRIC_LABELS[state.metric])} of each group against ${esc(X_LABELS[state.xAxis])}; solid and dashed lines are losses, colours are groups, dotted horizontal lines are the dense model, whiskers are 95% bootstrap intervals.</figcaption>
    <div class="canvas-box"><canvas id="main-chart" role="img" aria-label="${esc(`${METRIC_LABELS[state.metric]} by group ` + `against ${state.xAxis}: ${series.length} series. ` + 'The same numbers are in the chart data table below.')}"></canvas></div>
  </figure>
  <div class="side">
    ${seedRuns(v) > 1 ? '<p class="hint">Worst group and gap: ' + `mean of ${seedRuns(v)} seeds; whiskers span the runs.</p>` : ''}
    <figure><figcaption>Worst-group accuracy</figcaption><div class="canvas-box small"><canvas id="worst-chart" role="img" aria-label="worst-group accuracy per loss; numbers in the table of points"></canvas></div></figure>
    <figure><figcaption>Largest accuracy gap between groups</figcaption><div class="canvas-box small"><canvas id="gap-chart" role="img" aria-label="largest accuracy gap per loss; numbers in the table of points"></canvas></div></figure>
  </div>
</section>
<details class="chart-data"><summary>Chart data as a table</summary>
  <table id="chart-table"><caption>Every plotted value: group, loss, x, ${esc(METRIC_LABELS[state.metric])}, 95% interval, test samples, point</caption>
  <thead><tr>${['group', 'loss', state.xAxis === 'flops' ? 'FLOPs reduction' : 'sparsity', METRIC_LABELS[state.metric], '95% CI', 'n', 'point'].map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead>
  <tbody>${chartTextRows(series, state.metric)
    .map(
      (c) =>
        `<tr>${c.map((x, i) => (i === 0 ? `<th scope="row">${esc(x)}</th>` : `<td>${esc(x)}</td>`)).join('')}</tr>`,
    )
    .join('')}</tbody></table>
</details>
<section class="points" aria-label="Pruned points">
  <h2 id="points-title">Points <span class="hint">select one to see its detail and commit it (click, or ↑ ↓ and Enter on a row)</span></h2>
  ${pointsGrid(rows)}
  ${rows.length ? '' : `<p class="empty">${running ? 'No pruned point has finished yet; points appear here as they land.' : 'This session has no pruned point.'}</p>`}
</section>
<section class="detail" id="detail" aria-live="polite">${detailHtml(v)}</section>`;

  // swatches and dash samples (inline styles would need 'unsafe-inline': set through the CSSOM)
  app.querySelectorAll<HTMLElement>('.swatch').forEach((el) => (el.style.backgroundColor = el.dataset.colour ?? ''));
  app.querySelectorAll<HTMLCanvasElement>('canvas.dash').forEach((c) => {
    const ctx = c.getContext('2d');
    if (!ctx) return;
    ctx.strokeStyle = themeColours().fg;
    ctx.lineWidth = 2;
    ctx.setLineDash(LOSS_STYLE[c.dataset.lossDash as LossName].dash);
    ctx.beginPath();
    ctx.moveTo(1, 5);
    ctx.lineTo(27, 5);
    ctx.stroke();
  });
  app.querySelectorAll<HTMLElement>('.group-dot').forEach((el) => (el.style.backgroundColor = el.dataset.colour ?? ''));

  drawMain(series, referenceLines(v, state));
  drawSummary(
    'worst-chart',
    summary.filter((s) => s.kind === 'worst'),
    (x) => pct(x),
  );
  drawSummary(
    'gap-chart',
    summary.filter((s) => s.kind === 'gap'),
    (x) => pct(x),
  );
  wire();
  renderGallery();
}

/**
 * The points as a grid: a plain table with role="grid" (docs/webviews.md says why not vscode-table).
 * One row at a time is in the tab order (the selected one, else the first); ↑ ↓ Home End move between
 * rows, Enter or Space selects the focused row's point.
 */
function pointsGrid(rows: ReturnType<typeof tableRows>): string {
  const focusable = rows.some((r) => r.pointId === state.selected) ? state.selected : rows[0]?.pointId;
  const head = TABLE_HEADERS.map((h) => `<th scope="col">${esc(h)}</th>`).join('');
  const body = rows
    .map((row) => {
      const selected = row.pointId === state.selected;
      const cls = `${selected ? 'selected ' : ''}${row.verdict}${row.recommended ? ' recommended' : ''}`;
      const cells = tableCells(row).map(
        (c, i) => `<td${i === 7 ? ` class="verdict ${row.verdict}"` : ''}>${esc(c)}</td>`,
      );
      return (
        `<tr data-point="${esc(row.pointId)}" class="${cls}" ` +
        `aria-selected="${selected}" ` +
        `tabindex="${row.pointId === focusable ? 0 : -1}">${cells.join('')}</tr>`
      );
    })
    .join('');
  return (
    '<table id="points-grid" class="points-grid" role="grid" ' +
    'aria-labelledby="points-title" ' +
    `aria-rowcount="${rows.length + 1}"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`
  );
}

function detailHtml(v: SessionView): string {
  const d = state.selected ? pointDetail(v, state.selected) : null;
  const commit = commitState(v, state.selected);
  const button =
    `<vscode-button id="commit" ${commit.enabled ? '' : 'disabled'} ` +
    `title="${esc(commit.reason ?? 'Write this pruned model, fairness.json and FAIRNESS.md beside the dense model')}">${esc(commit.label)}</vscode-button>`;
  const why = commit.reason ? `<p class="why-disabled" id="commit-why">${esc(commit.reason)}</p>` : '';
  if (!d) return `<h2>Selected point</h2><p class="empty">No point selected.</p>${button}${why}`;
  const p = d.point;
  const est = (e: { value: number; low: number; high: number } | null, f: (x: number) => string) =>
    e ? `${esc(f(e.value))} <span class="ci">[${esc(f(e.low))}, ${esc(f(e.high))}]</span>` : '–';
  return `<h2>${esc(pct(p.targetSparsity, 0))} sparsity · ${esc(p.loss)} <span class="badge ${v.verdicts[p.id]?.passed ? 'pass' : 'fail'}">${v.verdicts[p.id]?.passed ? 'PASS' : 'FAIL'}</span></h2>
<p class="meta">Accuracy ${est(p.evaluation.accuracy, (x) => pct(x))} (${esc(signedPts(p.comparison.accuracyChange.value))}); worst group ${esc(p.evaluation.worstGroup.group)} ${esc(pct(p.evaluation.worstGroup.accuracy.value))}; gap ${esc(pct(p.evaluation.largestGap.value))}; achieved sparsity ${esc(pct(p.achievedSparsity))}${flops?.[p.id] !== undefined ? `, FLOPs −${esc(pct(flops[p.id]))}` : ''}; ${p.size.nonZeroParameters.toLocaleString('en')} non-zero parameters.</p>
<table class="groups"><caption>Test accuracy by group, dense vs pruned</caption><thead><tr><th scope="col">group</th><th scope="col">n</th><th scope="col">dense</th><th scope="col">pruned [95% CI]</th><th scope="col">change</th><th scope="col">ψ [95% CI]</th><th scope="col">AUROC</th></tr></thead><tbody>
${d.groups.map((g) => '<tr><th scope="row"><span class="group-dot" ' + `data-colour="${esc(g.colour)}"></span>${esc(g.group)}</th><td>${g.n}${g.warning ? ` <span class="warn" title="${esc(g.warning)}">⚠</span>` : ''}</td><td>${g.dense ? esc(pct(g.dense.value)) : '–'}</td><td>${est(g.pruned, (x) => pct(x))}</td><td ` + `class="${g.change && g.change.value < -0.005 ? 'worse' : ''}">${g.change ? esc(signedPts(g.change.value)) : '–'}</td><td>${est(g.excessGap, (x) => signedPts(x))}</td><td>${g.auroc ? esc(g.auroc.value.toFixed(3)) : '–'}</td></tr>`).join('')}
</tbody></table>
<ul class="rules">${d.rules.map((r) => `<li class="${r.passed ? 'pass' : 'fail'}">${r.passed ? '✓' : '✗'} ${esc(r.message)}</li>`).join('')}</ul>
${button}${why}
<div id="gallery" class="gallery"></div>`;
}

function renderGallery(): void {
  const el = document.getElementById('gallery');
  if (!el || !view || !state.selected) return;
  const point = view.results.points.find((p) => p.id === state.selected);
  if (!point) return;
  const ex = point.comparison.exemplars;
  if (!exemplars || exemplars.pointId !== point.id) {
    el.innerHTML = ex.total
      ? '<p class="empty">Loading the exemplars…</p>'
      : '<p class="empty">Pruning changed no test prediction of this point.</p>';
    if (ex.total) vscode.postMessage({ type: 'exemplars', sessionDir: view.sessionDir, pointId: point.id });
    return;
  }
  const byGroup = ex.byGroup
    .map((g) => {
      const imgs = exemplars!.images.filter((i) => i.group === g.group);
      const items = imgs
        .map((i) => {
          const caption = `row ${i.row}: true ${i.label}, dense ${i.dense} → pruned ${i.pruned}`;
          return (
            `<figure class="exemplar ${i.pruned === i.label ? 'fixed' : i.dense === i.label ? 'broken' : ''}">${i.src ? `<img src="${esc(i.src)}" alt="${esc(caption)}" width="56" height="56">` : `<span class="no-image" title="${esc(i.problem ?? '')}">row ${i.row}</span>`}<figcaption>${esc(`${i.dense} → ${i.pruned}`)}<br><span ` +
            `class="ci">true ${esc(i.label)}</span></figcaption></figure>`
          );
        })
        .join('');
      return (
        '<section class="exemplar-group"><h4><span class="group-dot" ' +
        `data-colour="${esc(groupColour(view!, g.group))}"></span>${esc(g.group)}: ${g.count} ` +
        `changed (${esc(pct(g.rate))} of the ` +
        `group)${g.count > imgs.length ? `, ${imgs.length} shown` : ''}</h4><div ` +
        `class="exemplar-list">${items}</div></section>`
      );
    })
    .join('');
  el.innerHTML =
    '<h3>Pruning-identified exemplars</h3><p class="meta">Test ' +
    'samples whose predicted class pruning changed (dense ' +
    `→ pruned). ${esc(exemplars.note)}</p>${byGroup}`;
  el.querySelectorAll<HTMLElement>('.group-dot').forEach((d) => (d.style.backgroundColor = d.dataset.colour ?? ''));
}

function axisOptions(title: string, format: (x: number) => string) {
  const t = themeColours();
  return {
    type: 'linear' as const,
    title: { display: true, text: title, color: t.fg, font: { family: t.font } },
    ticks: {
      color: t.fg,
      font: { family: t.font },
      // A narrow range (one point, or points close together) gets ticks finer than the format's
      // whole percent: show as many decimals as the step needs, so no two ticks read the same.
      callback: (v: number | string, _i: number, all: { value: number }[]) => {
        const x = Number(v);
        const step = all.length > 1 ? Math.abs(all[1].value - all[0].value) : 0;
        const label = format(x);
        if (!(step > 0) || !label.endsWith('%')) return label;
        const decimals = Math.max(0, Math.min(3, Math.ceil(-Math.log10(step * 100) - 1e-9)));
        return decimals > 0 ? `${(x * 100).toFixed(decimals)}%` : label;
      },
    },
    grid: { color: t.grid },
    border: { color: t.grid },
  };
}

function yRange(
  series: Series[],
  refs: ReferenceLine[],
  metric: CurvesMetric,
): { suggestedMin?: number; suggestedMax?: number } {
  const lows = [...refs.map((r) => r.y), ...series.flatMap((s) => s.points.map((p) => p.low))].filter(Number.isFinite);
  const highs = [...refs.map((r) => r.y), ...series.flatMap((s) => s.points.map((p) => p.high))].filter(
    Number.isFinite,
  );
  return {
    ...(lows.length ? { suggestedMin: Math.min(...lows) } : {}),
    ...(metric === 'excessGap' ? (highs.length ? { suggestedMax: Math.max(...highs) } : {}) : { suggestedMax: 1 }),
  };
}

function drawMain(series: Series[], refs: ReferenceLine[]): void {
  const canvas = document.getElementById('main-chart') as HTMLCanvasElement;
  const t = themeColours();
  const width = t.highContrast ? 3 : 2;
  const config: ChartConfiguration<'line', Array<{ x: number; y: number }>> = {
    type: 'line',
    data: {
      datasets: series.map((s) => ({
        label: s.label,
        data: s.points.map((p) => ({ x: p.x, y: p.y })),
        borderColor: s.colour,
        backgroundColor: s.colour,
        borderDash: s.dash,
        borderWidth: width,
        pointStyle: s.pointStyle as 'circle',
        pointRadius: s.points.map((p) =>
          p.pointId === state.selected ? 7 : p.pointId === view?.recommendation?.pointId ? 6 : 4,
        ),
        // the recommended point wears a thick ring in the text colour (the legend keeps the series' own look)
        pointBorderWidth: s.points.map((p) => (p.pointId === view?.recommendation?.pointId ? 3 : 1)),
        pointBorderColor: s.points.map((p) => (p.pointId === view?.recommendation?.pointId ? t.fg : s.colour)),
        pointHoverRadius: 8,
        tension: 0,
      })),
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      normalized: true,
      interaction: { mode: 'nearest', intersect: true },
      scales: {
        x: { ...axisOptions(X_LABELS[state.xAxis], (x) => pct(x, 0)) },
        // The y range takes in the dense reference lines and the interval whiskers, not only the points.
        y: {
          ...axisOptions(METRIC_LABELS[state.metric], (x) => formatMetric(state.metric, x)),
          ...yRange(series, refs, state.metric),
        },
      },
      plugins: {
        legend: {
          position: 'bottom',
          labels: {
            color: t.fg,
            usePointStyle: true,
            font: { family: t.font },
            // each series in its own colour, whatever ring the recommended point wears
            generateLabels: (chart) =>
              Chart.defaults.plugins.legend.labels.generateLabels(chart).map((l) => ({
                ...l,
                strokeStyle: series[l.datasetIndex ?? 0]?.colour ?? l.strokeStyle,
                lineWidth: 1,
              })),
          },
        },
        tooltip: {
          callbacks: {
            title: () => '',
            label: (ctx) => {
              const s = series[ctx.datasetIndex];
              const p = s?.points[ctx.dataIndex];
              return s && p ? tooltipLines(s, p, state.metric, state.xAxis) : '';
            },
          },
        },
      },
      onClick: (_e, elements) => {
        const el = elements[0];
        const p = el && series[el.datasetIndex]?.points[el.index];
        if (p) select(p.pointId);
      },
    },
    plugins: [backgroundPlugin, referencePlugin, whiskerPlugin],
  };
  const chart = new Chart(canvas, config);
  whiskerData.set(chart, {
    whiskers: series.map((s) => s.points.map((p) => ({ low: p.low, high: p.high }))),
    colours: series.map((s) => s.colour),
  });
  referenceData.set(chart, refs);
  chart.update();
  charts.push(chart);
  // what the chart drew, for tests and tools: read back from the chart itself
  const drawn = chart.data.datasets.map((d, i) => ({
    key: series[i].key,
    group: series[i].group,
    loss: series[i].loss,
    label: d.label,
    points: (d.data as Array<{ x: number; y: number }>).map((p, j) => ({
      x: p.x,
      y: p.y,
      pointId: series[i].points[j].pointId,
    })),
  }));
  const fig = document.getElementById('main-figure')!;
  fig.dataset.series = JSON.stringify(drawn);
  fig.dataset.references = JSON.stringify(refs.map((r) => ({ group: r.group, y: r.y })));
  fig.dataset.yRange = JSON.stringify({ min: chart.scales.y.min, max: chart.scales.y.max });
}

function drawSummary(id: string, series: SummarySeries[], format: (x: number) => string): void {
  const canvas = document.getElementById(id) as HTMLCanvasElement;
  const t = themeColours();
  const chart = new Chart(canvas, {
    type: 'line',
    data: {
      datasets: series.map((s) => ({
        label: s.loss,
        data: s.points.map((p) => ({ x: p.x, y: p.y })),
        borderColor: t.fg,
        backgroundColor: t.fg,
        borderDash: s.dash,
        borderWidth: t.highContrast ? 3 : 1.75,
        pointStyle: s.pointStyle as 'circle',
        pointRadius: s.points.map((p) => (p.pointId === state.selected ? 6 : 3)),
        tension: 0,
      })),
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      parsing: false,
      scales: {
        x: axisOptions(state.xAxis === 'flops' ? 'FLOPs reduction' : 'sparsity', (x) => pct(x, 0)),
        y: axisOptions('', format),
      },
      plugins: {
        legend: {
          position: 'bottom',
          labels: { color: t.fg, usePointStyle: true, boxHeight: 6, font: { family: t.font } },
        },
        tooltip: {
          callbacks: {
            label: (ctx) => {
              const p = series[ctx.datasetIndex]?.points[ctx.dataIndex];
              return p
                ? `${series[ctx.datasetIndex].loss}: ${format(p.y)} ` +
                    `[${format(p.low)}, ${format(p.high)}]${p.group ? ` (${p.group})` : ''} ` +
                    `· ${p.pointId}`
                : '';
            },
          },
        },
      },
      onClick: (_e, elements) => {
        const el = elements[0];
        const p = el && series[el.datasetIndex]?.points[el.index];
        if (p) select(p.pointId);
      },
    },
    plugins: [backgroundPlugin, whiskerPlugin],
  });
  whiskerData.set(chart, {
    whiskers: series.map((s) => s.points.map((p) => ({ low: p.low, high: p.high }))),
    colours: series.map(() => t.fg),
  });
  chart.update();
  charts.push(chart);
}

// ---- interaction -------------------------------------------------------------------------------

function select(pointId: string): void {
  state = { ...state, selected: pointId };
  save();
  render();
  (document.querySelector(`#points-grid tr[data-point="${CSS.escape(pointId)}"]`) as HTMLElement | null)?.focus();
}

/** Clicks and keys on the points grid: ↑ ↓ Home End move the focus (and the tab stop) between rows. */
function wireGrid(): void {
  const grid = document.getElementById('points-grid');
  if (!grid) return;
  const rows = () => Array.from(grid.querySelectorAll<HTMLTableRowElement>('tbody tr[data-point]'));
  const rowOf = (e: Event) => (e.target as HTMLElement).closest?.('tr[data-point]') as HTMLTableRowElement | null;
  grid.addEventListener('click', (e) => {
    const row = rowOf(e);
    if (row?.dataset.point) select(row.dataset.point);
  });
  grid.addEventListener('keydown', (e) => {
    const row = rowOf(e);
    if (!row?.dataset.point) return;
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      select(row.dataset.point);
      return;
    }
    const all = rows();
    const at = all.indexOf(row);
    const to = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: all.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    const next = all[Math.max(0, Math.min(all.length - 1, to))];
    all.forEach((r) => (r.tabIndex = r === next ? 0 : -1));
    next.focus();
  });
}

function wire(): void {
  const dropdown = (id: string, apply: (value: string) => void) =>
    document.getElementById(id)?.addEventListener('change', (e) => {
      apply((e.target as HTMLElement & { value: string }).value);
      save();
      render();
    });
  dropdown('x-axis', (value) => (state = { ...state, xAxis: value as CurvesXAxis }));
  dropdown('metric', (value) => (state = { ...state, metric: value as CurvesMetric }));
  app.querySelectorAll<HTMLElement>('vscode-checkbox').forEach((box) =>
    box.addEventListener('change', () => {
      const checked = (box as unknown as { checked: boolean }).checked;
      const group = box.dataset.group;
      const loss = box.dataset.loss as LossName | undefined;
      const hidden =
        group !== undefined
          ? state.hiddenGroups.includes(group)
          : loss !== undefined && state.hiddenLosses.includes(loss);
      if (checked === hidden) {
        state = toggle(state, { group, loss });
        save();
        render();
        (
          app.querySelector(
            group !== undefined
              ? `vscode-checkbox[data-group="${CSS.escape(group)}"]`
              : `vscode-checkbox[data-loss="${CSS.escape(loss ?? '')}"]`,
          ) as HTMLElement | null
        )?.focus();
      }
    }),
  );
  document.getElementById('select-recommended')?.addEventListener('click', (e) => {
    const id = (e.currentTarget as HTMLElement).dataset.point;
    if (id) select(id);
  });
  wireGrid();
  document.getElementById('commit')?.addEventListener('click', () => {
    if (!view || !state.selected || !commitState(view, state.selected).enabled) return;
    vscode.postMessage({ type: 'commit', sessionDir: view.sessionDir, pointId: state.selected });
  });
  document.getElementById('export-png')?.addEventListener('click', () => {
    const main = charts[0];
    if (main && view)
      vscode.postMessage({
        type: 'exportPng',
        dataUrl: main.toBase64Image('image/png', 1),
        fileName: `fairness-curves-${view.results.sessionId}-${state.metric}.png`,
      });
  });
  document.getElementById('export-csv')?.addEventListener('click', () => {
    if (view)
      vscode.postMessage({
        type: 'exportCsv',
        text: tableCsv(tableRows(view, flops)),
        fileName: `fairness-points-${view.results.sessionId}.csv`,
      });
  });
}

window.addEventListener('message', (event: MessageEvent<HostToCurves>) => {
  const m = event.data;
  switch (m.type) {
    case 'session':
      if (view?.sessionDir !== m.view.sessionDir) {
        exemplars = null;
        if (state.sessionDir !== m.view.sessionDir) state = { ...state, sessionDir: m.view.sessionDir, selected: null };
      }
      // A session opens on its recommended point (the sparsest that passes the gate).
      if (!state.selected && m.view.recommendation?.pointId)
        state = { ...state, selected: m.view.recommendation.pointId };
      view = m.view;
      flops = m.flops;
      flopsNote = m.flopsNote;
      if (m.view.results.status !== 'running') progress = null;
      save();
      render();
      return;
    case 'empty':
      view = null;
      progress = { text: m.message, fraction: 0 };
      render();
      return;
    case 'progress': {
      progress = { text: m.text, fraction: m.fraction };
      const line = document.querySelector('.progress');
      if (view && view.sessionDir === m.sessionDir && line)
        line.innerHTML = `<vscode-progress-ring></vscode-progress-ring> ${esc(m.text)}`;
      else if (!view || view.sessionDir !== m.sessionDir) {
        view = null;
        render();
      }
      return;
    }
    case 'exemplars':
      if (view?.sessionDir === m.sessionDir) {
        exemplars = { pointId: m.pointId, images: m.images, note: m.note };
        renderGallery();
      }
      return;
  }
});

// theme switches change the body's class: redraw with the new colours
new MutationObserver(() => view && render()).observe(document.body, { attributes: true, attributeFilter: ['class'] });

vscode.postMessage({ type: 'ready', state });
