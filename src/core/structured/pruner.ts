/**
 * Structured pruning behind the training loop's `StepPruning` interface: whole channels are scored
 * (L1 or Taylor), chosen to reach a weights or FLOPs target (per layer or globally), and masked —
 * kernel slice, bias, the γ and β of a following BatchNormalization, and the consumers' input rows
 * where the pruned channel reads as exactly 0 — after every optimizer step. A schedule decides when
 * masks are recomputed and to what target; removed channels stay removed.
 *
 * Targets. `metric` weights: the fraction of prunable weights (Dense/conv kernels, all layers) that
 * the shrunk model no longer has; flops: the fraction of the model's FLOPs it no longer needs.
 * `scope` layer: every eligible layer loses the same fraction of its channels (scaled by a per-layer
 * allocation from a sensitivity scan when given), that fraction chosen so the model-wide metric
 * reaches the target; global: channels ranked across layers by their score divided by the L2 norm of
 * their layer's scores (Molchanov et al.), removed lowest first until the target is reached. A layer
 * always keeps at least one channel; when the eligible layers cannot reach the target, the most that
 * can be removed is, and `reached` says what that was.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { PruningTarget } from '../../protocol/results';
import type { PruningSchedule } from '../pruning/schedules';
import type { StepPruning } from '../pruning/masks';
import type { StructuredMethod } from '../pruning/methods';
import type { ChannelGroup, ModelGraph } from './graph';
import { countCost } from './flops';
import type { TaylorData } from './criteria';

export interface Selection {
  /** producer → removed channel indices (ascending). */
  removed: Map<string, number[]>;
  /** The metric's reduction reached (0–1). */
  reached: number;
}

function metricOf(
  model: tfl.LayersModel,
  graph: ModelGraph,
  metric: PruningTarget['metric'],
  kept?: Map<string, number>,
): number {
  const c = countCost(model, graph, kept);
  return metric === 'flops' ? c.flops : c.prunableParameters;
}

/** Channel order within a group: already removed first, then by ascending score, ties by index. */
function order(scores: Float64Array, already: Set<number> | undefined): number[] {
  const idx = Array.from(scores, (_, i) => i);
  const key = (i: number) => (already?.has(i) ? -Infinity : scores[i]);
  return idx.sort((a, b) => key(a) - key(b) || a - b);
}

/**
 * Which channels to remove from `groups` (scored by `scores`, same order) to reduce the target's
 * metric by `value`; `already` removed channels stay removed.
 */
export function selectChannels(
  model: tfl.LayersModel,
  graph: ModelGraph,
  groups: ChannelGroup[],
  scores: Float64Array[],
  target: PruningTarget,
  value: number,
  already: Map<string, Set<number>> = new Map(),
  allocation?: Map<string, number>,
): Selection {
  const base = metricOf(model, graph, target.metric);
  const orders = groups.map((g, i) => order(scores[i], already.get(g.producer)));
  const minRemoved = groups.map((g) => already.get(g.producer)?.size ?? 0);
  const reductionOf = (counts: number[]) => {
    const kept = new Map(groups.map((g, i) => [g.producer, g.channels - counts[i]]));
    return base > 0 ? 1 - metricOf(model, graph, target.metric, kept) / base : 0;
  };
  const result = (counts: number[]): Selection => ({
    removed: new Map(groups.map((g, i) => [g.producer, orders[i].slice(0, counts[i]).sort((a, b) => a - b)])),
    reached: reductionOf(counts),
  });

  if (target.scope === 'layer') {
    const share = groups.map((g) => Math.max(0, allocation?.get(g.producer) ?? 1));
    const countsAt = (p: number) =>
      groups.map((g, i) =>
        Math.min(g.channels - 1, Math.max(minRemoved[i], Math.round(Math.min(1, p * share[i]) * g.channels))),
      );
    const pMax = Math.max(1, ...share.filter((s) => s > 0).map((s) => 1 / s));
    if (value <= 0) return result(countsAt(0));
    if (reductionOf(countsAt(pMax)) < value) return result(countsAt(pMax));
    let lo = 0;
    let hi = pMax;
    for (let it = 0; it < 40; it++) {
      const mid = (lo + hi) / 2;
      if (reductionOf(countsAt(mid)) >= value) hi = mid;
      else lo = mid;
    }
    return result(countsAt(hi));
  }

  // Global: one ranking of every channel by its layer-normalised score.
  const ranked: Array<{ g: number; c: number; s: number }> = [];
  groups.forEach((g, gi) => {
    const norm = Math.sqrt(scores[gi].reduce((a, v) => a + v * v, 0)) || 1;
    for (const c of orders[gi].slice(0, g.channels - 1)) {
      ranked.push({ g: gi, c, s: already.get(g.producer)?.has(c) ? -Infinity : scores[gi][c] / norm });
    }
  });
  ranked.sort((a, b) => a.s - b.s || a.g - b.g || a.c - b.c);
  // Within a group the ranking follows `orders` (scores ascending), so a prefix of `ranked` is a prefix per group.
  const countsFor = (prefix: number) => {
    const counts = groups.map(() => 0);
    for (let i = 0; i < prefix; i++) counts[ranked[i].g]++;
    return counts.map((n, i) => Math.max(n, minRemoved[i]));
  };
  if (value <= 0) return result(countsFor(0));
  if (reductionOf(countsFor(ranked.length)) < value) return result(countsFor(ranked.length));
  let lo = 0;
  let hi = ranked.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (reductionOf(countsFor(mid)) >= value) hi = mid;
    else lo = mid + 1;
  }
  return result(countsFor(lo));
}

interface MaskEntry {
  variable: tf.Variable;
  mask: tf.Tensor;
}

