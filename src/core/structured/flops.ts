/**
 * Parameters and FLOPs of a tfjs Layers model, per layer, for one sample (batch 1) at inference.
 *
 * Counting rules (also in docs/structured-pruning.md). A multiply-add is 2 FLOPs; "elements" is the
 * size of the layer's output for one sample; k is the kernel's spatial size (kh·kw).
 *  - Dense:            2·in·out, + out for the bias, + out for a non-linear activation
 *  - Conv1D/Conv2D:    2·k·Cin·Cout·positions_out, + Cout·positions_out for the bias, + elements for
 *                      a non-linear activation
 *  - DepthwiseConv2D:  2·k·Cin·multiplier·positions_out (+ bias, + activation as above)
 *  - SeparableConv2D:  depthwise 2·k·Cin·mult·positions_out + pointwise 2·Cin·mult·Cout·positions_out
 *  - Conv2DTranspose:  2·k·Cin·Cout·positions_in (+ bias on the output, + activation)
 *  - BatchNormalization: 2·elements (a scale and a shift once folded for inference)
 *  - Activation, ReLU, LeakyReLU, ELU, PReLU, Softmax, ThresholdedReLU: 1·elements ('linear': 0)
 *  - Max/AveragePooling: pool size · elements; global pooling: the input's elements
 *  - Add, Subtract, Multiply, Average, Maximum, Minimum: (inputs − 1)·elements
 *  - Flatten, Reshape, Dropout and other noise layers, InputLayer, padding, cropping,
 *    Concatenate, Permute, RepeatVector: 0 (data movement only)
 *  - any other layer: 0, named in `uncounted`.
 * The engine counts the logit model it fine-tunes, so the output layer's sigmoid/softmax is not
 * counted (it is the same before and after pruning).
 * Parameters are every weight the layer holds (batch-norm moving statistics included, as saved);
 * prunable parameters are the kernels of Dense and convolution layers (biases kept).
 *
 * With a channel group's kept count, the counts are of the physically shrunk model: the producer's
 * output channels, the layers in between and the consumers' input channels scale with it. A group
 * that can only be masked keeps its FLOPs, but its masked kernel columns count as removed weights.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import type { ModelGraph } from './graph';
import { inputShapeOf } from './graph';

type Json = Record<string, unknown>;

export interface LayerCost {
  layer: string;
  className: string;
  flops: number;
  parameters: number;
  prunableParameters: number;
}

export interface ModelCost {
  flops: number;
  parameters: number;
  prunableParameters: number;
  layers: LayerCost[];
  /** Layer classes counted as 0 FLOPs because no rule covers them. */
  uncounted: string[];
}

const ZERO_FLOPS = new Set([
  'Flatten',
  'Reshape',
  'Dropout',
  'SpatialDropout1D',
  'SpatialDropout2D',
  'GaussianNoise',
  'GaussianDropout',
  'AlphaDropout',
  'InputLayer',
  'ZeroPadding2D',
  'Cropping2D',
  'Concatenate',
  'Permute',
  'RepeatVector',
  'UpSampling2D',
]);
const ACTIVATION_LAYERS = new Set(['Activation', 'ReLU', 'LeakyReLU', 'ELU', 'PReLU', 'Softmax', 'ThresholdedReLU']);
const MERGE = new Set(['Add', 'Subtract', 'Multiply', 'Average', 'Maximum', 'Minimum']);
const PRUNABLE = new Set([
  'Dense',
  'Conv1D',
  'Conv2D',
  'Conv3D',
  'Conv2DTranspose',
  'DepthwiseConv2D',
  'SeparableConv2D',
]);

function dims(s: unknown): number[] {
  const shape = (Array.isArray(s) && Array.isArray(s[0]) ? s[0] : s) as Array<number | null>;
  return shape.slice(1).map((d) => (d == null ? 1 : d));
}

const prod = (a: number[]) => a.reduce((x, y) => x * y, 1);

/** Channel ratios (kept / original) on a layer's input and output under a kept-channel assignment. */
function channelRatios(
  graph: ModelGraph | undefined,
  kept: Map<string, number> | undefined,
): Map<string, { in: number; out: number }> {
  const r = new Map<string, { in: number; out: number }>();
  if (!graph || !kept) return r;
  const get = (name: string) => r.get(name) ?? { in: 1, out: 1 };
  for (const g of graph.groups) {
    const k = kept.get(g.producer);
    if (k === undefined || k === g.channels || !g.shrinkable) continue;
    const q = k / g.channels;
    r.set(g.producer, { ...get(g.producer), out: q });
    for (const l of g.passThrough) r.set(l, { in: q, out: q });
    for (const c of g.consumers) r.set(c.layer, { ...get(c.layer), in: q });
  }
  return r;
}

function activationFlops(cfg: Json, elements: number): number {
  const a = cfg.activation;
  return a === undefined || a === null || a === 'linear' ? 0 : elements;
}

