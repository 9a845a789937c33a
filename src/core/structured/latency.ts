/**
 * Inference latency of the dense and the pruned model on the same backend, measured in turns
 * (dense, pruned, dense, ...) after warm-up runs so that drift and caches hit both alike, and a
 * plain sentence on whether speed changed and why.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { LatencyRecord } from '../../protocol/results';

export interface LatencyOptions {
  warmup?: number;
  runs?: number;
}

function timeOnce(model: tfl.LayersModel, x: tf.Tensor): number {
  const t0 = process.hrtime.bigint();
  const y = model.apply(x, { training: false }) as tf.Tensor;
  y.dataSync(); // wait for the backend to finish
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  y.dispose();
  return ms;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface LatencyContext {
  /** Structured: FLOPs before/after; unstructured pruning leaves the FLOPs of the dense model. */
  flopsBefore: number;
  flopsAfter: number;
  structured: boolean;
  /** Whether any channel was physically removed. */
  shrunk: boolean;
}

/** Median ms per batch of `x` for both models, and the sentence. */
export function compareLatency(
  dense: tfl.LayersModel,
  pruned: tfl.LayersModel,
  x: tf.Tensor,
  ctx: LatencyContext,
  opts: LatencyOptions = {},
): LatencyRecord {
  const warmup = opts.warmup ?? 2;
  const runs = opts.runs ?? 7;
  for (let i = 0; i < warmup; i++) {
    timeOnce(dense, x);
    timeOnce(pruned, x);
  }
  const d: number[] = [];
  const p: number[] = [];
  for (let i = 0; i < runs; i++) {
    d.push(timeOnce(dense, x));
    p.push(timeOnce(pruned, x));
  }
  const denseMs = median(d);
  const prunedMs = median(p);
  const rec: LatencyRecord = {
    backend: tf.getBackend(),
    batchSize: x.shape[0],
    runs,
    denseMs,
    prunedMs,
    speedup: denseMs / Math.max(prunedMs, 1e-9),
    sentence: '',
  };
  rec.sentence = latencySentence(rec, ctx);
  return rec;
}

const fmt = (ms: number) => (ms >= 10 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(1) : ms.toFixed(2));

/** The plain sentence: faster, slower or unchanged, and the reason. */
export function latencySentence(
  r: Pick<LatencyRecord, 'backend' | 'batchSize' | 'denseMs' | 'prunedMs' | 'speedup'>,
  ctx: LatencyContext,
): string {
  const times = `${fmt(r.prunedMs)} ms against ${fmt(r.denseMs)} ms dense per batch of ${r.batchSize} on ${r.backend}`;
  const flopsCut = ctx.flopsBefore > 0 ? 1 - ctx.flopsAfter / ctx.flopsBefore : 0;
  const cut = `${(flopsCut * 100).toFixed(0)}%`;
  if (!ctx.structured || !ctx.shrunk) {
    const why = ctx.structured
      ? 'no filter could be physically removed (they are masked zeros ' +
        'in layers of the same size), so every multiplication still runs'
      : 'unstructured pruning only puts zeros inside the same dense weight ' +
        `matrices and the ${r.backend} backend has no sparse kernels, ` +
        'so every multiplication still runs; only the gzip size shrinks';
    if (Math.abs(r.speedup - 1) < 0.1) return `Speed did not change (${times}): ${why}.`;
    return (
      `The pruned model measured ${r.speedup > 1 ? 'faster' : 'slower'} ` +
      `(${times}), but that is measurement noise: ${why}.`
    );
  }
  if (r.speedup >= 1.1)
    return (
      `The pruned model is ${r.speedup.toFixed(1)}× faster (${times}): ` +
      `it is physically smaller and needs ${cut} fewer FLOPs.`
    );
  if (r.speedup <= 0.9)
    return (
      `The pruned model measured slower (${times}) ` +
      `although it needs ${cut} fewer FLOPs: ` +
      'at this size fixed per-layer overhead dominates and the timing is noisy.'
    );
  return (
    `Speed did not change measurably (${times}) ` +
    `although the model needs ${cut} fewer FLOPs: ` +
    `at this size the time goes to fixed per-layer overhead on ${r.backend}, ` +
    'not to arithmetic.'
  );
}
