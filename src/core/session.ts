/**
 * A pruning session: the dense model measured once, then every target sparsity × loss pruned,
 * fine-tuned and measured on every subgroup, each point saved and streamed as it finishes.
 *
 * Everything lands under `<outDir>/sessions/<id>/`: `results.json` (rewritten atomically after
 * every point, so a crash or a cancel keeps what was finished), `points/<point>/` (the pruned
 * models, with the preprocessing they expect beside them), `report.md`, and the tables
 * `predictions.csv` and `metrics.csv` (tables.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { EngineEvent, ProgressPhase, RunRequest } from '../protocol/engine';
import type {
  BackendInfo,
  Evaluation,
  KernelChoice,
  PruningTarget,
  ScheduleSpec,
  SessionResults,
} from '../protocol/results';
import { RESULTS_SCHEMA_VERSION } from '../protocol/results';
import { RUN_DEFAULTS } from '../protocol/defaults';
import { initBackend } from './backend';
import { kernelsSentence, resolveKernels } from './kernels/choice';
import {
  DEFAULT_PIXEL_SCALE,
  loadDataset,
  preprocessingJson,
  readPreprocessingBeside,
  PREPROCESSING_FILE,
} from './data';
import type { Dataset, LoadSpec, Preprocessing } from './data';
import { CancelledError, UserError } from './errors';
import { lossTargets, outputWidth, pwWeightSummary } from './losses';
import { evaluate, evaluationInputOf } from './metrics';
import type { BootstrapOptions, EvaluationInput } from './metrics';
import { loadModel, makeLogitModel, modelRecord, modelSize, prunableKernels } from './model-io';
import type { LoadedModel } from './model-io';
import { methodOptions, normalizeSchedule, pruningMethod } from './pruning';
import type { StructuredMethod } from './pruning';
import {
  allocationFromScan,
  analyzeModel,
  countCost,
  DEFAULT_STRUCTURED_SKIP,
  DEFAULT_TARGET,
  groupAccuracy,
  sensitivityScan,
  skipSet,
} from './structured';
import type { TaylorData } from './structured';
import { Rng } from './rng';
import { predictProbabilities, trainingPathOf } from './train';
import type { TrainProgress } from './train';
import { objectiveSettings, pick, pointId, sweepRuntime, toClassProbabilities } from './sweep-point';
import type { PointOutcome, SweepJob, SweepSetup } from './sweep-point';
import { summarizeRuns } from './contrast';
import { runSweep, sweepWorkers } from './sweep-pool';
import { sha256, writeFileAtomic } from './atomic';
import { writeReport } from './report';
import { writeSessionTables } from './tables';
import { DENSE_REFERENCE_FILE } from './commit';
import type { Predictions } from './metrics';
import { DEFAULT_POLICY, recommendPoint } from '../shared/gate';
import { ENGINE_VERSION } from './version';

export interface SessionHooks {
  emit?: (event: EngineEvent) => void;
  signal?: AbortSignal;
}

/** Training rows the Taylor criterion scores channels on, per scoring (one backward pass each). */
export const TAYLOR_ROWS = 128;

export function newSessionId(now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  return `${stamp}-${crypto.randomBytes(2).toString('hex')}`;
}

export { pointId, toClassProbabilities };

/** What one worker thread holds beyond the shared inputs: the inputs on its backend, the loss
 *  targets and weights, and the model with its gradients, Adam moments, masks and a best copy. */
function bytesPerWorker(d: Dataset, width: number, parameters: number): number {
  return (d.x.length + d.labels.length * (width + 1)) * 4 + parameters * 4 * 8;
}

/** The dense model's probabilities on every row, cached per model + data + preprocessing. */
function teacherProbabilities(
  outDir: string,
  loaded: LoadedModel,
  dataset: Dataset,
  compute: () => Float32Array,
  log: (m: string) => void,
): Float32Array {
  const key = sha256(
    JSON.stringify({
      model: loaded.sha256,
      data: dataset.record.sha256,
      features: dataset.record.features,
      image: dataset.record.imageColumn,
      pixelScale: dataset.record.pixelScale,
      pre: dataset.record.preprocessing,
      classes: dataset.record.label.classes,
    }),
  ).slice(0, 32);
  const file = path.join(outDir, 'cache', `dense-predictions-${key}.f32`);
  const expected = dataset.labels.length * outputWidth(loaded.task, loaded.numClasses);
  if (fs.existsSync(file)) {
    const buf = fs.readFileSync(file);
    if (buf.length === expected * 4) {
      log(`dense model predictions: reused ${path.relative(process.cwd(), file) || file}`);
      return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
    }
  }
  const probs = compute();
  writeFileAtomic(file, new Uint8Array(probs.buffer, probs.byteOffset, probs.byteLength));
  return probs;
}

