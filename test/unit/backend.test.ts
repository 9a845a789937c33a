import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import * as tfl from '@tensorflow/tfjs-layers';
import { backendSummary, initBackend } from '../../src/core/backend';
import { UserError } from '../../src/core/errors';
import { Rng } from '../../src/core/rng';
import { relDiff } from '../helpers';
import {
  conv2dBackpropFilterViaOps,
  isConv2DBackpropFilterRegistered,
  registerConv2DBackpropFilter,
  restoreStockConv2DBackpropFilter,
} from '../../src/core/kernels/conv2d-backprop-filter';
import { depthwiseBackpropKernels } from '../../src/core/kernels/depthwise-conv2d-backprop';
import { conv2dBackpropInputViaConv } from '../../src/core/kernels/conv2d-backprop-input';

type Pad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];
interface Case {
  x: [number, number, number, number];
  f: [number, number, number, number];
  s: [number, number];
  pad: Pad;
}

const CASES: Case[] = [
  { x: [2, 7, 7, 3], f: [3, 3, 3, 4], s: [1, 1], pad: 'valid' },
  { x: [2, 8, 8, 3], f: [3, 3, 3, 5], s: [2, 2], pad: 'same' },
  { x: [3, 9, 7, 2], f: [2, 3, 2, 3], s: [2, 1], pad: 'same' }, // unequal strides, even filter height
  { x: [2, 10, 9, 4], f: [3, 3, 4, 2], s: [1, 3], pad: 'valid' }, // width 9 - 3 not a multiple of 3: last column unread
  { x: [2, 9, 9, 2], f: [3, 3, 2, 3], s: [2, 2], pad: 'valid' },
  { x: [1, 5, 5, 1], f: [5, 5, 1, 1], s: [1, 1], pad: 'valid' }, // filter as large as the input
  { x: [2, 6, 6, 2], f: [1, 1, 2, 3], s: [2, 2], pad: 'same' },
  { x: [2, 7, 6, 3], f: [3, 3, 3, 2], s: [2, 2], pad: 1 },
  {
    x: [1, 6, 7, 2],
    f: [3, 2, 2, 2],
    s: [1, 2],
    pad: [
      [0, 0],
      [1, 2],
      [0, 1],
      [0, 0],
    ],
  },
  { x: [4, 16, 16, 8], f: [3, 3, 8, 16], s: [1, 1], pad: 'same' },
];

function randomTensor(shape: number[], rng: Rng): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.normal();
  return tf.tensor(v, shape);
}

/** Independent reference: the filter gradient of Σ conv2d(x, W) · w by direct summation (NHWC). */
function naiveFilterGrad(
  x: Float32Array,
  xs: number[],
  w: Float32Array,
  ws: number[],
  f: number[],
  s: [number, number],
  pad: Pad,
): Float32Array {
  const [b, h, wd, ci] = xs;
  const [, oh, ow, co] = ws;
  const [fh, fw] = f;
  let top = 0;
  let left = 0;
  if (pad === 'same') {
    top = Math.floor(Math.max((oh - 1) * s[0] + fh - h, 0) / 2);
    left = Math.floor(Math.max((ow - 1) * s[1] + fw - wd, 0) / 2);
  } else if (typeof pad === 'number') {
    top = pad;
    left = pad;
  } else if (Array.isArray(pad)) {
    top = pad[1][0];
    left = pad[2][0];
  }
  const out = new Float32Array(fh * fw * ci * co);
  for (let kh = 0; kh < fh; kh++)
    for (let kw = 0; kw < fw; kw++)
      for (let c = 0; c < ci; c++)
        for (let o = 0; o < co; o++) {
          let acc = 0;
          for (let n = 0; n < b; n++)
            for (let y = 0; y < oh; y++)
              for (let xx = 0; xx < ow; xx++) {
                const r = y * s[0] + kh - top;
                const q = xx * s[1] + kw - left;
                if (r < 0 || r >= h || q < 0 || q >= wd) continue;
                acc += x[((n * h + r) * wd + q) * ci + c] * w[((n * oh + y) * ow + xx) * co + o];
              }
          out[((kh * fw + kw) * ci + c) * co + o] = acc;
        }
  return out;
}

interface Grads {
  filter: Float32Array;
  bias?: Float32Array;
  outShape: number[];
}

