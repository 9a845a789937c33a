/**
 * The session's Markdown report: what a reviewer reads to decide which sparsity the model can
 * afford. Rounding happens here, never in results.json.
 */
import type {
  Estimate,
  Evaluation,
  PrunedPoint,
  PwWeightSummary,
  Recommendation,
  SessionResults,
  Spread,
} from '../protocol/results';
import { LOSS_LABELS } from '../protocol/results';
import { writeFileAtomic } from './atomic';
import {
  betweenGroupsEstimate,
  changeEstimate,
  fairnessDifferences,
  formatEstimate,
  groupEstimate,
  metricsOf,
  pct,
  signedPts,
} from '../shared/metric-table';
import { mdText } from '../shared/markdown';

// One formatting of percentages and point changes for the report, the side panel and the curves panel.
export { pct, signedPts } from '../shared/metric-table';
export const withInterval = (e: Estimate | null | undefined, f: (x: number) => string = (x) => pct(x)): string =>
  e ? `${f(e.value)} [${f(e.low)}, ${f(e.high)}]` : '–';
export const kib = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`;

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.map(mdText).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function denseTable(e: Evaluation): string {
  return table(
    ['group', 'test samples', 'accuracy [95% CI]', 'AUROC [95% CI]', 'note'],
    [
      ['**all**', String(e.n), withInterval(e.accuracy), withInterval(e.auroc, (x) => x.toFixed(3)), ''],
      ...e.groups.map((g) => [
        g.group,
        String(g.n),
        withInterval(g.accuracy),
        withInterval(g.auroc, (x) => x.toFixed(3)),
        g.warning ?? '',
      ]),
    ],
  );
}

/**
 * Binary tasks: each group's rates of the metric table (true-positive, false-positive, selection
 * rate) with intervals. Empty for multiclass tasks and for results files older than the table.
 */
export function groupRatesTable(e: Evaluation, task: SessionResults['model']['task']): string[] {
  const defs = metricsOf('rate', task).filter((m) => !m.schemaV1);
  if (!defs.length || !e.groups.some((g) => g.rates)) return [];
  const rows = e.groups.map((g) => [g.group, String(g.n), ...defs.map((m) => formatEstimate(m, groupEstimate(m, g)))]);
  return [table(['group', 'test samples', ...defs.map((m) => `${m.label} [95% CI]`)], rows), ''];
}

/** Accuracy per group × class (the fraction of each class's samples predicted as that class). */
export function classAccuracyTable(e: Evaluation): string[] {
  const classes = e.classAccuracy?.map((c) => c.class);
  if (!classes?.length) return [];
  const cell = (c: { n: number; accuracy: Estimate | null } | undefined) =>
    c?.accuracy ? `${pct(c.accuracy.value)} (n ${c.n})` : `– (n ${c?.n ?? 0})`;
  const rows = [
    ['**all**', ...classes.map((k) => cell(e.classAccuracy?.find((c) => c.class === k)))],
    ...e.groups.map((g) => [g.group, ...classes.map((k) => cell(g.classAccuracy?.find((c) => c.class === k)))]),
  ];
  return [table(['group', ...classes.map((k) => `class ${k}`)], rows), ''];
}

/**
 * Binary tasks: Fairlearn's between-group differences of the dense model and of each pruned point,
 * with the paired change against dense. Empty for multiclass tasks and older results files.
 */
export function fairnessDifferencesTable(r: SessionResults): string[] {
  const defs = fairnessDifferences(r.model.task);
  if (!defs.length || !r.dense?.fairness) return [];
  const rows = [
    ['dense', ...defs.map((m) => formatEstimate(m, betweenGroupsEstimate(m, r.dense)))],
    ...r.points.map((p) => [
      p.id,
      ...defs.map((m) => {
        const e = betweenGroupsEstimate(m, p.evaluation);
        const c = changeEstimate(m, p.comparison);
        return e ? `${formatEstimate(m, e)}${c ? `; change ${formatEstimate(m, c, true)}` : ''}` : '–';
      }),
    ]),
  ];
  return [
    '## Fairness differences between groups',
    '',
    `As Fairlearn defines them: ${defs.map((m) => `${m.label}, the ${m.description}`).join('; ')}. ` +
      ('0 means every group alike; lower is fairer. ' +
        "A point's change is pruned − dense, on the same resampled test rows."),
    '',
    table(['model', ...defs.map((m) => `${m.label} [95% CI]`)], rows),
    '',
  ];
}

/** FLOPs of the model as it runs (the shrunk one for filter methods), with the change against dense. */
function flopsCell(p: PrunedPoint): string {
  if (!p.cost) return '–';
  const { flopsBefore: b, flopsAfter: a } = p.cost;
  const f = (x: number) =>
    x >= 1e9
      ? `${(x / 1e9).toFixed(2)} G`
      : x >= 1e6
        ? `${(x / 1e6).toFixed(2)} M`
        : x >= 1e3
          ? `${(x / 1e3).toFixed(1)} k`
          : String(x);
  return b > 0 && a !== b ? `${f(a)} (−${pct(1 - a / b)})` : f(a);
}

function pointRow(p: PrunedPoint, dense: Evaluation): string[] {
  const worstPsi = [...p.comparison.groups].sort((a, b) => b.excessGap.value - a.excessGap.value)[0];
  return [
    pct(p.targetSparsity, 0),
    p.loss,
    pct(p.achievedSparsity),
    `${p.size.nonZeroParameters.toLocaleString('en')}`,
    kib(p.size.gzipBytes),
    flopsCell(p),
    p.latency ? `${p.latency.prunedMs.toFixed(1)} / ${p.latency.denseMs.toFixed(1)} ms` : '–',
    `${pct(p.evaluation.accuracy.value)} (${signedPts(p.evaluation.accuracy.value - dense.accuracy.value)})`,
    `${pct(p.evaluation.worstGroup.accuracy.value)} ${p.evaluation.worstGroup.group} ` +
      `(${signedPts(p.comparison.worstGroupChange.value)})`,
    pct(p.evaluation.largestGap.value),
    worstPsi ? `${worstPsi.group}: ${signedPts(worstPsi.excessGap.value)}` : '–',
  ];
}

/** Mean ± sd [min, max] across runs, in percent. */
export function spreadText(s: Spread, runs: number): string {
  return runs > 1 ? `${pct(s.mean)} ± ${(s.sd * 100).toFixed(1)} [${pct(s.min)}, ${pct(s.max)}]` : pct(s.mean);
}

/** Each sparsity × loss across its runs, and each loss against ce: what a user needs to say "it helped". */
export function seedLines(r: SessionResults): string[] {
  const sums = r.summaries ?? [];
  if (!sums.length || !sums.some((s) => s.againstCe || s.runs > 1)) return [];
  const runs = Math.max(...sums.map((s) => s.runs));
  const rows = sums.map((s) => [
    pct(s.sparsity, 0),
    s.loss,
    String(s.runs),
    spreadText(s.worstGroupAccuracy, s.runs),
    spreadText(s.largestGap, s.runs),
    s.againstCe ? withInterval(s.againstCe.worstGroupAccuracy, (x) => signedPts(x)) : '–',
    s.againstCe ? withInterval(s.againstCe.largestGap, (x) => signedPts(x)) : '–',
  ]);
  return [
    `## Across ${runs > 1 ? `${runs} seeds` : 'one seed'}, and each loss against ce`,
    '',
    table(
      [
        'sparsity',
        'loss',
        'runs',
        'worst group (mean ± sd [min, max])',
        'gap',
        'worst group − ce [95% CI]',
        'gap − ce [95% CI]',
      ],
      rows,
    ),
    '',
    `Against ce: the loss's value minus ce's at the same sparsity, ` +
      'mean over paired runs; the interval is ' +
      `over ${runs > 1 ? 'seeds × ' : ''}a paired bootstrap of the test ` +
      'rows within each group. An interval that contains 0 means this data ' +
      'cannot tell the loss from ce.',
    '',
  ];
}

