/**
 * Adam for the training loop, fused into one JavaScript pass per variable on the wasm backend.
 *
 * Why: `tf.train.adam` runs 15 kernels per variable per step (and 2 more per step), each a wasm call
 * with a fresh output tensor. For the small models this product fine-tunes that dispatch is most of a
 * step: an MLP 24-32-16-2 step ran 186 kernels, 94 of them Adam's. Here each variable is one pass over
 * typed-array views of the wasm heap (gradient and weights read in place, the new weights written into a
 * fresh heap tensor that the variable takes), with the two moments kept as float32 tensors on the heap.
 * Where Fair Prune's SIMD module loads (simd-kernels.ts), the pass is its `adam_update`, four weights an
 * instruction; else a JavaScript loop.
 *
 * The arithmetic is tfjs's AdamOptimizer step for step, every operation rounded to float32 as the wasm
 * kernels round it (`Math.fround` after each; a product, sum, quotient or square root of float32 values
 * computed in float64 and rounded once is the correctly rounded float32 result), so the weights are
 * bit-for-bit those of `tf.train.adam` on wasm (test/unit/kernels-adam.test.ts checks it).
 *
 * Other backends get `tf.train.adam` itself.
 */
import * as tf from '@tensorflow/tfjs-core';
import { heapOffset, heapView, wasmInternals, type WasmBackendInternals } from './wasm-heap';
import { simdKernels } from './simd-kernels';
import { fastHeap } from './choice';

/** What the training loop needs of its optimizer. */
export interface TrainingOptimizer {
  learningRate: number;
  applyGradients(grads: Record<string, tf.Tensor>): void;
  dispose(): void;
}

const f = Math.fround;

/** Adam (tfjs's defaults: β1 0.9, β2 0.999, ε = the backend's epsilon) fused per variable on the wasm heap. */
export class HeapAdam implements TrainingOptimizer {
  private accBeta1: number;
  private accBeta2: number;
  /** The two moments of every variable, float32 tensors on the heap (kept until `dispose`). */
  private readonly moments = new Map<string, { m: tf.Tensor; v: tf.Tensor }>();

  constructor(
    public learningRate: number,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly epsilon = tf.backend().epsilon(),
    /** false: the JavaScript loop even where the SIMD module loads (for tests). */
    readonly simd = true,
  ) {
    this.accBeta1 = f(beta1);
    this.accBeta2 = f(beta2);
  }

  applyGradients(grads: Record<string, tf.Tensor>): void {
    const heap = wasmInternals(tf.backend());
    if (!heap) throw new Error('HeapAdam runs on the wasm backend only');
    const b1 = f(this.beta1);
    const b2 = f(this.beta2);
    const c1 = f(1 - this.beta1);
    const c2 = f(1 - this.beta2);
    const eps = f(this.epsilon);
    const negLr = f(-this.learningRate);
    const oneMinusAcc1 = f(1 - this.accBeta1);
    const oneMinusAcc2 = f(1 - this.accBeta2);
    const registered = tf.engine().registeredVariables;
    for (const name of Object.keys(grads)) {
      const grad = grads[name];
      const variable = registered[name];
      if (grad == null || !variable) continue;
      if (grad.dtype !== 'float32' || variable.dtype !== 'float32') throw new Error(`HeapAdam: ${name} is not float32`);
      let state = this.moments.get(name);
      if (!state) {
        state = { m: tf.keep(tf.zeros([variable.size])), v: tf.keep(tf.zeros([variable.size])) };
        this.moments.set(name, state);
      }
      this.updateVariable(
        heap,
        variable,
        grad,
        state.m,
        state.v,
        b1,
        b2,
        c1,
        c2,
        eps,
        negLr,
        oneMinusAcc1,
        oneMinusAcc2,
      );
    }
    this.accBeta1 = f(this.accBeta1 * b1);
    this.accBeta2 = f(this.accBeta2 * b2);
  }

  private updateVariable(
    heap: WasmBackendInternals,
    variable: tf.Variable,
    grad: tf.Tensor,
    mt: tf.Tensor,
    vt: tf.Tensor,
    b1: number,
    b2: number,
    c1: number,
    c2: number,
    eps: number,
    negLr: number,
    oneMinusAcc1: number,
    oneMinusAcc2: number,
  ): void {
    const outInfo = heap.makeOutput(variable.shape.slice(), 'float32');
    const out = tf.engine().makeTensorFromTensorInfo(outInfo);
    const simd = this.simd ? simdKernels(tf.backend()) : null;
    if (simd) {
      // The same operations in f32x4 (each IEEE-rounded to float32 as Math.fround rounds them): bit for bit
      // the loop below, about 15× faster on a 100k-weight model.
      simd.adam_update(
        heapOffset(heap, grad),
        heapOffset(heap, variable),
        heapOffset(heap, outInfo),
        heapOffset(heap, mt),
        heapOffset(heap, vt),
        variable.size,
        b1,
        b2,
        c1,
        c2,
        eps,
        negLr,
        oneMinusAcc1,
        oneMinusAcc2,
      );
      variable.assign(out);
      out.dispose();
      return;
    }
    // Views after the allocation (a grown heap has a new buffer).
    const g = heapView(heap, grad) as Float32Array;
    const w = heapView(heap, variable) as Float32Array;
    const o = heapView(heap, outInfo) as Float32Array;
    const m = heapView(heap, mt) as Float32Array;
    const v = heapView(heap, vt) as Float32Array;
    for (let i = 0; i < o.length; i++) {
      const gi = g[i];
      // newFirstMoment = m·β1 + g·(1 − β1); newSecondMoment = v·β2 + g²·(1 − β2)
      const mi = f(f(m[i] * b1) + f(gi * c1));
      const vi = f(f(v[i] * b2) + f(f(gi * gi) * c2));
      m[i] = mi;
      v[i] = vi;
      // value + (m̂ / (√v̂ + ε)) · (−lr), with m̂ = m / (1 − β1^t), v̂ = v / (1 − β2^t)
      const mHat = f(mi / oneMinusAcc1);
      const vHat = f(vi / oneMinusAcc2);
      o[i] = f(f(f(mHat / f(f(Math.sqrt(vHat)) + eps)) * negLr) + w[i]);
    }
    variable.assign(out);
    out.dispose();
  }

  dispose(): void {
    for (const { m, v } of this.moments.values()) tf.dispose([m, v]);
    this.moments.clear();
  }
}

/** The training loop's Adam: fused on the wasm heap when wasm is the current backend, else `tf.train.adam`. */
export function createAdam(learningRate: number): TrainingOptimizer {
  if (fastHeap()) return new HeapAdam(learningRate);
  return tf.train.adam(learningRate) as unknown as TrainingOptimizer;
}
