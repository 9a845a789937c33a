/**
 * The data contract: how a user's CSV (and the images it names) become model inputs, labels,
 * subgroups and splits. The rules are written for users in docs/data-contract.md; each has a test in
 * test/unit/data-*.test.ts.
 */
import * as crypto from 'crypto';
import * as path from 'path';
import { sha256 } from '../atomic';
import { UserError } from '../errors';
import type { DataRecord, GroupInfo, LabelMapping, SplitName, SplitRecord } from '../../protocol/results';
import { CsvTable, IMAGE_FILE, isMissing, parseNumber, readCsvFile } from './csv';
import { ImageJob, loadImages, probeImage } from './images';
import { ColumnTransform, Preprocessing, outputFeatureNames, outputWidth, preprocessingJson } from './preprocessing';
import {
  DEFAULT_SPLIT_FRACTIONS,
  SPLIT_CODE,
  SplitFractions,
  assignmentString,
  drawValidationFromTrain,
  parseAssignment,
  parseSplitValue,
  splitCounts,
  stratifiedSplit,
  validateFractions,
} from './splits';

export interface DataSpec {
  csvPath: string;
  label: string;
  groups: string[];
  features?: string[];
  ignore?: string[];
  splitColumn?: string;
  imageColumn?: string;
  classes?: string[];
  /** Images: pixels are divided by this; default 255 (0–1). Use 1 for models trained on 0–255. */
  pixelScale?: number;
  seed: number;
  /** assignment string of an earlier session (SplitRecord.assignment) to reuse; must match the row count */
  reuseSplit?: string;
  /** fractions for seeded splits; default {train: 0.7, validation: 0.1, test: 0.2} */
  splitFractions?: { train: number; validation: number; test: number };
}

export interface ModelInput {
  /** without batch dim, e.g. [8] or [28,28,1] */
  inputShape: number[];
  outputUnits: number;
}

export interface Dataset {
  /** Fully filled: sha256 of the CSV, groups with counts per split, split record, label mapping, features, warnings. */
  record: DataRecord;
  /** 2 for a single sigmoid output. */
  numClasses: number;
  /** Shape of one input sample. */
  sampleShape: number[];
  /** rows × prod(sampleShape), in CSV data-row order. */
  x: Float32Array;
  /** Class index per row. */
  labels: Int32Array;
  /** Index into groupNames per row (intersection of all group columns). */
  groupIds: Int32Array;
  /** e.g. 'colour=Black' or 'ethnicity=afam & gender=female'. */
  groupNames: string[];
  /** 1-based data row number (header excluded) per sample. */
  rowNumbers: Int32Array;
  /** 0 train, 1 validation, 2 test. */
  split: Uint8Array;
  /** Row positions of one split, ascending. */
  indices(split: SplitName): Int32Array;
  /**
   * sha256 identifying exactly what the model sees: the CSV's sha256, the label mapping, features,
   * groups, preprocessing, split and the input values themselves (images included). Computed once.
   */
  contentHash(): string;
}

/** A group with fewer test samples than this gets a warning. */
export const SMALL_GROUP_TEST_SAMPLES = 30;
export const DEFAULT_PIXEL_SCALE = 255;

// ---------------------------------------------------------------------------------------------
// Reading the table and deciding what each column is

interface Prepared {
  spec: DataSpec;
  file: string;
  csvSha: string;
  table: CsvTable;
  rows: number;
  labelCol: number;
  groupCols: number[];
  splitCol: number;
  /** Explicit or detected image column (-1: none). */
  imageCol: number;
  /** Default or chosen feature columns (tabular). */
  featureCols: number[];
  /** Whether `--features` chose them. */
  featuresGiven: boolean;
  warnings: string[];
}

function rowError(p: { file: string; table: CsvTable }, r: number, column: string, problem: string, fix: string): UserError {
  const line = p.table.lines[r];
  const where = line !== r + 2 ? ` (line ${line} of the file)` : '';
  return new UserError(problem + where, { file: p.file, row: r + 1, field: column, fix });
}

function missingError(p: { file: string; table: CsvTable }, r: number, column: string, role: string): UserError {
  const v = p.table.rows[r]?.[p.table.columns.indexOf(column)];
  const shown = v ? `'${v}'` : 'an empty cell';
  return rowError(
    p,
    r,
    column,
    `the ${role} column '${column}' has a missing value (${shown}; empty, NA, N/A, NaN, null and None all mean missing).`,
    `fill in the value, or remove the row from the CSV.`,
  );
}

