/**
 * Fair Prune's wasm SIMD kernels (src/core/kernels/simd): the committed module is what its source
 * builds to and owns nothing but code, and each kernel equals the formulation it stands in front of.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawnSync } from 'child_process';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { initBackend } from '../../src/core/backend';
import { conv2dBackpropFilterViaOps } from '../../src/core/kernels/conv2d-backprop-filter';
import {
  addBiasSimd,
  conv2dBackpropFilterSimd,
  conv2dPoolSimd,
  conv2dBackpropInputSimd,
  conv2dSimd,
  findSimdKernels,
  matMulSimd,
  maxPoolSimd,
  reluGradSimd,
  simdKernels,
  simdTakesMaxPoolGrad,
  winogradTakes,
  winograd4Takes,
  winogradS2Takes,
} from '../../src/core/kernels/simd-kernels';
import { maxPoolGradOnHeap } from '../../src/core/kernels/max-pool-grad';
import { sumLeadingAxesOnHeap } from '../../src/core/kernels/sum';
import { Rng } from '../../src/core/rng';
import { heapOffset, heapView, wasmInternals } from '../../src/core/kernels/wasm-heap';
import { relDiff } from '../helpers';

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const committed = path.join(repoRoot, 'src', 'core', 'kernels', 'simd', 'kernels.wasm');

/** The ids of a wasm binary's sections, in order. */
function sectionIds(bytes: Buffer): number[] {
  const ids: number[] = [];
  let i = 8; // magic and version
  while (i < bytes.length) {
    const id = bytes[i++];
    let size = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[i++];
      size |= (b & 0x7f) << shift;
      shift += 7;
      if (!(b & 0x80)) break;
    }
    ids.push(id);
    i += size;
  }
  return ids;
}

test('the SIMD module: found from the tests, imports only a memory, exports only kernels, has no data or start', () => {
  assert.equal(findSimdKernels(), committed);
  const bytes = fs.readFileSync(committed);
  const module = new WebAssembly.Module(bytes);
  assert.deepEqual(WebAssembly.Module.imports(module), [{ module: 'env', name: 'memory', kind: 'memory' }]);
  assert.deepEqual(
    WebAssembly.Module.exports(module).map((e) => `${e.name}:${e.kind}`),
    [
      'conv2d_filter_grad:function',
      'conv2d_filter_grad_pooled:function',
      'conv2d:function',
      'conv2d_phase:function',
      'winograd_filter:function',
      'conv2d_winograd:function',
      'conv2d_filter_grad_winograd:function',
      'winograd4_filter:function',
      'conv2d_winograd4:function',
      'conv2d_filter_grad_winograd4:function',
      'max_pool_2x2:function',
      'max_pool_grad:function',
      'conv2d_pool:function',
      'max_pool_2x2_winners:function',
      'max_pool_2x2_winners_grad:function',
      'add_bias:function',
      'sum_rows:function',
      'relu_grad:function',
      'adam_update:function',
      'bn_moments:function',
      'bn_forward:function',
      'bn_add:function',
      'bn_backward:function',
      'scatter_phase:function',
      'transpose_tap:function',
      'add_act:function',
      'add_masked:function',
      'global_avg_pool:function',
      'relu6_grad:function',
      'depthwise_conv2d:function',
      'depthwise_conv2d_input_grad:function',
      'depthwise_conv2d_filter_grad:function',
      'winograd_s2_filter:function',
      'conv2d_winograd_s2:function',
      'conv2d_filter_grad_winograd_s2:function',
      'conv2d_input_grad_winograd_s2:function',
    ],
  );
  const ids = sectionIds(bytes);
  assert.ok(!ids.includes(11), 'no data section: nothing of its own is written into the heap it shares');
  assert.ok(!ids.includes(8), 'no start function');
});

