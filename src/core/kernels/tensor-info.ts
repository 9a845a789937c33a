import * as tf from '@tensorflow/tfjs-core';

/** A kernel's input as a Tensor4D: a Tensor as it is, or a bare TensorInfo (a kernel called by another
 *  kernel) wrapped in a tensor that holds its own reference; `owned` wrappers must be disposed. */
export function asTensor4D(info: tf.TensorInfo): { t: tf.Tensor4D; owned: boolean } {
  if (info instanceof tf.Tensor) return { t: info as tf.Tensor4D, owned: false };
  return { t: tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor4D, owned: true };
}
