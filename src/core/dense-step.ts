/**
 * A training step for a chain of Dense layers (a tabular MLP) computed in JavaScript on the wasm heap:
 * the forward pass, the weighted cross-entropy and the backward pass in one go, with the gradients
 * handed back as tensors so that the rest of the step (gradient masks, Adam, masks re-applied) is the
 * same as for any model.
 *
 * Why: for the small MLPs of tabular data, a step on wasm is mostly tfjs's dispatch, not arithmetic.
 * Profiled on the bench's MLP 24-32-16-2 (batch 64): 1 ms a step, of which 0.6 ms outside any kernel
 * (tape, tidy, saved-tensor bookkeeping) and most of the rest in kernels of a few microseconds. This
 * step takes 0.2–0.3 ms.
 *
 * Plain loops lose to XNNPACK when layers are wide, so the step is used only when a step's
 * multiply-adds (≈ 3 · batch · Σ inputs·units) stay under `MAX_MULTIPLY_ADDS`; bigger models, other
 * layers (batch norm, convolutions…), other activations and non-trainable layers keep the tfjs path. A
 * Dropout layer after a dense layer drops as tfjs's does (dropout.ts). The variables stay the model's own:
 * weights are read from them every step, so early stopping, pruning masks and evaluation see exactly what
 * they see on the tfjs path.
 *
 * Activations and their gradients are float32 like tfjs's, the weight-gradient sums float64; the
 * gradients differ from tfjs's kernels by rounding only (test/unit/dense-step.test.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Task } from '../protocol/results';
import { dropoutMultipliers, dropoutOf, type DropoutOnHeap } from './dropout';
import { weightedCrossEntropyAndGradient, type HostReweight } from './losses';
import { heapView, wasmInternals, type WasmBackendInternals } from './kernels/wasm-heap';

export type DenseActivation = 'linear' | 'relu' | 'sigmoid' | 'tanh';
const ACTIVATIONS = new Set<string>(['linear', 'relu', 'sigmoid', 'tanh']);

/**
 * Above this many multiply-adds a step, XNNPACK's kernels beat the loops despite tfjs's dispatch.
 * Measured per step at batch 64 (this 2-core VM): 24-32-16-2 (0.2 M) 0.23–0.30 ms against 0.85–2.0 ms on
 * the tfjs path; 6-64-64-1 (0.85 M) 0.80 against 0.96–1.07; 100-128-64-2 (3.2 M) 1.37–1.46 against
 * 1.62–2.20; 200-256-128-2 (12.9 M) 3.4–3.9 against 2.8–3.1.
 */
export const MAX_MULTIPLY_ADDS = 4_000_000;

export interface DenseLayerPlan {
  name: string;
  inputs: number;
  units: number;
  activation: DenseActivation;
  kernel: tf.Variable;
  bias: tf.Variable | null;
  /** A Dropout layer on this layer's outputs (after its activation). */
  dropout?: DropoutOnHeap;
}

/** What the heap steps read of a tfjs-layers layer (not all of it in the public typings). */
export interface LayerLike {
  name: string;
  trainable: boolean;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  trainableWeights: { originalName: string; read(): tf.Tensor }[];
  weights: unknown[];
  inboundNodes: { inboundLayers: LayerLike[] }[];
}

/**
 * The model as a chain of Dense layers, input first, or null when it is anything else: more than one
 * input or output, an input that is not flat features, a layer that is not Dense (an InputLayer
 * aside), an activation other than linear/relu/sigmoid/tanh, a layer that is not trainable, or a
 * branch.
 */
