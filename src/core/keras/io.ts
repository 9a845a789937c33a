/**
 * Keras models in and out: HDF5 `.h5` full-model files (Keras 2.x and Keras 3's legacy h5) and
 * Keras 3 `.keras` zips (`config.json` + `model.weights.h5`).
 *
 * Reading is two steps so that the loader can refuse a model (a Lambda, a custom layer) from its
 * config before anything is built: `readKerasFile` gives the architecture as a tfjs model.json
 * object; `kerasWeights` then builds that architecture in tfjs (no weights) only to learn each
 * layer's weight names and shapes, and pairs them with the file's arrays:
 * - `.h5`: through `model_weights.attrs.layer_names` and each layer group's `weight_names`, never
 *   through HDF5 iteration order (alphabetical: `conv2d_10` before `conv2d_2`). A weight path is
 *   resolved inside the layer group, so Keras 2's `<layer>/<layer>/kernel:0` and Keras 3's
 *   `<layer>/<model>/<layer>/kernel` read alike. Layers are paired by name; when the names differ,
 *   by order of the layers that have weights, which is what Keras itself does.
 * - `.keras`: `layers/<snake_case(class)>[_n]/vars/<i>`, numbered per class in layer order (what
 *   Keras writes), falling back to `layers/<layer name>/vars`.
 * Every pairing is checked: same number of weights, same shapes; a mismatch names the layer.
 *
 * A model file is untrusted: every HDF5 file (the .h5, or model.weights.h5 in a .keras) is opened as a
 * private copy in a temporary folder, refused when it points outside itself (external links, soft
 * links through them, virtual datasets, external storage: `assertSelfContained`), and read and
 * written while h5wasm may open no other file (`onlyThisFile`). The architecture is built within the
 * parameter limit (model-limits.ts); `.keras` members are inflated with their declared sizes as caps.
 *
 * Writing makes a fresh file (fresh-h5.ts): the source's groups, attributes and datasets of the
 * types Keras writes are read into memory and a new HDF5 file is created from them, with the pruned
 * values in the weight datasets; nothing of the user's HDF5 layout is copied. `model_config`,
 * `training_config`, `top_level_model_weights`, `layer_names` / `weight_names` keep their values and
 * types (fixed-length or variable-length strings). Optimizer state (`optimizer_weights`,
 * `optimizer/vars`) is kept as it was: it is the dense model's, which Keras accepts; it says nothing
 * about the pruned weights. A `.keras` is a new zip of config.json, metadata.json and the new
 * model.weights.h5.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tfl from '@tensorflow/tfjs-layers';
import { UserError } from '../errors';
import { kerasConfigToTfjs } from './config';
import { buildWithinLimit } from '../model-limits';
import {
  assertSelfContained,
  h5wasm,
  isDataset,
  onlyThisFile,
  isGroup,
  isHdf5,
  readFloat32,
  stringAttr,
  stringListAttr,
  type H5File,
  type H5Group,
  type H5Module,
} from './h5';
import { readTree, writeTree } from './fresh-h5';
import { readZip, writeZip, type ZipMember } from './zip';

type Json = Record<string, unknown>;

export type KerasFormat = 'keras-h5' | 'keras-v3';

/** The file name a pruned model is written under, beside model.json, per format. */
export const KERAS_FILE_NAME: Record<KerasFormat, string> = { 'keras-h5': 'model.h5', 'keras-v3': 'model.keras' };

const WEIGHTS_MEMBER = 'model.weights.h5';
/** The members a pruned `.keras` file holds (the source's others, such as assets, are not written). */
const KERAS_MEMBERS = ['metadata.json', 'config.json', WEIGHTS_MEMBER];

export function kerasFormatOf(file: string): KerasFormat | undefined {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.h5' || ext === '.hdf5') return 'keras-h5';
  if (ext === '.keras') return 'keras-v3';
  return undefined;
}

/** A Keras file as read: its architecture in tfjs form, and what is needed to read and write its weights. */
export interface KerasFile {
  format: KerasFormat;
  path: string;
  /** The file's bytes as loaded (for the hash, and copied when writing the pruned model). */
  bytes: Buffer;
  /** `.keras`: the zip members. */
  members?: ZipMember[];
  kerasVersion: string;
  /** A tfjs model.json object: `{format, generatedBy, convertedBy, modelTopology: {model_config, ...}}`. */
  json: Json;
}