export function loadSpecOf(req: RunRequest): LoadSpec {
  return {
    ...req.data,
    seed: req.seed,
    reuseSplit: req.reuseSplitFrom ? readSplitOf(req.reuseSplitFrom) : undefined,
  };
}

function readSplitOf(resultsPath: string): string {
  const file =
    fs.existsSync(resultsPath) && fs.statSync(resultsPath).isDirectory()
      ? path.join(resultsPath, 'results.json')
      : resultsPath;
  let doc: Partial<SessionResults>;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`cannot read it as a session's results.json (${(e as Error).message}).`, {
      file,
      field: '--reuse-split',
      fix: 'give the results.json (or the folder) of an earlier session.',
    });
  }
  const assignment = doc.data?.split?.assignment;
  if (typeof assignment !== 'string') {
    throw new UserError('holds no split assignment.', {
      file,
      field: 'data.split.assignment',
      fix: 'give the results.json of a session written by this version of Fair Prune.',
    });
  }
  return assignment;
}

/** A request checked before anything loads: an unknown --method, a bad --schedule or --seeds is refused here. */
interface Plan {
  /** The request, with its kernels resolved (the sweep's worker threads start the same ones). */
  req: RunRequest & { kernels: KernelChoice };
  seeds: number;
  totalPoints: number;
  /** The structured method, or null for an unstructured one. */
  structured: StructuredMethod | null;
  scheduleSpec?: ScheduleSpec;
  target: PruningTarget;
}

function planOf(req: RunRequest): Plan {
  const seeds = req.seeds ?? RUN_DEFAULTS.seeds;
  if (!Number.isInteger(seeds) || seeds < 1) {
    throw new UserError(`'${req.seeds}' is not a whole number of runs ≥ 1.`, {
      field: '--seeds',
      fix: 'give e.g. --seeds 3 (each point fine-tuned three times).',
    });
  }
  const method = pruningMethod(req.method);
  const structured = method.kind === 'structured' ? method : null;
  const scheduleSpec = req.schedule ? normalizeSchedule(req.schedule) : undefined;
  const target = req.target ?? DEFAULT_TARGET;
  if (req.sensitivityLevels?.length && !structured) {
    throw new UserError('the sensitivity scan sets per-layer filter sparsity, so it needs a structured method.', {
      field: '--sensitivity',
      fix: `add ${methodOptions('structured')}, or drop --sensitivity.`,
    });
  }
  if (req.sensitivityLevels?.length && target.scope === 'global') {
    throw new UserError(
      'the sensitivity scan sets a sparsity for each layer, but --scope global ranks filters across all layers and would ignore it.',
      { field: '--scope', fix: 'use --scope layer with --sensitivity, or drop --sensitivity.' },
    );
  }
  const totalPoints = req.sparsities.length * req.losses.length * seeds;
  return {
    req: { ...req, kernels: resolveKernels(req.kernels) },
    seeds,
    totalPoints,
    structured,
    scheduleSpec,
    target,
  };
}

/** The backend started, the model and the data loaded and checked against each other. */
interface Inputs {
  backend: BackendInfo;
  loaded: LoadedModel;
  preprocessing: ReturnType<typeof readPreprocessingBeside>;
  dataset: Dataset;
  trainIdx: Int32Array;
  testIdx: Int32Array;
}

async function loadInputs(req: Plan['req'], log: Log): Promise<Inputs> {
  const backend = await initBackend(req.backend, (m) => log(m), req.kernels);
  const loaded = await loadModel(req.modelPath);
  const preprocessing = readPreprocessingBeside(req.modelPath);
  const dataset = await loadDataset(
    loadSpecOf(req),
    { inputShape: loaded.inputShape, outputUnits: loaded.outputUnits },
    preprocessing,
  );
  for (const w of dataset.record.warnings) log(w, 'warn');
  if (dataset.numClasses !== loaded.numClasses) {
    throw new UserError(
      `the label column has ${dataset.numClasses} classes but the model has ${loaded.outputUnits} output unit(s) (${loaded.numClasses} classes).`,
      {
        file: req.data.csvPath,
        field: req.data.label,
        fix: 'check --label, or give the class list with --classes.',
      },
    );
  }
  const testIdx = dataset.indices('test');
  const trainIdx = dataset.indices('train');
  if (!testIdx.length || !trainIdx.length) {
    throw new UserError(`the split has ${trainIdx.length} training and ${testIdx.length} test rows; both are needed.`, {
      file: req.data.csvPath,
      field: req.data.splitColumn ?? 'split',
      fix: 'give rows of both splits, or drop the split column to let Fair Prune draw a seeded split.',
    });
  }
  return { backend, loaded, preprocessing, dataset, trainIdx, testIdx };
}