/** Gradient wrt the filter of Σ conv2d(x, W) · w, through tf.grad on the current backend. */
function convFilterGrad(c: Case, seed: number): Grads & { x: Float32Array; w: Float32Array } {
  return tf.tidy(() => {
    const rng = new Rng(seed);
    const x = randomTensor(c.x, rng) as tf.Tensor4D;
    const filter = randomTensor(c.f, rng) as tf.Tensor4D;
    const y = tf.conv2d(x, filter, c.s, c.pad);
    const w = randomTensor(y.shape, rng);
    const g = tf.grad((f: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x, f as tf.Tensor4D, c.s, c.pad), w)))(filter);
    return {
      filter: g.dataSync() as Float32Array,
      outShape: y.shape,
      x: x.dataSync() as Float32Array,
      w: w.dataSync() as Float32Array,
    };
  });
}

/** Gradients wrt filter and bias of Σ relu(conv2d(x, W) + b) · w via tf.fused.conv2d (the path tf.layers.conv2d takes). */
function fusedGrads(c: Case, seed: number): Grads {
  return tf.tidy(() => {
    const rng = new Rng(seed);
    const x = randomTensor(c.x, rng) as tf.Tensor4D;
    const filter = randomTensor(c.f, rng) as tf.Tensor4D;
    const bias = randomTensor([c.f[3]], rng) as tf.Tensor1D;
    const pad = c.pad as 'valid' | 'same' | number;
    const y = tf.fused.conv2d({ x, filter, bias, strides: c.s, pad, activation: 'relu' });
    const w = randomTensor(y.shape, rng);
    const [gf, gb] = tf.grads((f: tf.Tensor, b: tf.Tensor) =>
      tf.sum(
        tf.mul(tf.fused.conv2d({ x, filter: f as tf.Tensor4D, bias: b, strides: c.s, pad, activation: 'relu' }), w),
      ),
    )([filter, bias]);
    return { filter: gf.dataSync() as Float32Array, bias: gb.dataSync() as Float32Array, outShape: y.shape };
  });
}

/** Runs `fn` on tfjs's cpu backend with its stock Conv2DBackpropFilter kernel; puts ours back after. */
async function onStockCpu<T>(fn: () => T | Promise<T>): Promise<T> {
  const previous = tf.getBackend();
  const had = isConv2DBackpropFilterRegistered('cpu');
  await tf.setBackend('cpu');
  restoreStockConv2DBackpropFilter('cpu');
  try {
    return await fn();
  } finally {
    if (had) registerConv2DBackpropFilter('cpu');
    await tf.setBackend(previous);
  }
}

test('initBackend: wasm starts with SIMD info, idempotently, and has the filter-gradient kernel', async () => {
  const info = await initBackend('wasm');
  assert.equal(info.name, 'wasm');
  assert.equal(info.tfjsBackend, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.equal(info.tfjsVersion, tf.version_core);
  assert.equal(typeof info.simd, 'boolean');
  assert.ok(Number.isInteger(info.threads) && (info.threads as number) >= 1);
  assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm'), 'kernel registered for wasm');
  await tf.setBackend('cpu');
  const again = await initBackend('wasm');
  assert.equal(again, info, 'second call returns the same info');
  assert.equal(tf.getBackend(), 'wasm', 'and makes wasm current again');
  assert.match(backendSummary(info), /^wasm \((SIMD|no SIMD), \d+ threads?\) · tfjs \d+\.\d+\.\d+/);
});

/** Whether tfjs-node can be resolved here (on this project's machines it cannot: its install needs a download). */
function tfjsNodeResolvable(): boolean {
  try {
    require.resolve('@tensorflow/tfjs-node');
    return true;
  } catch {
    return false;
  }
}

test('initBackend: auto falls back to wasm and says why; tensorflow is a UserError naming --backend', async (t) => {
  if (tfjsNodeResolvable()) {
    t.skip('@tensorflow/tfjs-node is installed here: the fallback cannot be observed');
    return;
  }
  const logs: string[] = [];
  const info = await initBackend('auto', (m) => logs.push(m));
  assert.equal(info.name, 'wasm');
  assert.ok(
    info.notes.some((n) => n.startsWith('@tensorflow/tfjs-node is not installed')),
    info.notes.join(' | '),
  );
  assert.ok(backendSummary(info).endsWith('· tfjs-node not installed'), backendSummary(info));
  assert.equal(await initBackend('auto'), info);

  await assert.rejects(initBackend('tensorflow'), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.equal(e.field, '--backend');
    assert.match(e.message, /--backend/);
    assert.match(e.message, /@tensorflow\/tfjs-node is not installed/);
    assert.ok(e.fix && /npm install @tensorflow\/tfjs-node/.test(e.fix));
    return true;
  });
  await assert.rejects(
    initBackend('tensorflow-gpu'),
    (e: unknown) => e instanceof UserError && /--backend/.test(e.message),
  );
  // A failed explicit request leaves the working backend in place.
  assert.equal(tf.getBackend(), 'wasm');
});

