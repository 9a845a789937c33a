/**
 * What `fairprune train` did to the CSV before the model saw it, saved beside the model as
 * `fairprune.preprocessing.json` and applied by every later run on that model. A model without this
 * file gets the CSV's feature values exactly as they are.
 */
import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';
import type { LabelMapping } from '../../protocol/results';

export const PREPROCESSING_FILE = 'fairprune.preprocessing.json';

/** A numeric column: (value − mean) / std, with mean and population std of the train rows. */
export interface StandardizeTransform {
  column: string;
  kind: 'standardize';
  mean: number;
  /** Never 0: a column constant on the train rows gets std 1. */
  std: number;
}

/**
 * A text column: one input per category (sorted), 1 for the row's value; a value not seen in training gives
 * all zeros.
 */
export interface OneHotTransform {
  column: string;
  kind: 'onehot';
  categories: string[];
}

export type ColumnTransform = StandardizeTransform | OneHotTransform;

export interface ImagePreprocessing {
  column: string;
  height: number;
  width: number;
  channels: number;
  /** Pixels are divided by this. */
  pixelScale: number;
}

export interface Preprocessing {
  version: 1;
  /** The label mapping the model was trained with: fixes the class order for later runs. */
  label: LabelMapping;
  /** Subgroup columns used in training (informational). */
  groupColumns: string[];
  /** Tabular data: the CSV columns in model-input order with their transforms; null for image data. */
  columns: ColumnTransform[] | null;
  /** Names of the model's inputs in order (`age`, `sex=Male`, ...); null for image data. */
  outputFeatures: string[] | null;
  /** Image data: how images are turned into the input; null for tabular data. */
  image: ImagePreprocessing | null;
}

/** Output feature names of a list of transforms. */
export function outputFeatureNames(columns: ColumnTransform[]): string[] {
  const out: string[] = [];
  for (const t of columns) {
    if (t.kind === 'standardize') out.push(t.column);
    else for (const c of t.categories) out.push(`${t.column}=${c}`);
  }
  return out;
}

export function outputWidth(columns: ColumnTransform[]): number {
  let w = 0;
  for (const t of columns) w += t.kind === 'standardize' ? 1 : t.categories.length;
  return w;
}

/**
 * Validates a parsed preprocessing file. Every problem is a UserError naming the file and the field.
 */
