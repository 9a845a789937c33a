/**
 * A training step for image models with branches, ResNets above all, run on the wasm heap by Fair Prune's
 * SIMD kernels without tfjs's tape, as conv-step.ts does for plain CNNs: the forward pass over the model's
 * graph, the weighted cross-entropy on the host and the backward pass in one go, the gradients handed back
 * as tensors so that the rest of the step (gradient masks, Adam, masks re-applied) is the same as for any
 * model.
 *
 * Why: on the tfjs path a ResNet-20 step is ~600 kernel dispatches through the tape, batch normalization
 * in training mode is a dozen of them a layer (moments, a fused BatchNorm that the gradient cannot reuse,
 * the moments' own gradients), and wasm runs a strided convolution's input gradient as a scalar loop.
 * Here batch normalization is two kernels forward (`bn_moments`, `bn_forward` with the relu after it)
 * and one backward (`bn_backward`, the relu's gradient folded in, the bias gradient of a convolution before it
 * summed in the same pass); a residual add and its relu are one pass (`add_act`); global average pooling one;
 * the convolutions are those of the tfjs path
 * (`conv2dSimd`, `conv2dBackpropFilterSimd`, `conv2dBackpropInputSimd`, strided ones included).
 *
 * Batch normalization trains as tfjs-layers trains it: the batch's mean and biased variance normalize, and
 * the moving statistics move towards them by 1 − momentum each step (assigned to their variables, as
 * `model.apply(x, { training: true })` writes them).
 *
 * MobileNets too: a depthwise convolution is three kernels of its own (`depthwise_conv2d` and its two
 * gradients), and relu6 (ReLU with maxValue 6) runs inside the batch normalization or add before it as relu does.
 *
 * Channels need not come in fours (MobileNet at width 0.35 has 11, 22, 44, 89, … of them): on the heap every
 * tensor's channels are padded to a multiple of 4 (`heapShapesOf`), the padded filters, γ, β and biases zero,
 * so the padded channels hold zeros all the way (a zero channel normalizes to β = 0) and their gradients,
 * zeros too, are dropped. The kernels stay as they are, all in fours; the weights are copied padded each step
 * (a small fraction of the step). The input keeps its channels where only convolutions read it (they take any
 * input channels), so a first layer on RGB images does no work for a fourth channel.
 *
 * What it takes (anything else keeps the tfjs path, and `graphPlanOf` names the first layer it does not
 * take): one input [H, W, C] and one output; Conv2D (channels last, dilation 1, 'same' or 'valid', any
 * strides and size, relu or linear), DepthwiseConv2D (depth multiplier 1, otherwise as Conv2D but linear),
 * BatchNormalization over the last axis (with γ and β), Activation relu, relu6 or linear, ReLU (plain or
 * capped at 6), Add, ZeroPadding2D, GlobalAveragePooling2D and an AveragePooling2D whose one window covers the
 * whole map, MaxPooling2D (2×2, stride 2, 'valid': VGG-style CNNs with batch normalization), Dropout (the tape's
 * draws: dropout.ts), Flatten (of channels in fours, or of one pixel), a Reshape between [1, 1, C] and [C]
 * (Keras' MobileNet classifier), and Dense layers (relu or linear; the last any width) ending the model, or a
 * linear 1×1 convolution on one pixel, reshaped to [classes]. Every layer trainable and called once.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Task } from '../protocol/results';
import { denseBackwardOnHeap, denseForwardOnHeap, logitsLossOnHeap, onHeap, type DenseOnHeap } from './conv-step';
import type { LayerLike } from './dense-step';
import { dropoutMultipliers, dropoutOf, multiplyOnHeap, type DropoutOnHeap } from './dropout';
import type { HostReweight } from './losses';
import {
  conv2dBackpropFilterSimd,
  conv2dBackpropInputSimd,
  conv2dSimd,
  maxPool2x2WinnersSimd,
  reluGradSimd,
  simdKernels,
  type DepthwiseDims,
  type SimdExports,
} from './kernels/simd-kernels';
import { sumLeadingAxesOnHeap } from './kernels/sum';
import { heapOffset, heapView, wasmInternals, type WasmBackendInternals } from './kernels/wasm-heap';

type Activation = 'relu' | 'linear';

interface NodeBase {
  name: string;
  /** Indices of the nodes whose outputs this one takes, in order. */
  inputs: number[];
  /** The output's shape without the batch (on the heap, see `heapShapesOf`). */
  shape: number[];
}

export type GraphNode = NodeBase &
  (
    | { kind: 'input' }
    | {
        kind: 'conv';
        kernel: tf.Variable;
        bias: tf.Variable | null;
        strides: [number, number];
        padding: 'same' | 'valid';
        activation: Activation;
      }
    | {
        kind: 'depthwise';
        /** [fh, fw, C, 1]. */
        kernel: tf.Variable;
        bias: tf.Variable | null;
        strides: [number, number];
        padding: 'same' | 'valid';
        /** Where the filter starts above and left of each output pixel's input. */
        top: number;
        left: number;
      }
    | {
        kind: 'batchnorm';
        gamma: tf.Variable;
        beta: tf.Variable;
        movingMean: tf.Variable;
        movingVariance: tf.Variable;
        epsilon: number;
        momentum: number;
        /** A relu after it, run in the same pass. */
        relu: boolean;
        /** That relu is capped at 6 (relu6). */
        relu6: boolean;
      }
    | { kind: 'add'; relu: boolean; relu6: boolean }
    | { kind: 'zeropad'; top: number; left: number }
    | {
        kind: 'relu';
        /** Run inside the batch normalization or add before it. */
        fused: boolean;
        /** Capped at 6: relu6, MobileNet's. */
        relu6: boolean;
      }
    | { kind: 'globalAvgPool' }
    /** 2×2 max pooling of stride 2, 'valid'. */
    | { kind: 'maxPool' }
    | ({ kind: 'dropout' } & Omit<DropoutOnHeap, 'name'>)
    /** Flatten, or a Reshape between one pixel's channels [1, 1, C] and [C]: the same values in the same order. */
    | { kind: 'flatten' }
    | { kind: 'dense'; kernel: tf.Variable; bias: tf.Variable | null; activation: Activation }
  );

/** The plan of a model the step takes, or the reason it does not, naming the first layer it cannot run. */
export type GraphPlan = { nodes: GraphNode[]; variables: tf.Variable[] } | { unsupported: string };

const pair = (v: unknown): [number, number] =>
  Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)];

interface LayerWeights {
  originalName: string;
  read(): tf.Tensor;
}

function weightNamed(layer: LayerLike, suffix: RegExp): tf.Variable | null {
  const all = (layer as unknown as { weights: LayerWeights[] }).weights;
  return (all.find((w) => suffix.test(w.originalName))?.read() as tf.Variable | undefined) ?? null;
}

