/**
 * `fairprune train`: a small dense baseline from a data set — an MLP for tabular features, a small
 * CNN for images — trained with cross-entropy by the same loop that fine-tunes pruned models, and
 * saved with the preprocessing it was trained with, so later sessions feed it the same inputs.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { BackendInfo, BackendPreference, Evaluation, TrainingSummary } from '../protocol/results';
import { RUN_DEFAULTS } from '../protocol/defaults';
import { initBackend } from './backend';
import { loadDatasetForTraining, PREPROCESSING_FILE } from './data';
import type { LoadSpec } from './data';
import { UserError } from './errors';
import { lossTargets, outputWidth } from './losses';
import { evaluate, evaluationInputOf } from './metrics';
import { saveModel, topologyOf } from './model-io';
import { toClassProbabilities } from './session';
import { predictProbabilities, train } from './train';
import type { TrainProgress } from './train';

export interface BaselineRequest {
  data: LoadSpec;
  /** Folder to create for the model (must not exist). */
  outDir: string;
  /** Image data: the model input [height, width, channels]. */
  imageShape?: number[];
  epochs: number;
  batchSize: number;
  learningRate: number;
  patience: number;
  backend: BackendPreference;
}

export interface BaselineResult {
  modelPath: string;
  backend: BackendInfo;
  training: TrainingSummary;
  test: Evaluation;
  parameters: number;
}

/** The baseline architecture; `finalActivation` 'linear' gives the logit twin used for training. */
export function buildBaseline(
  sampleShape: number[],
  numClasses: number,
  finalActivation: 'linear' | 'softmax' | 'sigmoid',
  seed: number,
): tfl.Sequential {
  const init = (k: number) => tfl.initializers.glorotUniform({ seed: seed + k });
  const units = numClasses === 2 ? 1 : numClasses;
  const model = tfl.sequential({ name: 'fairprune_baseline' });
  if (sampleShape.length === 3) {
    model.add(
      tfl.layers.conv2d({
        inputShape: sampleShape,
        filters: 16,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: init(1),
        name: 'conv1',
      }),
    );
    model.add(tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }));
    model.add(
      tfl.layers.conv2d({
        filters: 32,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: init(2),
        name: 'conv2',
      }),
    );
    model.add(tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool2' }));
    model.add(tfl.layers.flatten({ name: 'flatten' }));
    model.add(tfl.layers.dense({ units: 64, activation: 'relu', kernelInitializer: init(3), name: 'dense1' }));
  } else if (sampleShape.length === 1) {
    model.add(
      tfl.layers.dense({
        inputShape: sampleShape,
        units: 32,
        activation: 'relu',
        kernelInitializer: init(1),
        name: 'dense1',
      }),
    );
    model.add(tfl.layers.dense({ units: 16, activation: 'relu', kernelInitializer: init(2), name: 'dense2' }));
  } else {
    throw new Error(`no baseline architecture for samples of shape [${sampleShape.join(', ')}]`);
  }
  model.add(tfl.layers.dense({ units, activation: finalActivation, kernelInitializer: init(9), name: 'output' }));
  return model;
}

export async function trainBaseline(
  req: BaselineRequest,
  hooks: { log?: (m: string) => void; onProgress?: (p: TrainProgress) => void; signal?: AbortSignal } = {},
): Promise<BaselineResult> {
  const log = hooks.log ?? (() => {});
  if (fs.existsSync(req.outDir) && fs.readdirSync(req.outDir).length) {
    throw new UserError('already exists and is not empty; Fair Prune never writes over a model.', {
      file: req.outDir,
      field: '--out',
      fix: 'give a new folder for the trained model, or delete this one.',
    });
  }
  if (fs.existsSync(req.outDir)) fs.rmdirSync(req.outDir);
  const backend = await initBackend(req.backend, log);
  const { dataset, preprocessing } = await loadDatasetForTraining(req.data, { imageShape: req.imageShape });
  for (const w of dataset.record.warnings) log(`warning: ${w}`);
  const task = dataset.numClasses === 2 ? 'binary' : 'multiclass';
  const width = outputWidth(task, dataset.numClasses);
  const logits = buildBaseline(dataset.sampleShape, dataset.numClasses, 'linear', req.data.seed);
  const n = dataset.labels.length;
  const x = tf.tensor(dataset.x, [n, ...dataset.sampleShape]);
  const t = lossTargets('ce', task, dataset.labels, width, undefined, { minWeight: 1, gamma: 0 });
  const targets = tf.tensor2d(Float32Array.from(t.targets), [n, width]);
  const weights = tf.tensor1d(Float32Array.from(t.weights));
  try {
    log(
      `training a ${dataset.sampleShape.length === 3 ? 'CNN' : 'MLP'} ` +
        `baseline on ${dataset.indices('train').length} rows (${backend.name})`,
    );
    const training = await train(
      logits,
      {
        x,
        targets,
        weights,
        labels: dataset.labels,
        train: dataset.indices('train'),
        validation: dataset.indices('validation'),
      },
      {
        task,
        epochs: req.epochs,
        batchSize: req.batchSize,
        learningRate: req.learningRate,
        patience: req.patience,
        seed: req.data.seed,
        signal: hooks.signal,
        onProgress: hooks.onProgress,
      },
    );
    const testIdx = dataset.indices('test');
    const probs = toClassProbabilities(predictProbabilities(logits, task, x, testIdx), width, dataset.numClasses);
    const test = evaluate(probs, evaluationInputOf(dataset, testIdx, 'test'), {
      resamples: RUN_DEFAULTS.bootstrap,
      confidence: RUN_DEFAULTS.confidence,
      seed: req.data.seed,
    });
    const output = buildBaseline(
      dataset.sampleShape,
      dataset.numClasses,
      task === 'binary' ? 'sigmoid' : 'softmax',
      req.data.seed,
    );
    output.setWeights(logits.getWeights());
    await saveModel(logits, req.outDir, topologyOf(output), {
      [PREPROCESSING_FILE]: JSON.stringify(preprocessing, null, 1),
    });
    const parameters = output.countParams();
    output.dispose();
    return { modelPath: path.join(req.outDir, 'model.json'), backend, training, test, parameters };
  } finally {
    x.dispose();
    targets.dispose();
    weights.dispose();
    logits.dispose();
  }
}
