/**
 * A saved TensorFlow.js Layers model's files as the loader reads them, without TensorFlow.js (the
 * editor's panels use this too): model.json's size is checked before it is read, every weight path
 * must lie inside the model's folder, and the weight files' sizes are checked against the manifest
 * before they are read.
 */
import * as fs from 'fs';
import * as path from 'path';
import { UserError } from './errors';

type Json = Record<string, unknown>;

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string };
}

export interface ManifestGroup {
  paths: string[];
  weights: WeightSpec[];
}

/** A model.json larger than this is not a Layers model's topology and manifest. */
const MAX_MODEL_JSON_BYTES = 64 * 2 ** 20;

export function readModelJson(file: string): Json {
  if (!fs.existsSync(file)) {
    throw new UserError('no such file.', {
      file,
      fix: 'give the path of a TensorFlow.js Layers model.json (with its weight files beside it).',
    });
  }
  const stat = fs.statSync(file);
  if (stat.isDirectory()) {
    const inside = path.join(file, 'model.json');
    throw new UserError(`is a folder${fs.existsSync(inside) ? '' : ' without a model.json in it'}, not a model file.`, {
      file,
      field: '--model',
      fix: fs.existsSync(inside)
        ? `give the model file itself: ${inside}`
        : 'give the path of a model.json, .h5 or .keras file.',
    });
  }
  if (!stat.isFile() || stat.size > MAX_MODEL_JSON_BYTES) {
    throw new UserError(
      stat.isFile()
        ? `is ${stat.size.toLocaleString('en')} bytes, larger than a model.json can be.`
        : 'is not a regular file.',
      {
        file,
        fix: 'give the model.json that TensorFlow.js or tensorflowjs_converter wrote.',
      },
    );
  }
  const text = fs.readFileSync(file, 'utf8');
  try {
    const v = JSON.parse(text);
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Json;
  } catch (e) {
    throw new UserError(`is not valid JSON (${(e as Error).message}).`, {
      file,
      fix: 'give the model.json that TensorFlow.js or tensorflowjs_converter wrote.',
    });
  }
}

export function bytesPerElement(spec: WeightSpec): number | undefined {
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  switch (dtype) {
    case 'float32':
    case 'int32':
      return 4;
    case 'uint16':
    case 'float16':
      return 2;
    case 'uint8':
    case 'bool':
      return 1;
    default:
      return undefined;
  }
}

/**
 * A saved tfjs model's model.json and the bytes of each manifest group's weight files, read with the
 * loader's checks (model.json's size; weight paths inside the folder; the files' sizes against the
 * manifest, before reading). No model is built: for the editor's panels, which read point folders a
 * results.json names.
 */
export function readSavedWeights(
  modelPath: string,
  maxWeightBytes: number,
): { json: Json; manifest: ManifestGroup[]; groups: Buffer[] } {
  const json = readModelJson(modelPath);
  const manifest = json.weightsManifest as ManifestGroup[] | undefined;
  if (!Array.isArray(manifest)) {
    throw new UserError('has no "weightsManifest" list, so its weights cannot be found.', {
      file: modelPath,
      field: 'weightsManifest',
      fix: 'run the session again; Fair Prune writes model.json with its weights.',
    });
  }
  let declared = 0;
  manifest.forEach((group, g) => {
    for (const spec of group.weights ?? [])
      declared +=
        (bytesPerElement(spec) ?? Infinity) *
        (Array.isArray(spec.shape) ? spec.shape.reduce((a, d) => a * d, 1) : Infinity);
    if (!(declared <= maxWeightBytes)) {
      throw new UserError(
        `its weights (up to group ${g}) declare more than ` +
          `the ${maxWeightBytes.toLocaleString('en')} bytes that are read here.`,
        {
          file: modelPath,
          field: `weightsManifest[${g}]`,
          fix: 'run the session again; this model.json was not written by Fair Prune.',
        },
      );
    }
  });
  return {
    json,
    manifest,
    groups: manifest.map((group, g) => readWeightGroup(path.dirname(modelPath), group, g, modelPath)),
  };
}

/**
 * The bytes of one manifest group's weight files, as the loader reads them: every path resolved inside
 * the model's folder, the files' sizes checked against what the manifest declares before reading.
 */
export function readWeightGroup(dir: string, group: ManifestGroup, g: number, modelPath: string): Buffer {
  let expected = 0;
  let checkable = true;
  for (const spec of group.weights ?? []) {
    const b = bytesPerElement(spec);
    if (b === undefined) checkable = false;
    else expected += b * spec.shape.reduce((a, d) => a * d, 1);
  }
  const shardPaths = (group.paths ?? []).map((p) => {
    const shardPath = weightFileInside(dir, p, modelPath, `weightsManifest[${g}].paths`);
    if (!fs.existsSync(shardPath)) {
      throw new UserError(`weight file '${p}' (weightsManifest[${g}].paths) is missing.`, {
        file: shardPath,
        field: `weightsManifest[${g}].paths`,
        fix: `put '${p}' beside ${path.basename(modelPath)}; it is written together with the model.`,
      });
    }
    return shardPath;
  });
  // sizes before reading: a weight file far larger than the manifest says is not read at all
  const onDisk = shardPaths.reduce((a, f) => a + fs.statSync(f).size, 0);
  const data =
    checkable && onDisk !== expected
      ? undefined
      : Buffer.concat(shardPaths.map((f, i) => readShard(f, group.paths[i], modelPath, `weightsManifest[${g}].paths`)));
  if (!data || (checkable && expected !== data.length)) {
    throw new UserError(
      `the weight files of group ${g} (${(group.paths ?? []).join(', ')}) ` +
        `hold ${data?.length ?? onDisk} bytes, but the manifest's weights ` +
        `need ${expected}: a file is truncated or belongs to another model.`,
      {
        file: path.join(dir, (group.paths ?? ['?'])[0]),
        field: `weightsManifest[${g}]`,
        fix: 'copy the weight files again from where the model was saved; they must match this model.json.',
      },
    );
  }
  return data;
}

/**
 * A weight file named by the manifest, resolved inside the model's folder: a relative path without
 * `..`, which after following symlinks still lies inside that folder. Otherwise a UserError naming it.
 */
export function weightFileInside(dir: string, p: unknown, modelPath: string, field: string): string {
  const refuse = (why: string): never => {
    throw new UserError(`weight file '${String(p)}' ${why}; weight files must lie in the model's folder.`, {
      file: modelPath,
      field,
      fix: `put the weight files beside ${path.basename(modelPath)} and list them by name (e.g. "weights.bin").`,
    });
  };
  if (typeof p !== 'string' || p === '' || p.includes('\0')) return refuse('is not a file name');
  if (path.isAbsolute(p) || path.win32.isAbsolute(p)) return refuse('is an absolute path');
  if (p.split(/[\\/]/).includes('..')) return refuse("leaves the model's folder ('..')");
  const resolved = path.resolve(dir, p);
  if (fs.existsSync(resolved)) {
    const realDir = fs.realpathSync(dir);
    const real = fs.realpathSync(resolved);
    if (real !== realDir && !real.startsWith(realDir + path.sep))
      return refuse(`resolves to '${real}', outside the model's folder`);
  }
  return resolved;
}

function readShard(shardPath: string, p: string, modelPath: string, field: string): Buffer {
  if (!fs.statSync(shardPath).isFile()) {
    throw new UserError(`weight file '${p}' is not a regular file.`, {
      file: modelPath,
      field,
      fix: 'list the weight files that model.save() wrote.',
    });
  }
  return fs.readFileSync(shardPath);
}
