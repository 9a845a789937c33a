/**
 * Which whole channels (conv filters, dense units) of a tfjs Layers model can be removed, and what
 * removing them touches.
 *
 * A *channel group* is one producer layer (Dense, Conv1D, Conv2D; channels last) and every layer its
 * output channels flow into until the next layer that mixes channels (the *consumers*: Dense, Conv1D,
 * Conv2D). In between, only layers that act on each channel separately are followed:
 * BatchNormalization (its γ, β, mean and variance follow the channels), activations, dropout,
 * pooling, global pooling, Flatten (channels-last: feature index = position × C + channel),
 * ZeroPadding/Cropping.
 *
 * A pruned channel is made exactly zero before the first non-linearity: its kernel slice and bias,
 * and the γ and β of a BatchNormalization that follows, are masked to 0. What reaches the consumers
 * is then the constant f(0) of the activations on the way (0 for relu, tanh, linear, elu...; 0.5 for
 * sigmoid). A zero channel is removed outright; a non-zero constant is folded into the consumer's
 * bias, which is exact for Dense consumers and 'valid' convolutions (not for 'same' padding, whose
 * zero border breaks the constant: such a group is left masked).
 *
 * Anything else on the way (residual Add, Concatenate, depthwise convolutions, Reshape, a nested
 * model, a layer used twice) couples the channels to other layers: the group is still pruned by
 * masking, but not physically removed, and the reason is recorded as the group's `note`.
 */
import type * as tfl from '@tensorflow/tfjs-layers';

type Json = Record<string, unknown>;

export type ConsumerMode = 'dense' | 'conv';

export interface Consumer {
  layer: string;
  className: string;
  mode: ConsumerMode;
  /** Dense after Flatten: how many positions each channel is repeated over (1 without Flatten). */
  positions: number;
  /** Value of a pruned channel where the consumer reads it (0 unless an activation maps 0 elsewhere). */
  constant: number;
}

export interface ChannelGroup {
  /** The producer layer, whose output channels (units/filters) this group is. */
  producer: string;
  className: string;
  channels: number;
  /** BatchNormalization layers whose per-channel weights follow the channels. */
  followers: string[];
  consumers: Consumer[];
  /** Layers the channels pass through on the way (pooling, activations, Flatten...). */
  passThrough: string[];
  /** Whether pruned channels can be physically removed; otherwise they are only masked. */
  shrinkable: boolean;
  /** Why the group is only masked, when it is. */
  note?: string;
}

export interface ModelGraph {
  model: tfl.LayersModel;
  /** Every channel group of a producer that is not the output layer, in layer order. */
  groups: ChannelGroup[];
  /** Producer layers in model order (first to last), the output layer included. */
  prunableLayers: string[];
  outputLayer: string;
}

const PRODUCERS = new Set(['Dense', 'Conv1D', 'Conv2D']);
const CONSUMERS = new Set(['Dense', 'Conv1D', 'Conv2D']);
const POOLING = new Set([
  'MaxPooling1D',
  'MaxPooling2D',
  'AveragePooling1D',
  'AveragePooling2D',
  'MaxPool1D',
  'MaxPool2D',
  'AvgPool1D',
  'AvgPool2D',
]);
const GLOBAL_POOLING = new Set([
  'GlobalAveragePooling1D',
  'GlobalAveragePooling2D',
  'GlobalMaxPooling1D',
  'GlobalMaxPooling2D',
  'GlobalAvgPool1D',
  'GlobalAvgPool2D',
  'GlobalMaxPool1D',
  'GlobalMaxPool2D',
]);
const IDENTITY_AT_INFERENCE = new Set([
  'Dropout',
  'SpatialDropout1D',
  'SpatialDropout2D',
  'GaussianNoise',
  'GaussianDropout',
  'AlphaDropout',
]);
const PADDING = new Set(['ZeroPadding2D']);
const CROPPING = new Set(['Cropping2D']);

/** f(x) of a Keras activation name, for the constant a pruned channel carries; undefined if unknown. */
export function activationValue(name: string, x: number, cfg: Json = {}): number | undefined {
  switch (name) {
    case 'linear':
    case undefined:
      return x;
    case 'relu':
      return Math.max(0, x);
    case 'relu6':
      return Math.min(6, Math.max(0, x));
    case 'elu':
      return x >= 0 ? x : Math.expm1(x);
    case 'selu':
      return x >= 0 ? 1.0507009873554805 * x : 1.0507009873554805 * 1.6732632423543772 * Math.expm1(x);
    case 'tanh':
      return Math.tanh(x);
    case 'sigmoid':
      return 1 / (1 + Math.exp(-x));
    case 'hard_sigmoid':
    case 'hardSigmoid':
      return Math.min(1, Math.max(0, 0.2 * x + 0.5));
    case 'softplus':
      return Math.log1p(Math.exp(x));
    case 'softsign':
      return x / (1 + Math.abs(x));
    case 'swish':
      return x / (1 + Math.exp(-x));
    case 'mish':
      return x * Math.tanh(Math.log1p(Math.exp(x)));
    case 'gelu':
    case 'gelu_new':
      return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    case 'leakyReLU':
      return x >= 0 ? x : Number(cfg.alpha ?? 0.3) * x;
    default:
      return undefined;
  }
}