test('the committed SIMD module is what scripts/build-simd.sh builds from kernels.c (where clang-19 is installed)', (t) => {
  if (spawnSync('clang-19', ['--version']).status !== 0) {
    t.skip('clang-19 is not installed here (apt-get install clang-19 lld-19)');
    return;
  }
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fairprune-simd-')), 'kernels.wasm');
  const r = spawnSync('bash', [path.join(repoRoot, 'scripts', 'build-simd.sh'), out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.ok(
    fs.readFileSync(out).equals(fs.readFileSync(committed)),
    'rebuild src/core/kernels/simd/kernels.wasm: bash scripts/build-simd.sh',
  );
});

interface FilterCase {
  x: [number, number, number, number];
  f: [number, number, number, number];
  s: number | [number, number];
  pad: 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];
}

test('filter gradient through the SIMD module = the convolution formulation (channels 1-16, strides, paddings, filter sizes)', async () => {
  const info = await initBackend('wasm');
  assert.ok(simdKernels(tf.backend()), 'the module loads on the wasm backend');
  assert.ok(!info.notes.some((n) => /SIMD kernels did not load/.test(n)), 'and the backend says nothing is missing');
  const cases: FilterCase[] = [
    { x: [4, 32, 32, 3], f: [3, 3, 3, 16], s: 1, pad: 'same' }, // the first layer of a CNN on colour images
    { x: [3, 16, 16, 16], f: [3, 3, 16, 32], s: 1, pad: 'same' },
    { x: [2, 9, 11, 1], f: [3, 3, 1, 4], s: 1, pad: 'valid' },
    { x: [2, 15, 16, 5], f: [3, 3, 5, 12], s: 2, pad: 'same' }, // channels over a block of 4, 12 = not a block of 16
    { x: [2, 15, 15, 2], f: [3, 3, 2, 20], s: 2, pad: 'valid' },
    {
      x: [2, 14, 13, 3],
      f: [4, 4, 3, 8],
      s: [2, 1],
      pad: [
        [0, 0],
        [1, 2],
        [0, 1],
        [0, 0],
      ],
    },
    { x: [1, 9, 10, 4], f: [5, 5, 4, 4], s: 3, pad: 'same' },
    { x: [2, 7, 7, 8], f: [1, 1, 8, 8], s: 1, pad: 'valid' },
    { x: [2, 8, 7, 6], f: [2, 3, 6, 16], s: [1, 2], pad: 1 },
    { x: [1, 5, 5, 2], f: [5, 5, 2, 4], s: 1, pad: 'valid' }, // the filter as large as the input
    // Winograd F(3×3, 2×2) (3×3, stride 1, channels ≥ 8 in fours): odd output sizes (dy tiles cut at the
    // edges), 'valid', uneven explicit padding, tiles not a multiple of a block (40 = 32 + 8), 64 channels.
    { x: [2, 9, 11, 8], f: [3, 3, 8, 16], s: 1, pad: 'valid' },
    {
      x: [3, 7, 23, 12],
      f: [3, 3, 12, 16],
      s: 1,
      pad: [
        [0, 0],
        [2, 0],
        [0, 1],
        [0, 0],
      ],
    },
    { x: [1, 8, 8, 64], f: [3, 3, 64, 64], s: 1, pad: 'same' },
    // F(3×3, 4×4) (16 channels and more both sides): dy tiles cut at odd edges (7 × 9), uneven padding; ResNet-20's
    // 16 and 32 channels (the kernel's sizes as constants) over more tiles than a batch of them, which ends inside
    // an image (75 tiles, 80).
    { x: [2, 9, 11, 16], f: [3, 3, 16, 16], s: 1, pad: 'valid' },
    { x: [3, 18, 17, 16], f: [3, 3, 16, 16], s: 1, pad: 'same' },
    { x: [5, 14, 13, 32], f: [3, 3, 32, 32], s: 1, pad: 'same' },
    {
      x: [2, 10, 13, 16],
      f: [3, 3, 16, 20],
      s: 1,
      pad: [
        [0, 0],
        [2, 0],
        [0, 1],
        [0, 0],
      ],
    },
    // The stride-2 Winograd form (3×3, stride 2, 16 channels or more in, in fours): a ResNet's downsampling layer,
    // odd output sizes with padding 1 before (13 × 11 'same'), uneven explicit padding, 'valid'.
    { x: [2, 16, 16, 32], f: [3, 3, 32, 64], s: 2, pad: 'same' },
    { x: [2, 13, 11, 32], f: [3, 3, 32, 16], s: 2, pad: 'same' },
    { x: [2, 15, 13, 16], f: [3, 3, 16, 32], s: 2, pad: 'same' }, // 16 in: a ResNet's downsampling, odd sizes
    {
      x: [2, 12, 9, 36],
      f: [3, 3, 36, 8],
      s: 2,
      pad: [
        [0, 0],
        [2, 1],
        [0, 2],
        [0, 0],
      ],
    },
    { x: [1, 10, 10, 32], f: [3, 3, 32, 16], s: 2, pad: 'valid' },
  ];
  cases.forEach((c, i) => {
    tf.tidy(() => {
      const rng = new Rng(300 + i);
      const x = tf.tensor4d(
        Float32Array.from({ length: c.x.reduce((a, b) => a * b, 1) }, () => rng.normal()),
        c.x,
      );
      const outShape = tf.conv2d(x, tf.zeros(c.f) as tf.Tensor4D, c.s, c.pad).shape;
      const dy = tf.tensor4d(
        Float32Array.from({ length: outShape.reduce((a, b) => a * b, 1) }, () => rng.normal()),
        outShape as [number, number, number, number],
      );
      const before = tf.memory().numTensors;
      const info = conv2dBackpropFilterSimd(tf.backend(), x, dy, c.f, c.s, c.pad);
      assert.ok(info, `case ${i}: taken by the SIMD kernel`);
      const got = tf.engine().makeTensorFromTensorInfo(info);
      assert.equal(tf.memory().numTensors, before + 1, 'only its output');
      assert.deepEqual(got.shape, c.f);
      const d = relDiff(got.dataSync(), conv2dBackpropFilterViaOps(x, dy, c.f, c.s, c.pad).dataSync());
      assert.ok(d < 1e-5, `case ${i} ${JSON.stringify(c)}: ${d}`);
      const winograd =
        c.f[0] === 3 && c.f[1] === 3 && c.s === 1 && c.f[2] >= 8 && c.f[2] % 4 === 0 && c.f[2] * c.f[3] >= 128;
      const conv = tf.backend_util.computeConv2DInfo(c.x, c.f, c.s, 1, c.pad, undefined, false, 'channelsLast');
      assert.equal(winogradTakes(conv), winograd, `case ${i}: Winograd?`);
      assert.equal(winograd4Takes(conv), winograd && c.f[2] >= 16 && c.f[3] >= 16, `case ${i}: F(3×3, 4×4)?`);
      const s2 = c.f[0] === 3 && c.f[1] === 3 && c.s === 2 && c.f[2] >= 16 && c.f[2] % 4 === 0 && c.f[3] % 4 === 0;
      assert.equal(winogradS2Takes(conv), s2, `case ${i}: the stride-2 Winograd form?`);
    });
  });
  tf.tidy(() => {
    const x = tf.zeros([1, 6, 6, 2]) as tf.Tensor4D;
    assert.equal(
      conv2dBackpropFilterSimd(tf.backend(), x, tf.zeros([1, 4, 4, 3]) as tf.Tensor4D, [3, 3, 2, 3], 1, 'valid'),
      null,
      '3 output channels: not a multiple of 4',
    );
    assert.equal(
      conv2dBackpropFilterSimd(
        tf.backend(),
        tf.zeros([1, 2, 6, 6]),
        tf.zeros([1, 4, 4, 4]),
        [3, 3, 2, 4],
        1,
        'valid',
        'NCHW',
      ),
      null,
      'NCHW',
    );
  });
});

test("a CNN layer's filter gradient on wasm (tf.grad, the registered kernels) = the cpu backend", async () => {
  const run = () =>
    tf.tidy(() => {
      const rng = new Rng(5);
      const x = tf.tensor4d(
        Float32Array.from({ length: 4 * 12 * 12 * 3 }, () => rng.normal()),
        [4, 12, 12, 3],
      );
      const w = tf.tensor4d(
        Float32Array.from({ length: 3 * 3 * 3 * 8 }, () => rng.normal()),
        [3, 3, 3, 8],
      );
      const up = tf.tensor4d(
        Float32Array.from({ length: 4 * 6 * 6 * 8 }, () => rng.normal()),
        [4, 6, 6, 8],
      );
      return tf
        .grad((f: tf.Tensor) => tf.sum(tf.mul(tf.relu(tf.conv2d(x, f as tf.Tensor4D, 2, 'same')), up)))(w)
        .dataSync();
    });
  await tf.setBackend('cpu');
  const cpu = run();
  await initBackend('wasm');
  const wasm = run();
  assert.ok(relDiff(wasm, cpu) < 1e-5, `${relDiff(wasm, cpu)}`);
});

interface ConvCase {
  x: [number, number, number, number];
  f: [number, number, number, number];
  s: number | [number, number];
  pad: FilterCase['pad'];
  d?: number | [number, number];
  cropped?: true;
}

test('convolution and its input gradient through the SIMD module = the cpu backend (strides, dilations, paddings, channel blocks, odd widths)', async () => {
  const cases: ConvCase[] = [
    { x: [3, 16, 16, 16], f: [3, 3, 16, 32], s: 1, pad: 'same' }, // the bench's second layer
    { x: [2, 14, 14, 16], f: [3, 3, 16, 32], s: 1, pad: 'same' },
    { x: [2, 9, 11, 8], f: [3, 3, 8, 4], s: 1, pad: 'valid' }, // 4 outputs: one SIMD vector; 11 wide: an odd pixel at the end
    { x: [2, 15, 16, 12], f: [3, 3, 12, 12], s: 2, pad: 'same' }, // 12 = a block of 8 and one of 4
    { x: [2, 15, 15, 8], f: [3, 3, 8, 20], s: 2, pad: 'valid' },
    {
      x: [2, 14, 13, 8],
      f: [4, 4, 8, 8],
      s: [2, 1],
      pad: [
        [0, 0],
        [1, 2],
        [0, 1],
        [0, 0],
      ],
    },
    { x: [1, 9, 10, 9], f: [5, 5, 9, 4], s: 3, pad: 'same' }, // 9 input channels: not a multiple of 4
    { x: [2, 7, 7, 8], f: [1, 1, 8, 24], s: 1, pad: 'valid' },
    { x: [2, 8, 8, 16], f: [3, 3, 16, 32], s: 2, pad: 'same' }, // a ResNet's downsampling convolution (forward: stride-2 Winograd)
    { x: [2, 8, 8, 16], f: [1, 1, 16, 32], s: 2, pad: 'same' }, // and its projection shortcut
    { x: [2, 9, 11, 8], f: [3, 3, 8, 12], s: [2, 3], pad: 'same' }, // phases of uneven lengths (9 = 5 + 4 rows)
    { x: [2, 12, 12, 3], f: [3, 3, 3, 16], s: 1, pad: 'same' }, // a colour image's first layer (its input gradient has 3 outputs: XNNPACK)
    { x: [2, 10, 9, 1], f: [5, 5, 1, 8], s: 1, pad: 'same' }, // a grey image's
    { x: [2, 12, 12, 8], f: [3, 3, 8, 16], s: 1, pad: 'same', d: 2 }, // dilation: taps one apart
    { x: [1, 5, 5, 8], f: [5, 5, 8, 4], s: 1, pad: 'valid' }, // the filter as large as the input
    { x: [2, 6, 7, 8], f: [2, 3, 8, 8], s: 1, pad: 2, cropped: true }, // padding wider than the filter: its input gradient crops, which the SIMD path leaves to XNNPACK
    // Winograd F(2×2, 3×3): odd output sizes (a last tile of one row or column), 'valid', uneven explicit
    // padding, more tiles in a row than a block holds (23 wide: 12 tiles, blocks of 8), 64 channels.
    { x: [2, 9, 11, 8], f: [3, 3, 8, 16], s: 1, pad: 'valid' },
    {
      x: [2, 7, 23, 12],
      f: [3, 3, 12, 16],
      s: 1,
      pad: [
        [0, 0],
        [2, 0],
        [0, 1],
        [0, 0],
      ],
    },
    { x: [1, 8, 8, 64], f: [3, 3, 64, 64], s: 1, pad: 'same' },
    // F(4×4, 3×3) (16 channels and more both sides): partial tiles at odd edges, uneven padding, more tiles in
    // a row than a block holds (43 wide: 11 tiles).
    { x: [2, 9, 11, 16], f: [3, 3, 16, 16], s: 1, pad: 'valid' },
    {
      x: [2, 7, 43, 16],
      f: [3, 3, 16, 20],
      s: 1,
      pad: [
        [0, 0],
        [2, 0],
        [0, 1],
        [0, 0],
      ],
    },
    // The stride-2 Winograd form: odd output sizes and padding 1 before ('same' 13 × 11: 7 × 6 out), more tiles
    // than a block, uneven explicit padding, and 'valid' with a last input row and column no tile reaches (its
    // input gradient by phases).
    { x: [2, 13, 11, 32], f: [3, 3, 32, 16], s: 2, pad: 'same' },
    { x: [3, 16, 16, 32], f: [3, 3, 32, 64], s: 2, pad: 'same' },
    {
      x: [2, 12, 9, 32],
      f: [3, 3, 32, 8],
      s: 2,
      pad: [
        [0, 0],
        [2, 1],
        [0, 2],
        [0, 0],
      ],
    },
    { x: [1, 10, 10, 32], f: [3, 3, 32, 16], s: 2, pad: 'valid' },
  ];
  const rng = new Rng(41);
  const values = (shape: number[]) =>
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
  const data = cases.map((c) => ({ x: values(c.x), f: values(c.f) }));
  // Forward and both gradients of sum(conv · up), with `up` fixed: the registered kernels, as training runs them.
  const run = () =>
    cases.map(
      (c, i) =>
        tf.tidy(() => {
          const x = tf.tensor4d(data[i].x, c.x);
          const f = tf.tensor4d(data[i].f, c.f);
          const y = tf.conv2d(x, f, c.s, c.pad, 'NHWC', c.d ?? 1);
          const up = tf.tensor4d(
            Float32Array.from({ length: y.size }, (_, j) => Math.sin(j)),
            y.shape as [number, number, number, number],
          );
          if (c.d) return [y.dataSync(), new Float32Array(0), new Float32Array(0)]; // tfjs has no gradient for dilated convolutions
          const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
            tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad, 'NHWC', c.d ?? 1), up)),
          )([x, f]);
          return [y, dx, df].map((t) => t.dataSync());
        }) as Float32Array[],
    );
  await tf.setBackend('cpu');
  const cpu = run();
  await initBackend('wasm');
  const before = tf.memory().numTensors;
  const wasm = run();
  assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
  cases.forEach((c, i) => {
    ['forward', 'input gradient', 'filter gradient'].forEach((what, k) => {
      if (!cpu[i][k].length) return;
      const d = relDiff(wasm[i][k], cpu[i][k]);
      assert.ok(d < 2e-5, `case ${i} ${JSON.stringify(c)}: ${what} differs by ${d}`);
    });
    tf.tidy(() => {
      // Which of them the SIMD module took: the forward pass wherever the channels allow, the input
      // gradient (a convolution from the output channels to the input channels; a strided one's dy spread
      // out with zeros) where the dilation is 1 and the channels allow it the other way round.
      const x = tf.tensor4d(data[i].x, c.x);
      const f = tf.tensor4d(data[i].f, c.f);
      const fwd = conv2dSimd(tf.backend(), x, f, { strides: c.s, pad: c.pad, dilations: c.d });
      assert.ok(fwd, `case ${i}: forward taken`);
      const y = tf.engine().makeTensorFromTensorInfo(fwd);
      const unit = (s: number | [number, number] | undefined) =>
        s === undefined || s === 1 || (Array.isArray(s) && s[0] === 1 && s[1] === 1);
      const bwd = conv2dBackpropInputSimd(tf.backend(), y, f, {
        strides: c.s,
        pad: c.pad,
        dilations: c.d,
        inputShape: c.x,
      });
      assert.equal(bwd !== null, unit(c.d) && c.x[3] % 4 === 0 && !c.cropped, `case ${i}: input gradient taken?`);
      const info = tf.backend_util.computeConv2DInfo(c.x, c.f, c.s, c.d ?? 1, c.pad, undefined, false, 'channelsLast');
      const winograd = c.f[0] === 3 && c.f[1] === 3 && unit(c.s) && unit(c.d) && c.f[2] >= 8 && c.f[2] * c.f[3] >= 128;
      assert.equal(winogradTakes(info), winograd, `case ${i}: Winograd for the forward pass?`);
      assert.equal(winograd4Takes(info), winograd && c.f[2] >= 16 && c.f[3] >= 16, `case ${i}: F(4×4, 3×3)?`);
      const s2 = c.f[0] === 3 && c.f[1] === 3 && c.s === 2 && unit(c.d) && c.f[2] >= 16 && c.f[2] % 4 === 0;
      assert.equal(winogradS2Takes(info), s2, `case ${i}: the stride-2 Winograd form?`);
      if (bwd) tf.engine().makeTensorFromTensorInfo(bwd);
    });
  });
  tf.tidy(() => {
    const x = tf.zeros([1, 6, 6, 8]) as tf.Tensor4D;
    assert.equal(
      conv2dSimd(tf.backend(), x, tf.zeros([3, 3, 8, 6]), { strides: 1, pad: 'valid' }),
      null,
      '6 output channels: not a multiple of 4',
    );
    assert.equal(
      conv2dSimd(tf.backend(), tf.zeros([1, 8, 6, 6]), tf.zeros([3, 3, 8, 8]), {
        strides: 1,
        pad: 'valid',
        dataFormat: 'NCHW',
      }),
      null,
      'NCHW',
    );
  });
});