function validateSpec(spec: DataSpec): void {
  if (typeof spec.csvPath !== 'string' || spec.csvPath === '') throw new UserError('no data file was given.', { field: 'csvPath', fix: 'give the CSV file.' });
  if (typeof spec.label !== 'string' || spec.label === '') throw new UserError('no label column was given.', { file: spec.csvPath, field: 'label', fix: 'name the column that holds the true class with --label.' });
  if (!Array.isArray(spec.groups) || spec.groups.length === 0) {
    throw new UserError('no subgroup column was given.', { file: spec.csvPath, field: 'groups', fix: 'name one or more subgroup columns with --group, e.g. --group gender --group ethnicity.' });
  }
  if (!Number.isFinite(spec.seed)) throw new UserError(`seed ${spec.seed} is not a number.`, { field: 'seed', fix: 'give an integer seed.' });
  if (spec.pixelScale !== undefined && !(Number.isFinite(spec.pixelScale) && spec.pixelScale > 0)) {
    throw new UserError(`pixel scale ${spec.pixelScale} is not a positive number.`, { field: 'pixelScale', fix: 'use 255 for models trained on 0–1 pixels, 1 for 0–255.' });
  }
  validateFractions(spec.splitFractions ?? DEFAULT_SPLIT_FRACTIONS);
  const dup = (list: string[] | undefined, field: string) => {
    if (!list) return;
    const s = new Set<string>();
    for (const c of list) {
      if (s.has(c)) throw new UserError(`names column '${c}' twice.`, { file: spec.csvPath, field, fix: `name each column once.` });
      s.add(c);
    }
  };
  dup(spec.groups, 'groups');
  dup(spec.features, 'features');
  dup(spec.ignore, 'ignore');
  dup(spec.classes, 'classes');
}

function prepare(spec: DataSpec): Prepared {
  validateSpec(spec);
  const file = spec.csvPath;
  const { table, bytes } = readCsvFile(file);
  const columns = table.columns;
  const rows = table.rows.length;
  if (rows === 0) throw new UserError('the file has a header but no data rows.', { file, fix: 'export the data rows too.' });
  const warnings: string[] = [];
  const find = (name: string, option: string): number => {
    const k = columns.indexOf(name);
    if (k < 0 || name === '') {
      const named = columns.filter((c) => c !== '').join(', ');
      throw new UserError(`has no column '${name}' (given as ${option}). Its columns are: ${named}.`, {
        file,
        field: name,
        fix: `use one of these names with ${option} (names are case-sensitive).`,
      });
    }
    return k;
  };
  const labelCol = find(spec.label, '--label');
  const groupCols = spec.groups.map((g) => find(g, '--group'));
  if (groupCols.includes(labelCol)) {
    throw new UserError(`'${spec.label}' is both the label and a subgroup column.`, { file, field: spec.label, fix: 'choose a different subgroup column with --group.' });
  }
  // split column
  let splitCol = -1;
  if (spec.splitColumn !== undefined) {
    splitCol = find(spec.splitColumn, '--split-column');
  } else {
    splitCol = columns.indexOf('split');
    if (splitCol < 0) splitCol = columns.findIndex((c) => c.toLowerCase() === 'split');
  }
  const roleOf = (k: number): string | undefined =>
    k === labelCol ? 'the label' : groupCols.includes(k) ? 'a subgroup column' : k === splitCol ? 'the split column' : undefined;
  if (splitCol >= 0 && (splitCol === labelCol || groupCols.includes(splitCol))) {
    throw new UserError(`'${columns[splitCol]}' cannot be both the split column and ${splitCol === labelCol ? 'the label' : 'a subgroup column'}.`, {
      file,
      field: columns[splitCol],
      fix: 'name the split column with --split-column, or rename the column.',
    });
  }
  // image columns: explicit, or every column whose values are all image file names
  const imageLike: number[] = [];
  for (let k = 0; k < columns.length; k++) {
    if (roleOf(k)) continue;
    let present = 0;
    let all = true;
    for (let r = 0; r < rows && all; r++) {
      const v = table.rows[r][k];
      if (isMissing(v)) continue;
      present++;
      all = IMAGE_FILE.test(v);
    }
    if (all && present > 0) imageLike.push(k);
  }
  let imageCol = -1;
  if (spec.imageColumn !== undefined) {
    imageCol = find(spec.imageColumn, '--image-column');
    const role = roleOf(imageCol);
    if (role) throw new UserError(`'${spec.imageColumn}' cannot be the image column: it is ${role}.`, { file, field: spec.imageColumn, fix: 'name the column of image file names with --image-column.' });
  } else if (imageLike.length === 1) {
    imageCol = imageLike[0];
  } else if (imageLike.length > 1) {
    imageCol = -2; // ambiguous: decided by the caller if images are needed
  }
  // features
  const excluded = new Set<number>([labelCol, ...groupCols, ...imageLike]);
  if (splitCol >= 0) excluded.add(splitCol);
  if (imageCol >= 0) excluded.add(imageCol);
  const ignored = new Set<number>();
  for (const name of spec.ignore ?? []) {
    const k = find(name, '--ignore');
    const role = roleOf(k);
    if (role) throw new UserError(`--ignore names '${name}', which is ${role}, not a feature.`, { file, field: name, fix: `remove '${name}' from --ignore.` });
    ignored.add(k);
  }
  let featureCols: number[];
  const featuresGiven = spec.features !== undefined;
  if (spec.features !== undefined) {
    if (spec.features.length === 0) throw new UserError('--features is empty.', { file, field: 'features', fix: 'name the feature columns, or leave --features out to use every other column.' });
    featureCols = spec.features.map((name) => {
      const k = find(name, '--features');
      if (k === labelCol) throw new UserError(`--features names the label column '${name}'.`, { file, field: name, fix: `remove '${name}' from --features: the model must not see the answer.` });
      if (k === splitCol) throw new UserError(`--features names the split column '${name}'.`, { file, field: name, fix: `remove '${name}' from --features.` });
      if (k === imageCol) throw new UserError(`--features names the image column '${name}'.`, { file, field: name, fix: `remove '${name}' from --features.` });
      if (ignored.has(k)) throw new UserError(`'${name}' is in both --features and --ignore.`, { file, field: name, fix: 'name it in only one of them.' });
      if (groupCols.includes(k)) warnings.push(`Subgroup column '${name}' is also a model input, because --features names it.`);
      return k;
    });
  } else {
    featureCols = [];
    for (let k = 0; k < columns.length; k++) {
      if (excluded.has(k) || ignored.has(k)) continue;
      if (columns[k] === '') {
        warnings.push(`Column ${k + 1} has no name (R's or pandas' row names): it is not used as a feature.`);
        continue;
      }
      featureCols.push(k);
    }
  }
  return { spec, file, csvSha: sha256(bytes), table, rows, labelCol, groupCols, splitCol, imageCol, featureCols, featuresGiven, warnings };
}

