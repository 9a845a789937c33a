/**
 * Differential fuzzing of the heap step for models with branches (src/core/graph-step.ts) against the cpu
 * backend, as kernels-fuzz.test.ts does for plain CNNs and dense chains.
 *
 * Each case draws, from a seed, a small ResNet-like model: a stem convolution (any size, stride 1 or 2,
 * 'same' or 'valid', with or without a bias), batch normalization in training mode with and without the relu
 * after it, zero to two residual blocks (identity shortcuts, and 1×1 projections of stride 1 or 2, with or
 * without a batch normalization of their own), relu after the add or not, global or whole-map average
 * pooling, and a dense head (binary or multiclass, a hidden layer or not). Some blocks are MobileNet's instead:
 * a depthwise 3×3 convolution (stride 1 or 2, 'same' or 'valid', or 'valid' after Keras' ZeroPadding2D
 * ((0, 1), (0, 1))), then a pointwise 1×1 convolution, each followed by batch normalization and relu6 or relu.
 * A fifth of the models have channel counts not in fours (3, 5, 6), which the step pads on the heap.
 * Weights and inputs are on coarse grids (inputs with exact zeros and constant samples, so that a channel's
 * batch variance can be zero), some filters zero as pruning leaves them.
 *
 * On wasm, with every float32 tensor the backend allocates starting full of NaN, it compares with the cpu
 * backend (stock tfjs kernels) the tfjs path's loss and gradients and, where the graph step takes the model,
 * the step's loss and gradients; and the moving statistics the step writes with those the tfjs path writes
 * from the same batch. Tolerance: a gradient within 1e-3 (see TOLERANCE) of its own scale or of 1% of the
 * model's largest gradient, whichever is larger (a convolution bias before a batch normalization has a
 * gradient of zero but for rounding); a loss within 1e-4 relative; moving statistics within 1e-3; a case
 * with a relu input within rounding of its kink compares the losses only.
 *
 * FAIRPRUNE_FUZZ_GRAPH_CASES (default 150) sets the number of cases, FAIRPRUNE_FUZZ_SEED (default 25) the seed,
 * FAIRPRUNE_FUZZ_CASE one case to run alone (as a failure names it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../src/core/backend';
import { graphStepFor } from '../../src/core/graph-step';
import { lossTargets } from '../../src/core/losses';
import { Rng } from '../../src/core/rng';
import type { Task } from '../../src/protocol/results';
import { useCpu } from '../helpers';
import { firstNonFinite, poisonHeapOutputs, referenceOnCpu, scaledDiff, tfjsPathGradients } from '../wasm-reference';

const CASES = Number(process.env.FAIRPRUNE_FUZZ_GRAPH_CASES ?? 150);
const SEED = Number(process.env.FAIRPRUNE_FUZZ_SEED ?? 25);
const ONLY = process.env.FAIRPRUNE_FUZZ_CASE === undefined ? null : Number(process.env.FAIRPRUNE_FUZZ_CASE);
/**
 * Ten times kernels-fuzz.test.ts's: a batch normalization divides by √(variance + ε), up to 1/√ε ≈ 32 times
 * the float32 rounding of the sums before it where a channel barely varies over a small batch and map, and
 * both wasm paths (tfjs's kernels as much as the graph step) land up to about 5e-4 from the cpu backend in
 * such cases; a wrong kernel lands orders of magnitude further (a wrong relu mask on a channel: 1.0).
 */
const TOLERANCE = 1e-3;
/** A relu input this close to zero, relative to its largest value, puts the case on a kink (see runCase). */
const KINK = 1e-6;
const LOSS_TOLERANCE = 1e-4;

