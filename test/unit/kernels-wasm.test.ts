/**
 * The wasm kernels written in JavaScript (src/core/kernels: MaxPoolGrad, GatherV2, Slice and Sum on the
 * heap, a sharing Identity, BatchMatMul with its transposes done first) against the cpu backend's stock kernels as the reference.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { initBackend } from '../../src/core/backend';
import { Rng } from '../../src/core/rng';
import { relDiff } from '../helpers';
import { maxPoolGradOnHeap } from '../../src/core/kernels/max-pool-grad';
import { gatherOnHeap } from '../../src/core/kernels/gather';
import { matMulTransposedFirst } from '../../src/core/kernels/batch-mat-mul';
import { matMulSimd } from '../../src/core/kernels/simd-kernels';
import { sliceOnHeap } from '../../src/core/kernels/slice';
import { sumLeadingAxesOnHeap } from '../../src/core/kernels/sum';
import { heapOffset, wasmInternals } from '../../src/core/kernels/wasm-heap';

function values(shape: number[], rng: Rng, gen: (rng: Rng) => number = (r) => r.normal()): Float32Array {
  const v = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < v.length; i++) v[i] = gen(rng);
  return v;
}

/** Runs `fn` on the stock cpu backend (the reference), then makes wasm current again. */
async function onCpu<T>(fn: () => T): Promise<T> {
  await tf.setBackend('cpu');
  try {
    tf.engine().startScope();
    try {
      return fn();
    } finally {
      tf.engine().endScope();
    }
  } finally {
    await initBackend('wasm');
  }
}

/** Runs `run` on cpu and on wasm: the same shapes and values case by case, and no tensor left behind on wasm. */
async function sameOnWasmAsOnCpu<T>(run: () => T[], cases: unknown[]): Promise<void> {
  const cpu = await onCpu(run);
  await initBackend('wasm');
  const before = tf.memory().numTensors;
  const got = tf.tidy(run as () => never);
  assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
  (got as T[]).forEach((g, i) => assert.deepEqual(g, cpu[i], `case ${i} ${JSON.stringify(cases[i])}`));
}

/**
 * Runs `run` on cpu and on wasm: the same shapes, values within `tolerance` (relative; the kernels
 * differ only by summation order) case by case, and no tensor left behind on wasm.
 */
async function closeOnWasmToCpu(
  run: () => { shape: number[]; values: ArrayLike<number> }[],
  cases: unknown[],
  tolerance: number,
): Promise<void> {
  const cpu = await onCpu(run);
  await initBackend('wasm');
  const before = tf.memory().numTensors;
  const got = tf.tidy(run as () => never) as { shape: number[]; values: ArrayLike<number> }[];
  assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
  cases.forEach((c, i) => {
    assert.deepEqual(got[i].shape, cpu[i].shape, `case ${i} shape`);
    const d = relDiff(got[i].values, cpu[i].values);
    assert.ok(d < tolerance, `case ${i} ${JSON.stringify(c)}: ${d}`);
  });
}

const plain = (a: ArrayLike<number>) => Array.from(a, (v) => v + 0); // -0 and 0 are the same gradient

interface PoolCase {
  x: [number, number, number, number];
  f: [number, number];
  s: [number, number];
  pad: 'valid' | 'same' | number;
  gen?: (r: Rng) => number;
}
const POOL_CASES: PoolCase[] = [
  { x: [4, 8, 8, 3], f: [2, 2], s: [2, 2], pad: 'valid' },
  { x: [2, 7, 7, 2], f: [2, 2], s: [2, 2], pad: 'valid' }, // last row and column unread
  { x: [2, 7, 9, 2], f: [2, 2], s: [2, 2], pad: 'same' }, // padded below and right
  { x: [2, 9, 9, 3], f: [3, 3], s: [3, 3], pad: 'same' },
  { x: [3, 8, 6, 2], f: [2, 3], s: [2, 3], pad: 'valid' },
  { x: [2, 8, 8, 4], f: [2, 2], s: [2, 2], pad: 'valid', gen: (r) => r.normal() - 5 }, // every window all negative
  { x: [2, 8, 8, 5], f: [2, 2], s: [2, 2], pad: 'valid', gen: (r) => r.int(3) }, // ties: the first largest wins
  { x: [2, 9, 9, 2], f: [3, 3], s: [2, 2], pad: 'valid' }, // overlapping windows: gradients summed
  { x: [2, 10, 9, 3], f: [3, 3], s: [1, 1], pad: 'same', gen: (r) => r.int(4) - 2 }, // overlapping, padded, ties
  { x: [1, 6, 6, 2], f: [3, 3], s: [2, 2], pad: 1 }, // explicit padding
  { x: [2, 8, 8, 2], f: [2, 2], s: [2, 2], pad: 'valid', gen: (r) => (r.next() < 0.2 ? -Infinity : r.normal()) },
  // Channels a multiple of 4, windows apart and inside the image: the SIMD kernel (kernels-simd.test.ts)
  { x: [3, 8, 8, 8], f: [2, 2], s: [2, 2], pad: 'same' },
  { x: [2, 8, 8, 4], f: [2, 2], s: [2, 2], pad: 'valid', gen: (r) => r.int(3) }, // ties
  {
    x: [2, 8, 8, 4],
    f: [2, 2],
    s: [2, 2],
    pad: 'valid',
    gen: (r) => (r.next() < 0.3 ? -Infinity : r.next() < 0.1 ? NaN : r.normal()),
  },
  { x: [2, 9, 7, 4], f: [3, 3], s: [3, 3], pad: 'valid' }, // the last column unread
  { x: [2, 10, 10, 8], f: [2, 2], s: [3, 3], pad: 'valid' }, // stride over the window: rows and columns between windows
];

