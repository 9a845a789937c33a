/**
 * The data contract: how a user's CSV (and the images it names) become model inputs, labels,
 * subgroups and splits. The rules are written for users in docs/data-contract.md; each has a test in
 * test/unit/data-*.test.ts. This file assembles the dataset from its parts: the columns (columns.ts),
 * the labels (labels.ts), the subgroups and the split (groups.ts), the features (features.ts) and
 * the images (images.ts).
 */
import * as crypto from 'crypto';
import * as path from 'path';
import { sha256 } from '../atomic';
import { UserError } from '../errors';
import type { DataRecord, GroupInfo, LabelMapping, SplitName, SplitRecord } from '../../protocol/results';
import { isMissing, parseNumber } from './csv';
import { ImageJob, loadImages, probeImage } from './images';
import { ColumnTransform, Preprocessing, outputFeatureNames, outputWidth, preprocessingJson } from './preprocessing';
import { SPLIT_CODE, assignmentString, splitCounts } from './splits';
import { LoadSpec, Prepared, missingError, prepare } from './columns';
import { compareText, mapLabels } from './labels';
import { assignGroups, assignSplit } from './groups';
import { applyTransforms, preprocessedFeatures, rawFeatures, refuseStrayTexts } from './features';

export type { LoadSpec };

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
  countAndWarn(c, groups);
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
        for (const a of [x, c.labels, c.groupIds, split])
          h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
        hash = h.digest('hex');
      }
      return hash;
    },
  };
  return ds;
}

/** Counts each group's rows per split; warns of many groups, small test groups, classes absent from test. */
function countAndWarn(c: Common, groups: GroupInfo[]): void {
  const { p } = c;
  const splitNames: SplitName[] = ['train', 'validation', 'test'];
  const classTest = new Array<number>(c.mapping.classes.length).fill(0);
  for (let r = 0; r < p.rows; r++) {
    groups[c.groupIds[r]].counts[splitNames[c.split[r]]]++;
    if (c.split[r] === 2) classTest[c.labels[r]]++;
  }
  if (groups.length > 50)
    p.warnings.push(
      `The subgroup columns give ${groups.length} groups; ` +
        'most will be small. Consider fewer or coarser subgroup columns.',
    );
  for (const g of groups) {
    if (g.counts.test < SMALL_GROUP_TEST_SAMPLES) {
      p.warnings.push(
        `Group '${g.name}' has ${g.counts.test} test samples (fewer ` +
          `than ${SMALL_GROUP_TEST_SAMPLES}): its numbers are uncertain.`,
      );
    }
  }
  classTest.forEach((n, i) => {
    if (n === 0) p.warnings.push(`Class '${c.mapping.classes[i]}' has no test samples.`);
  });
}

/**
 * How one feature column becomes model inputs, fitted on the train rows: numbers standardised,
 * text one-hot over its train categories. A missing value or stray text is an error naming its row.
 */
function fitTransform(c: Common, k: number): ColumnTransform {
  const { p } = c;
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
}

function product(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function checkModel(model: ModelInput, file: string): number {
  const bad =
    !Array.isArray(model.inputShape) ||
    model.inputShape.length === 0 ||
    model.inputShape.some((d) => !Number.isInteger(d) || d <= 0);
  if (bad)
    throw new UserError(`the model's input shape [${model.inputShape}] is not a fixed shape.`, {
      file,
      field: 'inputShape',
      fix: 'use a model whose input has a fixed size per sample.',
    });
  if (!Number.isInteger(model.outputUnits) || model.outputUnits < 1) {
    throw new UserError(`the model has ${model.outputUnits} outputs.`, {
      file,
      field: 'outputUnits',
      fix: 'use a classifier: one sigmoid output, or one output per class.',
    });
  }
  return model.outputUnits === 1 ? 2 : model.outputUnits;
}

function imageShapeOf(inputShape: number[]): { height: number; width: number; channels: number } | null {
  if (inputShape.length === 3 && [1, 3, 4].includes(inputShape[2]))
    return { height: inputShape[0], width: inputShape[1], channels: inputShape[2] };
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
    throw new UserError('more than one column holds image file names.', {
      file: p.file,
      field: 'imageColumn',
      fix: 'name the image column with --image-column.',
    });
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
    throw new UserError('--features was given, but the model takes images: an image model sees only the image.', {
      file: p.file,
      field: 'features',
      fix: 'leave --features out.',
    });
  }
}

/** Reads the CSV (and images) for a model the user brings. If `preprocessing` is given (a file that
 *  `fairprune train` saved beside the model), it is applied; else feature values go in exactly as
 *  they are in the CSV. */
export async function loadDataset(
  spec: LoadSpec,
  model: ModelInput,
  preprocessing?: { path: string; value: Preprocessing },
): Promise<Dataset> {
  const numClasses = checkModel(model, spec.csvPath);
  const p = prepare(spec);
  const pre = preprocessing?.value;
  const inputSize = product(model.inputShape);
  const modelImage = imageShapeOf(model.inputShape);
  const useImages = pre
    ? pre.image !== null
    : spec.imageColumn !== undefined || (modelImage !== null && p.imageCol !== -1);
  if (!useImages && p.imageCol >= 0 && spec.imageColumn === undefined && !pre) {
    p.warnings.push(
      `Column '${p.table.columns[p.imageCol]}' holds image file names, ` +
        `but the model takes ${inputSize} values per sample: ` +
        'the column is not used.',
    );
  }
  const c = common(p, numClasses, pre?.label);

  const shape = [...model.inputShape];
  if (useImages) {
    const { x, column, pixelScale } = await imageInputs(p, spec, model, preprocessing);
    return buildDataset(c, x, shape, null, column, pixelScale, preprocessing ?? null);
  }
  if (preprocessing) {
    const { x, names } = preprocessedFeatures(p, preprocessing, inputSize);
    return buildDataset(c, x, shape, names, null, null, preprocessing);
  }
  const { x, names } = rawFeatures(p, inputSize);
  return buildDataset(c, x, shape, names, null, null, null);
}

