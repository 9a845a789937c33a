/**
 * `MaxPoolGrad` for the wasm backend: `maxPoolGradOnHeap`, one JavaScript pass over views of the wasm
 * heap, for any windows (overlapping too) and paddings; 2×2 windows inside the image are unrolled. Where
 * windows do not overlap and need no padding, with channels in fours, the SIMD module's `max_pool_grad`
 * does the same (simd-kernels.ts), four channels an instruction.
 *
 * Why: tfjs-backend-wasm 4.22's own MaxPoolGrad is slow (27 ms on 64×32×32×16; this pass ~6 ms) and
 * wrong for a window whose inputs are all negative (it gives that window no gradient at all: 23 of
 * 2,048 entries differed from the cpu backend on random normal inputs), and on ties it picks the last
 * largest input where the cpu backend picks the first. This kernel matches the cpu backend exactly.
 *
 * 'same' padding pads with −∞ (a pad never wins); 'valid' windows that leave rows or columns unread
 * give those no gradient.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerRawInFrontOfStock } from './tensor-info';
import { heapOffset, heapView, wasmInternals } from './wasm-heap';
import { simdKernels, simdTakesMaxPoolGrad } from './simd-kernels';

export interface MaxPoolGradAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** Per-channel running maxima and their positions, reused between calls (grown as needed). */
let bestScratch = new Float32Array(64);
let posScratch = new Int32Array(64);

/**
 * dx of max pooling computed in one JavaScript pass over the wasm heap (any windows, overlapping too),
 * or null when `backend` is not wasm or a tensor is not float32. Each window's gradient goes to its
 * first strictly largest input (NaN and pads never win; a window of −∞ gives none), and a dx entry
 * that is the maximum of several windows sums their gradients in window order: exactly the cpu
 * backend's MaxPoolGrad. Measured on 64×32×32×16 (2×2/2): ~6 ms, against ~14 ms for an argMax/oneHot
 * ops version this replaced; on 64×16×16×32, 3 ms against 6.5 ms.
 */
export function maxPoolGradOnHeap(
  backend: unknown,
  dy: tf.TensorInfo,
  x: tf.TensorInfo,
  filterSize: number | [number, number],
  strides: number | [number, number],
  pad: MaxPoolGradAttrs['pad'],
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
  /** false: the JavaScript pass even where the SIMD module takes the case (for tests). */
  useSimd = true,
): tf.TensorInfo | null {
  const heap = wasmInternals(backend);
  if (!heap || x.dtype !== 'float32' || dy.dtype !== 'float32' || x.shape.length !== 4) return null;
  const [B, H, W, C] = x.shape;
  const info = tf.backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const { outHeight: OH, outWidth: OW, strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw } = info;
  if (dy.shape.length !== 4 || dy.shape[0] !== B || dy.shape[1] !== OH || dy.shape[2] !== OW || dy.shape[3] !== C)
    return null;
  const { top, left } = info.padInfo;
  const out = heap.makeOutput([B, H, W, C], 'float32');
  const simd = useSimd ? simdKernels(backend) : null;
  if (simd && simdTakesMaxPoolGrad(info)) {
    simd.max_pool_grad(
      heapOffset(heap, x),
      heapOffset(heap, dy),
      heapOffset(heap, out),
      B,
      H,
      W,
      C,
      OH,
      OW,
      fh,
      fw,
      sh,
      sw,
    );
    return out;
  }
  // Views after the allocation (a grown heap has a new buffer).
  const xv = heapView(heap, x) as Float32Array;
  const dyv = heapView(heap, dy) as Float32Array;
  const dxOut = heapView(heap, out) as Float32Array;
  // Overlapping windows add several gradients into one entry: summed in float64 like the cpu backend
  // (then rounded once), so the result is the same to the bit.
  const overlapping = sh < fh || sw < fw;
  const dx = overlapping ? new Float64Array(dxOut.length) : dxOut;
  dx.fill(0);
  if (bestScratch.length < C) {
    bestScratch = new Float32Array(C);
    posScratch = new Int32Array(C);
  }
  const best = bestScratch;
  const pos = posScratch;
  for (let b = 0; b < B; b++) {
    for (let oh = 0; oh < OH; oh++) {
      const r0 = oh * sh - top;
      const rMin = Math.max(0, r0);
      const rMax = Math.min(H, r0 + fh);
      for (let ow = 0; ow < OW; ow++) {
        const c0 = ow * sw - left;
        const qMin = Math.max(0, c0);
        const qMax = Math.min(W, c0 + fw);
        const dyBase = ((b * OH + oh) * OW + ow) * C;
        if (rMax - rMin === 2 && qMax - qMin === 2) {
          // A whole 2×2 window inside the image (every window of 2×2 pooling but padded edges): unrolled.
          const i00 = ((b * H + rMin) * W + qMin) * C;
          const i01 = i00 + C;
          const i10 = i00 + W * C;
          const i11 = i10 + C;
          for (let c = 0; c < C; c++) {
            let m = -Infinity;
            let k = -1;
            let v = xv[i00 + c];
            if (v > m) {
              m = v;
              k = i00 + c;
            }
            v = xv[i01 + c];
            if (v > m) {
              m = v;
              k = i01 + c;
            }
            v = xv[i10 + c];
            if (v > m) {
              m = v;
              k = i10 + c;
            }
            v = xv[i11 + c];
            if (v > m) k = i11 + c;
            if (k >= 0) dx[k] += dyv[dyBase + c];
          }
          continue;
        }
        for (let c = 0; c < C; c++) {
          best[c] = -Infinity;
          pos[c] = -1;
        }
        for (let r = rMin; r < rMax; r++) {
          for (let q = qMin; q < qMax; q++) {
            const base = ((b * H + r) * W + q) * C;
            for (let c = 0; c < C; c++) {
              const v = xv[base + c];
              if (v > best[c]) {
                best[c] = v;
                pos[c] = base + c;
              }
            }
          }
        }
        for (let c = 0; c < C; c++) {
          const p = pos[c];
          if (p >= 0) dx[p] += dyv[dyBase + c];
        }
      }
    }
  }
  if (overlapping) dxOut.set(dx);
  return out;
}

/** Registers the heap MaxPoolGrad for wasm in front of the stock kernel. Idempotent; other backends are left alone. */
export function registerMaxPoolGrad(backendName: string): void {
  if (backendName !== 'wasm') return;
  registerRawInFrontOfStock<MaxPoolGradAttrs>(tf.MaxPoolGrad, backendName, 'heap', ({ inputs, backend, attrs: a }) =>
    maxPoolGradOnHeap(
      backend,
      inputs.dy as tf.TensorInfo,
      inputs.input as tf.TensorInfo,
      a.filterSize,
      a.strides,
      a.pad,
      a.dimRoundingMode,
    ),
  );
}
