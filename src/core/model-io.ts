/**
 * TensorFlow.js Layers models on disk: `model.json` + weight shards.
 *
 * Loading checks what a user can get wrong before tfjs sees the file (a graph model, a missing or
 * short shard, a layer class tfjs does not have) and says which file and field and what to do.
 * Saving keeps the user's own topology JSON (converter or tfjs-native style) and replaces only the
 * weights, written as one folder that appears whole or not at all, never over the input.
 *
 * For training, a classifier is split into logits and its output activation: the engine trains the
 * logit model (stable cross-entropy) and applies sigmoid/softmax itself to get probabilities.
 */
import * as path from 'path';
import * as zlib from 'zlib';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { ModelRecord, ModelSize, Task } from '../protocol/results';
import { UserError } from './errors';
import { sha256, writeFolderAtomic } from './atomic';
import { buildWithinLimit, maxParameters, tooLargeError } from './model-limits';
import { readModelJson, readWeightGroup, type ManifestGroup, type WeightSpec } from './model-files';
import { kerasFormatOf, kerasWeights, readKerasFile, writeKerasFile, type KerasSource } from './keras/io';

type Json = Record<string, unknown>;

/** How the model turns its last layer's output into class probabilities. */
export type OutputKind = 'softmax' | 'sigmoid' | 'logits';

/** The file format a model came in, and is saved back in (beside model.json). */
export type ModelFormat = ModelRecord['format'];

export interface LoadedModel {
  /** The model.json (or Keras .h5 / .keras) path as given. */
  path: string;
  format: ModelFormat;
  sha256: string;
  /**
   * The parsed model.json (for Keras files: the tfjs form of its config), kept to save pruned weights under
   * the same topology.
   */
  json: Json;
  /** Keras files: what is needed to write a pruned model back as .h5 / .keras (saveModel finds it from `json` too). */
  keras?: KerasSource;
  /** The model as stored (outputs probabilities). */
  model: tfl.LayersModel;
  inputShape: number[];
  outputUnits: number;
  task: Task;
  /** Number of classes: 2 for a single sigmoid output. */
  numClasses: number;
  outputKind: OutputKind;
  /** Name of the layer whose activation is the output activation. */
  outputLayer: string;
  /** Bytes of the weights as stored (all shards). */
  weightBytes: number;
}

const PRUNABLE_CLASSES = new Set([
  'Dense',
  'Conv1D',
  'Conv2D',
  'Conv3D',
  'Conv2DTranspose',
  'DepthwiseConv2D',
  'SeparableConv2D',
]);
const CONTAINER_CLASSES = new Set(['Sequential', 'Model', 'Functional']);

/** The Keras model config inside a topology: converter style nests it under `model_config`. */
function modelConfigOf(topology: Json): Json {
  return ((topology.model_config as Json | undefined) ?? topology) as Json;
}

function layersOf(config: Json): Json[] {
  const inner = config.config as unknown;
  if (Array.isArray(inner)) return inner as Json[]; // very old Sequential: config is the layer list
  const layers = (inner as Json | undefined)?.layers;
  return Array.isArray(layers) ? (layers as Json[]) : [];
}

/** Every (layer name, class) in the topology, nested models included. */
function allLayers(
  config: Json,
  out: Array<{ name: string; className: string }> = [],
): Array<{ name: string; className: string }> {
  for (const layer of layersOf(config)) {
    const className = String(layer.class_name);
    const name = String((layer.config as Json | undefined)?.name ?? layer.name ?? '?');
    out.push({ name, className });
    if (CONTAINER_CLASSES.has(className)) allLayers(layer, out);
  }
  return out;
}

function knownLayerClasses(): Set<string> {
  return new Set(Object.keys(tf.serialization.SerializationMap.getMap().classNameMap));
}

/**
 * Keras sources by the `json` object of the LoadedModel they came with, so `saveModel(m, dir, loaded.json)`
 * writes Keras too.
 */
const kerasSources = new WeakMap<Json, KerasSource>();

