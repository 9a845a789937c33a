/**
 * Subgroups (one column or the intersection of several) and the split, stratified by group × label
 * (test/unit/data-groups.test.ts, data-splits.test.ts).
 */
import { UserError } from '../errors';
import type { SplitRecord } from '../../protocol/results';
import { isMissing, parseNumber } from './csv';
import {
  DEFAULT_SPLIT_FRACTIONS,
  SPLIT_CODE,
  SplitFractions,
  drawValidationFromTrain,
  parseAssignment,
  parseSplitValue,
  splitCounts,
  stratifiedSplit,
} from './splits';
import type { Prepared } from './columns';
import { missingError, rowError } from './columns';
import { compareText } from './labels';
export function compareValues(a: string, b: string): number {
  const x = parseNumber(a);
  const y = parseNumber(b);
  if (!Number.isNaN(x) && !Number.isNaN(y) && x !== y) return x - y;
  return compareText(a, b);
}

export function assignGroups(p: Prepared): { groupIds: Int32Array; tuples: string[][]; names: string[] } {
  const cols = p.groupCols;
  const names = cols.map((k) => p.table.columns[k]);
  const keyOf = new Map<string, number>();
  const tuples: string[][] = [];
  const raw = new Int32Array(p.rows);
  for (let r = 0; r < p.rows; r++) {
    const t = cols.map((k, j) => {
      const v = p.table.rows[r][k];
      if (isMissing(v)) throw missingError(p, r, names[j], 'subgroup');
      return v;
    });
    const key = JSON.stringify(t);
    let id = keyOf.get(key);
    if (id === undefined) {
      id = tuples.length;
      keyOf.set(key, id);
      tuples.push(t);
    }
    raw[r] = id;
  }
  const order = tuples.map((_, i) => i);
  order.sort((a, b) => {
    for (let j = 0; j < cols.length; j++) {
      const c = compareValues(tuples[a][j], tuples[b][j]);
      if (c !== 0) return c;
    }
    return 0;
  });
  const rank = new Int32Array(tuples.length);
  order.forEach((old, i) => (rank[old] = i));
  const groupIds = new Int32Array(p.rows);
  for (let r = 0; r < p.rows; r++) groupIds[r] = rank[raw[r]];
  const sorted = order.map((i) => tuples[i]);
  return { groupIds, tuples: sorted, names: sorted.map((t) => t.map((v, j) => `${names[j]}=${v}`).join(' & ')) };
}

export function assignSplit(
  p: Prepared,
  strata: Int32Array,
  nStrata: number,
): { split: Uint8Array; record: Omit<SplitRecord, 'counts' | 'assignment'> } {
  const fractions: SplitFractions = p.spec.splitFractions ?? DEFAULT_SPLIT_FRACTIONS;
  const column = p.splitCol >= 0 ? p.table.columns[p.splitCol] : undefined;
  let split: Uint8Array;
  let record: Omit<SplitRecord, 'counts' | 'assignment'>;
  if (p.spec.reuseSplit !== undefined) {
    split = parseAssignment(p.spec.reuseSplit, p.rows, p.file);
    record = column !== undefined ? { source: 'column', column } : { source: 'seeded' };
    p.warnings.push(`The split was reused from an earlier session (${p.rows} rows).`);
    if (column !== undefined) {
      for (let r = 0; r < p.rows; r++) {
        const s = parseSplitValue(p.table.rows[r][p.splitCol]);
        if ((s === 'test') !== (split[r] === 2)) {
          throw rowError(
            p,
            r,
            column,
            `the split column says '${p.table.rows[r][p.splitCol]}' but the reused ` +
              `split has this row in ${['train', 'validation', 'test'][split[r]]}.`,
            'reuse the split only of a session on this same CSV, or run without reusing it.',
          );
        }
      }
    }
  } else if (column !== undefined) {
    split = new Uint8Array(p.rows);
    let hasValidation = false;
    for (let r = 0; r < p.rows; r++) {
      const v = p.table.rows[r][p.splitCol];
      if (isMissing(v)) throw missingError(p, r, column, 'split');
      const s = parseSplitValue(v);
      if (s === undefined) {
        throw rowError(
          p,
          r,
          column,
          `the split column '${column}' has the value '${v}'; it must be train, validation (or val, valid) or test.`,
          `fix the value, or name another split column with --split-column.`,
        );
      }
      split[r] = SPLIT_CODE[s];
      if (s === 'validation') hasValidation = true;
    }
    record = { source: 'column', column };
    if (!hasValidation && fractions.validation > 0) {
      drawValidationFromTrain(
        split,
        strata,
        nStrata,
        fractions.validation / (fractions.train + fractions.validation),
        p.spec.seed,
      );
      record.validationDrawnFromTrain = true;
      record.seed = p.spec.seed;
      p.warnings.push(
        `The split column '${column}' has no validation rows: ` +
          `validation rows were drawn from its train rows (seed ${p.spec.seed}).`,
      );
    }
  } else {
    split = stratifiedSplit(strata, nStrata, fractions, p.spec.seed);
    record = { source: 'seeded', seed: p.spec.seed };
  }
  const counts = splitCounts(split);
  for (const s of ['train', 'test'] as const) {
    if (counts[s] === 0) {
      throw new UserError(`no row is in the ${s} split${column ? ` (column '${column}')` : ''}.`, {
        file: p.file,
        field: column ?? 'split',
        fix: column ? `mark some rows '${s}' in the split column.` : 'use a larger CSV or other split fractions.',
      });
    }
  }
  return { split, record };
}
