/**
 * Feature columns: numbers as they are, or the preprocessing a model was trained with
 * (test/unit/data-preprocessing.test.ts).
 */
import { UserError } from '../errors';
import { isMissing, parseNumber } from './csv';
import { ColumnTransform, outputFeatureNames, outputWidth } from './preprocessing';
import type { Preprocessing } from './preprocessing';
import type { Prepared } from './columns';
import { missingError, rowError } from './columns';
/**
 * A column of numbers with a few other texts in it (`?`, `unknown`, `1,5`) is a data error, not a
 * text column: one-hot encoding it would make every distinct number a category. "A few": at most a
 * tenth of the rows (and at least 1 of 2 rows is a number).
 */
export function refuseStrayTexts(p: Prepared, k: number): void {
  const col = p.table.columns[k];
  const texts = new Map<string, number>();
  let strays = 0;
  for (let r = 0; r < p.rows; r++) {
    const v = p.table.rows[r][k];
    if (!Number.isNaN(parseNumber(v))) continue;
    strays++;
    if (!texts.has(v)) texts.set(v, r);
  }
  if (strays > Math.max(1, Math.floor(p.rows / 10)) || strays * 2 > p.rows) return;
  const listed = [...texts].slice(0, 5).map(([v, r]) => `'${v}' (row ${r + 1})`);
  const first = texts.values().next().value as number;
  throw rowError(
    p,
    first,
    col,
    `the feature column '${col}' holds numbers except in ${strays} ` +
      `row${strays === 1 ? '' : 's'}: ${listed.join(', ')}${texts.size > 5 ? ', …' : ''}. ` +
      'A number column with stray texts would be one-hot encoded, ' +
      'every number a category.',
    'correct those values (write a missing value as an empty cell or NA, ' +
      'which is an error in a feature column), or drop the column with ' +
      '--ignore.',
  );
}

export function textFeatureError(p: Prepared, r: number, k: number, why: string): UserError {
  const col = p.table.columns[k];
  return rowError(
    p,
    r,
    col,
    `the feature column '${col}' has the text value '${p.table.rows[r][k]}'. ${why}`,
    `drop the column with --ignore ${col} (or choose ` +
      'the inputs with --features), or train the model ' +
      `with \`fairprune train\`, which encodes text columns.`,
  );
}

export function applyTransforms(p: Prepared, cols: ColumnTransform[], colIndex: number[], x: Float32Array): void {
  const width = outputWidth(cols);
  const unseen = new Map<string, { count: number; row: number; value: string }>();
  let offset = 0;
  cols.forEach((t, j) => {
    const k = colIndex[j];
    if (t.kind === 'standardize') {
      for (let r = 0; r < p.rows; r++) {
        const v = p.table.rows[r][k];
        const n = parseNumber(v);
        if (Number.isNaN(n)) {
          if (isMissing(v)) throw missingError(p, r, t.column, 'feature');
          throw textFeatureError(p, r, k, 'The model was trained with this column as a number.');
        }
        x[r * width + offset] = (n - t.mean) / t.std;
      }
      offset += 1;
    } else {
      const at = new Map<string, number>();
      t.categories.forEach((cat, i) => at.set(cat, i));
      for (let r = 0; r < p.rows; r++) {
        const v = p.table.rows[r][k];
        if (isMissing(v)) throw missingError(p, r, t.column, 'feature');
        const i = at.get(v);
        if (i === undefined) {
          const key = `${t.column}\u0000${v}`;
          const u = unseen.get(key);
          if (u) u.count++;
          else unseen.set(key, { count: 1, row: r + 1, value: v });
          continue; // all zeros
        }
        x[r * width + offset + i] = 1;
      }
      offset += t.categories.length;
    }
  });
  for (const [key, u] of unseen) {
    const column = key.split('\u0000')[0];
    p.warnings.push(
      `Column '${column}' has the value '${u.value}' (${u.count} rows, ` +
        `first at row ${u.row}) that training did not see: ` +
        `those rows get zeros for '${column}'.`,
    );
  }
}