test('MaxPoolGrad on the wasm heap = the cpu backend exactly (ties, all-negative and overlapping windows, paddings)', async () => {
  const inputs = POOL_CASES.map((c, i) => {
    const rng = new Rng(900 + i);
    const x = values(c.x, rng, c.gen);
    return { x, w: values(tf.backend_util.computePool2DInfo(c.x, c.f, c.s, 1, c.pad).outShape, rng) };
  });
  const grad = (c: PoolCase, i: number) => {
    const x = tf.tensor4d(inputs[i].x, c.x);
    const w = tf.tensor(inputs[i].w, tf.maxPool(x, c.f, c.s, c.pad).shape);
    return tf
      .grad((v: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(v as tf.Tensor4D, c.f, c.s, c.pad), w)))(x)
      .dataSync();
  };
  const cpu = await onCpu(() => POOL_CASES.map(grad));
  await initBackend('wasm');
  POOL_CASES.forEach((c, i) => {
    const before = tf.memory().numTensors;
    const got = tf.tidy(() => grad(c, i));
    assert.equal(tf.memory().numTensors, before, `no tensors leaked, case ${i}`);
    assert.deepEqual(
      plain(got),
      plain(cpu[i]),
      `registered kernel, case ${i} ${JSON.stringify({ ...c, gen: undefined })}`,
    );
    // And the heap function itself, called directly.
    tf.tidy(() => {
      const x = tf.tensor4d(inputs[i].x, c.x);
      const dy = tf.tensor(inputs[i].w, tf.maxPool(x, c.f, c.s, c.pad).shape);
      const info = maxPoolGradOnHeap(tf.backend(), dy, x, c.f, c.s, c.pad);
      assert.ok(info, 'handled on the heap');
      const dx = tf.engine().makeTensorFromTensorInfo(info!);
      assert.deepEqual(plain(dx.dataSync()), plain(cpu[i]), `direct call, case ${i}`);
    });
  });
  // Not wasm: left to the next kernel.
  assert.equal(
    maxPoolGradOnHeap(
      {},
      { dataId: {}, shape: [1, 1, 1, 1], dtype: 'float32' },
      { dataId: {}, shape: [1, 2, 2, 1], dtype: 'float32' },
      2,
      2,
      'valid',
    ),
    null,
  );
});

test('GatherV2 on the wasm heap = the cpu backend (axes, 2-D and repeated indices, int32 data), out-of-range indices still throw', async () => {
  const rng = new Rng(31);
  const cases: { shape: number[]; axis: number; idx: number[]; idxShape?: number[]; dtype?: 'int32' }[] = [
    { shape: [50, 8, 8, 3], axis: 0, idx: [3, 49, 0, 3, 17] }, // rows of 192 values, one repeated
    { shape: [40, 300], axis: 0, idx: [39, 1, 2, 1] }, // rows long enough for copyWithin
    { shape: [7, 5], axis: 1, idx: [4, 0, 0, 2] },
    { shape: [3, 4, 6], axis: -1, idx: [5, 1] },
    { shape: [6, 4, 3], axis: 1, idx: [3, 0, 2, 1, 1, 0], idxShape: [2, 3] },
    { shape: [30], axis: 0, idx: [29, 0, 5], dtype: 'int32' },
    { shape: [9, 2], axis: 0, idx: [] },
  ];
  const data = cases.map((c) => values(c.shape, rng, (r) => (c.dtype === 'int32' ? r.int(1000) - 500 : r.normal())));
  const run = () =>
    cases.map((c, i) => {
      const x = tf.tensor(data[i], c.shape, c.dtype ?? 'float32');
      const g = tf.gather(x, tf.tensor(c.idx, c.idxShape ?? [c.idx.length], 'int32'), c.axis);
      return { shape: g.shape, values: Array.from(g.dataSync()) };
    });
  await sameOnWasmAsOnCpu(run, cases);
  tf.tidy(() => {
    const x = tf.tensor2d([1, 2, 3, 4], [2, 2]);
    assert.ok(gatherOnHeap(tf.backend(), x, tf.tensor1d([1, 0], 'int32'), 0, 0), 'handled on the heap');
    assert.equal(
      gatherOnHeap(tf.backend(), x, tf.tensor1d([2], 'int32'), 0, 0),
      null,
      'out of range: left to the stock kernel',
    );
    assert.throws(() => tf.gather(x, tf.tensor1d([2], 'int32')), /not in \[0, 1\]/);
    assert.throws(() => tf.gather(x, tf.tensor1d([-1], 'int32')), /not in \[0, 1\]/);
  });
});