// ---------------------------------------------------------------------------------------------
// Labels

/** Canonical form of a label value: numbers by value (`1.0` is `1`), text as it is. */
function labelKey(v: string): string {
  const n = parseNumber(v);
  return Number.isNaN(n) ? v : String(n);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Decides the label mapping and maps every row. `numClasses` is the model's (null when training:
 * decided by the data). `fixed` is the mapping a preprocessing file saved.
 */
function mapLabels(p: Prepared, numClasses: number | null, fixed: LabelMapping | undefined): { mapping: LabelMapping; labels: Int32Array } {
  const column = p.table.columns[p.labelCol];
  const values: string[] = new Array(p.rows);
  for (let r = 0; r < p.rows; r++) {
    const v = p.table.rows[r][p.labelCol];
    if (isMissing(v)) throw missingError(p, r, column, 'label');
    values[r] = v;
  }
  let classes: string[];
  let order: LabelMapping['order'];
  const given = p.spec.classes;
  if (fixed) {
    if (given && (given.length !== fixed.classes.length || given.some((c, i) => labelKey(c) !== labelKey(fixed.classes[i])))) {
      throw new UserError(`--classes ${given.join(',')} differs from the classes the model was trained with (${fixed.classes.join(',')}).`, {
        file: p.file,
        field: 'classes',
        fix: 'leave --classes out: the preprocessing file beside the model fixes the class order.',
      });
    }
    if (fixed.column !== column) p.warnings.push(`The model was trained with label column '${fixed.column}'; this run reads '${column}'.`);
    classes = [...fixed.classes];
    order = fixed.order;
  } else if (given) {
    if (given.length < 2) throw new UserError(`--classes names ${given.length} class; a classifier needs at least 2.`, { file: p.file, field: 'classes', fix: 'name every class, in the order of the model’s outputs.' });
    const keys = given.map(labelKey);
    if (new Set(keys).size !== keys.length) throw new UserError('--classes names the same class twice.', { file: p.file, field: 'classes', fix: 'name each class once.' });
    classes = [...given];
    order = 'given';
  } else {
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
      classes = Array.from({ length: k }, (_, i) => String(i));
      order = 'integer';
    } else {
      classes = [...distinct.keys()].sort(compareText);
      order = 'sorted';
      if (numClasses !== null && classes.length !== numClasses) {
        const list = classes.map((c) => `'${c}' (first at row ${distinct.get(c)! + 1})`).join(', ');
        throw new UserError(
          `the label column '${column}' has ${classes.length} distinct values, ${list}, but the model has ${numClasses} classes.`,
          {
            file: p.file,
            field: column,
            fix:
              classes.length < numClasses
                ? `name all ${numClasses} classes in the order of the model's outputs with --classes.`
                : `remove the rows of classes the model does not predict, or check that this is the model's label column.`,
          },
        );
      }
      if (classes.length < 2) {
        throw new UserError(`the label column '${column}' has only one value ('${classes[0]}'); a classifier needs at least two classes.`, {
          file: p.file,
          field: column,
          fix: 'check the label column, or add rows of the other classes.',
        });
      }
    }
  }
  if (numClasses !== null && classes.length !== numClasses) {
    throw new UserError(`${order === 'given' ? '--classes names' : 'the label mapping has'} ${classes.length} classes, but the model has ${numClasses} (${numClasses === 2 ? 'one sigmoid output or two outputs' : `${numClasses} outputs`}).`, {
      file: p.file,
      field: order === 'given' ? 'classes' : column,
      fix: `name exactly ${numClasses} classes, in the order of the model's outputs.`,
    });
  }
  const index = new Map<string, number>();
  classes.forEach((c, i) => index.set(labelKey(c), i));
  const labels = new Int32Array(p.rows);
  for (let r = 0; r < p.rows; r++) {
    const i = index.get(labelKey(values[r]));
    if (i === undefined) {
      throw rowError(
        p,
        r,
        column,
        `the label '${values[r]}' is not one of the model's classes (${classes.map((c, k) => `${k}: ${c}`).join(', ')}).`,
        order === 'integer'
          ? `integer labels are output indices 0–${classes.length - 1}; if your labels are coded differently, give the classes in output order with --classes.`
          : order === 'given'
            ? 'add it to --classes in its output position, or remove the row.'
            : 'remove the row, or fix the value.',
      );
    }
    labels[r] = i;
  }
  return { mapping: { column, classes, order }, labels };
}