const float32Of = (v: tf.Variable | null, size: number) => !v || (v.dtype === 'float32' && v.size === size);

/**
 * The model as a graph this step takes, in an order where every node comes after its inputs, with the
 * trainable variables in the order of the model's own; or what stops it (see the file's comment).
 */
export function graphPlanOf(model: tfl.LayersModel): GraphPlan {
  if (model.inputs.length !== 1 || model.outputs.length !== 1)
    return { unsupported: 'the model has more than one input or output' };
  const inShape = model.inputs[0].shape;
  if (inShape.length !== 4 || inShape.slice(1).some((d) => typeof d !== 'number'))
    return { unsupported: 'the model does not take images [height, width, channels]' };
  const nodes: GraphNode[] = [];
  const variables: tf.Variable[] = [];
  const nodeOf = new Map<LayerLike, number>();
  const uses = new Map<number, number>();
  const stop = (layer: LayerLike, why: string): GraphPlan => ({
    unsupported: `layer '${layer.name}' (${layer.getClassName()}) ${why}`,
  });
  // The input layer (not among a Sequential model's layers).
  const inputLayer = (model.inputs[0] as unknown as { sourceLayer: LayerLike }).sourceLayer;
  nodeOf.set(
    inputLayer,
    nodes.push({ kind: 'input', name: inputLayer.name, inputs: [], shape: inShape.slice(1) as number[] }) - 1,
  );
  for (const layer of model.layers as unknown as LayerLike[]) {
    const cls = layer.getClassName();
    if (layer === inputLayer) continue;
    if (layer.inboundNodes.length !== 1) return stop(layer, 'is called more than once');
    const inputs = layer.inboundNodes[0].inboundLayers.map((l) => nodeOf.get(l));
    if (!inputs.length || inputs.some((i) => i === undefined))
      return stop(layer, 'takes a tensor the step does not follow');
    const ins = inputs as number[];
    for (const i of ins) uses.set(i, (uses.get(i) ?? 0) + 1);
    const shape = nodes[ins[0]].shape;
    const cfg = layer.getConfig();
    const hasWeights = layer.weights.length > 0;
    if (hasWeights && !layer.trainable) return stop(layer, 'is frozen (not trainable)');
    const add = (n: GraphNode) => nodeOf.set(layer, nodes.push(n) - 1);
    const base = { name: layer.name, inputs: ins };
    const activation = String(cfg.activation ?? 'linear');
    if (ins.length !== 1 && cls !== 'Add') return stop(layer, 'takes more than one input');
    if (cls === 'Conv2D') {
      const kernel = weightNamed(layer, /kernel$/);
      const bias = weightNamed(layer, /bias$/);
      if (shape.length !== 3 || !kernel || kernel.dtype !== 'float32' || kernel.shape.length !== 4)
        return stop(layer, 'is not a 2-D convolution over images');
      const [fh, fw, ci, co] = kernel.shape;
      const strides = pair(cfg.strides);
      const padding = cfg.padding;
      if (cfg.dataFormat !== 'channelsLast' || pair(cfg.dilationRate ?? 1).some((d) => d !== 1))
        return stop(layer, 'is dilated or channels-first');
      if (padding !== 'same' && padding !== 'valid') return stop(layer, `has padding '${String(padding)}'`);
      if (activation !== 'relu' && activation !== 'linear') return stop(layer, `has activation '${activation}'`);
      if (ci !== shape[2]) return stop(layer, `has ${ci} input channels where its input has ${shape[2]}`);
      if (layer.weights.length !== (bias ? 2 : 1) || !float32Of(bias, co))
        return stop(layer, 'has weights the step does not know');
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
      if (info.outHeight <= 0 || info.outWidth <= 0) return stop(layer, 'has an empty output');
      add({
        ...base,
        kind: 'conv',
        kernel,
        bias,
        strides,
        padding,
        activation,
        shape: [info.outHeight, info.outWidth, co],
      });
      variables.push(kernel, ...(bias ? [bias] : []));
    } else if (cls === 'DepthwiseConv2D') {
      const kernel = weightNamed(layer, /depthwise_kernel$/);
      const bias = weightNamed(layer, /bias$/);
      if (shape.length !== 3 || !kernel || kernel.dtype !== 'float32' || kernel.shape.length !== 4)
        return stop(layer, 'is not a depthwise convolution over images');
      const [fh, fw, C, multiplier] = kernel.shape;
      const strides = pair(cfg.strides);
      const padding = cfg.padding;
      if (multiplier !== 1 || C !== shape[2]) return stop(layer, `has a depth multiplier of ${multiplier}`);
      if (cfg.dataFormat !== 'channelsLast' || pair(cfg.dilationRate ?? 1).some((d) => d !== 1))
        return stop(layer, 'is dilated or channels-first');
      if (padding !== 'same' && padding !== 'valid') return stop(layer, `has padding '${String(padding)}'`);
      if (activation !== 'linear') return stop(layer, `has activation '${activation}'`);
      if (layer.weights.length !== (bias ? 2 : 1) || !float32Of(bias, C))
        return stop(layer, 'has weights the step does not know');
      const info = tf.backend_util.computeConv2DInfo(
        [1, shape[0], shape[1], C],
        [fh, fw, C, 1],
        strides,
        1,
        padding,
        undefined,
        true,
        'channelsLast',
      );
      if (info.outHeight <= 0 || info.outWidth <= 0) return stop(layer, 'has an empty output');
      add({
        ...base,
        kind: 'depthwise',
        kernel,
        bias,
        strides,
        padding,
        top: info.padInfo.top,
        left: info.padInfo.left,
        shape: [info.outHeight, info.outWidth, C],
      });
      variables.push(kernel, ...(bias ? [bias] : []));
    } else if (cls === 'BatchNormalization') {
      const C = shape[shape.length - 1];
      const axis = Array.isArray(cfg.axis) ? cfg.axis : [cfg.axis];
      if (shape.length !== 3 || axis.length !== 1 || (axis[0] !== -1 && axis[0] !== 3))
        return stop(layer, 'does not normalize the channels of images');
      // Without γ or β, tfjs-layers 4.22 cannot train the layer itself (it reads the missing weight).
      if (cfg.scale === false || cfg.center === false) return stop(layer, 'has no scale or no offset');
      const gamma = weightNamed(layer, /gamma$/);
      const beta = weightNamed(layer, /beta$/);
      const movingMean = weightNamed(layer, /moving_mean$/);
      const movingVariance = weightNamed(layer, /moving_variance$/);
      const known = [gamma, beta, movingMean, movingVariance].every((w) => w && float32Of(w, C));
      if (!known || !gamma || !beta || !movingMean || !movingVariance || layer.weights.length !== 4)
        return stop(layer, 'has weights the step does not know');
      add({
        ...base,
        kind: 'batchnorm',
        gamma,
        beta,
        movingMean,
        movingVariance,
        epsilon: Number(cfg.epsilon ?? 1e-3),
        momentum: Number(cfg.momentum ?? 0.99),
        relu: false,
        relu6: false,
        shape,
      });
      variables.push(gamma, beta);
    } else if (cls === 'Activation' || cls === 'ReLU') {
      const plain = !Number(cfg.negativeSlope ?? 0) && !Number(cfg.threshold ?? 0);
      const relu = cls === 'ReLU' ? plain && cfg.maxValue == null : activation === 'relu';
      const relu6 = cls === 'ReLU' ? plain && Number(cfg.maxValue) === 6 : activation === 'relu6';
      if (!relu && !relu6 && (cls === 'ReLU' || activation !== 'linear'))
        return stop(
          layer,
          cls === 'ReLU' ? 'is a leaky relu or one capped at other than 6' : `has activation '${activation}'`,
        );
      if (!relu && !relu6)
        nodeOf.set(layer, ins[0]); // linear: the same tensor
      else add({ ...base, kind: 'relu', fused: false, relu6, shape });
    } else if (cls === 'Add') {
      if (ins.length < 2 || ins.some((i) => nodes[i].shape.join() !== shape.join()))
        return stop(layer, 'adds tensors of different shapes');
      add({ ...base, kind: 'add', relu: false, relu6: false, shape });
    } else if (cls === 'GlobalAveragePooling2D' || cls === 'AveragePooling2D') {
      if (shape.length !== 3 || cfg.dataFormat !== 'channelsLast') return stop(layer, 'does not pool images');
      if (cls === 'AveragePooling2D') {
        const [ph, pw] = pair(cfg.poolSize);
        const [sh, sw] = pair(cfg.strides ?? cfg.poolSize);
        const whole = ph === shape[0] && pw === shape[1] && (cfg.padding === 'valid' || (sh >= ph && sw >= pw));
        if (!whole) return stop(layer, 'pools windows smaller than the map (the step takes global average pooling)');
        add({ ...base, kind: 'globalAvgPool', shape: [1, 1, shape[2]] });
      } else {
        if (cfg.keepDims) return stop(layer, 'keeps its dimensions');
        add({ ...base, kind: 'globalAvgPool', shape: [shape[2]] });
      }
    } else if (cls === 'MaxPooling2D') {
      const windows = pair(cfg.poolSize);
      const strides = pair(cfg.strides ?? cfg.poolSize);
      if (shape.length !== 3 || cfg.dataFormat !== 'channelsLast') return stop(layer, 'does not pool images');
      if ([...windows, ...strides].some((d) => d !== 2) || cfg.padding !== 'valid' || shape[0] < 2 || shape[1] < 2)
        return stop(layer, "is not a 2×2 pooling of stride 2 and 'valid' padding");
      add({ ...base, kind: 'maxPool', shape: [Math.floor(shape[0] / 2), Math.floor(shape[1] / 2), shape[2]] });
    } else if (cls === 'Dropout') {
      const dropout = dropoutOf(layer);
      if ('unsupported' in dropout) return stop(layer, dropout.unsupported);
      add({ ...base, ...dropout, kind: 'dropout', shape });
    } else if (cls === 'ZeroPadding2D') {
      // Keras' MobileNet pads before each stride-2 depthwise convolution ('valid') with ((0, 1), (0, 1)).
      const p = cfg.padding as [number, number][] | undefined;
      const [[top, bottom], [left, right]] = Array.isArray(p) && p.length === 2 ? p : [pair(p ?? 1), pair(p ?? 1)];
      if (shape.length !== 3 || cfg.dataFormat !== 'channelsLast' || [top, bottom, left, right].some((d) => !(d >= 0)))
        return stop(layer, 'does not pad channels-last images');
      add({ ...base, kind: 'zeropad', top, left, shape: [shape[0] + top + bottom, shape[1] + left + right, shape[2]] });
    } else if (cls === 'Flatten') {
      // On the heap a map's channels are padded; flattened, the padding would sit between the features.
      const flat = shape.length !== 3 || shape[2] % 4 === 0 || shape[0] * shape[1] === 1;
      if (!flat && nodes[ins[0]].kind !== 'input')
        return stop(layer, `flattens a map of ${shape[2]} channels (the step takes multiples of 4, or one pixel)`);
      add({ ...base, kind: 'flatten', shape: [shape.reduce((a, d) => a * d, 1)] });
    } else if (cls === 'Reshape') {
      // Keras' MobileNet classifier: pooled channels [C] to one pixel [1, 1, C] for a 1×1 convolution, and back.
      const target = (cfg.targetShape as number[] | undefined)?.map(Number) ?? [];
      const pixel = (d: number[]) => d.length === 1 || (d.length === 3 && d[0] === 1 && d[1] === 1);
      if (!pixel(shape) || !pixel(target) || target[target.length - 1] !== shape[shape.length - 1])
        return stop(layer, `reshapes [${shape}] to [${target}] (the step takes [1, 1, C] to [C] and back)`);
      add({ ...base, kind: 'flatten', shape: target });
    } else if (cls === 'Dense') {
      const kernel = weightNamed(layer, /kernel$/);
      const bias = weightNamed(layer, /bias$/);
      if (
        shape.length !== 1 ||
        !kernel ||
        kernel.dtype !== 'float32' ||
        kernel.shape.length !== 2 ||
        kernel.shape[0] !== shape[0]
      )
        return stop(layer, 'is not a dense layer on flat features');
      if (widthOnHeap(nodes, ins[0]) % 4 !== 0)
        return stop(layer, `takes ${shape[0]} inputs (the step takes multiples of 4)`);
      if (activation !== 'relu' && activation !== 'linear') return stop(layer, `has activation '${activation}'`);
      const units = kernel.shape[1] as number;
      if (layer.weights.length !== (bias ? 2 : 1) || !float32Of(bias, units))
        return stop(layer, 'has weights the step does not know');
      add({ ...base, kind: 'dense', kernel, bias, activation, shape: [units] });
      variables.push(kernel, ...(bias ? [bias] : []));
    } else {
      return stop(layer, 'is not a layer the heap step runs');
    }
  }
  const outputLayer = (model.outputs[0] as unknown as { sourceLayer: LayerLike }).sourceLayer;
  const out = nodeOf.get(outputLayer);
  if (out === undefined) return { unsupported: 'the output is not a layer the step follows' };
  const last = nodes[out];
  // Logits from a linear dense layer, or from a linear 1×1 convolution on one pixel (Keras' MobileNet), flattened.
  const before = last.kind === 'flatten' ? nodes[last.inputs[0]] : null;
  const logitsConv =
    before?.kind === 'conv' && before.activation === 'linear' && sizeOf(before.shape) === sizeOf(last.shape);
  if ((last.kind !== 'dense' || last.activation !== 'linear') && !(logitsConv && last.shape.length === 1))
    return { unsupported: `the output (${last.name}) is not a linear dense layer` };
  if (nodes.some((n, i) => i !== out && n.kind !== 'input' && !uses.has(i)))
    return { unsupported: "a layer's output is not used on the way to the model's output" };
  if (nodes[out] !== nodes[nodes.length - 1]) return { unsupported: 'the output is not the last layer' };
  const heap = heapShapesOf(nodes);
  const flattened = nodes.find(
    (n) => n.kind === 'flatten' && heap[n.inputs[0]].join() !== nodes[n.inputs[0]].shape.join(),
  );
  if (flattened && sizeOf(nodes[flattened.inputs[0]].shape.slice(0, -1)) !== 1)
    return { unsupported: `layer '${flattened.name}' (Flatten) flattens images whose channels other layers pad` };
  // A relu whose input nothing else reads runs inside the batch normalization or add before it.
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i];
    if (n.kind !== 'relu') continue;
    const before = nodes[n.inputs[0]];
    if ((before.kind === 'batchnorm' || before.kind === 'add') && uses.get(n.inputs[0]) === 1 && !before.relu) {
      before.relu = true;
      before.relu6 = n.relu6;
      n.fused = true;
    }
  }
  return { nodes, variables };
}

