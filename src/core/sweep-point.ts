/**
 * One point of a sweep: the dense model pruned to one target sparsity, fine-tuned with one loss,
 * measured on every subgroup and saved under `points/<id>/`. Points are independent of each other
 * (each starts from the dense weights, with seeds fixed by its place in the sweep), so the session
 * runs them one after another in its own thread or several at a time in worker threads
 * (sweep-pool.ts); either way a point's numbers are the same.
 *
 * `SweepSetup` is what every point shares, as plain data that can be posted to a worker thread.
 */
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { RunRequest } from '../protocol/engine';
import type { BackendName, LossName, PrunedPoint } from '../protocol/results';
import { lossTargets, outputWidth } from './losses';
import { compare, evaluate, predictedClass, predictedClasses } from './metrics';
import {
  batchReweightingFor,
  groupBalancedTraining,
  groupBalancedWeights,
  type GroupContext,
  type ObjectiveSettings,
} from './objectives';
import { RUN_DEFAULTS } from '../protocol/defaults';
import type { EvaluationInput, Predictions } from './metrics';
import { makeLogitModel, modelSize, prunableKernels, saveModel } from './model-io';
import type { LoadedModel } from './model-io';
import {
  measuredSparsity,
  normalizeSchedule,
  oneShot,
  PRUNING_METHODS,
  scheduleByName,
  ScheduledPruning,
} from './pruning';
import type { StepPruning } from './pruning';
import { analyzeModel, DEFAULT_TARGET, finishStructured, measureCostAndLatency, StructuredPruning } from './structured';
import type { StructuredOutcome } from './structured';
import { Rng } from './rng';
import { predictProbabilities, train } from './train';
import type { TrainingData, TrainProgress } from './train';
import { hashFolder } from './file-hashes';

/** What every point of a session shares. Plain data: it is posted to worker threads as it is. */
export interface SweepSetup {
  req: RunRequest;
  sessionDir: string;
  /** The backend the session runs on; a worker thread starts the same one. */
  backend: BackendName;
  /** Every sample's inputs, rows × prod(sampleShape). */
  x: Float32Array;
  sampleShape: number[];
  /** Class index of every row. */
  labels: Int32Array;
  /** Subgroup of every row (an index into `groupNames`), for the group-aware objectives. */
  groupIds: Int32Array;
  groupNames: string[];
  /** The dense model's output probabilities on every row (the PW loss's teacher). */
  teacher: Float32Array;
  trainRows: Int32Array;
  validationRows: Int32Array;
  testRows: Int32Array;
  /** The test rows' labels, subgroups and row numbers, as the metrics take them. */
  evalInput: EvaluationInput;
  /** Files saved beside every pruned model (the preprocessing it expects). */
  besideModel: Record<string, Uint8Array>;
  /** Layers left unpruned (resolved names). */
  skipLayers: string[];
  /** Seeded training rows that Taylor scores are computed on. */
  taylorRows: Int32Array;
  /** Per-layer sparsity shares from the sensitivity scan, when one ran. */
  allocation?: [string, number][];
}

/** One point to run: its 1-based place in the sweep, and which sparsity (by index) and loss. */
export interface SweepJob {
  pointNo: number;
  sparsityIndex: number;
  sparsity: number;
  loss: LossName;
  /** Which fine-tuning run of this sparsity × loss, 1…seeds. */
  run: number;
}

/** What a point leaves besides its record: right (1) or wrong (0) on each test row, for the contrasts,
 *  and its class probabilities on the test rows (test rows × classes), for predictions.csv. */
export interface PointOutcome {
  point: PrunedPoint;
  testCorrect: Uint8Array;
  testProbabilities: Predictions;
}

/** What a thread holds to run points: the setup plus the model, the inputs on the backend and what is derived once. */
export interface SweepRuntime {
  setup: SweepSetup;
  loaded: LoadedModel;
  x: tf.Tensor;
  denseLogits: tfl.LayersModel;
  denseParameters: number;
  denseTest: Predictions;
  width: number;
  steps: number;
}

/** The group-aware objectives' settings of a request, defaults filled in. */
export function objectiveSettings(req: RunRequest): ObjectiveSettings {
  return {
    droEta: req.droEta ?? RUN_DEFAULTS.droEta,
    ceagTolerance: req.ceagTolerance ?? RUN_DEFAULTS.ceagTolerance,
    ceagDualLearningRate: req.ceagDualLearningRate ?? RUN_DEFAULTS.ceagDualLearningRate,
  };
}