test('fused convolution and matrix product (bias, relu, relu6), as inference runs them, through the SIMD module = the cpu backend; other activations go to XNNPACK', async () => {
  const rng = new Rng(43);
  const values = (shape: number[]) =>
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
  const convs: {
    x: [number, number, number, number];
    f: [number, number, number, number];
    s?: number;
    activation: 'linear' | 'relu' | 'relu6' | 'elu';
    bias: boolean;
    simd: boolean;
  }[] = [
    { x: [2, 10, 10, 3], f: [3, 3, 3, 16], activation: 'relu', bias: true, simd: true },
    { x: [2, 9, 11, 32], f: [3, 3, 32, 12], s: 2, activation: 'relu6', bias: true, simd: true }, // the stride-2 Winograd
    { x: [2, 10, 10, 32], f: [3, 3, 32, 8], s: 2, activation: 'relu', bias: false, simd: true }, // form's epilogue
    { x: [2, 7, 9, 8], f: [3, 3, 8, 12], activation: 'relu6', bias: true, simd: true },
    { x: [2, 7, 9, 8], f: [3, 3, 8, 8], activation: 'linear', bias: false, simd: true },
    { x: [2, 7, 9, 8], f: [3, 3, 8, 16], activation: 'relu6', bias: true, simd: true }, // Winograd's epilogue
    { x: [2, 7, 9, 16], f: [3, 3, 16, 16], activation: 'relu', bias: false, simd: true },
    { x: [2, 7, 9, 8], f: [3, 3, 8, 8], activation: 'elu', bias: true, simd: false },
  ];
  const mats: {
    a: [number, number];
    b: [number, number];
    activation: 'linear' | 'relu' | 'relu6' | 'elu';
    bias: boolean;
    simd: boolean;
  }[] = [
    { a: [33, 40], b: [40, 64], activation: 'relu', bias: true, simd: true },
    { a: [5, 7], b: [7, 4], activation: 'relu6', bias: true, simd: true },
    { a: [5, 7], b: [7, 10], activation: 'relu', bias: true, simd: false }, // 10 outputs
    { a: [5, 7], b: [7, 8], activation: 'elu', bias: false, simd: false },
  ];
  // Scaled so that relu6 clips some outputs at 6 and relu zeroes others.
  const convData = convs.map((c) => ({ x: values(c.x).map((v) => 3 * v), f: values(c.f), bias: values([c.f[3]]) }));
  const matData = mats.map((c) => ({ a: values(c.a).map((v) => 3 * v), b: values(c.b), bias: values([c.b[1]]) }));
  const run = () =>
    [
      ...convs.map((c, i) =>
        tf.fused.conv2d({
          x: tf.tensor4d(convData[i].x, c.x),
          filter: tf.tensor4d(convData[i].f, c.f),
          strides: c.s ?? 1,
          pad: 'same',
          bias: c.bias ? tf.tensor1d(convData[i].bias) : undefined,
          activation: c.activation,
        }),
      ),
      ...mats.map((c, i) =>
        tf.fused.matMul({
          a: tf.tensor2d(matData[i].a, c.a),
          b: tf.tensor2d(matData[i].b, c.b),
          bias: c.bias ? tf.tensor1d(matData[i].bias) : undefined,
          activation: c.activation,
        }),
      ),
    ].map((t) => t.dataSync());
  await tf.setBackend('cpu');
  const cpu = tf.tidy(run);
  await initBackend('wasm');
  const wasm = tf.tidy(run);
  const all = [...convs, ...mats];
  all.forEach((c, i) => {
    assert.ok(relDiff(wasm[i], cpu[i]) < 1e-5, `${JSON.stringify(c)}: ${relDiff(wasm[i], cpu[i])}`);
    if (c.activation === 'relu6')
      assert.ok(cpu[i].some((v) => v === 6) && cpu[i].some((v) => v === 0), 'relu6 clipped at both ends');
  });
  tf.tidy(() => {
    convs.forEach((c, i) => {
      const e = { bias: c.bias ? tf.tensor1d(convData[i].bias) : undefined, activation: c.activation };
      const r = conv2dSimd(
        tf.backend(),
        tf.tensor4d(convData[i].x, c.x),
        tf.tensor4d(convData[i].f, c.f),
        { strides: c.s ?? 1, pad: 'same' },
        e,
      );
      assert.equal(r !== null, c.simd, `conv ${i}: SIMD?`);
      if (r) tf.engine().makeTensorFromTensorInfo(r); // freed with the tidy
    });
    mats.forEach((c, i) => {
      const e = { bias: c.bias ? tf.tensor1d(matData[i].bias) : undefined, activation: c.activation };
      const r = matMulSimd(
        tf.backend(),
        tf.tensor2d(matData[i].a, c.a),
        tf.tensor2d(matData[i].b, c.b),
        false,
        false,
        e,
      );
      assert.equal(r !== null, c.simd, `matMul ${i}: SIMD?`);
      if (r) tf.engine().makeTensorFromTensorInfo(r);
    });
  });
});