const ceil4 = (n: number) => Math.ceil(n / 4) * 4;
const padLast = (shape: number[]) => [...shape.slice(0, -1), ceil4(shape[shape.length - 1])];
const sizeOf = (shape: number[]) => shape.reduce((a, d) => a * d, 1);
/** Whether two shapes are the same (without joining them into strings each step). */
function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Each node's output shape on the heap (without the batch): the channels (the last axis) padded to a multiple
 * of 4, the padding zeros. The input is padded only where a layer other than a convolution or a flatten reads
 * it; a flatten keeps its input's layout.
 */
export function heapShapesOf(nodes: GraphNode[]): number[][] {
  const padInput = nodes.some(
    (n) =>
      n.inputs.includes(0) &&
      n.kind !== 'conv' &&
      n.kind !== 'flatten' &&
      n.kind !== 'dropout' &&
      nodes[0].shape[2] % 4 !== 0,
  );
  const shapes: number[][] = [];
  for (const n of nodes) {
    if (n.kind === 'input') shapes.push(padInput ? padLast(n.shape) : n.shape);
    else if (n.kind === 'flatten')
      shapes.push(n.shape.length === 1 ? [sizeOf(shapes[n.inputs[0]])] : padLast(n.shape)); // one pixel: the same size
    else if (n.kind === 'dropout') shapes.push(shapes[n.inputs[0]]);
    else shapes.push(padLast(n.shape));
  }
  return shapes;
}

