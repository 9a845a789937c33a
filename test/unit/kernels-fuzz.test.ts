/**
 * Differential fuzzing of the wasm paths against the cpu backend (issue 25).
 *
 * Each case draws, from a seed, a small model of the kinds the heap steps (conv-step.ts, dense-step.ts)
 * and Fair Prune's wasm kernels (kernels/, the SIMD module) take or turn away — convolutions with odd and
 * small filter counts, strides, 'same'/'valid', kernels 1–5, relu or linear, with or without a bias;
 * max pooling 2×2/2 (the heap step's), 2×2/1, 3×3/2 and 3×3/3, 'valid' or 'same'; dense chains with any
 * widths; binary (one logit) or multiclass — with masked filters and units (their kernel slices, biases
 * and the consumers' input rows zeroed, and their gradients masked, as structured pruning leaves them),
 * filters that are zero without a mask, and inputs with exact zeros, all-zero samples, constant patches
 * and channels that repeat (grey images loaded as RGB). Values are on coarse binary grids, so that the
 * forward sums are mostly exact in float32 on both backends and max-pooling ties are the same ties.
 *
 * On wasm, with every float32 tensor the backend allocates starting full of NaN (a kernel that reads what
 * it did not write shows up), it compares with the cpu backend (stock tfjs kernels):
 *  - the forward pass (the inference logits),
 *  - the tfjs path's loss and every gradient (`tf.variableGrads`, as training runs on wasm),
 *  - the gradients of a random subset of the weights with the tensor loss (as the Taylor criterion asks),
 *  - the heap step's loss and every gradient, where conv-step.ts or dense-step.ts takes the model,
 *  - two Adam steps (the wasm training loop's `createAdam`) from the same masked gradients.
 * Tolerance: every tensor within 1e-4 · max(max |cpu value|, 1e-3) of the cpu backend's (float32 sums
 * in another order differ by far less; a wrong kernel by far more); a loss within 1e-5 relative. A value
 * that is not finite where the cpu backend's is fails the case.
 *
 * FAIRPRUNE_FUZZ_CASES (default 200) sets the number of cases, FAIRPRUNE_FUZZ_SEED (default 25) the seed,
 * FAIRPRUNE_FUZZ_CASE one case to run alone (as a failure names it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../src/core/backend';
import { convStepFor } from '../../src/core/conv-step';
import { denseStepFor } from '../../src/core/dense-step';
import { createAdam } from '../../src/core/kernels/adam';
import { lossTargets, weightedCrossEntropy } from '../../src/core/losses';
import { Rng } from '../../src/core/rng';
import type { Task } from '../../src/protocol/results';
import { firstNonFinite, poisonHeapOutputs, referenceOnCpu, scaledDiff, tfjsPathGradients } from '../wasm-reference';

const CASES = Number(process.env.FAIRPRUNE_FUZZ_CASES ?? 300);
const SEED = Number(process.env.FAIRPRUNE_FUZZ_SEED ?? 25);
const ONLY = process.env.FAIRPRUNE_FUZZ_CASE === undefined ? null : Number(process.env.FAIRPRUNE_FUZZ_CASE);
const TOLERANCE = 1e-4;
const LOSS_TOLERANCE = 1e-5;
const LR = 0.01;

type Act = 'relu' | 'linear';
interface ConvSpec {
  filters: number;
  kernel: number;
  strides: number;
  padding: 'same' | 'valid';
  activation: Act;
  useBias: boolean;
  pool?: { size: number; strides: number; padding: 'same' | 'valid' };
}
interface DenseSpec {
  units: number;
  activation: Act;
  useBias: boolean;
}
interface Spec {
  /** [H, W, C] for a CNN, [features] for a dense chain. */
  input: number[];
  convs: ConvSpec[];
  dense: DenseSpec[];
  task: Task;
  batch: number;
  loss: 'ce' | 'pw';
}

