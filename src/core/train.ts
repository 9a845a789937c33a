/**
 * The fine-tuning loop. `LayersModel.fit()` cannot weight samples, and the PW loss is a weighted
 * loss, so this is a custom loop: Adam with cosine learning-rate decay, seeded shuffling, fixed
 * epochs or early stopping on validation loss (the best weights are kept), cancellation between
 * steps, progress events, and the pruning masks re-applied after every optimizer step.
 *
 * The data stays on the backend for the whole run; each step gathers its batch by index. Every
 * step's tensors are freed in the step, so the tensor count stays flat over any number of epochs.
 *
 * On wasm, where a small model's step is mostly kernel dispatch, Adam is one fused pass per variable
 * (kernels/adam.ts, bit-for-bit tf.train.adam) and the loss and its logit gradient are computed on the
 * host (`weightedCrossEntropyOnHost`); a small chain of Dense layers (a tabular MLP, dense-step.ts) and a
 * plain CNN (conv-step.ts) skip tfjs for the forward and backward pass too. Other backends run
 * tf.train.adam and the tensor loss, and read the step losses together, asynchronously (`StepLosses`).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Task, TrainingSummary } from '../protocol/results';
import { weightedCrossEntropy, weightedCrossEntropyOnHost, type HostReweight } from './losses';
import type { BatchReweighting } from './objectives';
import { probabilitiesFromLogits } from './model-io';
import { predictedClass } from './metrics';
import type { StepPruning } from './pruning/masks';
import { Rng } from './rng';
import { throwIfCancelled } from './errors';
import { createAdam, type TrainingOptimizer } from './kernels/adam';
import { DenseStep, denseStackOf, denseStepFor, multiplyAddsPerStep, type LayerLike } from './dense-step';
import { ConvStep, convStepFor } from './conv-step';
import { GraphStep, graphPlanOf, graphStepFor } from './graph-step';
import { simdKernels } from './kernels/simd-kernels';
import { wasmInternals } from './kernels/wasm-heap';
import { fastHeap, stockKernels } from './kernels/choice';
import { checksEveryStep, diagnosePredictions, diagnoseTrainingStep, nonFiniteTensor } from './non-finite';

export interface TrainingData {
  /** Every sample, [n, ...sampleShape]. */
  x: tf.Tensor;
  /** [n, width] training targets of the loss. */
  targets: tf.Tensor2D;
  /** [n] per-sample loss weights. */
  weights: tf.Tensor1D;
  /** Class index of every sample (for validation accuracy). */
  labels: Int32Array;
  train: Int32Array;
  validation: Int32Array;
  /** A group-aware objective's per-step group weights (objectives.ts), on top of `weights`. */
  reweight?: BatchReweighting;
  /**
   * Each epoch's order of training rows (`train.length` of them, so the steps are the same), for an
   * objective that draws its batches group-balanced (objectives.ts); by default `train`, shuffled.
   */
  epochOrder?: (rng: Rng) => Int32Array;
}

export interface TrainProgress {
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  trainLoss: number;
  samplesPerSecond: number;
  secondsLeft: number;
}

export interface TrainOptions {
  task: Task;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Stop when validation loss has not improved for this many epochs; 0 = run all epochs. */
  patience: number;
  seed: number;
  /** Pruning held (and, for gradual schedules, advanced) around every optimizer step. */
  pruning?: StepPruning;
  signal?: AbortSignal;
  onProgress?: (p: TrainProgress) => void;
  /** Seconds between progress callbacks (default 0.5). */
  progressInterval?: number;
  /**
   * false: never the heap steps for small dense chains (dense-step.ts) and plain CNNs (conv-step.ts), for
   * comparisons in tests and the bench.
   */
  denseStep?: boolean;
}

/** The loss's targets and weights read to the host once, and a group-aware objective's reweighting. */
interface HostLoss {
  targets: Float32Array;
  weights: Float32Array;
  reweight?: HostReweight;
}

/** The step's gradients, through the pruning masks when there are any, to the optimizer (inside a tidy). */
function applyMasked(
  grads: Record<string, tf.Tensor>,
  pruning: StepPruning | undefined,
  optimizer: TrainingOptimizer,
): void {
  const masked: Record<string, tf.Tensor> = {};
  for (const name of Object.keys(grads)) masked[name] = pruning ? pruning.maskGradient(name, grads[name]) : grads[name];
  optimizer.applyGradients(masked);
}