/** The width on the heap of the flat features node `i` (of the nodes so far) makes. */
function widthOnHeap(nodes: GraphNode[], i: number): number {
  return sizeOf(heapShapesOf(nodes.slice(0, i + 1))[i]);
}

/**
 * Each model's heap step with the variables it was made for: `train` asks for it at every call (a sweep or the
 * bench fine-tunes the same model again and again), and the plan stays the model's while those variables do.
 */
const stepOf = new WeakMap<tfl.LayersModel, { step: GraphStep; variables: tf.Variable[] }>();

const sameVariables = (a: tf.Variable[], b: tf.Variable[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * The heap step for `model` on the current backend, or null where it does not apply (not wasm, the SIMD
 * module not loaded, a model it does not take, or variables that are not the model's trainable weights in
 * order).
 */
export function graphStepFor(model: tfl.LayersModel, variables: tf.Variable[]): GraphStep | null {
  const heap = wasmInternals(tf.backend());
  const kernels = simdKernels(tf.backend());
  if (!heap || !kernels) return null;
  const known = stepOf.get(model);
  if (known && known.step.runsOn(heap, kernels) && sameVariables(known.variables, variables) && known.step.intact())
    return known.step;
  const plan = graphPlanOf(model);
  if ('unsupported' in plan) return null;
  if (!sameVariables(plan.variables, variables)) return null;
  const step = new GraphStep(heap, kernels, plan.nodes);
  stepOf.set(model, { step, variables: variables.slice() });
  return step;
}

export class GraphStep {
  /** Each node's output shape on the heap (`heapShapesOf`). */
  private readonly layout: number[][];
  /**
   * Per node, whether it is a linear convolution with a bias whose output only a batch normalization reads: that
   * bias's gradient, the sum of the normalization's input gradient, is summed by `bn_backward` in the pass that
   * writes that gradient (no `sum_rows` pass over it).
   */
  private readonly biasSummed: boolean[];
  /**
   * Per batch normalization, whether its input is a linear convolution's output (depthwise convolutions are
   * linear) that only it reads: nothing reads that output after the normalization's gradient, which `bn_backward`
   * can write over it (not into a new buffer, whose lines the CPU reads from memory before writing them).
   */
  private readonly inputDead: boolean[];
  /**
   * Per residual add of two tensors, the input that is a normalization (no relu) only it reads, or −1: that
   * normalization runs in the add's pass (`bn_add`), its own output never written.
   */
  private readonly normInAdd: number[];
  /**
   * Per node, whether it has weights or follows one: only those need a gradient (not the images, nor a dropout
   * or zero padding on them before the first convolution, as Keras 2.2.4's MobileNet pads its input).
   */
  private readonly learns: boolean[] = [];
  /** The normalizations that a residual add runs (`normInAdd`). */
  private readonly inAdd: boolean[];
  /** The kernels and biases by name (`giveCropped` finds a padded stand-in's variable by it). */
  private readonly variableOf = new Map<string, tf.Variable>();
  /** Each moving statistic's normalization's momentum. */
  private readonly momentum = new Map<tf.Variable, number>();

  constructor(
    private readonly heap: WasmBackendInternals,
    private readonly kernels: SimdExports,
    readonly nodes: GraphNode[],
  ) {
    this.layout = heapShapesOf(nodes);
    const readers = nodes.map((_, i) => nodes.filter((n) => n.inputs.includes(i)).length);
    this.biasSummed = nodes.map((n, i) => {
      const reader = nodes.find((r) => r.inputs.includes(i));
      return (
        n.kind === 'conv' && !!n.bias && n.activation === 'linear' && readers[i] === 1 && reader?.kind === 'batchnorm'
      );
    });
    this.inputDead = nodes.map((n) => {
      const before = n.kind === 'batchnorm' ? nodes[n.inputs[0]] : null;
      const linear = before?.kind === 'depthwise' || (before?.kind === 'conv' && before.activation === 'linear');
      return linear && readers[n.inputs[0]] === 1;
    });
    this.normInAdd = nodes.map((n) => {
      if (n.kind !== 'add' || n.inputs.length !== 2 || n.inputs[0] === n.inputs[1]) return -1;
      const j = n.inputs.find((j) => {
        const before = nodes[j];
        return before.kind === 'batchnorm' && !before.relu && readers[j] === 1;
      });
      return j ?? -1;
    });
    this.inAdd = nodes.map(() => false);
    for (const j of this.normInAdd) if (j >= 0) this.inAdd[j] = true;
    for (const n of nodes)
      for (const v of [(n as { kernel?: tf.Variable }).kernel, (n as { bias?: tf.Variable | null }).bias])
        if (v) this.variableOf.set(v.name, v);
    for (const n of nodes)
      if (n.kind === 'batchnorm') this.momentum.set(n.movingMean, n.momentum).set(n.movingVariance, n.momentum);
    for (const [i, n] of nodes.entries())
      this.learns[i] =
        n.kind === 'conv' ||
        n.kind === 'depthwise' ||
        n.kind === 'batchnorm' ||
        n.kind === 'dense' ||
        n.inputs.some((j) => this.learns[j]);
  }

  /** Whether this step runs on `heap` through `kernels` (a step made before the kernels were wrapped does not). */
  runsOn(heap: WasmBackendInternals, kernels: SimdExports): boolean {
    return this.heap === heap && this.kernels === kernels;
  }

  /** Whether every variable the nodes hold (weights and moving statistics) is still there, none disposed. */
  intact(): boolean {
    return this.nodes.every((n) => {
      const held =
        n.kind === 'batchnorm'
          ? [n.gamma, n.beta, n.movingMean, n.movingVariance]
          : n.kind === 'conv' || n.kind === 'depthwise' || n.kind === 'dense'
            ? [n.kernel, n.bias]
            : [];
      return held.every((v) => !v || !v.isDisposed);
    });
  }

  /**
   * One step's loss (the batch mean of the weighted cross-entropy) and the gradients of every variable,
   * keyed by variable name as `tf.variableGrads` keys them (the caller disposes them); the batch
   * normalizations' moving statistics are updated. `x` is every sample, [n, H, W, C]; `rows` the batch's
   * sample indices into `x`, `targets` and `weights`.
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
    const k = this.kernels;
    const backend = tf.backend();
    const nodes = this.nodes;
    const layout = this.layout;
    const B = rows.length;
    const inputShape = nodes[0].shape;
    const size = sizeOf(inputShape);
    if (x.dtype !== 'float32' || x.size !== x.shape[0] * size || x.shape.slice(1).some((d, i) => d !== inputShape[i])) {
      throw new Error(`graph step: the samples are [${x.shape}], the model takes [${inputShape}]`);
    }
    const at = (t: tf.TensorInfo) => heapOffset(heap, t);
    const moving: { v: tf.Variable; value: tf.TensorInfo }[] = [];
    const act = (n: { relu: boolean; relu6: boolean }) => (n.relu ? (n.relu6 ? 2 : 1) : 0);
    return onHeap(heap, 'graph step', ({ keep, give, grads }) => {
      const outs: tf.TensorInfo[] = [];
      // A variable as the heap tensors take it: padded with zeros to `shape` where that differs.
      const padded = (v: tf.Variable, shape: number[]): tf.TensorInfo => {
        if (sameShape(shape, v.shape)) return v;
        const t = keep(heap.makeOutput(shape, 'float32'), `${v.name} padded`);
        const to = heapView(heap, t) as Float32Array;
        to.fill(0);
        copyCorner(heapView(heap, v) as Float32Array, v.shape, to, shape);
        return t;
      };
      // A gradient computed for the padded variable, handed back at the variable's own shape.
      const variableOf = this.variableOf;
      const giveCropped = (v: tf.Variable, t: tf.TensorInfo) => {
        const real = variableOf.get(v.name) ?? v;
        if (sameShape(t.shape, real.shape)) return give(real, t);
        keep(t, `${v.name}'s padded gradient`);
        const out = heap.makeOutput(real.shape.slice(), 'float32');
        copyCorner(heapView(heap, t) as Float32Array, t.shape, heapView(heap, out) as Float32Array, real.shape);
        give(real, out);
      };
      // Per node, its weights as padded for the heap.
      const kernelOf: (tf.TensorInfo | null)[] = [];
      const biasOf: (tf.TensorInfo | null)[] = [];
      // Per batch normalization: its batch mean, 1/√(variance + ε), γ times that, and the 8·C floats its kernels
      // keep their running sums in.
      const stats: { mean: tf.TensorInfo; inv: tf.TensorInfo; scale: tf.TensorInfo; scratch: tf.TensorInfo }[] = [];
      const inAdd = this.inAdd;
      // Per max pooling, each window's winner; per dropout, its multipliers (null: it drops nothing).
      const winners: tf.TensorInfo[] = [];
      const dropped: (Float32Array | null)[] = [];
      const input = keep(heap.makeOutput([B, ...layout[0]], 'float32'), 'the batch');
      const xv = heapView(heap, x) as Float32Array;
      const bv = heapView(heap, input) as Float32Array;
      const sizeP = sizeOf(layout[0]);
      if (sizeP !== size) bv.fill(0);
      for (let r = 0; r < B; r++) {
        const sample = xv.subarray(rows[r] * size, (rows[r] + 1) * size);
        if (sizeP === size) bv.set(sample, r * size);
        else {
          const pixels = size / inputShape[2];
          const to = bv.subarray(r * sizeP, (r + 1) * sizeP);
          copyCorner(sample, [pixels, inputShape[2]], to, [pixels, layout[0][2]]);
        }
      }

      // Forward.
      for (let i = 0; i < nodes.length; i++) {
        const n = nodes[i];
        const a = outs[n.inputs[0]];
        const C = layout[i][layout[i].length - 1];
        switch (n.kind) {
          case 'input':
            outs[i] = input;
            break;
          case 'conv': {
            const [fh, fw] = n.kernel.shape;
            kernelOf[i] = padded(n.kernel, [fh, fw, a.shape[3], C]);
            biasOf[i] = n.bias && padded(n.bias, [C]);
            outs[i] = keep(
              conv2dSimd(
                backend,
                a,
                kernelOf[i]!,
                { strides: n.strides, pad: n.padding },
                { bias: biasOf[i] ?? undefined, activation: n.activation },
              ),
              `${n.name}'s convolution`,
            );
            break;
          }
          case 'depthwise': {
            const [fh, fw] = n.kernel.shape;
            const [H, W] = a.shape.slice(1);
            const [oh, ow] = n.shape;
            kernelOf[i] = padded(n.kernel, [fh, fw, C, 1]);
            biasOf[i] = n.bias && padded(n.bias, [C]);
            const y = keep(heap.makeOutput([B, oh, ow, C], 'float32'), `${n.name}'s output`);
            k.depthwise_conv2d(
              at(a),
              at(kernelOf[i]!),
              biasOf[i] ? at(biasOf[i]!) : 0,
              at(y),
              ...([B, H, W, C, oh, ow, fh, fw, n.strides[0], n.strides[1], n.top, n.left] as DepthwiseDims),
            );
            outs[i] = y;
            break;
          }
          case 'batchnorm': {
            const rowsOf = B * n.shape[0] * n.shape[1];
            const mean = keep(heap.makeOutput([C], 'float32'), `${n.name}'s mean`);
            const variance = keep(heap.makeOutput([C], 'float32'), `${n.name}'s variance`);
            const inv = keep(heap.makeOutput([C], 'float32'), `${n.name}'s inverse deviation`);
            const scale = keep(heap.makeOutput([C], 'float32'), `${n.name}'s scale`);
            const scratch = keep(heap.makeOutput([8 * C], 'float32'), `${n.name}'s running sums`);
            kernelOf[i] = padded(n.gamma, [C]);
            biasOf[i] = padded(n.beta, [C]);
            k.bn_moments(at(a), at(mean), at(variance), rowsOf, C, at(scratch));
            const vv = heapView(heap, variance) as Float32Array;
            const iv = heapView(heap, inv) as Float32Array;
            const sv = heapView(heap, scale) as Float32Array;
            const gv = heapView(heap, kernelOf[i]!) as Float32Array;
            for (let c = 0; c < C; c++) {
              iv[c] = 1 / Math.sqrt(vv[c] + n.epsilon);
              sv[c] = iv[c] * gv[c];
            }
            stats[i] = { mean, inv, scale, scratch };
            moving.push({ v: n.movingMean, value: mean }, { v: n.movingVariance, value: variance });
            if (inAdd[i]) {
              outs[i] = a; // not written: the add runs it (`normInAdd`), and only the add reads it
              break;
            }
            const y = keep(heap.makeOutput([B, ...layout[i]], 'float32'), `${n.name}'s output`);
            k.bn_forward(at(a), at(mean), at(scale), at(biasOf[i]!), at(y), rowsOf, C, act(n));
            outs[i] = y;
            break;
          }
          case 'add': {
            const y = keep(heap.makeOutput([B, ...layout[i]], 'float32'), `${n.name}'s sum`);
            const count = B * sizeOf(layout[i]);
            const last = n.inputs.length - 1;
            const norm = this.normInAdd[i];
            if (norm >= 0) {
              const { mean, scale } = stats[norm];
              const other = outs[n.inputs[n.inputs[0] === norm ? 1 : 0]];
              const x = outs[nodes[norm].inputs[0]];
              k.bn_add(at(x), at(mean), at(scale), at(biasOf[norm]!), at(other), at(y), count / C, C, act(n));
              outs[i] = y;
              break;
            }
            k.add_act(at(a), at(outs[n.inputs[1]]), at(y), count, last === 1 ? act(n) : 0);
            for (let j = 2; j <= last; j++)
              k.add_act(at(y), at(outs[n.inputs[j]]), at(y), count, j === last ? act(n) : 0);
            outs[i] = y;
            break;
          }
          case 'relu': {
            if (n.fused) {
              outs[i] = a;
              break;
            }
            const y = keep(heap.makeOutput([B, ...layout[i]], 'float32'), `${n.name}'s output`);
            const from = heapView(heap, a) as Float32Array;
            const to = heapView(heap, y) as Float32Array;
            const cap = n.relu6 ? 6 : Infinity;
            for (let j = 0; j < to.length; j++)
              to[j] = from[j] > 0 ? Math.min(from[j], cap) : from[j] !== from[j] ? from[j] : 0;
            outs[i] = y;
            break;
          }
          case 'globalAvgPool': {
            const [H, W] = nodes[n.inputs[0]].shape;
            const y = keep(heap.makeOutput([B, ...layout[i]], 'float32'), `${n.name}'s output`);
            k.global_avg_pool(at(a), at(y), B, H * W, C, 0);
            outs[i] = y;
            break;
          }
          case 'maxPool': {
            const r = maxPool2x2WinnersSimd(backend, a, false);
            winners[i] = keep(r?.winners ?? null, `${n.name}'s winners`);
            outs[i] = keep(r?.out ?? null, `${n.name}'s output`);
            break;
          }
          case 'dropout': {
            const m = (dropped[i] = dropoutMultipliers(n, B * sizeOf(n.shape)));
            outs[i] = m ? keep(multiplyOnHeap(heap, a, m, n.shape[n.shape.length - 1]), `${n.name}'s output`) : a;
            break;
          }
          case 'zeropad': {
            const y = keep(heap.makeOutput([B, ...layout[i]], 'float32'), `${n.name}'s output`);
            const yv = heapView(heap, y) as Float32Array;
            yv.fill(0);
            copyWindow(heapView(heap, a) as Float32Array, yv, B, layout[n.inputs[0]], layout[i], n.top, n.left, false);
            outs[i] = y;
            break;
          }
          case 'flatten':
            outs[i] = { dataId: a.dataId, shape: [B, ...layout[i]], dtype: 'float32' };
            break;
          case 'dense': {
            const K = a.shape[1];
            const kernel = padded(n.kernel, [K, n.kernel.shape[1] as number]);
            // A stand-in for the variable where its rows are padded (`giveCropped` finds the variable by name).
            const standIn = { name: n.kernel.name, shape: kernel.shape, dtype: 'float32', dataId: kernel.dataId };
            kernelOf[i] = kernel;
            outs[i] = denseForwardOnHeap(heap, a, denseOf(n, kernel === n.kernel ? n.kernel : standIn), keep);
            break;
          }
        }
      }

      // The loss and the gradient of the logits (the last node: a linear dense layer, or a 1×1 convolution
      // flattened).
      const last = nodes[nodes.length - 1];
      const { loss, dLogits } = logitsLossOnHeap(
        heap,
        task,
        outs[nodes.length - 1],
        last.shape[0],
        targets,
        weights,
        rows,
        keep,
        reweight,
      );

      // Backward: each node's output gradient, summed where several nodes read it. Where that node is a relu
      // (or relu6; after a residual add or a normalization, run inside it), the sum goes through the relu's
      // gradient in the same pass (`add_masked`), and `throughRelu` says so: the relu, or the add or normalization
      // that ran it, then passes the gradient on as it is (no relu_grad pass; bn_backward with no activation).
      // `own`: gradients made here that one node alone holds, which a gradient sum or a normalization's input
      // gradient is written over (in place: a new buffer's lines are read from memory before they are written).
      const gOut: (tf.TensorInfo | null)[] = nodes.map(() => null);
      const throughRelu: boolean[] = nodes.map(() => false);
      const own = new Set<tf.TensorInfo>();
      const owned = (t: tf.TensorInfo) => (own.add(t), t);
      gOut[nodes.length - 1] = dLogits;
      const pass = (to: number, g: tf.TensorInfo) => {
        const n = nodes[to];
        if (!this.learns[to]) return;
        const had = gOut[to];
        if (!had) {
          gOut[to] = g;
          return;
        }
        const sum = own.has(g)
          ? g
          : own.has(had)
            ? had
            : owned(keep(heap.makeOutput(had.shape.slice(), 'float32'), `${n.name}'s gradient sum`));
        const count = sizeOf(had.shape);
        const relu = n.kind === 'relu' ? (n.relu6 ? 2 : 1) : 0;
        if (!relu) k.add_act(at(had), at(g), at(sum), count, 0);
        else if (throughRelu[to]) k.add_masked(at(g), at(outs[to]), at(had), at(sum), count, relu, 0);
        else k.add_masked(at(had), at(outs[to]), at(g), at(sum), count, relu, 1);
        throughRelu[to] = relu > 0;
        gOut[to] = sum;
      };
      const relu6Grad = (g: tf.TensorInfo, y: tf.TensorInfo, what: string) => {
        const out = keep(heap.makeOutput(y.shape.slice(), 'float32'), what);
        k.relu6_grad(at(g), at(y), at(out), sizeOf(y.shape));
        return out;
      };
      for (let i = nodes.length - 1; i > 0; i--) {
        const n = nodes[i];
        const g = gOut[i];
        if (!g) continue; // nothing reaches it (cannot happen in a plan: every node leads to the output)
        const from = n.inputs[0];
        const needInput = this.learns[from];
        const C = layout[i][layout[i].length - 1];
        switch (n.kind) {
          case 'conv': {
            const dz =
              n.activation === 'relu' ? keep(reluGradSimd(backend, g, outs[i]), `${n.name}'s relu gradient`) : g;
            const kernel = kernelOf[i]!;
            if (n.bias && !this.biasSummed[i])
              giveCropped(
                n.bias,
                sumLeadingAxesOnHeap(backend, dz, [0, 1, 2], false) ?? fail(`${n.name}'s bias gradient`),
              );
            giveCropped(
              n.kernel,
              pointwiseFilterGrad(heap, k, outs[from], dz, kernel.shape, n.strides) ??
                conv2dBackpropFilterSimd(
                  backend,
                  outs[from],
                  dz,
                  kernel.shape as [number, number, number, number],
                  n.strides,
                  n.padding,
                ) ??
                fail(`${n.name}'s filter gradient`),
            );
            if (needInput) {
              const inShape = [B, ...layout[from]] as [number, number, number, number];
              pass(
                from,
                owned(
                  keep(
                    conv2dBackpropInputSimd(backend, dz, kernel, {
                      strides: n.strides,
                      pad: n.padding,
                      inputShape: inShape,
                    }),
                    `${n.name}'s input gradient`,
                  ),
                ),
              );
            }
            break;
          }
          case 'depthwise': {
            const [fh, fw] = n.kernel.shape;
            const [H, W] = layout[from];
            const [oh, ow] = n.shape;
            const dims: DepthwiseDims = [B, H, W, C, oh, ow, fh, fw, n.strides[0], n.strides[1], n.top, n.left];
            if (n.bias)
              giveCropped(
                n.bias,
                sumLeadingAxesOnHeap(backend, g, [0, 1, 2], false) ?? fail(`${n.name}'s bias gradient`),
              );
            const dw = heap.makeOutput([fh, fw, C, 1], 'float32');
            k.depthwise_conv2d_filter_grad(at(outs[from]), at(g), at(dw), ...dims);
            giveCropped(n.kernel, dw);
            if (needInput) {
              const dx = keep(heap.makeOutput([B, H, W, C], 'float32'), `${n.name}'s input gradient`);
              if (n.strides[0] === 1 && n.strides[1] === 1) {
                // Stride 1: the forward kernel over dy with the filter turned by 180°, padded by what the
                // forward pass's padding leaves of the filter (no scattered read-modify-writes).
                const flipped = keep(heap.makeOutput([fh, fw, C, 1], 'float32'), `${n.name}'s turned filter`);
                const src = heapView(heap, kernelOf[i]!) as Float32Array;
                const dst = heapView(heap, flipped) as Float32Array;
                for (let t = 0; t < fh * fw; t++) dst.set(src.subarray(t * C, (t + 1) * C), (fh * fw - 1 - t) * C);
                const turned: DepthwiseDims = [B, oh, ow, C, H, W, fh, fw, 1, 1, fh - 1 - n.top, fw - 1 - n.left];
                k.depthwise_conv2d(at(g), at(flipped), 0, at(dx), ...turned);
              } else k.depthwise_conv2d_input_grad(at(g), at(kernelOf[i]!), at(dx), ...dims);
              pass(from, dx);
            }
            break;
          }
          case 'batchnorm': {
            const rowsOf = B * n.shape[0] * n.shape[1];
            // Written over a gradient only it holds, or else over its input where nothing reads that later.
            const dx = own.has(g)
              ? g
              : this.inputDead[i]
                ? owned(outs[from])
                : owned(keep(heap.makeOutput([B, ...layout[i]], 'float32'), `${n.name}'s input gradient`));
            const dgamma = heap.makeOutput([C], 'float32');
            const dbeta = heap.makeOutput([C], 'float32');
            const { mean, inv, scale, scratch } = stats[i];
            const before = nodes[from];
            const dbias = this.biasSummed[from] ? heap.makeOutput([C], 'float32') : null;
            k.bn_backward(
              at(g),
              at(outs[from]),
              at(mean),
              at(inv),
              at(kernelOf[i]!),
              at(scale),
              at(biasOf[i]!),
              at(dx),
              at(dgamma),
              at(dbeta),
              dbias ? at(dbias) : 0,
              rowsOf,
              C,
              throughRelu[i] ? 0 : act(n),
              at(scratch),
            );
            giveCropped(n.gamma, dgamma);
            giveCropped(n.beta, dbeta);
            if (dbias && before.kind === 'conv' && before.bias) giveCropped(before.bias, dbias);
            if (needInput) pass(from, dx);
            break;
          }
          case 'add': {
            const what = `${n.name}'s relu gradient`;
            const dz =
              !n.relu || throughRelu[i]
                ? g
                : n.relu6
                  ? relu6Grad(g, outs[i], what)
                  : keep(reluGradSimd(backend, g, outs[i]), what);
            if (n.inputs.length > 1) own.delete(dz); // held by each input
            for (const j of n.inputs) pass(j, dz);
            break;
          }
          case 'relu': {
            const what = `${n.name}'s relu gradient`;
            if (n.fused || throughRelu[i]) pass(from, g);
            else pass(from, n.relu6 ? relu6Grad(g, outs[i], what) : keep(reluGradSimd(backend, g, outs[i]), what));
            // The add or normalization that ran the relu: its gradient is through it already.
            if (n.fused && throughRelu[i]) throughRelu[from] = true;
            break;
          }
          case 'globalAvgPool': {
            const [H, W] = nodes[from].shape;
            const dx = keep(heap.makeOutput([B, H, W, C], 'float32'), `${n.name}'s input gradient`);
            k.global_avg_pool(at(dx), at(g), B, H * W, C, 1);
            pass(from, dx);
            break;
          }
          case 'maxPool': {
            const [H, W] = layout[from];
            const [OH, OW] = n.shape;
            const dx = keep(heap.makeOutput([B, H, W, C], 'float32'), `${n.name}'s input gradient`);
            k.max_pool_2x2_winners_grad(at(g), at(winners[i]), at(dx), B, H, W, C, OH, OW);
            pass(from, dx);
            break;
          }
          case 'dropout': {
            const m = dropped[i];
            const what = `${n.name}'s input gradient`;
            pass(from, m ? keep(multiplyOnHeap(heap, g, m, n.shape[n.shape.length - 1]), what) : g);
            break;
          }
          case 'zeropad': {
            const dx = keep(heap.makeOutput([B, ...layout[from]], 'float32'), `${n.name}'s input gradient`);
            const dv = heapView(heap, dx) as Float32Array;
            copyWindow(dv, heapView(heap, g) as Float32Array, B, layout[from], layout[i], n.top, n.left, true);
            pass(from, dx);
            break;
          }
          case 'flatten':
            pass(from, { dataId: g.dataId, shape: [B, ...layout[from]], dtype: 'float32' });
            break;
          case 'dense': {
            const dz =
              n.activation === 'relu' ? keep(reluGradSimd(backend, g, outs[i]), `${n.name}'s relu gradient`) : g;
            const kernel = kernelOf[i]!;
            const standIn = { name: n.kernel.name, shape: kernel.shape, dtype: 'float32', dataId: kernel.dataId };
            const layer = denseOf(n, kernel === n.kernel ? n.kernel : standIn);
            const da = denseBackwardOnHeap(heap, k, outs[from], dz, layer, needInput, giveCropped, keep);
            if (needInput) pass(from, da);
            break;
          }
        }
      }
      this.updateMovingStatistics(moving);
      return { loss, grads };
    });
  }

  /**
   * moving ← moving − (moving − batch value)·(1 − momentum), as tfjs-layers' BatchNormalization writes it in
   * training: a new tensor assigned to the variable, so that copies of the old value (early stopping's best
   * weights) keep theirs.
   */
  private updateMovingStatistics(moving: { v: tf.Variable; value: tf.TensorInfo }[]): void {
    const momentum = this.momentum;
    for (const { v, value } of moving) {
      const decay = Math.fround(1 - (momentum.get(v) ?? 0.99));
      const next = this.heap.makeOutput(v.shape.slice(), 'float32');
      const nv = heapView(this.heap, next) as Float32Array;
      const old = heapView(this.heap, v) as Float32Array;
      const batch = heapView(this.heap, value) as Float32Array;
      for (let c = 0; c < nv.length; c++) nv[c] = old[c] - Math.fround(Math.fround(old[c] - batch[c]) * decay);
      const t = tf.engine().makeTensorFromTensorInfo(next);
      v.assign(t);
      t.dispose();
    }
  }
}

/**
 * The filter gradient of a 1×1 stride-1 convolution, xᵀ·dy over all B·H·W pixels, as `conv2d_filter_grad` over
 * runs of up to 64 pixels (image rows run on into the next: a 1×1 filter reads no neighbours); null for any
 * other convolution. On MobileNet's 6×6 and 3×3 maps the rows of an image were too short for its register
 * blocks (each block loads and stores its sums once a row).
 */
function pointwiseFilterGrad(
  heap: WasmBackendInternals,
  k: SimdExports,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  filterShape: number[],
  strides: [number, number],
): tf.TensorInfo | null {
  const [fh, fw, ci, co] = filterShape;
  if (fh !== 1 || fw !== 1 || strides[0] !== 1 || strides[1] !== 1) return null;
  const pixels = sizeOf(x.shape) / ci;
  let run = Math.min(64, pixels);
  while (pixels % run) run--;
  const dw = heap.makeOutput(filterShape.slice(), 'float32');
  const [ax, ady, adw] = [x, dy, dw].map((t) => heapOffset(heap, t));
  k.conv2d_filter_grad(ax, ady, adw, pixels / run, 1, run, ci, 1, run, co, 1, 1, 1, 1, 0, 0);
  return dw;
}

/** A dense node as conv-step's dense functions take it, with `kernel` (the variable, or its padded stand-in). */
function denseOf(n: Extract<GraphNode, { kind: 'dense' }>, kernel: object): DenseOnHeap {
  return { name: n.name, kernel: kernel as tf.Variable, bias: n.bias, activation: n.activation };
}

/**
 * Copies the corner two arrays' shapes share (the smaller extent on each axis) of `from` (row-major, `fromShape`)
 * into `to` (`toShape`): a variable padded with zeros for the heap (`to` zeroed first), or a padded gradient cropped.
 */
function copyCorner(from: Float32Array, fromShape: number[], to: Float32Array, toShape: number[]): void {
  const r = fromShape.length;
  const run = Math.min(fromShape[r - 1], toShape[r - 1]);
  const lead = fromShape.slice(0, -1).map((d, i) => Math.min(d, toShape[i]));
  const count = sizeOf(lead);
  const index = lead.map(() => 0);
  for (let j = 0; j < count; j++) {
    let f = 0;
    let t = 0;
    for (let a = 0; a < r - 1; a++) {
      f = f * fromShape[a] + index[a];
      t = t * toShape[a] + index[a];
    }
    to.set(from.subarray(f * fromShape[r - 1], f * fromShape[r - 1] + run), t * toShape[r - 1]);
    for (let a = r - 2; a >= 0 && ++index[a] === lead[a]; a--) index[a] = 0;
  }
}

/**
 * Between `small` [B, h, w, C] and the window of `big` [B, H, W, C] at (top, left): `small` into the window
 * (a zero padding's output), or with `back` the window into `small` (its gradient). Channels alike.
 */
function copyWindow(
  small: Float32Array,
  big: Float32Array,
  B: number,
  smallShape: number[],
  bigShape: number[],
  top: number,
  left: number,
  back: boolean,
): void {
  const [h, w, C] = smallShape;
  const [H, W] = bigShape;
  for (let b = 0; b < B; b++) {
    for (let y = 0; y < h; y++) {
      const s = (b * h + y) * w * C;
      const t = ((b * H + y + top) * W + left) * C;
      if (back) small.set(big.subarray(t, t + w * C), s);
      else big.set(small.subarray(s, s + w * C), t);
    }
  }
}

function fail(what: string): never {
  throw new Error(`graph step: ${what} was not taken by the SIMD kernels`);
}