test('filter gradient on wasm = stock cpu gradient = direct summation, for strides, paddings and shapes', async () => {
  const stock = await onStockCpu(() => CASES.map((c, i) => convFilterGrad(c, 100 + i)));
  await initBackend('wasm');
  for (let i = 0; i < CASES.length; i++) {
    const c = CASES[i];
    const before = tf.memory().numTensors;
    const got = convFilterGrad(c, 100 + i);
    assert.equal(tf.memory().numTensors, before, `no tensors leaked, case ${i}`);
    assert.deepEqual(got.outShape, stock[i].outShape);
    const naive = naiveFilterGrad(stock[i].x, c.x, stock[i].w, stock[i].outShape, c.f, c.s, c.pad);
    assert.ok(relDiff(stock[i].filter, naive) < 1e-4, `stock cpu vs direct summation, case ${i}`);
    const d = relDiff(got.filter, stock[i].filter);
    assert.ok(d < 1e-3, `case ${i} ${JSON.stringify(c)}: wasm vs stock cpu relative difference ${d}`);
  }
});

/** Gradient wrt the input of Σ conv2d(x, W) · w, through tf.grad on the current backend. */
function convInputGrad(c: Case, seed: number): Float32Array {
  return tf.tidy(() => {
    const rng = new Rng(seed);
    const x = randomTensor(c.x, rng) as tf.Tensor4D;
    const filter = randomTensor(c.f, rng) as tf.Tensor4D;
    const w = randomTensor(tf.conv2d(x, filter, c.s, c.pad).shape, rng);
    return tf
      .grad((v: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(v as tf.Tensor4D, filter, c.s, c.pad), w)))(x)
      .dataSync() as Float32Array;
  });
}

test('input gradient on wasm (one forward conv for stride 1, the stock kernel otherwise) = stock cpu, for every case', async () => {
  const stock = await onStockCpu(() => CASES.map((c, i) => convInputGrad(c, 500 + i)));
  await initBackend('wasm');
  assert.ok(tf.getKernel(tf.Conv2DBackpropInput, 'wasm'), 'registered');
  CASES.forEach((c, i) => {
    const x = tf.tensor4d(new Float32Array(c.x.reduce((a, b) => a * b, 1)), c.x);
    const f = tf.ones(c.f) as tf.Tensor4D;
    const outShape = tf.conv2d(x, f, c.s, c.pad).shape as [number, number, number, number];
    const fast = conv2dBackpropInputViaConv(tf.ones(outShape) as tf.Tensor4D, f, c.x, c.s, c.pad);
    // The fast path is taken exactly for stride 1 (every padding here).
    assert.equal(fast !== null, c.s[0] === 1 && c.s[1] === 1, `fast path for case ${i} ${JSON.stringify(c)}`);
    fast?.dispose();
    const before = tf.memory().numTensors;
    const got = convInputGrad(c, 500 + i);
    assert.equal(tf.memory().numTensors, before, `no tensors leaked, case ${i}`);
    const d = relDiff(got, stock[i]);
    assert.ok(d < 1e-4, `case ${i} ${JSON.stringify(c)}: wasm vs stock cpu input gradient, relative difference ${d}`);
  });
});

// The max-pool gradient on wasm is checked against cpu in kernels-wasm.test.ts.

test('the same kernel on cpu matches the stock cpu kernel', async () => {
  const stock = await onStockCpu(() => CASES.slice(0, 6).map((c, i) => convFilterGrad(c, 200 + i)));
  await initBackend('cpu');
  assert.ok(isConv2DBackpropFilterRegistered('cpu'));
  CASES.slice(0, 6).forEach((c, i) => {
    const d = relDiff(convFilterGrad(c, 200 + i).filter, stock[i].filter);
    assert.ok(d < 1e-3, `case ${i}: cpu kernel vs stock ${d}`);
  });
  await initBackend('wasm');
});

test('fused conv2d (bias + relu), the path tf.layers.conv2d takes: wasm = stock cpu', async () => {
  const fusedCases = CASES.filter((c) => typeof c.pad !== 'object');
  const stock = await onStockCpu(() => fusedCases.map((c, i) => fusedGrads(c, 300 + i)));
  await initBackend('wasm');
  fusedCases.forEach((c, i) => {
    const got = fusedGrads(c, 300 + i);
    assert.ok(relDiff(got.filter, stock[i].filter) < 1e-3, `filter, case ${JSON.stringify(c)}`);
    assert.ok(
      relDiff(got.bias as Float32Array, stock[i].bias as Float32Array) < 1e-3,
      `bias, case ${JSON.stringify(c)}`,
    );
  });
});