/**
 * Loads a classifier: a TensorFlow.js Layers `model.json`, or a Keras `.h5` / `.keras` file (read
 * with h5wasm and converted in memory, then checked and built on the same path as model.json).
 */
export async function loadModel(modelPath: string): Promise<LoadedModel> {
  if (kerasFormatOf(modelPath)) {
    const keras = await readKerasFile(modelPath);
    checkTopology(keras.json, modelPath);
    const { specs, data, source } = await kerasWeights(keras);
    const loaded = await buildLoaded(modelPath, keras.json, specs, data, sha256(keras.bytes), keras.format);
    loaded.keras = source;
    kerasSources.set(keras.json, source);
    return loaded;
  }
  const json = readModelJson(modelPath);
  const dir = path.dirname(modelPath);
  checkTopology(json, modelPath); // refuses graph models and unknown layers before any weight is read

  const manifest = manifestOf(json, modelPath);
  const buffers: Buffer[] = [];
  const specs: WeightSpec[] = [];
  const hash = [sha256(JSON.stringify(json))];
  manifest.forEach((group, g) => {
    const data = readWeightGroup(dir, group, g, modelPath);
    buffers.push(data);
    hash.push(sha256(data));
    specs.push(...(group.weights ?? []));
  });
  const weightData = Buffer.concat(buffers);
  return buildLoaded(modelPath, json, specs, weightData, sha256(hash.join('')), 'tfjs-layers');
}

/** The weights manifest of a model.json, refused past the parameter limit before any weight file is read. */
function manifestOf(json: Json, modelPath: string): ManifestGroup[] {
  const manifest = json.weightsManifest as ManifestGroup[] | undefined;
  if (!Array.isArray(manifest)) {
    throw new UserError('has no "weightsManifest" list, so its weights cannot be found.', {
      file: modelPath,
      field: 'weightsManifest',
      fix: 'save the model with its weights (model.save() or tensorflowjs_converter write both).',
    });
  }
  checkManifestSize(manifest, modelPath);
  return manifest;
}

/** The parameters a manifest declares, refused past the limit before any weight file is read. */
function checkManifestSize(manifest: ManifestGroup[], modelPath: string): void {
  const limit = maxParameters();
  let count = 0;
  manifest.forEach((group, g) => {
    for (const spec of group.weights ?? []) {
      const shape = Array.isArray(spec.shape) ? spec.shape : [];
      count += shape.reduce((a, d) => a * (Number.isFinite(d) && d > 0 ? d : 1), 1);
      if (count > limit) throw tooLargeError(modelPath, count, limit, `weightsManifest[${g}] ${spec.name}`);
    }
  });
}

/** Refuses what Fair Prune cannot load (graph models, Lambda and unknown layer classes) before tfjs sees it. */
function checkTopology(json: Json, modelPath: string): Json {
  const topology = json.modelTopology as Json | undefined;
  if (json.format === 'graph-model' || (topology && 'node' in topology)) {
    throw new UserError(
      'is a TensorFlow.js graph model; Fair Prune needs a Layers model, whose weights it can fine-tune.',
      {
        file: modelPath,
        field: 'format',
        fix:
          'convert the Keras model with `tensorflowjs_converter ' +
          '--input_format keras --output_format tfjs_layers_model`, ' +
          'or save it from TensorFlow.js with `model.save()`.',
      },
    );
  }
  if (!topology || typeof topology !== 'object') {
    throw new UserError('has no "modelTopology": it is not a TensorFlow.js Layers model.', {
      file: modelPath,
      field: 'modelTopology',
      fix: 'give the model.json that `model.save()` or tensorflowjs_converter (tfjs_layers_model) wrote.',
    });
  }
  const config = modelConfigOf(topology);
  if (!CONTAINER_CLASSES.has(String(config.class_name))) {
    throw new UserError(
      `has a model of class '${String(config.class_name)}'; expected Sequential or a functional Model.`,
      {
        file: modelPath,
        field: 'modelTopology.class_name',
        fix: 'save the model with Keras or TensorFlow.js as a whole model.',
      },
    );
  }
  const known = knownLayerClasses();
  for (const { name, className } of allLayers(config)) {
    if (className === 'Lambda') {
      throw new UserError(
        `layer '${name}' is a Lambda layer: its Python code cannot run in ` +
          'TensorFlow.js, and Fair Prune never runs code stored in a model file.',
        {
          file: modelPath,
          field: `layer ${name} (${className})`,
          fix:
            'rebuild the model without Lambda layers (use built-in layers), ' +
            'retrain or copy the weights, and export it again.',
        },
      );
    }
    if (!known.has(className) && !CONTAINER_CLASSES.has(className)) {
      throw new UserError(`layer '${name}' has class '${className}', which TensorFlow.js does not know.`, {
        file: modelPath,
        field: `layer ${name} (${className})`,
        fix: 'replace the custom layer with built-in Keras layers before exporting, or remove it.',
      });
    }
  }
  return topology;
}

