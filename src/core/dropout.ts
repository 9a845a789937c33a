/**
 * Dropout in training as tfjs-layers runs it (its `Dropout` layer, through `tf.dropout`), for the heap
 * training steps (conv-step.ts, graph-step.ts): the same draws from the same generator in the same order, so
 * a model with dropout layers trains on a heap step to the same weights as on tfjs's tape, up to float
 * rounding elsewhere in the step. Most Keras CNNs people bring have a Dropout layer before their classifier;
 * without this, one Dropout layer sent the whole model to the tape.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LayerLike } from './dense-step';
import { heapView, type WasmBackendInternals } from './kernels/wasm-heap';

/** A Dropout layer a heap step runs: `rate` of the activations dropped in training, the rest scaled up. */
export interface DropoutOnHeap {
  name: string;
  rate: number;
  /** The layer's own seed (the same mask every step), or none: a seed drawn from `Math.random` each step. */
  seed?: number;
}

/**
 * `layer` as a heap step runs it, or why not. A rate outside (0, 1) drops nothing (as tfjs-layers
 * does); a noise shape (dropping whole channels or rows) is not taken.
 */
export function dropoutOf(layer: LayerLike): DropoutOnHeap | { unsupported: string } {
  const cfg = layer.getConfig();
  if (cfg.noiseShape != null) return { unsupported: 'has a noise shape' };
  const rate = Number(cfg.rate);
  if (!Number.isFinite(rate)) return { unsupported: 'has no rate' };
  const seed = typeof cfg.seed === 'number' ? cfg.seed : undefined;
  return { name: layer.name, rate, ...(seed === undefined ? {} : { seed }) };
}

/** Whether the layer drops anything: tfjs-layers passes its input through where the rate is not in (0, 1). */
const drops = (d: DropoutOnHeap) => d.rate > 0 && d.rate < 1;

/**
 * The multipliers `tf.dropout` draws for `size` activations: floor(u + keep) / keep in float32, u uniform on
 * [0, 1) from tfjs's generator seeded by the layer's seed or, as on the tape, by one `Math.random()` (which
 * `train` seeds from the run's seed). Null where the layer drops nothing (and draws nothing).
 */
export function dropoutMultipliers(d: DropoutOnHeap, size: number): Float32Array | null {
  if (!drops(d)) return null;
  const keep = Math.fround(1 - d.rate);
  const u = tf.randomUniform([size], 0, 1, 'float32', d.seed);
  const m = u.dataSync() as Float32Array;
  u.dispose();
  // The tape's float32 add, floor and divide: each of these double operations rounds once, to the same float32.
  for (let i = 0; i < m.length; i++) m[i] = Math.fround(Math.floor(Math.fround(m[i] + keep)) / keep);
  return m;
}

/**
 * A new heap tensor of `a`'s shape holding a · m, element by element (the dropout's forward pass, and its
 * gradient with the same multipliers). `channels` is the number of the model's channels in each row of `a`'s
 * last axis where the heap pads that axis (the padding stays zero); else `a`'s last axis itself.
 */
export function multiplyOnHeap(
  heap: WasmBackendInternals,
  a: tf.TensorInfo,
  m: Float32Array,
  channels = a.shape[a.shape.length - 1],
): tf.TensorInfo {
  const out = heap.makeOutput(a.shape.slice(), 'float32');
  const av = heapView(heap, a) as Float32Array;
  const ov = heapView(heap, out) as Float32Array;
  const padded = a.shape[a.shape.length - 1];
  if (m.length !== (av.length / padded) * channels)
    throw new Error(`dropout on the heap: ${m.length} multipliers for [${a.shape}] of ${channels} channels`);
  if (padded === channels) {
    for (let i = 0; i < av.length; i++) ov[i] = av[i] * m[i];
    return out;
  }
  ov.fill(0);
  for (let r = 0, j = 0; r < av.length; r += padded)
    for (let c = 0; c < channels; c++, j++) ov[r + c] = av[r + c] * m[j];
  return out;
}
