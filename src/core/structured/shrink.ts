/**
 * Physical shrinking: the structurally pruned model rebuilt with fewer filters/units, and the layers
 * that read them shrunk to match, so it is an ordinary, smaller tfjs Layers model.
 *
 * For every group whose removed channels can really go (see graph.ts): the producer keeps its
 * remaining kernel columns and biases; a following BatchNormalization keeps their γ, β, mean and
 * variance; a Dense consumer keeps the matching input rows (after Flatten, rows p·C + c for every
 * position p, which Flatten of the smaller map produces in the same order); a convolution consumer
 * keeps the matching input channels. A removed channel that reads as a non-zero constant at a
 * consumer (an activation with f(0) ≠ 0) adds constant × its weights to the consumer's bias. The
 * predictions then equal the masked model's up to float rounding; `maxOutputDifference` measures it.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { ChannelGroup, ModelGraph } from './graph';

type Json = Record<string, unknown>;

interface W {
  values: Float32Array;
  shape: number[];
}

function layersIn(node: unknown, visit: (layer: Json) => void): void {
  if (!node || typeof node !== 'object') return;
  const obj = node as Json;
  const config = (obj.model_config as Json | undefined) ?? obj;
  const inner = config.config as unknown;
  const list = Array.isArray(inner) ? inner : ((inner as Json | undefined)?.layers as unknown[] | undefined);
  if (!Array.isArray(list)) return;
  for (const l of list as Json[]) {
    visit(l);
    if (['Sequential', 'Model', 'Functional'].includes(String(l.class_name))) layersIn(l, visit);
  }
}

/**
 * A copy of a topology (a `modelTopology` or a whole model.json) with the producers' units/filters
 * set to their kept counts. Throws when a producer is not in it.
 */
export function shrinkTopology<T extends Json>(json: T, kept: Map<string, number>): T {
  const copy = JSON.parse(JSON.stringify(json)) as T;
  const root = ((copy as Json).modelTopology as Json | undefined) ?? copy;
  const found = new Set<string>();
  layersIn(root, (l) => {
    const cfg = l.config as Json | undefined;
    const name = String(cfg?.name ?? l.name);
    const k = kept.get(name);
    if (k === undefined || !cfg) return;
    if ('units' in cfg) cfg.units = k;
    else if ('filters' in cfg) cfg.filters = k;
    else throw new Error(`layer ${name} has neither units nor filters`);
    found.add(name);
  });
  for (const name of kept.keys()) if (!found.has(name)) throw new Error(`layer ${name} is not in the model topology`);
  return copy;
}

function read(layer: tfl.layers.Layer): Map<string, W> {
  const out = new Map<string, W>();
  for (const w of layer.weights) {
    const suffix = w.originalName.split('/').pop()!;
    const t = w.read();
    out.set(suffix, { values: Float32Array.from(t.dataSync() as Float32Array), shape: [...t.shape] });
  }
  return out;
}

/** Keeps indices `keep` of the last axis. */
function keepLast(w: W, keep: number[]): W {
  const C = w.shape[w.shape.length - 1];
  const outer = w.values.length / C;
  const values = new Float32Array(outer * keep.length);
  for (let o = 0; o < outer; o++) keep.forEach((c, j) => (values[o * keep.length + j] = w.values[o * C + c]));
  return { values, shape: [...w.shape.slice(0, -1), keep.length] };
}

/** Keeps rows `keep` of axis −2 of a kernel [..., in, out]. */
function keepRows(w: W, keep: number[]): W {
  const out = w.shape[w.shape.length - 1];
  const inC = w.shape[w.shape.length - 2];
  const outer = w.values.length / (out * inC);
  const values = new Float32Array(outer * keep.length * out);
  for (let s = 0; s < outer; s++) {
    keep.forEach((r, j) => {
      values.set(w.values.subarray((s * inC + r) * out, (s * inC + r + 1) * out), (s * keep.length + j) * out);
    });
  }
  return { values, shape: [...w.shape.slice(0, -2), keep.length, out] };
}

/** Σ over spatial positions and `rows` of kernel[..., row, o], per output o. */
function rowSums(w: W, rows: number[]): Float64Array {
  const out = w.shape[w.shape.length - 1];
  const inC = w.shape[w.shape.length - 2];
  const outer = w.values.length / (out * inC);
  const sums = new Float64Array(out);
  for (let s = 0; s < outer; s++)
    for (const r of rows) for (let o = 0; o < out; o++) sums[o] += w.values[(s * inC + r) * out + o];
  return sums;
}