export function denseStackOf(model: tfl.LayersModel): DenseLayerPlan[] | null {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) return null;
  const inShape = model.inputs[0].shape;
  if (inShape.length !== 2 || typeof inShape[1] !== 'number') return null;
  const layers = model.layers as unknown as LayerLike[];
  const plan: DenseLayerPlan[] = [];
  let previous: LayerLike | null = null;
  let width = inShape[1];
  for (const layer of layers) {
    const cls = layer.getClassName();
    if (cls === 'InputLayer') {
      if (previous) return null;
      previous = layer;
      continue;
    }
    // One call of the layer, on the previous layer's output (or the model's input).
    if (layer.inboundNodes.length !== 1) return null;
    const inbound = layer.inboundNodes[0].inboundLayers;
    if (inbound.length !== 1 || (previous && inbound[0] !== previous)) return null;
    if (cls === 'Dropout') {
      // On a dense layer's outputs, one at a time (not on the features themselves).
      const dropout = dropoutOf(layer);
      const on = plan[plan.length - 1];
      if ('unsupported' in dropout || !on || on.dropout) return null;
      on.dropout = dropout;
      previous = layer;
      continue;
    }
    if (cls !== 'Dense' || !layer.trainable) return null;
    const cfg = layer.getConfig();
    const activation = String(cfg.activation ?? 'linear');
    if (!ACTIVATIONS.has(activation)) return null;
    const units = Number(cfg.units);
    const kernel = layer.trainableWeights.find((w) => /kernel$/.test(w.originalName))?.read() as
      tf.Variable | undefined;
    const bias =
      (layer.trainableWeights.find((w) => /bias$/.test(w.originalName))?.read() as tf.Variable | undefined) ?? null;
    if (
      !kernel ||
      kernel.dtype !== 'float32' ||
      kernel.shape.length !== 2 ||
      kernel.shape[0] !== width ||
      kernel.shape[1] !== units
    )
      return null;
    if (layer.weights.length !== (bias ? 2 : 1) || (bias && (bias.dtype !== 'float32' || bias.size !== units)))
      return null;
    plan.push({ name: layer.name, inputs: width, units, activation: activation as DenseActivation, kernel, bias });
    previous = layer;
    width = units;
  }
  if (!plan.length || plan[plan.length - 1].dropout) return null; // the logits themselves dropped out
  const outputLayer = (model.outputs[0] as unknown as { sourceLayer: LayerLike }).sourceLayer;
  if (outputLayer !== previous) return null;
  return plan;
}

/** Multiply-adds of one step of `plan` on `batch` samples (forward, weight gradient, input gradient). */
export function multiplyAddsPerStep(plan: DenseLayerPlan[], batch: number): number {
  return plan.reduce((sum, l, i) => sum + batch * l.inputs * l.units * (i === 0 ? 2 : 3), 0);
}

/**
 * The JavaScript step for `model` on the current backend, or null where it does not apply (not
 * wasm, not a dense chain, too big for plain loops, or variables that are not the model's trainable
 * weights in order).
 */
export function denseStepFor(model: tfl.LayersModel, variables: tf.Variable[], batchSize: number): DenseStep | null {
  const heap = wasmInternals(tf.backend());
  if (!heap) return null;
  const plan = denseStackOf(model);
  if (!plan || multiplyAddsPerStep(plan, batchSize) > MAX_MULTIPLY_ADDS) return null;
  const ours = plan.flatMap((l) => (l.bias ? [l.kernel, l.bias] : [l.kernel]));
  if (ours.length !== variables.length || ours.some((v, i) => v !== variables[i])) return null;
  return new DenseStep(heap, plan);
}

export class DenseStep {
  /** Each layer's outputs after its activation, [batch, units], and the gradients flowing back into them. */
  private outs: Float32Array[] = [];
  private grads: Float32Array[] = [];
  /** Where a dropout follows a layer: its outputs after the dropout (the next layer's input), and its multipliers. */
  private dropped: (Float32Array | null)[] = [];
  private multipliers: (Float32Array | null)[] = [];
  private rowsHeld = 0;
  private offsets: Int32Array[] = [];
  private sampleOffsets = new Int32Array(0);
  private readonly weightGrad: Float64Array[];
  private readonly biasGrad: Float64Array[];

  constructor(
    private readonly heap: WasmBackendInternals,
    readonly plan: DenseLayerPlan[],
  ) {
    this.weightGrad = plan.map((l) => new Float64Array(l.inputs * l.units));
    this.biasGrad = plan.map((l) => new Float64Array(l.units));
  }

