/**
 * A faster `Conv2DBackpropInput` (the gradient of a 2-D convolution with respect to its input) for the
 * wasm backend, for the case every CNN here uses: stride 1, dilation 1, NHWC. It is one forward
 * convolution, which wasm runs through XNNPACK, instead of wasm's own scalar backprop-input loop.
 * Profiled on the bench's cnn32 epoch (wasm): Conv2DBackpropInput took 364 ms of ~1.1 s, the forward
 * Conv2D of the same size 211 ms.
 *
 * The math (stride 1, NHWC): with the forward padding top/left,
 *   dx[b, i, j, ci] = Σ_{kh, kw, co} dy[b, i − kh + top, j − kw + left, co] · W[kh, kw, ci, co]
 * which is a 'valid' convolution of dy, padded by (fh − 1 − top) above and (H − oh + top) below (the same
 * across), with the filter rotated by 180° and its channel axes swapped: W'[a, b, co, ci] =
 * W[fh − 1 − a, fw − 1 − b, ci, co].
 *
 * Any other case (strides, dilations, NCHW, a padding that would need cropping) goes to the kernel that
 * was registered before, so behaviour there is unchanged. In front of this one, simd-kernels.ts runs the
 * same math as one SIMD kernel on the heap (no padded copy of dy) where the input channels come in fours;
 * this formulation stays for the rest (a first layer's 3 colour channels, when the module cannot load).
 */
import * as tf from '@tensorflow/tfjs-core';
import { convInfo } from './conv-info';
import { registerInFrontOfStock } from './tensor-info';

interface BackpropInputAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape: [number, number, number, number];
}

/** Whether strides (or dilations) are 1 in both directions; unset counts as 1. */
export const isOne = (s: number | [number, number] | undefined) =>
  s === undefined || (Array.isArray(s) ? s[0] === 1 && s[1] === 1 : s === 1);

/**
 * How much dy must be padded on each side for dx to be the 'valid' convolution of padded dy with the
 * rotated filter: a stride-1 convolution's input gradient (see the math above). Null where that does not
 * apply: other strides, a dy of another size, or a padding that would need cropping.
 */
export function backpropInputPadding(
  inputShape: [number, number, number, number],
  filterShape: [number, number, number, number],
  dyShape: number[],
  strides: number | [number, number],
  pad: BackpropInputAttrs['pad'],
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): { top: number; bottom: number; left: number; right: number } | null {
  if (!isOne(strides)) return null;
  const info = convInfo(inputShape, filterShape, 1, 1, pad, dimRoundingMode);
  const [fh, fw] = filterShape;
  const [, h, w] = inputShape;
  const { outHeight: oh, outWidth: ow } = info;
  if (dyShape[1] !== oh || dyShape[2] !== ow) return null;
  const top = fh - 1 - info.padInfo.top;
  const bottom = h - oh + info.padInfo.top;
  const left = fw - 1 - info.padInfo.left;
  const right = w - ow + info.padInfo.left;
  return top < 0 || bottom < 0 || left < 0 || right < 0 ? null : { top, bottom, left, right };
}

/**
 * The input gradient of a stride-1 NHWC convolution as one forward convolution, or null when this
 * formulation does not apply (then the stock kernel must run).
 */
export function conv2dBackpropInputViaConv(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  inputShape: [number, number, number, number],
  strides: number | [number, number],
  pad: BackpropInputAttrs['pad'],
  dataFormat: 'NHWC' | 'NCHW' = 'NHWC',
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.Tensor4D | null {
  if (dataFormat !== 'NHWC') return null;
  const padding = backpropInputPadding(inputShape, filter.shape, dy.shape, strides, pad, dimRoundingMode);
  if (!padding) return null;
  const { top, bottom, left, right } = padding;
  return tf.tidy(() => {
    const padded =
      top || bottom || left || right
        ? tf.pad(dy, [
            [0, 0],
            [top, bottom],
            [left, right],
            [0, 0],
          ])
        : dy;
    const rotated = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]); // [fh, fw, co, ci]
    return tf.conv2d(padded, rotated as tf.Tensor4D, 1, 'valid');
  });
}

/** Registers the faster kernel for `backendName` in front of the stock one (kept for the other cases). Idempotent. */
export function registerConv2DBackpropInput(backendName: string): void {
  registerInFrontOfStock<BackpropInputAttrs>(tf.Conv2DBackpropInput, backendName, ['dy', 'filter'], ([dy, filter], a) =>
    conv2dBackpropInputViaConv(dy, filter, a.inputShape, a.strides, a.pad, a.dataFormat ?? 'NHWC', a.dimRoundingMode),
  );
}
