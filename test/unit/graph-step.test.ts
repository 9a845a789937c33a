/**
 * The heap training step for image models with branches (src/core/graph-step.ts): which models it takes
 * and the reason it gives for those it does not, its loss and gradients against the cpu backend's for each
 * layer kind it runs (strided and 1×1 convolutions, batch normalization in training mode with and without
 * the relu after it, residual adds, global average pooling, dense layers), the moving statistics it
 * writes against the tfjs path's, what it leaves on the heap, and training through it against the tfjs path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../src/core/backend';
import { graphPlanOf, graphStepFor } from '../../src/core/graph-step';
import { wrapSimdKernels } from '../../src/core/kernels/simd-kernels';
import { lossTargets } from '../../src/core/losses';
import { trainingPathOf } from '../../src/core/train';
import { Rng } from '../../src/core/rng';
import { relDiff } from '../helpers';
import {
  ceTrainingData,
  firstNonFinite,
  poisonHeapOutputs,
  referenceOnCpu,
  scaledDiff,
  trainWithAndWithoutHeapStep,
} from '../wasm-reference';

const init = (seed: number) => tfl.initializers.glorotUniform({ seed });
const near = (seed: number, mean = 0) => tfl.initializers.randomNormal({ seed, mean, stddev: 0.3 });

let seed = 0;
const conv = (
  x: tfl.SymbolicTensor,
  filters: number,
  opts: { kernel?: number; strides?: number; padding?: 'same' | 'valid'; activation?: string; useBias?: boolean } = {},
) =>
  tfl.layers
    .conv2d({
      filters,
      kernelSize: opts.kernel ?? 3,
      strides: opts.strides ?? 1,
      padding: opts.padding ?? 'same',
      activation: (opts.activation ?? 'linear') as 'linear',
      useBias: opts.useBias ?? true,
      kernelInitializer: init(++seed),
      biasInitializer: near(++seed),
    })
    .apply(x) as tfl.SymbolicTensor;
const bn = (x: tfl.SymbolicTensor) =>
  tfl.layers
    .batchNormalization({
      momentum: 0.9,
      epsilon: 1e-3,
      gammaInitializer: near(++seed, 1),
      betaInitializer: near(++seed),
      movingMeanInitializer: near(++seed),
      movingVarianceInitializer: 'ones',
    })
    .apply(x) as tfl.SymbolicTensor;
const relu = (x: tfl.SymbolicTensor) => tfl.layers.activation({ activation: 'relu' }).apply(x) as tfl.SymbolicTensor;
const relu6 = (x: tfl.SymbolicTensor) => tfl.layers.reLU({ maxValue: 6 }).apply(x) as tfl.SymbolicTensor;
const depthwise = (
  x: tfl.SymbolicTensor,
  opts: { kernel?: number; strides?: number; padding?: 'same' | 'valid'; useBias?: boolean } = {},
) =>
  tfl.layers
    .depthwiseConv2d({
      kernelSize: opts.kernel ?? 3,
      strides: opts.strides ?? 1,
      padding: opts.padding ?? 'same',
      useBias: opts.useBias ?? false,
      depthwiseInitializer: tfl.initializers.randomNormal({ seed: ++seed, stddev: 0.5 }),
      biasInitializer: near(++seed),
    })
    .apply(x) as tfl.SymbolicTensor;
/**
 * The classifier: global average pooling (or an average pooling over the whole map, flattened) and a dense
 * layer; or `keras`, keras.applications.MobileNet's: the pooled channels reshaped to one pixel, a dropout of
 * that rate, a 1×1 convolution to the classes, reshaped to [classes], then the (here linear) activation.
 */
const head = (x: tfl.SymbolicTensor, classes: number, pool: 'global' | 'average' | { keras: number } = 'global') => {
  if (typeof pool === 'object') {
    const channels = x.shape[3] as number;
    const apply = (layer: tfl.layers.Layer, t: tfl.SymbolicTensor) => layer.apply(t) as tfl.SymbolicTensor;
    let y = apply(tfl.layers.globalAveragePooling2d({}), x);
    y = apply(tfl.layers.reshape({ targetShape: [1, 1, channels] }), y);
    y = apply(tfl.layers.dropout({ rate: pool.keras }), y);
    y = conv(y, classes, { kernel: 1 });
    y = apply(tfl.layers.reshape({ targetShape: [classes] }), y);
    return apply(tfl.layers.activation({ activation: 'linear' }), y);
  }
  const pooled =
    pool === 'global'
      ? (tfl.layers.globalAveragePooling2d({}).apply(x) as tfl.SymbolicTensor)
      : (tfl.layers
          .flatten()
          .apply(
            tfl.layers.averagePooling2d({ poolSize: x.shape.slice(1, 3) as [number, number] }).apply(x),
          ) as tfl.SymbolicTensor);
  return tfl.layers
    .dense({ units: classes, kernelInitializer: init(++seed), biasInitializer: near(++seed) })
    .apply(pooled) as tfl.SymbolicTensor;
};

