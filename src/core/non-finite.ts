/**
 * When a number stops being one (NaN, ±∞) in a fine-tuning step or in a model's predictions: whose fault
 * is it? A non-finite value is never blamed on the user without evidence. The same computation — the same
 * weights, the same samples — is run again on tfjs's pure-JavaScript cpu backend, the reference (the one
 * `--backend cpu` runs), and the verdict follows from what it gives:
 *
 *  - the reference gives numbers: an engine fault of the backend that ran (report it; `--backend cpu` is
 *    the way around it until it is fixed);
 *  - the reference gives a non-number too: the training diverged (or the model's outputs overflow) — a
 *    learning rate or data matter;
 *  - the weights or the samples themselves hold a non-number: the model file or the data;
 *  - the reference could not be run (it was the backend that ran, or it could not be switched to): said so.
 *
 * The check is cheap where the data is on the host (wasm's heap, the cpu backend): a scan of the step's
 * gradients. The replay on the cpu backend happens only once something is not finite, and then the run stops.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Task } from '../protocol/results';
import { UserError } from './errors';
import { weightedCrossEntropy } from './losses';
import { registerConv2DBackpropFilter } from './kernels/conv2d-backprop-filter';
import { heapView, wasmInternals } from './kernels/wasm-heap';
import { stockKernels } from './kernels/choice';

const REFERENCE = 'cpu';
const BACKEND_FIX = '--backend cpu (in VS Code, the fairPrune.backend setting "cpu")';

/** The index of the first value that is NaN or ±∞, or −1. */
export function firstNonFinite(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return i;
  return -1;
}

/**
 * Whether float32 values are all finite, checked every step on a heap step's gradients: x − x is +0 for a
 * finite x and NaN for ±∞ or NaN, and NaN stays in a sum, so four running sums (each of every fourth value) say
 * it with no branch per value; about a third faster than `firstNonFinite`'s loop, which also sees plain arrays.
 */
function allFiniteFloat32(v: Float32Array): boolean {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const n = v.length - (v.length % 4);
  let i = 0;
  for (; i < n; i += 4) {
    s0 += v[i] - v[i];
    s1 += v[i + 1] - v[i + 1];
    s2 += v[i + 2] - v[i + 2];
    s3 += v[i + 3] - v[i + 3];
  }
  for (; i < v.length; i++) s0 += v[i] - v[i];
  return s0 + s1 + s2 + s3 === 0;
}

/** Whether a tensor holds a non-finite value, read where it is (a view of wasm's heap) or else read out. */
function hasNonFinite(t: tf.Tensor): boolean {
  const heap = wasmInternals(tf.backend());
  if (heap && t.dtype === 'float32' && heap.dataIdMap.get(t.dataId))
    return !allFiniteFloat32(heapView(heap, t) as Float32Array);
  return firstNonFinite(t.dataSync() as ArrayLike<number>) >= 0;
}

/** The name of the first tensor of `tensors` holding a non-finite value, or null. */
export function nonFiniteTensor(tensors: Record<string, tf.Tensor>): string | null {
  for (const name of Object.keys(tensors)) if (hasNonFinite(tensors[name])) return name;
  return null;
}

/** Whether a training step's numbers are on the host, so that checking every step costs a scan, not a transfer. */
export function checksEveryStep(): boolean {
  return wasmInternals(tf.backend()) !== null || tf.getBackend() === REFERENCE;
}

/**
 * `fn` run on the cpu backend, switched to and back synchronously (both backends are initialised by
 * then, so tfjs switches at once); null where the switch did not happen. `fn` must create its own
 * tensors there (from host values): nothing of the other backend is touched.
 */
function onReference<T>(fn: () => T): { value: T } | null {
  const previous = tf.getBackend();
  if (!tf.findBackend(REFERENCE)) return null;
  // As `--backend cpu` runs it (the stock kernel is very slow).
  if (!stockKernels()) registerConv2DBackpropFilter(REFERENCE);
  const cpu = tf.findBackend(REFERENCE) as unknown as { firstUse?: boolean };
  if ('firstUse' in cpu) cpu.firstUse = false;
  void tf.setBackend(REFERENCE);
  try {
    if (tf.getBackend() !== REFERENCE) return null;
    return { value: fn() };
  } finally {
    if (tf.getBackend() !== previous) void tf.setBackend(previous);
  }
}