export function pointId(sparsity: number, loss: LossName, run = 1): string {
  return `s${sparsity.toFixed(2)}-${loss}${run > 1 ? `-r${run}` : ''}`;
}

/** n × width model outputs → n × K class probabilities, as the metrics take them. */
export function toClassProbabilities(probs: Float32Array, width: number, numClasses: number): Predictions {
  if (width !== 1) return { probs, numClasses };
  const out = new Float32Array(probs.length * 2);
  for (let i = 0; i < probs.length; i++) {
    out[2 * i] = 1 - probs[i];
    out[2 * i + 1] = probs[i];
  }
  return { probs: out, numClasses: Math.max(2, numClasses) };
}

export function pick(probs: Float32Array, width: number, indices: Int32Array): Float32Array {
  const out = new Float32Array(indices.length * width);
  indices.forEach((r, i) => out.set(probs.subarray(r * width, (r + 1) * width), i * width));
  return out;
}

export function sweepRuntime(
  setup: SweepSetup,
  loaded: LoadedModel,
  x: tf.Tensor,
  denseLogits: tfl.LayersModel,
): SweepRuntime {
  const width = outputWidth(loaded.task, loaded.numClasses);
  return {
    setup,
    loaded,
    x,
    denseLogits,
    denseParameters: modelSize(loaded.model).parameters,
    denseTest: toClassProbabilities(pick(setup.teacher, width, setup.testRows), width, loaded.numClasses),
    width,
    steps: Math.ceil(setup.trainRows.length / setup.req.batchSize) * setup.req.epochs,
  };
}

/** A point's loss as training data: the loss's targets and weights, with group reweighting or balanced batches. */
interface PointTraining {
  data: TrainingData;
  /** The loss's own per-sample weights (what Taylor scores weigh by; `data.weights` may be the balanced ones). */
  lossWeights: tf.Tensor1D;
  groups: GroupContext;
  reweight: ReturnType<typeof batchReweightingFor>;
}

function pointTraining(rt: SweepRuntime, loss: LossName): PointTraining {
  const { setup, loaded, x, width } = rt;
  const { req } = setup;
  const groups: GroupContext = { groupIds: setup.groupIds, groupNames: setup.groupNames, trainRows: setup.trainRows };
  const t = lossTargets(
    loss,
    loaded.task,
    setup.labels,
    width,
    setup.teacher,
    { minWeight: req.minWeight, gamma: req.gamma },
    groups,
  );
  const reweight = batchReweightingFor(loss, groups, objectiveSettings(req), () =>
    Uint8Array.from(setup.labels, (y, r) => (predictedClass(setup.teacher, width, r) === y ? 1 : 0)),
  );
  const weights = tf.tensor1d(Float32Array.from(t.weights));
  const balanced = groupBalancedTraining(loss, groups, t.weights);
  const trainWeights = balanced ? tf.tensor1d(balanced.trainWeights) : weights;
  const data: TrainingData = {
    reweight: reweight ?? undefined,
    ...(balanced ? { epochOrder: balanced.epochOrder } : {}),
    x,
    targets: tf.tensor2d(Float32Array.from(t.targets), [setup.labels.length, width]),
    weights: trainWeights,
    labels: setup.labels,
    train: setup.trainRows,
    validation: setup.validationRows,
  };
  return { data, lossWeights: weights, groups, reweight };
}

type PointPruning = (StepPruning & { prepare(n: number): void; dispose(): void }) | StructuredPruning;

/** The point's method and schedule on `student`, pruned to the schedule's first target. */
function pointPruning(
  rt: SweepRuntime,
  job: SweepJob,
  student: tfl.LayersModel,
  training: PointTraining,
): PointPruning {
  const { setup, loaded, x } = rt;
  const { req } = setup;
  const method = PRUNING_METHODS[req.method]; // checked by the session
  const schedule = req.schedule ? scheduleByName(req.schedule) : oneShot;
  const skip = new Set(setup.skipLayers);
  // The same seed per sparsity: every loss fine-tunes the same pruned network (Taylor scores use the point's
  // own loss, PW included).
  const pruning: PointPruning =
    method.kind === 'structured'
      ? new StructuredPruning(student, analyzeModel(student), {
          method,
          schedule,
          target: req.target ?? DEFAULT_TARGET,
          finalSparsity: job.sparsity,
          skip,
          taylor: {
            x,
            targets: training.data.targets,
            weights: training.lossWeights,
            indices: setup.taylorRows,
            task: loaded.task,
          },
          allocation: setup.allocation ? new Map(setup.allocation) : undefined,
        })
      : new ScheduledPruning(
          prunableKernels(student).filter((k) => !skip.has(k.layer)),
          method,
          schedule,
          job.sparsity,
          new Rng(req.seed * 7919 + job.sparsityIndex),
        );
  pruning.prepare(rt.steps);
  return pruning;
}