/**
 * A ResNet v1 of `stages` stages (16, 32, … filters), one residual block each, as Keras' cifar10_resnet builds
 * it; `useBias` false leaves out the biases of the convolutions before a batch normalization.
 */
function resnet(
  input: [number, number, number],
  stages: number,
  classes: number,
  pool: 'global' | 'average' = 'average',
  useBias = true,
): tfl.LayersModel {
  seed = 100;
  const inp = tfl.input({ shape: input });
  let x = relu(bn(conv(inp, 16, { useBias })));
  for (let s = 0; s < stages; s++) {
    const filters = 16 << s;
    const strides = s === 0 ? 1 : 2;
    let y = relu(bn(conv(x, filters, { strides, useBias })));
    y = bn(conv(y, filters, { useBias }));
    if (s > 0) x = conv(x, filters, { kernel: 1, strides: 2 }); // the projection shortcut
    x = relu(tfl.layers.add().apply([x, y]) as tfl.SymbolicTensor);
  }
  return tfl.model({ inputs: inp, outputs: head(x, classes, pool) });
}

/**
 * MobileNet v1's body as Keras builds it, small: a 3×3 stride-2 convolution, then depthwise 3×3 + pointwise 1×1
 * pairs, each followed by batch normalization and relu6, no biases; `channels` per pair (not in fours, as at
 * width 0.35), `strides` of the depthwise convolutions. `kerasPadding`: a stride-2 depthwise convolution is
 * 'valid' after a ZeroPadding2D ((0, 1), (0, 1)), as keras.applications.MobileNet builds it.
 */
function mobilenet(
  input: [number, number, number],
  first: number,
  pairs: [number, number][],
  classes: number,
  kerasPadding = false,
  kerasHead?: { keras: number },
) {
  seed = 300;
  const inp = tfl.input({ shape: input });
  let x = relu6(bn(conv(inp, first, { strides: 2, useBias: false })));
  for (const [channels, strides] of pairs) {
    if (kerasPadding && strides === 2) {
      const padded = tfl.layers
        .zeroPadding2d({
          padding: [
            [0, 1],
            [0, 1],
          ],
        })
        .apply(x) as tfl.SymbolicTensor;
      x = relu6(bn(depthwise(padded, { strides, padding: 'valid' })));
    } else x = relu6(bn(depthwise(x, { strides })));
    x = relu6(bn(conv(x, channels, { kernel: 1, useBias: false })));
  }
  return tfl.model({ inputs: inp, outputs: head(x, classes, kerasHead) });
}