test('NCHW input gives the transposed NHWC answer', async () => {
  await initBackend('wasm');
  tf.tidy(() => {
    const rng = new Rng(7);
    const x = randomTensor([2, 7, 6, 3], rng) as tf.Tensor4D;
    const dy = randomTensor([2, 4, 3, 5], rng) as tf.Tensor4D; // 'same', strides 2
    const nhwc = conv2dBackpropFilterViaOps(x, dy, [3, 3, 3, 5], 2, 'same');
    const nchw = conv2dBackpropFilterViaOps(
      tf.transpose(x, [0, 3, 1, 2]),
      tf.transpose(dy, [0, 3, 1, 2]),
      [3, 3, 3, 5],
      2,
      'same',
      'NCHW',
    );
    const naive = naiveFilterGrad(
      x.dataSync() as Float32Array,
      x.shape,
      dy.dataSync() as Float32Array,
      dy.shape,
      [3, 3],
      [2, 2],
      'same',
    );
    assert.ok(relDiff(nhwc.dataSync() as Float32Array, naive) < 1e-4);
    assert.ok(relDiff(nchw.dataSync() as Float32Array, naive) < 1e-4);
  });
});

/** A small CNN with every layer kind the product trains, bar dropout (random, so not comparable across backends). */
function buildCnn(): tfl.Sequential {
  const m = tfl.sequential();
  // No bias before batch normalisation: BN cancels it, so its gradient is rounding noise that Adam would
  // blow up to ±learning rate, differently on each backend.
  m.add(tfl.layers.conv2d({ inputShape: [12, 12, 3], filters: 6, kernelSize: 3, useBias: false }));
  m.add(tfl.layers.batchNormalization());
  m.add(tfl.layers.activation({ activation: 'relu' }));
  m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
  m.add(tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu' }));
  m.add(tfl.layers.averagePooling2d({ poolSize: 1 }));
  m.add(tfl.layers.flatten());
  m.add(tfl.layers.dense({ units: 3, activation: 'softmax' }));
  return m;
}

interface Trained {
  losses: number[];
  before: number;
  after: number;
  weights: Float32Array[];
  initial: Float32Array[];
}

async function trainTwoSteps(): Promise<Trained> {
  const rng = new Rng(42);
  const m = buildCnn();
  // Seeded weights (the layers' own initialisers use Math.random): N(0, 1/fan-in) kernels, BN at identity.
  const initial = m.weights.map((w) => {
    const v = new Float32Array(w.shape.reduce((a: number, b) => a * (b ?? 1), 1));
    const fanIn = w.shape.length > 1 ? w.shape.slice(0, -1).reduce((a: number, b) => a * (b ?? 1), 1) : 0;
    for (let i = 0; i < v.length; i++) {
      if (w.name.includes('moving_variance')) v[i] = 1;
      else if (w.name.includes('moving_mean')) v[i] = 0;
      else if (w.name.includes('gamma')) v[i] = 1 + 0.1 * rng.normal();
      else v[i] = fanIn ? rng.normal() / Math.sqrt(fanIn) : 0.05 * rng.normal();
    }
    return v;
  });
  m.setWeights(m.getWeights().map((w, i) => tf.tensor(initial[i], w.shape)));
  m.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
  const x = randomTensor([16, 12, 12, 3], rng);
  const labels = Array.from({ length: 16 }, () => rng.int(3));
  const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 3);
  const evalLoss = () => {
    const r = m.evaluate(x, y, { batchSize: 16 }) as tf.Scalar;
    const v = r.dataSync()[0];
    r.dispose();
    return v;
  };
  const before = evalLoss();
  const losses: number[] = [];
  for (let s = 0; s < 2; s++) losses.push((await m.trainOnBatch(x, y)) as number);
  const after = evalLoss();
  const weights = m.getWeights().map((w) => w.dataSync() as Float32Array);
  tf.dispose([x, y]);
  m.dispose();
  return { losses, before, after, weights, initial };
}

