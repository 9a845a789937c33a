/**
 * A training step for a plain CNN (convolutions, 2×2 max pooling, a flatten, dense layers) run on the
 * wasm heap by Fair Prune's SIMD kernels directly, without tfjs's tape: the forward pass, the weighted
 * cross-entropy on the host and the backward pass in one go, with the gradients handed back as tensors
 * so that the rest of the step (gradient masks, Adam, masks re-applied) is the same as for any model.
 *
 * Why: with its convolutions at the SIMD module's speed, a cnn32 epoch on the tfjs path still spent
 * about 15 ms of its ~125 outside any kernel (tape, tidy, saved tensors, ~180 kernel dispatches a step),
 * and 6 ms adding biases and applying relus as separate passes. Here a convolution's bias and relu are
 * its epilogue, and a dense layer's too; a max pooling records each window's winner, so that its
 * gradient (with the relu's before it folded in) reads neither activation again. The convolutions and
 * their gradients run the same kernels as the tfjs path (`conv2dSimd`, `conv2dBackpropFilterSimd`,
 * `conv2dBackpropInputSimd`, the bias sums), so the results are those of the tfjs path up to the order
 * of a few float32 sums and the sign of zero gradients. Each convolution followed by a pooling runs
 * together with it (`convPoolForward`), and the first convolution's gradients are summed from its
 * pooling's (`pooledFilterGrad`): the largest activations of the step and their gradients are never
 * written. cnn32 epochs: 112–119 ms on the tfjs path, 96–100 with this step, 93–94 with the pooling
 * winners, then each fusion faster in 14 to 15 of 15 interleaved epochs: 87.8 → 85.7 ms (pooled
 * filter gradient), 96.4 → 93.3 (first convolution with its pooling), 89.4 → 85.7 (second, Winograd).
 *
 * What it takes (anything else keeps the tfjs path): one input [H, W, C] and one output; in order,
 * Conv2D layers (channels last, dilation 1, 'same' or 'valid', relu or linear, filters in fours; after
 * the first, stride 1 and input channels in fours, since their input gradient runs as a stride-1
 * convolution), 2×2 stride-2 'valid' max pooling over channels in fours, one Flatten, then Dense layers
 * (relu or linear; inputs in fours; the last any width, the others in fours), with Dropout layers anywhere
 * before the last (the tape's draws: dropout.ts). Every layer trainable, called once, on the previous layer's
 * output.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Task } from '../protocol/results';
import type { LayerLike } from './dense-step';
import { dropoutMultipliers, dropoutOf, multiplyOnHeap, type DropoutOnHeap } from './dropout';
import { weightedCrossEntropyAndGradient, type HostReweight } from './losses';
import {
  conv2dBackpropFilterSimd,
  conv2dBackpropInputSimd,
  conv2dPoolSimd,
  conv2dSimd,
  matMulSimd,
  maxPool2x2WinnersSimd,
  reluGradSimd,
  simdKernels,
  winogradTakes,
  type SimdExports,
} from './kernels/simd-kernels';
import { sumLeadingAxesOnHeap } from './kernels/sum';
import { heapOffset, heapView, wasmInternals, type WasmBackendInternals } from './kernels/wasm-heap';

type Activation = 'relu' | 'linear';

export type ConvPlanLayer =
  | {
      kind: 'conv';
      name: string;
      kernel: tf.Variable;
      bias: tf.Variable | null;
      strides: [number, number];
      padding: 'same' | 'valid';
      activation: Activation;
    }
  | { kind: 'pool'; name: string; afterRelu: boolean }
  | { kind: 'flatten'; name: string }
  | ({ kind: 'dropout' } & DropoutOnHeap)
  | { kind: 'dense'; name: string; kernel: tf.Variable; bias: tf.Variable | null; activation: Activation };

const pair = (v: unknown): [number, number] =>
  Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)];
const isPair = (v: unknown, n: number) => {
  const [a, b] = pair(v);
  return a === n && b === n;
};

function weightsOf(layer: LayerLike): { kernel?: tf.Variable; bias: tf.Variable | null } {
  const find = (suffix: RegExp) =>
    layer.trainableWeights.find((w) => suffix.test(w.originalName))?.read() as tf.Variable | undefined;
  return { kernel: find(/kernel$/), bias: find(/bias$/) ?? null };
}

/**
 * The model as a chain this step takes, input first, or null (see the file's comment for what it takes).
 */