/** One small model per layer kind the step adds (the dense head is the conv step's). */
const KINDS: {
  name: string;
  input: [number, number, number];
  classes: number;
  build: (inp: tfl.SymbolicTensor) => tfl.SymbolicTensor;
}[] = [
  {
    name: 'strided 3×3 and 1×1 convolutions (stride 2, same and valid), their input gradients',
    input: [9, 9, 3],
    classes: 3,
    build: (inp) => {
      const a = conv(inp, 8, { activation: 'relu' });
      const b = conv(a, 8, { strides: 2, padding: 'valid', activation: 'relu' });
      const c = conv(b, 12, { kernel: 1, strides: 2, useBias: false });
      return head(conv(c, 8, { strides: 2 }), 3);
    },
  },
  {
    name: 'batch normalization in training mode, then relu (fused), and alone; 20 channels (a line of 16, then 4) and 8',
    input: [6, 6, 3],
    classes: 4,
    build: (inp) => head(bn(conv(relu(bn(conv(inp, 20))), 8)), 4),
  },
  {
    name: 'residual adds: with the relu after (fused), of three tensors, one tensor read by three layers',
    input: [6, 6, 4],
    classes: 2,
    build: (inp) => {
      const a = conv(inp, 8);
      const sum = relu(tfl.layers.add().apply([a, conv(a, 8)]) as tfl.SymbolicTensor);
      const three = tfl.layers.add().apply([sum, conv(sum, 8), conv(sum, 8, { kernel: 1 })]) as tfl.SymbolicTensor;
      return head(relu(three), 2);
    },
  },
  {
    name: 'global average pooling, as GlobalAveragePooling2D and as an AveragePooling2D over the whole map, and a hidden dense relu',
    input: [5, 7, 3],
    classes: 3,
    build: (inp) => {
      const a = conv(inp, 8, { activation: 'relu' });
      const g = tfl.layers.globalAveragePooling2d({}).apply(a) as tfl.SymbolicTensor;
      const p = tfl.layers
        .flatten()
        .apply(tfl.layers.averagePooling2d({ poolSize: [5, 7] }).apply(conv(a, 8))) as tfl.SymbolicTensor;
      const both = tfl.layers.add().apply([g, p]) as tfl.SymbolicTensor;
      const hidden = tfl.layers
        .dense({ units: 8, activation: 'relu', kernelInitializer: init(++seed), biasInitializer: near(++seed) })
        .apply(both) as tfl.SymbolicTensor;
      return tfl.layers.dense({ units: 3, kernelInitializer: init(++seed) }).apply(hidden) as tfl.SymbolicTensor;
    },
  },
  {
    name: "depthwise convolutions ('same' stride 1 and 2, 'valid', 5×5, a bias) on channels not in fours, one on the input",
    input: [9, 9, 5],
    classes: 3,
    build: (inp) => {
      const a = depthwise(inp, { useBias: true });
      const b = depthwise(conv(a, 6), { strides: 2 });
      const c = depthwise(b, { padding: 'valid', useBias: true });
      const d = depthwise(conv(c, 7, { kernel: 1 }), { kernel: 5, strides: 2, padding: 'same' });
      return head(d, 3);
    },
  },
  {
    name: "zero padding ((0, 1), (0, 1)) before stride-2 'valid' depthwise and 3×3 convolutions, as Keras' MobileNet pads, and on all sides; a hidden dense layer of 5 units",
    input: [8, 8, 3],
    classes: 2,
    build: (inp) => {
      const pad = (x: tfl.SymbolicTensor, padding: [number, number][] | number) =>
        tfl.layers
          .zeroPadding2d({ padding: padding as [[number, number], [number, number]] })
          .apply(x) as tfl.SymbolicTensor;
      const keras = [0, 1].map(() => [0, 1] as [number, number]); // ((0, 1), (0, 1))
      const a = conv(pad(inp, keras), 6, { strides: 2, padding: 'valid' });
      const b = depthwise(pad(a, keras), { strides: 2, padding: 'valid' });
      // A hidden dense layer of 5 units: padded to 8 on the heap, the next layer's rows with it.
      const pooled = tfl.layers.globalAveragePooling2d({}).apply(conv(pad(b, 1), 5, { padding: 'valid' }));
      const hidden = tfl.layers
        .dense({ units: 5, activation: 'relu', kernelInitializer: init(++seed), biasInitializer: near(++seed) })
        .apply(pooled) as tfl.SymbolicTensor;
      return tfl.layers.dense({ units: 2, kernelInitializer: init(++seed) }).apply(hidden) as tfl.SymbolicTensor;
    },
  },
  {
    name: 'relu6 after batch normalization (fused) and after an add (fused), alone, and as an activation, channels not in fours',
    input: [6, 6, 3],
    classes: 2,
    build: (inp) => {
      // Wide initial weights, so that many values pass 6.
      const wide = tfl.initializers.randomNormal({ seed: ++seed, stddev: 4 });
      const a = tfl.layers
        .conv2d({ filters: 6, kernelSize: 3, padding: 'same', kernelInitializer: wide })
        .apply(inp) as tfl.SymbolicTensor;
      // A batch normalization whose outputs spread over [−3, 9]: many pass 6.
      const wideBn = tfl.layers.batchNormalization({
        gammaInitializer: tfl.initializers.randomNormal({ seed: ++seed, mean: 3, stddev: 0.5 }),
        betaInitializer: tfl.initializers.randomNormal({ seed: ++seed, mean: 3, stddev: 0.5 }),
      });
      const b = relu6(wideBn.apply(a) as tfl.SymbolicTensor);
      const sum = relu6(tfl.layers.add().apply([b, conv(b, 6, { kernel: 1 })]) as tfl.SymbolicTensor);
      const alone = relu6(a); // `a` is read twice, so this relu6 runs on its own
      const act = tfl.layers.activation({ activation: 'relu6' }).apply(conv(alone, 6)) as tfl.SymbolicTensor;
      return head(tfl.layers.add().apply([sum, act]) as tfl.SymbolicTensor, 2);
    },
  },
  {
    name: "residual blocks' fusions: normalizations run inside the add after them (either input; relu6 and relu after), the gradients of a relu6 read by three layers summed through it, convolution biases summed by the normalization after them",
    input: [6, 6, 4],
    classes: 2,
    build: (inp) => {
      // Outputs spread over [−3, 9], so that many pass 6.
      const wideBn = tfl.layers.batchNormalization({
        gammaInitializer: tfl.initializers.randomNormal({ seed: ++seed, mean: 3, stddev: 0.5 }),
        betaInitializer: tfl.initializers.randomNormal({ seed: ++seed, mean: 3, stddev: 0.5 }),
      });
      const a = relu6(wideBn.apply(conv(inp, 8)) as tfl.SymbolicTensor); // read by the three layers below
      const b = relu6(tfl.layers.add().apply([bn(conv(a, 8)), a]) as tfl.SymbolicTensor);
      const c = relu(tfl.layers.add().apply([conv(a, 8, { kernel: 1 }), bn(conv(b, 8))]) as tfl.SymbolicTensor);
      return head(c, 2);
    },
  },
  {
    name: '2×2 max pooling of stride 2 after batch normalization and relu (fused), on 7×7 maps (the last row and column dropped), channels not in fours',
    input: [7, 7, 3],
    classes: 3,
    build: (inp) => {
      const a = relu(bn(conv(inp, 6)));
      const pooled = tfl.layers.maxPooling2d({ poolSize: 2 }).apply(a) as tfl.SymbolicTensor;
      return head(conv(pooled, 8, { activation: 'relu' }), 3);
    },
  },
  {
    name: "keras.applications.MobileNet's classifier: pooled channels reshaped to one pixel, a 1×1 convolution to 5 classes (padded to 8), reshaped back",
    input: [6, 6, 3],
    classes: 5,
    build: (inp) => head(relu6(bn(conv(inp, 7))), 5, { keras: 0 }),
  },
];