/** Prunes, fine-tunes, measures and saves one point; frees every tensor it made. */
export async function runPoint(
  rt: SweepRuntime,
  job: SweepJob,
  opts: {
    signal?: AbortSignal;
    onProgress?: (p: TrainProgress) => void;
    onPhase?: (phase: 'evaluate' | 'save') => void;
  } = {},
): Promise<PointOutcome> {
  const { setup, loaded, x, width } = rt;
  const { req } = setup;
  const { sparsity, loss, pointNo } = job;
  const scheduleSpec = req.schedule ? normalizeSchedule(req.schedule) : undefined;
  const boot = { resamples: req.bootstrapResamples, confidence: RUN_DEFAULTS.confidence, seed: req.seed };
  const id = pointId(sparsity, loss, job.run);

  const student = await makeLogitModel(loaded);
  const kernels = prunableKernels(student);
  const training = pointTraining(rt, loss);
  const { data, groups, reweight } = training;
  const pruning = pointPruning(rt, job, student, training);
  const testSample = (n: number) =>
    tf.tidy(() => tf.gather(x, tf.tensor1d(setup.testRows.subarray(0, Math.min(n, setup.testRows.length)), 'int32')));
  let outcome: StructuredOutcome | null = null;
  try {
    const trained = await train(student, data, {
      task: loaded.task,
      epochs: req.epochs,
      batchSize: req.batchSize,
      learningRate: req.learningRate,
      patience: req.patience,
      seed: req.seed + pointNo,
      pruning,
      signal: opts.signal,
      onProgress: opts.onProgress,
    });
    opts.onPhase?.('evaluate');
    const prunedTest = toClassProbabilities(
      predictProbabilities(student, loaded.task, x, setup.testRows),
      width,
      loaded.numClasses,
    );
    const evaluation = evaluate(prunedTest, setup.evalInput, boot);
    const comparison = compare(rt.denseTest, prunedTest, setup.evalInput, boot);
    opts.onPhase?.('save');
    const modelDir = path.join('points', id);
    const shrunkFiles: Record<string, string | Uint8Array> = {};
    if (pruning instanceof StructuredPruning) {
      const check = testSample(256);
      outcome = await finishStructured(student, pruning, loaded.json, check, setup.skipLayers).finally(() =>
        check.dispose(),
      );
      if (outcome.files) {
        for (const [name, bytes] of Object.entries({ ...outcome.files, ...setup.besideModel }))
          shrunkFiles[`shrunk/${name}`] = bytes;
        outcome.structure.modelDir = path.join(modelDir, 'shrunk');
      }
    }
    await saveModel(student, path.join(setup.sessionDir, modelDir), loaded.json, {
      ...setup.besideModel,
      ...shrunkFiles,
    });
    const { weightData: _d, ...size } = modelSize(student);
    const batch = testSample(64);
    const measured = measureCostAndLatency(
      rt.denseLogits,
      outcome?.shrunk ?? student,
      rt.denseParameters,
      outcome?.size?.parameters ?? size.parameters,
      batch,
      pruning instanceof StructuredPruning,
      !!outcome?.shrunk,
    );
    batch.dispose();
    const predicted = predictedClasses(prunedTest);
    const testCorrect = Uint8Array.from(predicted, (c, i) => (c === setup.evalInput.labels[i] ? 1 : 0));
    const point: PrunedPoint = {
      id,
      ...(job.run > 1 ? { run: job.run } : {}),
      targetSparsity: sparsity,
      loss,
      method: req.method,
      achievedSparsity: measuredSparsity(kernels),
      size,
      training: trained,
      evaluation,
      comparison,
      modelDir,
      files: hashFolder(path.join(setup.sessionDir, modelDir)),
      ...(scheduleSpec ? { schedule: scheduleSpec.name } : {}),
      cost: measured.cost,
      latency: measured.latency,
      ...(outcome ? { structure: outcome.structure } : {}),
      ...(reweight
        ? { objective: reweight.record() }
        : loss === 'group-balanced'
          ? { objective: groupBalancedWeights(groups).record }
          : {}),
    };
    return { point, testCorrect, testProbabilities: prunedTest };
  } finally {
    outcome?.shrunk?.dispose();
    pruning.dispose();
    data.targets.dispose();
    data.weights.dispose();
    if (training.lossWeights !== data.weights) training.lossWeights.dispose();
    student.dispose();
  }
}
