import * as tf from '@tensorflow/tfjs-core';

/** A kernel's input as a Tensor4D: a Tensor as it is, or a bare TensorInfo (a kernel called by another
 *  kernel) wrapped in a tensor that holds its own reference; `owned` wrappers must be disposed. */
export function asTensor4D(info: tf.TensorInfo): { t: tf.Tensor4D; owned: boolean } {
  if (info instanceof tf.Tensor) return { t: info as tf.Tensor4D, owned: false };
  return { t: tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor4D, owned: true };
}

const inFront = new Set<string>();

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
  const key = `${kernelName}/${backendName}`;
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
      const wrapped = inputNames.map((n) => asTensor4D(args.inputs[n] as tf.TensorInfo));
      try {
        const result = fast(wrapped.map((w) => w.t), args.attrs as unknown as A);
        if (result) return result;
        if (!stock) throw new Error(`${kernelName}: no ${backendName} kernel for this case (${JSON.stringify(args.attrs)})`);
        return stock.kernelFunc(args);
      } finally {
        for (const w of wrapped) if (w.owned) w.t.dispose();
      }
    },
  });
}
