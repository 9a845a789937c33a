/** The label column to class indices, in a stated class order (test/unit/data-labels.test.ts). */
import { UserError } from '../errors';
import type { LabelMapping } from '../../protocol/results';
import { isMissing, parseNumber } from './csv';
import type { Prepared } from './columns';
import { missingError, rowError } from './columns';
/** Canonical form of a label value: numbers by value (`1.0` is `1`), text as it is. */
export function labelKey(v: string): string {
  const n = parseNumber(v);
  return Number.isNaN(n) ? v : String(n);
}

export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

type ClassList = { classes: string[]; order: LabelMapping['order'] };

/**
 * Decides the label mapping and maps every row. `numClasses` is the model's (null when training:
 * decided by the data). `fixed` is the mapping a preprocessing file saved.
 */
export function mapLabels(
  p: Prepared,
  numClasses: number | null,
  fixed: LabelMapping | undefined,
): { mapping: LabelMapping; labels: Int32Array } {
  const column = p.table.columns[p.labelCol];
  const values = labelValues(p, column);
  const given = p.spec.classes;
  const { classes, order } = fixed
    ? savedClasses(p, column, fixed, given)
    : given
      ? givenClasses(p, given)
      : classesFromData(p, column, values, numClasses);
  if (numClasses !== null && classes.length !== numClasses) {
    const outputs = numClasses === 2 ? 'one sigmoid output or two outputs' : `${numClasses} outputs`;
    const what = order === 'given' ? '--classes names' : 'the label mapping has';
    throw new UserError(`${what} ${classes.length} classes, but the model has ${numClasses} (${outputs}).`, {
      file: p.file,
      field: order === 'given' ? 'classes' : column,
      fix: `name exactly ${numClasses} classes, in the order of the model's outputs.`,
    });
  }
  return { mapping: { column, classes, order }, labels: classIndices(p, column, values, { classes, order }) };
}

/** Every row's label, as written; a missing one is an error naming its row. */
function labelValues(p: Prepared, column: string): string[] {
  const values: string[] = new Array(p.rows);
  for (let r = 0; r < p.rows; r++) {
    const v = p.table.rows[r][p.labelCol];
    if (isMissing(v)) throw missingError(p, r, column, 'label');
    values[r] = v;
  }
  return values;
}

/** The classes of the preprocessing file beside the model; `--classes`, if given, must agree. */
function savedClasses(p: Prepared, column: string, fixed: LabelMapping, given: string[] | undefined): ClassList {
  if (
    given &&
    (given.length !== fixed.classes.length || given.some((c, i) => labelKey(c) !== labelKey(fixed.classes[i])))
  ) {
    throw new UserError(
      `--classes ${given.join(',')} differs from the classes the model was trained with ` +
        `(${fixed.classes.join(',')}).`,
      {
        file: p.file,
        field: 'classes',
        fix: 'leave --classes out: the preprocessing file beside the model fixes the class order.',
      },
    );
  }
  if (fixed.column !== column)
    p.warnings.push(`The model was trained with label column '${fixed.column}'; this run reads '${column}'.`);
  return { classes: [...fixed.classes], order: fixed.order };
}

/** The classes `--classes` names, in the order of the model's outputs. */
function givenClasses(p: Prepared, given: string[]): ClassList {
  if (given.length < 2)
    throw new UserError(`--classes names ${given.length} class; a classifier needs at least 2.`, {
      file: p.file,
      field: 'classes',
      fix: 'name every class, in the order of the model’s outputs.',
    });
  const keys = given.map(labelKey);
  if (new Set(keys).size !== keys.length)
    throw new UserError('--classes names the same class twice.', {
      file: p.file,
      field: 'classes',
      fix: 'name each class once.',
    });
  return { classes: [...given], order: 'given' };
}

/** Classes read from the data: integer labels are output indices, other values are sorted. */
function classesFromData(p: Prepared, column: string, values: string[], numClasses: number | null): ClassList {
  const distinct = new Map<string, number>(); // key → first row
  let allInts = true;
  for (let r = 0; r < p.rows; r++) {
    const key = labelKey(values[r]);
    if (!distinct.has(key)) distinct.set(key, r);
    if (allInts) {
      const n = parseNumber(values[r]);
      allInts = Number.isInteger(n);
    }
  }
  if (allInts) {
    let max = -1;
    for (const key of distinct.keys()) max = Math.max(max, Number(key));
    const k = numClasses ?? Math.max(max + 1, 2);
    return { classes: Array.from({ length: k }, (_, i) => String(i)), order: 'integer' };
  }
  const classes = [...distinct.keys()].sort(compareText);
  if (numClasses !== null && classes.length !== numClasses) {
    const list = classes.map((c) => `'${c}' (first at row ${distinct.get(c)! + 1})`).join(', ');
    throw new UserError(
      `the label column '${column}' has ${classes.length} distinct values, ${list}, ` +
        `but the model has ${numClasses} classes.`,
      {
        file: p.file,
        field: column,
        fix:
          classes.length < numClasses
            ? `name all ${numClasses} classes in the order of the model's outputs with --classes.`
            : `remove the rows of classes the model does not predict, ` +
              `or check that this is the model's label column.`,
      },
    );
  }
  if (classes.length < 2) {
    throw new UserError(
      `the label column '${column}' has only one value ('${classes[0]}'); ` +
        `a classifier needs at least two classes.`,
      {
        file: p.file,
        field: column,
        fix: 'check the label column, or add rows of the other classes.',
      },
    );
  }
  return { classes, order: 'sorted' };
}

/** Each row's class index; a value outside the classes is an error naming its row and the fix. */
function classIndices(p: Prepared, column: string, values: string[], { classes, order }: ClassList): Int32Array {
  const index = new Map<string, number>();
  classes.forEach((c, i) => index.set(labelKey(c), i));
  const labels = new Int32Array(p.rows);
  for (let r = 0; r < p.rows; r++) {
    const i = index.get(labelKey(values[r]));
    if (i === undefined) {
      const known = classes.map((c, k) => `${k}: ${c}`).join(', ');
      throw rowError(
        p,
        r,
        column,
        `the label '${values[r]}' is not one of the model's classes (${known}).`,
        order === 'integer'
          ? `integer labels are output indices 0–${classes.length - 1}; if your labels are coded differently, ` +
              `give the classes in output order with --classes.`
          : order === 'given'
            ? 'add it to --classes in its output position, or remove the row.'
            : 'remove the row, or fix the value.',
      );
    }
    labels[r] = i;
  }
  return labels;
}
