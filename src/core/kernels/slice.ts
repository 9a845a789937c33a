/**
 * `Slice` for the wasm backend when the slice is one contiguous block (e.g. rows start…end of a batch):
 * one `copyWithin` of that block on the heap. wasm's stock kernel first reads the *whole* input back
 * (`readSync`, a fresh copy of it) for every slice, so predicting a data set in batches of 256 copied all
 * of it once per batch: 13 s of a 29 s demo session went there (9000 images of 28×28×3, 84 MB, 36 times).
 *
 * Non-contiguous slices and other dtypes go to the stock kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerRawInFrontOfStock } from './tensor-info';
import { heapOffset, wasmInternals } from './wasm-heap';

interface SliceAttrs {
  begin: number | number[];
  size: number | number[];
}

/** `tf.slice(x, begin, size)` on the wasm heap, or null when this kernel does not handle the case. */
export function sliceOnHeap(
  backend: unknown,
  x: tf.TensorInfo,
  begin: number | number[],
  size: number | number[],
): tf.TensorInfo | null {
  const heap = wasmInternals(backend);
  if (!heap || (x.dtype !== 'float32' && x.dtype !== 'int32')) return null;
  const [begin_, size_] = tf.slice_util.parseSliceParams(x as tf.TensorInfo as tf.Tensor, begin, size);
  if (!tf.slice_util.isSliceContinous(x.shape, begin_, size_)) return null;
  const flatOffset = tf.slice_util.computeFlatOffset(begin_, tf.util.computeStrides(x.shape));
  const n = tf.util.sizeFromShape(size_);
  const out = heap.makeOutput(size_, x.dtype);
  if (n === 0) return out;
  // A 32-bit view of the whole heap, taken after the allocation (a grown heap has a new buffer).
  const view = new Int32Array(heap.wasm.HEAPU8.buffer);
  const src = (heapOffset(heap, x) >> 2) + flatOffset;
  view.copyWithin(heapOffset(heap, out) >> 2, src, src + n);
  return out;
}

/** Registers the heap slice for wasm in front of the stock kernel. Idempotent; other backends are left alone. */
export function registerSlice(backendName: string): void {
  if (backendName !== 'wasm') return;
  registerRawInFrontOfStock<SliceAttrs>(tf.Slice, backendName, 'heap', ({ inputs, backend, attrs }) =>
    sliceOnHeap(backend, inputs.x as tf.TensorInfo, attrs.begin, attrs.size),
  );
}
