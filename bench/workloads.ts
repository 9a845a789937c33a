/** The bench's fixed workloads (models, seeded data, training options), shared by bench.ts and profile.ts. */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { lossTargets } from '../src/core/losses';
import { Rng } from '../src/core/rng';

export interface Workload {
  name: string;
  description: string;
  inputShape: number[];
  classes: number;
  samples: number;
  build: () => tfl.LayersModel;
}

export const init = (seed: number) => tfl.initializers.glorotUniform({ seed });

export const WORKLOADS: Workload[] = [
  {
    name: 'cnn32',
    description: 'conv16-pool-conv32-pool-dense2 on 32×32×3 (the PyTorch reference job), 512 samples, batch 64',
    inputShape: [32, 32, 3],
    classes: 2,
    samples: 512,
    build: () =>
      tfl.sequential({
        layers: [
          tfl.layers.conv2d({
            inputShape: [32, 32, 3],
            filters: 16,
            kernelSize: 3,
            padding: 'same',
            activation: 'relu',
            kernelInitializer: init(1),
          }),
          tfl.layers.maxPooling2d({ poolSize: 2 }),
          tfl.layers.conv2d({
            filters: 32,
            kernelSize: 3,
            padding: 'same',
            activation: 'relu',
            kernelInitializer: init(2),
          }),
          tfl.layers.maxPooling2d({ poolSize: 2 }),
          tfl.layers.flatten(),
          tfl.layers.dense({ units: 2, kernelInitializer: init(3) }),
        ],
      }),
  },
  {
    name: 'mlp',
    description: 'tabular MLP 24-32-16-2, 4096 samples, batch 64',
    inputShape: [24],
    classes: 2,
    samples: 4096,
    build: () =>
      tfl.sequential({
        layers: [
          tfl.layers.dense({ inputShape: [24], units: 32, activation: 'relu', kernelInitializer: init(1) }),
          tfl.layers.dense({ units: 16, activation: 'relu', kernelInitializer: init(2) }),
          tfl.layers.dense({ units: 2, kernelInitializer: init(3) }),
        ],
      }),
  },
  {
    name: 'demo-cnn',
    description: 'the demo CNN (conv16-pool-conv32-pool-dense64-dense10) on 28×28×3, 1024 samples, batch 64',
    inputShape: [28, 28, 3],
    classes: 10,
    samples: 1024,
    build: () =>
      tfl.sequential({
        layers: [
          tfl.layers.conv2d({
            inputShape: [28, 28, 3],
            filters: 16,
            kernelSize: 3,
            padding: 'same',
            activation: 'relu',
            kernelInitializer: init(1),
          }),
          tfl.layers.maxPooling2d({ poolSize: 2 }),
          tfl.layers.conv2d({
            filters: 32,
            kernelSize: 3,
            padding: 'same',
            activation: 'relu',
            kernelInitializer: init(2),
          }),
          tfl.layers.maxPooling2d({ poolSize: 2 }),
          tfl.layers.flatten(),
          tfl.layers.dense({ units: 64, activation: 'relu', kernelInitializer: init(3) }),
          tfl.layers.dense({ units: 10, kernelInitializer: init(4) }),
        ],
      }),
  },
  {
    name: 'resnet20',
    description:
      "ResNet-20 v1 (the shared Keras file's architecture: 3 stages of 3 residual blocks, 16/32/64 filters, BatchNorm, 1×1 stride-2 shortcuts, global average pooling) on 32×32×3, 256 samples, batch 64",
    inputShape: [32, 32, 3],
    classes: 10,
    samples: 256,
    build: () => resnet20(),
  },
  {
    name: 'mobilenet',
    description:
      'MobileNet v1 blocks at width 0.35 (depthwise 3×3 + pointwise 1×1, each with BatchNorm and ReLU6; 5 stride-2 stages to 3×3×358) on 96×96×3, 128 samples, batch 64',
    inputShape: [96, 96, 3],
    classes: 10,
    samples: 128,
    build: () => mobilenet(),
  },
];