/** The value an activation-like layer gives a constant channel, or undefined when not per-channel. */
function layerValue(layer: tfl.layers.Layer, x: number): number | undefined {
  const cls = layer.getClassName();
  const cfg = layer.getConfig() as Json;
  switch (cls) {
    case 'Activation':
      return activationValue(String(cfg.activation), x);
    case 'ReLU': {
      const max = cfg.maxValue == null ? Infinity : Number(cfg.maxValue);
      return Math.min(max, Math.max(0, x));
    }
    case 'LeakyReLU':
      return x >= 0 ? x : Number(cfg.alpha ?? 0.3) * x;
    case 'ELU':
      return x >= 0 ? x : Number(cfg.alpha ?? 1) * Math.expm1(x);
    case 'ThresholdedReLU':
      return x > Number(cfg.theta ?? 1) ? x : 0;
    default:
      return undefined;
  }
}

function outboundLayers(layer: tfl.layers.Layer): tfl.layers.Layer[] {
  return layer.outboundNodes.map((n) => n.outboundLayer);
}

function channelsLast(layer: tfl.layers.Layer): boolean {
  const f = (layer.getConfig() as Json).data_format ?? (layer.getConfig() as Json).dataFormat;
  return f === undefined || f === null || f === 'channels_last' || f === 'channelsLast';
}

function shapeOf(s: unknown): number[] {
  const shape = (Array.isArray(s) && Array.isArray(s[0]) ? s[0] : s) as Array<number | null>;
  return shape.map((d) => (d == null ? 1 : d));
}

/** Input shape(s) of a layer with batch dimension, as `outputShape` gives its output. */
export function inputShapeOf(layer: tfl.layers.Layer): Array<number | null> | Array<Array<number | null>> {
  const input = layer.input;
  return Array.isArray(input) ? input.map((t) => t.shape) : input.shape;
}

export function outputChannels(layer: tfl.layers.Layer): number {
  const shape = shapeOf(layer.outputShape);
  return shape[shape.length - 1];
}

function isOutputLayer(model: tfl.LayersModel, layer: tfl.layers.Layer): boolean {
  return model.outputs.some((o) => o.sourceLayer === layer);
}