test('Slice of a contiguous block on the wasm heap = the cpu backend; other slices go to the stock kernel', async () => {
  const rng = new Rng(41);
  const cases: { shape: number[]; begin: number[]; size: number[]; dtype?: 'int32' }[] = [
    { shape: [50, 8, 8, 3], begin: [10, 0, 0, 0], size: [25, -1, -1, -1] }, // a batch of rows
    { shape: [50, 8, 8, 3], begin: [49, 0, 0, 0], size: [1, 8, 8, 3] }, // the last row
    { shape: [7, 5], begin: [2, 1], size: [1, 3] }, // inside one row: contiguous
    { shape: [7, 5], begin: [1, 1], size: [3, 2] }, // a column block: not contiguous (stock kernel)
    { shape: [30], begin: [5], size: [20], dtype: 'int32' },
    { shape: [9, 2], begin: [3, 0], size: [0, 2] },
  ];
  const data = cases.map((c) => values(c.shape, rng, (r) => (c.dtype === 'int32' ? r.int(1000) - 500 : r.normal())));
  const run = () =>
    cases.map((c, i) => {
      const s = tf.slice(tf.tensor(data[i], c.shape, c.dtype ?? 'float32'), c.begin, c.size);
      return { shape: s.shape, values: Array.from(s.dataSync()) };
    });
  await sameOnWasmAsOnCpu(run, cases);
  tf.tidy(() => {
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
    assert.ok(sliceOnHeap(tf.backend(), x, [1, 0], [2, 2]), 'rows: handled on the heap');
    assert.equal(sliceOnHeap(tf.backend(), x, [0, 1], [3, 1]), null, 'a column: left to the stock kernel');
  });
});

test('BatchMatMul on wasm = the cpu backend: transposed operands transposed first, untransposed products through the SIMD module; small, batched and narrow products go to the stock kernel', async () => {
  // fast: transposed first (batch-mat-mul.ts); simd: the SIMD module takes the product as given.
  const cases: { a: number[]; b: number[]; tA: boolean; tB: boolean; fast: boolean; simd: boolean }[] = [
    { a: [64, 24], b: [64, 32], tA: true, tB: false, fast: true, simd: false },
    { a: [64, 512], b: [64, 10], tA: true, tB: false, fast: true, simd: false },
    { a: [64, 10], b: [512, 10], tA: false, tB: true, fast: true, simd: false },
    { a: [40, 30], b: [50, 40], tA: true, tB: true, fast: true, simd: false },
    { a: [1, 64, 40], b: [1, 64, 30], tA: true, tB: false, fast: true, simd: false }, // batch of one
    { a: [8, 4], b: [8, 3], tA: true, tB: false, fast: false, simd: false }, // small: stock
    { a: [2, 40, 30], b: [2, 40, 20], tA: true, tB: false, fast: false, simd: false }, // batched: stock
    { a: [30, 40], b: [40, 20], tA: false, tB: false, fast: false, simd: true },
    { a: [64, 1568], b: [1568, 64], tA: false, tB: false, fast: false, simd: true }, // the demo CNN's dense layer
    { a: [1, 33, 7], b: [7, 12], tA: false, tB: false, fast: false, simd: true }, // batch of one, an odd row count
    { a: [30, 40], b: [40, 10], tA: false, tB: false, fast: false, simd: false }, // 10 columns: not a multiple of 4
    { a: [2, 30, 40], b: [2, 40, 20], tA: false, tB: false, fast: false, simd: false }, // batched
  ];
  const rng = new Rng(77);
  const data = cases.map((c) => ({ a: values(c.a, rng), b: values(c.b, rng) }));
  const run = () =>
    cases.map((c, i) => {
      const r = tf.matMul(tf.tensor(data[i].a, c.a), tf.tensor(data[i].b, c.b), c.tA, c.tB);
      return { shape: r.shape, values: r.dataSync() };
    });
  await closeOnWasmToCpu(run, cases, 1e-5);
  cases.forEach((c, i) => {
    tf.tidy(() => {
      const r = matMulTransposedFirst(tf.tensor(data[i].a, c.a), tf.tensor(data[i].b, c.b), c.tA, c.tB);
      assert.equal(r !== null, c.fast, `case ${i}: transposed first?`);
      const s = matMulSimd(tf.backend(), tf.tensor(data[i].a, c.a), tf.tensor(data[i].b, c.b), c.tA, c.tB);
      assert.equal(s !== null, c.simd, `case ${i}: through the SIMD module?`);
      if (s) tf.engine().makeTensorFromTensorInfo(s);
    });
  });
  // A shape mismatch is the stock kernel's error.
  assert.throws(() => tf.matMul(tf.zeros([64, 40]), tf.zeros([63, 30]), true, false), /inner shapes/);
});