test("relu gradient: one SIMD pass on wasm, the cpu backend's dy · step(x) bit for bit (zeros, negative zero, NaN, infinities)", async () => {
  const rng = new Rng(47);
  const n = 4 * 9 + 3; // a tail after the SIMD blocks
  const x = Float32Array.from({ length: n }, () => rng.normal());
  const dy = Float32Array.from({ length: n }, () => rng.normal());
  x.set([0, -0, NaN, Infinity, -Infinity, 1e-30, -1e-30], 0);
  dy.set([5, 5, 5, Infinity, Infinity, NaN, -2], 0);
  x.set([NaN, 0], n - 2);
  const run = () =>
    tf.tidy(() => {
      const xt = tf.tensor2d(x, [3, 13]);
      const dyt = tf.tensor2d(dy, [3, 13]);
      const viaGrad = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.relu(v), dyt)))(xt);
      return Array.from(viaGrad.dataSync());
    });
  await tf.setBackend('cpu');
  const cpu = run();
  await initBackend('wasm');
  const before = tf.memory().numTensors;
  const wasm = run();
  assert.equal(tf.memory().numTensors, before);
  wasm.forEach((v, i) =>
    assert.ok(Object.is(v, cpu[i]), `entry ${i} (x ${x[i]}, dy ${dy[i]}): wasm ${v}, cpu ${cpu[i]}`),
  );
  tf.tidy(() => {
    const info = reluGradSimd(tf.backend(), tf.tensor2d(dy, [3, 13]), tf.tensor2d(x, [3, 13]));
    assert.ok(info, 'the SIMD kernel takes float32 of one shape');
    assert.deepEqual(Array.from(tf.engine().makeTensorFromTensorInfo(info).dataSync()), cpu);
    assert.equal(reluGradSimd(tf.backend(), tf.ones([4]), tf.ones([2, 2])), null, "shapes that differ: tfjs's formula");
  });
});

