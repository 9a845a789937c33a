/**
 * Importance of whole channels (conv filters, dense units).
 *
 *  - L1 (Li et al., "Pruning Filters for Efficient ConvNets"): the mean |w| of the channel's kernel
 *    slice in its producer layer.
 *  - First-order Taylor (Molchanov et al. 2017, as Meyer & Wong's code scores): the mean over samples
 *    of the per-sample |Σ_positions a·∂L_i/∂a|, where a is the channel's pre-activation output of its
 *    producer, before any BatchNormalization, and L_i the sample's fine-tuning loss (weighted
 *    cross-entropy with the loss's targets and weights, so PW when fine-tuning with PW). It is computed
 *    without graph surgery: a is linear and homogeneous in the channel's kernel slice and bias, so
 *    Σ a·∂L_i/∂a = Σ_w w·∂L_i/∂w over those weights (the derivative of L_i when the channel is scaled
 *    by 1 + ε). Batch normalisation runs in inference mode here.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Task } from '../../protocol/results';
import { weightedCrossEntropy } from '../losses';
import type { ChannelGroup } from './graph';

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
}

function weightOf(model: tfl.LayersModel, layer: string, suffix: string): tf.Variable | undefined {
  const w = model
    .getLayer(layer)
    .weights.find((v) => v.originalName.endsWith(`/${suffix}`) || v.originalName === suffix);
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

/**
 * The weights a channel's pre-activation value a is linear and homogeneous in: the producer's kernel
 * slice and bias. With a BatchNormalization after the producer, this is a before the batch norm, where
 * the PW authors (after Molchanov et al.) take the Taylor score.
 */
export function channelScaleWeights(model: tfl.LayersModel, g: ChannelGroup): tf.Variable[] {
  return [weightOf(model, g.producer, 'kernel'), weightOf(model, g.producer, 'bias')].filter(
    (v): v is tf.Variable => !!v,
  );
}

/**
 * The Taylor importance of every channel as the PW authors compute it (Molchanov et al. 2017): for each
 * sample i of `data.indices`, |Σ_positions a·∂L_i/∂a| with L_i the sample's own weighted cross-entropy
 * (w_i · CE_i: PW's weights and targets when fine-tuning with PW) and a the channel's pre-batch-norm,
 * pre-activation value; then the mean over the samples. The absolute value is taken per sample, before
 * averaging, so channels whose effects cancel across samples still count. One backward pass per sample
 * (Σ_pos a·∂L_i/∂a = Σ_w w·∂L_i/∂w over the channel's kernel slice and bias, as a is linear and
 * homogeneous in them); `data.indices` is a seeded sample of the training rows, so this stays cheap.
 */
export function taylorScores(model: tfl.LayersModel, groups: ChannelGroup[], data: TaylorData): Float64Array[] {
  const vars = groups.map((g) => channelScaleWeights(model, g));
  const all = [...new Set(vars.flat())];
  const values = new Map(all.map((v) => [v.name, v.dataSync() as Float32Array]));
  const sums = groups.map((g) => new Float64Array(g.channels));
  const n = data.indices.length;
  const perSample = groups.map((g) => new Float64Array(g.channels));
  for (let k = 0; k < n; k++) {
    const grads = tf.tidy(() => {
      const idx = tf.tensor1d([data.indices[k]], 'int32');
      const xb = tf.gather(data.x, idx);
      const tb = tf.gather(data.targets, idx) as tf.Tensor2D;
      const wb = tf.gather(data.weights, idx) as tf.Tensor1D;
      const { value, grads } = tf.variableGrads(
        () => weightedCrossEntropy(data.task, model.apply(xb, { training: false }) as tf.Tensor2D, tb, wb),
        all,
      );
      value.dispose();
      return grads;
    });
    groups.forEach((g, gi) => {
      const acc = perSample[gi].fill(0);
      for (const v of vars[gi]) {
        const w = values.get(v.name)!;
        const gr = grads[v.name]?.dataSync();
        if (!gr) continue;
        for (let i = 0; i < w.length; i++) acc[i % g.channels] += w[i] * gr[i];
      }
      for (let c = 0; c < g.channels; c++) sums[gi][c] += Math.abs(acc[c]) / n;
    });
    for (const t of Object.values(grads)) t.dispose();
  }
  return sums;
}