/** A step's loss or gradients that are not all finite, found before the optimizer step (see non-finite.ts). */
interface NonFiniteStep {
  loss: number;
  badGradient: string | null;
}

/** null when the step's loss and every gradient are finite. */
function nonFiniteStep(loss: number, grads: Record<string, tf.Tensor>): NonFiniteStep | null {
  const badGradient = nonFiniteTensor(grads);
  return Number.isFinite(loss) && !badGradient ? null : { loss, badGradient };
}

/**
 * One optimizer step through a heap step (dense-step.ts, conv-step.ts); returns the batch loss, or what
 * was not finite (then no optimizer step was taken).
 */
function heapStep(
  step: DenseStep | ConvStep | GraphStep,
  opts: TrainOptions,
  x: tf.Tensor,
  batch: Int32Array,
  host: HostLoss,
  optimizer: TrainingOptimizer,
): number | NonFiniteStep {
  const { loss, grads } = step.run(opts.task, x, batch, host.targets, host.weights, host.reweight);
  try {
    const bad = nonFiniteStep(loss, grads);
    if (bad) return bad;
    tf.tidy(() => applyMasked(grads, opts.pruning, optimizer));
  } finally {
    for (const g of Object.values(grads)) g.dispose();
  }
  return loss;
}

/**
 * One optimizer step through tfjs's ops and autodiff: the loss on the host (`host`) or as tensors, its
 * value (a scalar tensor, read later with the others, when the loss is not on the host), or what was
 * not finite when `check` (then no optimizer step was taken).
 */
function tensorStep(
  model: tfl.LayersModel,
  variables: tf.Variable[],
  data: TrainingData,
  batch: Int32Array,
  host: HostLoss | null,
  opts: TrainOptions,
  optimizer: TrainingOptimizer,
  check: boolean,
): number | tf.Scalar | NonFiniteStep {
  let failed: NonFiniteStep | null = null;
  const result = tf.tidy(() => {
    const idx = tf.tensor1d(batch, 'int32');
    const xb = tf.gather(data.x, idx);
    const lossFn = host
      ? () =>
          weightedCrossEntropyOnHost(
            opts.task,
            model.apply(xb, { training: true }) as tf.Tensor2D,
            host.targets,
            host.weights,
            batch,
            host.reweight,
          )
      : () => {
          const tb = tf.gather(data.targets, idx) as tf.Tensor2D;
          const wb = tf.gather(data.weights, idx) as tf.Tensor1D;
          return weightedCrossEntropy(opts.task, model.apply(xb, { training: true }) as tf.Tensor2D, tb, wb);
        };
    const { value, grads } = tf.variableGrads(lossFn, variables);
    failed = check ? nonFiniteStep(value.dataSync()[0], grads) : null;
    if (failed) return NaN;
    applyMasked(grads, opts.pruning, optimizer);
    return host ? value.dataSync()[0] : value;
  });
  return failed ?? result;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Layer randomness during training — dropout masks, Gaussian noise — comes from tfjs drawing a seed from
 * `Math.random` for each op. While `train` runs, `Math.random` is a generator seeded from the run's
 * seed, so fine-tuning a model with dropout is reproducible, and the same in any thread (a sweep's
 * worker threads give the numbers of one thread). Restored when training ends.
 */
function seedLayerRandomness(seed: number): () => void {
  const original = Math.random;
  const rng = new Rng(Math.imul(seed, 0x2545f491) ^ 0x5eed);
  Math.random = () => rng.next();
  return () => {
    Math.random = original;
  };
}

function cosineRate(base: number, step: number, total: number): number {
  return total <= 1 ? base : base * 0.5 * (1 + Math.cos((Math.PI * step) / total));
}

/** Runs `model` (which outputs logits) over `indices` in batches; returns [n, width] probabilities. */
export function predictProbabilities(
  model: tfl.LayersModel,
  task: Task,
  x: tf.Tensor,
  indices?: Int32Array,
  batchSize = 256,
): Float32Array {
  const n = indices ? indices.length : x.shape[0];
  const width = (model.outputs[0].shape[1] as number) ?? 1;
  const out = new Float32Array(n * width);
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    const probs = tf.tidy(() => {
      const xb = indices
        ? tf.gather(x, tf.tensor1d(indices.subarray(start, end), 'int32'))
        : tf.slice(x, start, end - start);
      return probabilitiesFromLogits(task, model.apply(xb, { training: false }) as tf.Tensor2D);
    });
    const values = probs.dataSync() as Float32Array;
    probs.dispose();
    // Predictions that are not numbers are checked on the reference backend before anyone is blamed.
    const rows = indices ? indices.subarray(start, end) : Int32Array.from({ length: end - start }, (_, i) => start + i);
    const bad = diagnosePredictions(model, task, x, rows, values, width);
    if (bad) throw bad;
    out.set(values, start * width);
  }
  return out;
}