test('a tf.layers CNN trains 2 adam steps on wasm like on stock cpu', async () => {
  const cpuResult = await onStockCpu(() => trainTwoSteps());
  await initBackend('wasm');
  const wasm = await trainTwoSteps();
  assert.ok(wasm.after < wasm.before, `loss went down on wasm: ${wasm.before} → ${wasm.after}`);
  assert.ok(cpuResult.after < cpuResult.before);
  for (let i = 0; i < 2; i++) {
    assert.ok(
      Math.abs(wasm.losses[i] - cpuResult.losses[i]) <= 1e-3 * Math.abs(cpuResult.losses[i]),
      `step ${i} loss ${wasm.losses[i]} vs ${cpuResult.losses[i]}`,
    );
  }
  assert.ok(Math.abs(wasm.after - cpuResult.after) <= 1e-3 * cpuResult.after);
  // Every weight moved, and moved the same way on both backends.
  wasm.weights.forEach((w, i) => {
    assert.ok(relDiff(w, cpuResult.weights[i]) < 1e-3, `weight ${i}: wasm vs cpu ${relDiff(w, cpuResult.weights[i])}`);
  });
  wasm.weights.forEach((w, i) => assert.ok(relDiff(w, wasm.initial[i]) > 1e-4, `weight ${i} changed`));
});

/** Gradients wrt input and filter of Σ depthwiseConv2d(x, W) · w on the current backend. */
function depthwiseGrads(c: Case, seed: number): { dx: Float32Array; dw: Float32Array } {
  return tf.tidy(() => {
    const rng = new Rng(seed);
    const x = randomTensor(c.x, rng) as tf.Tensor4D;
    const filter = randomTensor(c.f, rng) as tf.Tensor4D;
    const pad = c.pad as 'valid' | 'same' | number;
    const w = randomTensor(tf.depthwiseConv2d(x, filter, c.s, pad).shape, rng);
    const [dx, dw] = tf.grads((a: tf.Tensor, f: tf.Tensor) =>
      tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, f as tf.Tensor4D, c.s, pad), w)),
    )([x, filter]);
    return { dx: dx.dataSync() as Float32Array, dw: dw.dataSync() as Float32Array };
  });
}

test('depthwise conv gradients (input and filter) on wasm = cpu, and in a separableConv2d layer', async () => {
  // filterShape [fh, fw, channels, multiplier]
  const cases: Case[] = [
    { x: [2, 7, 7, 3], f: [3, 3, 3, 1], s: [1, 1], pad: 'valid' },
    { x: [2, 8, 8, 3], f: [3, 3, 3, 2], s: [2, 2], pad: 'same' },
    { x: [3, 9, 7, 2], f: [2, 3, 2, 3], s: [2, 1], pad: 'same' },
    { x: [2, 10, 9, 4], f: [3, 3, 4, 1], s: [1, 3], pad: 'valid' },
  ];
  const cpu = await onStockCpu(() => cases.map((c, i) => depthwiseGrads(c, 400 + i)));
  await initBackend('wasm');
  for (const k of depthwiseBackpropKernels('wasm'))
    assert.ok(tf.getKernel(k.kernelName, 'wasm'), `${k.kernelName} registered`);
  cases.forEach((c, i) => {
    const got = depthwiseGrads(c, 400 + i);
    assert.ok(relDiff(got.dw, cpu[i].dw) < 1e-3, `filter, case ${JSON.stringify(c)}: ${relDiff(got.dw, cpu[i].dw)}`);
    assert.ok(relDiff(got.dx, cpu[i].dx) < 1e-3, `input, case ${JSON.stringify(c)}: ${relDiff(got.dx, cpu[i].dx)}`);
  });

  const sepGrads = () =>
    tf.tidy(() => {
      const rng = new Rng(9);
      const m = tfl.sequential();
      m.add(
        tfl.layers.conv2d({
          inputShape: [9, 9, 2],
          filters: 3,
          kernelSize: 2,
          useBias: false,
          kernelInitializer: 'ones',
        }),
      );
      m.add(
        tfl.layers.separableConv2d({
          filters: 4,
          kernelSize: 3,
          depthMultiplier: 2,
          strides: 2,
          padding: 'same',
          depthwiseInitializer: 'ones',
          pointwiseInitializer: 'ones',
          activation: 'relu',
        }),
      );
      m.setWeights(
        m.weights.map((v) =>
          randomTensor(
            v.shape.map((d) => d ?? 1),
            rng,
          ),
        ),
      );
      const x = randomTensor([2, 9, 9, 2], rng);
      const { grads } = tf.variableGrads(() => tf.sum(tf.square(m.apply(x) as tf.Tensor)) as tf.Scalar);
      const out = m.trainableWeights.map((v) => grads[(v.read() as tf.Variable).name].dataSync() as Float32Array);
      m.dispose();
      return out;
    });
  const sepCpu = await onStockCpu(sepGrads);
  const sepWasm = sepGrads();
  assert.equal(sepWasm.length, 4); // conv kernel, depthwise, pointwise, bias
  sepWasm.forEach((g, i) =>
    assert.ok(relDiff(g, sepCpu[i]) < 1e-3, `separable model weight ${i}: ${relDiff(g, sepCpu[i])}`),
  );
});