  /**
   * One step's loss (the batch mean of the weighted cross-entropy) and the gradients of every
   * variable, keyed by variable name as `tf.variableGrads` keys them. The caller disposes the gradients.
   * `x` is every sample, [n, features]; `rows` the batch's sample indices into `x`, `targets` and
   * `weights`.
   */
  run(
    task: Task,
    x: tf.Tensor,
    rows: Int32Array,
    targets: ArrayLike<number>,
    weights: ArrayLike<number>,
    reweight?: HostReweight,
  ): { loss: number; grads: Record<string, tf.Tensor> } {
    const plan = this.plan;
    const B = rows.length;
    const features = plan[0].inputs;
    if (x.dtype !== 'float32' || x.shape.length !== 2 || x.shape[1] !== features)
      throw new Error(`dense step: the samples are [${x.shape}], the first layer takes ${features} features`);
    this.hold(B);
    // Gradient tensors first: an allocation may grow the heap, which would leave earlier views empty.
    const out: Record<string, tf.Tensor> = {};
    const gradInfo = plan.map((l) => ({
      kernel: this.heap.makeOutput([l.inputs, l.units], 'float32'),
      bias: l.bias ? this.heap.makeOutput([l.units], 'float32') : null,
    }));
    const xv = heapView(this.heap, x) as Float32Array;

    // Forward: out_l = act(in_l · W_l + b_l), then the dropout after it.
    for (let li = 0; li < plan.length; li++) {
      const l = plan[li];
      const bias = l.bias ? (heapView(this.heap, l.bias) as Float32Array) : null;
      const w = heapView(this.heap, l.kernel) as Float32Array;
      if (li === 0) forwardLayer(xv, this.sampleRows(rows, l.inputs), B, l.inputs, l.units, w, bias, this.outs[0]);
      else forwardLayer(this.inputOf(li), this.batchRows(li - 1), B, l.inputs, l.units, w, bias, this.outs[li]);
      activate(l.activation, this.outs[li], B * l.units);
      const m = l.dropout ? dropoutMultipliers(l.dropout, B * l.units) : null;
      this.multipliers[li] = m;
      if (m) {
        const out = this.outs[li];
        const dropped = this.dropped[li]!;
        for (let j = 0; j < m.length; j++) dropped[j] = out[j] * m[j];
      }
    }

    // The loss and its gradient with respect to the logits (the last layer's outputs).
    const last = plan.length - 1;
    const width = plan[last].units;
    const loss = weightedCrossEntropyAndGradient(
      task,
      this.outs[last].subarray(0, B * width),
      width,
      targets,
      weights,
      rows,
      this.grads[last],
      reweight,
    );

    // Backward.
    for (let li = last; li >= 0; li--) {
      const l = plan[li];
      const dz = this.grads[li];
      // Through the activation: dz ← dz · act'(z), from the layer's outputs.
      activationGradient(l.activation, this.outs[li], dz, B * l.units);
      if (li === 0)
        weightGradients(
          xv,
          this.sampleRows(rows, l.inputs),
          B,
          l.inputs,
          l.units,
          dz,
          this.weightGrad[0],
          this.biasGrad[0],
        );
      else
        weightGradients(
          this.inputOf(li),
          this.batchRows(li - 1),
          B,
          l.inputs,
          l.units,
          dz,
          this.weightGrad[li],
          this.biasGrad[li],
        );
      if (li > 0) {
        const da = this.grads[li - 1];
        inputGradients(B, l.inputs, l.units, dz, heapView(this.heap, l.kernel) as Float32Array, da);
        const m = this.multipliers[li - 1];
        if (m) for (let j = 0; j < m.length; j++) da[j] *= m[j]; // through the dropout before this layer
      }
      (heapView(this.heap, gradInfo[li].kernel) as Float32Array).set(this.weightGrad[li]);
      out[l.kernel.name] = tf.engine().makeTensorFromTensorInfo(gradInfo[li].kernel);
      const biasInfo = gradInfo[li].bias;
      if (l.bias && biasInfo) {
        (heapView(this.heap, biasInfo) as Float32Array).set(this.biasGrad[li]);
        out[l.bias.name] = tf.engine().makeTensorFromTensorInfo(biasInfo);
      }
    }
    return { loss, grads: out };
  }

  /** Scratch for a batch of `rows` samples (kept between steps; grown when a batch is bigger). */
  private hold(rows: number): void {
    if (rows <= this.rowsHeld) return;
    this.outs = this.plan.map((l) => new Float32Array(rows * l.units));
    this.grads = this.plan.map((l) => new Float32Array(rows * l.units));
    this.dropped = this.plan.map((l) => (l.dropout ? new Float32Array(rows * l.units) : null));
    this.offsets = this.plan.map((l) => Int32Array.from({ length: rows }, (_, r) => r * l.units));
    this.sampleOffsets = new Int32Array(rows);
    this.rowsHeld = rows;
  }

  /** The input of layer `li` > 0: the previous layer's outputs, after its dropout where it drops any. */
  private inputOf(li: number): Float32Array {
    return this.multipliers[li - 1] ? this.dropped[li - 1]! : this.outs[li - 1];
  }

  /** Where each batch sample's features start in the samples tensor. */
  private sampleRows(rows: Int32Array, features: number): Int32Array {
    const off = this.sampleOffsets;
    for (let r = 0; r < rows.length; r++) off[r] = rows[r] * features;
    return off;
  }