/** Masks that zero the removed channels of each group (see the file comment). */
export function buildMasks(
  model: tfl.LayersModel,
  groups: ChannelGroup[],
  removed: Map<string, number[]>,
): Map<string, MaskEntry> {
  const values = new Map<string, { variable: tf.Variable; mask: Float32Array; shape: number[] }>();
  const entry = (layer: string, suffix: string) => {
    const w = model.getLayer(layer).weights.find((v) => v.originalName.endsWith(`/${suffix}`));
    if (!w) return undefined;
    const variable = w.read() as tf.Variable;
    let e = values.get(variable.name);
    if (!e) {
      e = { variable, mask: new Float32Array(variable.size).fill(1), shape: variable.shape };
      values.set(variable.name, e);
    }
    return e;
  };
  for (const g of groups) {
    const gone = removed.get(g.producer) ?? [];
    if (!gone.length) continue;
    const C = g.channels;
    const zeroLast = (e: { mask: Float32Array } | undefined) => {
      if (!e) return;
      for (let i = 0; i < e.mask.length; i += C) for (const c of gone) e.mask[i + c] = 0;
    };
    zeroLast(entry(g.producer, 'kernel'));
    zeroLast(entry(g.producer, 'bias'));
    for (const bn of g.followers) {
      zeroLast(entry(bn, 'gamma'));
      zeroLast(entry(bn, 'beta'));
    }
    if (!g.shrinkable) continue;
    for (const cons of g.consumers) {
      if (cons.constant !== 0) continue; // folded into the bias when shrinking; the rows stay
      const e = entry(cons.layer, 'kernel');
      if (!e) continue;
      const out = e.shape[e.shape.length - 1];
      const inC = e.shape[e.shape.length - 2];
      // Dense after Flatten: input row = position·C + channel; conv: axis −2 is the input channel.
      const rows = new Set<number>();
      if (cons.mode === 'dense') for (let p = 0; p < cons.positions; p++) for (const c of gone) rows.add(p * C + c);
      else for (const c of gone) rows.add(c);
      for (let i = 0; i < e.mask.length; i++) if (rows.has(Math.floor(i / out) % inC)) e.mask[i] = 0;
    }
  }
  const out = new Map<string, MaskEntry>();
  for (const [name, e] of values)
    out.set(name, { variable: e.variable, mask: tf.keep(tf.tensor(e.mask, e.shape, 'float32')) });
  return out;
}

export interface StructuredPruningOptions {
  /** The structured method of the table (src/core/pruning/methods.ts) that scores the channels. */
  method: StructuredMethod;
  schedule: PruningSchedule;
  target: PruningTarget;
  finalSparsity: number;
  /** Producer layers left alone. */
  skip: Set<string>;
  /** Training rows and the loss's targets, for a method that needs them (Taylor). */
  taylor?: TaylorData;
  /** Per-layer allocation (layer scope): relative share of the uniform fraction. */
  allocation?: Map<string, number>;
}

/** A structured method driven by a schedule, as the training loop's `StepPruning`. */
export class StructuredPruning implements StepPruning {
  readonly graph: ModelGraph;
  readonly groups: ChannelGroup[];
  private masks = new Map<string, MaskEntry>();
  private removedChannels = new Map<string, Set<number>>();
  private lastUpdate = -1;
  /** Reduction of the target metric at the last update. */
  reached = 0;
  /** Target metric value of every mask update: [step, asked, reached]. */
  readonly trajectory: Array<{ step: number; target: number; reached: number }> = [];

  constructor(
    readonly model: tfl.LayersModel,
    graph: ModelGraph,
    readonly opts: StructuredPruningOptions,
  ) {
    this.graph = graph;
    this.groups = graph.groups.filter((g) => !opts.skip.has(g.producer));
    if (opts.method.needs.includes('training rows') && !opts.taylor)
      throw new Error(`${opts.method.name} needs training rows`);
  }

  prepare(totalSteps: number): void {
    this.beforeStep(0, totalSteps);
  }

  scores(): Float64Array[] {
    return this.opts.method.channelScores(this.model, this.groups, this.opts.taylor);
  }

  beforeStep(step: number, totalSteps: number): void {
    if (step === this.lastUpdate || !this.opts.schedule.updatesAt(step, totalSteps)) return;
    this.lastUpdate = step;
    const value = this.opts.schedule.sparsityAt(step, totalSteps, this.opts.finalSparsity);
    const sel = selectChannels(
      this.model,
      this.graph,
      this.groups,
      this.scores(),
      this.opts.target,
      value,
      this.removedChannels,
      this.opts.allocation,
    );
    this.reached = sel.reached;
    this.trajectory.push({ step, target: value, reached: sel.reached });
    for (const [p, r] of sel.removed) this.removedChannels.set(p, new Set(r));
    this.disposeMasks();
    this.masks = buildMasks(this.model, this.groups, sel.removed);
    this.afterStep();
  }

  maskGradient(variableName: string, grad: tf.Tensor): tf.Tensor {
    const m = this.masks.get(variableName);
    return m ? tf.mul(grad, m.mask) : grad;
  }

  afterStep(): void {
    tf.tidy(() => {
      for (const { variable, mask } of this.masks.values()) variable.assign(tf.mul(variable, mask));
    });
  }

  /** producer → removed channel indices, ascending. */
  removed(): Map<string, number[]> {
    return new Map([...this.removedChannels].map(([k, v]) => [k, [...v].sort((a, b) => a - b)]));
  }

  private disposeMasks(): void {
    for (const m of this.masks.values()) m.mask.dispose();
    this.masks.clear();
  }

  dispose(): void {
    this.disposeMasks();
  }
}