const kindModel = (k: (typeof KINDS)[number]) => () => {
  seed = 200;
  const inp = tfl.input({ shape: k.input });
  return tfl.model({ inputs: inp, outputs: k.build(inp) });
};

test('graphPlanOf: ResNets take the graph step; anything else names the first layer it does not take', async () => {
  await initBackend('wasm');
  const plan = graphPlanOf(resnet([8, 8, 3], 2, 10));
  assert.ok('nodes' in plan, JSON.stringify(plan));
  // Both relus after a batch normalization and the ones after the adds run inside them.
  const relus = plan.nodes.filter((n) => n.kind === 'relu');
  assert.equal(relus.length, 5);
  assert.ok(relus.every((n) => n.kind === 'relu' && n.fused));
  const refused = (build: () => tfl.LayersModel, reason: RegExp) => {
    const m = build();
    const p = graphPlanOf(m);
    assert.ok(
      'unsupported' in p && reason.test(p.unsupported),
      `${'unsupported' in p ? p.unsupported : 'taken'} should match ${reason}`,
    );
    m.dispose();
  };
  const chain = (layers: tfl.layers.Layer[]) => () => tfl.sequential({ layers });
  refused(
    chain([
      tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 8, kernelSize: 3 }),
      tfl.layers.batchNormalization(),
      tfl.layers.dropout({ rate: 0.5, noiseShape: [1, 1, 1, 8] }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 2 }),
    ]),
    /layer 'dropout.*' \(Dropout\) has a noise shape/,
  );
  refused(
    chain([
      tfl.layers.conv2d({ inputShape: [4, 4, 3], filters: 8, kernelSize: 3, padding: 'same' }),
      tfl.layers.batchNormalization(),
      tfl.layers.reshape({ targetShape: [8, 4, 4] }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 2 }),
    ]),
    /\(Reshape\) reshapes \[4,4,8\] to \[8,4,4\] \(the step takes \[1, 1, C\] to \[C\] and back\)/,
  );
  refused(
    chain([
      tfl.layers.conv2d({ inputShape: [9, 9, 3], filters: 8, kernelSize: 3 }),
      tfl.layers.batchNormalization(),
      tfl.layers.maxPooling2d({ poolSize: 3 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 2 }),
    ]),
    /\(MaxPooling2D\) is not a 2×2 pooling of stride 2 and 'valid' padding/,
  );
  refused(
    chain([
      tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 6, kernelSize: 3 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 2 }),
    ]),
    /\(Flatten\) flattens a map of 6 channels/,
  );
  refused(
    chain([
      tfl.layers.depthwiseConv2d({ inputShape: [8, 8, 4], kernelSize: 3, depthMultiplier: 2 }),
      tfl.layers.globalAveragePooling2d({}),
      tfl.layers.dense({ units: 2 }),
    ]),
    /\(DepthwiseConv2D\) has a depth multiplier of 2/,
  );
  refused(
    chain([
      tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 8, kernelSize: 3 }),
      tfl.layers.reLU({ maxValue: 4 }),
      tfl.layers.globalAveragePooling2d({}),
      tfl.layers.dense({ units: 2 }),
    ]),
    /\(ReLU\) is a leaky relu or one capped at other than 6/,
  );
  refused(
    chain([
      tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 8, kernelSize: 3, activation: 'elu' }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 2 }),
    ]),
    /has activation 'elu'/,
  );
  refused(
    chain([
      tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 8, kernelSize: 3 }),
      tfl.layers.averagePooling2d({ poolSize: 2 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 2 }),
    ]),
    /pools windows smaller than the map/,
  );
  refused(
    chain([tfl.layers.dense({ inputShape: [8], units: 4 }), tfl.layers.dense({ units: 2 })]),
    /does not take images/,
  );
  const noScale = () => {
    const inp = tfl.input({ shape: [4, 4, 4] });
    const x = tfl.layers.batchNormalization({ scale: false }).apply(conv(inp, 4)) as tfl.SymbolicTensor;
    return tfl.model({ inputs: inp, outputs: head(x, 2) });
  };
  refused(noScale, /\(BatchNormalization\) has no scale or no offset/);
  const frozen = resnet([8, 8, 3], 1, 2);
  frozen.layers[2].trainable = false;
  refused(() => frozen, /is frozen/);
});