interface ConvSpec {
  filters: number;
  kernel: number;
  strides: number;
  padding: 'same' | 'valid';
  useBias: boolean;
}
interface BlockSpec {
  /** A ResNet block, or MobileNet's depthwise + pointwise pair. */
  kind: 'residual' | 'separable';
  filters: number;
  strides: number;
  /** A 1×1 convolution on the shortcut (needed where the block changes the map's size or channels). */
  projection: boolean;
  projectionNorm: boolean;
  useBias: boolean;
  relu: boolean;
  /** Separable: relu6 after each batch normalization (else relu); Keras' zero padding before a stride 2. */
  relu6: boolean;
  kerasPad: boolean;
  padding: 'same' | 'valid';
}
interface Spec {
  input: [number, number, number];
  stem: ConvSpec;
  stemNorm: boolean;
  stemRelu: boolean;
  blocks: BlockSpec[];
  pool: 'global' | 'average';
  hidden: number | null;
  task: Task;
  classes: number;
  batch: number;
  loss: 'ce' | 'pw';
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];
const outSize = (n: number, k: number, s: number, padding: 'same' | 'valid') =>
  padding === 'same' ? Math.ceil(n / s) : Math.floor((n - k) / s) + 1;
/** Values on a grid of 1/`q` in [−m, m]. */
const grid = (rng: Rng, q: number, m: number) => Math.round((2 * rng.next() - 1) * m * q) / q;

function drawSpec(rng: Rng): Spec {
  const takeable = rng.next() < 0.8;
  const filters = () => (takeable || rng.next() < 0.5 ? pick(rng, [4, 8, 12, 16, 20]) : pick(rng, [3, 5, 6]));
  const input: [number, number, number] = [3 + rng.int(8), 3 + rng.int(8), pick(rng, [1, 3, 3, 4, 8])];
  const kernel = Math.min(pick(rng, [1, 3, 3, 5]), input[0], input[1]);
  const stem: ConvSpec = {
    filters: filters(),
    kernel,
    strides: rng.next() < 0.25 ? 2 : 1,
    padding: rng.next() < 0.7 ? 'same' : 'valid',
    useBias: rng.next() < 0.6,
  };
  let [H, W] = [
    outSize(input[0], kernel, stem.strides, stem.padding),
    outSize(input[1], kernel, stem.strides, stem.padding),
  ];
  let channels = stem.filters;
  const blocks: BlockSpec[] = [];
  const count = rng.int(3);
  for (let i = 0; i < count; i++) {
    const strides = H > 2 && W > 2 && rng.next() < 0.35 ? 2 : 1;
    const f = rng.next() < 0.5 ? channels : filters();
    const kind = rng.next() < 0.4 ? 'separable' : 'residual';
    const projection = kind === 'residual' && (strides === 2 || f !== channels || rng.next() < 0.15);
    const kerasPad = kind === 'separable' && strides === 2 && rng.next() < 0.5;
    const padding = !kerasPad && H >= 3 && W >= 3 && rng.next() < 0.3 ? 'valid' : 'same';
    blocks.push({
      kind,
      filters: f,
      strides,
      projection,
      projectionNorm: projection && rng.next() < 0.5,
      useBias: rng.next() < 0.5,
      relu: rng.next() < 0.8,
      relu6: rng.next() < 0.7,
      kerasPad,
      padding: kind === 'separable' ? padding : 'same',
    });
    const size = (n: number) => (kerasPad ? outSize(n + 1, 3, 2, 'valid') : outSize(n, 3, strides, padding));
    [H, W, channels] =
      kind === 'separable' ? [size(H), size(W), f] : [Math.ceil(H / strides), Math.ceil(W / strides), f];
  }
  const task: Task = rng.next() < 0.25 ? 'binary' : 'multiclass';
  return {
    input,
    stem,
    stemNorm: blocks.length > 0 || rng.next() < 0.8,
    stemRelu: rng.next() < 0.8,
    blocks,
    pool: rng.next() < 0.6 ? 'global' : 'average',
    hidden: rng.next() < 0.3 ? pick(rng, [4, 8]) : null,
    task,
    classes: task === 'binary' ? 1 : pick(rng, [2, 3, 5]),
    batch: 1 + rng.int(8),
    loss: rng.next() < 0.5 ? 'ce' : 'pw',
  };
}