test("batch normalization's gradient through its relu or relu6: the mask bn_backward works out from x is bn_forward's output's, bit for bit (on the edges, NaN, infinities)", async () => {
  await initBackend('wasm');
  const heap = wasmInternals(tf.backend())!;
  const k = simdKernels(tf.backend())!;
  const rng = new Rng(53);
  const rows = 53; // three blocks of 16 and a tail
  const C = 20; // 16 channels, then 4
  const mean = Float32Array.from({ length: C }, () => rng.normal());
  const inv = Float32Array.from({ length: C }, () => 0.5 + rng.next());
  const gamma = Float32Array.from({ length: C }, (_, c) => (c % 3 === 1 ? -1 : 1) * (0.5 + rng.next()));
  const scale = Float32Array.from(inv, (v, c) => v * gamma[c]);
  const beta = Float32Array.from({ length: C }, () => rng.normal());
  const bits = new Uint32Array(1);
  const step = (v: number, by: number) => {
    const f = new Float32Array(bits.buffer);
    f[0] = v;
    bits[0] += by * (f[0] < 0 ? -1 : 1);
    return f[0];
  };
  // x where (x − mean)·scale + beta is about 0 or 6, and the floats either side; NaN and infinities.
  const x = new Float32Array(rows * C);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < C; c++) {
      const edge = Math.fround(mean[c] + ((r % 2 ? 6 : 0) - beta[c]) / scale[c]);
      const special = [NaN, Infinity, -Infinity, -0][r % 9];
      x[r * C + c] = r % 9 < 4 && r > 40 ? special : r < 30 ? step(edge, (r % 5) - 2) : rng.normal() * 4;
    }
  const dy = Float32Array.from({ length: rows * C }, () => rng.normal());
  for (const act of [1, 2]) {
    tf.tidy(() => {
      const on = (v: Float32Array) => tf.tensor1d(v);
      const [xt, meanT, invT, gammaT, scaleT, betaT, dyT] = [x, mean, inv, gamma, scale, beta, dy].map(on);
      const y = tf.zeros([rows * C]);
      const at = (t: tf.Tensor) => heapOffset(heap, t);
      k.bn_forward(at(xt), at(meanT), at(scaleT), at(betaT), at(y), rows, C, act);
      const yv = heapView(heap, y);
      const passed = dy.map((d, i) => (yv[i] > 0 && (act === 1 || yv[i] < 6) ? d : 0));
      assert.ok(passed.some((d) => d === 0) && passed.some((d) => d !== 0), 'the mask both passes and stops');
      const grads = (g: tf.Tensor, a: number) => {
        const [dx, dgamma, dbeta, dbias, scratch] = [rows * C, C, C, C, 8 * C].map((n) => tf.zeros([n]));
        const args = [at(xt), at(meanT), at(invT), at(gammaT), at(scaleT), at(betaT), at(dx)] as const;
        k.bn_backward(at(g), ...args, at(dgamma), at(dbeta), at(dbias), rows, C, a, at(scratch));
        return [dx, dgamma, dbeta, dbias].map((t) => new Uint32Array(Float32Array.from(heapView(heap, t)).buffer));
      };
      const ours = grads(dyT, act);
      const masked = grads(on(passed), 0);
      ['dx', 'dγ', 'dβ', 'dbias'].forEach((name, i) =>
        assert.deepEqual(ours[i], masked[i], `act ${act}: ${name} as through y's mask`),
      );
    });
  }
});