/** Builds the model from tfjs artifacts and checks it is a one-input, one-output classifier. */
async function buildLoaded(
  modelPath: string,
  json: Json,
  specs: WeightSpec[],
  weightData: Buffer,
  hash: string,
  format: ModelFormat,
): Promise<LoadedModel> {
  const topology = json.modelTopology as Json;
  let model: tfl.LayersModel;
  try {
    model = await buildWithinLimit(modelPath, () =>
      tfl.loadLayersModel(
        tf.io.fromMemory({
          modelTopology: topology,
          weightSpecs: specs as tf.io.WeightsManifestEntry[],
          weightData: weightData.buffer.slice(weightData.byteOffset, weightData.byteOffset + weightData.byteLength),
        }),
      ),
    );
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`TensorFlow.js could not build this model: ${(e as Error).message}`, {
      file: modelPath,
      field: 'modelTopology',
      fix:
        'check that the model was saved by Keras or TensorFlow.js ' +
        'as a Layers model and that its weight files belong to it.',
    });
  }

  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new UserError(
      `has ${model.inputs.length} inputs and ${model.outputs.length} outputs; ` +
        'Fair Prune prunes classifiers with one input and one output.',
      {
        file: modelPath,
        field: 'modelTopology',
        fix: 'export a single-input, single-output classifier.',
      },
    );
  }
  const inputShape = model.inputs[0].shape.slice(1) as number[];
  const outShape = model.outputs[0].shape;
  if (outShape.length !== 2 || inputShape.some((d) => d == null)) {
    throw new UserError(
      `has output shape [${outShape.join(', ')}] and input ` +
        `shape [${inputShape.join(', ')}]; ` +
        'Fair Prune needs a fixed input shape and a [batch, classes] output.',
      {
        file: modelPath,
        field: 'modelTopology',
        fix: 'give the input layer a fixed shape and end the model with a Dense classifier layer.',
      },
    );
  }
  const outputUnits = outShape[1] as number;
  const outLayer = outputActivationLayer(model.outputs[0].sourceLayer);
  const outputKind = outputKindOf(outLayer, outputUnits, modelPath);
  const task: Task = outputUnits === 1 ? 'binary' : 'multiclass';
  return {
    path: modelPath,
    format,
    sha256: hash,
    json,
    model,
    inputShape,
    outputUnits,
    task,
    numClasses: outputUnits === 1 ? 2 : outputUnits,
    outputKind,
    outputLayer: outLayer.name,
    weightBytes: weightData.length,
  };
}

/**
 * The layer whose activation is the model's output activation: the output layer, or the layer before the
 * Reshape and Flatten layers that end the model (Keras 2.2.4's MobileNet ends with its softmax, then a Reshape
 * to [classes]; read as the output, its probabilities would be taken for logits).
 */