export function convStackOf(model: tfl.LayersModel): ConvPlanLayer[] | null {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) return null;
  const inShape = model.inputs[0].shape;
  if (inShape.length !== 4 || inShape.slice(1).some((d) => typeof d !== 'number')) return null;
  let shape = inShape.slice(1) as number[]; // the current layer's input, without the batch
  const plan: ConvPlanLayer[] = [];
  let previous: LayerLike | null = null;
  for (const layer of model.layers as unknown as LayerLike[]) {
    const cls = layer.getClassName();
    if (cls === 'InputLayer') {
      if (previous) return null;
      previous = layer;
      continue;
    }
    if (!layer.trainable || layer.inboundNodes.length !== 1) return null;
    const inbound = layer.inboundNodes[0].inboundLayers;
    if (inbound.length !== 1 || (previous && inbound[0] !== previous)) return null;
    const cfg = layer.getConfig();
    const activation = String(cfg.activation ?? 'linear');
    if (cls === 'Conv2D') {
      const { kernel, bias } = weightsOf(layer);
      if (shape.length !== 3 || !kernel || kernel.dtype !== 'float32' || kernel.shape.length !== 4) return null;
      const [fh, fw, ci, co] = kernel.shape;
      const padding = cfg.padding;
      const strides = pair(cfg.strides);
      if (
        ci !== shape[2] ||
        co % 4 !== 0 ||
        (padding !== 'same' && padding !== 'valid') ||
        cfg.dataFormat !== 'channelsLast' ||
        !isPair(cfg.dilationRate ?? 1, 1)
      )
        return null;
      if (activation !== 'relu' && activation !== 'linear') return null;
      const first = !plan.some((l) => l.kind === 'conv');
      if (!first && (ci % 4 !== 0 || strides[0] !== 1 || strides[1] !== 1)) return null;
      if (layer.weights.length !== (bias ? 2 : 1) || (bias && (bias.dtype !== 'float32' || bias.size !== co)))
        return null;
      const info = tf.backend_util.computeConv2DInfo(
        [1, shape[0], shape[1], ci],
        [fh, fw, ci, co],
        strides,
        1,
        padding,
        undefined,
        false,
        'channelsLast',
      );
      if (info.outHeight <= 0 || info.outWidth <= 0) return null;
      plan.push({ kind: 'conv', name: layer.name, kernel, bias, strides, padding, activation });
      shape = [info.outHeight, info.outWidth, co];
    } else if (cls === 'MaxPooling2D') {
      if (
        shape.length !== 3 ||
        !isPair(cfg.poolSize, 2) ||
        !isPair(cfg.strides ?? cfg.poolSize, 2) ||
        cfg.padding !== 'valid' ||
        cfg.dataFormat !== 'channelsLast'
      )
        return null;
      if (shape[2] % 4 !== 0 || shape[0] < 2 || shape[1] < 2) return null;
      const before = plan[plan.length - 1];
      plan.push({ kind: 'pool', name: layer.name, afterRelu: before?.kind === 'conv' && before.activation === 'relu' });
      shape = [Math.floor(shape[0] / 2), Math.floor(shape[1] / 2), shape[2]];
    } else if (cls === 'Flatten') {
      if (shape.length !== 3 || !plan.some((l) => l.kind === 'conv')) return null;
      plan.push({ kind: 'flatten', name: layer.name });
      shape = [shape[0] * shape[1] * shape[2]];
    } else if (cls === 'Dense') {
      const { kernel, bias } = weightsOf(layer);
      if (
        shape.length !== 1 ||
        !kernel ||
        kernel.dtype !== 'float32' ||
        kernel.shape.length !== 2 ||
        kernel.shape[0] !== shape[0] ||
        shape[0] % 4 !== 0
      )
        return null;
      if (activation !== 'relu' && activation !== 'linear') return null;
      const units = kernel.shape[1];
      if (layer.weights.length !== (bias ? 2 : 1) || (bias && (bias.dtype !== 'float32' || bias.size !== units)))
        return null;
      const lastDense = [...plan].reverse().find((l) => l.kind !== 'dropout');
      if (lastDense?.kind === 'dense' && (lastDense.kernel.shape[1] as number) % 4 !== 0) return null; // only the last may be any width
      plan.push({ kind: 'dense', name: layer.name, kernel, bias, activation });
      shape = [units];
    } else if (cls === 'Dropout') {
      const dropout = dropoutOf(layer);
      if ('unsupported' in dropout) return null;
      plan.push({ kind: 'dropout', ...dropout });
    } else {
      return null;
    }
    previous = layer;
  }
  const outputLayer = (model.outputs[0] as unknown as { sourceLayer: LayerLike }).sourceLayer;
  if (outputLayer !== previous || plan[plan.length - 1]?.kind !== 'dense') return null;
  return plan;
}