/** Loss and accuracy of the model on `indices` with the data's targets and weights. */
export function evaluateLoss(
  model: tfl.LayersModel,
  task: Task,
  data: TrainingData,
  indices: Int32Array,
  batchSize = 256,
): { loss: number; accuracy: number } {
  if (!indices.length) return { loss: NaN, accuracy: NaN };
  let lossSum = 0;
  let correct = 0;
  const width = data.targets.shape[1];
  for (let start = 0; start < indices.length; start += batchSize) {
    const batch = indices.subarray(start, Math.min(indices.length, start + batchSize));
    const [loss, probs] = tf.tidy(() => {
      const idx = tf.tensor1d(batch, 'int32');
      const logits = model.apply(tf.gather(data.x, idx), { training: false }) as tf.Tensor2D;
      const l = weightedCrossEntropy(
        task,
        logits,
        tf.gather(data.targets, idx) as tf.Tensor2D,
        tf.gather(data.weights, idx) as tf.Tensor1D,
      );
      return [l, probabilitiesFromLogits(task, logits)];
    });
    lossSum += loss.dataSync()[0] * batch.length;
    const p = probs.dataSync() as Float32Array;
    for (let i = 0; i < batch.length; i++) if (predictedClass(p, width, i) === data.labels[batch[i]]) correct++;
    loss.dispose();
    probs.dispose();
  }
  return { loss: lossSum / indices.length, accuracy: correct / indices.length };
}

/**
 * The steps' losses of one epoch. On wasm a step's loss is read at once (the data is on the host
 * anyway). Elsewhere (tfjs-node, a GPU) the scalars stay on the backend and are read together, at a
 * progress report or the epoch's end, so the device is not drained after every step; and the read is
 * asynchronous, the only kind WebGPU has in Node.
 */
class StepLosses {
  private pending: tf.Scalar[] = [];
  private sizes: number[] = [];
  private sum = 0;
  private samples = 0;
  /** The loss of the last step read. */
  last = NaN;

  add(loss: number | tf.Scalar, samples: number): void {
    if (typeof loss === 'number') this.record(loss, samples);
    else {
      this.pending.push(loss);
      this.sizes.push(samples);
    }
  }

  /** Reads what is pending; returns the last step's loss. */
  async settle(): Promise<number> {
    if (this.pending.length) {
      const all = tf.stack(this.pending);
      this.dispose();
      const sizes = this.sizes;
      this.sizes = [];
      const values = await all.data();
      all.dispose();
      values.forEach((v, i) => this.record(v, sizes[i]));
    }
    return this.last;
  }

  /** Reads what is pending; returns the mean loss per sample since the last call, and starts over. */
  async epochMean(): Promise<number> {
    await this.settle();
    const mean = this.sum / Math.max(1, this.samples);
    this.sum = 0;
    this.samples = 0;
    return mean;
  }

  dispose(): void {
    tf.dispose(this.pending);
    this.pending = [];
  }

  private record(loss: number, samples: number): void {
    this.sum += loss * samples;
    this.samples += samples;
    this.last = loss;
  }
}

/**
 * On wasm the loss and its gradient are computed on the host from the logits (one readback of a small
 * [batch, width] tensor, no ~30 loss kernels), with the targets and weights read once here. A
 * group-aware objective reweights each step from the step's per-sample losses, so it takes the host
 * loss on every backend.
 */
function hostLossOf(data: TrainingData, wasm: boolean): HostLoss | null {
  if (!wasm && !data.reweight) return null;
  return {
    targets: data.targets.dataSync() as Float32Array,
    weights: data.weights.dataSync() as Float32Array,
    reweight: data.reweight ? { objective: data.reweight, labels: data.labels } : undefined,
  };
}