/** The step on one batch of `build()`'s model against the cpu backend's tfjs path; returns the step's model. */
async function againstCpu(
  name: string,
  build: () => tfl.LayersModel,
  input: [number, number, number],
  classes: number,
  batch: number,
  poison = false,
): Promise<void> {
  const rng = new Rng(23);
  const n = batch + 3;
  const size = input.reduce((a, b) => a * b, 1);
  const xData = Float32Array.from({ length: n * size }, () => (rng.next() < 0.1 ? 0 : rng.normal()));
  const labels = Int32Array.from({ length: n }, () => rng.int(classes));
  const t = lossTargets(
    'pw',
    'multiclass',
    labels,
    classes,
    Float32Array.from({ length: n * classes }, () => rng.next()),
    { minWeight: 0.5, gamma: 2 },
  );
  const model = build();
  const weights = model.getWeights().map((w) => Float32Array.from(w.dataSync()));
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const step = graphStepFor(model, variables);
  assert.ok(step, `${name}: the graph step takes it (${JSON.stringify(graphPlanOf(model))})`);
  const x = tf.tensor4d(xData, [n, ...input]);
  const rows = Int32Array.from({ length: batch }, (_, i) => (i * 5 + 1) % n);
  const heapData = tf.engine().backend.numDataIds();
  const restore = poison ? poisonHeapOutputs() : () => undefined;
  let ours: { loss: number; grads: Record<string, tf.Tensor> };
  try {
    ours = step.run('multiclass', x, rows, t.targets, t.weights);
  } finally {
    restore();
  }
  assert.equal(
    tf.engine().backend.numDataIds() - heapData,
    Object.keys(ours.grads).length,
    `${name}: nothing left on the heap but the gradients (and the new moving statistics)`,
  );
  const xb = new Float32Array(batch * size);
  rows.forEach((r, i) => xb.set(xData.subarray(r * size, (r + 1) * size), i * size));
  const pick = (a: ArrayLike<number>, w: number) =>
    Float32Array.from({ length: batch * w }, (_, i) => a[rows[Math.floor(i / w)] * w + (i % w)]);
  const ref = await referenceOnCpu(
    build,
    weights,
    { values: xb, shape: [batch, ...input] },
    'multiclass',
    pick(t.targets, classes),
    pick(t.weights, 1),
  );
  assert.ok(
    Math.abs(ours.loss - ref.loss) < 1e-5 * Math.max(1, ref.loss),
    `${name}: loss ${ours.loss} vs cpu ${ref.loss}`,
  );
  assert.equal(Object.keys(ours.grads).length, variables.length);
  // A convolution's bias before a batch normalization has a gradient of zero but for rounding (the
  // normalization subtracts the mean; both sides hold noise of ~1e-9): a gradient under 1% of the model's
  // largest is compared on that 1% scale, so within 1e-6 of the largest.
  const largest = Math.max(...ref.grads.map((g) => g.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
  variables.forEach((v, i) => {
    const g = ours.grads[v.name].dataSync();
    assert.equal(
      firstNonFinite(g, ref.grads[i]),
      -1,
      `${name} ${v.name}: a non-finite gradient where the cpu backend's is finite`,
    );
    const d = scaledDiff(g, ref.grads[i], 1e-2 * largest);
    assert.ok(d < 1e-4, `${name} ${v.name}: ${d} from the cpu backend's gradient`);
  });
  // The moving statistics: as the tfjs path on wasm writes them from the same batch.
  const twin = build();
  twin.setWeights(weights.map((w, i) => tf.tensor(w, model.weights[i].shape as number[])));
  tf.tidy(() => {
    twin.apply(tf.gather(x, tf.tensor1d(rows, 'int32')), { training: true });
  });
  model.weights.forEach((w, i) => {
    if (!/moving_(mean|variance)$/.test(w.originalName)) return;
    const d = relDiff(w.read().dataSync(), twin.weights[i].read().dataSync());
    assert.ok(d < 1e-5, `${name} ${w.originalName}: ${d} from the tfjs path's`);
    assert.ok(relDiff(w.read().dataSync(), weights[i]) > 1e-4, `${name} ${w.originalName}: moved`);
  });
  tf.dispose([Object.values(ours.grads), x]);
  twin.dispose();
  model.dispose();
}

for (const k of KINDS) {
  test(`the graph step against the cpu backend: ${k.name}`, async () => {
    await initBackend('wasm');
    await againstCpu(k.name, kindModel(k), k.input, k.classes, 6);
  });
}

test("the graph step against the cpu backend: a ResNet of three stages (the shared ResNet-20's layers), on a heap that held NaN", async () => {
  await initBackend('wasm');
  await againstCpu('resnet', () => resnet([16, 16, 3], 3, 10), [16, 16, 3], 10, 8, true);
});

test('the graph step against the cpu backend: a MobileNet (width 0.35: 11, 22, 44, 89 channels), moving statistics too', async () => {
  await initBackend('wasm');
  const build = () =>
    mobilenet(
      [24, 24, 3],
      11,
      [
        [22, 1],
        [44, 2],
        [44, 1],
        [89, 2],
      ],
      10,
    );
  const plan = graphPlanOf(build());
  assert.ok('nodes' in plan, JSON.stringify(plan));
  assert.ok(plan.nodes.filter((n) => n.kind === 'relu').every((n) => n.kind === 'relu' && n.fused && n.relu6));
  await againstCpu('mobilenet', build, [24, 24, 3], 10, 8, true);
});

test("trainingPathOf: the session log says which step trains a model, and for tfjs's tape the first layer no heap step runs", async () => {
  await initBackend('wasm');
  const mlp = (units: number[], extra: tfl.layers.Layer[] = []) =>
    tfl.sequential({
      layers: [
        tfl.layers.dense({ inputShape: [8], units: units[0], activation: 'relu' }),
        ...extra,
        ...units.slice(1).map((u) => tfl.layers.dense({ units: u })),
      ],
    });
  const image = (layers: tfl.layers.Layer[]) =>
    tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 8, kernelSize: 3, activation: 'relu' }),
        ...layers,
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 2 }),
      ],
    });
  const cases: [string, () => tfl.LayersModel, string, RegExp][] = [
    ['a small MLP', () => mlp([16, 2]), 'dense', /^training path: the heap step for dense layers \(no tape\)$/],
    [
      'a plain CNN',
      () => image([tfl.layers.maxPooling2d({ poolSize: 2 })]),
      'conv',
      /^training path: the heap step for plain CNNs/,
    ],
    [
      'a ResNet',
      () => resnet([8, 8, 3], 2, 10),
      'graph',
      /^training path: the heap step for image graphs such as ResNets/,
    ],
    [
      'a MobileNet',
      () => mobilenet([16, 16, 3], 11, [[22, 2]], 10),
      'graph',
      /^training path: the heap step for image graphs such as ResNets and MobileNets/,
    ],
    ['a CNN with dropout', () => image([tfl.layers.dropout({ rate: 0.3 })]), 'conv', /heap step for plain CNNs/],
    [
      'a VGG-style CNN: batch normalization, max pooling, dropout',
      () =>
        image([
          tfl.layers.batchNormalization(),
          tfl.layers.maxPooling2d({ poolSize: 2 }),
          tfl.layers.dropout({ rate: 0.3 }),
        ]),
      'graph',
      /heap step for image graphs/,
    ],
    [
      'a CNN with a 3×3 max pooling',
      () => image([tfl.layers.batchNormalization(), tfl.layers.maxPooling2d({ poolSize: 3, strides: 1 })]),
      'tape',
      /slower than a heap step: layer 'max_pooling2d\w*' \(MaxPooling2D\) is not a 2×2 pooling of stride 2/,
    ],
    ['an MLP with dropout', () => mlp([16, 2], [tfl.layers.dropout({ rate: 0.3 })]), 'dense', /dense layers/],
    [
      'an MLP with batch normalization',
      () => mlp([16, 2], [tfl.layers.batchNormalization()]),
      'tape',
      /slower than a heap step: layer 'batch_normalization\w*' \(BatchNormalization\) is not a layer the dense step runs/,
    ],
    [
      'a wide MLP',
      () => mlp([2048, 2048, 2]),
      'tape',
      /a dense chain of [\d,]+ multiply-adds a step runs faster through XNNPACK/,
    ],
  ];
  for (const [name, build, step, message] of cases) {
    const model = build();
    const p = trainingPathOf(model, 64);
    assert.equal(p.step, step, `${name}: ${p.message}`);
    assert.match(p.message, message, name);
    model.dispose();
  }
  await tf.setBackend('cpu');
  const model = resnet([8, 8, 3], 1, 2);
  assert.match(
    trainingPathOf(model, 64).message,
    /^training path: tfjs's tape on cpu \(the heap training steps run on wasm/,
  );
  model.dispose();
});