function build(s: Spec): tfl.LayersModel {
  type Sym = tfl.SymbolicTensor;
  const conv = (x: Sym, c: ConvSpec) =>
    tfl.layers
      .conv2d({
        filters: c.filters,
        kernelSize: c.kernel,
        strides: c.strides,
        padding: c.padding,
        useBias: c.useBias,
        kernelInitializer: 'zeros',
      })
      .apply(x) as Sym;
  const bn = (x: Sym) => tfl.layers.batchNormalization({ momentum: 0.9, epsilon: 1e-3 }).apply(x) as Sym;
  const relu = (x: Sym) => tfl.layers.activation({ activation: 'relu' }).apply(x) as Sym;
  const relu6 = (x: Sym) => tfl.layers.reLU({ maxValue: 6 }).apply(x) as Sym;
  const input = tfl.input({ shape: s.input });
  let x = conv(input, s.stem);
  if (s.stemNorm) x = bn(x);
  if (s.stemRelu) x = relu(x);
  for (const b of s.blocks) {
    if (b.kind === 'separable') {
      const act = b.relu6 ? relu6 : relu;
      const padded = b.kerasPad
        ? (tfl.layers
            .zeroPadding2d({
              padding: [
                [0, 1],
                [0, 1],
              ],
            })
            .apply(x) as Sym)
        : x;
      const depthwise = tfl.layers.depthwiseConv2d({
        kernelSize: 3,
        strides: b.strides,
        padding: b.kerasPad ? 'valid' : b.padding,
        useBias: b.useBias,
        depthwiseInitializer: 'zeros',
      });
      x = act(bn(depthwise.apply(padded) as Sym));
      x = act(bn(conv(x, { filters: b.filters, kernel: 1, strides: 1, padding: 'same', useBias: b.useBias })));
      continue;
    }
    const same = { kernel: 3, padding: 'same' as const, useBias: b.useBias, filters: b.filters };
    const y = bn(conv(relu(bn(conv(x, { ...same, strides: b.strides }))), { ...same, strides: 1 }));
    let shortcut = x;
    if (b.projection) {
      shortcut = conv(x, { ...same, kernel: 1, strides: b.strides });
      if (b.projectionNorm) shortcut = bn(shortcut);
    }
    x = tfl.layers.add().apply([shortcut, y]) as Sym;
    if (b.relu) x = relu(x);
  }
  x =
    s.pool === 'global'
      ? (tfl.layers.globalAveragePooling2d({}).apply(x) as Sym)
      : (tfl.layers
          .flatten()
          .apply(tfl.layers.averagePooling2d({ poolSize: x.shape.slice(1, 3) as [number, number] }).apply(x)) as Sym);
  if (s.hidden)
    x = tfl.layers.dense({ units: s.hidden, activation: 'relu', kernelInitializer: 'zeros' }).apply(x) as Sym;
  return tfl.model({
    inputs: input,
    outputs: tfl.layers.dense({ units: s.classes, kernelInitializer: 'zeros' }).apply(x) as Sym,
  });
}

/**
 * Every weight on a grid: kernels within ±1.5/√fan-in (now and then a filter all zero, as pruning leaves it),
 * biases in [−0.5, 0.5], β in ±[1/16, 1/2], γ in [0.5, 1.5], moving means in [−0.5, 0.5], moving variances in [0.5, 2].
 */
function drawWeights(rng: Rng, model: tfl.LayersModel): Float32Array[] {
  return model.weights.map((w) => {
    const shape = w.shape as number[];
    const size = shape.reduce((a, d) => a * d, 1);
    const name = w.originalName;
    if (/gamma$/.test(name)) return Float32Array.from({ length: size }, () => 1 + grid(rng, 8, 0.5));
    if (/moving_variance$/.test(name)) return Float32Array.from({ length: size }, () => 1.25 + grid(rng, 8, 0.75));
    // β away from zero: a channel that is constant over the batch (a zero filter) normalizes to 0 but for
    // rounding, and a relu after it would sit on its kink, where the backends' rounding picks the side.
    if (/beta$/.test(name))
      return Float32Array.from({ length: size }, () => ((rng.next() < 0.5 ? -1 : 1) * (1 + rng.int(8))) / 16);
    // Biases off the grid by 1/97: a relu's input (a sum of grid products and a bias) is then never exactly
    // zero, where rounding in a batch normalization before it would pick the kink's side.
    if (shape.length === 1) return Float32Array.from({ length: size }, () => grid(rng, 8, 0.5) + 1 / 97);
    // A depthwise filter [3, 3, C, 1] has a filter per channel, of 9 inputs.
    const out = /depthwise_kernel$/.test(name) ? shape[2] : shape[shape.length - 1];
    const fanIn = size / out;
    const range = Math.min(0.75, Math.max(1 / 16, 1.5 / Math.sqrt(fanIn)));
    const zeroFilter = rng.next() < 0.3 ? rng.int(out) : -1;
    return Float32Array.from({ length: size }, (_, i) => (i % out === zeroFilter ? 0 : grid(rng, 64, range)));
  });
}

