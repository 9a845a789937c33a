/**
 * Test helpers for checking the wasm paths (Fair Prune's own kernels, the heap training steps) against the
 * reference: tfjs's pure-JavaScript cpu backend with its stock kernels.
 *
 *  - `poisonHeapOutputs`: every float32 tensor the wasm backend allocates from then on starts full of NaN,
 *    so a kernel that reads memory it never wrote (a padding column, an edge it skipped) shows up as a
 *    NaN, every time, instead of as whatever an earlier tensor left there (issue 25).
 *  - `referenceOnCpu`: the same model (built by the same function, given the same weights) on the cpu
 *    backend: its logits, the weighted cross-entropy, the gradient of every trainable weight, and Adam
 *    steps from given gradients.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Task } from '../src/protocol/results';
import { lossTargets, weightedCrossEntropy, weightedCrossEntropyOnHost } from '../src/core/losses';
import { train, type TrainOptions, type TrainingData } from '../src/core/train';
import { wasmInternals } from '../src/core/kernels/wasm-heap';
import { useCpu } from './helpers';

/**
 * From now until the returned function is called, every float32 output the wasm backend allocates
 * (`makeOutput`, which its stock kernels and Fair Prune's own call) is filled with NaN first.
 */
export function poisonHeapOutputs(): () => void {
  const backend = tf.findBackend('wasm');
  const heap = wasmInternals(backend);
  if (!heap) throw new Error('poisonHeapOutputs: the wasm backend is not registered');
  const original = heap.makeOutput;
  const call = original as (
    shape: number[],
    dtype: tf.DataType,
    memoryOffset?: number,
    values?: unknown,
  ) => tf.TensorInfo;
  heap.makeOutput = ((shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: unknown) => {
    const out = call.call(heap, shape, dtype, memoryOffset, values);
    // An output at a given offset (memory the C code allocated) or with values given is not fresh: left alone.
    if (dtype === 'float32' && memoryOffset == null && values == null) {
      const entry = heap.dataIdMap.get(out.dataId);
      const size = shape.reduce((a, d) => a * d, 1);
      if (entry && size > 0) new Float32Array(heap.wasm.HEAPU8.buffer, entry.memoryOffset, size).fill(NaN);
    }
    return out;
  }) as typeof heap.makeOutput;
  return () => {
    heap.makeOutput = original;
  };
}

export interface ReferenceResult {
  /** [batch, width] logits of the inference pass (`training: false`). */
  logits: Float32Array;
  loss: number;
  /** The gradient of every trainable weight, in `model.trainableWeights` order. */
  grads: Float32Array[];
  /** The trainable weights after each Adam step of `adamGrads` (when given), in the same order. */
  adam: Float32Array[][];
  /** The gradient sets those Adam steps applied. */
  adamGrads: Float32Array[][];
}

/**
 * The reference on the cpu backend: `build()` (which must make the same architecture on any backend)
 * given `weights` (every weight, `model.getWeights()` order), run on the batch `x` [batch, ...]:
 * logits, the batch mean of the weighted cross-entropy with `targets`/`sampleWeights` (one row per
 * sample of the batch), every trainable weight's gradient; then, when `adamGrads` is given (or made
 * from those gradients), Adam (tf.train.adam, learning rate `lr`) applied with each set in turn. The current
 * backend is restored afterwards.
 */