/** The gate's policy in words. */
export function policyText(p: Recommendation['policy']): string {
  return (
    'worst-group accuracy may drop at ' +
    `most ${signedPts(p.maxWorstGroupDrop).slice(1)}, ` +
    'the largest gap may grow at most ' +
    `${signedPts(p.maxGapIncrease).slice(1)}${p.minAccuracy > 0 ? `, accuracy at least ${pct(p.minAccuracy)}` : ''}; ` +
    `judged on ${p.judgeOn === 'interval' ? 'the pessimistic end of each 95% interval' : 'point estimates'}`
  );
}

/** Each group's mean PW weight on the training rows: whether PW weighs the groups differently at all. */
export function pwWeightLine(w: PwWeightSummary): string {
  const present = w.groups.filter((g) => g.n > 0);
  const groups = present.map((g) => `${g.group} ${g.meanWeight.toFixed(3)}`).join(', ');
  const means = present.map((g) => g.meanWeight);
  const ratio = means.length > 1 ? Math.max(...means) / Math.min(...means) : 1;
  return (
    `PW weights (m = ${w.minWeight}, γ = ${w.gamma}), ` +
    `mean on the training rows: ${w.mean.toFixed(3)} overall; ${groups}. ` +
    (`A sample the dense model was sure of weighs ${w.minWeight}; ` +
      `the most-weighted group's mean is ${ratio.toFixed(2)}× the ` +
      `least-weighted's `) +
    `(1.00× would mean PW weighs the groups alike).`
  );
}

