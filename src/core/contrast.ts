/**
 * Fine-tuning runs across seeds, and the paired contrast of every loss against cross-entropy: the
 * number behind "did PW (or a group-aware loss) help here?".
 *
 * With `--seeds N`, every sparsity × loss is fine-tuned N times from the same pruned network. For each
 * sparsity × loss the session records the mean and spread across runs of accuracy, worst-group accuracy
 * and the largest gap; and for every loss but `ce`, the difference against `ce` at the same sparsity in
 * worst-group accuracy and in the gap, with a percentile interval over seeds × a paired, stratified
 * bootstrap of the test rows: each resample draws one run index r (the same for both losses: run r of
 * each) and one resample of the test rows within each group (the same rows for both losses), and computes
 * the difference there. The point estimate is the mean over runs of the difference on all test rows.
 *
 * Pure code: it takes each run's right/wrong per test row.
 */
import type { Estimate, LossName, PointSummary, PrunedPoint, Spread } from '../protocol/results';
import type { BootstrapOptions } from './metrics';
import { interval } from './metrics';
import { Rng } from './rng';

/** Mean, sample standard deviation (0 for one run), least and largest of the runs' values. */
export function spread(values: readonly number[]): Spread {
  const n = values.length;
  const mean = values.reduce((a, v) => a + v, 0) / n;
  const sd = n > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, sd, min: Math.min(...values), max: Math.max(...values) };
}

/** Worst-group accuracy and largest gap (max − min over non-empty groups) of one run on (resampled) rows. */
function worstAndGap(
  correct: Uint8Array,
  groupIds: ArrayLike<number>,
  G: number,
  rows: ArrayLike<number> | null,
): [number, number] {
  const right = new Float64Array(G);
  const n = new Float64Array(G);
  const count = rows ? rows.length : correct.length;
  for (let k = 0; k < count; k++) {
    const i = rows ? rows[k] : k;
    right[groupIds[i]] += correct[i];
    n[groupIds[i]]++;
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (let g = 0; g < G; g++) {
    if (!n[g]) continue;
    const a = right[g] / n[g];
    lo = Math.min(lo, a);
    hi = Math.max(hi, a);
  }
  return [lo, hi - lo];
}

/**
 * Paired contrast of `other` against `base`: per run r, (worst-group accuracy, gap) of other run r minus
 * base run r. `base[r]` and `other[r]` hold 1 / 0 per test row (right / wrong). Runs are paired by index;
 * when the two losses have different numbers of runs, the first min(N_base, N_other) are used.
 */
export function pairedContrast(
  base: readonly Uint8Array[],
  other: readonly Uint8Array[],
  groupIds: ArrayLike<number>,
  groupCount: number,
  opts: BootstrapOptions,
): { worstGroupAccuracy: Estimate; largestGap: Estimate; runs: number } {
  const runs = Math.min(base.length, other.length);
  if (runs === 0) throw new Error('pairedContrast: no runs to compare');
  const members: number[][] = Array.from({ length: groupCount }, () => []);
  for (let i = 0; i < base[0].length; i++) members[groupIds[i]].push(i);
  const diff = (r: number, rows: ArrayLike<number> | null): [number, number] => {
    const [wb, gb] = worstAndGap(base[r], groupIds, groupCount, rows);
    const [wo, go] = worstAndGap(other[r], groupIds, groupCount, rows);
    return [wo - wb, go - gb];
  };
  let worst = 0;
  let gap = 0;
  for (let r = 0; r < runs; r++) {
    const [w, g] = diff(r, null);
    worst += w / runs;
    gap += g / runs;
  }
  const B = opts.resamples;
  const worstBoot = new Float64Array(B);
  const gapBoot = new Float64Array(B);
  const rng = new Rng(opts.seed);
  const rows = new Int32Array(base[0].length);
  for (let b = 0; b < B; b++) {
    const r = runs > 1 ? rng.int(runs) : 0;
    let k = 0;
    for (const m of members) for (let j = 0; j < m.length; j++) rows[k++] = m[rng.int(m.length)];
    [worstBoot[b], gapBoot[b]] = diff(r, rows);
  }
  return {
    worstGroupAccuracy: interval(worst, worstBoot, opts.confidence),
    largestGap: interval(gap, gapBoot, opts.confidence),
    runs,
  };
}

/**
 * One summary per sparsity × loss over its runs, with the paired contrast against `ce` when the session
 * has `ce` points at that sparsity. `correctOf(id)` gives a point's right/wrong per test row (undefined
 * when not known, e.g. a point read back from an older results file: then there is no contrast).
 */
export function summarizeRuns(
  points: readonly PrunedPoint[],
  correctOf: (pointId: string) => Uint8Array | undefined,
  groupIds: ArrayLike<number>,
  groupCount: number,
  opts: BootstrapOptions,
): PointSummary[] {
  const key = (p: PrunedPoint) => `${p.targetSparsity}|${p.loss}`;
  const byKey = new Map<string, PrunedPoint[]>();
  for (const p of points) byKey.set(key(p), [...(byKey.get(key(p)) ?? []), p]);
  const out: PointSummary[] = [];
  for (const runs of byKey.values()) {
    runs.sort((a, b) => (a.run ?? 1) - (b.run ?? 1));
    const first = runs[0];
    const summary: PointSummary = {
      sparsity: first.targetSparsity,
      loss: first.loss,
      runs: runs.length,
      pointIds: runs.map((p) => p.id),
      accuracy: spread(runs.map((p) => p.evaluation.accuracy.value)),
      worstGroupAccuracy: spread(runs.map((p) => p.evaluation.worstGroup.accuracy.value)),
      largestGap: spread(runs.map((p) => p.evaluation.largestGap.value)),
    };
    const ce = byKey.get(`${first.targetSparsity}|${'ce' satisfies LossName}`);
    if (first.loss !== 'ce' && ce) {
      const base = [...ce].sort((a, b) => (a.run ?? 1) - (b.run ?? 1)).map((p) => correctOf(p.id));
      const other = runs.map((p) => correctOf(p.id));
      if (base.every((c) => c) && other.every((c) => c)) {
        const c = pairedContrast(base as Uint8Array[], other as Uint8Array[], groupIds, groupCount, opts);
        summary.againstCe = c;
      }
    }
    out.push(summary);
  }
  return out;
}
