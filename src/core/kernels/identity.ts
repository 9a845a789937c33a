/**
 * `Identity` on the wasm backend without a copy: the output shares the input's memory (a reference
 * more on it), as the cpu backend's Identity and wasm's own Reshape do.
 *
 * Why: tfjs-core clones every tensor it keeps for a gradient (`saveTensorsForBackwardMode`), and wasm's
 * stock Identity copies the data each time: 22 clones a step for the bench's cnn32, activations of up to
 * 4 MB among them (14 ms of a 440 ms epoch). Sharing is safe because nothing writes into a tensor's
 * memory after it is made: every kernel, stock or ours (kernels/*.ts), writes a fresh output, and a
 * variable's `assign` takes new memory.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerRawInFrontOfStock } from './tensor-info';

interface RefCounting {
  incRef(dataId: object): void;
}

/** `x` itself under a new reference (no copy), or null where the backend cannot count references or x is strings. */
function shared(backend: unknown, x: tf.TensorInfo): tf.TensorInfo | null {
  const b = backend as Partial<RefCounting>;
  if (x.dtype === 'string' || typeof b.incRef !== 'function') return null;
  b.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
}

/**
 * Registers the sharing Identity for wasm in front of the stock kernel (which still runs for strings),
 * and a Cast that shares when the dtype does not change (wasm's copies: every ReLU's gradient casts its
 * float32 step to float32). Idempotent; other backends are left alone.
 */
export function registerIdentity(backendName: string): void {
  if (backendName !== 'wasm') return;
  registerRawInFrontOfStock(tf.Identity, backendName, 'heap', ({ inputs, backend }) =>
    shared(backend, inputs.x as tf.TensorInfo),
  );
  registerRawInFrontOfStock<{ dtype: tf.DataType }>(tf.Cast, backendName, 'heap', ({ inputs, backend, attrs }) => {
    const x = inputs.x as tf.TensorInfo;
    return x.dtype === attrs.dtype ? shared(backend, x) : null;
  });
}