export async function referenceOnCpu(
  build: () => tfl.LayersModel,
  weights: Float32Array[],
  x: { values: Float32Array; shape: number[] },
  task: Task,
  targets: Float32Array,
  sampleWeights: Float32Array,
  adamGrads: Float32Array[][] | ((grads: Float32Array[]) => Float32Array[][]) = [],
  lr = 0.01,
): Promise<ReferenceResult> {
  const previous = tf.getBackend();
  await useCpu();
  try {
    const model = build();
    try {
      model.setWeights(model.weights.map((w, i) => tf.tensor(weights[i], w.shape as number[], 'float32')));
      const width = model.outputs[0].shape[1] as number;
      const B = x.shape[0];
      const xb = tf.tensor(x.values, x.shape, 'float32');
      const t = tf.tensor2d(targets, [B, width]);
      const sw = tf.tensor1d(sampleWeights);
      const logits = tf.tidy(() => (model.apply(xb, { training: false }) as tf.Tensor).dataSync() as Float32Array);
      const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value, grads } = tf.variableGrads(
        () => weightedCrossEntropy(task, model.apply(xb, { training: true }) as tf.Tensor2D, t, sw),
        variables,
      );
      const result: ReferenceResult = {
        logits: Float32Array.from(logits),
        loss: value.dataSync()[0],
        grads: variables.map((v) => Float32Array.from(grads[v.name].dataSync())),
        adam: [],
        adamGrads: [],
      };
      tf.dispose([value, grads, xb, t, sw]);
      result.adamGrads = typeof adamGrads === 'function' ? adamGrads(result.grads) : adamGrads;
      if (result.adamGrads.length) {
        const adam = tf.train.adam(lr);
        for (const set of result.adamGrads) {
          const named: Record<string, tf.Tensor> = {};
          variables.forEach((v, i) => (named[v.name] = tf.tensor(set[i], v.shape, 'float32')));
          adam.applyGradients(named as tf.NamedTensorMap as never);
          tf.dispose(Object.values(named));
          result.adam.push(variables.map((v) => Float32Array.from(v.dataSync())));
        }
        adam.dispose();
      }
      return result;
    } finally {
      model.dispose();
    }
  } finally {
    await tf.setBackend(previous);
  }
}

/** max |a − b| / max(max |ref|, floor): one scale for the whole tensor (see `relDiff`), NaN-aware. */
export function scaledDiff(a: ArrayLike<number>, ref: ArrayLike<number>, floor = 1e-6): number {
  if (a.length !== ref.length) return Infinity;
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const diff = Math.abs(a[i] - ref[i]);
    d = Number.isNaN(diff) ? Infinity : Math.max(d, diff);
    m = Math.max(m, Math.abs(ref[i]));
  }
  return d / Math.max(m, floor);
}

/** The index of the first value that is not finite where the reference is, or −1. */
export function firstNonFinite(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]) && Number.isFinite(ref[i])) return i;
  return -1;
}

/**
 * Cross-entropy training data: samples `x` [n, ...shape], `labels` (one output for binary, else one per
 * class), every `every`-th row a validation row. The caller disposes its tensors.
 */
export function ceTrainingData(
  x: Float32Array,
  shape: number[],
  labels: Int32Array,
  task: Task,
  width: number,
  every: number,
): TrainingData {
  const n = labels.length;
  const t = lossTargets('ce', task, labels, width, undefined, { minWeight: 1, gamma: 0 });
  const all = Int32Array.from({ length: n }, (_, i) => i);
  return {
    x: tf.tensor(x, [n, ...shape], 'float32'),
    targets: tf.tensor2d(Float32Array.from(t.targets), [n, width]),
    weights: tf.tensor1d(Float32Array.from(t.weights)),
    labels,
    train: all.filter((i) => i % every !== 0),
    validation: all.filter((i) => i % every === 0),
  };
}

/** `train` on a fresh `build()` with the heap steps, then without: each run's summary and final weights. */
export async function trainWithAndWithoutHeapStep(
  build: () => tfl.LayersModel,
  data: TrainingData,
  opts: Omit<TrainOptions, 'denseStep'>,
) {
  const weights: number[][][] = [];
  const summaries = [];
  for (const denseStep of [true, false]) {
    const model = build();
    summaries.push(await train(model, data, { ...opts, denseStep }));
    weights.push(model.getWeights().map((w) => Array.from(w.dataSync())));
    model.dispose();
  }
  return { summaries, weights };
}

/**
 * The tfjs path's loss and gradients on the current backend, as training runs it on wasm: the model applied
 * in training mode under the tape (a batch normalization writes its moving statistics), the weighted
 * cross-entropy of the whole batch, every variable's gradient in order.
 */
export function tfjsPathGradients(
  model: tfl.LayersModel,
  x: tf.Tensor,
  task: Task,
  targets: Float32Array,
  sampleWeights: Float32Array,
  variables: tf.Variable[],
): { loss: number; grads: Float32Array[] } {
  const rows = Int32Array.from({ length: x.shape[0] }, (_, i) => i);
  const { value, grads } = tf.variableGrads(
    () =>
      weightedCrossEntropyOnHost(task, model.apply(x, { training: true }) as tf.Tensor2D, targets, sampleWeights, rows),
    variables,
  );
  const result = {
    loss: value.dataSync()[0],
    grads: variables.map((v) => Float32Array.from(grads[v.name].dataSync())),
  };
  tf.dispose([value, grads]);
  return result;
}