/**
 * The heap step for `model` on the current backend, or null where it does not apply (not wasm, the
 * SIMD module not loaded, not a chain it takes, or variables that are not the model's trainable weights
 * in order).
 */
export function convStepFor(model: tfl.LayersModel, variables: tf.Variable[]): ConvStep | null {
  const heap = wasmInternals(tf.backend());
  const kernels = simdKernels(tf.backend());
  if (!heap || !kernels) return null;
  const plan = convStackOf(model);
  if (!plan) return null;
  const ours = plan.flatMap((l) =>
    l.kind === 'conv' || l.kind === 'dense' ? (l.bias ? [l.kernel, l.bias] : [l.kernel]) : [],
  );
  if (ours.length !== variables.length || ours.some((v, i) => v !== variables[i])) return null;
  return new ConvStep(heap, kernels, plan, model.inputs[0].shape.slice(1) as number[]);
}

const ceil4 = (n: number) => Math.ceil(n / 4) * 4;

export class ConvStep {
  constructor(
    private readonly heap: WasmBackendInternals,
    private readonly kernels: SimdExports,
    readonly plan: ConvPlanLayer[],
    private readonly inputShape: number[],
  ) {}

  /**
   * One step's loss (the batch mean of the weighted cross-entropy) and the gradients of every
   * variable, keyed by variable name as `tf.variableGrads` keys them. The caller disposes the gradients.
   * `x` is every sample, [n, H, W, C]; `rows` the batch's sample indices into `x`, `targets` and
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
    const heap = this.heap;
    const backend = tf.backend();
    const B = rows.length;
    const size = this.inputShape.reduce((a, d) => a * d, 1);
    if (
      x.dtype !== 'float32' ||
      x.size !== x.shape[0] * size ||
      x.shape.slice(1).some((d, i) => d !== this.inputShape[i])
    ) {
      throw new Error(`conv step: the samples are [${x.shape}], the model takes [${this.inputShape}]`);
    }
    return onHeap(heap, 'conv step', ({ keep, give, grads }) => {
      // The batch, gathered into one tensor.
      const input = keep(heap.makeOutput([B, ...this.inputShape], 'float32'), 'the batch');
      const xv = heapView(heap, x) as Float32Array;
      const bv = heapView(heap, input) as Float32Array;
      for (let r = 0; r < B; r++) bv.set(xv.subarray(rows[r] * size, (rows[r] + 1) * size), r * size);

      // Forward: each layer's input and output, as heap tensors (null where a convolution and the
      // pooling after it ran as one kernel: the convolution's output never existed), and their shapes.
      const ins: (tf.TensorInfo | null)[] = [];
      const shapes: number[][] = []; // the input shape of a pooling that ran inside its convolution
      const outs: (tf.TensorInfo | null)[] = [];
      const winners: tf.TensorInfo[] = []; // each pooling's winners, in order
      const dropped: (Float32Array | null)[] = []; // each dropout's multipliers, by layer
      let a = input;
      for (let li = 0; li < this.plan.length; li++) {
        const l = this.plan[li];
        ins[li] = a;
        if (l.kind === 'conv') {
          const next = this.plan[li + 1];
          const pooled = next?.kind === 'pool' ? this.convPoolForward(a, l, next.afterRelu, winners, keep) : null;
          if (pooled) {
            outs[li] = null;
            ins[li + 1] = null;
            outs[li + 1] = pooled.out;
            shapes[li + 1] = pooled.convShape;
            a = pooled.out;
            li++;
            continue;
          }
          a = keep(
            conv2dSimd(
              backend,
              a,
              l.kernel,
              { strides: l.strides, pad: l.padding },
              { bias: l.bias ?? undefined, activation: l.activation },
            ),
            `${l.name}'s convolution`,
          );
        } else if (l.kind === 'pool') {
          a = this.poolForward(a, l.afterRelu, winners, keep);
        } else if (l.kind === 'flatten') {
          a = { dataId: a.dataId, shape: [B, a.shape[1] * a.shape[2] * a.shape[3]], dtype: 'float32' };
        } else if (l.kind === 'dropout') {
          const m = (dropped[li] = dropoutMultipliers(l, tf.util.sizeFromShape(a.shape)));
          if (m) a = keep(multiplyOnHeap(heap, a, m), `${l.name}'s output`);
        } else {
          a = denseForwardOnHeap(heap, a, l, keep);
        }
        outs[li] = a;
      }
      const input_ = (li: number) => ins[li] ?? fail(`the input of ${this.plan[li].name}`);
      const inShape = (li: number) => ins[li]?.shape ?? shapes[li];

      // The loss and its gradient with respect to the logits (the last layer's outputs, maybe padded).
      const last = this.plan[this.plan.length - 1] as Extract<ConvPlanLayer, { kind: 'dense' }>;
      const lossAndGrad = logitsLossOnHeap(
        heap,
        task,
        a,
        last.kernel.shape[1] as number,
        targets,
        weights,
        rows,
        keep,
        reweight,
      );
      const loss = lossAndGrad.loss;
      let g = lossAndGrad.dLogits;

      // Backward.
      const firstWeighted = this.plan.findIndex((p) => p.kind === 'conv' || p.kind === 'dense');
      // Down to the first layer with weights: nothing before it (a dropout on the images) needs a gradient.
      for (let li = this.plan.length - 1; li >= firstWeighted; li--) {
        const l = this.plan[li];
        if (l.kind === 'flatten') {
          g = { dataId: g.dataId, shape: inShape(li).slice(), dtype: 'float32' };
          continue;
        }
        if (l.kind === 'dropout') {
          const m = dropped[li];
          if (m) g = keep(multiplyOnHeap(heap, g, m), `${l.name}'s gradient`);
          continue;
        }
        if (l.kind === 'pool') {
          const win = winners.pop()!;
          const conv = this.plan[li - 1];
          if (
            conv?.kind === 'conv' &&
            li - 1 === firstWeighted &&
            this.pooledFilterGrad(conv, input_(li - 1), g, win, give, keep)
          ) {
            li--; // that convolution's gradients are done, from this pooling's gradient directly
            continue;
          }
          const [, H, W, C] = inShape(li);
          const [, OH, OW] = (outs[li] ?? fail(`${l.name}'s output`)).shape;
          const dx = keep(heap.makeOutput([B, H, W, C], 'float32'), `${l.name}'s gradient`);
          this.kernels.max_pool_2x2_winners_grad(
            heapOffset(heap, g),
            heapOffset(heap, win),
            heapOffset(heap, dx),
            B,
            H,
            W,
            C,
            OH,
            OW,
          );
          g = dx;
          continue;
        }
        // After a pooling that folded this relu's gradient in (see poolForward), g is dz already.
        const folded = this.plan[li + 1]?.kind === 'pool' && (this.plan[li + 1] as { afterRelu: boolean }).afterRelu;
        const dz =
          l.activation === 'relu' && !folded
            ? keep(reluGradSimd(backend, g, outs[li] ?? fail(`${l.name}'s output`)), `${l.name}'s relu gradient`)
            : g;
        if (l.kind === 'conv') {
          if (l.bias) give(l.bias, sumOrThrow(backend, dz, [0, 1, 2], l.name));
          give(
            l.kernel,
            conv2dBackpropFilterSimd(
              backend,
              input_(li),
              dz,
              l.kernel.shape as [number, number, number, number],
              l.strides,
              l.padding,
            ) ?? fail(`${l.name}'s filter gradient`),
          );
          if (li !== firstWeighted) {
            g = keep(
              conv2dBackpropInputSimd(backend, dz, l.kernel, {
                strides: l.strides,
                pad: l.padding,
                inputShape: inShape(li) as [number, number, number, number],
              }),
              `${l.name}'s input gradient`,
            );
          }
        } else {
          g = denseBackwardOnHeap(heap, this.kernels, input_(li), dz, l, li !== firstWeighted, give, keep);
        }
      }
      return { loss, grads };
    });
  }

  /**
   * A convolution and the 2×2 pooling after it as one kernel (`conv2dPoolSimd`): only each window's max
   * is written, with its winner, so the convolution's output never goes to memory.
   */
  private convPoolForward(
    a: tf.TensorInfo,
    l: Extract<ConvPlanLayer, { kind: 'conv' }>,
    afterRelu: boolean,
    winners: tf.TensorInfo[],
    keep: (t: tf.TensorInfo | null, what: string) => tf.TensorInfo,
  ): { out: tf.TensorInfo; convShape: number[] } | null {
    const r = conv2dPoolSimd(
      tf.backend(),
      a,
      l.kernel,
      { strides: l.strides, pad: l.padding },
      { bias: l.bias ?? undefined, activation: l.activation },
      afterRelu,
    );
    if (!r) return null;
    keep(r.out, `${l.name}'s pooled output`);
    winners.push(keep(r.winners, `${l.name}'s pooling winners`));
    return r;
  }

