/**
 * Pruning as small, swappable strategies (after Torch-Pruning and TF Model Optimization):
 *
 *  - a `PruningCriterion` decides which weights to remove for a target sparsity (unstructured
 *    magnitude per layer or global, and random as the control);
 *  - a `PruningSchedule` decides the target sparsity at each fine-tuning step (one-shot here;
 *    gradual schedules plug in without touching the training loop);
 *  - a `MaskSet` holds the masks and re-applies them after every optimizer step, so a pruned
 *    weight stays exactly zero.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { PruningMethodName, ScheduleSpec } from '../protocol/results';
import { PRUNING_METHODS } from '../protocol/results';
import type { PrunableKernel } from './model-io';
import { Rng } from './rng';
import { UserError } from './errors';
import { normalizeSchedule, scheduleFromSpec } from './structured/schedules';
import { heapView, wasmInternals, type WasmBackendInternals } from './kernels/wasm-heap';

/** The weights of one prunable kernel, read once for scoring. */
export interface KernelValues {
  kernel: PrunableKernel;
  values: Float32Array;
}

export interface PruningCriterion {
  readonly name: PruningMethodName;
  readonly description: string;
  /** Keep-masks (1 keep, 0 prune), one per kernel, removing `sparsity` of the weights. */
  masks(kernels: KernelValues[], sparsity: number, rng: Rng): Uint8Array[];
}

export interface PruningSchedule {
  readonly name: string;
  /** Target sparsity at optimizer step `step` of `totalSteps` (0 = before training). */
  sparsityAt(step: number, totalSteps: number, finalSparsity: number): number;
  /** Whether masks are recomputed before this step. */
  updatesAt(step: number, totalSteps: number): boolean;
}

/** Indices of the `k` smallest scores, ties broken by index, so the count is exact. */
function smallestK(scores: Float32Array | Float64Array, k: number): Uint32Array {
  const idx = new Uint32Array(scores.length);
  for (let i = 0; i < idx.length; i++) idx[i] = i;
  idx.sort((a, b) => scores[a] - scores[b] || a - b);
  return idx.subarray(0, k);
}

function keepAll(n: number): Uint8Array {
  return new Uint8Array(n).fill(1);
}

function pruneCount(n: number, sparsity: number): number {
  return Math.min(n, Math.round(n * sparsity));
}

function absValues(v: Float32Array): Float32Array {
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = Math.abs(v[i]);
  return out;
}

/** Each layer loses the same fraction of its smallest-magnitude weights. */
export const magnitudePerLayer: PruningCriterion = {
  name: 'magnitude-layer',
  description: 'unstructured, smallest |w| in each layer, every layer to the same sparsity',
  masks(kernels, sparsity) {
    return kernels.map(({ values }) => {
      const mask = keepAll(values.length);
      for (const i of smallestK(absValues(values), pruneCount(values.length, sparsity))) mask[i] = 0;
      return mask;
    });
  },
};

/** The smallest-magnitude weights of the whole model, wherever they are. */
export const magnitudeGlobal: PruningCriterion = {
  name: 'magnitude-global',
  description: 'unstructured, smallest |w| across all layers together',
  masks(kernels, sparsity) {
    const total = kernels.reduce((a, k) => a + k.values.length, 0);
    const all = new Float32Array(total);
    let o = 0;
    for (const { values } of kernels) {
      for (let i = 0; i < values.length; i++) all[o + i] = Math.abs(values[i]);
      o += values.length;
    }
    const flat = keepAll(total);
    for (const i of smallestK(all, pruneCount(total, sparsity))) flat[i] = 0;
    const masks: Uint8Array[] = [];
    o = 0;
    for (const { values } of kernels) {
      masks.push(flat.slice(o, o + values.length));
      o += values.length;
    }
    return masks;
  },
};

/** The control: the same number of weights per layer as magnitude-layer, chosen at random. */
export const randomPruning: PruningCriterion = {
  name: 'random',
  description: 'unstructured, random weights in each layer (the control for the magnitude criteria)',
  masks(kernels, sparsity, rng) {
    return kernels.map(({ values }) => {
      const scores = new Float64Array(values.length);
      for (let i = 0; i < scores.length; i++) scores[i] = rng.next();
      const mask = keepAll(values.length);
      for (const i of smallestK(scores, pruneCount(values.length, sparsity))) mask[i] = 0;
      return mask;
    });
  },
};