function outputActivationLayer(output: tfl.layers.Layer): tfl.layers.Layer {
  let layer = output;
  for (;;) {
    const inbound = (layer as unknown as { inboundNodes: { inboundLayers: tfl.layers.Layer[] }[] }).inboundNodes;
    if (!['Reshape', 'Flatten'].includes(layer.getClassName()) || inbound.length !== 1) return layer;
    const before = inbound[0].inboundLayers;
    if (before.length !== 1 || before[0].getClassName() === 'InputLayer') return layer;
    layer = before[0];
  }
}

function outputKindOf(layer: tfl.layers.Layer, units: number, file: string): OutputKind {
  const className = layer.getClassName();
  const cfg = layer.getConfig() as Json;
  const activation = className === 'Softmax' ? 'softmax' : String(cfg.activation ?? 'linear');
  if (activation === 'softmax') {
    if (units < 2)
      throw new UserError(`output layer '${layer.name}' is a softmax over 1 unit, which is always 1.`, {
        file,
        field: `layer ${layer.name}`,
        fix: 'use a sigmoid for one output, or one unit per class.',
      });
    return 'softmax';
  }
  if (activation === 'sigmoid') {
    if (units !== 1) {
      throw new UserError(
        `output layer '${layer.name}' has ${units} sigmoid units: ` +
          'a multi-label model, which Fair Prune does not prune yet.',
        {
          file,
          field: `layer ${layer.name}`,
          fix: 'give a single-label classifier (softmax over classes, or one sigmoid unit).',
        },
      );
    }
    return 'sigmoid';
  }
  if (activation === 'linear' && units >= 2) return 'logits';
  throw new UserError(
    `output layer '${layer.name}' has ${units} unit(s) ` +
      `with activation '${activation}': ` +
      'this looks like a regression model, and Fair Prune prunes classifiers.',
    {
      file,
      field: `layer ${layer.name}`,
      fix: 'give a classifier whose last layer has a softmax (K classes) or one sigmoid unit (binary).',
    },
  );
}

/**
 * The same network without its output activation: it returns logits, which the losses need for a
 * numerically stable cross-entropy. Its weights start as a copy of `loaded.model`'s.
 */
export async function makeLogitModel(loaded: LoadedModel): Promise<tfl.LayersModel> {
  const topology = loaded.model.toJSON(null, false) as Json;
  if (loaded.outputKind !== 'logits') {
    const found = setLinear(topology, loaded.outputLayer);
    if (!found) throw new Error(`output layer ${loaded.outputLayer} not found in the model config`);
  }
  const logits = await tfl.models.modelFromJSON({ modelTopology: topology } as never);
  logits.setWeights(loaded.model.getWeights());
  return logits;
}

function setLinear(config: Json, layerName: string): boolean {
  const layers = layersOf(config);
  for (let i = 0; i < layers.length; i++) {
    const layer = layers[i];
    const cfg = layer.config as Json;
    if (cfg?.name === layerName) {
      if (layer.class_name === 'Softmax') {
        layers[i] = {
          ...layer,
          class_name: 'Activation',
          config: { name: cfg.name, trainable: cfg.trainable ?? true, dtype: cfg.dtype, activation: 'linear' },
        };
      } else {
        cfg.activation = 'linear';
      }
      return true;
    }
    if (CONTAINER_CLASSES.has(String(layer.class_name)) && setLinear(layer, layerName)) return true;
  }
  return false;
}

/** Class probabilities [n, width] from logits (width 1 = p(y=1) for binary). */
export function probabilitiesFromLogits(task: Task, logits: tf.Tensor2D): tf.Tensor2D {
  return task === 'binary' ? tf.sigmoid(logits) : tf.softmax(logits);
}

export interface PrunableKernel {
  layer: string;
  className: string;
  variable: tf.Variable;
  shape: number[];
  size: number;
}