  /**
   * 2×2 max pooling of stride 2 through the SIMD module, which also records each window's winner (the
   * input its gradient goes to: the max-pool gradient's rule), so the backward pass reads neither the
   * input nor the output again. After a relu, a winner that is not positive passes nothing: the relu's
   * gradient folded in (the same values as max-pool gradient then relu gradient, up to the sign of zeros
   * and NaN activations off the winners). Between them the two passes had read and written every
   * activation of the layer three times.
   */
  private poolForward(
    a: tf.TensorInfo,
    afterRelu: boolean,
    winners: tf.TensorInfo[],
    keep: (t: tf.TensorInfo | null, what: string) => tf.TensorInfo,
  ): tf.TensorInfo {
    const r = maxPool2x2WinnersSimd(tf.backend(), a, afterRelu);
    winners.push(keep(r?.winners ?? null, "a pooling's winners"));
    return keep(r?.out ?? null, 'a pooling');
  }

  /**
   * The first convolution's filter and bias gradients straight from the pooling after it (its
   * gradient and winners), where the convolution runs direct (not Winograd: the first layer of a
   * network on images, 1 or 3 channels): the convolution's output gradient, the largest tensor of the
   * backward pass, is never written. False where it does not apply.
   */
  private pooledFilterGrad(
    conv: Extract<ConvPlanLayer, { kind: 'conv' }>,
    x: tf.TensorInfo,
    dyp: tf.TensorInfo,
    win: tf.TensorInfo,
    give: (v: tf.Variable, t: tf.TensorInfo) => void,
    keep: (t: tf.TensorInfo | null, what: string) => tf.TensorInfo,
  ): boolean {
    const heap = this.heap;
    const shape = conv.kernel.shape as [number, number, number, number];
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      shape,
      conv.strides,
      1,
      conv.padding,
      undefined,
      false,
      'channelsLast',
    );
    if (winogradTakes(info)) return false;
    const {
      batchSize: B,
      inHeight: H,
      inWidth: W,
      inChannels: ci,
      outHeight: oh,
      outWidth: ow,
      outChannels: co,
    } = info;
    const dw = heap.makeOutput(shape.slice(), 'float32');
    const db = heap.makeOutput([co], 'float32');
    const row = keep(heap.makeOutput([Math.max(ow, 1) * co], 'float32'), `${conv.name}'s gradient row`);
    const sums = keep(heap.makeOutput([2 * co], 'float32'), `${conv.name}'s bias sums`); // co float64s
    this.kernels.conv2d_filter_grad_pooled(
      heapOffset(heap, x),
      heapOffset(heap, dyp),
      heapOffset(heap, win),
      heapOffset(heap, dw),
      heapOffset(heap, db),
      heapOffset(heap, row),
      heapOffset(heap, sums),
      B,
      H,
      W,
      ci,
      oh,
      ow,
      co,
      info.filterHeight,
      info.filterWidth,
      info.strideHeight,
      info.strideWidth,
      info.padInfo.top,
      info.padInfo.left,
    );
    give(conv.kernel, dw);
    if (conv.bias) give(conv.bias, db);
    else heap.disposeData(db.dataId);
    return true;
  }
}