/** The images of the image column at the model's input size, scaled as the model was trained (or by --pixel-scale). */
async function imageInputs(
  p: Prepared,
  spec: LoadSpec,
  model: ModelInput,
  preprocessing: { path: string; value: Preprocessing } | undefined,
): Promise<{ x: Float32Array; column: string; pixelScale: number }> {
  const pre = preprocessing?.value;
  const modelImage = imageShapeOf(model.inputShape);
  const inputSize = product(model.inputShape);
  checkNoFeaturesForImages(p);
  if (!modelImage) {
    throw new UserError(
      `the data are images, but the model's input shape is [${model.inputShape}], not [height, width, channels].`,
      {
        file: spec.csvPath,
        field: 'imageColumn',
        fix: 'use an image model, or leave --image-column out to use the tabular columns.',
      },
    );
  }
  const col = requireImageColumn(p, pre?.image?.column);
  let pixelScale = spec.pixelScale ?? pre?.image?.pixelScale ?? DEFAULT_PIXEL_SCALE;
  if (pre?.image) {
    const im = pre.image;
    if (im.height !== modelImage.height || im.width !== modelImage.width || im.channels !== modelImage.channels) {
      throw new UserError(
        `the preprocessing file says ${im.height}×${im.width}×${im.channels} ` +
          'images, but the model ' +
          `takes ${modelImage.height}×${modelImage.width}×${modelImage.channels}.`,
        { file: preprocessing!.path, field: 'image', fix: 'use the preprocessing file saved with this model.' },
      );
    }
    if (spec.pixelScale !== undefined && spec.pixelScale !== im.pixelScale) {
      throw new UserError(
        `--pixel-scale ${spec.pixelScale} differs from the pixel scale the model was trained with (${im.pixelScale}).`,
        {
          file: preprocessing!.path,
          field: 'pixelScale',
          fix: 'leave --pixel-scale out.',
        },
      );
    }
    pixelScale = im.pixelScale;
  }
  const jobs = imageJobs(p, col);
  const x = new Float32Array(p.rows * inputSize);
  const { resized, example } = await loadImages(
    spec.csvPath,
    p.table.columns[col],
    jobs,
    { ...modelImage, pixelScale },
    x,
  );
  if (resized > 0)
    p.warnings.push(`${resized} of ${p.rows} images were resized to the model's input (e.g. ${example}).`);
  return { x, column: p.table.columns[col], pixelScale };
}

/** For `fairprune train`: fits standardisation (numeric) and one-hot encoding (text) on the TRAIN
 *  rows only, and returns the dataset with the fitted preprocessing applied, plus the preprocessing
 *  to save beside the model. */
export async function loadDatasetForTraining(
  spec: LoadSpec,
  options: { imageShape?: number[] } = {},
): Promise<{ dataset: Dataset; preprocessing: Preprocessing }> {
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
        throw new UserError(
          `image shape [${options.imageShape}] is not [height, width, channels] with 1, 3 or 4 channels.`,
          { field: 'imageShape', fix: 'give e.g. [32, 32, 3].' },
        );
      }
      shape = s;
    } else {
      shape = await probeImage(spec.csvPath, name, jobs[0]);
    }
    const pixelScale = spec.pixelScale ?? DEFAULT_PIXEL_SCALE;
    const x = new Float32Array(p.rows * shape.height * shape.width * shape.channels);
    const { resized, example } = await loadImages(spec.csvPath, name, jobs, { ...shape, pixelScale }, x);
    if (resized > 0)
      p.warnings.push(
        `${resized} of ${p.rows} images were resized to ${shape.height}×${shape.width} (e.g. ${example}).`,
      );
    const preprocessing: Preprocessing = {
      version: 1,
      label: c.mapping,
      groupColumns,
      columns: null,
      outputFeatures: null,
      image: { column: name, ...shape, pixelScale },
    };
    const dataset = buildDataset(c, x, [shape.height, shape.width, shape.channels], null, name, pixelScale, {
      path: null,
      value: preprocessing,
    });
    return { dataset, preprocessing };
  }
  const featureCols = p.featureCols;
  if (featureCols.length === 0) {
    throw new UserError('no feature columns are left after the label, subgroup, split and ignored columns.', {
      file: spec.csvPath,
      field: 'features',
      fix: 'check --ignore and --features.',
    });
  }
  const cols: ColumnTransform[] = featureCols.map((k) => fitTransform(c, k));
  const width = outputWidth(cols);
  const x = new Float32Array(p.rows * width);
  applyTransforms(p, cols, featureCols, x);
  const outputFeatures = outputFeatureNames(cols);
  const preprocessing: Preprocessing = {
    version: 1,
    label: c.mapping,
    groupColumns,
    columns: cols,
    outputFeatures,
    image: null,
  };
  const dataset = buildDataset(c, x, [width], outputFeatures, null, null, { path: null, value: preprocessing });
  return { dataset, preprocessing };
}