test('graphStepFor: not on cpu, not for other variables; bad samples are refused', async () => {
  await initBackend('wasm');
  const model = resnet([8, 8, 3], 1, 2);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const step = graphStepFor(model, vars);
  assert.ok(step);
  assert.equal(graphStepFor(model, vars.slice(1)), null, 'a subset of the variables');
  assert.equal(graphStepFor(model, vars), step, 'the same model and variables: the step made before');
  const restore = wrapSimdKernels(tf.backend(), (_, f) => f);
  try {
    const wrapped = graphStepFor(model, vars);
    assert.ok(wrapped && wrapped !== step, 'kernels wrapped since: a step through them');
  } finally {
    restore?.();
  }
  const wrong = tf.zeros([2, 9, 8, 3]);
  assert.throws(
    () => step.run('multiclass', wrong, Int32Array.of(0), [1, 0], [1]),
    /the samples are \[2,9,8,3\], the model takes \[8,8,3\]/,
  );
  wrong.dispose();
  await tf.setBackend('cpu');
  assert.equal(graphStepFor(model, vars), null, 'cpu backend: the tfjs path');
  model.dispose();
});

/** 64 noisy 8×8×3 images, two classes: class 1 has a brighter red first two rows; every 4th a validation row. */
function brightCorner(seed: number) {
  const rng = new Rng(seed);
  const n = 64;
  const input: [number, number, number] = [8, 8, 3];
  const size = 8 * 8 * 3;
  const xData = Float32Array.from({ length: n * size }, () => rng.normal());
  const labels = Int32Array.from({ length: n }, (_, i) => i % 2);
  for (let i = 0; i < n; i++) if (labels[i]) for (let p = 0; p < 16; p++) xData[i * size + p * 3] += 1.5;
  return { input, data: ceTrainingData(xData, input, labels, 'multiclass', 2, 4) };
}

