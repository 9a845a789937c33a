/**
 * Train / validation / test splits: from a split column, drawn (seeded, stratified by subgroup ×
 * label), or reused from an earlier session's assignment string.
 */
import { UserError } from '../errors';
import { Rng } from '../rng';
import type { SplitName } from '../../protocol/results';

export const SPLIT_NAMES: readonly SplitName[] = ['train', 'validation', 'test'];
/** Codes in `Dataset.split`. */
export const SPLIT_CODE: Record<SplitName, number> = { train: 0, validation: 1, test: 2 };
/** Characters of `SplitRecord.assignment`. */
export const SPLIT_CHAR = ['t', 'v', 'x'] as const;

export interface SplitFractions {
  train: number;
  validation: number;
  test: number;
}
export const DEFAULT_SPLIT_FRACTIONS: SplitFractions = { train: 0.7, validation: 0.1, test: 0.2 };

/** `train`, `validation`/`val`/`valid`, `test`, any case; undefined for anything else. */
export function parseSplitValue(value: string): SplitName | undefined {
  switch (value.trim().toLowerCase()) {
    case 'train':
      return 'train';
    case 'validation':
    case 'val':
    case 'valid':
      return 'validation';
    case 'test':
      return 'test';
    default:
      return undefined;
  }
}

export function validateFractions(f: SplitFractions): void {
  const ok = (x: number) => typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 1;
  if (
    !ok(f.train) ||
    !ok(f.validation) ||
    !ok(f.test) ||
    Math.abs(f.train + f.validation + f.test - 1) > 1e-9 ||
    f.train <= 0 ||
    f.test <= 0
  ) {
    throw new UserError(
      `split fractions train ${f.train}, validation ${f.validation}, ` +
        `test ${f.test} are not usable: each must be between 0 and 1, ` +
        'train and test above 0, and they must add up to 1.',
      { field: 'splitFractions', fix: 'give fractions such as 0.7, 0.1, 0.2.' },
    );
  }
}

/**
 * Splits `total` units over items in proportion to `weights`, never above `caps`, by largest
 * remainder (ties: lower index first). The result sums to min(total, sum of caps).
 */
export function apportion(total: number, weights: ArrayLike<number>, caps: ArrayLike<number>): number[] {
  const k = weights.length;
  let W = 0;
  for (let i = 0; i < k; i++) W += weights[i];
  const out = new Array<number>(k).fill(0);
  if (W <= 0 || total <= 0) return out;
  const exact = new Array<number>(k);
  let given = 0;
  for (let i = 0; i < k; i++) {
    exact[i] = (total * weights[i]) / W;
    out[i] = Math.min(Math.floor(exact[i] + 1e-9), caps[i]);
    given += out[i];
  }
  let left = total - given;
  while (left > 0) {
    const order: number[] = [];
    for (let i = 0; i < k; i++) if (out[i] < caps[i]) order.push(i);
    if (order.length === 0) break;
    order.sort((a, b) => exact[b] - out[b] - (exact[a] - out[a]) || a - b);
    for (const i of order) {
      if (left === 0) break;
      out[i]++;
      left--;
    }
  }
  return out;
}

function groupByStratum(strata: Int32Array, nStrata: number, keep?: (row: number) => boolean): number[][] {
  const members: number[][] = Array.from({ length: nStrata }, () => []);
  for (let r = 0; r < strata.length; r++) if (!keep || keep(r)) members[strata[r]].push(r);
  return members;
}

/**
 * Seeded split stratified by `strata` (subgroup × label per row): within each stratum, rows are
 * shuffled and the first go to test, the next to validation, the rest to train; per-stratum counts
 * are proportional to the stratum's size and add up to round(N × fraction) overall.
 */
export function stratifiedSplit(
  strata: Int32Array,
  nStrata: number,
  fractions: SplitFractions,
  seed: number,
): Uint8Array {
  const n = strata.length;
  const members = groupByStratum(strata, nStrata);
  const sizes = members.map((m) => m.length);
  const nTest = apportion(Math.round(n * fractions.test), sizes, sizes);
  const nVal = apportion(
    Math.round(n * fractions.validation),
    sizes,
    sizes.map((s, k) => s - nTest[k]),
  );
  const rng = new Rng(seed);
  const split = new Uint8Array(n); // 0 = train
  members.forEach((rows, k) => {
    rng.shuffle(rows);
    for (let i = 0; i < rows.length; i++) split[rows[i]] = i < nTest[k] ? 2 : i < nTest[k] + nVal[k] ? 1 : 0;
  });
  return split;
}

/**
 * Moves a seeded, stratified `fraction` of the train rows to validation (for a split column without
 * validation rows). Returns how many moved.
 */
export function drawValidationFromTrain(
  split: Uint8Array,
  strata: Int32Array,
  nStrata: number,
  fraction: number,
  seed: number,
): number {
  const members = groupByStratum(strata, nStrata, (r) => split[r] === 0);
  const sizes = members.map((m) => m.length);
  const nTrain = sizes.reduce((a, b) => a + b, 0);
  const take = apportion(Math.round(nTrain * fraction), sizes, sizes);
  const rng = new Rng(seed);
  let moved = 0;
  members.forEach((rows, k) => {
    rng.shuffle(rows);
    for (let i = 0; i < take[k]; i++) {
      split[rows[i]] = 1;
      moved++;
    }
  });
  return moved;
}

export function assignmentString(split: Uint8Array): string {
  let s = '';
  for (let i = 0; i < split.length; i++) s += SPLIT_CHAR[split[i]];
  return s;
}

/** Parses an earlier session's assignment string for a CSV of `rows` data rows. */
export function parseAssignment(assignment: string, rows: number, file: string): Uint8Array {
  if (assignment.length !== rows) {
    throw new UserError(
      `the split of the earlier session covers ${assignment.length} rows, but this CSV has ${rows} data rows.`,
      {
        file,
        field: 'reuseSplit',
        fix: 'reuse the split only of a session on this same CSV, or run without reusing it.',
      },
    );
  }
  const split = new Uint8Array(rows);
  for (let i = 0; i < rows; i++) {
    const c = assignment[i];
    const code = c === 't' ? 0 : c === 'v' ? 1 : c === 'x' ? 2 : -1;
    if (code < 0) {
      throw new UserError(`the split of the earlier session has '${c}' for row ${i + 1}; only t, v and x are valid.`, {
        file,
        field: 'reuseSplit',
        row: i + 1,
        fix: 'reuse the split of an intact results.json, or run without reusing it.',
      });
    }
    split[i] = code;
  }
  return split;
}

export function splitCounts(split: Uint8Array): Record<SplitName, number> {
  const c = { train: 0, validation: 0, test: 0 };
  for (let i = 0; i < split.length; i++) c[SPLIT_NAMES[split[i]]]++;
  return c;
}