type Log = (message: string, level?: 'info' | 'warn') => void;

/** What the steps of a running session share. */
interface Session {
  plan: Plan;
  inputs: Inputs;
  dir: string;
  results: SessionResults;
  emit: (event: EngineEvent) => void;
  log: Log;
  x: tf.Tensor;
  denseLogits: tfl.LayersModel;
  width: number;
  denseParameters: number;
  skipLayers: Set<string>;
  evalInput: EvaluationInput;
  boot: BootstrapOptions;
  /** Each point's right/wrong per test row, for the summaries across seeds and the contrasts against ce. */
  testCorrect: Map<string, Uint8Array>;
  /** Each point's and the dense model's class probabilities on the test rows, for predictions.csv. */
  testProbabilities: Map<string, Predictions>;
  denseTestProbabilities?: Predictions;
}

export async function runSession(request: RunRequest, hooks: SessionHooks = {}): Promise<SessionResults> {
  const emit = hooks.emit ?? (() => {});
  const log: Log = (message, level = 'info') => emit({ type: 'log', level, message });
  const plan = planOf(request);
  emit({ type: 'progress', phase: 'loading', point: 0, points: plan.totalPoints });
  const inputs = await loadInputs(plan.req, log);
  const s = await openSession(plan, inputs, emit, log);
  try {
    const teacher = await measureDense(s);
    await runPoints(s, teacher, hooks.signal);
    s.results.status = 'completed';
  } catch (e) {
    s.results.status = e instanceof CancelledError ? 'cancelled' : 'failed';
    if (!(e instanceof CancelledError)) s.results.error = (e as Error).message;
    if (s.results.dense) finish(s);
    else fs.rmSync(s.dir, { recursive: true, force: true }); // nothing measured: leave no empty session behind
    throw e;
  } finally {
    s.x.dispose();
    s.denseLogits.dispose();
    inputs.loaded.model.dispose();
  }
  finish(s);
  return s.results;
}

/** Creates the session's folder, the inputs on the backend and the results record, and says so. */
async function openSession(plan: Plan, inputs: Inputs, emit: Session['emit'], log: Log): Promise<Session> {
  const { req, structured } = plan;
  const { backend, loaded, dataset } = inputs;
  const sessionId = newSessionId();
  const dir = path.join(req.outDir, 'sessions', sessionId);
  fs.mkdirSync(dir, { recursive: true });
  emit({ type: 'started', sessionId, sessionDir: dir, backend });
  log(`session ${sessionId} on ${backend.name}; writing ${dir}`);
  log(`kernels: ${kernelsSentence(req.kernels)}`);

  const x = tf.tensor(dataset.x, [dataset.labels.length, ...dataset.sampleShape]);
  const denseLogits = await makeLogitModel(loaded);
  log(trainingPathOf(denseLogits, req.batchSize).message);
  const { weightData: _denseWeights, ...denseSize } = modelSize(loaded.model);
  const skipSpec = req.skipLayers ?? (structured ? DEFAULT_STRUCTURED_SKIP : []);
  const prunable = structured
    ? analyzeModel(denseLogits).prunableLayers
    : [...new Set(prunableKernels(denseLogits).map((k) => k.layer))];
  const skipLayers = skipSet(skipSpec, prunable, req.modelPath);
  const results: SessionResults = {
    schemaVersion: RESULTS_SCHEMA_VERSION,
    sessionId,
    status: 'running',
    createdAt: new Date().toISOString(),
    engine: {
      version: ENGINE_VERSION,
      backend,
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    },
    model: { ...modelRecord(loaded, denseSize), flops: countCost(denseLogits).flops },
    data: dataset.record,
    config: sessionConfig(plan, skipSpec),
    dense: undefined as unknown as Evaluation,
    points: [],
  };
  return {
    plan,
    inputs,
    dir,
    results,
    emit,
    log,
    x,
    denseLogits,
    width: outputWidth(loaded.task, loaded.numClasses),
    denseParameters: denseSize.parameters,
    skipLayers,
    evalInput: evaluationInputOf(dataset, inputs.testIdx, 'test'),
    boot: { resamples: req.bootstrapResamples, confidence: RUN_DEFAULTS.confidence, seed: req.seed },
    testCorrect: new Map(),
    testProbabilities: new Map(),
  };
}

