/**
 * Resampling for the metrics' intervals, shared by `evaluate` and `compare` (metrics.ts).
 *
 * - Stratified: each resample draws, with replacement, exactly n_g samples from within each group g
 *   (in group order, each draw `rng.int(n_g)` among the group's members in data order), so group
 *   sizes are fixed and every non-empty group appears in every resample.
 * - Paired: two models are scored on the same drawn indices (the same resampler feeds both), so the
 *   interval of a change reflects only the samples where they differ.
 * - Intervals: percentile (type 7), widened to contain the point estimate; NaN resamples (a
 *   statistic undefined in that resample) are skipped.
 */
import type { Estimate } from '../protocol/results';
import { Rng } from './rng';

/** Sample indices of each group, in data order. */
export function groupMembers(groupIds: Int32Array, G: number): Int32Array[] {
  const sizes = new Int32Array(G);
  for (let i = 0; i < groupIds.length; i++) sizes[groupIds[i]]++;
  const out = Array.from({ length: G }, (_, g) => new Int32Array(sizes[g]));
  const fill = new Int32Array(G);
  for (let i = 0; i < groupIds.length; i++) {
    const g = groupIds[i];
    out[g][fill[g]++] = i;
  }
  return out;
}

/** Draws stratified resamples, one per `next()`, from a seeded stream. */
export class StratifiedResampler {
  private readonly rng: Rng;
  /** The current resample: `drawn[g]` holds n_g sample indices drawn from group g. Reused by `next()`. */
  readonly drawn: Int32Array[];

  constructor(
    private readonly members: Int32Array[],
    seed: number,
  ) {
    this.rng = new Rng(seed);
    this.drawn = members.map((m) => new Int32Array(m.length));
  }

  /** Draws the next resample into `drawn` and returns it. */
  next(): Int32Array[] {
    const rng = this.rng;
    for (let g = 0; g < this.members.length; g++) {
      const m = this.members[g];
      const d = this.drawn[g];
      const ng = m.length;
      for (let j = 0; j < ng; j++) d[j] = m[rng.int(ng)];
    }
    return this.drawn;
  }
}

/**
 * Percentile interval of the resampled values (NaN entries = undefined in that resample, skipped),
 * widened to contain the point estimate. No usable resamples: a zero-width interval at the point.
 */
export function interval(value: number, boot: Float64Array, confidence: number): Estimate {
  let m = 0;
  const xs = new Float64Array(boot.length);
  for (let i = 0; i < boot.length; i++) if (!Number.isNaN(boot[i])) xs[m++] = boot[i];
  if (m === 0) return { value, low: value, high: value };
  const s = xs.subarray(0, m).sort();
  const alpha = (1 - confidence) / 2;
  const low = quantile(s, alpha);
  const high = quantile(s, 1 - alpha);
  return { value, low: Math.min(low, value), high: Math.max(high, value) };
}

/** `interval`, or null when the point estimate is undefined (NaN). */
export function intervalOrNull(value: number, boot: Float64Array, confidence: number): Estimate | null {
  return Number.isNaN(value) ? null : interval(value, boot, confidence);
}

/** Type-7 quantile (linear interpolation) of sorted values. */
export function quantile(sorted: Float64Array, p: number): number {
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  const a = sorted[lo];
  const b = sorted[hi];
  return a === b ? a : a + (h - lo) * (b - a);
}