/**
 * After every step: a progress event every `progressInterval` seconds and at the end, and a yield to the
 * event loop.
 */
function progressReporter(opts: TrainOptions, totalSteps: number, losses: StepLosses, t0: number) {
  const interval = (opts.progressInterval ?? 0.5) * 1000;
  let lastReport = t0; // the first report after one interval, when samples/s means something
  return async (epoch: number, step: number, samplesSeen: number): Promise<void> => {
    const now = Date.now();
    if (opts.onProgress && (now - lastReport >= interval || step === totalSteps)) {
      const trainLoss = await losses.settle();
      lastReport = now;
      const elapsed = (now - t0) / 1000;
      opts.onProgress({
        epoch: epoch + 1,
        epochs: opts.epochs,
        step,
        steps: totalSteps,
        trainLoss,
        samplesPerSecond: samplesSeen / Math.max(elapsed, 1e-6),
        secondsLeft: (elapsed / step) * (totalSteps - step),
      });
      await yieldToEventLoop();
    } else if (step % 8 === 0) {
      await yieldToEventLoop();
    }
  };
}

/**
 * The heap step that fine-tunes `model` on wasm, or null for tfjs's tape. A small chain of Dense layers:
 * forward, loss and backward as plain loops (dense-step.ts). A plain CNN (convolutions, 2×2 max pooling,
 * dense layers): the same through the SIMD kernels (conv-step.ts). Other image models (ResNets: batch
 * normalization, residual adds, global average pooling): graph-step.ts.
 */
function heapStepFor(
  model: tfl.LayersModel,
  variables: tf.Variable[],
  batchSize: number,
): DenseStep | ConvStep | GraphStep | null {
  return denseStepFor(model, variables, batchSize) ?? convStepFor(model, variables) ?? graphStepFor(model, variables);
}

/** Which way `train` fine-tunes a model, for the session log: a heap step, or tfjs's tape and why. */
export interface TrainingPath {
  step: 'dense' | 'conv' | 'graph' | 'tape';
  /** One line for a user wondering whether their model trains at the expected speed. */
  message: string;
}

/** The path `train` takes for `model` (a logit model) on the current backend with batches of `batchSize`. */
export function trainingPathOf(model: tfl.LayersModel, batchSize: number): TrainingPath {
  const backend = tf.getBackend();
  const tape = (why: string): TrainingPath => ({
    step: 'tape',
    message: `training path: tfjs's tape on ${backend} (${why})`,
  });
  if (!wasmInternals(tf.backend()))
    return tape(`the heap training steps run on wasm; here ${backend}'s own kernels run each layer`);
  if (stockKernels()) return tape("--kernels stock: tfjs's own kernels only, no heap training step");
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const step = heapStepFor(model, variables, batchSize);
  if (step instanceof DenseStep)
    return { step: 'dense', message: 'training path: the heap step for dense layers (no tape)' };
  if (step instanceof ConvStep)
    return { step: 'conv', message: 'training path: the heap step for plain CNNs (SIMD kernels, no tape)' };
  if (step instanceof GraphStep)
    return {
      step: 'graph',
      message: 'training path: the heap step for image graphs such as ResNets and MobileNets (SIMD kernels, no tape)',
    };
  const slower = 'slower than a heap step';
  const dense = denseStackOf(model);
  if (dense)
    return tape(
      'a dense chain ' +
        `of ${multiplyAddsPerStep(dense, batchSize).toLocaleString('en-US')} ` +
        'multiply-adds a step runs faster through XNNPACK',
    );
  if (model.inputs[0]?.shape.length !== 4) {
    const other = (model.layers as unknown as LayerLike[]).find(
      (l) => !['InputLayer', 'Dense'].includes(l.getClassName()),
    );
    const why = other
      ? `layer '${other.name}' (${other.getClassName()}) is not a layer the dense step runs`
      : 'a layer is frozen or has an activation the dense step does not run';
    return tape(`${slower}: ${why}`);
  }
  if (!simdKernels(tf.backend())) return tape(`${slower}: the SIMD kernels did not load`);
  const plan = graphPlanOf(model);
  return tape(`${slower}: ${'unsupported' in plan ? plan.unsupported : "its variables are not its layers' weights"}`);
}