/** The settings a session ran with, as results.json records them. */
function sessionConfig(
  { req, seeds, scheduleSpec, structured, target }: Plan,
  skipSpec: string[],
): SessionResults['config'] {
  const objectives = objectiveSettings(req);
  return {
    sparsities: req.sparsities,
    losses: req.losses,
    method: req.method,
    epochs: req.epochs,
    batchSize: req.batchSize,
    learningRate: req.learningRate,
    patience: req.patience,
    seed: req.seed,
    ...(seeds > 1 ? { seeds } : {}),
    pw: { minWeight: req.minWeight, gamma: req.gamma },
    ...(req.losses.includes('group-dro') ? { droEta: objectives.droEta } : {}),
    ...(req.losses.includes('ceag')
      ? { ceag: { tolerance: objectives.ceagTolerance, dualLearningRate: objectives.ceagDualLearningRate } }
      : {}),
    bootstrap: { resamples: req.bootstrapResamples, confidence: RUN_DEFAULTS.confidence },
    ...(scheduleSpec ? { schedule: scheduleSpec } : {}),
    ...(structured ? { target } : {}),
    ...(req.skipLayers || structured ? { skipLayers: skipSpec } : {}),
  };
}

function save(s: Session): void {
  writeFileAtomic(path.join(s.dir, 'results.json'), JSON.stringify(s.results, null, 1));
}

/** The dense model measured on the test rows; returns its probabilities on every row (the PW loss's teacher). */
async function measureDense(s: Session): Promise<Float32Array> {
  const { req, totalPoints } = s.plan;
  const { loaded, dataset, trainIdx, testIdx } = s.inputs;
  s.emit({ type: 'progress', phase: 'dense', point: 0, points: totalPoints });
  const teacher = teacherProbabilities(
    req.outDir,
    loaded,
    dataset,
    () => predictProbabilities(s.denseLogits, loaded.task, s.x),
    s.log,
  );
  const denseTest = toClassProbabilities(pick(teacher, s.width, testIdx), s.width, loaded.numClasses);
  s.results.dense = evaluate(denseTest, s.evalInput, s.boot);
  s.denseTestProbabilities = denseTest;
  // The dense reference on the test rows, for `fairprune check` to compare a committed point against.
  writeFileAtomic(
    path.join(s.dir, DENSE_REFERENCE_FILE),
    new Uint8Array(denseTest.probs.buffer, denseTest.probs.byteOffset, denseTest.probs.byteLength),
  );
  const pw = { minWeight: req.minWeight, gamma: req.gamma };
  s.results.pwWeights = pwWeightSummary(
    loaded.task,
    teacher,
    dataset.labels,
    s.width,
    pw,
    trainIdx,
    dataset.groupIds,
    dataset.groupNames,
  );
  save(s);
  s.emit({ type: 'dense', evaluation: s.results.dense });
  return teacher;
}