// ---------------------------------------------------------------------------------------------
// Groups

function compareValues(a: string, b: string): number {
  const x = parseNumber(a);
  const y = parseNumber(b);
  if (!Number.isNaN(x) && !Number.isNaN(y) && x !== y) return x - y;
  return compareText(a, b);
}

function assignGroups(p: Prepared): { groupIds: Int32Array; tuples: string[][]; names: string[] } {
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

// ---------------------------------------------------------------------------------------------
// Splits

function assignSplit(p: Prepared, strata: Int32Array, nStrata: number): { split: Uint8Array; record: Omit<SplitRecord, 'counts' | 'assignment'> } {
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
          throw rowError(p, r, column, `the split column says '${p.table.rows[r][p.splitCol]}' but the reused split has this row in ${['train', 'validation', 'test'][split[r]]}.`, 'reuse the split only of a session on this same CSV, or run without reusing it.');
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
        throw rowError(p, r, column, `the split column '${column}' has the value '${v}'; it must be train, validation (or val, valid) or test.`, `fix the value, or name another split column with --split-column.`);
      }
      split[r] = SPLIT_CODE[s];
      if (s === 'validation') hasValidation = true;
    }
    record = { source: 'column', column };
    if (!hasValidation && fractions.validation > 0) {
      drawValidationFromTrain(split, strata, nStrata, fractions.validation / (fractions.train + fractions.validation), p.spec.seed);
      record.validationDrawnFromTrain = true;
      record.seed = p.spec.seed;
      p.warnings.push(`The split column '${column}' has no validation rows: validation rows were drawn from its train rows (seed ${p.spec.seed}).`);
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

// ---------------------------------------------------------------------------------------------
// Assembling the dataset

interface Common {
  p: Prepared;
  mapping: LabelMapping;
  labels: Int32Array;
  groupIds: Int32Array;
  groupTuples: string[][];
  groupNames: string[];
  split: Uint8Array;
  splitRecord: SplitRecord;
}

function common(p: Prepared, numClasses: number | null, fixed: LabelMapping | undefined): Common {
  const { mapping, labels } = mapLabels(p, numClasses, fixed);
  const { groupIds, tuples, names } = assignGroups(p);
  const k = mapping.classes.length;
  const strata = new Int32Array(p.rows);
  for (let r = 0; r < p.rows; r++) strata[r] = groupIds[r] * k + labels[r];
  const { split, record } = assignSplit(p, strata, names.length * k);
  const splitRecord: SplitRecord = { ...record, counts: splitCounts(split), assignment: assignmentString(split) };
  return { p, mapping, labels, groupIds, groupTuples: tuples, groupNames: names, split, splitRecord };
}

function buildDataset(
  c: Common,
  x: Float32Array,
  sampleShape: number[],
  features: string[] | null,
  imageColumn: string | null,
  pixelScale: number | null,
  preprocessing: { path: string | null; value: Preprocessing } | null,
): Dataset {
  const { p } = c;
  const groupColumns = p.groupCols.map((k) => p.table.columns[k]);
  const groups: GroupInfo[] = c.groupNames.map((name, g) => ({
    name,
    values: Object.fromEntries(groupColumns.map((col, j) => [col, c.groupTuples[g][j]])),
    counts: { train: 0, validation: 0, test: 0 },
  }));
  const splitNames: SplitName[] = ['train', 'validation', 'test'];
  const classTest = new Array<number>(c.mapping.classes.length).fill(0);
  for (let r = 0; r < p.rows; r++) {
    groups[c.groupIds[r]].counts[splitNames[c.split[r]]]++;
    if (c.split[r] === 2) classTest[c.labels[r]]++;
  }
  if (groups.length > 50) p.warnings.push(`The subgroup columns give ${groups.length} groups; most will be small. Consider fewer or coarser subgroup columns.`);
  for (const g of groups) {
    if (g.counts.test < SMALL_GROUP_TEST_SAMPLES) {
      p.warnings.push(`Group '${g.name}' has ${g.counts.test} test samples (fewer than ${SMALL_GROUP_TEST_SAMPLES}): its numbers are uncertain.`);
    }
  }
  classTest.forEach((n, i) => {
    if (n === 0) p.warnings.push(`Class '${c.mapping.classes[i]}' has no test samples.`);
  });
  const record: DataRecord = {
    path: path.resolve(p.file),
    sha256: p.csvSha,
    rows: p.rows,
    label: c.mapping,
    groupColumns,
    groups,
    features,
    imageColumn,
    pixelScale,
    preprocessing: preprocessing?.path ?? null,
    split: c.splitRecord,
    warnings: p.warnings,
  };
  const rowNumbers = new Int32Array(p.rows);
  for (let r = 0; r < p.rows; r++) rowNumbers[r] = r + 1;
  const cache = new Map<SplitName, Int32Array>();
  let hash: string | undefined;
  const split = c.split;
  const ds: Dataset = {
    record,
    numClasses: c.mapping.classes.length,
    sampleShape,
    x,
    labels: c.labels,
    groupIds: c.groupIds,
    groupNames: c.groupNames,
    rowNumbers,
    split,
    indices(name: SplitName): Int32Array {
      let a = cache.get(name);
      if (!a) {
        const code = SPLIT_CODE[name];
        let n = 0;
        for (let r = 0; r < split.length; r++) if (split[r] === code) n++;
        a = new Int32Array(n);
        for (let r = 0, i = 0; r < split.length; r++) if (split[r] === code) a[i++] = r;
        cache.set(name, a);
      }
      return a;
    },
    contentHash(): string {
      if (hash === undefined) {
        const h = crypto.createHash('sha256');
        h.update(
          JSON.stringify({
            v: 1,
            csv: p.csvSha,
            label: c.mapping,
            groups: c.groupNames,
            features,
            imageColumn,
            pixelScale,
            sampleShape,
            preprocessing: preprocessing ? sha256(preprocessingJson(preprocessing.value)) : null,
          }),
        );
        for (const a of [x, c.labels, c.groupIds, split]) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
        hash = h.digest('hex');
      }
      return hash;
    },
  };
  return ds;
}

/**
 * A column of numbers with a few other texts in it (`?`, `unknown`, `1,5`) is a data error, not a
 * text column: one-hot encoding it would make every distinct number a category. "A few": at most a
 * tenth of the rows (and at least 1 of 2 rows is a number).
 */
function refuseStrayTexts(p: Prepared, k: number): void {
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
    `the feature column '${col}' holds numbers except in ${strays} row${strays === 1 ? '' : 's'}: ${listed.join(', ')}${texts.size > 5 ? ', …' : ''}. A number column with stray texts would be one-hot encoded, every number a category.`,
    'correct those values (write a missing value as an empty cell or NA, which is an error in a feature column), or drop the column with --ignore.',
  );
}

