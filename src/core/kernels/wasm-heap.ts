/**
 * Direct access to the wasm backend's heap, for kernels written in JavaScript that read their inputs
 * and write their outputs in place there (no copies in or out of the heap, no JS allocations per call).
 *
 * Why JavaScript kernels: tfjs-backend-wasm 4.22 runs some ops as slow scalar C loops (Gather, the
 * max-pool gradient) and others only through several kernels with a full copy between each
 * (transposes, argMax, oneHot). A single JS pass over typed-array views of the heap is faster than both.
 *
 * Only `float32`/`int32` tensors are viewed. Views must be taken *after* every allocation of the call:
 * a heap that grows gets a new ArrayBuffer, and older views become empty.
 */
import * as tf from '@tensorflow/tfjs-core';

/** The parts of tfjs-backend-wasm's `BackendWasm` these kernels use (not in its public typings). */
export interface WasmBackendInternals {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number; refCount: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

/** The wasm backend's internals, or null when `backend` is not the wasm backend (or they changed). */
export function wasmInternals(backend: unknown): WasmBackendInternals | null {
  const b = backend as Partial<WasmBackendInternals> | null;
  if (!b || !b.wasm || !(b.wasm.HEAPU8 instanceof Uint8Array) || !b.dataIdMap || typeof b.makeOutput !== 'function')
    return null;
  return b as WasmBackendInternals;
}

/** A Float32Array/Int32Array view of `info`'s data on the heap (size from its shape). */
export function heapView(backend: WasmBackendInternals, info: tf.TensorInfo): Float32Array | Int32Array {
  const entry = backend.dataIdMap.get(info.dataId);
  if (!entry) throw new Error('wasm heap view: unknown tensor data');
  const size = info.shape.reduce((a, b) => a * b, 1);
  const buffer = backend.wasm.HEAPU8.buffer;
  if (info.dtype === 'float32') return new Float32Array(buffer, entry.memoryOffset, size);
  if (info.dtype === 'int32') return new Int32Array(buffer, entry.memoryOffset, size);
  throw new Error(`wasm heap view: dtype ${info.dtype} not supported`);
}

/** Byte offset of `info`'s data on the heap. */
export function heapOffset(backend: WasmBackendInternals, info: tf.TensorInfo): number {
  const entry = backend.dataIdMap.get(info.dataId);
  if (!entry) throw new Error('wasm heap offset: unknown tensor data');
  return entry.memoryOffset;
}