/** Follows one producer's channels to their consumers. */
function traceGroup(model: tfl.LayersModel, producer: tfl.layers.Layer): ChannelGroup {
  const cfg = producer.getConfig() as Json;
  const group: ChannelGroup = {
    producer: producer.name,
    className: producer.getClassName(),
    channels: outputChannels(producer),
    followers: [],
    consumers: [],
    passThrough: [],
    shrinkable: true,
  };
  const stop = (why: string) => {
    if (group.shrinkable) {
      group.shrinkable = false;
      group.note = why;
    }
  };
  if (producer.inboundNodes.length !== 1) stop(`${producer.name} is used more than once`);
  if (!channelsLast(producer)) stop(`${producer.name} is channels-first`);
  const start = activationValue(String(cfg.activation ?? 'linear'), 0, cfg);
  if (start === undefined) stop(`${producer.name}'s activation '${String(cfg.activation)}' is not known here`);

  interface Branch {
    layer: tfl.layers.Layer;
    constant: number;
    /** After Flatten / global pooling: positions per channel (0 = still a feature map). */
    flattened: number;
    /** A BatchNormalization directly re-zeroes the channel. */
    padded: boolean;
  }
  const queue: Branch[] = outboundLayers(producer).map((layer) => ({
    layer,
    constant: start ?? 0,
    flattened: 0,
    padded: false,
  }));
  if (isOutputLayer(model, producer)) stop(`${producer.name} is a model output`);
  const seen = new Set<string>();
  while (queue.length) {
    const b = queue.shift()!;
    const { layer } = b;
    const cls = layer.getClassName();
    if (seen.has(layer.name)) {
      stop(`${layer.name} (${cls}) joins two paths of ${producer.name}'s channels`);
      continue;
    }
    seen.add(layer.name);
    if (layer.inboundNodes.length !== 1 || layer.inboundNodes[0].inboundLayers.length !== 1) {
      stop(
        `${layer.name} (${cls}) couples ${producer.name}'s ` +
          `channels with another layer's ` +
          `(${cls === 'Add' ? 'residual Add' : cls}); ` +
          'its filters are masked, not removed',
      );
      continue;
    }
    const lcfg = layer.getConfig() as Json;
    const next = (patch: Partial<Branch>) => {
      if (isOutputLayer(model, layer)) stop(`${producer.name}'s channels reach the model output through ${layer.name}`);
      for (const l of outboundLayers(layer)) queue.push({ ...b, ...patch, layer: l });
    };
    if (CONSUMERS.has(cls)) {
      if (!channelsLast(layer)) {
        stop(`${layer.name} is channels-first`);
        continue;
      }
      const inShape = shapeOf(inputShapeOf(layer));
      if (cls === 'Dense' && inShape.length !== 2) {
        stop(`${layer.name} is a Dense layer on a ${inShape.length - 1}-D input`);
        continue;
      }
      if (cls !== 'Dense' && b.flattened) {
        stop(`${layer.name} convolves flattened features`);
        continue;
      }
      if (cls !== 'Dense' && b.constant !== 0 && lcfg.padding !== 'valid') {
        stop(
          `pruned channels carry the constant ${b.constant.toPrecision(3)} ` +
            `into ${layer.name}, whose '${String(lcfg.padding)}' ` +
            'padding cannot absorb it exactly',
        );
        continue;
      }
      if (b.constant !== 0 && (lcfg.use_bias === false || lcfg.useBias === false)) {
        stop(
          `pruned channels carry the constant ${b.constant.toPrecision(3)} ` +
            `into ${layer.name}, which has no bias to absorb it`,
        );
        continue;
      }
      if (b.constant !== 0 && b.padded) {
        stop(`pruned channels carry a non-zero constant through zero padding into ${layer.name}`);
        continue;
      }
      group.consumers.push({
        layer: layer.name,
        className: cls,
        mode: cls === 'Dense' ? 'dense' : 'conv',
        positions: Math.max(1, b.flattened),
        constant: b.constant,
      });
      continue;
    }
    group.passThrough.push(layer.name);
    if (cls === 'BatchNormalization') {
      const axis = lcfg.axis;
      const rank = shapeOf(inputShapeOf(layer)).length;
      if (!(
        axis === -1 ||
        axis === rank - 1 ||
        (Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === rank - 1))
      )) {
        stop(`${layer.name} normalises another axis than the channels`);
        continue;
      }
      if (b.flattened) {
        stop(`${layer.name} normalises flattened features`);
        continue;
      }
      if (lcfg.scale === false || lcfg.center === false) {
        stop(`${layer.name} has no γ or β to zero a channel with`);
        continue;
      }
      group.followers.push(layer.name);
      next({ constant: 0 });
      continue;
    }
    const v = layerValue(layer, b.constant);
    if (v !== undefined) {
      next({ constant: v });
      continue;
    }
    if (IDENTITY_AT_INFERENCE.has(cls)) {
      next({});
      continue;
    }
    if (POOLING.has(cls) || CROPPING.has(cls)) {
      if (b.flattened) {
        stop(`${layer.name} pools flattened features`);
        continue;
      }
      next({});
      continue;
    }
    if (PADDING.has(cls)) {
      next({ padded: true });
      continue;
    }
    if (GLOBAL_POOLING.has(cls)) {
      next({ flattened: 1 });
      continue;
    }
    if (cls === 'Flatten') {
      if (b.flattened) {
        next({});
        continue;
      }
      const inShape = shapeOf(inputShapeOf(layer));
      const positions = inShape.slice(1, -1).reduce((a, d) => a * d, 1);
      next({ flattened: positions });
      continue;
    }
    stop(`${layer.name} (${cls}) mixes or reshapes ${producer.name}'s channels; its filters are masked, not removed`);
  }
  return group;
}

/** Every producer's channel group, in layer order; nested models are not looked into. */
export function analyzeModel(model: tfl.LayersModel): ModelGraph {
  const groups: ChannelGroup[] = [];
  const prunableLayers: string[] = [];
  for (const layer of model.layers) {
    if (!PRODUCERS.has(layer.getClassName())) continue;
    prunableLayers.push(layer.name);
    if (isOutputLayer(model, layer)) continue;
    groups.push(traceGroup(model, layer));
  }
  return { model, groups, prunableLayers, outputLayer: model.outputs[0].sourceLayer.name };
}

/**
 * Layer names to leave alone from a user's list: `first` and `last` name the first and last
 * prunable layers, `none` clears the list, anything else is a layer name (checked by the caller).
 */
export function resolveSkipLayers(spec: string[], prunableLayers: string[]): Set<string> {
  const out = new Set<string>();
  for (const s of spec) {
    if (s === 'none') out.clear();
    else if (s === 'first') {
      if (prunableLayers.length) out.add(prunableLayers[0]);
    } else if (s === 'last') {
      if (prunableLayers.length) out.add(prunableLayers[prunableLayers.length - 1]);
    } else out.add(s);
  }
  return out;
}