export function validatePreprocessing(value: unknown, file: string): Preprocessing {
  const fail = (field: string, problem: string): never => {
    throw new UserError(problem, {
      file,
      field,
      fix:
        `re-create it with \`fairprune train\`, ` +
        `or delete ${PREPROCESSING_FILE} if the model takes the CSV ` +
        'values as they are.',
    });
  };
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const isStrArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
  const posInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v > 0;
  if (!isObj(value)) return fail('(root)', 'is not a JSON object.');
  if (value.version !== 1)
    return fail('version', `has version ${JSON.stringify(value.version)}; this Fair Prune reads version 1.`);
  const label = value.label;
  if (!isObj(label)) return fail('label', 'is missing or not an object.');
  if (typeof label.column !== 'string' || label.column === '')
    return fail('label.column', 'must be the label column name.');
  if (!isStrArray(label.classes) || label.classes.length < 2)
    return fail('label.classes', 'must list at least two class names.');
  if (new Set(label.classes).size !== label.classes.length) return fail('label.classes', 'names a class twice.');
  if (label.order !== 'integer' && label.order !== 'sorted' && label.order !== 'given')
    return fail('label.order', "must be 'integer', 'sorted' or 'given'.");
  if (!isStrArray(value.groupColumns)) return fail('groupColumns', 'must be a list of column names.');
  const columns = value.columns;
  const image = value.image;
  if ((columns === null) === (image === null))
    return fail('columns', "exactly one of 'columns' (tabular data) and 'image' (image data) must be set.");
  let cols: ColumnTransform[] | null = null;
  if (columns !== null) {
    if (!Array.isArray(columns) || columns.length === 0) return fail('columns', 'must be a non-empty list.');
    const seen = new Set<string>();
    cols = columns.map((t: unknown, k: number): ColumnTransform => {
      const f = `columns[${k}]`;
      if (!isObj(t)) return fail(f, 'is not an object.');
      if (typeof t.column !== 'string' || t.column === '') return fail(`${f}.column`, 'must be a column name.');
      if (seen.has(t.column)) return fail(`${f}.column`, `names column '${t.column}' twice.`);
      seen.add(t.column);
      if (t.kind === 'standardize') {
        if (typeof t.mean !== 'number' || !Number.isFinite(t.mean))
          return fail(`${f}.mean`, 'must be a finite number.');
        if (typeof t.std !== 'number' || !Number.isFinite(t.std) || t.std <= 0)
          return fail(`${f}.std`, 'must be a positive number.');
        return { column: t.column, kind: 'standardize', mean: t.mean, std: t.std };
      }
      if (t.kind === 'onehot') {
        if (!isStrArray(t.categories) || t.categories.length === 0)
          return fail(`${f}.categories`, 'must list the categories.');
        if (new Set(t.categories).size !== t.categories.length)
          return fail(`${f}.categories`, 'names a category twice.');
        return { column: t.column, kind: 'onehot', categories: [...t.categories] };
      }
      return fail(`${f}.kind`, "must be 'standardize' or 'onehot'.");
    });
    const names = outputFeatureNames(cols);
    if (
      !isStrArray(value.outputFeatures) ||
      value.outputFeatures.length !== names.length ||
      value.outputFeatures.some((n, k) => n !== names[k])
    ) {
      return fail('outputFeatures', `must be the ${names.length} input names the columns give, in order.`);
    }
  }
  let img: ImagePreprocessing | null = null;
  if (image !== null) {
    if (!isObj(image)) return fail('image', 'is not an object.');
    if (typeof image.column !== 'string' || image.column === '')
      return fail('image.column', 'must be the image column name.');
    if (!posInt(image.height)) return fail('image.height', 'must be a positive integer.');
    if (!posInt(image.width)) return fail('image.width', 'must be a positive integer.');
    if (image.channels !== 1 && image.channels !== 3 && image.channels !== 4)
      return fail('image.channels', 'must be 1, 3 or 4.');
    if (typeof image.pixelScale !== 'number' || !(image.pixelScale > 0) || !Number.isFinite(image.pixelScale))
      return fail('image.pixelScale', 'must be a positive number.');
    img = {
      column: image.column,
      height: image.height as number,
      width: image.width as number,
      channels: image.channels,
      pixelScale: image.pixelScale,
    };
  }
  return {
    version: 1,
    label: { column: label.column, classes: [...label.classes], order: label.order },
    groupColumns: [...value.groupColumns],
    columns: cols,
    outputFeatures: cols ? outputFeatureNames(cols) : null,
    image: img,
  };
}

/** Where a model's preprocessing file is: beside `model.json`, or inside the model folder. */
export function preprocessingPathFor(modelPath: string): string {
  let dir = modelPath;
  try {
    if (!fs.statSync(modelPath).isDirectory()) dir = path.dirname(modelPath);
  } catch {
    dir = path.dirname(modelPath);
  }
  return path.join(dir, PREPROCESSING_FILE);
}

/** Reads and validates the preprocessing file saved beside a model; undefined when there is none. */
export function readPreprocessingBeside(modelPath: string): { path: string; value: Preprocessing } | undefined {
  const file = preprocessingPathFor(modelPath);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)}).`, {
      file,
      fix: 'check its permissions.',
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UserError(`is not valid JSON (${(e as Error).message}).`, {
      file,
      fix: `re-create it with \`fairprune train\`, or delete it if the model takes the CSV values as they are.`,
    });
  }
  return { path: file, value: validatePreprocessing(json, file) };
}

/** Serialises a preprocessing for saving (the caller writes it atomically beside the model). */
export function preprocessingJson(p: Preprocessing): string {
  return JSON.stringify(p, null, 2) + '\n';
}