  /** Where each row of layer `li`'s outputs starts. */
  private batchRows(li: number): Int32Array {
    return this.offsets[li];
  }
}

/*
 * The three products of a dense layer's step, each a small matrix product blocked 2 × 4 so that eight
 * sums stay in registers (one load per multiply-add instead of two loads and a store): 1.5–3× faster
 * than the plain triple loop for these sizes. Rows of the layer's input are addressed through `off`
 * (row r starts at off[r]): the batch's rows of the samples for the first layer, 0, nin, 2·nin… after.
 */

/** z[B, nout] = in · W + b. */
function forwardLayer(
  input: Float32Array,
  off: Int32Array,
  B: number,
  nin: number,
  nout: number,
  w: Float32Array,
  bias: Float32Array | null,
  z: Float32Array,
): void {
  let r = 0;
  for (; r + 2 <= B; r += 2) {
    const a0 = off[r];
    const a1 = off[r + 1];
    const z0 = r * nout;
    const z1 = z0 + nout;
    let o = 0;
    for (; o + 4 <= nout; o += 4) {
      let s00 = bias ? bias[o] : 0;
      let s01 = bias ? bias[o + 1] : 0;
      let s02 = bias ? bias[o + 2] : 0;
      let s03 = bias ? bias[o + 3] : 0;
      let s10 = s00;
      let s11 = s01;
      let s12 = s02;
      let s13 = s03;
      for (let i = 0, wo = o; i < nin; i++, wo += nout) {
        const x0 = input[a0 + i];
        const x1 = input[a1 + i];
        const w0 = w[wo];
        const w1 = w[wo + 1];
        const w2 = w[wo + 2];
        const w3 = w[wo + 3];
        s00 += x0 * w0;
        s01 += x0 * w1;
        s02 += x0 * w2;
        s03 += x0 * w3;
        s10 += x1 * w0;
        s11 += x1 * w1;
        s12 += x1 * w2;
        s13 += x1 * w3;
      }
      z[z0 + o] = s00;
      z[z0 + o + 1] = s01;
      z[z0 + o + 2] = s02;
      z[z0 + o + 3] = s03;
      z[z1 + o] = s10;
      z[z1 + o + 1] = s11;
      z[z1 + o + 2] = s12;
      z[z1 + o + 3] = s13;
    }
    for (; o < nout; o++) {
      let s0 = bias ? bias[o] : 0;
      let s1 = s0;
      for (let i = 0, wo = o; i < nin; i++, wo += nout) {
        s0 += input[a0 + i] * w[wo];
        s1 += input[a1 + i] * w[wo];
      }
      z[z0 + o] = s0;
      z[z1 + o] = s1;
    }
  }
  for (; r < B; r++) {
    const a0 = off[r];
    for (let o = 0; o < nout; o++) {
      let s0 = bias ? bias[o] : 0;
      for (let i = 0, wo = o; i < nin; i++, wo += nout) s0 += input[a0 + i] * w[wo];
      z[r * nout + o] = s0;
    }
  }
}

/** gW[nin, nout] = inᵀ · dz and gb[nout] = Σ_r dz (sums in float64). */
function weightGradients(
  input: Float32Array,
  off: Int32Array,
  B: number,
  nin: number,
  nout: number,
  dz: Float32Array,
  gw: Float64Array,
  gb: Float64Array,
): void {
  gb.fill(0);
  for (let r = 0; r < B; r++) for (let o = 0, d = r * nout; o < nout; o++) gb[o] += dz[d + o];
  let i = 0;
  for (; i + 2 <= nin; i += 2) {
    let o = 0;
    for (; o + 4 <= nout; o += 4) {
      let s00 = 0;
      let s01 = 0;
      let s02 = 0;
      let s03 = 0;
      let s10 = 0;
      let s11 = 0;
      let s12 = 0;
      let s13 = 0;
      for (let r = 0; r < B; r++) {
        const a = off[r] + i;
        const x0 = input[a];
        const x1 = input[a + 1];
        const d = r * nout + o;
        const d0 = dz[d];
        const d1 = dz[d + 1];
        const d2 = dz[d + 2];
        const d3 = dz[d + 3];
        s00 += x0 * d0;
        s01 += x0 * d1;
        s02 += x0 * d2;
        s03 += x0 * d3;
        s10 += x1 * d0;
        s11 += x1 * d1;
        s12 += x1 * d2;
        s13 += x1 * d3;
      }
      const g0 = i * nout + o;
      const g1 = g0 + nout;
      gw[g0] = s00;
      gw[g0 + 1] = s01;
      gw[g0 + 2] = s02;
      gw[g0 + 3] = s03;
      gw[g1] = s10;
      gw[g1 + 1] = s11;
      gw[g1 + 2] = s12;
      gw[g1 + 3] = s13;
    }
    for (; o < nout; o++) {
      let s0 = 0;
      let s1 = 0;
      for (let r = 0; r < B; r++) {
        const d = dz[r * nout + o];
        s0 += input[off[r] + i] * d;
        s1 += input[off[r] + i + 1] * d;
      }
      gw[i * nout + o] = s0;
      gw[(i + 1) * nout + o] = s1;
    }
  }
  for (; i < nin; i++) {
    for (let o = 0; o < nout; o++) {
      let s0 = 0;
      for (let r = 0; r < B; r++) s0 += input[off[r] + i] * dz[r * nout + o];
      gw[i * nout + o] = s0;
    }
  }
}