/** The batch: quarters in [−1, 1] with exact zeros; now and then a constant sample. */
function drawInputs(rng: Rng, s: Spec): Float32Array {
  const size = s.input[0] * s.input[1] * s.input[2];
  const x = new Float32Array(s.batch * size);
  const zeros = rng.next() * 0.4;
  for (let i = 0; i < x.length; i++) x[i] = rng.next() < zeros ? 0 : grid(rng, 4, 1);
  for (let b = 0; b < s.batch; b++) if (rng.next() < 0.15) x.fill(grid(rng, 4, 1), b * size, (b + 1) * size);
  return x;
}

/**
 * How close to its kink the relu input nearest to it comes on the cpu backend, relative to the largest value
 * of that input: every relu layer's input, and the hidden dense layer's pre-activation.
 */
async function nearestKink(s: Spec, weights: Float32Array[], x: { values: Float32Array; shape: number[] }) {
  const previous = tf.getBackend();
  await useCpu();
  const model = build(s);
  try {
    model.setWeights(model.weights.map((w, i) => tf.tensor(weights[i], w.shape as number[], 'float32')));
    const relus = model.layers.filter((l) => ['Activation', 'ReLU'].includes(l.getClassName()));
    const hidden = s.hidden ? model.layers[model.layers.length - 2] : null;
    const probed = [...relus, ...(hidden ? [hidden] : [])].map((l) => l.input as tfl.SymbolicTensor);
    if (!probed.length) return Infinity;
    return tf.tidy(() => {
      const probe = tfl.model({ inputs: model.inputs, outputs: probed });
      const out = [probe.apply(tf.tensor(x.values, x.shape), { training: true }) as tf.Tensor | tf.Tensor[]].flat();
      if (hidden) {
        const [kernel, bias] = hidden.getWeights();
        out.push(tf.add(tf.matMul(out.pop() as tf.Tensor2D, kernel as tf.Tensor2D), bias));
      }
      let nearest = Infinity;
      for (const t of out) {
        const values = t.dataSync() as Float32Array;
        const scale = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        // relu6's second kink, at 6, counts too (a plain relu's input is nowhere near it on these grids).
        for (const v of values)
          nearest = Math.min(nearest, Math.min(Math.abs(v), Math.abs(v - 6)) / Math.max(scale, 1e-30));
      }
      return nearest;
    });
  } finally {
    model.dispose();
    await tf.setBackend(previous);
  }
}