function build(s: Spec): tfl.LayersModel {
  const layers: tfl.layers.Layer[] = [];
  const first = (i: number) => (i === 0 ? { inputShape: s.input } : {});
  s.convs.forEach((c, i) => {
    layers.push(
      tfl.layers.conv2d({
        ...first(i),
        filters: c.filters,
        kernelSize: c.kernel,
        strides: c.strides,
        padding: c.padding,
        activation: c.activation,
        useBias: c.useBias,
        kernelInitializer: 'zeros',
      }),
    );
    if (c.pool)
      layers.push(tfl.layers.maxPooling2d({ poolSize: c.pool.size, strides: c.pool.strides, padding: c.pool.padding }));
  });
  if (s.convs.length) layers.push(tfl.layers.flatten());
  s.dense.forEach((d, i) => {
    layers.push(
      tfl.layers.dense({
        ...(s.convs.length ? {} : first(i)),
        units: d.units,
        activation: d.activation,
        useBias: d.useBias,
        kernelInitializer: 'zeros',
      }),
    );
  });
  return tfl.sequential({ layers });
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];
const outSize = (n: number, k: number, s: number, padding: 'same' | 'valid') =>
  padding === 'same' ? Math.ceil(n / s) : Math.floor((n - k) / s) + 1;

/** A random model of the kinds the wasm paths take (see the file's comment). */
function drawSpec(rng: Rng): Spec {
  // Half the CNNs are of the shape the conv step takes (channels and hidden units in fours, later
  // convolutions of stride 1, 2×2/2 pooling); the rest take the tfjs path with Fair Prune's kernels.
  const heapShaped = rng.next() < 0.5;
  const task: Task = rng.next() < 0.25 ? 'binary' : 'multiclass';
  const outUnits = task === 'binary' ? 1 : pick(rng, [2, 3, 4, 5, 10]);
  const units = heapShaped ? [4, 8, 12, 16] : [1, 2, 3, 4, 5, 6, 8, 12, 16];
  const hidden = (): DenseSpec => ({
    units: pick(rng, units),
    activation: rng.next() < 0.75 ? 'relu' : 'linear',
    useBias: rng.next() < 0.85,
  });
  const dense: DenseSpec[] = Array.from({ length: rng.int(3) }, hidden);
  dense.push({ units: outUnits, activation: 'linear', useBias: rng.next() < 0.9 });
  const batch = 1 + rng.int(9);
  const loss = rng.next() < 0.5 ? 'ce' : 'pw';
  if (rng.next() < 0.2) return { input: [1 + rng.int(24)], convs: [], dense, task, batch, loss }; // a dense chain
  let [H, W] = [2 + rng.int(10), 2 + rng.int(10)];
  const input = [H, W, pick(rng, [1, 2, 3, 3, 4, 8])];
  const convs: ConvSpec[] = [];
  const count = 1 + rng.int(3);
  for (let i = 0; i < count; i++) {
    // Filter counts in fours half the time (what the heap step and most SIMD kernels take), else any.
    const filters = heapShaped || rng.next() < 0.3 ? pick(rng, [4, 8, 12, 16]) : pick(rng, [1, 2, 3, 5, 6, 7, 9]);
    const kernel = Math.min(pick(rng, [1, 2, 3, 3, 3, 5]), H, W);
    const strides = rng.next() < (i === 0 ? 0.25 : heapShaped ? 0 : 0.1) ? 2 : 1;
    const padding = rng.next() < 0.7 ? 'same' : 'valid';
    const [oh, ow] = [outSize(H, kernel, strides, padding), outSize(W, kernel, strides, padding)];
    if (oh < 1 || ow < 1) break;
    const c: ConvSpec = {
      filters,
      kernel,
      strides,
      padding,
      activation: rng.next() < 0.8 ? 'relu' : 'linear',
      useBias: rng.next() < 0.85,
    };
    [H, W] = [oh, ow];
    if (rng.next() < 0.6) {
      const pool =
        heapShaped || rng.next() < 0.4
          ? { size: 2, strides: 2, padding: 'valid' as const }
          : { size: pick(rng, [2, 3]), strides: pick(rng, [1, 2, 3]), padding: pick(rng, ['same', 'valid'] as const) };
      const [ph, pw] = [
        outSize(H, pool.size, pool.strides, pool.padding),
        outSize(W, pool.size, pool.strides, pool.padding),
      ];
      if (ph >= 1 && pw >= 1 && (pool.padding === 'same' || (H >= pool.size && W >= pool.size))) {
        c.pool = pool;
        [H, W] = [ph, pw];
      }
    }
    convs.push(c);
  }
  return { input, convs, dense, task, batch, loss };
}