/** dIn[B, nin] = dz · Wᵀ: the gradient of the previous layer's outputs. */
function inputGradients(
  B: number,
  nin: number,
  nout: number,
  dz: Float32Array,
  w: Float32Array,
  dIn: Float32Array,
): void {
  let r = 0;
  for (; r + 2 <= B; r += 2) {
    const d0 = r * nout;
    const d1 = d0 + nout;
    let i = 0;
    for (; i + 4 <= nin; i += 4) {
      let s00 = 0;
      let s01 = 0;
      let s02 = 0;
      let s03 = 0;
      let s10 = 0;
      let s11 = 0;
      let s12 = 0;
      let s13 = 0;
      const w0 = i * nout;
      const w1 = w0 + nout;
      const w2 = w1 + nout;
      const w3 = w2 + nout;
      for (let o = 0; o < nout; o++) {
        const g0 = dz[d0 + o];
        const g1 = dz[d1 + o];
        const v0 = w[w0 + o];
        const v1 = w[w1 + o];
        const v2 = w[w2 + o];
        const v3 = w[w3 + o];
        s00 += g0 * v0;
        s01 += g0 * v1;
        s02 += g0 * v2;
        s03 += g0 * v3;
        s10 += g1 * v0;
        s11 += g1 * v1;
        s12 += g1 * v2;
        s13 += g1 * v3;
      }
      const p0 = r * nin + i;
      const p1 = p0 + nin;
      dIn[p0] = s00;
      dIn[p0 + 1] = s01;
      dIn[p0 + 2] = s02;
      dIn[p0 + 3] = s03;
      dIn[p1] = s10;
      dIn[p1 + 1] = s11;
      dIn[p1 + 2] = s12;
      dIn[p1 + 3] = s13;
    }
    for (; i < nin; i++) {
      let s0 = 0;
      let s1 = 0;
      for (let o = 0, wo = i * nout; o < nout; o++) {
        s0 += dz[d0 + o] * w[wo + o];
        s1 += dz[d1 + o] * w[wo + o];
      }
      dIn[r * nin + i] = s0;
      dIn[(r + 1) * nin + i] = s1;
    }
  }
  for (; r < B; r++) {
    for (let i = 0; i < nin; i++) {
      let s0 = 0;
      for (let o = 0, wo = i * nout; o < nout; o++) s0 += dz[r * nout + o] * w[wo + o];
      dIn[r * nin + i] = s0;
    }
  }
}

function activate(kind: DenseActivation, z: Float32Array, n: number): void {
  switch (kind) {
    case 'linear':
      return;
    case 'relu':
      for (let i = 0; i < n; i++) if (!(z[i] > 0)) z[i] = 0;
      return;
    case 'sigmoid':
      for (let i = 0; i < n; i++) z[i] = 1 / (1 + Math.exp(-z[i]));
      return;
    case 'tanh':
      for (let i = 0; i < n; i++) z[i] = Math.tanh(z[i]);
      return;
  }
}

/** dz ← dz · act'(z), with act' written in terms of the activation's output y = act(z). */
function activationGradient(kind: DenseActivation, y: Float32Array, dz: Float32Array, n: number): void {
  switch (kind) {
    case 'linear':
      return;
    case 'relu':
      for (let i = 0; i < n; i++) if (!(y[i] > 0)) dz[i] = 0;
      return;
    case 'sigmoid':
      for (let i = 0; i < n; i++) dz[i] *= y[i] * (1 - y[i]);
      return;
    case 'tanh':
      for (let i = 0; i < n; i++) dz[i] *= 1 - y[i] * y[i];
      return;
  }
}