/** One plain sentence per sparsity: what each loss did to the worst-off group. */
export function summarySentences(r: SessionResults): string[] {
  const out: string[] = [];
  for (const s of r.config.sparsities) {
    const pts = r.points.filter((p) => p.targetSparsity === s && (!p.run || p.run === 1));
    if (!pts.length) continue;
    const parts = pts.map(
      (p) =>
        `${p.loss} keeps worst-group accuracy ` +
        `at ${pct(p.evaluation.worstGroup.accuracy.value)} ` +
        `(${p.evaluation.worstGroup.group}, ${signedPts(p.comparison.worstGroupChange.value)} ` +
        `against dense) with a ${pct(p.evaluation.largestGap.value)} gap`,
    );
    out.push(`At ${pct(s, 0)} sparsity, ${parts.join('; ')}.`);
  }
  return out;
}

export function renderReport(r: SessionResults): string {
  const dense = r.dense;
  const lines: string[] = [];
  lines.push(`# Fair Prune session ${r.sessionId}`, '');
  const finished = r.finishedAt ? `, finished ${r.finishedAt}` : '';
  lines.push(`Status: **${r.status}**${r.error ? ` — ${r.error}` : ''}. Started ${r.createdAt}${finished}.`, '');
  if (r.recommendation)
    lines.push(
      `**${mdText(r.recommendation.sentence)}**`,
      '',
      `(Fairness gate: ${policyText(r.recommendation.policy)}.)`,
      '',
    );
  lines.push(...settingsLines(r), '');
  if (r.pwWeights) lines.push(mdText(pwWeightLine(r.pwWeights)), '');
  if (r.data.warnings.length) {
    lines.push('## Warnings', '', ...r.data.warnings.map((w) => `- ${w}`), '');
  }
  if (dense) lines.push(...denseSection(dense, r.model.task));
  lines.push(...fairnessDifferencesTable(r));
  if (r.points.length && dense) {
    lines.push('## Pruned models', '', ...summarySentences(r).map((s) => `- ${s}`), '');
    lines.push(
      table(
        [
          'sparsity',
          'loss',
          'zeros',
          'non-zero params',
          'gzip',
          'FLOPs/sample',
          'latency pruned / dense',
          'accuracy (Δ)',
          'worst group (Δ)',
          'gap',
          'largest ψ',
        ],
        r.points.map((p) => pointRow(p, dense)),
      ),
      '',
    );
    lines.push(...seedLines(r));
    lines.push(...costLines(r), '');
    lines.push(
      'ψ is the excess accuracy gap: how much more a group lost than the model as a whole ' +
        '(positive = the group pays more).',
      '',
    );
    lines.push('## Per group', '');
    for (const p of r.points) lines.push(...pointGroupsSection(p, dense));
  }
  return lines.join('\n');
}