/** Fine-tunes `model` (a logit model) in place; returns what happened. */
export async function train(model: tfl.LayersModel, data: TrainingData, opts: TrainOptions): Promise<TrainingSummary> {
  const rng = new Rng(opts.seed);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  // Early stopping restores every weight of the best epoch, batch-norm statistics included.
  const allVariables = model.weights.map((w) => w.read() as tf.Variable);
  const optimizer = createAdam(opts.learningRate);
  const stepsPerEpoch = Math.ceil(data.train.length / opts.batchSize);
  const totalSteps = stepsPerEpoch * opts.epochs;
  const useEarlyStopping = opts.patience > 0 && data.validation.length > 0;

  let best: { loss: number; accuracy: number; weights: tf.Tensor[] } | null = null;
  let sinceBest = 0;
  let step = 0;
  let epochsRun = 0;
  let lastLoss = NaN;
  let stoppedEarly = false;
  const t0 = Date.now();
  let samplesSeen = 0;
  const order = Int32Array.from(data.train);
  const losses = new StepLosses();
  const progress = progressReporter(opts, totalSteps, losses, t0);
  const wasm = fastHeap() !== null; // wasm, unless tfjs's stock kernels only are asked for
  const host = hostLossOf(data, wasm);

  const onHeap = wasm && opts.denseStep !== false ? heapStepFor(model, variables, opts.batchSize) : null;

  // Where a step's numbers are on the host (wasm, cpu), its loss and gradients are checked before every
  // optimizer step: the first non-finite one stops the run with what the reference backend makes of the
  // same step (non-finite.ts), while the weights are still those the step started from.
  const check = checksEveryStep();
  const hostTargets = !check
    ? null
    : (host ?? { targets: data.targets.dataSync() as Float32Array, weights: data.weights.dataSync() as Float32Array });

  const restoreRandom = seedLayerRandomness(opts.seed);
  try {
    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      if (data.epochOrder) order.set(data.epochOrder(rng));
      else rng.shuffle(order);
      for (let s = 0; s < stepsPerEpoch; s++) {
        throwIfCancelled(opts.signal);
        const batch = order.subarray(s * opts.batchSize, Math.min(order.length, (s + 1) * opts.batchSize));
        opts.pruning?.beforeStep(step, totalSteps);
        optimizer.learningRate = cosineRate(opts.learningRate, step, totalSteps);
        const stepResult =
          onHeap && host
            ? heapStep(onHeap, opts, data.x, batch, host, optimizer)
            : tensorStep(model, variables, data, batch, host, opts, optimizer, check);
        if (typeof stepResult === 'object' && !(stepResult instanceof tf.Tensor) && hostTargets) {
          throw diagnoseTrainingStep({
            model,
            task: opts.task,
            x: data.x,
            batch,
            targets: hostTargets.targets,
            sampleWeights: hostTargets.weights,
            step,
            epoch,
            loss: stepResult.loss,
            badGradient: stepResult.badGradient,
          });
        }
        losses.add(stepResult as number | tf.Scalar, batch.length);
        opts.pruning?.afterStep();
        step++;
        samplesSeen += batch.length;
        await progress(epoch, step, samplesSeen);
      }
      epochsRun++;
      lastLoss = await losses.epochMean();
      if (useEarlyStopping) {
        const v = evaluateLoss(model, opts.task, data, data.validation);
        if (!best || v.loss < best.loss) {
          best?.weights.forEach((w) => w.dispose());
          best = { ...v, weights: allVariables.map((w) => tf.keep(tf.clone(w))) };
          sinceBest = 0;
        } else if (++sinceBest >= opts.patience) {
          stoppedEarly = epoch < opts.epochs - 1;
          break;
        }
      }
    }
    if (best) {
      allVariables.forEach((v, i) => v.assign(best!.weights[i]));
    }
  } finally {
    restoreRandom();
    losses.dispose();
    best?.weights.forEach((w) => w.dispose());
    optimizer.dispose();
  }
  const seconds = (Date.now() - t0) / 1000;
  const val = best
    ? { loss: best.loss, accuracy: best.accuracy }
    : data.validation.length
      ? evaluateLoss(model, opts.task, data, data.validation)
      : null;
  return {
    epochs: epochsRun,
    steps: step,
    seconds,
    finalTrainLoss: lastLoss,
    validationLoss: val ? val.loss : null,
    validationAccuracy: val ? val.accuracy : null,
    stoppedEarly,
    samplesPerSecond: samplesSeen / Math.max(seconds, 1e-6),
  };
}
