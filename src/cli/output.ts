/** What the command line prints: progress, the results table, the summary. */
import * as path from 'path';
import type { EngineEvent } from '../protocol/engine';
import type { SessionResults } from '../protocol/results';
import { kib, pct, pwWeightLine, seedLines, signedPts, summarySentences } from '../core/report';
import { backendSummary } from '../core/backend';
import { describeProgress } from '../ui/progress-text';

/** Progress on a terminal: one redrawn line; elsewhere (CI, pipes): a line every few seconds. */
export function progressPrinter(stream: NodeJS.WriteStream = process.stderr): (e: EngineEvent) => void {
  const tty = Boolean(stream.isTTY);
  let lastLine = 0;
  let drawn = false;
  const clear = () => {
    if (tty && drawn) stream.write('\r\x1b[K');
    drawn = false;
  };
  return (e) => {
    if (e.type === 'log') {
      clear();
      stream.write(`${e.level === 'warn' ? 'warning: ' : ''}${e.message}\n`);
    } else if (e.type === 'progress' && e.phase === 'finetune' && e.step && e.steps) {
      const left = e.secondsLeft !== undefined ? `, ~${Math.ceil(e.secondsLeft)} s left` : '';
      const parallel = e.running && e.running.length > 1;
      // Points running in parallel share one line: the bar is the whole sweep's; one point alone: its own.
      const frac = parallel ? describeProgress(e).fraction : e.step / e.steps;
      const bar = '█'.repeat(Math.round(frac * 20)).padEnd(20, '·');
      const text = parallel
        ? `points ${e.running!.join('+')}/${e.points} ${bar} ${pct(frac, 0)} of ` +
          `the sweep, ${Math.round(e.samplesPerSecond ?? 0)} samples/s each${left}`
        : `point ${e.point}/${e.points} ${pct(e.targetSparsity ?? 0, 0)} ${e.loss} ${bar} ` +
          `epoch ${e.epoch}/${e.epochs} ` +
          `loss ${e.trainLoss?.toFixed(4)} ${Math.round(e.samplesPerSecond ?? 0)} ` +
          `samples/s${left}`;
      if (tty) {
        stream.write(`\r\x1b[K${text}`);
        drawn = true;
      } else if (Date.now() - lastLine > 5000 || e.step === e.steps) {
        lastLine = Date.now();
        stream.write(`${text}\n`);
      }
    } else if (e.type === 'point') {
      clear();
      const p = e.point;
      stream.write(
        `done ${p.id}: accuracy ${pct(p.evaluation.accuracy.value)}, ` +
          `worst group ${p.evaluation.worstGroup.group} ${pct(p.evaluation.worstGroup.accuracy.value)} ` +
          `(${signedPts(p.comparison.worstGroupChange.value)}), ${p.training.seconds.toFixed(1)} s\n`,
      );
    } else if (e.type === 'started') {
      clear();
      stream.write(`backend: ${backendSummary(e.backend)}\n`);
    }
  };
}

function pad(cells: string[][]): string {
  const widths = cells[0].map((_, c) => Math.max(...cells.map((r) => r[c].length)));
  return cells
    .map((r) => r.map((s, c) => (c === 0 ? s.padEnd(widths[c]) : s.padStart(widths[c]))).join('  '))
    .join('\n');
}

export function resultsTable(r: SessionResults): string {
  const rows: string[][] = [
    ['model', 'sparsity', 'nonzero', 'gzip', 'accuracy', ...r.dense.groups.map((g) => g.group), 'worst group', 'gap'],
  ];
  rows.push([
    'dense',
    '0%',
    r.model.size.nonZeroParameters.toLocaleString('en'),
    kib(r.model.size.gzipBytes),
    pct(r.dense.accuracy.value),
    ...r.dense.groups.map((g) => pct(g.accuracy.value)),
    pct(r.dense.worstGroup.accuracy.value),
    pct(r.dense.largestGap.value),
  ]);
  for (const p of r.points) {
    rows.push([
      p.run && p.run > 1 ? `${p.loss} (run ${p.run})` : p.loss,
      pct(p.achievedSparsity),
      p.size.nonZeroParameters.toLocaleString('en'),
      kib(p.size.gzipBytes),
      pct(p.evaluation.accuracy.value),
      ...r.dense.groups.map((g) => {
        const e = p.evaluation.groups.find((x) => x.group === g.group);
        return e ? pct(e.accuracy.value) : '–';
      }),
      pct(p.evaluation.worstGroup.accuracy.value),
      pct(p.evaluation.largestGap.value),
    ]);
  }
  return pad(rows);
}

export function printResults(r: SessionResults, resultsPath: string, out: NodeJS.WriteStream = process.stdout): void {
  out.write(
    `\nTest-split accuracy by subgroup ` +
      `(${r.data.groups.map((g) => `${g.name}: ${g.counts.test}`).join(', ')} ` +
      `test samples)\n`,
  );
  out.write(`${resultsTable(r)}\n\n`);
  for (const s of summarySentences(r)) out.write(`${s}\n`);
  const seeds = seedLines(r);
  if (seeds.length) out.write(`\n${seeds.filter((l) => !l.startsWith('## ')).join('\n')}\n`);
  if (r.pwWeights) out.write(`\n${pwWeightLine(r.pwWeights)}\n`);
  out.write(`\nResults: ${resultsPath}\nReport:  ${path.join(path.dirname(resultsPath), 'report.md')}\n`);
  if (r.recommendation) out.write(`\n${r.recommendation.sentence}\n`);
}