function textFeatureError(p: Prepared, r: number, k: number, why: string): UserError {
  const col = p.table.columns[k];
  return rowError(
    p,
    r,
    col,
    `the feature column '${col}' has the text value '${p.table.rows[r][k]}'. ${why}`,
    `drop the column with --ignore ${col} (or choose the inputs with --features), or train the model with \`fairprune train\`, which encodes text columns.`,
  );
}

function product(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function checkModel(model: ModelInput, file: string): number {
  const bad = !Array.isArray(model.inputShape) || model.inputShape.length === 0 || model.inputShape.some((d) => !Number.isInteger(d) || d <= 0);
  if (bad) throw new UserError(`the model's input shape [${model.inputShape}] is not a fixed shape.`, { file, field: 'inputShape', fix: 'use a model whose input has a fixed size per sample.' });
  if (!Number.isInteger(model.outputUnits) || model.outputUnits < 1) {
    throw new UserError(`the model has ${model.outputUnits} outputs.`, { file, field: 'outputUnits', fix: 'use a classifier: one sigmoid output, or one output per class.' });
  }
  return model.outputUnits === 1 ? 2 : model.outputUnits;
}

function imageShapeOf(inputShape: number[]): { height: number; width: number; channels: number } | null {
  if (inputShape.length === 3 && [1, 3, 4].includes(inputShape[2])) return { height: inputShape[0], width: inputShape[1], channels: inputShape[2] };
  if (inputShape.length === 2) return { height: inputShape[0], width: inputShape[1], channels: 1 };
  return null;
}

function requireImageColumn(p: Prepared, preferred?: string): number {
  if (p.imageCol >= 0) return p.imageCol;
  if (preferred !== undefined) {
    const k = p.table.columns.indexOf(preferred);
    if (k >= 0) return k;
  }
  if (p.imageCol === -2) {
    throw new UserError('more than one column holds image file names.', { file: p.file, field: 'imageColumn', fix: 'name the image column with --image-column.' });
  }
  throw new UserError('the model takes images, but no column holds image file names (.png, .jpg, .jpeg, .webp).', {
    file: p.file,
    field: 'imageColumn',
    fix: 'add a column of image paths (relative to the CSV), or name it with --image-column.',
  });
}

function imageJobs(p: Prepared, col: number): ImageJob[] {
  const name = p.table.columns[col];
  return p.table.rows.map((row, r) => {
    if (isMissing(row[col])) throw missingError(p, r, name, 'image');
    return { value: row[col], row: r + 1 };
  });
}

function checkNoFeaturesForImages(p: Prepared): void {
  if (p.featuresGiven) {
    throw new UserError('--features was given, but the model takes images: an image model sees only the image.', { file: p.file, field: 'features', fix: 'leave --features out.' });
  }
}

/** Reads the CSV (and images) for a model the user brings. If `preprocessing` is given (a file that
 *  `fairprune train` saved beside the model), it is applied; else feature values go in exactly as
 *  they are in the CSV. */
export async function loadDataset(spec: DataSpec, model: ModelInput, preprocessing?: { path: string; value: Preprocessing }): Promise<Dataset> {
  const numClasses = checkModel(model, spec.csvPath);
  const p = prepare(spec);
  const pre = preprocessing?.value;
  const inputSize = product(model.inputShape);
  const modelImage = imageShapeOf(model.inputShape);
  const useImages = pre ? pre.image !== null : spec.imageColumn !== undefined || (modelImage !== null && p.imageCol !== -1);
  if (!useImages && p.imageCol >= 0 && spec.imageColumn === undefined && !pre) {
    p.warnings.push(`Column '${p.table.columns[p.imageCol]}' holds image file names, but the model takes ${inputSize} values per sample: the column is not used.`);
  }
  const c = common(p, numClasses, pre?.label);

  if (useImages) {
    checkNoFeaturesForImages(p);
    if (!modelImage) {
      throw new UserError(`the data are images, but the model's input shape is [${model.inputShape}], not [height, width, channels].`, {
        file: spec.csvPath,
        field: 'imageColumn',
        fix: 'use an image model, or leave --image-column out to use the tabular columns.',
      });
    }
    const col = requireImageColumn(p, pre?.image?.column);
    let pixelScale = spec.pixelScale ?? pre?.image?.pixelScale ?? DEFAULT_PIXEL_SCALE;
    if (pre?.image) {
      const im = pre.image;
      if (im.height !== modelImage.height || im.width !== modelImage.width || im.channels !== modelImage.channels) {
        throw new UserError(
          `the preprocessing file says ${im.height}×${im.width}×${im.channels} images, but the model takes ${modelImage.height}×${modelImage.width}×${modelImage.channels}.`,
          { file: preprocessing!.path, field: 'image', fix: 'use the preprocessing file saved with this model.' },
        );
      }
      if (spec.pixelScale !== undefined && spec.pixelScale !== im.pixelScale) {
        throw new UserError(`--pixel-scale ${spec.pixelScale} differs from the pixel scale the model was trained with (${im.pixelScale}).`, {
          file: preprocessing!.path,
          field: 'pixelScale',
          fix: 'leave --pixel-scale out.',
        });
      }
      pixelScale = im.pixelScale;
    }
    const jobs = imageJobs(p, col);
    const x = new Float32Array(p.rows * inputSize);
    const { resized, example } = await loadImages(spec.csvPath, p.table.columns[col], jobs, { ...modelImage, pixelScale }, x);
    if (resized > 0) p.warnings.push(`${resized} of ${p.rows} images were resized to the model's input (e.g. ${example}).`);
    return buildDataset(c, x, [...model.inputShape], null, p.table.columns[col], pixelScale, preprocessing ?? null);
  }

  if (pre) {
    const cols = pre.columns!;
    const colIndex = cols.map((t) => {
      const k = p.table.columns.indexOf(t.column);
      if (k < 0) {
        throw new UserError(`the model was trained on column '${t.column}', which this CSV does not have.`, {
          file: spec.csvPath,
          field: t.column,
          fix: `add the column, or use the CSV the model was trained on (its preprocessing file is ${preprocessing!.path}).`,
        });
      }
      if (k === p.labelCol || k === p.splitCol) throw new UserError(`the model was trained on column '${t.column}', which this run uses as the ${k === p.labelCol ? 'label' : 'split column'}.`, { file: spec.csvPath, field: t.column, fix: 'check --label and --split-column.' });
      return k;
    });
    if (spec.features !== undefined && (spec.features.length !== cols.length || spec.features.some((f, i) => f !== cols[i].column))) {
      throw new UserError(`--features ${spec.features.join(',')} differs from the model's inputs (${cols.map((t) => t.column).join(',')}), which its preprocessing file fixes.`, {
        file: preprocessing!.path,
        field: 'features',
        fix: 'leave --features out.',
      });
    }
    for (const name of spec.ignore ?? []) {
      if (cols.some((t) => t.column === name)) {
        throw new UserError(`--ignore names '${name}', which the model was trained on.`, { file: preprocessing!.path, field: name, fix: `remove '${name}' from --ignore.` });
      }
    }
    const width = outputWidth(cols);
    if (width !== inputSize) {
      throw new UserError(`the preprocessing file gives ${width} input values per sample, but the model takes ${inputSize}.`, {
        file: preprocessing!.path,
        field: 'outputFeatures',
        fix: 'use the preprocessing file saved with this model.',
      });
    }
    const x = new Float32Array(p.rows * width);
    applyTransforms(p, cols, colIndex, x);
    return buildDataset(c, x, [...model.inputShape], outputFeatureNames(cols), null, null, preprocessing ?? null);
  }

  // A model without preprocessing: the CSV values exactly as they are.
  const featureCols = p.featureCols;
  const names = featureCols.map((k) => p.table.columns[k]);
  if (featureCols.length !== inputSize) {
    const text = featureCols.filter((k) => p.table.rows.some((row) => !isMissing(row[k]) && Number.isNaN(parseNumber(row[k])))).map((k) => p.table.columns[k]);
    throw new UserError(
      `the model takes ${inputSize} input values per sample, but ${featureCols.length} feature columns were selected: ${names.join(', ') || '(none)'}` +
        (text.length ? ` (text columns among them: ${text.join(', ')})` : '') +
        '.',
      {
        file: spec.csvPath,
        field: 'features',
        fix: `choose exactly ${inputSize} columns, in the model's input order, with --features (or drop columns with --ignore).`,
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
        throw textFeatureError(p, r, featureCols[j], 'A model without a preprocessing file gets the CSV values exactly as they are, so every feature must be a number.');
      }
      x[r * f + j] = n;
    }
  }
  return buildDataset(c, x, [...model.inputShape], names, null, null, null);
}

function applyTransforms(p: Prepared, cols: ColumnTransform[], colIndex: number[], x: Float32Array): void {
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
    p.warnings.push(`Column '${column}' has the value '${u.value}' (${u.count} rows, first at row ${u.row}) that training did not see: those rows get zeros for '${column}'.`);
  }
}