test('training a ResNet through the graph step follows the tfjs path on wasm (same seed: losses and weights within float rounding)', async () => {
  await initBackend('wasm');
  const { input, data } = brightCorner(6);
  // Without the biases before a batch normalization: their gradient is zero but for rounding noise, which Adam
  // turns into steps of ±lr either way, so the two runs' biases (and the moving means after them) part.
  await trainsAlike(() => resnet(input, 2, 2, 'average', false), data);
});

test("training a MobileNet (Keras' zero padding and classifier with dropout, channels not in fours) through the graph step follows the tfjs path on wasm", async () => {
  await initBackend('wasm');
  const rng = new Rng(8);
  const n = 48;
  const input: [number, number, number] = [12, 12, 3];
  const size = 12 * 12 * 3;
  const xData = Float32Array.from({ length: n * size }, () => rng.normal());
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  for (let i = 0; i < n; i++) for (let p = 0; p < 24; p++) xData[i * size + p * 3 + labels[i]] += 1.5;
  const data = ceTrainingData(xData, input, labels, 'multiclass', 3, 4);
  const build = () =>
    mobilenet(
      input,
      5,
      [
        [7, 1],
        [10, 2],
        [13, 1],
      ],
      3,
      true,
      { keras: 0.25 },
    );
  const vars = build();
  assert.ok(
    graphStepFor(
      vars,
      vars.trainableWeights.map((w) => w.read() as tf.Variable),
    ),
    'the graph step takes it',
  );
  vars.dispose();
  await trainsAlike(build, data);
});

