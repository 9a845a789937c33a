/**
 * Conv2D infos computed once per shape: a training step's convolution wrappers (simd-kernels.ts) and the input
 * gradient's padding (conv2d-backprop-input.ts) ask tfjs for the same few dozen every step, several times each.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Conv2D infos by their arguments (`convInfo`); cleared when it holds more than a model's worth. */
const convInfos = new Map<string, tf.backend_util.Conv2DInfo>();

/** tfjs's `computeConv2DInfo` (channels last, not depthwise), once per shape; frozen, as every caller only reads it. */
export function convInfo(
  inShape: [number, number, number, number],
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  dilations: number | [number, number],
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.backend_util.Conv2DInfo {
  const key = `${inShape}|${filterShape}|${strides}|${dilations}|${typeof pad}:${String(pad)}|${dimRoundingMode}`;
  let info = convInfos.get(key);
  if (!info) {
    info = tf.backend_util.computeConv2DInfo(
      inShape,
      filterShape,
      strides,
      dilations,
      pad,
      dimRoundingMode,
      false,
      'channelsLast',
    );
    Object.freeze(info.padInfo);
    Object.freeze(info);
    if (convInfos.size >= 512) convInfos.clear();
    convInfos.set(key, info);
  }
  return info;
}