/** A workload's model, random data (seeded) and training options. */
export function prepare(w: Workload) {
  const rng = new Rng(42);
  const n = w.samples;
  const size = w.inputShape.reduce((a, b) => a * b, 1);
  const xData = new Float32Array(n * size);
  for (let i = 0; i < xData.length; i++) xData[i] = rng.next();
  const labels = Int32Array.from({ length: n }, (_, i) => i % w.classes);
  const t = lossTargets('ce', 'multiclass', labels, w.classes, undefined, { minWeight: 1, gamma: 0 });
  const x = tf.tensor(xData, [n, ...w.inputShape]);
  const targets = tf.tensor2d(Float32Array.from(t.targets), [n, w.classes]);
  const weights = tf.tensor1d(Float32Array.from(t.weights));
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const model = w.build();
  const data = { x, targets, weights, labels, train: all, validation: new Int32Array(0) };
  const opts = { task: 'multiclass' as const, epochs: 1, batchSize: 64, learningRate: 1e-3, patience: 0, seed: 1 };
  return { n, x, targets, weights, model, data, opts };
}

type Sym = tfl.SymbolicTensor;
const apply = (layer: tfl.layers.Layer, x: Sym | Sym[]) => layer.apply(x) as Sym;

/**
 * ResNet-20 v1 as Keras' cifar10_resnet.py builds it (the shared `cifar10_ResNet20v1_model.h5`): conv-BN-relu,
 * then per stage 3 blocks of conv-BN-relu-conv-BN + shortcut (a 1×1 stride-2 convolution where the stage
 * halves the map) and a relu; 8×8 average pooling, dense 10. Convolutions with biases, as in that file.
 */
function resnet20(): tfl.LayersModel {
  let seed = 10;
  const conv = (x: Sym, filters: number, kernel = 3, strides = 1) =>
    apply(
      tfl.layers.conv2d({ filters, kernelSize: kernel, strides, padding: 'same', kernelInitializer: init(seed++) }),
      x,
    );
  const bn = (x: Sym) => apply(tfl.layers.batchNormalization({}), x);
  const relu = (x: Sym) => apply(tfl.layers.activation({ activation: 'relu' }), x);
  const input = tfl.input({ shape: [32, 32, 3] });
  let x = relu(bn(conv(input, 16)));
  for (let stage = 0; stage < 3; stage++) {
    const filters = 16 << stage;
    for (let block = 0; block < 3; block++) {
      const strides = stage > 0 && block === 0 ? 2 : 1;
      const y = bn(conv(relu(bn(conv(x, filters, 3, strides))), filters));
      if (strides === 2) x = conv(x, filters, 1, 2);
      x = relu(apply(tfl.layers.add(), [x, y]));
    }
  }
  const pooled = apply(tfl.layers.flatten(), apply(tfl.layers.averagePooling2d({ poolSize: 8 }), x));
  return tfl.model({
    inputs: input,
    outputs: apply(tfl.layers.dense({ units: 10, kernelInitializer: init(seed) }), pooled),
  });
}

/**
 * MobileNet v1's body at width multiplier 0.35 on 96×96×3: a 3×3 stride-2 convolution, then depthwise 3×3 +
 * pointwise 1×1 pairs (each followed by BatchNorm and ReLU6, no biases), channels 64·α … 1024·α, stride 2
 * at 5 of them; global average pooling and a dense classifier.
 */
function mobilenet(alpha = 0.35): tfl.LayersModel {
  let seed = 30;
  const bnRelu6 = (x: Sym) => apply(tfl.layers.reLU({ maxValue: 6 }), apply(tfl.layers.batchNormalization({}), x));
  const input = tfl.input({ shape: [96, 96, 3] });
  let x = bnRelu6(
    apply(
      tfl.layers.conv2d({
        filters: Math.floor(32 * alpha),
        kernelSize: 3,
        strides: 2,
        padding: 'same',
        useBias: false,
        kernelInitializer: init(seed++),
      }),
      input,
    ),
  );
  const blocks: [number, number][] = [
    [64, 1],
    [128, 2],
    [128, 1],
    [256, 2],
    [256, 1],
    [512, 2],
    [512, 1],
    [512, 1],
    [512, 1],
    [512, 1],
    [512, 1],
    [1024, 2],
    [1024, 1],
  ];
  for (const [filters, strides] of blocks) {
    x = bnRelu6(
      apply(
        tfl.layers.depthwiseConv2d({
          kernelSize: 3,
          strides,
          padding: 'same',
          useBias: false,
          depthwiseInitializer: init(seed++),
        }),
        x,
      ),
    );
    x = bnRelu6(
      apply(
        tfl.layers.conv2d({
          filters: Math.floor(filters * alpha),
          kernelSize: 1,
          useBias: false,
          kernelInitializer: init(seed++),
        }),
        x,
      ),
    );
  }
  const pooled = apply(tfl.layers.globalAveragePooling2d({}), x);
  return tfl.model({
    inputs: input,
    outputs: apply(tfl.layers.dense({ units: 10, kernelInitializer: init(seed) }), pooled),
  });
}
