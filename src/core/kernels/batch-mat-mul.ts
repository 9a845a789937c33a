/**
 * `BatchMatMul` with a transposed operand on the wasm backend: the operand is transposed first (wasm's
 * Transpose kernel) and the product runs untransposed. tfjs-backend-wasm 4.22 sends only untransposed
 * products to XNNPACK; with `transposeA` or `transposeB` it runs a plain loop, which is what every
 * dense layer's backward pass asks for (dW = xᵀ·dy, dx = dy·Wᵀ). Measured on wasm:
 * [64,512]ᵀ·[64,64] 3.05 ms → 0.17 ms, [64,2048]ᵀ·[64,2] 0.82 → 0.24 ms, [64,24]ᵀ·[64,32] 85 → 36 µs.
 * Operands under SMALL elements (where the extra kernel costs more than it saves) and batched products
 * go to the stock kernel. Results differ from the stock kernel's only by summation order.
 */
import * as tf from '@tensorflow/tfjs-core';
import { asTensor4D, registerRawInFrontOfStock } from './tensor-info';

interface BatchMatMulAttrs {
  transposeA: boolean;
  transposeB: boolean;
}

/** The transposed operand is materialised only from this many elements. */
const SMALL = 1024;

const batchOf = (shape: number[]) => shape.slice(0, -2).reduce((a, d) => a * d, 1);

/** a·b with the transposes done first, or null when the stock kernel should run. */
export function matMulTransposedFirst(
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): tf.Tensor | null {
  if (!transposeA && !transposeB) return null;
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) return null;
  if (batchOf(a.shape) !== 1 || batchOf(b.shape) !== 1) return null;
  const size = (s: number[]) => s.reduce((p, d) => p * d, 1);
  const bigA = transposeA && size(a.shape) >= SMALL;
  const bigB = transposeB && size(b.shape) >= SMALL;
  if (!bigA && !bigB) return null;
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  if ((transposeA ? ar : ac) !== (transposeB ? bc : br)) return null; // the stock kernel throws its own error
  const outShape = [
    ...(a.shape.length >= b.shape.length ? a.shape : b.shape).slice(0, -2),
    transposeA ? ac : ar,
    transposeB ? br : bc,
  ];
  return tf.tidy(() => {
    const wa = asTensor4D(a);
    const wb = asTensor4D(b);
    let a2 = tf.reshape(wa.t, [ar, ac]) as tf.Tensor2D;
    let b2 = tf.reshape(wb.t, [br, bc]) as tf.Tensor2D;
    if (bigA) a2 = tf.transpose(a2);
    if (bigB) b2 = tf.transpose(b2);
    return tf.reshape(tf.matMul(a2, b2, transposeA && !bigA, transposeB && !bigB), outShape);
  });
}

/** Registers the wrapper for wasm in front of the stock kernel. Idempotent; other backends are left alone. */
export function registerBatchMatMul(backendName: string): void {
  if (backendName !== 'wasm') return;
  registerRawInFrontOfStock<BatchMatMulAttrs>(tf.BatchMatMul, backendName, 'heap', ({ inputs, attrs }) =>
    matMulTransposedFirst(inputs.a as tf.TensorInfo, inputs.b as tf.TensorInfo, !!attrs.transposeA, !!attrs.transposeB),
  );
}
