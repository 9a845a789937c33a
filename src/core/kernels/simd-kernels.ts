/**
 * Fair Prune's own wasm SIMD kernels (simd/kernels.c, built into simd/kernels.wasm by
 * scripts/build-simd.sh and committed), run on tfjs-backend-wasm's heap: the module imports the
 * backend's own memory, so a kernel reads its inputs and writes its output in place, like the stock
 * kernels do.
 *
 * First of them: `Conv2DBackpropFilter`, the filter gradient of a convolution. The convolution
 * formulation (conv2d-backprop-filter.ts) hands XNNPACK a filter as big as dy and a 9-to-27-pixel
 * output, which it runs at a fifth of its forward speed; here the sum is blocked 4 input channels × 8
 * output channels in SIMD registers, over one output row at a time. Measured on wasm, batch 64, 3×3
 * 'same': 32×32×3 → 16 12.2 → 1.4 ms; 16×16×16 → 32 17.3 → 2.9 ms.
 *
 * Then `Conv2D` and `Conv2DBackpropInput`: the forward convolution, 2 output pixels × 16 output channels
 * in registers, faster than XNNPACK's on every CNN layer measured (see `conv2dSimd`), and the input
 * gradient of a stride-1 convolution as that same kernel over dy with the filter rotated, with no padded
 * copy of dy; `BatchMatMul`, as a 1×1 convolution; and 2×2 `MaxPool`.
 *
 * 3×3 stride-1 convolutions with enough channels (`winogradTakes`), forward and both gradients, run
 * through Winograd's minimal filtering, F(2×2, 3×3) and its transpose: 2.25 times fewer multiplies,
 * 1.3–2.1 times as fast; with 16 channels or more both sides, F(4×4, 3×3) (`winograd4Takes`): 4 times fewer,
 * and a quarter faster again. For the heap training step of plain CNNs (conv-step.ts) the module also runs a
 * convolution together with the 2×2 max pooling after it (`conv2dPoolSimd`), recording each window's
 * winner, and a first layer's filter gradient from that pooling's gradient (`conv2d_filter_grad_pooled`).
 *
 * Also: a bias added at every position (`Add` with one side over the other's last axis), where wasm's
 * stock kernel broadcasts with a general index loop. The module's other kernels are called by the
 * JavaScript kernels they speed up, for the cases they take: `max_pool_grad` by max-pool-grad.ts (windows
 * apart; 2×2 windows of stride 2 unrolled: 64×32×32×16 from 6 ms in JavaScript to 0.6 ms), `sum_rows`
 * by sum.ts (bias gradients), and `adam_update` by adam.ts (bit for bit tf.train.adam).
 *
 * Where the module cannot be loaded (no SIMD in the runtime, the file missing), or for a case it does not
 * take (NCHW, an output-channel count that is not a multiple of 4), the kernel registered before it runs
 * (for Adam, a JavaScript loop).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import type { BackpropFilterAttrs } from './conv2d-backprop-filter';
import { backpropInputPadding, isOne } from './conv2d-backprop-input';
import { convInfo } from './conv-info';
import { registerRawInFrontOfStock } from './tensor-info';
import { heapOffset, heapView, wasmInternals, type WasmBackendInternals } from './wasm-heap';

const sizeOf = (shape: number[]) => shape.reduce((a, d) => a * d, 1);

/** A depthwise convolution's sizes as the module takes them: B, H, W, C, oh, ow, fh, fw, sh, sw, top, left. */
export type DepthwiseDims = readonly [
  B: number,
  H: number,
  W: number,
  C: number,
  oh: number,
  ow: number,
  fh: number,
  fw: number,
  sh: number,
  sw: number,
  top: number,
  left: number,
];