test("max pooling: 2×2 windows of stride 2 inside the image through the SIMD module, the cpu backend's result bit for bit (NaN, −∞, signed zeros); other pools go to XNNPACK", async () => {
  const cases: { x: [number, number, number, number]; f: number; s: number; pad: 'valid' | 'same'; simd: boolean }[] = [
    { x: [2, 8, 8, 16], f: 2, s: 2, pad: 'same', simd: true },
    { x: [2, 9, 7, 8], f: 2, s: 2, pad: 'valid', simd: true }, // odd sizes, 'valid': the last row and column unread
    { x: [3, 6, 6, 4], f: 2, s: 2, pad: 'valid', simd: true },
    { x: [2, 9, 7, 8], f: 2, s: 2, pad: 'same', simd: false }, // padded below and right
    { x: [2, 8, 8, 6], f: 2, s: 2, pad: 'valid', simd: false }, // 6 channels
    { x: [2, 9, 9, 8], f: 3, s: 2, pad: 'valid', simd: false }, // 3×3 windows
  ];
  const rng = new Rng(53);
  const special = [NaN, -Infinity, Infinity, 0, -0, 1, 1];
  const data = cases.map((c) =>
    Float32Array.from({ length: c.x.reduce((a, b) => a * b, 1) }, () =>
      rng.next() < 0.3 ? special[rng.int(special.length)] : rng.normal(),
    ),
  );
  // A window of NaN only, and one of NaN and −∞: −∞ out.
  data[0].set([NaN, NaN], 0);
  const run = () => cases.map((c, i) => Array.from(tf.maxPool(tf.tensor4d(data[i], c.x), c.f, c.s, c.pad).dataSync()));
  await tf.setBackend('cpu');
  const cpu = tf.tidy(run);
  await initBackend('wasm');
  const wasm = tf.tidy(run);
  cases.forEach((c, i) => {
    if (c.simd)
      wasm[i].forEach((v, j) =>
        assert.ok(Object.is(v, cpu[i][j]), `case ${i} entry ${j}: wasm ${v}, cpu ${cpu[i][j]}`),
      );
    tf.tidy(() => {
      const r = maxPoolSimd(tf.backend(), tf.tensor4d(data[i], c.x), c.f, c.s, c.pad);
      assert.equal(r !== null, c.simd, `case ${i}: SIMD?`);
      if (r) tf.engine().makeTensorFromTensorInfo(r);
    });
  });
});

