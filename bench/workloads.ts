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
          tfl.layers.conv2d({ inputShape: [32, 32, 3], filters: 16, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(1) }),
          tfl.layers.maxPooling2d({ poolSize: 2 }),
          tfl.layers.conv2d({ filters: 32, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(2) }),
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
          tfl.layers.conv2d({ inputShape: [28, 28, 3], filters: 16, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(1) }),
          tfl.layers.maxPooling2d({ poolSize: 2 }),
          tfl.layers.conv2d({ filters: 32, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(2) }),
          tfl.layers.maxPooling2d({ poolSize: 2 }),
          tfl.layers.flatten(),
          tfl.layers.dense({ units: 64, activation: 'relu', kernelInitializer: init(3) }),
          tfl.layers.dense({ units: 10, kernelInitializer: init(4) }),
        ],
      }),
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

