/**
 * Importance of whole channels (conv filters, dense units).
 *
 *  - L1 (Li et al., "Pruning Filters for Efficient ConvNets"): the mean |w| of the channel's kernel
 *    slice in its producer layer.
 *  - First-order Taylor (Molchanov et al. 2017, the choice of Meyer & Wong): |Σ a·∂L/∂a| over a batch
 *    and every position, where a is the channel's value at the point where pruning zeroes it: the
 *    producer's pre-activation output, or the output of the BatchNormalization that follows it. The
 *    loss L is the fine-tuning loss itself (weighted cross-entropy with the loss's targets and
 *    weights, so PW when fine-tuning with PW). It is computed without graph surgery: a is linear and
 *    homogeneous in the channel's own weights (kernel slice and bias, or γ and β), so
 *    Σ a·∂L/∂a = Σ_w w·∂L/∂w over those weights (the derivative of L when the channel is scaled by
 *    1 + ε). Batch normalisation runs in inference mode here, so it is affine.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Task } from '../../protocol/results';
import { weightedCrossEntropy } from '../losses';
import type { ChannelGroup } from './graph';

export type StructuredCriterionName = 'l1' | 'taylor';

/** What a Taylor score is computed on: the session's training tensors and loss. */
export interface TaylorData {
  x: tf.Tensor;
  /** [n, width] targets of the fine-tuning loss. */
  targets: tf.Tensor2D;
  /** [n] per-sample loss weights. */
  weights: tf.Tensor1D;
  /** Rows to score on (a seeded sample of the training rows). */
  indices: Int32Array;
  task: Task;
  batchSize?: number;
}

function weightOf(model: tfl.LayersModel, layer: string, suffix: string): tf.Variable | undefined {
  const w = model.getLayer(layer).weights.find((v) => v.originalName.endsWith(`/${suffix}`) || v.originalName === suffix);
  return w ? (w.read() as tf.Variable) : undefined;
}

/** Σ over the last axis's slices: out[c] = Σ_{i: i mod C = c} f(values[i]). */
function perChannel(values: ArrayLike<number>, channels: number, f: (v: number, i: number) => number): Float64Array {
  const out = new Float64Array(channels);
  for (let i = 0; i < values.length; i++) out[i % channels] += f(values[i], i);
  return out;
}

/** Mean |w| of each output channel's kernel slice. */
export function l1Scores(model: tfl.LayersModel, groups: ChannelGroup[]): Float64Array[] {
  return groups.map((g) => {
    const kernel = weightOf(model, g.producer, 'kernel');
    if (!kernel) throw new Error(`layer ${g.producer} has no kernel`);
    const v = kernel.dataSync();
    const per = v.length / g.channels;
    return perChannel(v, g.channels, (x) => Math.abs(x) / per);
  });
}

/** The weights a channel's value a is linear and homogeneous in: γ, β of a following BN, else kernel and bias. */
export function channelScaleWeights(model: tfl.LayersModel, g: ChannelGroup): tf.Variable[] {
  if (g.followers.length) {
    const bn = g.followers[0];
    return [weightOf(model, bn, 'gamma'), weightOf(model, bn, 'beta')].filter((v): v is tf.Variable => !!v);
  }
  return [weightOf(model, g.producer, 'kernel'), weightOf(model, g.producer, 'bias')].filter((v): v is tf.Variable => !!v);
}

/** |Σ a·∂L/∂a| per channel over `data.indices`, L the mean weighted cross-entropy over those rows. */
export function taylorScores(model: tfl.LayersModel, groups: ChannelGroup[], data: TaylorData): Float64Array[] {
  const vars = groups.map((g) => channelScaleWeights(model, g));
  const all = [...new Set(vars.flat())];
  const sums = groups.map((g) => new Float64Array(g.channels));
  const bs = data.batchSize ?? 128;
  const n = data.indices.length;
  for (let start = 0; start < n; start += bs) {
    const batch = data.indices.subarray(start, Math.min(n, start + bs));
    const share = batch.length / n;
    const grads = tf.tidy(() => {
      const idx = tf.tensor1d(batch, 'int32');
      const xb = tf.gather(data.x, idx);
      const tb = tf.gather(data.targets, idx) as tf.Tensor2D;
      const wb = tf.gather(data.weights, idx) as tf.Tensor1D;
      const { value, grads } = tf.variableGrads(() => weightedCrossEntropy(data.task, model.apply(xb, { training: false }) as tf.Tensor2D, tb, wb), all);
      value.dispose();
      return grads;
    });
    groups.forEach((g, gi) => {
      for (const v of vars[gi]) {
        const w = v.dataSync();
        const gr = grads[v.name]?.dataSync();
        if (!gr) continue;
        const part = perChannel(w, g.channels, (x, i) => x * gr[i] * share);
        for (let c = 0; c < g.channels; c++) sums[gi][c] += part[c];
      }
    });
    for (const t of Object.values(grads)) t.dispose();
  }
  return sums.map((s) => s.map(Math.abs));
}