test("max pooling with winners (the conv step's): the pooling bit for bit, its gradient that of max pooling, and after a relu that of max pooling then relu, up to the sign of zeros", async () => {
  await initBackend('wasm');
  const kernels = simdKernels(tf.backend())!;
  const heap = wasmInternals(tf.backend())!;
  const rng = new Rng(61);
  const special = [NaN, -Infinity, Infinity, 0, -0, 1, 1, -1];
  for (const shape of [
    [2, 8, 8, 16],
    [2, 9, 7, 8],
    [1, 5, 6, 4],
  ] as [number, number, number, number][]) {
    const [B, H, W, C] = shape;
    const [OH, OW] = [Math.floor(H / 2), Math.floor(W / 2)];
    const n = B * H * W * C;
    const xData = Float32Array.from({ length: n }, () =>
      rng.next() < 0.3 ? special[rng.int(special.length)] : rng.normal(),
    );
    xData.set([NaN, NaN], 0); // a window with NaN only in its first channel's first two entries
    const dyData = Float32Array.from({ length: B * OH * OW * C }, () => rng.normal());
    for (const afterRelu of [false, true]) {
      tf.tidy(() => {
        // As training would see it: after a relu every input is max(x, 0) (NaN stays NaN).
        const x = tf.tensor4d(afterRelu ? xData.map((v) => (v > 0 || Number.isNaN(v) ? v : 0)) : xData, shape);
        const dy = tf.tensor4d(dyData, [B, OH, OW, C]);
        const out = heap.makeOutput([B, OH, OW, C], 'float32');
        const win = heap.makeOutput([Math.ceil((B * OH * OW * C) / 4)], 'int32');
        const dx = heap.makeOutput(shape, 'float32');
        kernels.max_pool_2x2_winners(
          heapOffset(heap, x),
          heapOffset(heap, out),
          heapOffset(heap, win),
          B,
          H,
          W,
          C,
          OH,
          OW,
          afterRelu ? 1 : 0,
        );
        kernels.max_pool_2x2_winners_grad(
          heapOffset(heap, dy),
          heapOffset(heap, win),
          heapOffset(heap, dx),
          B,
          H,
          W,
          C,
          OH,
          OW,
        );
        const pooled = tf.engine().makeTensorFromTensorInfo(out).dataSync();
        const grad = tf.engine().makeTensorFromTensorInfo(dx).dataSync();
        heap.disposeData(win.dataId);
        const reference = tf
          .engine()
          .makeTensorFromTensorInfo(maxPoolSimd(tf.backend(), x, 2, 2, 'valid')!)
          .dataSync();
        pooled.forEach((v, j) =>
          assert.ok(Object.is(v, reference[j]), `${shape} pooling ${j}: ${v} vs ${reference[j]}`),
        );
        let expected = tf.engine().makeTensorFromTensorInfo(maxPoolGradOnHeap(tf.backend(), dy, x, 2, 2, 'valid')!);
        if (afterRelu) expected = tf.engine().makeTensorFromTensorInfo(reluGradSimd(tf.backend(), expected, x)!);
        const want = expected.dataSync();
        // NaN off the winners: relu's gradient gives 0 · NaN there, which the folded gradient leaves out.
        grad.forEach((v, j) =>
          assert.ok(
            v === want[j] || (Number.isNaN(want[j]) && v === 0 && Number.isNaN(x.dataSync()[j])),
            `${shape} ${afterRelu ? 'after relu' : ''} gradient ${j}: ${v} vs ${want[j]}`,
          ),
        );
        assert.ok(
          grad.some((v) => v !== 0),
          'some gradient passes',
        );
      });
    }
  }
});

test("convolution and pooling as one kernel (the conv step's), direct and Winograd: the values and winners of the convolution then the pooling, bit for bit", async () => {
  await initBackend('wasm');
  const kernels = simdKernels(tf.backend())!;
  const heap = wasmInternals(tf.backend())!;
  const rng = new Rng(67);
  const cases: {
    x: [number, number, number, number];
    f: [number, number, number, number];
    s: number;
    pad: 'same' | 'valid';
    act: 0 | 1 | 2;
    bias: boolean;
    winograd: boolean;
  }[] = [
    { x: [2, 9, 11, 3], f: [3, 3, 3, 8], s: 1, pad: 'same', act: 1, bias: true, winograd: false }, // odd output: the last row and column in no window
    { x: [2, 21, 21, 1], f: [5, 5, 1, 12], s: 2, pad: 'valid', act: 0, bias: false, winograd: false }, // 12 = a block of 8 and one of 4
    { x: [1, 8, 8, 3], f: [3, 3, 3, 4], s: 1, pad: 'same', act: 2, bias: true, winograd: false },
    { x: [2, 9, 11, 16], f: [3, 3, 16, 16], s: 1, pad: 'same', act: 1, bias: true, winograd: true }, // F(4×4, 3×3), partial tiles at the odd edges
    { x: [1, 8, 8, 8], f: [3, 3, 8, 16], s: 1, pad: 'valid', act: 0, bias: false, winograd: true },
  ];
  for (const c of cases) {
    tf.tidy(() => {
      const x = tf.tensor4d(
        Float32Array.from({ length: c.x.reduce((a, b) => a * b, 1) }, () => 2 * rng.normal()),
        c.x,
      );
      const f = tf.tensor4d(
        Float32Array.from({ length: c.f.reduce((a, b) => a * b, 1) }, () => rng.normal()),
        c.f,
      );
      const bias = tf.tensor1d(Float32Array.from({ length: c.f[3] }, () => rng.normal()));
      const info = tf.backend_util.computeConv2DInfo(c.x, c.f, c.s, 1, c.pad, undefined, false, 'channelsLast');
      assert.equal(winogradTakes(info), c.winograd, `${JSON.stringify(c)}: Winograd?`);
      const { outHeight: oh, outWidth: ow, outChannels: co } = info;
      const [OH, OW] = [Math.floor(oh / 2), Math.floor(ow / 2)];
      const activation = (['linear', 'relu', 'relu6'] as const)[c.act];
      const epilogue = { bias: c.bias ? bias : undefined, activation };
      const conv = tf
        .engine()
        .makeTensorFromTensorInfo(conv2dSimd(tf.backend(), x, f, { strides: c.s, pad: c.pad }, epilogue)!);
      const fused = conv2dPoolSimd(tf.backend(), x, f, { strides: c.s, pad: c.pad }, epilogue, c.act !== 0)!;
      assert.deepEqual(fused.convShape, conv.shape);
      const n = c.x[0] * OH * OW * co;
      const [out2, win2] = [
        heap.makeOutput([c.x[0], OH, OW, co], 'float32'),
        heap.makeOutput([Math.ceil(n / 4)], 'int32'),
      ];
      kernels.max_pool_2x2_winners(
        heapOffset(heap, conv),
        heapOffset(heap, out2),
        heapOffset(heap, win2),
        c.x[0],
        oh,
        ow,
        co,
        OH,
        OW,
        c.act ? 1 : 0,
      );
      const bytes = (t: tf.TensorInfo) => new Uint8Array(heap.wasm.HEAPU8.buffer, heapOffset(heap, t), n).slice();
      assert.deepEqual(bytes(fused.winners), bytes(win2), `${JSON.stringify(c)}: winners`);
      assert.ok(
        bytes(win2).some((k) => k < 4),
        'some windows have a winner',
      );
      const [a, b] = [fused.out, out2].map((t) => tf.engine().makeTensorFromTensorInfo(t).dataSync());
      a.forEach((v, j) => assert.ok(Object.is(v, b[j]), `${JSON.stringify(c)} ${j}: ${v} vs ${b[j]}`));
      heap.disposeData(fused.winners.dataId);
      heap.disposeData(win2.dataId);
    });
  }
});