/** A heap tensor kept for the step's end (freed then), or an error naming `what` where a kernel did not take it. */
export type Keep = (t: tf.TensorInfo | null, what: string) => tf.TensorInfo;

/** What a heap step's body gets from `onHeap`. */
export interface StepScratch {
  keep: Keep;
  /** Hands `t` out as `v`'s gradient. */
  give: (v: tf.Variable, t: tf.TensorInfo) => void;
  /** The gradients handed out, keyed by variable name as `tf.variableGrads` keys them. */
  grads: Record<string, tf.Tensor>;
}

/**
 * Runs a heap step's `body`, then frees every tensor it kept (once each: a reshaped view shares its data);
 * where the body throws, the gradients it handed out are freed too. `step` names it in errors.
 */
export function onHeap<R>(heap: WasmBackendInternals, step: string, body: (s: StepScratch) => R): R {
  const scratch: tf.TensorInfo[] = [];
  const grads: Record<string, tf.Tensor> = {};
  const keep: Keep = (t, what) => {
    if (!t) throw new Error(`${step}: ${what} was not taken by the SIMD kernels`);
    scratch.push(t);
    return t;
  };
  const give = (v: tf.Variable, t: tf.TensorInfo) => {
    grads[v.name] = tf.engine().makeTensorFromTensorInfo(t);
  };
  try {
    return body({ keep, give, grads });
  } catch (e) {
    tf.dispose(Object.values(grads));
    throw e;
  } finally {
    const seen = new Set<object>();
    for (const t of scratch) {
      if (seen.has(t.dataId)) continue;
      seen.add(t.dataId);
      heap.disposeData(t.dataId);
    }
  }
}