/**
 * Whole output channels (filters/units) with the smallest mean |w|, the same fraction in each layer.
 * On kernels alone this only masks; the session uses `StructuredPruning` (src/core/structured), which
 * also masks biases and batch norm, reaches weights/FLOPs targets and shrinks the model.
 */
export const l1Filter: PruningCriterion = {
  name: 'l1-filter',
  description: 'structured, whole filters/units with the smallest L1 norm (the model is rebuilt smaller)',
  masks(kernels, sparsity) {
    return kernels.map(({ values, kernel }) => {
      const C = kernel.shape[kernel.shape.length - 1];
      const norms = new Float64Array(C);
      for (let i = 0; i < values.length; i++) norms[i % C] += Math.abs(values[i]);
      const gone = new Set(smallestK(norms, Math.min(C - 1, pruneCount(C, sparsity))));
      const mask = keepAll(values.length);
      for (let i = 0; i < values.length; i++) if (gone.has(i % C)) mask[i] = 0;
      return mask;
    });
  },
};

/** Scored on data (|Σ activation × gradient|): only `StructuredPruning` can run it. */
export const taylorFilter: PruningCriterion = {
  name: 'taylor-filter',
  description: "structured, whole filters/units with the smallest first-order Taylor importance |Σ a·∂L/∂a| under the fine-tuning loss (PW included)",
  masks() {
    throw new Error('taylor-filter scores need training data: use StructuredPruning from src/core/structured');
  },
};

const CRITERIA: Record<PruningMethodName, PruningCriterion> = {
  'magnitude-layer': magnitudePerLayer,
  'magnitude-global': magnitudeGlobal,
  random: randomPruning,
  'l1-filter': l1Filter,
  'taylor-filter': taylorFilter,
};

export function criterionByName(name: string, option = '--method'): PruningCriterion {
  const c = CRITERIA[name as PruningMethodName];
  if (!c) throw new UserError(`unknown pruning method '${name}'.`, { field: option, fix: `use one of ${PRUNING_METHODS.join(', ')}.` });
  return c;
}

/** Prune once before fine-tuning and hold the masks. */
export const oneShot: PruningSchedule = {
  name: 'one-shot',
  sparsityAt: (_step, _total, finalSparsity) => finalSparsity,
  updatesAt: (step) => step === 0,
};

/** The schedule a user asked for (one-shot, gradual, iterative; see src/core/structured/schedules.ts). */
export function scheduleByName(spec: Partial<Omit<ScheduleSpec, 'name'>> & { name: string }): PruningSchedule {
  return scheduleFromSpec(normalizeSchedule(spec), oneShot);
}

/**
 * What the training loop asks of pruning around every optimizer step. One-shot and gradual
 * schedules both fit behind it, so a new criterion or schedule never touches the loop.
 */
export interface StepPruning {
  /** Before step `step` (0-based) of `totalSteps`: may (re)compute masks. */
  beforeStep(step: number, totalSteps: number): void;
  maskGradient(variableName: string, grad: tf.Tensor): tf.Tensor;
  /** After the optimizer step: re-apply the masks, so pruned weights stay exactly zero. */
  afterStep(): void;
}

/**
 * Masks on the kernels of one model; `apply()` zeroes the pruned weights in place.
 *
 * On wasm the two products of every step (the gradient by its mask, the weights by theirs) are one
 * JavaScript pass each on the backend's memory rather than a kernel each: the same float32 products
 * (by 0 or 1, exact), without tfjs's dispatch, which was a third of a small MLP's masked step.
 */
export class MaskSet implements StepPruning {
  private readonly masks: tf.Tensor[];
  private readonly keep: Uint8Array[];

  constructor(
    readonly kernels: PrunableKernel[],
    values: Uint8Array[],
  ) {
    this.masks = kernels.map((k, i) => tf.keep(tf.tensor(Float32Array.from(values[i]), k.shape as number[], 'float32')));
    this.keep = values.map((v) => Uint8Array.from(v));
  }

  beforeStep(): void {}

  afterStep(): void {
    this.apply();
  }