function layerCost(
  layer: tfl.layers.Layer,
  ratio: { in: number; out: number },
): { flops: number; parameters: number; prunable: number; counted: boolean } {
  const cls = layer.getClassName();
  const cfg = layer.getConfig() as Json;
  const inShapes =
    Array.isArray(inputShapeOf(layer)) && Array.isArray((inputShapeOf(layer) as unknown[])[0])
      ? (inputShapeOf(layer) as unknown[]).map(dims)
      : [dims(inputShapeOf(layer))];
  const inD = inShapes[0];
  const outD = dims(layer.outputShape);
  const scaleLast = (d: number[], q: number) => (d.length ? [...d.slice(0, -1), d[d.length - 1] * q] : d);
  const inS = scaleLast(inD, ratio.in);
  const outS = scaleLast(outD, ratio.out);
  const outElements = prod(outS);
  const cin = inS[inS.length - 1];
  const cout = outS[outS.length - 1];
  const posOut = prod(outS.slice(0, -1));
  const useBias = cfg.use_bias !== false && cfg.useBias !== false;

  // Parameters: every weight, the kernel scaled on both channel axes, vectors on the output axis.
  let parameters = 0;
  let prunable = 0;
  for (const w of layer.weights) {
    const n = prod(w.shape as number[]);
    const isKernel = /kernel$/.test(w.originalName);
    const q = isKernel ? ratio.in * ratio.out : cls === 'BatchNormalization' ? ratio.out : ratio.out;
    const v = n * q;
    parameters += v;
    if (isKernel && PRUNABLE.has(cls)) prunable += v;
  }

  let flops = 0;
  let counted = true;
  const k = Array.isArray(cfg.kernel_size)
    ? prod(cfg.kernel_size as number[])
    : Array.isArray(cfg.kernelSize)
      ? prod(cfg.kernelSize as number[])
      : Number(cfg.kernel_size ?? cfg.kernelSize ?? 1);
  if (cls === 'Dense') {
    const positions = prod(outS.slice(0, -1));
    flops = positions * (2 * cin * cout + (useBias ? cout : 0)) + activationFlops(cfg, outElements);
  } else if (cls === 'Conv1D' || cls === 'Conv2D' || cls === 'Conv3D') {
    flops = 2 * k * cin * cout * posOut + (useBias ? cout * posOut : 0) + activationFlops(cfg, outElements);
  } else if (cls === 'DepthwiseConv2D') {
    flops = 2 * k * cout * posOut + (useBias ? outElements : 0) + activationFlops(cfg, outElements);
  } else if (cls === 'SeparableConv2D') {
    const mult = Number(cfg.depth_multiplier ?? cfg.depthMultiplier ?? 1);
    flops =
      2 * k * cin * mult * posOut +
      2 * cin * mult * cout * posOut +
      (useBias ? outElements : 0) +
      activationFlops(cfg, outElements);
  } else if (cls === 'Conv2DTranspose') {
    flops =
      2 * k * cin * cout * prod(inS.slice(0, -1)) + (useBias ? outElements : 0) + activationFlops(cfg, outElements);
  } else if (cls === 'BatchNormalization') {
    flops = 2 * outElements;
  } else if (ACTIVATION_LAYERS.has(cls)) {
    flops = cls === 'Activation' && cfg.activation === 'linear' ? 0 : outElements;
  } else if (/^(Max|Average|Avg)Pool(ing)?[123]D$/.test(cls)) {
    const pool = (cfg.pool_size ?? cfg.poolSize ?? 2) as number | number[];
    flops = (Array.isArray(pool) ? prod(pool) : pool) * outElements;
  } else if (/^Global(Max|Average|Avg)Pool(ing)?[123]D$/.test(cls)) {
    flops = prod(inS);
  } else if (MERGE.has(cls)) {
    flops = (inShapes.length - 1) * outElements;
  } else if (!ZERO_FLOPS.has(cls)) {
    counted = false;
  }
  return { flops, parameters, prunable, counted };
}

/**
 * Counts `model` as it is, or, with `graph` and `kept` (producer layer → channels kept), as the
 * model it shrinks to.
 */
export function countCost(model: tfl.LayersModel, graph?: ModelGraph, kept?: Map<string, number>): ModelCost {
  const ratios = channelRatios(graph, kept);
  const out: ModelCost = { flops: 0, parameters: 0, prunableParameters: 0, layers: [], uncounted: [] };
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if ((layer as unknown as { layers?: unknown }).layers && ['Sequential', 'Model', 'Functional'].includes(cls)) {
      const inner = countCost(layer as unknown as tfl.LayersModel);
      out.layers.push(...inner.layers);
      out.uncounted.push(...inner.uncounted);
      out.flops += inner.flops;
      out.parameters += inner.parameters;
      out.prunableParameters += inner.prunableParameters;
      continue;
    }
    const c = layerCost(layer, ratios.get(layer.name) ?? { in: 1, out: 1 });
    const lc: LayerCost = {
      layer: layer.name,
      className: cls,
      flops: Math.round(c.flops),
      parameters: Math.round(c.parameters),
      prunableParameters: Math.round(c.prunable),
    };
    if (!c.counted && !out.uncounted.includes(cls)) out.uncounted.push(cls);
    out.layers.push(lc);
    out.flops += lc.flops;
    out.parameters += lc.parameters;
    out.prunableParameters += lc.prunableParameters;
  }
  // Masked-only groups: their pruned kernel columns are zeros, not removed, but count as pruned weights.
  if (graph && kept) {
    for (const g of graph.groups) {
      const k = kept.get(g.producer);
      if (g.shrinkable || k === undefined || k === g.channels) continue;
      const lc = out.layers.find((l) => l.layer === g.producer);
      if (!lc) continue;
      const removed = Math.round((lc.prunableParameters * (g.channels - k)) / g.channels);
      out.prunableParameters -= removed;
    }
  }
  return out;
}