test('Sum over the leading axes on the wasm heap = the cpu backend; other reductions go to the stock kernel', async () => {
  const cases: { shape: number[]; axis: number[]; keepDims: boolean; heap: boolean }[] = [
    { shape: [64, 8, 8, 16], axis: [0, 1, 2], keepDims: false, heap: true }, // a conv bias gradient
    { shape: [7, 5, 3, 2], axis: [0, 1, 2], keepDims: true, heap: true }, // rows not a multiple of 4
    { shape: [33, 10], axis: [0], keepDims: false, heap: true }, // a dense bias gradient
    { shape: [3, 4, 5], axis: [1, 0], keepDims: false, heap: true }, // axes in any order
    { shape: [3, 4, 5], axis: [0, 2], keepDims: false, heap: false },
    { shape: [6, 7], axis: [1], keepDims: true, heap: false },
    { shape: [6, 7], axis: [0, 1], keepDims: false, heap: false },
  ];
  const rng = new Rng(53);
  const data = cases.map((c) => values(c.shape, rng));
  const run = () =>
    cases.map((c, i) => {
      const s = tf.sum(tf.tensor(data[i], c.shape), c.axis, c.keepDims);
      return { shape: s.shape, values: s.dataSync() };
    });
  await closeOnWasmToCpu(run, cases, 1e-6);
  cases.forEach((c, i) => {
    tf.tidy(() =>
      assert.equal(
        sumLeadingAxesOnHeap(tf.backend(), tf.tensor(data[i], c.shape), c.axis, c.keepDims) !== null,
        c.heap,
        `case ${i}: on the heap?`,
      ),
    );
  });
  tf.tidy(() =>
    assert.equal(
      sumLeadingAxesOnHeap(tf.backend(), tf.tensor([1, 2], [2, 1], 'int32'), [0], false),
      null,
      'int32: stock',
    ),
  );
});

test('Identity (and a same-dtype Cast) on wasm share memory: a clone reads the same values, outlives its source, and costs no copy', async () => {
  await initBackend('wasm');
  const before = tf.memory();
  const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
  const y = tf.clone(x);
  const heap = wasmInternals(tf.backend())!;
  assert.equal(heapOffset(heap, y), heapOffset(heap, x), 'the clone points at the same memory');
  x.dispose();
  assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3, 4, 5, 6], 'still readable after its source is disposed');
  y.dispose();
  assert.equal(tf.memory().numTensors, before.numTensors);
  assert.equal(tf.memory().numBytes, before.numBytes);
  // A variable that takes new values keeps its clone's values apart.
  const v = tf.variable(tf.tensor1d([1, 2, 3]));
  const kept = tf.clone(v);
  v.assign(tf.tensor1d([7, 8, 9]));
  assert.deepEqual(Array.from(kept.dataSync()), [1, 2, 3]);
  assert.deepEqual(Array.from(v.dataSync()), [7, 8, 9]);
  kept.dispose();
  v.dispose();
  // A cast to the same dtype shares too; a real cast converts.
  const f = tf.tensor1d([1.5, -2.5]);
  const same = tf.cast(f, 'float32');
  assert.equal(heapOffset(heap, same), heapOffset(heap, f));
  const ints = tf.cast(f, 'int32');
  assert.notEqual(heapOffset(heap, ints), heapOffset(heap, f));
  assert.deepEqual(Array.from(ints.dataSync()), [1, -2]);
  tf.dispose([f, same, ints]);
  const strings = tf.clone(tf.tensor1d(['a', 'b'], 'string'));
  assert.deepEqual(strings.dataSync(), ['a', 'b'], 'strings: the stock kernel');
  strings.dispose();
});