  /** Zero the pruned weights in place. */
  apply(): void {
    const heap = wasmInternals(tf.backend());
    if (heap) {
      this.kernels.forEach((k, i) => {
        const masked = maskedOnHeap(heap, k.variable, this.keep[i]);
        if (!masked) return void k.variable.assign(tf.tidy(() => tf.mul(k.variable, this.masks[i])));
        k.variable.assign(masked);
        masked.dispose();
      });
      return;
    }
    tf.tidy(() => {
      this.kernels.forEach((k, i) => k.variable.assign(tf.mul(k.variable, this.masks[i])));
    });
  }

  maskGradient(variableName: string, grad: tf.Tensor): tf.Tensor {
    const i = this.kernels.findIndex((k) => k.variable.name === variableName);
    if (i < 0) return grad;
    const heap = wasmInternals(tf.backend());
    return (heap && maskedOnHeap(heap, grad, this.keep[i])) || tf.mul(grad, this.masks[i]);
  }

  /** Fraction of prunable weights removed. */
  sparsity(): number {
    let zeros = 0;
    let total = 0;
    for (const keep of this.keep) {
      total += keep.length;
      for (let i = 0; i < keep.length; i++) if (keep[i] === 0) zeros++;
    }
    return total ? zeros / total : 0;
  }

  dispose(): void {
    for (const m of this.masks) m.dispose();
  }
}

/** `t` times its keep-mask (1 keep, 0 prune) as a new tensor on the wasm heap, or null for a tensor that is not float32 of the mask's size. */
function maskedOnHeap(heap: WasmBackendInternals, t: tf.Tensor, keep: Uint8Array): tf.Tensor | null {
  if (t.dtype !== 'float32' || t.size !== keep.length) return null;
  const info = heap.makeOutput(t.shape.slice(), 'float32');
  const out = tf.engine().makeTensorFromTensorInfo(info);
  // Views after the allocation (a grown heap has a new buffer).
  const src = heapView(heap, t) as Float32Array;
  const dst = heapView(heap, info) as Float32Array;
  for (let j = 0; j < keep.length; j++) dst[j] = src[j] * keep[j];
  return out;
}

/** Scores the kernels with `criterion` and returns masks for `sparsity`, already applied. */
export function pruneModelKernels(kernels: PrunableKernel[], criterion: PruningCriterion, sparsity: number, rng: Rng): MaskSet {
  const values: KernelValues[] = kernels.map((kernel) => ({ kernel, values: kernel.variable.dataSync() as Float32Array }));
  const masks = new MaskSet(kernels, criterion.masks(values, sparsity, rng));
  masks.apply();
  return masks;
}

/**
 * A criterion driven by a schedule: masks are recomputed whenever the schedule says so, to the
 * sparsity it gives for that step. `prepare()` prunes to the step-0 sparsity before training, so a
 * model is pruned even with zero fine-tuning steps.
 */
export class ScheduledPruning implements StepPruning {
  private masks: MaskSet | null = null;
  private lastUpdate = -1;

  constructor(
    readonly kernels: PrunableKernel[],
    readonly criterion: PruningCriterion,
    readonly schedule: PruningSchedule,
    readonly finalSparsity: number,
    private readonly rng: Rng,
  ) {}

  prepare(totalSteps: number): void {
    this.beforeStep(0, totalSteps);
  }

  beforeStep(step: number, totalSteps: number): void {
    if (step === this.lastUpdate || !this.schedule.updatesAt(step, totalSteps)) return;
    this.lastUpdate = step;
    const sparsity = this.schedule.sparsityAt(step, totalSteps, this.finalSparsity);
    this.masks?.dispose();
    this.masks = pruneModelKernels(this.kernels, this.criterion, sparsity, this.rng);
  }

  maskGradient(variableName: string, grad: tf.Tensor): tf.Tensor {
    return this.masks ? this.masks.maskGradient(variableName, grad) : grad;
  }

  afterStep(): void {
    this.masks?.apply();
  }

  dispose(): void {
    this.masks?.dispose();
    this.masks = null;
  }
}

/** Fraction of exactly-zero weights over the given kernels (what the saved model really holds). */
export function measuredSparsity(kernels: PrunableKernel[]): number {
  let zeros = 0;
  let total = 0;
  for (const k of kernels) {
    const v = k.variable.dataSync();
    total += v.length;
    for (let i = 0; i < v.length; i++) if (v[i] === 0) zeros++;
  }
  return total ? zeros / total : 0;
}