export interface SimdExports {
  conv2d_filter_grad(
    x: number,
    dy: number,
    dw: number,
    B: number,
    H: number,
    W: number,
    ci: number,
    oh: number,
    ow: number,
    co: number,
    fh: number,
    fw: number,
    sh: number,
    sw: number,
    top: number,
    left: number,
  ): void;
  conv2d(
    x: number,
    w: number,
    out: number,
    zeros: number,
    bias: number,
    act: number,
    B: number,
    H: number,
    W: number,
    ci: number,
    oh: number,
    ow: number,
    co: number,
    fh: number,
    fw: number,
    sh: number,
    sw: number,
    dh: number,
    dw: number,
    top: number,
    left: number,
  ): void;
  /**
   * conv2d (stride 1, no bias) into the pixels (p + y·sph, q + x·spw) of out [B, OH, OW, co]; `dims`: B, H, W, ci,
   * oh, ow, co, fh, fw, top, left, OH, OW, p, q, sph, spw.
   */
  conv2d_phase(x: number, w: number, out: number, zeros: number, ...dims: number[]): void;
  winograd_filter(w: number, u: number, ci: number, co: number): void;
  conv2d_filter_grad_winograd(
    x: number,
    dy: number,
    dw: number,
    scratch: number,
    tiles: number,
    B: number,
    H: number,
    W: number,
    ci: number,
    oh: number,
    ow: number,
    co: number,
    top: number,
    left: number,
  ): void;
  conv2d_winograd(
    x: number,
    u: number,
    out: number,
    scratch: number,
    bias: number,
    act: number,
    win: number,
    floorZero: number,
    B: number,
    H: number,
    W: number,
    ci: number,
    oh: number,
    ow: number,
    co: number,
    top: number,
    left: number,
  ): void;
  /** F(4×4, 3×3): as `winograd_filter`, u [36, ci, co]. */
  winograd4_filter(w: number, u: number, ci: number, co: number): void;
  /** F(4×4, 3×3): as `conv2d_winograd`, `tiles` tiles at a time, scratch 36·(tiles·(ci + co) + ci + 32) floats. */
  conv2d_winograd4(
    x: number,
    u: number,
    out: number,
    scratch: number,
    tiles: number,
    bias: number,
    act: number,
    win: number,
    floorZero: number,
    B: number,
    H: number,
    W: number,
    ci: number,
    oh: number,
    ow: number,
    co: number,
    top: number,
    left: number,
  ): void;
  /** F(3×3, 4×4): as `conv2d_filter_grad_winograd`, scratch 36·(ci·co + tiles·(ci + co) + 32) floats. */
  conv2d_filter_grad_winograd4: SimdExports['conv2d_filter_grad_winograd'];
  /**
   * The stride-2 Winograd form (`winogradS2Takes`): u (25·ci·co floats, by groups, kernels.c) from the filter
   * [3, 3, ci, co]; `across` 1 for the input gradient's, from the filter with its channel axes swapped.
   */
  winograd_s2_filter(w: number, u: number, ci: number, co: number, across: number): void;
  /** Its forward pass, `tiles` 2×2 output tiles at a time, scratch 25·tiles·(ci + co) + 576 floats or more. */
  conv2d_winograd_s2(
    x: number,
    u: number,
    out: number,
    scratch: number,
    tiles: number,
    bias: number,
    act: number,
    B: number,
    H: number,
    W: number,
    ci: number,
    oh: number,
    ow: number,
    co: number,
    top: number,
    left: number,
  ): void;
  /** Its filter gradient, scratch 25·(ci·co + tiles·(ci + co)) + 576 floats or more. */
  conv2d_filter_grad_winograd_s2: SimdExports['conv2d_filter_grad_winograd'];
  /**
   * Its input gradient: (dy, ut, dx, scratch, tiles, B, H, W, ci, oh, ow, co, top, left), ut the transform of the
   * filter with its channel axes swapped (`across`), scratch as the forward pass's.
   */
  conv2d_input_grad_winograd_s2: SimdExports['conv2d_filter_grad_winograd'];
  max_pool_2x2(x: number, out: number, B: number, H: number, W: number, C: number, OH: number, OW: number): void;
  conv2d_filter_grad_pooled(
    x: number,
    dyp: number,
    win: number,
    dw: number,
    db: number,
    row: number,
    sums: number,
    B: number,
    H: number,
    W: number,
    ci: number,
    oh: number,
    ow: number,
    co: number,
    fh: number,
    fw: number,
    sh: number,
    sw: number,
    top: number,
    left: number,
  ): void;
  conv2d_pool(
    x: number,
    w: number,
    out: number,
    win: number,
    zeros: number,
    bias: number,
    act: number,
    floorZero: number,
    B: number,
    H: number,
    W: number,
    ci: number,
    oh: number,
    ow: number,
    co: number,
    fh: number,
    fw: number,
    sh: number,
    sw: number,
    top: number,
    left: number,
  ): void;
  max_pool_2x2_winners(
    x: number,
    out: number,
    win: number,
    B: number,
    H: number,
    W: number,
    C: number,
    OH: number,
    OW: number,
    floorZero: number,
  ): void;
  max_pool_2x2_winners_grad(
    dy: number,
    win: number,
    dx: number,
    B: number,
    H: number,
    W: number,
    C: number,
    OH: number,
    OW: number,
  ): void;
  max_pool_grad(
    x: number,
    dy: number,
    dx: number,
    B: number,
    H: number,
    W: number,
    C: number,
    OH: number,
    OW: number,
    fh: number,
    fw: number,
    sh: number,
    sw: number,
  ): void;
  add_bias(a: number, b: number, out: number, rows: number, C: number): void;
  sum_rows(x: number, out: number, rows: number, C: number): void;
  relu_grad(dy: number, x: number, out: number, n: number): void;
  /** `scratch`: 2·C floats (or more) for the kernel's running sums. */
  bn_moments(x: number, mean: number, variance: number, rows: number, C: number, scratch: number): void;
  bn_forward(
    x: number,
    mean: number,
    scale: number,
    beta: number,
    y: number,
    rows: number,
    C: number,
    act: number,
  ): void;
  bn_add(
    x: number,
    mean: number,
    scale: number,
    beta: number,
    other: number,
    out: number,
    rows: number,
    C: number,
    act: number,
  ): void;
  /** With act 1 or 2, the activation's mask is worked out from x as bn_forward (its scale and beta) works y out. */
  bn_backward(
    dy: number,
    x: number,
    mean: number,
    inv: number,
    gamma: number,
    scale: number,
    beta: number,
    dx: number,
    dgamma: number,
    dbeta: number,
    /** Where not 0, Σ dx per channel: the bias gradient of a convolution before the normalization. */
    dbias: number,
    rows: number,
    C: number,
    act: number,
    /** 8·C floats (7·C used) for the sums and coefficients the kernel keeps over its spans of rows. */
    scratch: number,
  ): void;
  /** dst [co, ci] = src [ci, co] transposed: a filter tap with its channel axes swapped. */
  transpose_tap(src: number, dst: number, ci: number, co: number): void;
  add_act(a: number, b: number, out: number, n: number, act: number): void;
  add_masked(a: number, y: number, b: number, out: number, n: number, act: number, both: number): void;
  scatter_phase(
    part: number,
    dx: number,
    B: number,
    h: number,
    w: number,
    H: number,
    W: number,
    C: number,
    p: number,
    q: number,
    sh: number,
    sw: number,
  ): void;
  global_avg_pool(x: number, out: number, B: number, P: number, C: number, grad: number): void;
  relu6_grad(dy: number, y: number, out: number, n: number): void;
  depthwise_conv2d(x: number, w: number, bias: number, out: number, ...dims: DepthwiseDims): void;
  depthwise_conv2d_input_grad(dy: number, w: number, dx: number, ...dims: DepthwiseDims): void;
  depthwise_conv2d_filter_grad(x: number, dy: number, dw: number, ...dims: DepthwiseDims): void;
  adam_update(
    g: number,
    w: number,
    out: number,
    m: number,
    v: number,
    n: number,
    b1: number,
    b2: number,
    c1: number,
    c2: number,
    eps: number,
    negLr: number,
    oneMinusAcc1: number,
    oneMinusAcc2: number,
  ): void;
}

/** The file name of the module next to the bundles (scripts/build.mjs copies it into dist/). */
export const SIMD_KERNELS_FILE = 'fair-prune-kernels.wasm';

/** Where the module is: next to the bundle (dist/), or in the source tree (tsc's out/ for the unit tests). */
export function findSimdKernels(): string | null {
  const candidates = [
    path.join(__dirname, SIMD_KERNELS_FILE),
    path.resolve(__dirname, '..', '..', '..', '..', 'src', 'core', 'kernels', 'simd', 'kernels.wasm'),
  ];
  return candidates.find((f) => fs.existsSync(f)) ?? null;
}

let compiled: WebAssembly.Module | null | undefined;
const instances = new WeakMap<object, SimdExports | null>();

/** The module instantiated on `backend`'s memory (one per backend, so per thread), or null where it cannot be. */
export function simdKernels(backend: unknown): SimdExports | null {
  const heap = wasmInternals(backend);
  if (!heap) return null;
  if (instances.has(heap)) return instances.get(heap) ?? null;
  let exports: SimdExports | null = null;
  try {
    if (compiled === undefined) {
      const file = findSimdKernels();
      compiled = file ? new WebAssembly.Module(fs.readFileSync(file)) : null;
    }
    const memory = (heap.wasm as unknown as { asm?: { memory?: WebAssembly.Memory } }).asm?.memory;
    if (compiled && memory instanceof WebAssembly.Memory) {
      exports = new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as SimdExports;
    }
  } catch {
    compiled = compiled ?? null;
    exports = null; // no SIMD here, or a changed tfjs: the kernels registered before run
  }
  instances.set(heap, exports);
  return exports;
}

/**
 * For bench/profile.ts: every call into the module on `backend` goes through `wrap(name, f)` (a timer)
 * until the returned function restores the module's own exports. Null where the module is not loaded.
 */
export function wrapSimdKernels(
  backend: unknown,
  wrap: (name: string, f: (...args: number[]) => void) => (...args: number[]) => void,
): (() => void) | null {
  const heap = wasmInternals(backend);
  const own = heap && simdKernels(backend);
  if (!heap || !own) return null;
  const wrapped = Object.fromEntries(
    Object.entries(own).map(([name, f]) => [name, typeof f === 'function' ? wrap(name, f) : f]),
  );
  instances.set(heap, wrapped as unknown as SimdExports);
  return () => instances.set(heap, own);
}

/**
 * The filter gradient on the heap through the SIMD module, or null when it does not apply (see the
 * file's comment).
 */