/** For `fairprune train`: fits standardisation (numeric) and one-hot encoding (text) on the TRAIN
 *  rows only, and returns the dataset with the fitted preprocessing applied, plus the preprocessing
 *  to save beside the model. */
export async function loadDatasetForTraining(spec: DataSpec, options: { imageShape?: number[] } = {}): Promise<{ dataset: Dataset; preprocessing: Preprocessing }> {
  const p = prepare(spec);
  const useImages = spec.imageColumn !== undefined || p.imageCol !== -1 || options.imageShape !== undefined;
  const c = common(p, null, undefined);
  const groupColumns = p.groupCols.map((k) => p.table.columns[k]);
  if (useImages) {
    checkNoFeaturesForImages(p);
    const col = requireImageColumn(p);
    const name = p.table.columns[col];
    const jobs = imageJobs(p, col);
    let shape: { height: number; width: number; channels: number };
    if (options.imageShape) {
      const s = imageShapeOf(options.imageShape);
      if (!s || options.imageShape.some((d) => !Number.isInteger(d) || d <= 0)) {
        throw new UserError(`image shape [${options.imageShape}] is not [height, width, channels] with 1, 3 or 4 channels.`, { field: 'imageShape', fix: 'give e.g. [32, 32, 3].' });
      }
      shape = s;
    } else {
      shape = await probeImage(spec.csvPath, name, jobs[0]);
    }
    const pixelScale = spec.pixelScale ?? DEFAULT_PIXEL_SCALE;
    const x = new Float32Array(p.rows * shape.height * shape.width * shape.channels);
    const { resized, example } = await loadImages(spec.csvPath, name, jobs, { ...shape, pixelScale }, x);
    if (resized > 0) p.warnings.push(`${resized} of ${p.rows} images were resized to ${shape.height}×${shape.width} (e.g. ${example}).`);
    const preprocessing: Preprocessing = {
      version: 1,
      label: c.mapping,
      groupColumns,
      columns: null,
      outputFeatures: null,
      image: { column: name, ...shape, pixelScale },
    };
    const dataset = buildDataset(c, x, [shape.height, shape.width, shape.channels], null, name, pixelScale, { path: null, value: preprocessing });
    return { dataset, preprocessing };
  }
  const featureCols = p.featureCols;
  if (featureCols.length === 0) {
    throw new UserError('no feature columns are left after the label, subgroup, split and ignored columns.', { file: spec.csvPath, field: 'features', fix: 'check --ignore and --features.' });
  }
  const cols: ColumnTransform[] = featureCols.map((k) => {
    const column = p.table.columns[k];
    let numeric = true;
    for (let r = 0; r < p.rows; r++) {
      const v = p.table.rows[r][k];
      if (isMissing(v)) throw missingError(p, r, column, 'feature');
      if (numeric && Number.isNaN(parseNumber(v))) numeric = false;
    }
    if (!numeric) refuseStrayTexts(p, k);
    if (numeric) {
      let n = 0;
      let mean = 0;
      let m2 = 0;
      for (let r = 0; r < p.rows; r++) {
        if (c.split[r] !== 0) continue;
        const v = parseNumber(p.table.rows[r][k]);
        n++;
        const d = v - mean;
        mean += d / n;
        m2 += d * (v - mean);
      }
      let std = Math.sqrt(m2 / n);
      if (!(std > 1e-12)) {
        p.warnings.push(`Column '${column}' is constant on the train rows: it is centred but not scaled.`);
        std = 1;
      }
      return { column, kind: 'standardize', mean, std };
    }
    const cats = new Set<string>();
    for (let r = 0; r < p.rows; r++) if (c.split[r] === 0) cats.add(p.table.rows[r][k]);
    return { column, kind: 'onehot', categories: [...cats].sort(compareText) };
  });
  const width = outputWidth(cols);
  const x = new Float32Array(p.rows * width);
  applyTransforms(p, cols, featureCols, x);
  const outputFeatures = outputFeatureNames(cols);
  const preprocessing: Preprocessing = { version: 1, label: c.mapping, groupColumns, columns: cols, outputFeatures, image: null };
  const dataset = buildDataset(c, x, [width], outputFeatures, null, null, { path: null, value: preprocessing });
  return { dataset, preprocessing };
}