test('training a VGG-style CNN (batch normalization, max pooling, dropout) through the graph step follows the tfjs path on wasm', async () => {
  await initBackend('wasm');
  const { input, data } = brightCorner(9);
  const build = () => {
    seed = 300;
    const inp = tfl.input({ shape: input });
    const block = (x: tfl.SymbolicTensor, filters: number) =>
      tfl.layers
        .maxPooling2d({ poolSize: 2 })
        .apply(relu(bn(conv(x, filters, { useBias: false })))) as tfl.SymbolicTensor;
    const features = tfl.layers.dropout({ rate: 0.25 }).apply(block(block(inp, 6), 8)) as tfl.SymbolicTensor;
    const flat = tfl.layers.flatten().apply(features) as tfl.SymbolicTensor;
    const hidden = tfl.layers
      .dense({ units: 6, activation: 'relu', kernelInitializer: init(++seed) })
      .apply(flat) as tfl.SymbolicTensor;
    const dropped = tfl.layers.dropout({ rate: 0.5 }).apply(hidden) as tfl.SymbolicTensor;
    const out = tfl.layers.dense({ units: 2, kernelInitializer: init(++seed) }).apply(dropped) as tfl.SymbolicTensor;
    return tfl.model({ inputs: inp, outputs: out });
  };
  const model = build();
  const plan = graphPlanOf(model);
  assert.ok('nodes' in plan, JSON.stringify(plan));
  assert.equal(plan.nodes.filter((n) => n.kind === 'maxPool').length, 2);
  assert.equal(plan.nodes.filter((n) => n.kind === 'dropout').length, 2);
  model.dispose();
  await trainsAlike(build, data);
});

/**
 * Trains `build()`'s model on `data` with its heap step and on tfjs's tape (same seed, 3 epochs of Adam) and
 * checks the two runs' losses and weights stay within float rounding.
 */
async function trainsAlike(build: () => tfl.LayersModel, data: ReturnType<typeof ceTrainingData>): Promise<void> {
  const { summaries, weights } = await trainWithAndWithoutHeapStep(build, data, {
    task: 'multiclass',
    epochs: 3,
    batchSize: 16,
    learningRate: 0.005,
    patience: 0,
    seed: 5,
  });
  assert.ok(
    Math.abs(summaries[0].finalTrainLoss - summaries[1].finalTrainLoss) < 1e-3,
    `${summaries[0].finalTrainLoss} vs ${summaries[1].finalTrainLoss}`,
  );
  // The validation loss after 9 steps of Adam carries the rounding of every kernel: equally accurate ways to
  // write the Winograd transforms moved the ResNet's by up to ±4e-3 on either path (1.3195–1.3277), so it is
  // checked loosely; a wrong gradient moves it more (γ's and β's gradients swapped: 1.6e-2; a residual add that
  // passes no gradient to its shortcut: 9e-2) and moves the weights far more, which is checked below.
  assert.ok(
    Math.abs(summaries[0].validationLoss! - summaries[1].validationLoss!) < 1e-2,
    `${summaries[0].validationLoss} vs ${summaries[1].validationLoss}`,
  );
  // Adam turns rounding noise in near-zero gradients (a channel batch normalization or a relu nearly shuts) into
  // steps of ±lr either way, so a few weights part by up to lr a step whatever the kernels; on average a tensor's
  // weights stay within a few hundredths of that (measured: 2e-6 to 6e-4, the ResNet's largest at 0.46 of the
  // bound below), where a wrong gradient moves most of them by ~lr a step (the two bugs above: 6.9 and 20 times
  // the bound).
  const drift = 0.005 * summaries[0].steps;
  weights[0].forEach((w, i) => {
    const mean = w.reduce((sum, v, j) => sum + Math.abs(v - weights[1][i][j]), 0) / w.length;
    assert.ok(mean < 0.03 * drift, `weights ${i}: mean difference ${mean}, Adam's largest drift ${drift}`);
  });
  tf.dispose([data.x, data.targets, data.weights]);
}