/** Every sparsity × loss × seed pruned, fine-tuned, measured and saved, one worker thread or several. */
async function runPoints(s: Session, teacher: Float32Array, signal?: AbortSignal): Promise<void> {
  const { req, seeds, totalPoints, structured } = s.plan;
  const { backend, loaded, dataset, trainIdx, testIdx } = s.inputs;
  // Taylor scores and the shrink check run on seeded samples of the training and test rows. Taylor
  // scores take one backward pass per sample (the absolute value is per sample), so they use a sample.
  const taylorRows = new Rng(req.seed * 31 + 7).shuffle(Int32Array.from(trainIdx)).subarray(0, TAYLOR_ROWS);
  const allocation =
    structured && req.sensitivityLevels?.length ? await scanSensitivity(s, structured, taylorRows) : undefined;
  const setup: SweepSetup = {
    req,
    sessionDir: s.dir,
    backend: backend.name,
    x: dataset.x,
    sampleShape: dataset.sampleShape,
    labels: dataset.labels,
    groupIds: dataset.groupIds,
    groupNames: dataset.groupNames,
    teacher,
    trainRows: trainIdx,
    validationRows: dataset.indices('validation'),
    testRows: testIdx,
    evalInput: s.evalInput,
    besideModel: preprocessingFileOf(s.inputs),
    skipLayers: [...s.skipLayers],
    taylorRows,
    allocation: allocation ? [...allocation] : undefined,
  };
  const jobs = sweepJobs(req, seeds);
  const sweepOrder = new Map(jobs.map((j) => [pointId(j.sparsity, j.loss, j.run), j.pointNo]));
  const choice = sweepWorkers(
    req.workers,
    backend.name,
    jobs.length,
    bytesPerWorker(dataset, s.width, s.denseParameters),
  );
  s.log(`sweep: ${choice.why}`);
  const tracker = sweepProgress(totalPoints, (e) => s.emit({ type: 'progress', ...e }));
  const rt = sweepRuntime(setup, loaded, s.x, s.denseLogits);
  await runSweep(setup, jobs, choice.workers, rt, {
    signal,
    onStart: (job) => tracker.update(job, 'prune'),
    onProgress: (job, p) => tracker.update(job, 'finetune', p),
    onPhase: (job, phase) => tracker.update(job, phase),
    onPoint: (job, outcome) => {
      tracker.done(job);
      pointDone(s, outcome, sweepOrder);
    },
    onWarning: (m) => s.log(m, 'warn'),
  });
}

/** Every pruned model carries the preprocessing it was measured with: the dense model's own file, or,
 *  for a model that came without one, what this run fed it (columns in input order, the class order,
 *  image size and pixel scale), so a later run on the pruned model reads the same inputs. */
function preprocessingFileOf({ preprocessing, dataset }: Inputs): Record<string, Uint8Array> {
  return {
    [PREPROCESSING_FILE]: preprocessing
      ? fs.readFileSync(preprocessing.path)
      : Buffer.from(preprocessingJson(appliedPreprocessing(dataset)), 'utf8'),
  };
}

/** Run 1 of every sparsity × loss first (the whole curve early), then the further seeds. */
function sweepJobs(req: RunRequest, seeds: number): SweepJob[] {
  const perRun = req.sparsities.length * req.losses.length;
  return Array.from({ length: seeds }, (_, r) =>
    req.sparsities.flatMap((sparsity, sparsityIndex) =>
      req.losses.map((loss, lossIndex) => ({
        sparsity,
        sparsityIndex,
        loss,
        run: r + 1,
        pointNo: r * perRun + sparsityIndex * req.losses.length + lossIndex + 1,
      })),
    ),
  ).flat();
}

type ProgressEvent = Omit<Extract<EngineEvent, { type: 'progress' }>, 'type'>;

/** Progress of the whole sweep: finished points plus the share of each running point. */
function sweepProgress(totalPoints: number, progress: (e: ProgressEvent) => void) {
  const sweepStart = Date.now();
  const running = new Map<number, number>();
  let finished = 0;
  return {
    update(job: SweepJob, phase: ProgressPhase, p?: TrainProgress) {
      running.set(job.pointNo, p ? p.step / p.steps : phase === 'prune' ? 0 : 1);
      const done = finished + [...running.values()].reduce((a, b) => a + b, 0);
      const elapsed = (Date.now() - sweepStart) / 1000;
      progress({
        phase,
        point: job.pointNo,
        points: totalPoints,
        targetSparsity: job.sparsity,
        loss: job.loss,
        ...(p
          ? {
              epoch: p.epoch,
              epochs: p.epochs,
              step: p.step,
              steps: p.steps,
              trainLoss: p.trainLoss,
              samplesPerSecond: p.samplesPerSecond,
            }
          : {}),
        fraction: done / totalPoints,
        running: [...running.keys()].sort((a, b) => a - b),
        secondsLeft: done > 0 ? (elapsed / done) * (totalPoints - done) : undefined,
      });
    },
    done(job: SweepJob) {
      running.delete(job.pointNo);
      finished++;
    },
  };
}

/** A finished point into results.json (in sweep order, however points finish) and onto the stream. */
function pointDone(
  s: Session,
  { point, testCorrect, testProbabilities }: PointOutcome,
  sweepOrder: Map<string, number>,
): void {
  s.testCorrect.set(point.id, testCorrect);
  s.testProbabilities.set(point.id, testProbabilities);
  s.results.points.push(point);
  s.results.points.sort((a, b) => sweepOrder.get(a.id)! - sweepOrder.get(b.id)!);
  s.results.recommendation = recommendPoint(s.results, DEFAULT_POLICY);
  save(s);
  s.emit({ type: 'point', point });
}