/** The weights pruning acts on: the kernels of Dense and convolution layers (biases are kept). */
export function prunableKernels(model: tfl.LayersModel): PrunableKernel[] {
  const out: PrunableKernel[] = [];
  const visit = (layers: tfl.layers.Layer[]) => {
    for (const layer of layers) {
      const className = layer.getClassName();
      if (layer instanceof tfl.LayersModel) {
        visit(layer.layers);
        continue;
      }
      if (!PRUNABLE_CLASSES.has(className)) continue;
      for (const w of layer.trainableWeights) {
        if (/kernel$/.test(w.originalName)) {
          // LayerVariable keeps its tf.Variable private; `read()` returns that variable itself.
          const variable = w.read() as tf.Variable;
          out.push({ layer: layer.name, className, variable, shape: w.shape as number[], size: variable.size });
        }
      }
    }
  };
  visit(model.layers);
  return out;
}

function countNonZero(values: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (values[i] !== 0) n++;
  return n;
}

/** Parameters, non-zero parameters and (gzip) weight bytes of a model, as it would be saved. */
export function modelSize(model: tfl.LayersModel): ModelSize & { weightData: Buffer } {
  let parameters = 0;
  let nonZero = 0;
  const chunks: Buffer[] = [];
  for (const w of model.weights) {
    const values = w.read().dataSync();
    parameters += values.length;
    nonZero += countNonZero(values);
    chunks.push(Buffer.from(values.buffer, values.byteOffset, values.byteLength));
  }
  const prunableParameters = prunableKernels(model).reduce((a, k) => a + k.size, 0);
  const weightData = Buffer.concat(chunks);
  return {
    parameters,
    prunableParameters,
    nonZeroParameters: nonZero,
    weightBytes: weightData.length,
    gzipBytes: zlib.gzipSync(weightData, { level: 9 }).length,
    weightData,
  };
}

export function modelRecord(loaded: LoadedModel, size: ModelSize): ModelRecord {
  return {
    path: loaded.path,
    format: loaded.format,
    sha256: loaded.sha256,
    inputShape: loaded.inputShape,
    outputUnits: loaded.outputUnits,
    task: loaded.task,
    size,
  };
}

/**
 * Saves `weightsFrom`'s weights under `topologyJson`'s model.json (the user's own topology, output
 * activation included) into the new folder `dir`, atomically. `extraFiles` land in the same folder.
 * `dir` must not exist, so an input model can never be overwritten.
 *
 * A model loaded from Keras (`keras`, or found from `topologyJson` when it is a LoadedModel's `json`)
 * is also written in its own format in the same folder: `model.h5` or `model.keras`, a fresh file
 * holding the original's groups and attributes with the pruned weight values (see src/core/keras/io.ts).
 */
export async function saveModel(
  weightsFrom: tfl.LayersModel,
  dir: string,
  topologyJson: Json,
  extraFiles: Record<string, string | Uint8Array> = {},
  keras: KerasSource | undefined = kerasSources.get(topologyJson),
): Promise<{ weightBytes: number }> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await weightsFrom.save({
    save: async (a: tf.io.ModelArtifacts) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    },
  });
  if (!artifacts?.weightData || !artifacts.weightSpecs) throw new Error('tfjs returned no weights to save');
  const weightData = Buffer.from(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
  const modelJson = {
    ...topologyJson,
    format: 'layers-model',
    generatedBy: topologyJson.generatedBy ?? artifacts.generatedBy,
    weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
  };
  const files: Record<string, string | Uint8Array> = {
    'model.json': JSON.stringify(modelJson),
    'weights.bin': weightData,
  };
  if (keras) {
    const values = new Map(
      weightsFrom.weights.map((w) => [w.originalName, w.read().dataSync() as Float32Array] as const),
    );
    const k = await writeKerasFile(keras, values);
    files[k.name] = k.data;
  }
  writeFolderAtomic(dir, { ...files, ...extraFiles });
  return { weightBytes: weightData.length };
}

/** A fresh model.json object for a model the engine built itself (`fairprune train`). */
export function topologyOf(model: tfl.LayersModel): Json {
  return {
    modelTopology: model.toJSON(null, false) as Json,
    format: 'layers-model',
    generatedBy: 'Fair Prune',
    convertedBy: null,
  };
}