/** The model's inputs through the preprocessing file it was trained with: its columns, in its order. */
export function preprocessedFeatures(
  p: Prepared,
  preprocessing: { path: string; value: Preprocessing },
  inputSize: number,
): { x: Float32Array; names: string[] } {
  const { spec } = p;
  const cols = preprocessing.value.columns!;
  const colIndex = cols.map((t) => {
    const k = p.table.columns.indexOf(t.column);
    if (k < 0) {
      throw new UserError(`the model was trained on column '${t.column}', which this CSV does not have.`, {
        file: spec.csvPath,
        field: t.column,
        fix:
          'add the column, or use the CSV the model was trained ' +
          `on (its preprocessing file is ${preprocessing.path}).`,
      });
    }
    if (k === p.labelCol || k === p.splitCol)
      throw new UserError(
        `the model was trained on column '${t.column}', ` +
          'which this run uses as ' +
          `the ${k === p.labelCol ? 'label' : 'split column'}.`,
        { file: spec.csvPath, field: t.column, fix: 'check --label and --split-column.' },
      );
    return k;
  });
  if (
    spec.features !== undefined &&
    (spec.features.length !== cols.length || spec.features.some((f, i) => f !== cols[i].column))
  ) {
    throw new UserError(
      `--features ${spec.features.join(',')} differs from ` +
        `the model's inputs (${cols.map((t) => t.column).join(',')}), ` +
        'which its preprocessing file fixes.',
      {
        file: preprocessing.path,
        field: 'features',
        fix: 'leave --features out.',
      },
    );
  }
  for (const name of spec.ignore ?? []) {
    if (cols.some((t) => t.column === name)) {
      throw new UserError(`--ignore names '${name}', which the model was trained on.`, {
        file: preprocessing.path,
        field: name,
        fix: `remove '${name}' from --ignore.`,
      });
    }
  }
  const width = outputWidth(cols);
  if (width !== inputSize) {
    throw new UserError(
      `the preprocessing file gives ${width} input values per sample, but the model takes ${inputSize}.`,
      {
        file: preprocessing.path,
        field: 'outputFeatures',
        fix: 'use the preprocessing file saved with this model.',
      },
    );
  }
  const x = new Float32Array(p.rows * width);
  applyTransforms(p, cols, colIndex, x);
  return { x, names: outputFeatureNames(cols) };
}

/** A model without preprocessing: the CSV values exactly as they are, every feature a number. */
export function rawFeatures(p: Prepared, inputSize: number): { x: Float32Array; names: string[] } {
  const { spec } = p;
  const featureCols = p.featureCols;
  const names = featureCols.map((k) => p.table.columns[k]);
  if (featureCols.length !== inputSize) {
    const text = featureCols
      .filter((k) => p.table.rows.some((row) => !isMissing(row[k]) && Number.isNaN(parseNumber(row[k]))))
      .map((k) => p.table.columns[k]);
    throw new UserError(
      `the model takes ${inputSize} input values per sample, ` +
        `but ${featureCols.length} feature columns were ` +
        `selected: ${names.join(', ') || '(none)'}` +
        (text.length ? ` (text columns among them: ${text.join(', ')})` : '') +
        '.',
      {
        file: spec.csvPath,
        field: 'features',
        fix:
          `choose exactly ${inputSize} columns, in the model's input order, ` +
          'with --features (or drop columns with --ignore).',
      },
    );
  }
  const x = new Float32Array(p.rows * inputSize);
  const f = featureCols.length;
  for (let r = 0; r < p.rows; r++) {
    const row = p.table.rows[r];
    for (let j = 0; j < f; j++) {
      const v = row[featureCols[j]];
      const n = parseNumber(v);
      if (Number.isNaN(n)) {
        if (isMissing(v)) throw missingError(p, r, names[j], 'feature');
        throw textFeatureError(
          p,
          r,
          featureCols[j],
          'A model without a preprocessing file gets the CSV values ' +
            'exactly as they are, so every feature must be a number.',
        );
      }
      x[r * f + j] = n;
    }
  }
  return { x, names };
}
