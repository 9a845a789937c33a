/**
 * The unstructured methods' scoring: keep-masks (1 keep, 0 prune), one per kernel, that remove a
 * `sparsity` fraction of the weights. Plain JavaScript over the weights read once; `MaskSet`
 * (masks.ts) applies them on the backend.
 */
import type { PrunableKernel } from '../model-io';
import type { Rng } from '../rng';

/** The weights of one prunable kernel, read once for scoring. */
export interface KernelValues {
  kernel: PrunableKernel;
  values: Float32Array;
}

/** Indices of the `k` smallest scores, ties broken by index, so the count is exact. */
function smallestK(scores: Float32Array | Float64Array, k: number): Uint32Array {
  const idx = new Uint32Array(scores.length);
  for (let i = 0; i < idx.length; i++) idx[i] = i;
  idx.sort((a, b) => scores[a] - scores[b] || a - b);
  return idx.subarray(0, k);
}

function keepAll(n: number): Uint8Array {
  return new Uint8Array(n).fill(1);
}

function pruneCount(n: number, sparsity: number): number {
  return Math.min(n, Math.round(n * sparsity));
}

function absValues(v: Float32Array): Float32Array {
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = Math.abs(v[i]);
  return out;
}

/** Each layer loses the same fraction of its smallest-magnitude weights. */
export function magnitudeLayerMasks(kernels: KernelValues[], sparsity: number): Uint8Array[] {
  return kernels.map(({ values }) => {
    const mask = keepAll(values.length);
    for (const i of smallestK(absValues(values), pruneCount(values.length, sparsity))) mask[i] = 0;
    return mask;
  });
}

/** The smallest-magnitude weights of the whole model, wherever they are. */
export function magnitudeGlobalMasks(kernels: KernelValues[], sparsity: number): Uint8Array[] {
  const total = kernels.reduce((a, k) => a + k.values.length, 0);
  const all = new Float32Array(total);
  let o = 0;
  for (const { values } of kernels) {
    for (let i = 0; i < values.length; i++) all[o + i] = Math.abs(values[i]);
    o += values.length;
  }
  const flat = keepAll(total);
  for (const i of smallestK(all, pruneCount(total, sparsity))) flat[i] = 0;
  const masks: Uint8Array[] = [];
  o = 0;
  for (const { values } of kernels) {
    masks.push(flat.slice(o, o + values.length));
    o += values.length;
  }
  return masks;
}

/** The control: the same number of weights per layer as magnitude-layer, chosen at random. */
export function randomMasks(kernels: KernelValues[], sparsity: number, rng: Rng): Uint8Array[] {
  return kernels.map(({ values }) => {
    const scores = new Float64Array(values.length);
    for (let i = 0; i < scores.length; i++) scores[i] = rng.next();
    const mask = keepAll(values.length);
    for (const i of smallestK(scores, pruneCount(values.length, sparsity))) mask[i] = 0;
    return mask;
  });
}
