/**
 * An experiment, not part of `npm run bench`: Fair Prune's own fine-tuning loop (src/core/train.ts)
 * on TensorFlow.js's WebGPU backend, with Dawn as the WebGPU in Node (npm `webgpu`, which ships
 * dawn.node for Linux, macOS and Windows), against wasm in the same process. For each bench workload:
 * the first epoch (shader compilation), the median of five epochs, inference over the workload's
 * samples, and the largest difference between the weights after one epoch on wasm and on WebGPU
 * (same data, same seed).
 *
 *   npm install --no-save webgpu@0.6.2 @tensorflow/tfjs-backend-webgpu@4.22.0
 *   node scripts/build.mjs && node dist/webgpu.js
 *
 * Results on an NVIDIA H200 are in bench/GPU.md. The product's sessions do not use WebGPU yet: its
 * evaluation and pruning read tensors synchronously, which WebGPU in Node cannot.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { backendSummary, initBackend } from '../src/core/backend';
import { train } from '../src/core/train';
import { WORKLOADS, prepare } from './workloads';

const REPEATS = 5;
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
// Required by name so that the bench builds and type-checks without these optional packages.
const OPTIONAL = ['webgpu', '@tensorflow/tfjs-backend-webgpu'];
function load(name: string, resolveOnly = false) {
  try {
    return resolveOnly ? require.resolve(name) : require(name);
  } catch (e) {
    throw new Error(
      `${name} is not installed (${(e as Error).message.split('\n')[0]}): run \`npm install --no-save webgpu@0.6.2 @tensorflow/tfjs-backend-webgpu@4.22.0\` first`,
      { cause: e },
    );
  }
}

async function startWebgpu(): Promise<string> {
  const { create, globals } = load('webgpu');
  Object.assign(globalThis, globals);
  Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]) }, configurable: true });
  const adapter = await (
    globalThis as unknown as {
      navigator: { gpu: { requestAdapter(o: object): Promise<{ info?: Record<string, string> } | null> } };
    }
  ).navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('Dawn found no WebGPU adapter (no Vulkan, Metal or D3D12 GPU driver?)');
  load('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs could not start its webgpu backend');
  const i = adapter.info ?? {};
  return `webgpu · ${[i.vendor, i.architecture, i.description].filter(Boolean).join(' ')}`;
}

/** Probabilities of every sample, read asynchronously (WebGPU has no synchronous read in Node). */
async function predict(model: tfl.LayersModel, x: tf.Tensor, batchSize = 256): Promise<void> {
  for (let start = 0; start < x.shape[0]; start += batchSize) {
    const p = tf.tidy(() =>
      tf.softmax(
        model.apply(tf.slice(x, start, Math.min(batchSize, x.shape[0] - start)), { training: false }) as tf.Tensor2D,
      ),
    );
    await p.data();
    p.dispose();
  }
}

async function measure(name: string) {
  const job = prepare(WORKLOADS.find((w) => w.name === name)!);
  let t0 = process.hrtime.bigint();
  await train(job.model, job.data, job.opts);
  const firstEpoch = seconds(t0);
  const afterOneEpoch = await Promise.all(job.model.getWeights().map((t) => t.data() as Promise<Float32Array>));
  const epochs: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    t0 = process.hrtime.bigint();
    await train(job.model, job.data, job.opts);
    epochs.push(seconds(t0));
  }
  await predict(job.model, job.x);
  const infer: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    t0 = process.hrtime.bigint();
    await predict(job.model, job.x);
    infer.push(seconds(t0));
  }
  job.model.dispose();
  tf.dispose([job.x, job.targets, job.weights]);
  return { firstEpoch, epoch: median(epochs), infer: median(infer), afterOneEpoch };
}

async function main() {
  OPTIONAL.forEach((name) => load(name, true)); // before minutes of wasm work, not after
  const runs: Record<string, Record<string, Awaited<ReturnType<typeof measure>>>> = { wasm: {}, webgpu: {} };
  for (const backend of ['wasm', 'webgpu'] as const) {
    const started = backend === 'wasm' ? backendSummary(await initBackend('wasm')) : await startWebgpu();
    console.log(started);
    for (const w of WORKLOADS) runs[backend][w.name] = await measure(w.name);
  }
  console.log(
    '| workload | wasm epoch (s) | WebGPU epoch (s) | WebGPU first epoch (s) | wasm inference (ms) | WebGPU inference (ms) | weights after one epoch, largest difference |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const w of WORKLOADS) {
    const a = runs.wasm[w.name];
    const g = runs.webgpu[w.name];
    let diff = 0;
    a.afterOneEpoch.forEach((t, i) =>
      t.forEach((v, j) => (diff = Math.max(diff, Math.abs(v - g.afterOneEpoch[i][j])))),
    );
    console.log(
      `| ${w.name} | ${a.epoch.toFixed(3)} | ${g.epoch.toFixed(3)} | ${g.firstEpoch.toFixed(2)} | ${(a.infer * 1000).toFixed(1)} | ${(g.infer * 1000).toFixed(1)} | ${diff.toExponential(1)} |`,
    );
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