/** Each layer alone pruned to each level, on validation rows (train when there are none); per-layer shares from it. */
async function scanSensitivity(
  s: Session,
  scorer: StructuredMethod,
  taylorRows: Int32Array,
): Promise<Map<string, number>> {
  const { req } = s.plan;
  const { loaded, dataset, trainIdx } = s.inputs;
  const validation = dataset.indices('validation');
  const rows = validation.length ? validation : trainIdx;
  const model = await makeLogitModel(loaded);
  try {
    const graph = analyzeModel(model);
    const groups = graph.groups.filter((g) => !s.skipLayers.has(g.producer));
    const scanData = {
      x: s.x,
      indices: rows,
      labels: dataset.labels,
      groupIds: dataset.groupIds,
      numGroups: dataset.groupNames.length,
      task: loaded.task,
    };
    let scores: Float64Array[];
    if (scorer.needs.includes('training rows')) {
      const t = lossTargets('ce', loaded.task, dataset.labels, s.width, undefined, {
        minWeight: req.minWeight,
        gamma: req.gamma,
      });
      const data: TaylorData = {
        x: s.x,
        targets: tf.tensor2d(Float32Array.from(t.targets), [dataset.labels.length, s.width]),
        weights: tf.tensor1d(Float32Array.from(t.weights)),
        indices: taylorRows,
        task: loaded.task,
      };
      scores = scorer.channelScores(model, groups, data);
      data.targets.dispose();
      data.weights.dispose();
    } else scores = scorer.channelScores(model, groups);
    const dense = groupAccuracy(model, scanData);
    const levels = req.sensitivityLevels!;
    s.log(
      `sensitivity scan: ${groups.length} layer(s) × ${levels.length} level(s) on ${validation.length ? 'validation' : 'training'} rows`,
    );
    const scanRows = sensitivityScan(model, graph, groups, scores, levels, scanData);
    const tolerance = req.sensitivityTolerance ?? RUN_DEFAULTS.sensitivityTolerance;
    const alloc = allocationFromScan(scanRows, dense, tolerance);
    s.results.sensitivity = {
      split: validation.length ? 'validation' : 'train',
      method: req.method,
      dense,
      rows: scanRows,
      allocation: Object.fromEntries(alloc),
      tolerance,
    };
    save(s);
    return alloc;
  } finally {
    model.dispose();
  }
}

/** The summaries across seeds, the tables and the report; then the stream's last event. */
function finish(s: Session): void {
  const { results } = s;
  if (results.points.length) {
    const opts = { ...s.boot, seed: s.plan.req.seed + 17 };
    results.summaries = summarizeRuns(
      results.points,
      (id) => s.testCorrect.get(id),
      s.evalInput.groupIds,
      s.inputs.dataset.groupNames.length,
      opts,
    );
  }
  results.finishedAt = new Date().toISOString();
  save(s);
  if (s.denseTestProbabilities)
    writeSessionTables(s.dir, results, s.evalInput, s.denseTestProbabilities, s.testProbabilities);
  const reportPath = path.join(s.dir, 'report.md');
  writeReport(reportPath, results);
  s.emit({
    type: 'finished',
    status: results.status,
    resultsPath: path.join(s.dir, 'results.json'),
    reportPath,
    error: results.error,
  });
}

/** The preprocessing a run applied to a model that came without a preprocessing file: the CSV values
 *  as they are (an identity standardisation, mean 0 and std 1) in the run's feature order, or the
 *  images at the model's input size and the run's pixel scale; with the run's class order. */
export function appliedPreprocessing(d: Dataset): Preprocessing {
  const r = d.record;
  if (r.imageColumn) {
    const [height, width, channels] = d.sampleShape;
    return {
      version: 1,
      label: r.label,
      groupColumns: r.groupColumns,
      columns: null,
      outputFeatures: null,
      image: { column: r.imageColumn, height, width, channels, pixelScale: r.pixelScale ?? DEFAULT_PIXEL_SCALE },
    };
  }
  const features = r.features ?? [];
  return {
    version: 1,
    label: r.label,
    groupColumns: r.groupColumns,
    columns: features.map((column) => ({ column, kind: 'standardize' as const, mean: 0, std: 1 })),
    outputFeatures: features,
    image: null,
  };
}