export function conv2dBackpropFilterSimd(
  backend: unknown,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  pad: BackpropFilterAttrs['pad'],
  dataFormat: 'NHWC' | 'NCHW' = 'NHWC',
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.TensorInfo | null {
  const kernels = simdKernels(backend);
  const heap = wasmInternals(backend) as WasmBackendInternals;
  if (
    !kernels ||
    dataFormat !== 'NHWC' ||
    x.dtype !== 'float32' ||
    dy.dtype !== 'float32' ||
    x.shape.length !== 4 ||
    dy.shape.length !== 4
  )
    return null;
  const [fh, fw, ci, co] = filterShape;
  if (co % 4 !== 0 || x.shape[3] !== ci) return null;
  const info = convInfo(x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode);
  const {
    batchSize: b,
    inHeight: H,
    inWidth: W,
    outHeight: oh,
    outWidth: ow,
    strideHeight: sh,
    strideWidth: sw,
  } = info;
  if (dy.shape[0] !== b || dy.shape[1] !== oh || dy.shape[2] !== ow || dy.shape[3] !== co) return null;
  const out = heap.makeOutput(filterShape.slice(), 'float32');
  const s2 = winogradS2Takes(info);
  if (s2 || winogradTakes(info)) {
    const four = !s2 && winograd4Takes(info);
    const tiles = s2 ? winogradS2GradTiles(ci + co) : four ? winograd4GradTiles(ci + co) : winogradGradTiles(ci + co);
    const xi = s2 ? 25 : four ? 36 : 16;
    // The stride-2 kernel pads its 18 groups' rows (of input and dy transforms) by 32 floats each.
    const pad = s2 ? 64 : four ? 2 * WINOGRAD4_PAD : 0;
    const scratch = heap.makeOutput([xi * (ci * co + tiles * (ci + co) + pad)], 'float32');
    try {
      (s2
        ? kernels.conv2d_filter_grad_winograd_s2
        : four
          ? kernels.conv2d_filter_grad_winograd4
          : kernels.conv2d_filter_grad_winograd)(
        heapOffset(heap, x),
        heapOffset(heap, dy),
        heapOffset(heap, out),
        heapOffset(heap, scratch),
        tiles,
        b,
        H,
        W,
        ci,
        oh,
        ow,
        co,
        info.padInfo.top,
        info.padInfo.left,
      );
    } finally {
      heap.disposeData(scratch.dataId);
    }
    return out;
  }
  kernels.conv2d_filter_grad(
    heapOffset(heap, x),
    heapOffset(heap, dy),
    heapOffset(heap, out),
    b,
    H,
    W,
    ci,
    oh,
    ow,
    co,
    fh,
    fw,
    sh,
    sw,
    info.padInfo.top,
    info.padInfo.left,
  );
  return out;
}

interface ConvAttrs {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: number | [number, number];
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** What a fused kernel (FusedConv2D, _FusedMatMul) adds after the product: a bias, then an activation. */
export interface Epilogue {
  bias?: tf.TensorInfo;
  activation?: string;
}

/** The module's code for an activation (0 none, 1 relu, 2 relu6), or null for one it does not apply. */
const ACTIVATIONS: Record<string, number> = { linear: 0, relu: 1, relu6: 2 };

/** The epilogue as the module takes it, or null when it cannot (another activation, a bias that is not one value per output channel). */
function epilogueFor(
  heap: WasmBackendInternals,
  e: Epilogue | undefined,
  co: number,
): { bias: number; act: number } | null {
  const act = ACTIVATIONS[e?.activation ?? 'linear'];
  if (act === undefined) return null;
  if (!e?.bias) return { bias: 0, act };
  if (
    e.bias.dtype !== 'float32' ||
    sizeOf(e.bias.shape) !== co ||
    e.bias.shape.some((d, i) => i < e.bias!.shape.length - 1 && d !== 1)
  )
    return null;
  return { bias: heapOffset(heap, e.bias), act };
}

/** `ci` zero floats on the heap, for taps outside the image; the caller frees it with `heap.disposeData`. */
function heapZeros(heap: WasmBackendInternals, ci: number): tf.TensorInfo {
  const zeros = heap.makeOutput([Math.max(ci, 4)], 'float32');
  heapView(heap, zeros).fill(0);
  return zeros;
}

/** Tiles the module's `conv2d_winograd` transforms at a time (WINO_TILES in kernels.c). */
const WINOGRAD_TILES = 8;
/**
 * Tiles `conv2d_filter_grad_winograd` transforms at a time, for ci + co channels: their transforms,
 * 16·tiles·(ci + co) floats, kept to about 48 KB (the first-level cache and some). Batch 64, one call of
 * 16×16×16 → 32, tiles 8 / 16 (this) / 32 / 64: 2.0 / 1.85 / 3.1 / 3.7 ms (direct: 2.9 ms); 64 → 64
 * with 32 tiles was no faster than the direct sum, with 6 (this) 1.6 times as fast.
 */
const winogradGradTiles = (channels: number) => Math.max(2, Math.min(32, Math.round(768 / channels)));

/**
 * Floats between the 36 transforms' slices of F(4×4, 3×3)'s scratch beyond `tiles` rows (WINO4_PAD in
 * kernels.c), so that their stride is no power of two: the scratch holds 2·WINOGRAD4_PAD floats more a transform.
 */
const WINOGRAD4_PAD = 16;

/**
 * Tiles `conv2d_filter_grad_winograd4` transforms at a time, for ci + co channels (36 transforms a tile
 * where F(3×3, 2×2) has 16): 64 at 16 and 32 channels, 32 at 64. The more tiles, the fewer times each block
 * of sums is loaded and stored (docs/performance.md). kernels.c compiles these three (16, 32 and 64 channels
 * both sides) with their sizes as constants: change the two together.
 */
const winograd4GradTiles = (channels: number) => Math.max(8, Math.min(64, Math.round(4096 / channels)));

/**
 * Tiles `conv2d_winograd4` transforms at a time, across tile rows and images: 32 at 16 channels, 8 at 64
 * (their transforms, 36·tiles·(ci + co) floats; more tiles read the filter's transform fewer times).
 */
const winograd4Tiles = (channels: number) => Math.max(4, Math.min(32, Math.round(1024 / channels)));

/**
 * Whether a convolution `winogradTakes` runs through F(4×4, 3×3) (`conv2d_winograd4`: the forward pass, and
 * the input gradient as a convolution) and F(3×3, 4×4) (`conv2d_filter_grad_winograd4`): 16 channels or more
 * both sides and outputs of 4 × 4 or more. Batch 64, one call, the filter gradient F(3×3, 2×2) → F(3×3, 4×4):
 * 32×32×16 → 16 4.7 → 3.2 ms, 16×16×32 → 32 3.3 → 2.1 ms, 8×8×64 → 64 3.3 → 2.4 ms; the forward pass
 * about as much (docs/performance.md).
 */
export function winograd4Takes(info: tf.backend_util.Conv2DInfo): boolean {
  return (
    winogradTakes(info) && info.inChannels >= 16 && info.outChannels >= 16 && info.outHeight >= 4 && info.outWidth >= 4
  );
}

/**
 * Whether `conv2d_winograd` takes the convolution: 3×3, stride 1, dilation 1, channels in fours both
 * sides, and enough of them for the transforms to pay. Batch 64, one call, direct → Winograd:
 * 16×16×16 → 32 3.0 → 2.0 ms, 16×16×32 → 16 (the input gradient of that layer) 3.0 → 1.9 ms,
 * 14×14×16 → 32 2.2 → 1.6 ms, 16×16×64 → 64 26.8 → 12.6 ms, 16×16×8 → 16 0.83 → 0.71 ms; but
 * 32×32×4 → 16 1.75 → 2.0 ms and 28×28×8 → 8 1.43 → 1.53 ms, which stay direct.
 */
export function winogradTakes(info: tf.backend_util.Conv2DInfo): boolean {
  const { inChannels: ci, outChannels: co } = info;
  return (
    info.filterHeight === 3 &&
    info.filterWidth === 3 &&
    info.strideHeight === 1 &&
    info.strideWidth === 1 &&
    info.dilationHeight === 1 &&
    info.dilationWidth === 1 &&
    ci % 4 === 0 &&
    co % 4 === 0 &&
    ci >= 8 &&
    ci * co >= 128
  );
}

/**
 * Whether the stride-2 Winograd form takes the convolution (`conv2d_winograd_s2` and its gradients, kernels.c):
 * 3×3, stride 2, dilation 1, channels in fours both sides, 16 or more in: 25 multiplies per 2×2 outputs and channel
 * pair where the direct sum takes 36. In a ResNet-20 epoch (batch 64) 16×16×32 → 64 ran 1.1–1.4 times as fast
 * (forward, filter and input gradient); 32×32×16 → 32's gradients, their 4 MB input cold in the step, only once the
 * kernels read ahead the rows a batch of tiles touches (docs/performance.md).
 */
export function winogradS2Takes(info: tf.backend_util.Conv2DInfo): boolean {
  return (
    info.filterHeight === 3 &&
    info.filterWidth === 3 &&
    info.strideHeight === 2 &&
    info.strideWidth === 2 &&
    info.dilationHeight === 1 &&
    info.dilationWidth === 1 &&
    info.inChannels % 4 === 0 &&
    info.outChannels % 4 === 0 &&
    info.inChannels >= 16
  );
}

/**
 * Tiles the stride-2 Winograd kernels transform at a time, for ci + co channels: their transforms, 25·tiles·(ci + co)
 * floats. Batch 64, one call of 32×32×16 → 32 and 16×16×32 → 64, the forward pass and the input gradient at 8, 16
 * and 32 tiles for 16 → 32 were within the noise of each other; the filter gradient, which adds into its 25·ci·co
 * sums once a block of tiles, wants more: 2.5 ms at 64 tiles, 2.8 at 16 (docs/performance.md).
 */
const winogradS2Tiles = (channels: number) => Math.max(2, Math.min(64, Math.round(1536 / channels)));
const winogradS2GradTiles = (channels: number) => Math.max(2, Math.min(64, Math.round(6144 / channels)));

/** `conv2d_winograd_s2` into `out`, the filter transformed first. */
function runWinogradS2(
  kernels: SimdExports,
  heap: WasmBackendInternals,
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
  epilogue: { bias: number; act: number },
  out: tf.TensorInfo,
): void {
  const { batchSize: b, inHeight: H, inWidth: W, inChannels: ci, outHeight: oh, outWidth: ow, outChannels: co } = info;
  const tiles = winogradS2Tiles(ci + co);
  const u = heap.makeOutput([25, ci, co], 'float32');
  const scratch = heap.makeOutput([25 * (tiles * (ci + co) + 64)], 'float32');
  try {
    kernels.winograd_s2_filter(heapOffset(heap, filter), heapOffset(heap, u), ci, co, 0);
    const [xAt, uAt, outAt, scratchAt] = [
      heapOffset(heap, x),
      heapOffset(heap, u),
      heapOffset(heap, out),
      heapOffset(heap, scratch),
    ];
    const { top, left } = info.padInfo;
    kernels.conv2d_winograd_s2(
      xAt,
      uAt,
      outAt,
      scratchAt,
      tiles,
      epilogue.bias,
      epilogue.act,
      b,
      H,
      W,
      ci,
      oh,
      ow,
      co,
      top,
      left,
    );
  } finally {
    heap.disposeData(u.dataId);
    heap.disposeData(scratch.dataId);
  }
}

/** The forward convolution whose input gradient `attrs` asks for. */
function inputGradientInfo(
  filter: tf.TensorInfo,
  attrs: ConvAttrs & { inputShape: [number, number, number, number] },
): tf.backend_util.Conv2DInfo {
  return convInfo(
    attrs.inputShape,
    filter.shape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
}

/**
 * The input gradient of a convolution `winogradS2Takes`, the transpose of its forward form
 * (`conv2d_input_grad_winograd_s2`), or null where its tiles would not cover the input (rows or columns past the
 * last tile's reach, which get no gradient: 'valid' padding of a larger input).
 */
function inputGradientWinogradS2(
  kernels: SimdExports,
  heap: WasmBackendInternals,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: ConvAttrs & { inputShape: [number, number, number, number] },
): tf.TensorInfo | null {
  const [, , ci, co] = filter.shape;
  const info = inputGradientInfo(filter, attrs);
  const { batchSize: B, inHeight: H, inWidth: W, outHeight: oh, outWidth: ow, padInfo } = info;
  const reach = (out: number, pad: number) => 4 * Math.ceil(out / 2) - pad + 1;
  if (
    !winogradS2Takes(info) ||
    dy.shape[1] !== oh ||
    dy.shape[2] !== ow ||
    reach(oh, padInfo.top) < H ||
    reach(ow, padInfo.left) < W
  )
    return null;
  const tiles = winogradS2Tiles(ci + co);
  const swapped = heap.makeOutput([3, 3, co, ci], 'float32');
  const ut = heap.makeOutput([25, co, ci], 'float32');
  const scratch = heap.makeOutput([25 * (tiles * (ci + co) + 64)], 'float32');
  try {
    const [src, dst] = [heapOffset(heap, filter), heapOffset(heap, swapped)];
    for (let k = 0; k < 9; k++) kernels.transpose_tap(src + 4 * k * ci * co, dst + 4 * k * ci * co, ci, co);
    kernels.winograd_s2_filter(dst, heapOffset(heap, ut), co, ci, 1);
    const dx = heap.makeOutput(attrs.inputShape.slice(), 'float32');
    const [dyAt, utAt, dxAt, scratchAt] = [
      heapOffset(heap, dy),
      heapOffset(heap, ut),
      heapOffset(heap, dx),
      heapOffset(heap, scratch),
    ];
    kernels.conv2d_input_grad_winograd_s2(
      dyAt,
      utAt,
      dxAt,
      scratchAt,
      tiles,
      B,
      H,
      W,
      ci,
      oh,
      ow,
      co,
      padInfo.top,
      padInfo.left,
    );
    return dx;
  } finally {
    heap.disposeData(swapped.dataId);
    heap.disposeData(ut.dataId);
    heap.disposeData(scratch.dataId);
  }
}

/** `conv2d_winograd` into `out`, the filter transformed first; `pool`: a 2×2 max pooling after it, `out` then pooled. */
function runWinograd(
  kernels: SimdExports,
  heap: WasmBackendInternals,
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
  epilogue: { bias: number; act: number },
  out: tf.TensorInfo,
  pool?: { winners: tf.TensorInfo; floorZero: boolean },
): void {
  const { batchSize: b, inHeight: H, inWidth: W, inChannels: ci, outHeight: oh, outWidth: ow, outChannels: co } = info;
  // F(4×4, 3×3) where it takes the convolution: 36 transforms, `tiles` tiles of a row at a time; else F(2×2, 3×3).
  const four = winograd4Takes(info);
  const tiles = four ? winograd4Tiles(ci + co) : WINOGRAD_TILES;
  const transforms = four ? 36 : 16;
  const u = heap.makeOutput([transforms, ci, co], 'float32');
  const scratch = heap.makeOutput([transforms * (tiles * (ci + co) + (four ? ci + 2 * WINOGRAD4_PAD : 0))], 'float32');
  try {
    (four ? kernels.winograd4_filter : kernels.winograd_filter)(heapOffset(heap, filter), heapOffset(heap, u), ci, co);
    const [xAt, uAt, outAt, scratchAt] = [
      heapOffset(heap, x),
      heapOffset(heap, u),
      heapOffset(heap, out),
      heapOffset(heap, scratch),
    ];
    const rest = [
      epilogue.bias,
      epilogue.act,
      pool ? heapOffset(heap, pool.winners) : 0,
      pool?.floorZero ? 1 : 0,
      b,
      H,
      W,
      ci,
      oh,
      ow,
      co,
      info.padInfo.top,
      info.padInfo.left,
    ] as const;
    if (four) kernels.conv2d_winograd4(xAt, uAt, outAt, scratchAt, tiles, ...rest);
    else kernels.conv2d_winograd(xAt, uAt, outAt, scratchAt, ...rest);
  } finally {
    heap.disposeData(u.dataId);
    heap.disposeData(scratch.dataId);
  }
}

/** A pooling's winners: one byte for each element of its output `pooled`, in an int32 heap tensor. */
function winnersBuffer(heap: WasmBackendInternals, pooled: tf.TensorInfo): tf.TensorInfo {
  return heap.makeOutput([Math.ceil(sizeOf(pooled.shape) / 4)], 'int32');
}

/**
 * 2×2, stride-2 max pooling of x [B, H, W, C] (C in fours) through the SIMD module, recording each
 * window's winner as `max_pool_2x2_winners` does (`floorZero` after a relu): the pooled output
 * [B, ⌊H/2⌋, ⌊W/2⌋, C] and the winners, which `max_pool_2x2_winners_grad` routes the gradient by.
 */
export function maxPool2x2WinnersSimd(
  backend: unknown,
  x: tf.TensorInfo,
  floorZero: boolean,
): { out: tf.TensorInfo; winners: tf.TensorInfo } | null {
  const kernels = simdKernels(backend);
  const heap = wasmInternals(backend) as WasmBackendInternals;
  if (!kernels || x.dtype !== 'float32' || x.shape.length !== 4 || x.shape[3] % 4 !== 0) return null;
  const [B, H, W, C] = x.shape;
  const [OH, OW] = [Math.floor(H / 2), Math.floor(W / 2)];
  if (OH === 0 || OW === 0) return null;
  const out = heap.makeOutput([B, OH, OW, C], 'float32');
  const winners = winnersBuffer(heap, out);
  kernels.max_pool_2x2_winners(
    heapOffset(heap, x),
    heapOffset(heap, out),
    heapOffset(heap, winners),
    B,
    H,
    W,
    C,
    OH,
    OW,
    floorZero ? 1 : 0,
  );
  return { out, winners };
}

/**
 * A convolution (NHWC, dilation 1, channels out in fours) and the 2×2, stride-2 max pooling after it as
 * one kernel, through Winograd where `winogradTakes` the convolution, else `conv2d_pool`: only each
 * pooling window's max is written, [B, oh/2, ow/2, co], with its winner (a byte per output, as
 * `max_pool_2x2_winners` records them; `floorZero` after a relu). The convolution's output never goes to
 * memory. The same values as the convolution then the pooling. Null where it does not apply.
 */
export function conv2dPoolSimd(
  backend: unknown,
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: { strides: number | [number, number]; pad: 'same' | 'valid' },
  fused: Epilogue,
  floorZero: boolean,
): { out: tf.TensorInfo; winners: tf.TensorInfo; convShape: number[] } | null {
  const kernels = simdKernels(backend);
  const heap = wasmInternals(backend) as WasmBackendInternals;
  if (
    !kernels ||
    x.dtype !== 'float32' ||
    filter.dtype !== 'float32' ||
    x.shape.length !== 4 ||
    filter.shape.length !== 4 ||
    filter.shape[3] % 4 !== 0 ||
    x.shape[3] !== filter.shape[2]
  )
    return null;
  const epilogue = epilogueFor(heap, fused, filter.shape[3]);
  if (!epilogue) return null;
  const info = convInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    undefined,
  );
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: ci, outHeight: oh, outWidth: ow, outChannels: co } = info;
  const [OH, OW] = [Math.floor(oh / 2), Math.floor(ow / 2)];
  if (OH === 0 || OW === 0) return null;
  const out = heap.makeOutput([B, OH, OW, co], 'float32');
  const winners = winnersBuffer(heap, out);
  if (winogradTakes(info)) {
    runWinograd(kernels, heap, x, filter, info, epilogue, out, { winners, floorZero });
  } else {
    const zeros = heapZeros(heap, ci);
    try {
      kernels.conv2d_pool(
        heapOffset(heap, x),
        heapOffset(heap, filter),
        heapOffset(heap, out),
        heapOffset(heap, winners),
        heapOffset(heap, zeros),
        epilogue.bias,
        epilogue.act,
        floorZero ? 1 : 0,
        B,
        H,
        W,
        ci,
        oh,
        ow,
        co,
        info.filterHeight,
        info.filterWidth,
        info.strideHeight,
        info.strideWidth,
        info.padInfo.top,
        info.padInfo.left,
      );
    } finally {
      heap.disposeData(zeros.dataId);
    }
  }
  return { out, winners, convShape: [B, oh, ow, co] };
}

/**
 * Runs the module's conv2d over heap tensors x [B, H, W, ci] and filter [fh, fw, ci, co]; the output is
 * [B, oh, ow, co]. The convolutions `winogradTakes` go through Winograd F(2×2, 3×3) (`conv2d_winograd`):
 * 16 multiplies per 2×2 outputs and channel pair instead of 36.
 */
function runConv2d(
  kernels: SimdExports,
  heap: WasmBackendInternals,
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  info: tf.backend_util.Conv2DInfo,
  epilogue = { bias: 0, act: 0 },
): tf.TensorInfo {
  const { batchSize: b, inHeight: H, inWidth: W, inChannels: ci, outHeight: oh, outWidth: ow, outChannels: co } = info;
  const out = heap.makeOutput([b, oh, ow, co], 'float32');
  if (winogradS2Takes(info)) {
    runWinogradS2(kernels, heap, x, filter, info, epilogue, out);
    return out;
  }
  if (winogradTakes(info)) {
    runWinograd(kernels, heap, x, filter, info, epilogue, out);
    return out;
  }
  const zeros = heapZeros(heap, ci);
  try {
    kernels.conv2d(
      heapOffset(heap, x),
      heapOffset(heap, filter),
      heapOffset(heap, out),
      heapOffset(heap, zeros),
      epilogue.bias,
      epilogue.act,
      b,
      H,
      W,
      ci,
      oh,
      ow,
      co,
      info.filterHeight,
      info.filterWidth,
      info.strideHeight,
      info.strideWidth,
      info.dilationHeight,
      info.dilationWidth,
      info.padInfo.top,
      info.padInfo.left,
    );
  } finally {
    heap.disposeData(zeros.dataId);
  }
  return out;
}

/**
 * A forward convolution through the SIMD module (NHWC, any strides, dilations and padding), or null for
 * what it does not take: NCHW, or output channels not a multiple of 4 (XNNPACK, tfjs-backend-wasm's
 * Conv2D, runs those). It runs 2 pixels × 16 output channels in registers straight from the weights.
 * Batch 64, one call, XNNPACK → this, steady state on the bench machine: 3×3 'same' 16×16×16 → 32
 * 4.3 → 2.8 ms, 14×14×16 → 32 4.0 → 2.1 ms, 32×32×3 → 16 2.9 → 2.0 ms, 28×28×1 → 16 0.83 → 0.50 ms;
 * 5×5 28×28×1 → 32 4.0 → 2.1 ms; 8×8×64 → 64 5.9 ms both; nowhere slower. In a cnn32 training epoch
 * (bench:profile) the second layer's forward pass went from 33.6 to 23.5 ms and its input gradient from
 * 37.6 to 23.7 ms. `fused`: FusedConv2D's bias and activation (linear, relu, relu6; others go to XNNPACK),
 * applied in registers before the store, the bias added after the sum as a separate add would.
 */
export function conv2dSimd(
  backend: unknown,
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: ConvAttrs,
  fused?: Epilogue,
): tf.TensorInfo | null {
  const kernels = simdKernels(backend);
  const heap = wasmInternals(backend) as WasmBackendInternals;
  if (
    !kernels ||
    (attrs.dataFormat ?? 'NHWC') !== 'NHWC' ||
    x.dtype !== 'float32' ||
    filter.dtype !== 'float32' ||
    x.shape.length !== 4 ||
    filter.shape.length !== 4
  )
    return null;
  const [, , ci, co] = filter.shape;
  if (co % 4 !== 0 || x.shape[3] !== ci) return null;
  const epilogue = epilogueFor(heap, fused, co);
  if (!epilogue) return null;
  const info = convInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  if (info.outHeight <= 0 || info.outWidth <= 0) return null;
  return runConv2d(kernels, heap, x, filter, info, epilogue);
}

/**
 * The input gradient of a dilation-1 NHWC convolution through the SIMD module: the forward convolution of
 * dy with the filter rotated by 180° and its channel axes swapped (see conv2d-backprop-input.ts for the
 * math), its padding taken as reads outside the image, so nothing is padded or copied but the small filter.
 * A strided convolution's gradient runs one phase of the input at a time (`inputGradientByPhases`), or, where
 * a phase would need cropping, as that convolution over dy spread out with stride − 1 zeros between its
 * pixels: a ResNet's stride-2 3×3 and 1×1 convolutions, which wasm's stock kernel ran as a scalar loop. Null
 * where that does not apply or `conv2dSimd` would not take it.
 */
export function conv2dBackpropInputSimd(
  backend: unknown,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: ConvAttrs & { inputShape: [number, number, number, number] },
): tf.TensorInfo | null {
  const kernels = simdKernels(backend);
  const heap = wasmInternals(backend) as WasmBackendInternals;
  if (
    !kernels ||
    (attrs.dataFormat ?? 'NHWC') !== 'NHWC' ||
    !isOne(attrs.dilations) ||
    dy.dtype !== 'float32' ||
    filter.dtype !== 'float32' ||
    dy.shape.length !== 4 ||
    filter.shape.length !== 4
  )
    return null;
  const [fh, fw, ci, co] = filter.shape;
  const [b] = attrs.inputShape;
  if (ci % 4 !== 0 || attrs.inputShape[3] !== ci || dy.shape[0] !== b || dy.shape[3] !== co) return null;
  if (!isOne(attrs.strides)) {
    const winograd = inputGradientWinogradS2(kernels, heap, dy, filter, attrs);
    if (winograd) return winograd;
    const byPhases = inputGradientByPhases(kernels, heap, dy, filter, attrs);
    if (byPhases) return byPhases;
  }
  const strided = stridedDy(heap, dy, filter.shape as [number, number, number, number], attrs);
  if (!strided) return null;
  const { top, bottom, left, right } = strided.padding;
  const [, oh, ow] = strided.dy.shape;
  const rotated = heap.makeOutput([fh, fw, co, ci], 'float32');
  try {
    const [src, dst] = [heapOffset(heap, filter), heapOffset(heap, rotated)];
    for (let a = 0; a < fh; a++) {
      for (let c = 0; c < fw; c++) {
        const from = ((fh - 1 - a) * fw + (fw - 1 - c)) * ci * co;
        kernels.transpose_tap(src + 4 * from, dst + 4 * (a * fw + c) * co * ci, ci, co);
      }
    }
    const info = convInfo(
      [b, oh, ow, co],
      [fh, fw, co, ci],
      1,
      1,
      [
        [0, 0],
        [top, bottom],
        [left, right],
        [0, 0],
      ],
      undefined,
    );
    return runConv2d(kernels, heap, strided.dy, rotated, info);
  } finally {
    heap.disposeData(rotated.dataId);
    if (strided.dy !== dy) heap.disposeData(strided.dy.dataId);
  }
}

/**
 * A strided convolution's input gradient one phase at a time: the input pixels at rows ≡ p and columns ≡ q
 * (mod the strides) get their gradient from the filter taps ≡ p + top and q + left only, so each phase is a
 * stride-1 convolution of dy with that sub-filter (rotated, channel axes swapped), written into every
 * stride-th pixel of dx. The same sums as spreading dy with zeros (`stridedDy`) without the zeros' products:
 * a 3×3 stride-2 convolution's input gradient takes 9 multiply-adds a pixel pair instead of 36. Null where
 * a phase's padding would need cropping (then `stridedDy`).
 */
function inputGradientByPhases(
  kernels: SimdExports,
  heap: WasmBackendInternals,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: ConvAttrs & { inputShape: [number, number, number, number] },
): tf.TensorInfo | null {
  const [fh, fw, ci, co] = filter.shape;
  const info = inputGradientInfo(filter, attrs);
  const {
    batchSize: B,
    inHeight: H,
    inWidth: W,
    outHeight: oh,
    outWidth: ow,
    strideHeight: sh,
    strideWidth: sw,
  } = info;
  if (dy.shape[1] !== oh || dy.shape[2] !== ow) return null;
  // One axis of a phase: its taps r, r + s, … (J of them), the padding of its stride-1 convolution, its length.
  const axis = (p: number, s: number, f: number, pad: number, size: number, outSize: number) => {
    const r = (p + pad) % s;
    const J = r < f ? Math.ceil((f - r) / s) : 0;
    const before = J - 1 - Math.floor((p + pad) / s);
    const length = Math.ceil((size - p) / s);
    return { r, J, before, after: length - outSize - before + J - 1, length };
  };
  const phases: { p: number; q: number; h: ReturnType<typeof axis>; w: ReturnType<typeof axis> }[] = [];
  for (let p = 0; p < Math.min(sh, H); p++) {
    for (let q = 0; q < Math.min(sw, W); q++) {
      const h = axis(p, sh, fh, info.padInfo.top, H, oh);
      const w = axis(q, sw, fw, info.padInfo.left, W, ow);
      if (h.J && w.J && (h.before < 0 || h.after < 0 || w.before < 0 || w.after < 0)) return null;
      phases.push({ p, q, h, w });
    }
  }
  const dx = heap.makeOutput(attrs.inputShape.slice(), 'float32');
  if (phases.some((ph) => !ph.h.J || !ph.w.J)) heapView(heap, dx).fill(0);
  const zeros = heapZeros(heap, co); // dy's taps outside it, for the direct convolution
  try {
    for (const { p, q, h, w } of phases) {
      if (!h.J || !w.J) continue;
      const sub = heap.makeOutput([h.J, w.J, co, ci], 'float32');
      let part: tf.TensorInfo | null = null;
      try {
        const [src, dst] = [heapOffset(heap, filter), heapOffset(heap, sub)];
        for (let a = 0; a < h.J; a++) {
          for (let c = 0; c < w.J; c++) {
            const from = ((h.r + sh * (h.J - 1 - a)) * fw + (w.r + sw * (w.J - 1 - c))) * ci * co;
            kernels.transpose_tap(src + 4 * from, dst + 4 * (a * w.J + c) * co * ci, ci, co);
          }
        }
        const phaseInfo = convInfo(
          [B, oh, ow, co],
          [h.J, w.J, co, ci],
          1,
          1,
          [
            [0, 0],
            [h.before, h.after],
            [w.before, w.after],
            [0, 0],
          ],
          undefined,
        );
        if (!winogradTakes(phaseInfo)) {
          // Straight into the phase's pixels of dx.
          const { outHeight, outWidth, padInfo } = phaseInfo;
          const [dyAt, subAt, dxAt, zerosAt] = [
            heapOffset(heap, dy),
            heapOffset(heap, sub),
            heapOffset(heap, dx),
            heapOffset(heap, zeros),
          ];
          kernels.conv2d_phase(
            dyAt,
            subAt,
            dxAt,
            zerosAt,
            B,
            oh,
            ow,
            co,
            outHeight,
            outWidth,
            ci,
            h.J,
            w.J,
            padInfo.top,
            padInfo.left,
            H,
            W,
            p,
            q,
            sh,
            sw,
          );
          continue;
        }
        part = runConv2d(kernels, heap, dy, sub, phaseInfo);
        kernels.scatter_phase(
          heapOffset(heap, part),
          heapOffset(heap, dx),
          B,
          h.length,
          w.length,
          H,
          W,
          ci,
          p,
          q,
          sh,
          sw,
        );
      } finally {
        heap.disposeData(sub.dataId);
        if (part) heap.disposeData(part.dataId);
      }
    }
  } finally {
    heap.disposeData(zeros.dataId);
  }
  return dx;
}

/**
 * dy as the stride-1 input gradient takes it, with the padding of that convolution: dy itself for a stride-1
 * convolution; for strides sh × sw, dy spread to [(oh − 1)·sh + 1, (ow − 1)·sw + 1] with zeros between its
 * pixels (a new heap tensor, which the caller frees). Null where the padding would need cropping.
 */
function stridedDy(
  heap: WasmBackendInternals,
  dy: tf.TensorInfo,
  filterShape: [number, number, number, number],
  attrs: ConvAttrs & { inputShape: [number, number, number, number] },
): { dy: tf.TensorInfo; padding: { top: number; bottom: number; left: number; right: number } } | null {
  if (isOne(attrs.strides)) {
    const padding = backpropInputPadding(
      attrs.inputShape,
      filterShape,
      dy.shape,
      attrs.strides,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    return padding ? { dy, padding } : null;
  }
  const info = convInfo(attrs.inputShape, filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  const {
    outHeight: oh,
    outWidth: ow,
    strideHeight: sh,
    strideWidth: sw,
    inHeight: H,
    inWidth: W,
    filterHeight: fh,
    filterWidth: fw,
  } = info;
  if (dy.shape[1] !== oh || dy.shape[2] !== ow) return null;
  const [Hd, Wd] = [(oh - 1) * sh + 1, (ow - 1) * sw + 1];
  const padding = {
    top: fh - 1 - info.padInfo.top,
    bottom: H + info.padInfo.top - Hd,
    left: fw - 1 - info.padInfo.left,
    right: W + info.padInfo.left - Wd,
  };
  if (padding.top < 0 || padding.bottom < 0 || padding.left < 0 || padding.right < 0) return null;
  const [B, , , C] = dy.shape;
  const spread = heap.makeOutput([B, Hd, Wd, C], 'float32');
  const to = heapView(heap, spread) as Float32Array;
  const from = heapView(heap, dy) as Float32Array;
  to.fill(0);
  for (let b = 0; b < B; b++) {
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        const at = ((b * oh + y) * ow + x) * C;
        to.set(from.subarray(at, at + C), ((b * Hd + y * sh) * Wd + x * sw) * C);
      }
    }
  }
  return { dy: spread, padding };
}

/**
 * Max pooling through the SIMD module for 2×2 windows of stride 2 inside the image (2×2 pooling on an
 * even size, or 'valid' on any), channels in fours; null otherwise (XNNPACK). The cpu backend's result
 * exactly (NaN never wins). One call, XNNPACK → this: 64×32×32×16 0.9 → 0.12 ms, 256×28×28×16 (a batch
 * of inference) 2.5 → 0.5 ms.
 */
export function maxPoolSimd(
  backend: unknown,
  x: tf.TensorInfo,
  filterSize: number | [number, number],
  strides: number | [number, number],
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.TensorInfo | null {
  const kernels = simdKernels(backend);
  const heap = wasmInternals(backend) as WasmBackendInternals;
  if (!kernels || x.dtype !== 'float32' || x.shape.length !== 4) return null;
  const info = tf.backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const two = info.filterHeight === 2 && info.filterWidth === 2 && info.strideHeight === 2 && info.strideWidth === 2;
  if (!two || C % 4 !== 0 || info.padInfo.top || info.padInfo.left || 2 * OH > H || 2 * OW > W) return null;
  const out = heap.makeOutput([B, OH, OW, C], 'float32');
  kernels.max_pool_2x2(heapOffset(heap, x), heapOffset(heap, out), B, H, W, C, OH, OW);
  return out;
}

/**
 * An untransposed matrix product a[M, K]·b[K, N] (batch 1) through the SIMD convolution as a 1×1
 * convolution over M pixels of K channels, or null for anything else (transposed operands come here after
 * batch-mat-mul.ts has transposed them; batches, N not a multiple of 4 and other dtypes go to XNNPACK).
 * XNNPACK repacks the weights when the tensor changes, every training step: in the demo CNN's epoch its
 * [64,1568]·[1568,64] took 1.0 ms a call; steady state, one call, XNNPACK → this: that product
 * 0.37 → 0.27 ms, [64,64]·[64,1568] 0.36 → 0.26 ms, [256,784]·[784,128] 1.38 → 1.06 ms,
 * [64,24]·[24,32] 11 → 2 µs.
 */
export function matMulSimd(
  backend: unknown,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  fused?: Epilogue,
): tf.TensorInfo | null {
  const kernels = simdKernels(backend);
  const heap = wasmInternals(backend) as WasmBackendInternals;
  if (
    !kernels ||
    transposeA ||
    transposeB ||
    a.dtype !== 'float32' ||
    b.dtype !== 'float32' ||
    a.shape.length < 2 ||
    b.shape.length < 2
  )
    return null;
  if (sizeOf(a.shape.slice(0, -2)) !== 1 || sizeOf(b.shape.slice(0, -2)) !== 1) return null;
  const [M, K] = a.shape.slice(-2);
  const [K2, N] = b.shape.slice(-2);
  if (K !== K2 || N % 4 !== 0 || M === 0 || K === 0) return null;
  const epilogue = epilogueFor(heap, fused, N);
  if (!epilogue) return null;
  const out = heap.makeOutput(
    [...(a.shape.length >= b.shape.length ? a.shape : b.shape).slice(0, -2), M, N],
    'float32',
  );
  // One image of 1 × M pixels, K channels in and N out, a 1×1 filter: no tap outside, so `zeros` is never read.
  kernels.conv2d(
    heapOffset(heap, a),
    heapOffset(heap, b),
    heapOffset(heap, out),
    heapOffset(heap, a),
    epilogue.bias,
    epilogue.act,
    1,
    1,
    M,
    K,
    1,
    M,
    N,
    1,
    1,
    1,
    1,
    1,
    1,
    0,
    0,
  );
  return out;
}

/**
 * Whether the SIMD `max_pool_grad` takes a max-pooling gradient (max-pool-grad.ts asks): windows that do
 * not overlap and need no padding (2×2 pooling with stride 2 on an even-sized image, the usual case),
 * with the channels a multiple of 4. Exact there: the cpu backend's result bit for bit.
 */
export function simdTakesMaxPoolGrad(info: tf.backend_util.Conv2DInfo): boolean {
  const {
    inHeight: H,
    inWidth: W,
    inChannels: C,
    outHeight: OH,
    outWidth: OW,
    strideHeight: sh,
    strideWidth: sw,
    filterHeight: fh,
    filterWidth: fw,
    padInfo,
  } = info;
  return (
    C % 4 === 0 &&
    sh >= fh &&
    sw >= fw &&
    !padInfo.top &&
    !padInfo.left &&
    (OH - 1) * sh + fh <= H &&
    (OW - 1) * sw + fw <= W
  );
}

/**
 * `a + b` where one side is a bias over the other's last axis (a layer's bias added at every position),
 * through the SIMD module; null for any other addition (the stock kernel). Exact: the same float32 sums.
 * wasm's stock Add broadcasts with a general index loop: 0.7–1.2 ms on the bench's 64×28×28×16.
 */
export function addBiasSimd(backend: unknown, a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo | null {
  const kernels = simdKernels(backend);
  const heap = wasmInternals(backend) as WasmBackendInternals;
  if (!kernels || a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const isBiasOf = (bias: tf.TensorInfo, x: tf.TensorInfo) => {
    const C = x.shape[x.shape.length - 1];
    return (
      x.shape.length >= 2 &&
      bias.shape.length >= 1 &&
      bias.shape.length <= x.shape.length &&
      bias.shape[bias.shape.length - 1] === C &&
      sizeOf(bias.shape) === C &&
      C % 4 === 0
    );
  };
  const [x, bias] = isBiasOf(b, a) ? [a, b] : isBiasOf(a, b) ? [b, a] : [null, null];
  if (!x || !bias) return null;
  const C = x.shape[x.shape.length - 1];
  const out = heap.makeOutput(x.shape.slice(), 'float32');
  kernels.add_bias(heapOffset(heap, x), heapOffset(heap, bias), heapOffset(heap, out), sizeOf(x.shape) / C, C);
  return out;
}

/** The name of the fused relu-gradient kernel (Fair Prune's own; tfjs has none). */
export const RELU_GRAD = 'FairPruneReluGrad';

/** dy · step(x) through the SIMD module, or null where it does not apply (another backend, dtypes or shapes that differ). */
export function reluGradSimd(backend: unknown, dy: tf.TensorInfo, x: tf.TensorInfo): tf.TensorInfo | null {
  const kernels = simdKernels(backend);
  const heap = wasmInternals(backend) as WasmBackendInternals;
  if (
    !kernels ||
    dy.dtype !== 'float32' ||
    x.dtype !== 'float32' ||
    dy.shape.length !== x.shape.length ||
    dy.shape.some((d, i) => d !== x.shape[i])
  )
    return null;
  const out = heap.makeOutput(x.shape.slice(), 'float32');
  kernels.relu_grad(heapOffset(heap, dy), heapOffset(heap, x), heapOffset(heap, out), sizeOf(x.shape));
  return out;
}

/**
 * Relu's gradient as one kernel on wasm: tfjs computes dy · step(x) as a Step and a Multiply, two passes
 * over every activation of the layer (about 7 ms of a cnn32 epoch). The gradient is registered over
 * tfjs-core's (the registry is global; this process trains only through Fair Prune) and runs the fused
 * kernel only where it applies, tfjs's own formula everywhere else (other backends, other dtypes), with
 * the same result: the cpu backend's Step, then the same float32 products.
 */
function registerReluGradient(): void {
  tf.registerKernel({
    kernelName: RELU_GRAD,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const out = reluGradSimd(backend, inputs.dy as tf.TensorInfo, inputs.x as tf.TensorInfo);
      if (!out) throw new Error(`${RELU_GRAD}: called where it does not apply`);
      return out;
    },
  });
  tf.registerGradient({
    kernelName: tf.Relu,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => {
      const [x] = saved;
      const dyT = dy as tf.Tensor;
      const fused =
        tf.getBackend() === 'wasm' &&
        simdKernels(tf.backend()) !== null &&
        dyT.dtype === 'float32' &&
        x.dtype === 'float32' &&
        tf.util.arraysEqual(dyT.shape, x.shape);
      return {
        x: () =>
          fused
            ? (tf.engine().runKernel(RELU_GRAD, { dy: dyT, x }) as tf.Tensor)
            : tf.mul(dyT, tf.cast(tf.step(x), 'float32')),
      };
    },
  });
}

/** Registers the SIMD kernels for wasm in front of those registered before them. Idempotent; other backends are left alone. */
export function registerSimdKernels(backendName: string): void {
  if (backendName !== 'wasm') return;
  if (!tf.getKernel(RELU_GRAD, backendName)) registerReluGradient();
  registerRawInFrontOfStock<BackpropFilterAttrs>(
    tf.Conv2DBackpropFilter,
    backendName,
    'simd',
    ({ inputs, backend, attrs }) =>
      conv2dBackpropFilterSimd(
        backend,
        inputs.x as tf.TensorInfo,
        inputs.dy as tf.TensorInfo,
        attrs.filterShape,
        attrs.strides,
        attrs.pad,
        attrs.dataFormat ?? 'NHWC',
        attrs.dimRoundingMode,
      ),
  );
  registerRawInFrontOfStock<ConvAttrs>(tf.Conv2D, backendName, 'simd', ({ inputs, backend, attrs }) =>
    conv2dSimd(backend, inputs.x as tf.TensorInfo, inputs.filter as tf.TensorInfo, attrs),
  );
  registerRawInFrontOfStock<ConvAttrs & { inputShape: [number, number, number, number] }>(
    tf.Conv2DBackpropInput,
    backendName,
    'simd',
    ({ inputs, backend, attrs }) =>
      conv2dBackpropInputSimd(backend, inputs.dy as tf.TensorInfo, inputs.filter as tf.TensorInfo, attrs),
  );
  registerRawInFrontOfStock<{ transposeA: boolean; transposeB: boolean }>(
    tf.BatchMatMul,
    backendName,
    'simd',
    ({ inputs, backend, attrs }) =>
      matMulSimd(backend, inputs.a as tf.TensorInfo, inputs.b as tf.TensorInfo, attrs.transposeA, attrs.transposeB),
  );
  // The fused forms, as a model's inference runs (tfjs-layers fuses bias and activation when not training).
  const epilogue = (inputs: tf.NamedTensorInfoMap, activation: string): Epilogue | undefined =>
    inputs.preluActivationWeights ? undefined : { bias: inputs.bias as tf.TensorInfo | undefined, activation };
  registerRawInFrontOfStock<ConvAttrs & { activation: string }>(
    tf.FusedConv2D,
    backendName,
    'simd',
    ({ inputs, backend, attrs }) => {
      const e = epilogue(inputs, attrs.activation);
      return e ? conv2dSimd(backend, inputs.x as tf.TensorInfo, inputs.filter as tf.TensorInfo, attrs, e) : null;
    },
  );
  registerRawInFrontOfStock<{ transposeA: boolean; transposeB: boolean; activation: string }>(
    tf._FusedMatMul,
    backendName,
    'simd',
    ({ inputs, backend, attrs }) => {
      const e = epilogue(inputs, attrs.activation);
      return e
        ? matMulSimd(
            backend,
            inputs.a as tf.TensorInfo,
            inputs.b as tf.TensorInfo,
            attrs.transposeA,
            attrs.transposeB,
            e,
          )
        : null;
    },
  );
  registerRawInFrontOfStock<{
    filterSize: number | [number, number];
    strides: number | [number, number];
    pad: 'valid' | 'same' | number;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
  }>(tf.MaxPool, backendName, 'simd', ({ inputs, backend, attrs }) =>
    maxPoolSimd(backend, inputs.x as tf.TensorInfo, attrs.filterSize, attrs.strides, attrs.pad, attrs.dimRoundingMode),
  );
  registerRawInFrontOfStock(tf.Add, backendName, 'simd', ({ inputs, backend }) =>
    addBiasSimd(backend, inputs.a as tf.TensorInfo, inputs.b as tf.TensorInfo),
  );
}