/** A Dense layer as the heap steps run it. */
export interface DenseOnHeap {
  name: string;
  kernel: tf.Variable;
  bias: tf.Variable | null;
  activation: Activation;
}

/**
 * The batch loss (the mean weighted cross-entropy) of the logits `z` [B, padded] on the heap, of which the
 * first `width` columns are the model's, and its gradient with respect to `z` as a heap tensor of z's shape.
 */
export function logitsLossOnHeap(
  heap: WasmBackendInternals,
  task: Task,
  z: tf.TensorInfo,
  width: number,
  targets: ArrayLike<number>,
  weights: ArrayLike<number>,
  rows: Int32Array,
  keep: Keep,
  reweight?: HostReweight,
): { loss: number; dLogits: tf.TensorInfo } {
  const B = rows.length;
  const padded = z.shape[1];
  const zv = heapView(heap, z) as Float32Array;
  const logits =
    padded === width
      ? zv
      : Float32Array.from({ length: B * width }, (_, i) => zv[Math.floor(i / width) * padded + (i % width)]);
  const dLogits = new Float32Array(B * width);
  const loss = weightedCrossEntropyAndGradient(task, logits, width, targets, weights, rows, dLogits, reweight);
  const g = keep(heap.makeOutput([B, padded], 'float32'), "the logits' gradient");
  const gv = heapView(heap, g) as Float32Array;
  if (padded === width) gv.set(dLogits);
  else {
    // The padding columns are zeros, not whatever the heap held there: their gradient meets the padded
    // weights' zero rows in the input gradient, and a NaN or ∞ left on the heap times 0 is NaN.
    gv.fill(0);
    for (let r = 0; r < B; r++) gv.set(dLogits.subarray(r * width, (r + 1) * width), r * padded);
  }
  return { loss, dLogits: g };
}

