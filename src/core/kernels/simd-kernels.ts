/**
 * Fair Prune's own wasm SIMD kernels (simd/kernels.c, built into simd/kernels.wasm by
 * scripts/build-simd.sh and committed), run on tfjs-backend-wasm's heap: the module imports the
 * backend's own memory, so a kernel reads its inputs and writes its output in place, like the stock
 * kernels do.
 *
 * First of them: `Conv2DBackpropFilter`, the filter gradient of a convolution. The convolution
 * formulation (conv2d-backprop-filter.ts) hands XNNPACK a filter as big as dy and a 9-to-27-pixel
 * output, which it runs at a fifth of its forward speed; here the sum is blocked 4 input channels × 16
 * output channels in SIMD registers, over one output row at a time, so dy and x are read once. Measured
 * on wasm, batch 64, 3×3 'same': 32×32×3 → 16 12.2 → 2.1 ms; 16×16×16 → 32 17.3 → 5.8 ms.
 *
 * Second: `MaxPoolGrad` for windows that do not overlap (2×2 pooling, stride 2): a SIMD compare and
 * select per window, where the JavaScript heap kernel compared one channel at a time (the bench's
 * cnn32, 64×32×32×16 and 64×16×16×32: 3.1 → 1.4 ms a call on average).
 *
 * Also: a bias added at every position (`Add` with one side over the other's last axis), and its
 * gradient (`Sum` over every axis but the last), where wasm's stock kernels broadcast or transpose with
 * general index loops; and Adam's update (adam.ts calls `adam_update` directly), bit for bit tf.train.adam.
 *
 * Where the module cannot be loaded (no SIMD in the runtime, the file missing), or for a case it does not
 * take (NCHW, an output-channel count that is not a multiple of 4), the kernel registered before it runs
 * (for Adam, a JavaScript loop).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import type { BackpropFilterAttrs } from './conv2d-backprop-filter';
import type { MaxPoolGradAttrs } from './max-pool-grad';
import { registerRawInFrontOfStock } from './tensor-info';
import { heapOffset, wasmInternals, type WasmBackendInternals } from './wasm-heap';

export interface SimdExports {
  conv2d_filter_grad(
    x: number, dy: number, dw: number, B: number, H: number, W: number, ci: number, oh: number, ow: number, co: number,
    fh: number, fw: number, sh: number, sw: number, top: number, left: number,
  ): void;
  max_pool_grad(x: number, dy: number, dx: number, B: number, H: number, W: number, C: number, OH: number, OW: number, fh: number, fw: number, sh: number, sw: number): void;
  add_bias(a: number, b: number, out: number, rows: number, C: number): void;
  sum_rows(x: number, out: number, rows: number, C: number): void;
  adam_update(
    g: number, w: number, out: number, m: number, v: number, n: number, b1: number, b2: number, c1: number, c2: number,
    eps: number, negLr: number, oneMinusAcc1: number, oneMinusAcc2: number,
  ): void;
}

/** The file name of the module next to the bundles (scripts/build.mjs copies it into dist/). */
export const SIMD_KERNELS_FILE = 'fair-prune-kernels.wasm';

/** Where the module is: next to the bundle (dist/), or in the source tree (tsc's out/ for the unit tests). */
export function findSimdKernels(): string | null {
  const candidates = [
    path.join(__dirname, SIMD_KERNELS_FILE),
    path.resolve(__dirname, '..', '..', '..', '..', 'src', 'core', 'kernels', 'simd', 'kernels.wasm'),
  ];
  return candidates.find((f) => fs.existsSync(f)) ?? null;
}

let compiled: WebAssembly.Module | null | undefined;
const instances = new WeakMap<object, SimdExports | null>();

