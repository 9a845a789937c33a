/**
 * `Sum` over the leading axes on the wasm heap (out[c] = Σ_r x[r, c]), the reduction every bias
 * gradient of a convolution or dense layer asks for (dy summed over batch, rows and columns).
 *
 * Why: wasm's stock Sum reduces only innermost axes, so for these it first transposes the whole input
 * and then sums: 1.3–1.8 ms a call on the bench's cnn32 (64×32×32×16), 31 ms of a 440 ms epoch. One pass
 * in row order, four rows at a time, takes 0.6 ms there; where the kept width is a multiple of 4 the SIMD
 * module's `sum_rows` does it (0.22 ms). Partial sums are kept in float64 and rounded once either way, so
 * the result is at least as exact as the stock kernel's float32 running sum.
 *
 * Other reductions (innermost or mixed axes, int32, a single output) go to the stock kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerRawInFrontOfStock } from './tensor-info';
import { heapOffset, heapView, wasmInternals } from './wasm-heap';
import { simdKernels } from './simd-kernels';

interface SumAttrs {
  axis: number | number[];
  keepDims: boolean;
}

let scratch = new Float64Array(64);

/** `tf.sum(x, axis, keepDims)` on the heap when `axis` is exactly the leading axes 0…k−1 (k < rank) of a float32 `x`, else null. */
export function sumLeadingAxesOnHeap(
  backend: unknown,
  x: tf.TensorInfo,
  axis: number | number[],
  keepDims: boolean,
  /** false: the JavaScript pass even where the SIMD module takes the case (for tests). */
  useSimd = true,
): tf.TensorInfo | null {
  const heap = wasmInternals(backend);
  if (!heap || x.dtype !== 'float32') return null;
  const rank = x.shape.length;
  const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
  const k = axes.length;
  if (k === 0 || k >= rank || axes.some((a, i) => a !== i)) return null;
  const rows = x.shape.slice(0, k).reduce((a, d) => a * d, 1);
  const width = x.shape.slice(k).reduce((a, d) => a * d, 1);
  if (rows === 0 || width === 0) return null;
  const outShape = keepDims ? x.shape.map((d, i) => (i < k ? 1 : d)) : x.shape.slice(k);
  const out = heap.makeOutput(outShape, 'float32');
  const simd = useSimd ? simdKernels(backend) : null;
  if (simd && width % 4 === 0) {
    simd.sum_rows(heapOffset(heap, x), heapOffset(heap, out), rows, width);
    return out;
  }
  // Views after the allocation (a grown heap has a new buffer).
  const xv = heapView(heap, x) as Float32Array;
  const ov = heapView(heap, out) as Float32Array;
  if (scratch.length < width) scratch = new Float64Array(width);
  const acc = scratch;
  acc.fill(0, 0, width);
  // Four rows a pass (half the time of one: fewer loads and stores of the partial sums).
  const w2 = 2 * width;
  const w3 = 3 * width;
  let r = 0;
  let base = 0;
  for (; r + 4 <= rows; r += 4, base += 4 * width) {
    for (let c = 0; c < width; c++) {
      const i = base + c;
      acc[c] += xv[i] + xv[i + width] + (xv[i + w2] + xv[i + w3]);
    }
  }
  for (; r < rows; r++, base += width) {
    for (let c = 0; c < width; c++) acc[c] += xv[base + c];
  }
  for (let c = 0; c < width; c++) ov[c] = acc[c];
  return out;
}

/** Registers the heap Sum for wasm in front of the stock kernel. Idempotent; other backends are left alone. */
export function registerSum(backendName: string): void {
  if (backendName !== 'wasm') return;
  registerRawInFrontOfStock<SumAttrs>(tf.Sum, backendName, 'heap', ({ inputs, backend, attrs }) =>
    sumLeadingAxesOnHeap(backend, inputs.x as tf.TensorInfo, attrs.axis, attrs.keepDims),
  );
}