interface HostWeights {
  values: Float32Array;
  shape: number[];
  name: string;
}

function hostWeights(model: tfl.LayersModel): HostWeights[] {
  return model.weights.map((w) => ({
    values: Float32Array.from(w.read().dataSync() as Float32Array),
    shape: w.shape as number[],
    name: w.originalName,
  }));
}

/** The layer and weight holding a non-finite value, or null. */
function nonFiniteWeight(weights: HostWeights[]): string | null {
  return weights.find((w) => firstNonFinite(w.values) >= 0)?.name ?? null;
}

/** A copy of `model` on the current backend with `weights`. */
function copyOf(model: tfl.LayersModel, weights: HostWeights[]): tfl.LayersModel {
  const cls = model.constructor as unknown as { fromConfig(cls: unknown, config: unknown): tfl.LayersModel };
  const copy = cls.fromConfig(cls, model.getConfig());
  copy.setWeights(weights.map((w) => tf.tensor(w.values, w.shape, 'float32')));
  return copy;
}

/** What a training step handed back, for `diagnoseTrainingStep`. */
export interface TrainingStepFailure {
  model: tfl.LayersModel;
  task: Task;
  /** Every sample, [n, ...]. */
  x: tf.Tensor;
  /** The batch's sample indices. */
  batch: Int32Array;
  /** All samples' targets [n × width] and weights [n]. */
  targets: ArrayLike<number>;
  sampleWeights: ArrayLike<number>;
  /** 0-based. */
  step: number;
  epoch: number;
  /** The step's loss and the name of the first gradient that is not finite (null: all are). */
  loss: number;
  badGradient: string | null;
}

const describe = (loss: number, badGradient: string | null) =>
  Number.isFinite(loss) ? `a gradient that is not a number (${badGradient})` : `a loss of ${loss}`;

/**
 * The error to stop a fine-tuning run with when step `f.step` gave a non-finite loss or gradient: the same
 * step (weights before it, the same samples, targets and weights) is run on the cpu backend, and the
 * message says which it is — an engine fault, divergence, the model's weights, or the data.
 */
export function diagnoseTrainingStep(f: TrainingStepFailure): UserError {
  const backend = tf.getBackend();
  const where =
    `fine-tuning step ${f.step + 1} (epoch ${f.epoch + 1}) on the ${backend} backend ` +
    `gave ${describe(f.loss, f.badGradient)}`;
  const weights = hostWeights(f.model);
  const badWeight = nonFiniteWeight(weights);
  if (badWeight) {
    if (f.step === 0) {
      return new UserError(
        `${where}: the model's weight ${badWeight} holds values that are not numbers before any fine-tuning.`,
        {
          field: badWeight,
          fix: 'the model file holds NaN or infinite weights: retrain or re-export the model.',
        },
      );
    }
    // Every earlier step's gradients were checked and finite, so the optimizer step made them.
    return engineFault(
      `${where}: the weight ${badWeight} stopped being a number after the optimizer step before it, ` +
        'although every gradient of that step was finite',
      backend,
    );
  }
  const samples = tf.tidy(() => tf.gather(f.x, tf.tensor1d(f.batch, 'int32'))).dataSync() as Float32Array;
  const sampleShape = [f.batch.length, ...f.x.shape.slice(1)];
  if (firstNonFinite(samples) >= 0) {
    return new UserError(`${where}: the samples of that step hold values that are not numbers.`, {
      field: 'features',
      fix: 'check the data for missing or infinite values.',
    });
  }
  const width = f.targets.length / f.sampleWeights.length;
  const targets = Float32Array.from(
    { length: f.batch.length * width },
    (_, i) => f.targets[f.batch[Math.floor(i / width)] * width + (i % width)],
  );
  const sampleWeights = Float32Array.from(f.batch, (r) => f.sampleWeights[r]);
  if (backend === REFERENCE) return divergence(`${where}, and the cpu backend is the reference`);
  const replay = onReference(() => {
    const copy = copyOf(f.model, weights);
    try {
      const out = { loss: NaN, bad: null as string | null };
      tf.tidy(() => {
        const xb = tf.tensor(samples, sampleShape, 'float32');
        const variables = copy.trainableWeights.map((w) => w.read() as tf.Variable);
        const lossFn = () =>
          weightedCrossEntropy(
            f.task,
            copy.apply(xb, { training: true }) as tf.Tensor2D,
            tf.tensor2d(targets, [f.batch.length, width]),
            tf.tensor1d(sampleWeights),
          );
        const { value, grads } = tf.variableGrads(lossFn, variables);
        out.loss = value.dataSync()[0];
        out.bad = nonFiniteTensor(grads);
      });
      return out;
    } finally {
      copy.dispose();
    }
  });
  if (!replay) return notTried(where, backend);
  const { loss, bad } = replay.value;
  if (Number.isFinite(loss) && !bad) {
    return engineFault(
      `${where}, but the cpu backend (the reference) computes the same step from the same weights and samples ` +
        `as numbers (loss ${loss.toPrecision(4)})`,
      backend,
    );
  }
  return divergence(`${where}, and the cpu backend (the reference) gives the same step ${describe(loss, bad)} too`);
}