async function runCase(index: number): Promise<{ failures: string[]; graphStep: boolean; onKink: boolean }> {
  const rng = new Rng(SEED * 1_000_003 + index + 500_000);
  const s = drawSpec(rng.fork(1));
  const failures: string[] = [];
  const fail = (what: string) => failures.push(what);
  const model = build(s);
  let graphStep = false;
  let onKink = false;
  try {
    const weights = drawWeights(rng.fork(2), model);
    const xData = drawInputs(rng.fork(3), s);
    const width = s.classes;
    const labels = Int32Array.from({ length: s.batch }, () => rng.int(s.task === 'binary' ? 2 : width));
    const teacher = Float32Array.from({ length: s.batch * width }, () => rng.next());
    const t = lossTargets(s.loss, s.task, labels, width, teacher, { minWeight: 0.75, gamma: 5 });
    const targets = Float32Array.from(t.targets);
    const sampleWeights = Float32Array.from(t.weights);
    const shape = [s.batch, ...s.input];
    const ref = await referenceOnCpu(() => build(s), weights, { values: xData, shape }, s.task, targets, sampleWeights);
    if (!Number.isFinite(ref.loss)) return { failures, graphStep, onKink: false };
    // A relu input within float32 rounding (magnified by a batch normalization) of zero can take the other
    // side of the kink on one backend, moving a gradient summed over a few hundred positions by ~1/positions
    // of its scale: such a case compares the losses only.
    onKink = (await nearestKink(s, weights, { values: xData, shape })) < KINK;
    const largest = Math.max(...ref.grads.map((g) => g.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
    const compare = (what: string, ours: ArrayLike<number>, theirs: ArrayLike<number>, floor: number) => {
      if (onKink) return;
      const bad = firstNonFinite(ours, theirs);
      if (bad >= 0) return fail(`${what}: ${ours[bad]} at ${bad} where the cpu backend has ${theirs[bad]}`);
      const d = scaledDiff(ours, theirs, floor);
      if (!(d <= TOLERANCE)) fail(`${what}: ${d.toExponential(2)} of the cpu backend's scale apart`);
    };
    const compareLoss = (what: string, ours: number) => {
      if (!(Math.abs(ours - ref.loss) <= LOSS_TOLERANCE * Math.max(1, Math.abs(ref.loss))))
        fail(`${what}: loss ${ours} vs cpu ${ref.loss}`);
    };

    const set = () =>
      model.setWeights(model.weights.map((w, i) => tf.tensor(weights[i], w.shape as number[], 'float32')));
    set();
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const moving = model.weights
      .map((w, i) => ({ w, i }))
      .filter(({ w }) => /moving_(mean|variance)$/.test(w.originalName));
    const restore = poisonHeapOutputs();
    const x = tf.tensor(xData, shape, 'float32');
    const rows = Int32Array.from({ length: s.batch }, (_, i) => i);
    try {
      // The tfjs path, as training runs it on wasm; it writes the moving statistics from this batch.
      const tfjs = tfjsPathGradients(model, x, s.task, targets, sampleWeights, variables);
      compareLoss('tfjs path', tfjs.loss);
      variables.forEach((v, i) =>
        compare(`tfjs path gradient ${i} (${v.name})`, tfjs.grads[i], ref.grads[i], 1e-2 * largest),
      );
      const tfjsMoving = moving.map(({ w }) => Float32Array.from(w.read().dataSync()));
      // The graph step, from the same weights.
      set();
      const step = graphStepFor(model, variables);
      if (step) {
        graphStep = true;
        const r = step.run(s.task, x, rows, targets, sampleWeights);
        compareLoss('graph step', r.loss);
        variables.forEach((v, i) =>
          compare(`graph step gradient ${i} (${v.name})`, r.grads[v.name].dataSync(), ref.grads[i], 1e-2 * largest),
        );
        tf.dispose(Object.values(r.grads));
        moving.forEach(({ w }, k) => compare(`graph step ${w.originalName}`, w.read().dataSync(), tfjsMoving[k], 1e-3));
      }
    } finally {
      x.dispose();
      restore();
    }
    if (failures.length) failures.unshift(`spec ${JSON.stringify(s)}`);
  } finally {
    model.dispose();
  }
  return { failures, graphStep, onKink };
}

test(`the graph step and the tfjs path match the cpu backend on ${ONLY === null ? CASES : 1} random ResNet-like models (seed ${SEED})`, async () => {
  await initBackend('wasm');
  const shown: string[] = [];
  let failed = 0;
  let took = 0;
  let kinks = 0;
  const indices = ONLY === null ? Array.from({ length: CASES }, (_, i) => i) : [ONLY];
  for (const i of indices) {
    const { failures, graphStep, onKink } = await runCase(i);
    if (graphStep) took++;
    if (onKink) kinks++;
    if (!failures.length) continue;
    failed++;
    shown.push(...failures.slice(0, 4).map((f) => `case ${i}: ${f}`));
  }
  console.log(
    `fuzz (graph): ${indices.length} cases, the graph step took ${took}, ${kinks} on a kink (losses compared only)`,
  );
  assert.equal(
    failed,
    0,
    `${failed} of ${indices.length} cases differ from the cpu backend (FAIRPRUNE_FUZZ_SEED=${SEED}, FAIRPRUNE_FUZZ_CASE=N runs one):\n${shown.slice(0, 12).join('\n')}`,
  );
  // Most cases are of the shapes the step takes: a step that stopped taking them would test nothing here.
  if (ONLY === null)
    assert.ok(took >= indices.length / 2, `the graph step took only ${took} of ${indices.length} cases`);
});
