/**
 * The two gradient kernels of a depthwise convolution (`tf.layers.depthwiseConv2d`, and the
 * depthwise half of `separableConv2d`), which `@tensorflow/tfjs-backend-wasm` 4.22 lacks:
 * `DepthwiseConv2dNativeBackpropFilter` and `DepthwiseConv2dNativeBackpropInput`. Built from ops
 * wasm has (NHWC, dilation 1, like tfjs's own gradient, which refuses dilation > 1):
 *  - filter: dW[kh, kw, c, q] = Σ_{b, oh, ow} xPad[b, oh·sh + kh, ow·sw + kw, c] · dy[b, oh, ow, c·m + q]
 *    = one depthwise conv of xPad as [1, H, W, b·c] with dy as the filter [oh, ow, b·c, m], stride 1,
 *    dilation = forward stride, then a sum over b.
 *  - input: the depthwise conv is the ordinary conv with the block-diagonal filter
 *    F[kh, kw, i, i·m + q] = W[kh, kw, i, q], so dx = conv2dTranspose(dy, F) (c times the work of a
 *    native kernel; fine for the channel counts of the models this product prunes).
 */
import * as tf from '@tensorflow/tfjs-core';

type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

interface DepthwiseBackpropAttrs {
  strides: number | [number, number];
  pad: Pad;
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape?: [number, number, number, number];
  inputShape?: [number, number, number, number];
}

function checkDilations(kernel: string, dilations: DepthwiseBackpropAttrs['dilations']): void {
  const d = dilations == null ? [1, 1] : typeof dilations === 'number' ? [dilations, dilations] : dilations;
  if (d[0] !== 1 || d[1] !== 1)
    throw new Error(`${kernel}: dilations other than 1 are not supported (got ${JSON.stringify(dilations)})`);
}

function wrap(info: tf.TensorInfo): { t: tf.Tensor4D; owned: boolean } {
  if (info instanceof tf.Tensor) return { t: info as tf.Tensor4D, owned: false };
  return { t: tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor4D, owned: true };
}

/** Filter gradient of `tf.depthwiseConv2d(x, W, strides, pad)` given dy. */
export function depthwiseBackpropFilterViaOps(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  pad: Pad,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.Tensor4D {
  return tf.tidy(() => {
    const info = tf.backend_util.computeConv2DInfo(x.shape, filterShape, strides, 1, pad, dimRoundingMode, true);
    const [fh, fw, c, m] = filterShape;
    const { strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow, batchSize: b } = info;
    if (dy.shape[0] !== b || dy.shape[1] !== oh || dy.shape[2] !== ow || dy.shape[3] !== c * m) {
      throw new Error(
        `DepthwiseConv2dNativeBackpropFilter: dy has shape [${dy.shape}], expected [${b},${oh},${ow},${c * m}]`,
      );
    }
    const needH = fh - 1 + (oh - 1) * sh + 1;
    const needW = fw - 1 + (ow - 1) * sw + 1;
    const { top, left } = info.padInfo;
    const padBottom = Math.max(0, needH - (top + x.shape[1]));
    const padRight = Math.max(0, needW - (left + x.shape[2]));
    let xp: tf.Tensor4D = x;
    if (top > 0 || left > 0 || padBottom > 0 || padRight > 0) {
      xp = tf.pad(x, [
        [0, 0],
        [top, padBottom],
        [left, padRight],
        [0, 0],
      ]);
    }
    if (xp.shape[1] > needH || xp.shape[2] > needW) xp = tf.slice(xp, [0, 0, 0, 0], [b, needH, needW, c]);
    const xT = tf.reshape(tf.transpose(xp, [1, 2, 0, 3]), [1, needH, needW, b * c]);
    const dyT = tf.reshape(tf.transpose(dy, [1, 2, 0, 3]), [oh, ow, b * c, m]);
    const r = tf.depthwiseConv2d(xT as tf.Tensor4D, dyT as tf.Tensor4D, 1, 'valid', 'NHWC', [sh, sw]); // [1, fh, fw, b·c·m]
    return tf.sum(tf.reshape(r, [fh, fw, b, c, m]), 2) as tf.Tensor4D;
  });
}

/** Input gradient of `tf.depthwiseConv2d(x, W, strides, pad)` given dy. */
export function depthwiseBackpropInputViaOps(
  inputShape: [number, number, number, number],
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  strides: number | [number, number],
  pad: Pad,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.Tensor4D {
  return tf.tidy(() => {
    const [fh, fw, c, m] = filter.shape;
    const full = tf.reshape(tf.mul(tf.reshape(filter, [fh, fw, c, 1, m]), tf.reshape(tf.eye(c), [1, 1, c, c, 1])), [
      fh,
      fw,
      c,
      c * m,
    ]) as tf.Tensor4D;
    return tf.conv2dTranspose(dy, full, inputShape, strides, pad, dimRoundingMode);
  });
}

export function depthwiseBackpropKernels(backendName: string): tf.KernelConfig[] {
  return [
    {
      kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
      backendName,
      kernelFunc: ({ inputs, attrs }) => {
        const a = attrs as unknown as DepthwiseBackpropAttrs;
        checkDilations('DepthwiseConv2dNativeBackpropFilter', a.dilations);
        const x = wrap(inputs.x as tf.TensorInfo);
        const dy = wrap(inputs.dy as tf.TensorInfo);
        try {
          return depthwiseBackpropFilterViaOps(
            x.t,
            dy.t,
            a.filterShape as [number, number, number, number],
            a.strides,
            a.pad,
            a.dimRoundingMode,
          );
        } finally {
          if (x.owned) x.t.dispose();
          if (dy.owned) dy.t.dispose();
        }
      },
    },
    {
      kernelName: tf.DepthwiseConv2dNativeBackpropInput,
      backendName,
      kernelFunc: ({ inputs, attrs }) => {
        const a = attrs as unknown as DepthwiseBackpropAttrs;
        checkDilations('DepthwiseConv2dNativeBackpropInput', a.dilations);
        const dy = wrap(inputs.dy as tf.TensorInfo);
        const filter = wrap(inputs.filter as tf.TensorInfo);
        try {
          return depthwiseBackpropInputViaOps(
            a.inputShape as [number, number, number, number],
            dy.t,
            filter.t,
            a.strides,
            a.pad,
            a.dimRoundingMode,
          );
        } finally {
          if (dy.owned) dy.t.dispose();
          if (filter.owned) filter.t.dispose();
        }
      },
    },
  ];
}

/**
 * Registers both kernels for `backendName` where it has none (wasm). A backend's own kernels
 * (cpu has both) are left alone. Idempotent.
 */
export function registerDepthwiseBackprop(backendName: string): void {
  for (const k of depthwiseBackpropKernels(backendName)) {
    if (!tf.getKernel(k.kernelName, backendName)) tf.registerKernel(k);
  }
}