test('max-pool gradient: the SIMD path takes windows apart and inside the image with channels in fours, bit for bit the JavaScript pass', async () => {
  await initBackend('wasm');
  const cases: { x: [number, number, number, number]; f: number; s: number; pad: 'valid' | 'same'; simd: boolean }[] = [
    { x: [2, 8, 8, 16], f: 2, s: 2, pad: 'valid', simd: true },
    { x: [2, 8, 8, 16], f: 2, s: 2, pad: 'same', simd: true }, // even size: no padding
    { x: [2, 9, 9, 8], f: 3, s: 3, pad: 'valid', simd: true },
    { x: [2, 10, 10, 4], f: 2, s: 3, pad: 'valid', simd: true },
    { x: [2, 7, 7, 8], f: 2, s: 2, pad: 'same', simd: false }, // odd size: padded below and right
    { x: [2, 8, 8, 8], f: 3, s: 2, pad: 'valid', simd: false }, // overlapping windows
    { x: [2, 8, 8, 6], f: 2, s: 2, pad: 'valid', simd: false }, // channels not in fours
  ];
  const rng = new Rng(17);
  for (const c of cases) {
    tf.tidy(() => {
      const x = tf.tensor4d(
        Float32Array.from({ length: c.x.reduce((a, b) => a * b, 1) }, () => rng.normal()),
        c.x,
      );
      const y = tf.maxPool(x, c.f, c.s, c.pad);
      const dy = tf.tensor(
        Float32Array.from({ length: y.size }, () => rng.normal()),
        y.shape,
      );
      assert.equal(
        simdTakesMaxPoolGrad(tf.backend_util.computePool2DInfo(c.x, c.f, c.s, 1, c.pad)),
        c.simd,
        JSON.stringify(c),
      );
      // The kernel with the SIMD path where it applies, and the JavaScript pass alone: the same bits.
      const [withSimd, jsOnly] = [true, false].map((useSimd) =>
        tf
          .engine()
          .makeTensorFromTensorInfo(maxPoolGradOnHeap(tf.backend(), dy, x, c.f, c.s, c.pad, undefined, useSimd)!)
          .dataSync(),
      );
      assert.ok(
        withSimd.every((v, j) => Object.is(v, jsOnly[j])),
        `${JSON.stringify(c)}: SIMD and JavaScript differ`,
      );
    });
  }
});

test('bias add and bias-gradient sum through the SIMD module = the cpu backend; other shapes go to the kernels behind', async () => {
  const rng = new Rng(23);
  const values = (shape: number[]) =>
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
  const adds: { a: number[]; b: number[]; simd: boolean }[] = [
    { a: [8, 6, 6, 16], b: [16], simd: true },
    { a: [32], b: [5, 32], simd: true }, // the bias first
    { a: [7, 8], b: [1, 8], simd: true },
    { a: [6, 6], b: [6], simd: false }, // 6 channels: not a multiple of 4
    { a: [4, 8], b: [4, 8], simd: false }, // no broadcast
    { a: [4, 8], b: [4, 1], simd: false }, // broadcast over the other axis
  ];
  const sums: { x: number[]; axis: number[]; keepDims: boolean; simd: boolean }[] = [
    { x: [8, 6, 6, 16], axis: [0, 1, 2], keepDims: false, simd: true },
    { x: [33, 12], axis: [0], keepDims: true, simd: true },
    { x: [3, 4, 8], axis: [1, 0], keepDims: false, simd: true },
    { x: [3, 4, 6], axis: [0, 1], keepDims: false, simd: false }, // 6: the JavaScript kernel
    { x: [3, 4, 8], axis: [0], keepDims: false, simd: true }, // two axes kept: 32 columns
  ];
  const addData = adds.map((c) => ({ a: values(c.a), b: values(c.b) }));
  const sumData = sums.map((c) => values(c.x));
  const run = () =>
    [
      ...adds.map((c, i) => tf.add(tf.tensor(addData[i].a, c.a), tf.tensor(addData[i].b, c.b))),
      ...sums.map((c, i) => tf.sum(tf.tensor(sumData[i], c.x), c.axis, c.keepDims)),
    ].map((t) => ({ shape: t.shape, values: Array.from(t.dataSync()) }));
  await tf.setBackend('cpu');
  const cpu = tf.tidy(run);
  await initBackend('wasm');
  const before = tf.memory().numTensors;
  const wasm = tf.tidy(run);
  assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
  adds.forEach((c, i) => {
    assert.deepEqual(wasm[i], cpu[i], `add ${JSON.stringify(c)}: the same float32 sums`);
    tf.tidy(() =>
      assert.equal(
        addBiasSimd(tf.backend(), tf.tensor(addData[i].a, c.a), tf.tensor(addData[i].b, c.b)) !== null,
        c.simd,
        `add ${JSON.stringify(c)}: SIMD?`,
      ),
    );
  });
  sums.forEach((c, i) => {
    const k = adds.length + i;
    assert.deepEqual(wasm[k].shape, cpu[k].shape);
    assert.ok(relDiff(wasm[k].values, cpu[k].values) < 1e-6, `sum ${JSON.stringify(c)}`);
    tf.tidy(() => {
      // sum.ts takes the SIMD path where the kept width is a multiple of 4; both paths agree.
      const x = tf.tensor(sumData[i], c.x);
      const width = c.x.filter((_, d) => !c.axis.includes(d)).reduce((p, q) => p * q, 1);
      assert.equal(width % 4 === 0, c.simd, `sum ${JSON.stringify(c)}: SIMD?`);
      const [withSimd, jsOnly] = [true, false].map((useSimd) =>
        tf
          .engine()
          .makeTensorFromTensorInfo(sumLeadingAxesOnHeap(tf.backend(), x, c.axis, c.keepDims, useSimd)!)
          .dataSync(),
      );
      assert.ok(relDiff(withSimd, jsOnly) < 1e-7, `sum ${JSON.stringify(c)}: SIMD and JavaScript`);
    });
  });
});