export interface ShrinkResult {
  model: tfl.LayersModel;
  /** producer → channels kept, for the groups that were physically shrunk. */
  kept: Map<string, number>;
  /** Groups with removed channels that stay in the model as masked zeros, with the reason. */
  maskedOnly: Array<{ layer: string; note: string }>;
}

/**
 * Builds the smaller model from `model` (whose removed channels are already masked) and the
 * removed channels per producer. The new model has the same layer names.
 */
export async function shrinkModel(
  model: tfl.LayersModel,
  graph: ModelGraph,
  removed: Map<string, number[]>,
): Promise<ShrinkResult> {
  const kept = new Map<string, number>();
  const maskedOnly: ShrinkResult['maskedOnly'] = [];
  const active: Array<{ g: ChannelGroup; keep: number[]; gone: number[] }> = [];
  for (const g of graph.groups) {
    const gone = removed.get(g.producer) ?? [];
    if (!gone.length) continue;
    if (!g.shrinkable) {
      maskedOnly.push({ layer: g.producer, note: g.note ?? 'coupled to other layers' });
      continue;
    }
    const goneSet = new Set(gone);
    const keep = Array.from({ length: g.channels }, (_, i) => i).filter((i) => !goneSet.has(i));
    kept.set(g.producer, keep.length);
    active.push({ g, keep, gone });
  }

  const weights = new Map<string, Map<string, W>>();
  const get = (layer: string) => {
    let w = weights.get(layer);
    if (!w) weights.set(layer, (w = read(model.getLayer(layer))));
    return w;
  };
  // Consumers first (their folding reads the full kernel), then the input rows, then producers/followers.
  for (const { g, keep, gone } of active) {
    for (const c of g.consumers) {
      const w = get(c.layer);
      const kernel = w.get('kernel')!;
      const rowsOf = (chs: number[]) =>
        c.mode === 'dense'
          ? Array.from({ length: c.positions }, (_, p) => chs.map((ch) => p * g.channels + ch)).flat()
          : chs;
      if (c.constant !== 0) {
        const bias = w.get('bias')!;
        const add = rowSums(kernel, rowsOf(gone));
        for (let o = 0; o < add.length; o++) bias.values[o] += c.constant * add[o];
      }
      w.set('kernel', keepRows(kernel, rowsOf(keep)));
    }
  }
  for (const { g, keep } of active) {
    const p = get(g.producer);
    for (const name of ['kernel', 'bias']) if (p.has(name)) p.set(name, keepLast(p.get(name)!, keep));
    for (const bn of g.followers) {
      const f = get(bn);
      for (const [name, w] of f) f.set(name, keepLast(w, keep));
    }
  }

  const topology = shrinkTopology(model.toJSON(null, false) as Json, kept);
  const small = await tfl.models.modelFromJSON({ modelTopology: topology } as never);
  for (const layer of small.layers) {
    if (!layer.weights.length) continue;
    const old = model.getLayer(layer.name);
    const changed = weights.get(layer.name);
    const values = layer.weights.map((w, i) => {
      const suffix = w.originalName.split('/').pop()!;
      const v = changed?.get(suffix);
      return v ? tf.tensor(v.values, v.shape, 'float32') : old.weights[i].read().clone();
    });
    layer.setWeights(values);
    values.forEach((t) => t.dispose());
  }
  return { model: small, kept, maskedOnly };
}

/** Largest |a(x) − b(x)| over the outputs, in batches of 256. */
export function maxOutputDifference(a: tfl.LayersModel, b: tfl.LayersModel, x: tf.Tensor): number {
  let worst = 0;
  const n = x.shape[0];
  for (let s = 0; s < n; s += 256) {
    const d = tf.tidy(() => {
      const xb = tf.slice(x, s, Math.min(256, n - s));
      return tf.max(tf.abs(tf.sub(a.apply(xb) as tf.Tensor, b.apply(xb) as tf.Tensor)));
    });
    worst = Math.max(worst, d.dataSync()[0]);
    d.dispose();
  }
  return worst;
}

/** model.json + weights.bin of `model` under `topologyJson` (as saveModel writes them), not yet written. */
export async function modelFiles(
  model: tfl.LayersModel,
  topologyJson: Json,
): Promise<Record<string, string | Uint8Array>> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save({
    save: async (a: tf.io.ModelArtifacts) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    },
  });
  if (!artifacts?.weightData || !artifacts.weightSpecs) throw new Error('tfjs returned no weights to save');
  const weightData = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
  const modelJson = {
    ...topologyJson,
    format: 'layers-model',
    generatedBy: topologyJson.generatedBy ?? artifacts.generatedBy,
    weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
  };
  return { 'model.json': JSON.stringify(modelJson), 'weights.bin': weightData };
}