/**
 * The error for predictions that are not numbers: rows `indices` of `x` through `model` (logits for
 * `task`), checked again on the cpu backend. Null where they are all finite.
 */
export function diagnosePredictions(
  model: tfl.LayersModel,
  task: Task,
  x: tf.Tensor,
  indices: Int32Array,
  probs: ArrayLike<number>,
  width: number,
): UserError | null {
  const at = firstNonFinite(probs);
  if (at < 0) return null;
  const backend = tf.getBackend();
  const sample = indices.length > 1 ? 'a sample' : 'the sample';
  const where = `the model's output for ${sample} on the ${backend} backend is ${probs[at]} (output ${at % width})`;
  const weights = hostWeights(model);
  const badWeight = nonFiniteWeight(weights);
  if (badWeight) {
    return new UserError(`${where}: its weight ${badWeight} holds values that are not numbers.`, {
      field: badWeight,
      fix: 'the model file holds NaN or infinite weights: retrain or re-export the model.',
    });
  }
  const row = Math.floor(at / width);
  const samples = tf.tidy(() => tf.gather(x, tf.tensor1d([indices[row]], 'int32'))).dataSync() as Float32Array;
  if (firstNonFinite(samples) >= 0) {
    return new UserError(`${where}: that sample's input holds values that are not numbers.`, {
      field: 'features',
      fix: 'check the data for missing or infinite values.',
    });
  }
  const overflow =
    "the model's outputs overflow float32 on that sample; if it was fine-tuned here, the training diverged";
  if (backend === REFERENCE) return divergence(`${where} (the cpu backend is the reference)`, overflow);
  const replay = onReference(() => {
    const copy = copyOf(model, weights);
    try {
      return tf.tidy(() => {
        const logits = copy.apply(tf.tensor(samples, [1, ...x.shape.slice(1)], 'float32'), {
          training: false,
        }) as tf.Tensor2D;
        return Array.from((task === 'binary' ? tf.sigmoid(logits) : tf.softmax(logits)).dataSync());
      });
    } finally {
      copy.dispose();
    }
  });
  if (!replay) return notTried(where, backend);
  if (firstNonFinite(replay.value) < 0) {
    return engineFault(
      `${where}, but the cpu backend (the reference) computes numbers for the same sample and weights ` +
        `(${replay.value.map((v) => v.toPrecision(3)).join(', ')})`,
      backend,
    );
  }
  return divergence(`${where}, and the cpu backend (the reference) gives the same`, overflow);
}

function engineFault(what: string, backend: string): UserError {
  return new UserError(
    `${what}: a fault in Fair Prune's ${backend} engine, not in your model, data or settings. ` +
      'Please report it with this message.',
    {
      field: '--backend',
      fix: `run with ${BACKEND_FIX}: slower, and it computes this correctly.`,
    },
  );
}

function divergence(
  what: string,
  cause = 'the training diverged (the weights grew until the numbers overflowed)',
): UserError {
  return new UserError(`${what}: ${cause}.`, {
    field: '--lr',
    fix: 'lower the learning rate (--lr), or check the input data for huge values.',
  });
}

function notTried(what: string, backend: string): UserError {
  return new UserError(
    `${what}. The reference (cpu) backend could not be run here, so it is not known whether the training ` +
      `diverged or the ${backend} engine failed.`,
    {
      field: '--backend',
      fix:
        `run again with ${BACKEND_FIX}: if it finishes, the ${backend} engine is at fault (please report it); ` +
        'if not, lower the learning rate (--lr).',
    },
  );
}