/** Where each tfjs weight lives in the Keras file. */
export interface KerasWeightRef {
  /** The tfjs weight's name (`LayerVariable.originalName`), e.g. `conv2d/kernel`. */
  name: string;
  /** The dataset path in the HDF5 file (`.keras`: in model.weights.h5). */
  dataset: string;
  shape: number[];
}

/** What `saveModel` needs to write a pruned model back in the format it came in. */
export interface KerasSource {
  format: KerasFormat;
  path: string;
  bytes: Buffer;
  members?: ZipMember[];
  weights: KerasWeightRef[];
}

export interface WeightSpecOut {
  name: string;
  shape: number[];
  dtype: 'float32';
}

function tempWorkDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'fairprune-keras-'));
}

/**
 * Opens HDF5 bytes (h5wasm reads by path) as a private read-only copy in a temporary folder, refuses
 * them when they point outside themselves (`assertSelfContained`), runs `fn` while no other file can
 * be opened, cleans up. `file` (and `inside`, a member of it) name the user's file in messages.
 */
async function withH5<T>(
  bytes: Uint8Array,
  where: { file: string; inside?: string },
  fn: (h5: H5Module, root: H5Group) => T,
): Promise<T> {
  const h5 = await h5wasm();
  const dir = tempWorkDir();
  const file = path.join(dir, 'm.h5');
  try {
    fs.writeFileSync(file, bytes);
    return onlyThisFile(h5, file, (refused) => {
      const f = new h5.File(file, 'r');
      try {
        assertSelfContained(h5, f, refused, where.file, where.inside);
        return fn(h5, f);
      } finally {
        f.close();
      }
    }).result;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A new HDF5 file made by `fn` (while h5wasm may open no other file), as bytes. */
async function freshH5(fn: (f: H5File) => void): Promise<Buffer> {
  const h5 = await h5wasm();
  const dir = tempWorkDir();
  const file = path.join(dir, 'fresh.h5');
  try {
    onlyThisFile(h5, file, () => {
      const f = new h5.File(file, 'w');
      try {
        fn(f);
      } finally {
        f.close();
      }
    });
    return fs.readFileSync(file);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A dataset path from the file's root (`.keras` weight paths are written relative to it). */
const absolute = (p: string) => (p.startsWith('/') ? p : `/${p}`);

function parseJson(text: string, file: string, field: string): Json {
  try {
    const v = JSON.parse(text) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Json;
  } catch (e) {
    throw new UserError(`its ${field} is not valid JSON (${(e as Error).message}).`, {
      file,
      field,
      fix: 'save the model again with Keras (model.save).',
    });
  }
}

function modelJsonOf(config: Json, kerasVersion: string, backend: string): Json {
  return {
    format: 'layers-model',
    generatedBy: `keras v${kerasVersion}`,
    convertedBy: 'Fair Prune (Keras reader)',
    modelTopology: { keras_version: kerasVersion, backend, model_config: kerasConfigToTfjs(config) },
  };
}

/** Reads a `.h5` or `.keras` model's architecture. Refuses files that are not Keras models. */
export async function readKerasFile(file: string): Promise<KerasFile> {
  const format = kerasFormatOf(file);
  if (!format) throw new Error(`${file} is not a .h5 or .keras file`);
  if (!fs.existsSync(file)) {
    throw new UserError('no such file.', {
      file,
      fix: 'give the path of a Keras model (.h5 or .keras) or a TensorFlow.js model.json.',
    });
  }
  const bytes = fs.readFileSync(file);
  if (format === 'keras-h5') {
    if (!isHdf5(bytes)) {
      throw new UserError('is not an HDF5 file, so it is not a Keras .h5 model.', {
        file,
        fix: 'give the file that Keras `model.save("model.h5")` wrote.',
      });
    }
    const result = await withH5(bytes, { file }, (_h5, root) => ({
      config: stringAttr(root, 'model_config'),
      kerasVersion: stringAttr(root, 'keras_version') ?? 'unknown',
      backend: stringAttr(root, 'backend') ?? 'tensorflow',
      weightsOnly: stringListAttr(root, 'layer_names') !== undefined,
    }));
    if (!result.config) {
      throw new UserError(
        result.weightsOnly
          ? 'holds weights only (written by `save_weights`), without the architecture.'
          : 'has no "model_config" attribute: it is not a whole Keras model.',
        {
          file,
          field: 'model_config',
          fix: 'save the whole model with Keras: `model.save("model.h5")` or `model.save("model.keras")`.',
        },
      );
    }
    const config = parseJson(result.config, file, 'model_config');
    return {
      format,
      path: file,
      bytes,
      kerasVersion: result.kerasVersion,
      json: modelJsonOf(config, result.kerasVersion, result.backend),
    };
  }
  let members: ZipMember[];
  try {
    members = readZip(bytes);
  } catch (e) {
    throw new UserError(`cannot be read as a Keras 3 .keras file: ${(e as Error).message}.`, {
      file,
      fix: 'give the file that Keras 3 `model.save("model.keras")` wrote.',
    });
  }
  const member = (name: string) => members.find((m) => m.name === name);
  const configMember = member('config.json');
  if (!configMember || !member(WEIGHTS_MEMBER)) {
    throw new UserError(
      `has no ${configMember ? WEIGHTS_MEMBER : 'config.json'} inside: it is not a Keras 3 model file.`,
      {
        file,
        field: configMember ? WEIGHTS_MEMBER : 'config.json',
        fix: 'give the file that Keras 3 `model.save("model.keras")` wrote.',
      },
    );
  }
  const config = parseJson(configMember.data.toString('utf8'), file, 'config.json');
  const metaMember = member('metadata.json');
  const meta = metaMember ? parseJson(metaMember.data.toString('utf8'), file, 'metadata.json') : {};
  const kerasVersion = String(meta.keras_version ?? 'unknown');
  return { format, path: file, bytes, members, kerasVersion, json: modelJsonOf(config, kerasVersion, 'tensorflow') };
}

function snakeCase(name: string): string {
  return name
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

function sameShape(a: readonly (number | null)[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function shapeText(s: readonly (number | null)[]): string {
  return `[${s.join(', ')}]`;
}

/** h5: the tfjs layers with weights, each paired with its layer group's dataset paths. */
function pairH5(h5: H5Module, root: H5Group, model: tfl.LayersModel, file: string): KerasWeightRef[] {
  const mw = root.get('model_weights');
  if (!isGroup(h5, mw)) {
    throw new UserError('has no "model_weights" group.', {
      file,
      field: 'model_weights',
      fix: 'save the whole model with Keras: `model.save("model.h5")`.',
    });
  }
  const layerNames = stringListAttr(mw, 'layer_names');
  if (!layerNames) {
    throw new UserError(
      'has no "layer_names" attribute on "model_weights", so its weights cannot be matched to layers.',
      {
        file,
        field: 'model_weights.layer_names',
        fix: 'save the whole model with Keras: `model.save("model.h5")`.',
      },
    );
  }
  const stored = layerNames
    .map((name) => {
      const g = mw.get(name);
      const weightNames = isGroup(h5, g) ? (stringListAttr(g, 'weight_names') ?? []) : [];
      return { name, group: g, weightNames };
    })
    .filter((l) => l.weightNames.length > 0);
  const layers = model.layers.filter((l) => l.weights.length > 0);
  const byName = layers.every((l) => stored.some((s) => s.name === l.name));
  if (!byName && stored.length !== layers.length) {
    const missing = layers.find((l) => !stored.some((s) => s.name === l.name))!;
    throw new UserError(
      `layer '${missing.name}' (${missing.getClassName()}) ` +
        'has weights in the model config but none in "model_weights" ' +
        `(${stored.length} stored layers with weights, ${layers.length} ` +
        'in the config).',
      {
        file,
        field: `model_weights/${missing.name}`,
        fix: 'the file is incomplete or its weights belong to another model: save the model again with Keras.',
      },
    );
  }
  const refs: KerasWeightRef[] = [];
  layers.forEach((layer, i) => {
    const s = byName ? stored.find((x) => x.name === layer.name)! : stored[i];
    const g = s.group as H5Group;
    if (s.weightNames.length !== layer.weights.length) {
      throw new UserError(
        `layer '${layer.name}' (${layer.getClassName()}) ` +
          `needs ${layer.weights.length} weight arrays, ` +
          `but "model_weights/${s.name}" lists ${s.weightNames.length} ` +
          `(${s.weightNames.join(', ')}).`,
        {
          file,
          field: `model_weights/${s.name}.weight_names`,
          fix: 'the weights belong to another architecture: save the model again with Keras.',
        },
      );
    }
    layer.weights.forEach((w, k) => {
      const ds = g.get(s.weightNames[k]);
      if (!isDataset(h5, ds)) {
        throw new UserError(
          `weight '${s.weightNames[k]}' of layer '${layer.name}' is listed in "weight_names" but is not in the file.`,
          {
            file,
            field: `model_weights/${s.name}/${s.weightNames[k]}`,
            fix: 'the file is damaged: save the model again with Keras.',
          },
        );
      }
      const shape = ds.shape ?? [];
      if (!sameShape(w.shape, shape)) {
        throw new UserError(
          `weight '${s.weightNames[k]}' of layer '${layer.name}' ` +
            `(${layer.getClassName()}) has shape ${shapeText(shape)}, ` +
            `but the layer needs ${shapeText(w.shape)}.`,
          {
            file,
            field: `model_weights/${s.name}/${s.weightNames[k]}`,
            fix: 'the weights belong to another architecture: save the model again with Keras.',
          },
        );
      }
      refs.push({ name: w.originalName, dataset: ds.path, shape });
    });
  });
  return refs;
}

/** .keras: `layers/<snake_case(class)>[_n]/vars/<i>`, nested models under their own `layers/`. */
function pairV3(h5: H5Module, root: H5Group, model: tfl.LayersModel, file: string): KerasWeightRef[] {
  const refs: KerasWeightRef[] = [];
  const walk = (layers: tfl.layers.Layer[], prefix: string) => {
    const used = new Map<string, number>();
    for (const layer of layers) {
      const isModel = layer instanceof tfl.LayersModel;
      const className = isModel
        ? layer instanceof tfl.Sequential
          ? 'Sequential'
          : 'Functional'
        : layer.getClassName();
      const base = snakeCase(className);
      const n = used.has(base) ? used.get(base)! + 1 : 0;
      used.set(base, n);
      const candidates = [`${prefix}/${n === 0 ? base : `${base}_${n}`}`, `${prefix}/${layer.name}`];
      if (isModel) {
        const p = candidates.find((c) => isGroup(h5, root.get(`${c}/layers`))) ?? candidates[0];
        walk((layer as tfl.LayersModel).layers, `${p}/layers`);
        continue;
      }
      if (layer.weights.length === 0) continue;
      const fits = (c: string) => {
        const vars = root.get(`${c}/vars`);
        return (
          isGroup(h5, vars) &&
          layer.weights.every((w, i) => {
            const ds = vars.get(String(i));
            return isDataset(h5, ds) && sameShape(w.shape, ds.shape ?? []);
          })
        );
      };
      const found = candidates.find(fits);
      if (!found) {
        throw new UserError(
          `layer '${layer.name}' (${layer.getClassName()}) ` +
            `has no matching weights in ${WEIGHTS_MEMBER} (looked ` +
            `for ${candidates.map((c) => `${c}/vars/0..${layer.weights.length - 1}`).join(' and ')} ` +
            `with shapes ${layer.weights.map((w) => shapeText(w.shape)).join(', ')}).`,
          {
            file,
            field: `${WEIGHTS_MEMBER}:${candidates[0]}`,
            fix:
              'the weights belong to another architecture or the file is damaged: ' +
              'save the model again with Keras 3.',
          },
        );
      }
      layer.weights.forEach((w, i) =>
        refs.push({ name: w.originalName, dataset: `${found}/vars/${i}`, shape: w.shape as number[] }),
      );
    }
  };
  walk(model.layers, 'layers');
  return refs;
}

/**
 * The Keras file's weights as tfjs weight specs and data (float32), for `tf.io.fromMemory`, and the
 * source record to write a pruned model back in the same format. Call only after the config passed
 * the loader's checks (it builds the architecture).
 */
export async function kerasWeights(
  k: KerasFile,
): Promise<{ specs: WeightSpecOut[]; data: Buffer; source: KerasSource }> {
  const modelTopology = k.json.modelTopology as Json;
  // Built within the parameter limit: a config declaring huge layers stops before allocating them.
  const skeleton = await buildWithinLimit(k.path, () => tfl.models.modelFromJSON({ modelTopology } as never));
  try {
    const h5bytes = k.format === 'keras-v3' ? k.members!.find((m) => m.name === WEIGHTS_MEMBER)!.data : k.bytes;
    if (!isHdf5(h5bytes)) {
      throw new UserError(`its ${WEIGHTS_MEMBER} is not an HDF5 file.`, {
        file: k.path,
        field: WEIGHTS_MEMBER,
        fix: 'save the model again with Keras 3.',
      });
    }
    const where = { file: k.path, inside: k.format === 'keras-v3' ? `${WEIGHTS_MEMBER}:` : '' };
    const result = await withH5(h5bytes, where, (h5, root) => {
      const refs = k.format === 'keras-h5' ? pairH5(h5, root, skeleton, k.path) : pairV3(h5, root, skeleton, k.path);
      // refused now, not after a session, when the pruned model could not be written from it
      readTree(h5, root, new Set(refs.map((r) => absolute(r.dataset))), where, false);
      const chunks = refs.map((r) => {
        const ds = root.get(r.dataset);
        if (!isDataset(h5, ds)) throw new Error(`dataset ${r.dataset} vanished`);
        const meta = ds.metadata;
        if (meta.type !== h5.Module.H5T_class_t.H5T_FLOAT.value) {
          throw new UserError(`weight '${r.dataset}' is not stored as floating point numbers.`, {
            file: k.path,
            field: r.dataset,
            fix: 'save the model with float weights (not quantized).',
          });
        }
        const v = readFloat32(ds);
        return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      });
      return { refs, data: Buffer.concat(chunks) };
    });
    const specs: WeightSpecOut[] = result.refs.map((r) => ({ name: r.name, shape: r.shape, dtype: 'float32' }));
    return {
      specs,
      data: result.data,
      source: { format: k.format, path: k.path, bytes: k.bytes, members: k.members, weights: result.refs },
    };
  } finally {
    skeleton.dispose();
  }
}

/**
 * The pruned model as a fresh Keras file of the source's format: a new HDF5 file with the source's
 * groups, attributes and datasets and `weights` (tfjs weight name → values) in the weight datasets;
 * for `.keras`, a new zip of config.json, metadata.json and that file. Returns the file name and bytes.
 */
export async function writeKerasFile(
  source: KerasSource,
  weights: Map<string, Float32Array>,
): Promise<{ name: string; data: Buffer }> {
  const h5bytes =
    source.format === 'keras-v3' ? source.members!.find((m) => m.name === WEIGHTS_MEMBER)!.data : source.bytes;
  const where = { file: source.path, inside: source.format === 'keras-v3' ? `${WEIGHTS_MEMBER}:` : '' };
  const byDataset = new Map<string, Float32Array>();
  for (const ref of source.weights) {
    const values = weights.get(ref.name);
    const size = ref.shape.reduce((a, d) => a * d, 1);
    if (!values || values.length !== size)
      throw new Error(`no values of size ${size} for weight ${ref.name} to write to ${ref.dataset}`);
    byDataset.set(absolute(ref.dataset), values);
  }
  const tree = await withH5(h5bytes, where, (h5, root) => readTree(h5, root, new Set(byDataset.keys()), where));
  const bytes = await freshH5((f) => writeTree(f, tree, byDataset));
  if (source.format === 'keras-h5') return { name: KERAS_FILE_NAME['keras-h5'], data: bytes };
  const members = source
    .members!.filter((m) => KERAS_MEMBERS.includes(m.name))
    .map((m) => (m.name === WEIGHTS_MEMBER ? { ...m, data: bytes } : m));
  return { name: KERAS_FILE_NAME['keras-v3'], data: writeZip(members) };
}