/** The module instantiated on `backend`'s memory (one per backend, so per thread), or null where it cannot be. */
export function simdKernels(backend: unknown): SimdExports | null {
  const heap = wasmInternals(backend);
  if (!heap) return null;
  if (instances.has(heap)) return instances.get(heap) ?? null;
  let exports: SimdExports | null = null;
  try {
    if (compiled === undefined) {
      const file = findSimdKernels();
      compiled = file ? new WebAssembly.Module(fs.readFileSync(file)) : null;
    }
    const memory = (heap.wasm as unknown as { asm?: { memory?: WebAssembly.Memory } }).asm?.memory;
    if (compiled && memory instanceof WebAssembly.Memory) {
      exports = new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as SimdExports;
    }
  } catch {
    compiled = compiled ?? null;
    exports = null; // no SIMD here, or a changed tfjs: the kernels registered before run
  }
  instances.set(heap, exports);
  return exports;
}

/**
 * The filter gradient on the heap through the SIMD module, or null when it does not apply (see the
 * file's comment).
 */
export function conv2dBackpropFilterSimd(
  backend: unknown,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  pad: BackpropFilterAttrs['pad'],
  dataFormat: 'NHWC' | 'NCHW' = 'NHWC',
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.TensorInfo | null {
  const kernels = simdKernels(backend);
  const heap = wasmInternals(backend) as WasmBackendInternals;
  if (!kernels || dataFormat !== 'NHWC' || x.dtype !== 'float32' || dy.dtype !== 'float32' || x.shape.length !== 4 || dy.shape.length !== 4) return null;
  const [fh, fw, ci, co] = filterShape;
  if (co % 4 !== 0 || x.shape[3] !== ci) return null;
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
  const { batchSize: b, inHeight: H, inWidth: W, outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw } = info;
  if (dy.shape[0] !== b || dy.shape[1] !== oh || dy.shape[2] !== ow || dy.shape[3] !== co) return null;
  const out = heap.makeOutput(filterShape.slice(), 'float32');
  kernels.conv2d_filter_grad(heapOffset(heap, x), heapOffset(heap, dy), heapOffset(heap, out), b, H, W, ci, oh, ow, co, fh, fw, sh, sw, info.padInfo.top, info.padInfo.left);
  return out;
}

/**
 * The max-pooling gradient through the SIMD module for windows that do not overlap and need no padding
 * (2×2 pooling with stride 2 on an even-sized image, the usual case), with the channels a multiple of 4;
 * else null (the JavaScript heap kernel, max-pool-grad.ts, takes every case). Exact: the cpu backend's
 * result bit for bit (first strictly largest input wins; NaN and −∞ never do).
 */
export function maxPoolGradSimd(
  backend: unknown,
  dy: tf.TensorInfo,
  x: tf.TensorInfo,
  filterSize: number | [number, number],
  strides: number | [number, number],
  pad: MaxPoolGradAttrs['pad'],
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.TensorInfo | null {
  const kernels = simdKernels(backend);
  const heap = wasmInternals(backend) as WasmBackendInternals;
  if (!kernels || x.dtype !== 'float32' || dy.dtype !== 'float32' || x.shape.length !== 4) return null;
  const [B, H, W, C] = x.shape;
  if (C % 4 !== 0) return null;
  const info = tf.backend_util.computePool2DInfo(x.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const { outHeight: OH, outWidth: OW, strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw, padInfo } = info;
  if (sh < fh || sw < fw || padInfo.top || padInfo.left || (OH - 1) * sh + fh > H || (OW - 1) * sw + fw > W) return null;
  if (dy.shape.length !== 4 || dy.shape[0] !== B || dy.shape[1] !== OH || dy.shape[2] !== OW || dy.shape[3] !== C) return null;
  const out = heap.makeOutput([B, H, W, C], 'float32');
  kernels.max_pool_grad(heapOffset(heap, x), heapOffset(heap, dy), heapOffset(heap, out), B, H, W, C, OH, OW, fh, fw, sh, sw);
  return out;
}

const sizeOf = (shape: number[]) => shape.reduce((a, d) => a * d, 1);

/**
 * `a + b` where one side is a bias over the other's last axis (a layer's bias added at every position),
 * through the SIMD module; null for any other addition (the stock kernel). Exact: the same float32 sums.
 * wasm's stock Add broadcasts with a general index loop: 0.7–1.2 ms on the bench's 64×28×28×16.
 */
export function addBiasSimd(backend: unknown, a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo | null {
  const kernels = simdKernels(backend);
  const heap = wasmInternals(backend) as WasmBackendInternals;
  if (!kernels || a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const isBiasOf = (bias: tf.TensorInfo, x: tf.TensorInfo) => {
    const C = x.shape[x.shape.length - 1];
    return x.shape.length >= 2 && bias.shape.length >= 1 && bias.shape.length <= x.shape.length && bias.shape[bias.shape.length - 1] === C && sizeOf(bias.shape) === C && C % 4 === 0;
  };
  const [x, bias] = isBiasOf(b, a) ? [a, b] : isBiasOf(a, b) ? [b, a] : [null, null];
  if (!x || !bias) return null;
  const C = x.shape[x.shape.length - 1];
  const out = heap.makeOutput(x.shape.slice(), 'float32');
  kernels.add_bias(heapOffset(heap, x), heapOffset(heap, bias), heapOffset(heap, out), sizeOf(x.shape) / C, C);
  return out;
}

/**
 * `tf.sum` over every axis but the last, through the SIMD module (float64 partial sums, rounded once);
 * null for other reductions or when the last axis is not a multiple of 4 (sum.ts, then the stock kernel).
 */
export function sumRowsSimd(backend: unknown, x: tf.TensorInfo, axis: number | number[], keepDims: boolean): tf.TensorInfo | null {
  const kernels = simdKernels(backend);
  const heap = wasmInternals(backend) as WasmBackendInternals;
  if (!kernels || x.dtype !== 'float32' || x.shape.length < 2) return null;
  const rank = x.shape.length;
  const axes = tf.util.parseAxisParam(axis, x.shape).sort((p, q) => p - q);
  if (axes.length !== rank - 1 || axes.some((ax, i) => ax !== i)) return null;
  const C = x.shape[rank - 1];
  const rows = sizeOf(x.shape) / C;
  if (C % 4 !== 0 || C === 0 || rows === 0) return null;
  const out = heap.makeOutput(keepDims ? x.shape.map((d, i) => (i < rank - 1 ? 1 : d)) : [C], 'float32');
  kernels.sum_rows(heapOffset(heap, x), heapOffset(heap, out), rows, C);
  return out;
}

/** Registers the SIMD kernels for wasm in front of those registered before them. Idempotent; other backends are left alone. */
export function registerSimdKernels(backendName: string): void {
  if (backendName !== 'wasm') return;
  registerRawInFrontOfStock<BackpropFilterAttrs>(tf.Conv2DBackpropFilter, backendName, 'simd', ({ inputs, backend, attrs }) =>
    conv2dBackpropFilterSimd(backend, inputs.x as tf.TensorInfo, inputs.dy as tf.TensorInfo, attrs.filterShape, attrs.strides, attrs.pad, attrs.dataFormat ?? 'NHWC', attrs.dimRoundingMode));
  registerRawInFrontOfStock<MaxPoolGradAttrs>(tf.MaxPoolGrad, backendName, 'simd', ({ inputs, backend, attrs }) =>
    maxPoolGradSimd(backend, inputs.dy as tf.TensorInfo, inputs.input as tf.TensorInfo, attrs.filterSize, attrs.strides, attrs.pad, attrs.dimRoundingMode));
  registerRawInFrontOfStock(tf.Add, backendName, 'simd', ({ inputs, backend }) => addBiasSimd(backend, inputs.a as tf.TensorInfo, inputs.b as tf.TensorInfo));
  registerRawInFrontOfStock<{ axis: number | number[]; keepDims: boolean }>(tf.Sum, backendName, 'simd', ({ inputs, backend, attrs }) =>
    sumRowsSimd(backend, inputs.x as tf.TensorInfo, attrs.axis, attrs.keepDims));
}