/** What the session ran on and how: model, data, inputs, split, subgroups, pruning, engine, intervals. */
function settingsLines(r: SessionResults): string[] {
  const { model, data, config: c } = r;
  const size = model.size;
  const classes = data.label.classes.map((cl, i) => `${i} = ${cl}`).join(', ');
  const inputs = data.imageColumn
    ? `images from column \`${data.imageColumn}\`, pixels ÷ ${data.pixelScale}`
    : `features ${(data.features ?? []).map((f) => `\`${f}\``).join(', ')}`;
  const preprocessing = data.preprocessing
    ? `; preprocessing from \`${data.preprocessing}\``
    : '; values as in the CSV';
  const split = data.split;
  const splitSource =
    split.source === 'column'
      ? `from column \`${split.column}\``
      : `seeded (seed ${split.seed}), stratified by subgroup × label`;
  const drawn = split.validationDrawnFromTrain ? ', validation drawn from train' : '';
  const groups = data.groups.map((g) => `${g.name} (test ${g.counts.test})`).join(', ');
  const target = c.target ? ` (target: ${c.target.metric}, ${c.target.scope})` : '';
  const patience = c.patience ? `, early stopping after ${c.patience}` : '';
  const losses = c.losses.map((l) => `${l} (${LOSS_LABELS[l]})`).join(', ');
  const e = r.engine;
  return [
    `- Model: \`${model.path}\` (${model.task}, input [${model.inputShape.join(', ')}], ` +
      (`${size.parameters.toLocaleString('en')} parameters, ` +
        `weights ${kib(size.weightBytes)}, gzip ${kib(size.gzipBytes)})`),
    `- Data: \`${data.path}\` (${data.rows} rows); ` +
      `label \`${data.label.column}\`: ${classes} (${data.label.order} order)`,
    `- Inputs: ${inputs}${preprocessing}`,
    `- Split ${splitSource}${drawn}: ` +
      `train ${split.counts.train}, validation ${split.counts.validation}, test ${split.counts.test}`,
    `- Subgroups by ${data.groupColumns.map((col) => `\`${col}\``).join(' × ')}: ${groups}`,
    `- Pruning: ${c.method}, ${c.schedule?.name ?? 'one-shot'}${target}, ` +
      `sparsities ${c.sparsities.map((x) => pct(x, 0)).join(', ')}; ` +
      (`fine-tuning ${c.epochs} epoch(s), batch ${c.batchSize}, ` +
        `Adam lr ${c.learningRate} with cosine decay${patience}; `) +
      `losses ${losses}; PW m = ${c.pw.minWeight}, γ = ${c.pw.gamma}`,
    `- Engine ${e.version} on ${e.backend.name} (tfjs ${e.backend.tfjsVersion}), Node ${e.node}, ${e.platform}`,
    `- Intervals: seeded bootstrap, ${c.bootstrap.resamples} resamples within each group, ` +
      `${pct(c.bootstrap.confidence, 0)}; all numbers on the **test** split.`,
  ];
}

/** The dense model: its table, worst group and gap, rates and per-class accuracy by group. */
function denseSection(dense: Evaluation, task: SessionResults['model']['task']): string[] {
  const lines = ['## Dense model', '', denseTable(dense), ''];
  lines.push(
    `Worst group: ${dense.worstGroup.group} at ${withInterval(dense.worstGroup.accuracy)}; ` +
      `largest gap between groups ${withInterval(dense.largestGap)}.`,
    '',
  );
  lines.push(...groupRatesTable(dense, task));
  const byClass = classAccuracyTable(dense);
  if (byClass.length) {
    lines.push(
      'Accuracy by group and class (of the samples of each class, the fraction predicted as it):',
      '',
      ...byClass,
    );
  }
  return lines;
}

/** One pruned point, group by group: accuracy before and after, its change, ψ and changed predictions. */
function pointGroupsSection(p: PrunedPoint, dense: Evaluation): string[] {
  return [
    `### ${pct(p.targetSparsity, 0)} sparsity, ${p.loss} — \`${p.modelDir}\``,
    '',
    table(
      ['group', 'dense', 'pruned', 'change [95% CI]', 'ψ [95% CI]', 'predictions changed'],
      p.comparison.groups.map((g) => {
        const d = dense.groups.find((x) => x.group === g.group);
        const e = p.evaluation.groups.find((x) => x.group === g.group);
        const ex = p.comparison.exemplars.byGroup.find((x) => x.group === g.group);
        return [
          g.group,
          d ? pct(d.accuracy.value) : '–',
          e ? pct(e.accuracy.value) : '–',
          withInterval(g.accuracyChange, (x) => signedPts(x)),
          withInterval(g.excessGap, (x) => signedPts(x)),
          ex ? `${ex.count} (${pct(ex.rate)})` : '–',
        ];
      }),
    ),
    '',
  ];
}

