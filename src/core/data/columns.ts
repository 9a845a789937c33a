/**
 * Reading the table and deciding what each column is: the label, the subgroups, the split, the
 * images or the features (docs/data-contract.md; test/unit/data-columns.test.ts).
 */
import type { DataSpec } from '../../protocol/engine';
import { sha256 } from '../atomic';
import { UserError } from '../errors';
import { CsvTable, IMAGE_FILE, isMissing, readCsvFile } from './csv';
import { DEFAULT_SPLIT_FRACTIONS, validateFractions } from './splits';
/** What loading needs: the user's data spec, plus how to split it when the table has no split column. */
export interface LoadSpec extends DataSpec {
  seed: number;
  /** assignment string of an earlier session (SplitRecord.assignment) to reuse; must match the row count */
  reuseSplit?: string;
  /** fractions for seeded splits; default {train: 0.7, validation: 0.1, test: 0.2} */
  splitFractions?: { train: number; validation: number; test: number };
}

export interface Prepared {
  spec: LoadSpec;
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

export function rowError(
  p: { file: string; table: CsvTable },
  r: number,
  column: string,
  problem: string,
  fix: string,
): UserError {
  const line = p.table.lines[r];
  const where = line !== r + 2 ? ` (line ${line} of the file)` : '';
  return new UserError(problem + where, { file: p.file, row: r + 1, field: column, fix });
}

export function missingError(p: { file: string; table: CsvTable }, r: number, column: string, role: string): UserError {
  const v = p.table.rows[r]?.[p.table.columns.indexOf(column)];
  const shown = v ? `'${v}'` : 'an empty cell';
  return rowError(
    p,
    r,
    column,
    `the ${role} column '${column}' has a missing value (${shown}; ` +
      'empty, NA, N/A, NaN, null and None all mean missing).',
    `fill in the value, or remove the row from the CSV.`,
  );
}

export function validateSpec(spec: LoadSpec): void {
  if (typeof spec.csvPath !== 'string' || spec.csvPath === '')
    throw new UserError('no data file was given.', { field: 'csvPath', fix: 'give the CSV file.' });
  if (typeof spec.label !== 'string' || spec.label === '')
    throw new UserError('no label column was given.', {
      file: spec.csvPath,
      field: 'label',
      fix: 'name the column that holds the true class with --label.',
    });
  if (!Array.isArray(spec.groups) || spec.groups.length === 0) {
    throw new UserError('no subgroup column was given.', {
      file: spec.csvPath,
      field: 'groups',
      fix: 'name one or more subgroup columns with --group, e.g. --group gender --group ethnicity.',
    });
  }
  if (!Number.isFinite(spec.seed))
    throw new UserError(`seed ${spec.seed} is not a number.`, { field: 'seed', fix: 'give an integer seed.' });
  if (spec.pixelScale !== undefined && !(Number.isFinite(spec.pixelScale) && spec.pixelScale > 0)) {
    throw new UserError(`pixel scale ${spec.pixelScale} is not a positive number.`, {
      field: 'pixelScale',
      fix: 'use 255 for models trained on 0–1 pixels, 1 for 0–255.',
    });
  }
  validateFractions(spec.splitFractions ?? DEFAULT_SPLIT_FRACTIONS);
  const dup = (list: string[] | undefined, field: string) => {
    if (!list) return;
    const s = new Set<string>();
    for (const c of list) {
      if (s.has(c))
        throw new UserError(`names column '${c}' twice.`, { file: spec.csvPath, field, fix: `name each column once.` });
      s.add(c);
    }
  };
  dup(spec.groups, 'groups');
  dup(spec.features, 'features');
  dup(spec.ignore, 'ignore');
  dup(spec.classes, 'classes');
}

/** Finds a named column, or fails naming the option it was given as and the file's columns. */
type FindColumn = (name: string, option: string) => number;

/** The columns given a role so far, and what role a column has (undefined: none yet). */
interface Roles {
  labelCol: number;
  groupCols: number[];
  splitCol: number;
  roleOf: (k: number) => string | undefined;
}

export function prepare(spec: LoadSpec): Prepared {
  validateSpec(spec);
  const file = spec.csvPath;
  const { table, bytes } = readCsvFile(file);
  const rows = table.rows.length;
  if (rows === 0)
    throw new UserError('the file has a header but no data rows.', { file, fix: 'export the data rows too.' });
  const warnings: string[] = [];
  const find = columnFinder(file, table.columns);
  const roles = labelGroupSplitColumns(spec, file, table.columns, find);
  const { labelCol, groupCols, splitCol } = roles;
  const imageLike = imageLikeColumns(table, roles);
  const imageCol = imageColumnOf(spec, file, imageLike, find, roles);
  const ignored = ignoredColumns(spec, file, find, roles);
  const featuresGiven = spec.features !== undefined;
  let featureCols: number[];
  if (spec.features !== undefined) {
    featureCols = givenFeatureColumns(spec.features, file, find, { ...roles, imageCol, ignored }, warnings);
  } else {
    const excluded = new Set<number>([labelCol, ...groupCols, ...imageLike, ...ignored]);
    if (splitCol >= 0) excluded.add(splitCol);
    if (imageCol >= 0) excluded.add(imageCol);
    featureCols = otherColumns(table.columns, excluded, warnings);
  }
  return {
    spec,
    file,
    csvSha: sha256(bytes),
    table,
    rows,
    labelCol,
    groupCols,
    splitCol,
    imageCol,
    featureCols,
    featuresGiven,
    warnings,
  };
}

function columnFinder(file: string, columns: string[]): FindColumn {
  return (name, option) => {
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
}

/** The label, the subgroups and the split column (given, or one named `split` in any case). */
function labelGroupSplitColumns(spec: LoadSpec, file: string, columns: string[], find: FindColumn): Roles {
  const labelCol = find(spec.label, '--label');
  const groupCols = spec.groups.map((g) => find(g, '--group'));
  if (groupCols.includes(labelCol)) {
    throw new UserError(`'${spec.label}' is both the label and a subgroup column.`, {
      file,
      field: spec.label,
      fix: 'choose a different subgroup column with --group.',
    });
  }
  let splitCol = -1;
  if (spec.splitColumn !== undefined) {
    splitCol = find(spec.splitColumn, '--split-column');
  } else {
    splitCol = columns.indexOf('split');
    if (splitCol < 0) splitCol = columns.findIndex((c) => c.toLowerCase() === 'split');
  }
  if (splitCol >= 0 && (splitCol === labelCol || groupCols.includes(splitCol))) {
    const role = splitCol === labelCol ? 'the label' : 'a subgroup column';
    throw new UserError(`'${columns[splitCol]}' cannot be both the split column and ${role}.`, {
      file,
      field: columns[splitCol],
      fix: 'name the split column with --split-column, or rename the column.',
    });
  }
  const roleOf = (k: number): string | undefined =>
    k === labelCol
      ? 'the label'
      : groupCols.includes(k)
        ? 'a subgroup column'
        : k === splitCol
          ? 'the split column'
          : undefined;
  return { labelCol, groupCols, splitCol, roleOf };
}

/** Every column without a role whose values are all image file names. */
function imageLikeColumns(table: CsvTable, roles: Roles): number[] {
  const imageLike: number[] = [];
  for (let k = 0; k < table.columns.length; k++) {
    if (roles.roleOf(k)) continue;
    let present = 0;
    let all = true;
    for (let r = 0; r < table.rows.length && all; r++) {
      const v = table.rows[r][k];
      if (isMissing(v)) continue;
      present++;
      all = IMAGE_FILE.test(v);
    }
    if (all && present > 0) imageLike.push(k);
  }
  return imageLike;
}

/** The image column: given, or the one image-like column (-1: none; -2: several, the caller decides). */
function imageColumnOf(spec: LoadSpec, file: string, imageLike: number[], find: FindColumn, roles: Roles): number {
  if (spec.imageColumn !== undefined) {
    const imageCol = find(spec.imageColumn, '--image-column');
    const role = roles.roleOf(imageCol);
    if (role)
      throw new UserError(`'${spec.imageColumn}' cannot be the image column: it is ${role}.`, {
        file,
        field: spec.imageColumn,
        fix: 'name the column of image file names with --image-column.',
      });
    return imageCol;
  }
  if (imageLike.length === 1) return imageLike[0];
  return imageLike.length > 1 ? -2 : -1;
}

/** The `--ignore` columns; none of them may have a role. */
function ignoredColumns(spec: LoadSpec, file: string, find: FindColumn, roles: Roles): Set<number> {
  const ignored = new Set<number>();
  for (const name of spec.ignore ?? []) {
    const k = find(name, '--ignore');
    const role = roles.roleOf(k);
    if (role)
      throw new UserError(`--ignore names '${name}', which is ${role}, not a feature.`, {
        file,
        field: name,
        fix: `remove '${name}' from --ignore.`,
      });
    ignored.add(k);
  }
  return ignored;
}

/** The `--features` columns: none of them the label, the split, the image column or ignored. */
function givenFeatureColumns(
  features: string[],
  file: string,
  find: FindColumn,
  roles: Roles & { imageCol: number; ignored: Set<number> },
  warnings: string[],
): number[] {
  if (features.length === 0)
    throw new UserError('--features is empty.', {
      file,
      field: 'features',
      fix: 'name the feature columns, or leave --features out to use every other column.',
    });
  return features.map((name) => {
    const k = find(name, '--features');
    if (k === roles.labelCol)
      throw new UserError(`--features names the label column '${name}'.`, {
        file,
        field: name,
        fix: `remove '${name}' from --features: the model must not see the answer.`,
      });
    if (k === roles.splitCol)
      throw new UserError(`--features names the split column '${name}'.`, {
        file,
        field: name,
        fix: `remove '${name}' from --features.`,
      });
    if (k === roles.imageCol)
      throw new UserError(`--features names the image column '${name}'.`, {
        file,
        field: name,
        fix: `remove '${name}' from --features.`,
      });
    if (roles.ignored.has(k))
      throw new UserError(`'${name}' is in both --features and --ignore.`, {
        file,
        field: name,
        fix: 'name it in only one of them.',
      });
    if (roles.groupCols.includes(k))
      warnings.push(`Subgroup column '${name}' is also a model input, because --features names it.`);
    return k;
  });
}

/** Without `--features`: every named column that has no role and is not ignored. */
function otherColumns(columns: string[], excluded: Set<number>, warnings: string[]): number[] {
  const featureCols: number[] = [];
  for (let k = 0; k < columns.length; k++) {
    if (excluded.has(k)) continue;
    if (columns[k] === '') {
      warnings.push(`Column ${k + 1} has no name (R's or pandas' row names): it is not used as a feature.`);
      continue;
    }
    featureCols.push(k);
  }
  return featureCols;
}
