import * as tf from '@tensorflow/tfjs-core';

/** A kernel's input as a Tensor4D: a Tensor as it is, or a bare TensorInfo (a kernel called by another
 *  kernel) wrapped in a tensor that holds its own reference; `owned` wrappers must be disposed. */
export function asTensor4D(info: tf.TensorInfo): { t: tf.Tensor4D; owned: boolean } {
  if (info instanceof tf.Tensor) return { t: info as tf.Tensor4D, owned: false };
  return { t: tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor4D, owned: true };
}

/**
 * Registers `fast` for `kernelName` on `backendName` in front of the kernel registered there now (the
 * stock one), which still runs whenever `fast` returns null. `fast` gets the named inputs as Tensor4Ds
 * and the attributes. The stock kernel's setup and dispose hooks are kept (wasm binds its C functions in
 * setup, so the fallback keeps working). Idempotent.
 */
export function registerInFrontOfStock<A>(
  kernelName: string,
  backendName: string,
  inputNames: string[],
  fast: (inputs: tf.Tensor4D[], attrs: A) => tf.Tensor | null,
): void {
  registerRawInFrontOfStock<A>(kernelName, backendName, 'tensors', (args) => {
    const wrapped = inputNames.map((n) => asTensor4D(args.inputs[n] as tf.TensorInfo));
    try {
      return fast(
        wrapped.map((w) => w.t),
        args.attrs,
      );
    } finally {
      for (const w of wrapped) if (w.owned) w.t.dispose();
    }
  });
}

/** What a raw kernel function gets: the inputs as the engine passed them, the backend and the attributes. */
export interface RawKernelArgs<A> {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs: A;
}

const inFront = new Set<string>();

/**
 * Like `registerInFrontOfStock`, for kernels that work on the backend's own data (no tensor wrapping):
 * `fast` gets the engine's arguments and returns the output, or null to run the kernel registered there
 * before (the stock one). Idempotent.
 */
export function registerRawInFrontOfStock<A>(
  kernelName: string,
  backendName: string,
  layer: string,
  fast: (args: RawKernelArgs<A>) => tf.TensorInfo | null,
): void {
  // One registration per kernel and layer: two layers (e.g. a heap kernel in front of a tensor-level one
  // in front of the stock kernel) chain, each falling back to the one registered before it.
  const key = `${kernelName}/${backendName}/${layer}`;
  if (inFront.has(key)) return;
  inFront.add(key);
  const stock = tf.getKernel(kernelName, backendName) ?? null;
  if (stock) tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel({
    kernelName,
    backendName,
    ...(stock?.setupFunc ? { setupFunc: stock.setupFunc } : {}),
    ...(stock?.disposeFunc ? { disposeFunc: stock.disposeFunc } : {}),
    kernelFunc: (args) => {
      const result = fast({ inputs: args.inputs, backend: args.backend, attrs: args.attrs as unknown as A });
      if (result) return result;
      if (!stock)
        throw new Error(`${kernelName}: no ${backendName} kernel for this case (${JSON.stringify(args.attrs)})`);
      return stock.kernelFunc(args);
    },
  });
}