/** Values on a grid of 1/`q` in [−m, m]. */
const grid = (rng: Rng, q: number, m: number) => Math.round((2 * rng.next() - 1) * m * q) / q;

/** The batch: quarters in [−1, 1], with exact zeros, all-zero samples, constant patches and repeated channels. */
function drawInputs(rng: Rng, s: Spec): Float32Array {
  const size = s.input.reduce((a, d) => a * d, 1);
  const x = new Float32Array(s.batch * size);
  const zeros = rng.next() * 0.5;
  for (let i = 0; i < x.length; i++) x[i] = rng.next() < zeros ? 0 : grid(rng, 4, 1);
  if (s.input.length === 3) {
    const [H, W, C] = s.input;
    for (let b = 0; b < s.batch; b++) {
      const at = (y: number, xx: number, c: number) => b * size + (y * W + xx) * C + c;
      if (rng.next() < 0.15) x.fill(0, b * size, (b + 1) * size);
      if (rng.next() < 0.4) {
        // a constant patch: ties in every window over it
        const v = grid(rng, 4, 1);
        const [y0, x0] = [rng.int(H), rng.int(W)];
        for (let y = y0; y < Math.min(H, y0 + 1 + rng.int(4)); y++)
          for (let xx = x0; xx < Math.min(W, x0 + 1 + rng.int(4)); xx++)
            for (let c = 0; c < C; c++) x[at(y, xx, c)] = v;
      }
      if (rng.next() < 0.3)
        for (let p = 0; p < H * W; p++) for (let c = 1; c < C; c++) x[b * size + p * C + c] = x[b * size + p * C]; // grey as RGB
    }
  }
  return x;
}

interface Drawn {
  weights: Float32Array[];
  /** Per trainable weight: 1 where the gradient passes, 0 where a mask holds it at zero. */
  masks: Float32Array[];
}

/**
 * Weights on grids (kernels 1/64 within ±1.5/√fan-in, at most ±0.75; biases 1/8 in [−0.5, 0.5]), then masks: a random set of
 * each hidden layer's output channels removed as structured pruning removes them (kernel slice, bias, the
 * next weighted layer's input rows, and the gradients there), and now and then a channel zeroed without a mask.
 */
function drawWeights(rng: Rng, s: Spec, model: tfl.LayersModel): Drawn {
  const shapes = model.weights.map((w) => w.shape as number[]);
  const weights = shapes.map((shape) => {
    const bias = shape.length === 1;
    // Kernels scaled to their fan-in, so that activations stay near 1 in every layer: float32 rounding
    // relative to the sums, not magnified by the cancellations of ever larger ones (seen at 1e-3 of scale
    // in 1 of 1,500 models with kernels of one range for all layers).
    const fanIn = shape.slice(0, -1).reduce((a, d) => a * d, 1);
    const range = Math.min(0.75, Math.max(1 / 16, 1.5 / Math.sqrt(fanIn)));
    return Float32Array.from({ length: shape.reduce((a, d) => a * d, 1) }, () =>
      bias && rng.next() < 0.3 ? 0 : bias ? grid(rng, 8, 0.5) : grid(rng, 64, range),
    );
  });
  const masks = weights.map((w) => new Float32Array(w.length).fill(1));
  // The weighted layers in order, with the index of their kernel (and bias) among the weights.
  const weighted: { kernel: number; bias: number | null; out: number }[] = [];
  let wi = 0;
  for (const layer of model.layers) {
    const n = layer.weights.length;
    if (!n) continue;
    const kernelShape = shapes[wi];
    weighted.push({ kernel: wi, bias: n > 1 ? wi + 1 : null, out: kernelShape[kernelShape.length - 1] });
    wi += n;
  }
  for (let li = 0; li < weighted.length - 1; li++) {
    const l = weighted[li];
    const next = weighted[li + 1];
    const gone = new Set<number>();
    const masked = rng.next() < 0.5;
    if (masked || rng.next() < 0.3) for (let c = 0; c < l.out - 1; c++) if (rng.next() < 0.4) gone.add(c); // a layer keeps one channel at least
    if (!gone.size) continue;
    const zero = (wIdx: number, pred: (i: number) => boolean) => {
      for (let i = 0; i < weights[wIdx].length; i++) {
        if (!pred(i)) continue;
        weights[wIdx][i] = 0;
        if (masked) masks[wIdx][i] = 0;
      }
    };
    zero(l.kernel, (i) => gone.has(i % l.out));
    if (l.bias !== null) zero(l.bias, (i) => gone.has(i));
    if (!masked) continue;
    // The consumer's rows for the removed channels: a convolution's input channel (axis −2), a dense layer's
    // row (position · C + channel after a flatten; the channel itself after a dense layer).
    const nextOut = next.out;
    const inRows = shapes[next.kernel][shapes[next.kernel].length - 2];
    zero(next.kernel, (i) => gone.has((Math.floor(i / nextOut) % inRows) % l.out));
  }
  return { weights, masks };
}