/** Parameters/FLOPs before and after, the shrunk model, and the plain latency sentence, per point. */
function costLines(r: SessionResults): string[] {
  const out: string[] = [];
  if (r.model.flops !== undefined)
    out.push(
      'FLOPs are counted per sample by the rules in ' +
        'docs/structured-pruning.md; the dense model ' +
        `needs ${r.model.flops.toLocaleString('en')}.`,
      '',
    );
  for (const p of r.points) {
    const bits: string[] = [];
    if (p.cost)
      bits.push(
        `parameters ${p.cost.parametersBefore.toLocaleString('en')} ` +
          `→ ${p.cost.parametersAfter.toLocaleString('en')}, ` +
          `FLOPs ${p.cost.flopsBefore.toLocaleString('en')} ` +
          `→ ${p.cost.flopsAfter.toLocaleString('en')}`,
      );
    const st = p.structure;
    if (st) {
      bits.push(
        st.modelDir
          ? `shrunk model \`${st.modelDir}\` (${kib(st.size?.weightBytes ?? 0)}, ` +
              `gzip ${kib(st.size?.gzipBytes ?? 0)}; outputs ` +
              `within ${(st.maxOutputDifference ?? 0).toExponential(1)} of the ` +
              'masked model)'
          : 'no filter could be removed physically',
      );
      bits.push(`${st.target.metric} reduced ${pct(st.reached)} (${st.target.scope})`);
      const kept = st.layers.map(
        (l) => `${l.layer} ${l.kept}/${l.channels}${l.removed || l.kept === l.channels ? '' : ' (masked)'}`,
      );
      bits.push(`filters kept: ${kept.join(', ')}`);
      if (st.skipped.length) bits.push(`left alone: ${st.skipped.join(', ')}`);
    }
    if (p.latency) bits.push(p.latency.sentence);
    const schedule = p.schedule ? ` (${p.schedule})` : '';
    const notes = st?.notes.length ? ` Notes: ${st.notes.join(' ')}` : '';
    if (bits.length) out.push(`- ${p.id}${schedule}: ${bits.join('; ')}${notes}`);
  }
  if (r.sensitivity) {
    const sv = r.sensitivity;
    out.push(
      '',
      `Sensitivity scan on ${sv.split} rows (dense: ` +
        `accuracy ${pct(sv.dense.accuracy)}, worst ` +
        `group ${pct(sv.dense.worstGroupAccuracy)}):`,
      '',
    );
    out.push(
      table(
        ['layer', 'level', 'accuracy', 'worst group', 'allocated'],
        sv.rows.map((x) => [
          x.layer,
          pct(x.level, 0),
          pct(x.accuracy),
          pct(x.worstGroupAccuracy),
          sv.allocation ? pct(sv.allocation[x.layer] ?? 0, 0) : '–',
        ]),
      ),
    );
  }
  return out;
}

export function writeReport(file: string, r: SessionResults): void {
  writeFileAtomic(file, renderReport(r));
}
