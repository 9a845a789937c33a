/**
 * Masks on kernels, re-applied after every optimizer step so a pruned weight stays exactly zero, and
 * `ScheduledPruning`, which recomputes them with an unstructured method whenever the schedule says so.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { PrunableKernel } from '../model-io';
import type { Rng } from '../rng';
import type { PruningSchedule } from './schedules';
import type { UnstructuredMethod } from './methods';
import type { KernelValues } from './unstructured';
import { heapView, type WasmBackendInternals } from '../kernels/wasm-heap';
import { fastHeap } from '../kernels/choice';

/**
 * What the training loop asks of pruning around every optimizer step. One-shot and gradual
 * schedules both fit behind it, so a new method or schedule never touches the loop.
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
    this.masks = kernels.map((k, i) =>
      tf.keep(tf.tensor(Float32Array.from(values[i]), k.shape as number[], 'float32')),
    );
    this.keep = values.map((v) => Uint8Array.from(v));
  }

  beforeStep(): void {}

  afterStep(): void {
    this.apply();
  }

  /** Zero the pruned weights in place. */
  apply(): void {
    const heap = fastHeap();
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
    const heap = fastHeap();
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

/**
 * `t` times its keep-mask (1 keep, 0 prune) as a new tensor on the wasm heap, or null for a tensor that is
 * not float32 of the mask's size.
 */
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

/** Scores the kernels with `method` and returns masks for `sparsity`, already applied. */
export function pruneModelKernels(
  kernels: PrunableKernel[],
  method: UnstructuredMethod,
  sparsity: number,
  rng: Rng,
): MaskSet {
  const values: KernelValues[] = kernels.map((kernel) => ({
    kernel,
    values: kernel.variable.dataSync() as Float32Array,
  }));
  const masks = new MaskSet(kernels, method.masks(values, sparsity, rng));
  masks.apply();
  return masks;
}

/**
 * An unstructured method driven by a schedule: masks are recomputed whenever the schedule says so, to the
 * sparsity it gives for that step. `prepare()` prunes to the step-0 sparsity before training, so a
 * model is pruned even with zero fine-tuning steps.
 */
export class ScheduledPruning implements StepPruning {
  private masks: MaskSet | null = null;
  private lastUpdate = -1;

  constructor(
    readonly kernels: PrunableKernel[],
    readonly method: UnstructuredMethod,
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
    this.masks = pruneModelKernels(this.kernels, this.method, sparsity, this.rng);
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