interface Failure {
  index: number;
  what: string;
}

interface Outcome {
  failures: Failure[];
  /** Which heap step took the model, if one did. */
  heapStep: 'conv' | 'dense' | null;
}

async function runCase(index: number): Promise<Outcome> {
  const rng = new Rng(SEED * 1_000_003 + index);
  const s = drawSpec(rng.fork(1));
  const failures: Failure[] = [];
  const fail = (what: string) => failures.push({ index, what });
  const model = build(s);
  let heapStep: Outcome['heapStep'] = null;
  try {
    const { weights, masks } = drawWeights(rng.fork(2), s, model);
    const xData = drawInputs(rng.fork(3), s);
    const width = model.outputs[0].shape[1] as number;
    const labels = Int32Array.from({ length: s.batch }, () => rng.int(s.task === 'binary' ? 2 : width));
    const teacher = Float32Array.from({ length: s.batch * width }, () => rng.next());
    const t = lossTargets(s.loss, s.task, labels, width, teacher, { minWeight: 0.75, gamma: 5 });
    const targets = Float32Array.from(t.targets);
    const sampleWeights = Float32Array.from(t.weights);
    const trainable = new Set(model.trainableWeights.map((w) => w.originalName));
    const trainableIdx = model.weights.map((w, i) => (trainable.has(w.originalName) ? i : -1)).filter((i) => i >= 0);

    // The reference first (its gradients, masked, are the Adam steps' gradients on both backends).
    const shape = [s.batch, ...s.input];
    const adamSets = (grads: Float32Array[]) => {
      const masked = grads.map((g, i) => g.map((v, j) => v * masks[trainableIdx[i]][j]));
      return [masked, masked.map((g) => g.map((v) => -0.5 * v))];
    };
    const ref = await referenceOnCpu(
      () => build(s),
      weights,
      { values: xData, shape },
      s.task,
      targets,
      sampleWeights,
      adamSets,
      LR,
    );
    const adamGrads = ref.adamGrads;
    if (!Number.isFinite(ref.loss)) return { failures, heapStep }; // nothing to compare against (not seen with these grids)

    const compare = (what: string, ours: ArrayLike<number>, theirs: ArrayLike<number>, floor = 1e-3) => {
      const bad = firstNonFinite(ours, theirs);
      if (bad >= 0) return fail(`${what}: ${ours[bad]} at ${bad} where the cpu backend has ${theirs[bad]}`);
      const d = scaledDiff(ours, theirs, floor);
      if (!(d <= TOLERANCE)) fail(`${what}: ${d.toExponential(2)} of the cpu backend's scale apart`);
    };
    const compareLoss = (what: string, ours: number) => {
      if (!Number.isFinite(ours)) return fail(`${what}: loss ${ours}, cpu ${ref.loss}`);
      if (!(Math.abs(ours - ref.loss) <= LOSS_TOLERANCE * Math.max(1, Math.abs(ref.loss))))
        fail(`${what}: loss ${ours} vs cpu ${ref.loss}`);
    };

    model.setWeights(model.weights.map((w, i) => tf.tensor(weights[i], w.shape as number[], 'float32')));
    const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const restore = poisonHeapOutputs();
    try {
      const x = tf.tensor(xData, shape, 'float32');
      const rows = Int32Array.from({ length: s.batch }, (_, i) => i);
      try {
        // Forward (inference: the fused kernels).
        compare(
          'logits',
          tf.tidy(() => (model.apply(x, { training: false }) as tf.Tensor).dataSync()),
          ref.logits,
        );
        // The tfjs path, as training runs it on wasm.
        {
          const tfjs = tfjsPathGradients(model, x, s.task, targets, sampleWeights, variables);
          compareLoss('tfjs path', tfjs.loss);
          variables.forEach((v, i) => compare(`tfjs path gradient ${i} (${v.name})`, tfjs.grads[i], ref.grads[i]));
        }
        // A subset of the weights with the tensor loss, as the Taylor criterion scores channels.
        {
          const subset = variables.map((v, i) => [v, i] as const).filter(() => rng.next() < 0.5);
          if (subset.length) {
            const tt = tf.tensor2d(targets, [s.batch, width]);
            const sw = tf.tensor1d(sampleWeights);
            const { value, grads } = tf.variableGrads(
              () => weightedCrossEntropy(s.task, model.apply(x, { training: false }) as tf.Tensor2D, tt, sw),
              subset.map(([v]) => v),
            );
            compareLoss('subset', value.dataSync()[0]);
            for (const [v, i] of subset)
              compare(`subset gradient ${i} (${v.name})`, grads[v.name].dataSync(), ref.grads[i]);
            tf.dispose([value, grads, tt, sw]);
          }
        }
        // The heap step, where one takes the model.
        const dense = denseStepFor(model, variables, s.batch);
        const step = dense ?? convStepFor(model, variables);
        if (step) {
          heapStep = dense ? 'dense' : 'conv';
          const r = step.run(s.task, x, rows, targets, sampleWeights);
          compareLoss('heap step', r.loss);
          variables.forEach((v, i) =>
            compare(`heap step gradient ${i} (${v.name})`, r.grads[v.name].dataSync(), ref.grads[i]),
          );
          tf.dispose(Object.values(r.grads));
        }
        // Two Adam steps from the same gradients.
        const adam = createAdam(LR);
        try {
          adamGrads.forEach((set, k) => {
            const named: Record<string, tf.Tensor> = {};
            variables.forEach((v, i) => (named[v.name] = tf.tensor(set[i], v.shape as number[], 'float32')));
            adam.applyGradients(named);
            tf.dispose(Object.values(named));
            variables.forEach((v, i) =>
              compare(`Adam step ${k + 1}, weight ${i} (${v.name})`, v.dataSync(), ref.adam[k][i], 1),
            );
          });
        } finally {
          adam.dispose();
        }
      } finally {
        x.dispose();
      }
    } finally {
      restore();
    }
    if (failures.length) failures.unshift({ index, what: `spec ${JSON.stringify(s)}` });
  } finally {
    model.dispose();
  }
  return { failures, heapStep };
}

test(`the wasm paths match the cpu backend on ${ONLY === null ? CASES : 1} random models (seed ${SEED})`, async () => {
  await initBackend('wasm');
  const failures: Failure[] = [];
  const failed = new Set<number>();
  const indices = ONLY === null ? Array.from({ length: CASES }, (_, i) => i) : [ONLY];
  const steps = { conv: 0, dense: 0 };
  for (const i of indices) {
    const { failures: f, heapStep } = await runCase(i);
    if (f.length) failed.add(i);
    failures.push(...f);
    if (heapStep) steps[heapStep]++;
  }
  // What the cases exercised, for whoever reads the log.
  console.log(`fuzz: ${indices.length} cases, the conv step took ${steps.conv}, the dense step ${steps.dense}`);
  const shown = failures
    .slice(0, 12)
    .map((f) => `case ${f.index}: ${f.what}`)
    .join('\n');
  assert.equal(
    failed.size,
    0,
    `${failed.size} of ${indices.length} cases differ from the cpu backend (FAIRPRUNE_FUZZ_SEED=${SEED}, FAIRPRUNE_FUZZ_CASE=N runs one):\n${shown}`,
  );
});