/** act(a · W + b), through the SIMD 1×1 convolution; a last layer whose width is not a multiple of 4 gets zero columns up to one (its logits are read without them). */
export function denseForwardOnHeap(
  heap: WasmBackendInternals,
  a: tf.TensorInfo,
  l: DenseOnHeap,
  keep: Keep,
): tf.TensorInfo {
  const [K, N] = l.kernel.shape;
  const Np = ceil4(N);
  if (Np === N)
    return keep(
      matMulSimd(tf.backend(), a, l.kernel, false, false, { bias: l.bias ?? undefined, activation: l.activation }),
      `${l.name}'s product`,
    );
  const w = keep(heap.makeOutput([K, Np], 'float32'), `${l.name}'s padded weights`);
  const b = l.bias ? keep(heap.makeOutput([Np], 'float32'), `${l.name}'s padded bias`) : null;
  const wv = heapView(heap, w) as Float32Array;
  const src = heapView(heap, l.kernel) as Float32Array;
  wv.fill(0);
  for (let k = 0; k < K; k++) wv.set(src.subarray(k * N, (k + 1) * N), k * Np);
  if (b && l.bias) {
    const bv = heapView(heap, b) as Float32Array;
    bv.fill(0);
    bv.set(heapView(heap, l.bias) as Float32Array);
  }
  return keep(
    matMulSimd(tf.backend(), a, w, false, false, { bias: b ?? undefined, activation: l.activation }),
    `${l.name}'s product`,
  );
}

/**
 * A dense layer's weight and bias gradients (handed to `give`) and, when `needInput`, the gradient of
 * its input: dW = aᵀ·dz as a 1×1 filter gradient, da = dz·Wᵀ as a 1×1 convolution, db = Σ_rows dz.
 * dz may be padded to a multiple of 4 columns (zeros there).
 */
export function denseBackwardOnHeap(
  heap: WasmBackendInternals,
  k: SimdExports,
  a: tf.TensorInfo,
  dz: tf.TensorInfo,
  l: DenseOnHeap,
  needInput: boolean,
  give: (v: tf.Variable, t: tf.TensorInfo) => void,
  keep: Keep,
): tf.TensorInfo {
  const B = a.shape[0];
  const [K, N] = l.kernel.shape;
  const Np = dz.shape[1];
  const dwP =
    Np === N
      ? heap.makeOutput([K, N], 'float32')
      : keep(heap.makeOutput([K, Np], 'float32'), `${l.name}'s padded weight gradient`);
  k.conv2d_filter_grad(
    heapOffset(heap, a),
    heapOffset(heap, dz),
    heapOffset(heap, dwP),
    1,
    1,
    B,
    K,
    1,
    B,
    Np,
    1,
    1,
    1,
    1,
    0,
    0,
  );
  let dw = dwP;
  if (Np !== N) {
    dw = heap.makeOutput([K, N], 'float32');
    const from = heapView(heap, dwP) as Float32Array;
    const to = heapView(heap, dw) as Float32Array;
    for (let i = 0; i < K; i++) to.set(from.subarray(i * Np, i * Np + N), i * N);
  }
  give(l.kernel, dw);
  if (l.bias) {
    const sums = sumOrThrow(tf.backend(), dz, [0], l.name);
    if (Np === N) give(l.bias, sums);
    else {
      keep(sums, `${l.name}'s padded bias gradient`);
      const db = heap.makeOutput([N], 'float32');
      (heapView(heap, db) as Float32Array).set((heapView(heap, sums) as Float32Array).subarray(0, N));
      give(l.bias, db);
    }
  }
  if (!needInput) return dz;
  // Wᵀ [Np, K], zero rows past N, then da[B, K] = dz · Wᵀ.
  const wt = keep(heap.makeOutput([Np, K], 'float32'), `${l.name}'s transposed weights`);
  const da = keep(heap.makeOutput([B, K], 'float32'), `${l.name}'s input gradient`);
  const tv = heapView(heap, wt) as Float32Array;
  const wv = heapView(heap, l.kernel) as Float32Array;
  tv.fill(0);
  for (let i = 0; i < K; i++) for (let n = 0; n < N; n++) tv[n * K + i] = wv[i * N + n];
  k.conv2d(
    heapOffset(heap, dz),
    heapOffset(heap, wt),
    heapOffset(heap, da),
    heapOffset(heap, dz),
    0,
    0,
    1,
    1,
    B,
    Np,
    1,
    B,
    K,
    1,
    1,
    1,
    1,
    1,
    1,
    0,
    0,
  );
  return da;
}

function fail(what: string): never {
  throw new Error(`conv step: ${what} was not taken by the SIMD kernels`);
}

function sumOrThrow(backend: unknown, x: tf.TensorInfo, axes: number[], name: string): tf.TensorInfo {
  return sumLeadingAxesOnHeap(backend, x, axes, false) ?? fail(`${name}'s bias gradient`);
}
