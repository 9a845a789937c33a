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
import type { EngineEvent, ProgressPhase, RunRequest } from '../protocol/engine';
import type { Evaluation, PrunedPoint, SessionResults } from '../protocol/results';
import { RESULTS_SCHEMA_VERSION } from '../protocol/results';
import { initBackend } from './backend';
import { DEFAULT_PIXEL_SCALE, loadDataset, preprocessingJson, readPreprocessingBeside, PREPROCESSING_FILE } from './data';
import type { Dataset, DataSpec, Preprocessing } from './data';
import { CancelledError, UserError } from './errors';
import { lossTargets, outputWidth, pwWeightSummary } from './losses';
import { evaluate, evaluationInputOf } from './metrics';
import { loadModel, makeLogitModel, modelRecord, modelSize, prunableKernels } from './model-io';
import type { LoadedModel } from './model-io';
import { criterionByName, scheduleByName } from './pruning';
import {
  allocationFromScan, analyzeModel, countCost, DEFAULT_STRUCTURED_SKIP, DEFAULT_TARGET, groupAccuracy, l1Scores, normalizeSchedule,
  sensitivityScan, skipSet, structuredCriterionOf, taylorScores,
} from './structured';
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
import { DEFAULT_POLICY, recommendPoint } from './gate';
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
function teacherProbabilities(outDir: string, loaded: LoadedModel, dataset: Dataset, compute: () => Float32Array, log: (m: string) => void): Float32Array {
  const key = sha256(
    JSON.stringify({ model: loaded.sha256, data: dataset.record.sha256, features: dataset.record.features, image: dataset.record.imageColumn, pixelScale: dataset.record.pixelScale, pre: dataset.record.preprocessing, classes: dataset.record.label.classes }),
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

export function dataSpecOf(req: RunRequest): DataSpec {
  return {
    csvPath: req.dataPath,
    label: req.label,
    groups: req.groups,
    features: req.features,
    ignore: req.ignore,
    splitColumn: req.splitColumn,
    imageColumn: req.imageColumn,
    classes: req.classes,
    pixelScale: req.pixelScale,
    seed: req.seed,
    reuseSplit: req.reuseSplitFrom ? readSplitOf(req.reuseSplitFrom) : undefined,
  };
}

function readSplitOf(resultsPath: string): string {
  const file = fs.existsSync(resultsPath) && fs.statSync(resultsPath).isDirectory() ? path.join(resultsPath, 'results.json') : resultsPath;
  let doc: Partial<SessionResults>;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`cannot read it as a session's results.json (${(e as Error).message}).`, { file, field: '--reuse-split', fix: 'give the results.json (or the folder) of an earlier session.' });
  }
  const assignment = doc.data?.split?.assignment;
  if (typeof assignment !== 'string') {
    throw new UserError('holds no split assignment.', { file, field: 'data.split.assignment', fix: 'give the results.json of a session written by this version of Fair Prune.' });
  }
  return assignment;
}

export async function runSession(req: RunRequest, hooks: SessionHooks = {}): Promise<SessionResults> {
  const emit = hooks.emit ?? (() => {});
  const log = (message: string, level: 'info' | 'warn' = 'info') => emit({ type: 'log', level, message });
  const progress = (e: Omit<Extract<EngineEvent, { type: 'progress' }>, 'type'>) => emit({ type: 'progress', ...e });
  const seeds = req.seeds ?? 1;
  if (!Number.isInteger(seeds) || seeds < 1) {
    throw new UserError(`'${req.seeds}' is not a whole number of runs ≥ 1.`, { field: '--seeds', fix: 'give e.g. --seeds 3 (each point fine-tuned three times).' });
  }
  const totalPoints = req.sparsities.length * req.losses.length * seeds;
  criterionByName(req.method); // an unknown --method is refused before anything loads
  const structuredCriterion = structuredCriterionOf(req.method);
  const scheduleSpec = req.schedule ? normalizeSchedule(req.schedule) : undefined;
  if (scheduleSpec) scheduleByName(scheduleSpec); // and so is a bad --schedule
  const target = req.target ?? DEFAULT_TARGET;
  if (req.sensitivityLevels?.length && !structuredCriterion) {
    throw new UserError('the sensitivity scan sets per-layer filter sparsity, so it needs a structured method.', { field: '--sensitivity', fix: 'add --method l1-filter or --method taylor-filter, or drop --sensitivity.' });
  }
  if (req.sensitivityLevels?.length && target.scope === 'global') {
    throw new UserError('the sensitivity scan sets a sparsity for each layer, but --scope global ranks filters across all layers and would ignore it.', { field: '--scope', fix: 'use --scope layer with --sensitivity, or drop --sensitivity.' });
  }

  progress({ phase: 'loading', point: 0, points: totalPoints });
  const backend = await initBackend(req.backend, (m) => log(m));
  const loaded = await loadModel(req.modelPath);
  const preprocessing = readPreprocessingBeside(req.modelPath);
  const dataset = await loadDataset(dataSpecOf(req), { inputShape: loaded.inputShape, outputUnits: loaded.outputUnits }, preprocessing);
  for (const w of dataset.record.warnings) log(w, 'warn');
  if (dataset.numClasses !== loaded.numClasses) {
    throw new UserError(`the label column has ${dataset.numClasses} classes but the model has ${loaded.outputUnits} output unit(s) (${loaded.numClasses} classes).`, {
      file: req.dataPath,
      field: req.label,
      fix: 'check --label, or give the class list with --classes.',
    });
  }
  const testIdx = dataset.indices('test');
  const trainIdx = dataset.indices('train');
  if (!testIdx.length || !trainIdx.length) {
    throw new UserError(`the split has ${trainIdx.length} training and ${testIdx.length} test rows; both are needed.`, {
      file: req.dataPath,
      field: req.splitColumn ?? 'split',
      fix: 'give rows of both splits, or drop the split column to let Fair Prune draw a seeded split.',
    });
  }

  const sessionId = newSessionId();
  const sessionDir = path.join(req.outDir, 'sessions', sessionId);
  fs.mkdirSync(sessionDir, { recursive: true });
  const resultsPath = path.join(sessionDir, 'results.json');
  const reportPath = path.join(sessionDir, 'report.md');
  emit({ type: 'started', sessionId, sessionDir, backend });
  log(`session ${sessionId} on ${backend.name}; writing ${sessionDir}`);

  const width = outputWidth(loaded.task, loaded.numClasses);
  const x = tf.tensor(dataset.x, [dataset.labels.length, ...dataset.sampleShape]);
  const denseLogits = await makeLogitModel(loaded);
  log(trainingPathOf(denseLogits, req.batchSize).message);
  const { weightData: _denseWeights, ...denseSize } = modelSize(loaded.model);
  const denseGraph = analyzeModel(denseLogits);
  const skipSpec = req.skipLayers ?? (structuredCriterion ? DEFAULT_STRUCTURED_SKIP : []);
  const skipLayers = skipSet(skipSpec, structuredCriterion ? denseGraph.prunableLayers : [...new Set(prunableKernels(denseLogits).map((k) => k.layer))], req.modelPath);
  const boot = { resamples: req.bootstrapResamples, confidence: 0.95, seed: req.seed };
  const evalInput = evaluationInputOf(dataset, testIdx, 'test');
  const objectives = objectiveSettings(req);

  const results: SessionResults = {
    schemaVersion: RESULTS_SCHEMA_VERSION,
    sessionId,
    status: 'running',
    createdAt: new Date().toISOString(),
    engine: { version: ENGINE_VERSION, backend, node: process.version, platform: `${process.platform}-${process.arch}` },
    model: { ...modelRecord(loaded, denseSize), flops: countCost(denseLogits).flops },
    data: dataset.record,
    config: {
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
      ...(req.losses.includes('ceag') ? { ceag: { tolerance: objectives.ceagTolerance, dualLearningRate: objectives.ceagDualLearningRate } } : {}),
      bootstrap: { resamples: req.bootstrapResamples, confidence: 0.95 },
      ...(scheduleSpec ? { schedule: scheduleSpec } : {}),
      ...(structuredCriterion ? { target } : {}),
      ...(req.skipLayers || structuredCriterion ? { skipLayers: skipSpec } : {}),
    },
    dense: undefined as unknown as Evaluation,
    points: [],
  };
  const save = () => writeFileAtomic(resultsPath, JSON.stringify(results, null, 1));
  // Each point's right/wrong per test row, for the summaries across seeds and the contrasts against ce.
  const testCorrect = new Map<string, Uint8Array>();
  // Each point's and the dense model's class probabilities on the test rows, for predictions.csv.
  const testProbabilities = new Map<string, Predictions>();
  let denseTestProbabilities: Predictions | undefined;

  try {
    progress({ phase: 'dense', point: 0, points: totalPoints });
    const teacher = teacherProbabilities(req.outDir, loaded, dataset, () => predictProbabilities(denseLogits, loaded.task, x), log);
    const denseTest = toClassProbabilities(pick(teacher, width, testIdx), width, loaded.numClasses);
    results.dense = evaluate(denseTest, evalInput, boot);
    denseTestProbabilities = denseTest;
    // The dense reference on the test rows, for `fairprune check` to compare a committed point against.
    writeFileAtomic(path.join(sessionDir, DENSE_REFERENCE_FILE), new Uint8Array(denseTest.probs.buffer, denseTest.probs.byteOffset, denseTest.probs.byteLength));
    const pw = { minWeight: req.minWeight, gamma: req.gamma };
    results.pwWeights = pwWeightSummary(loaded.task, teacher, dataset.labels, width, pw, trainIdx, dataset.groupIds, dataset.groupNames);
    save();
    emit({ type: 'dense', evaluation: results.dense });

    // Every pruned model carries the preprocessing it was measured with: the dense model's own file,
    // or, for a model that came without one, what this run fed it (columns in input order, the class
    // order, image size and pixel scale), so a later run on the pruned model reads the same inputs.
    const preprocessingFile: Record<string, Uint8Array> = {
      [PREPROCESSING_FILE]: preprocessing ? fs.readFileSync(preprocessing.path) : Buffer.from(preprocessingJson(appliedPreprocessing(dataset)), 'utf8'),
    };
    // Taylor scores and the shrink check run on seeded samples of the training and test rows. Taylor
    // scores take one backward pass per sample (the absolute value is per sample), so they use a sample.
    const taylorRows = new Rng(req.seed * 31 + 7).shuffle(Int32Array.from(trainIdx)).subarray(0, TAYLOR_ROWS);
    let allocation: Map<string, number> | undefined;
    if (structuredCriterion && req.sensitivityLevels?.length) {
      allocation = await scanSensitivity(taylorRows);
    }
    const setup: SweepSetup = {
      req,
      sessionDir,
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
      evalInput,
      besideModel: preprocessingFile,
      skipLayers: [...skipLayers],
      taylorRows,
      allocation: allocation ? [...allocation] : undefined,
    };
    // Run 1 of every sparsity × loss first (the whole curve early), then the further seeds.
    const perRun = req.sparsities.length * req.losses.length;
    const jobs: SweepJob[] = Array.from({ length: seeds }, (_, r) =>
      req.sparsities.flatMap((sparsity, sparsityIndex) =>
        req.losses.map((loss, lossIndex) => ({ sparsity, sparsityIndex, loss, run: r + 1, pointNo: r * perRun + sparsityIndex * req.losses.length + lossIndex + 1 })),
      ),
    ).flat();
    const sweepOrder = new Map(jobs.map((j) => [pointId(j.sparsity, j.loss, j.run), j.pointNo]));
    const choice = sweepWorkers(req.workers, backend.name, jobs.length, bytesPerWorker(dataset, width, denseSize.parameters));
    log(`sweep: ${choice.why}`);

    // Progress of the whole sweep: finished points plus the share of each running point.
    const sweepStart = Date.now();
    const running = new Map<number, number>();
    let finished = 0;
    const sweepProgress = (job: SweepJob, phase: ProgressPhase, p?: TrainProgress) => {
      running.set(job.pointNo, p ? p.step / p.steps : phase === 'prune' ? 0 : 1);
      const done = finished + [...running.values()].reduce((a, b) => a + b, 0);
      const elapsed = (Date.now() - sweepStart) / 1000;
      progress({
        phase,
        point: job.pointNo,
        points: totalPoints,
        targetSparsity: job.sparsity,
        loss: job.loss,
        ...(p ? { epoch: p.epoch, epochs: p.epochs, step: p.step, steps: p.steps, trainLoss: p.trainLoss, samplesPerSecond: p.samplesPerSecond } : {}),
        fraction: done / totalPoints,
        running: [...running.keys()].sort((a, b) => a - b),
        secondsLeft: done > 0 ? (elapsed / done) * (totalPoints - done) : undefined,
      });
    };
    const pointDone = (job: SweepJob, { point, testCorrect: correct, testProbabilities: probs }: PointOutcome) => {
      running.delete(job.pointNo);
      finished++;
      testCorrect.set(point.id, correct);
      testProbabilities.set(point.id, probs);
      // results.json lists points in sweep order, however they finish.
      results.points.push(point);
      results.points.sort((a, b) => sweepOrder.get(a.id)! - sweepOrder.get(b.id)!);
      results.recommendation = recommendPoint(results, DEFAULT_POLICY);
      save();
      emit({ type: 'point', point });
    };

    const rt = sweepRuntime(setup, loaded, x, denseLogits);
    await runSweep(setup, jobs, choice.workers, rt, {
      signal: hooks.signal,
      onStart: (job) => sweepProgress(job, 'prune'),
      onProgress: (job, p) => sweepProgress(job, 'finetune', p),
      onPhase: (job, phase) => sweepProgress(job, phase),
      onPoint: pointDone,
      onWarning: (m) => log(m, 'warn'),
    });
    results.status = 'completed';
  } catch (e) {
    results.status = e instanceof CancelledError ? 'cancelled' : 'failed';
    if (!(e instanceof CancelledError)) results.error = (e as Error).message;
    if (results.dense) finish();
    else fs.rmSync(sessionDir, { recursive: true, force: true }); // nothing measured: leave no empty session behind
    throw e;
  } finally {
    x.dispose();
    denseLogits.dispose();
    loaded.model.dispose();
  }
  finish();
  return results;

  /** Each layer alone pruned to each level, on validation rows (train when there are none); per-layer shares from it. */
  async function scanSensitivity(taylorRows: Int32Array): Promise<Map<string, number>> {
    const validation = dataset.indices('validation');
    const rows = validation.length ? validation : trainIdx;
    const model = await makeLogitModel(loaded);
    try {
      const graph = analyzeModel(model);
      const groups = graph.groups.filter((g) => !skipLayers.has(g.producer));
      const scanData = { x, indices: rows, labels: dataset.labels, groupIds: dataset.groupIds, numGroups: dataset.groupNames.length, task: loaded.task };
      let scores: Float64Array[];
      if (structuredCriterion === 'taylor') {
        const t = lossTargets('ce', loaded.task, dataset.labels, width, undefined, { minWeight: req.minWeight, gamma: req.gamma });
        const targets = tf.tensor2d(Float32Array.from(t.targets), [dataset.labels.length, width]);
        const weights = tf.tensor1d(Float32Array.from(t.weights));
        scores = taylorScores(model, groups, { x, targets, weights, indices: taylorRows, task: loaded.task });
        targets.dispose();
        weights.dispose();
      } else scores = l1Scores(model, groups);
      const dense = groupAccuracy(model, scanData);
      const levels = req.sensitivityLevels!;
      log(`sensitivity scan: ${groups.length} layer(s) × ${levels.length} level(s) on ${validation.length ? 'validation' : 'training'} rows`);
      const scanRows = sensitivityScan(model, graph, groups, scores, levels, scanData);
      const tolerance = req.sensitivityTolerance ?? 0.02;
      const alloc = allocationFromScan(scanRows, dense, tolerance);
      results.sensitivity = { split: validation.length ? 'validation' : 'train', method: req.method, dense, rows: scanRows, allocation: Object.fromEntries(alloc), tolerance };
      save();
      return alloc;
    } finally {
      model.dispose();
    }
  }

  function finish() {
    if (results.points.length) {
      results.summaries = summarizeRuns(results.points, (id) => testCorrect.get(id), evalInput.groupIds, dataset.groupNames.length, { ...boot, seed: req.seed + 17 });
    }
    results.finishedAt = new Date().toISOString();
    save();
    if (denseTestProbabilities) writeSessionTables(sessionDir, results, evalInput, denseTestProbabilities, testProbabilities);
    writeReport(reportPath, results);
    emit({ type: 'finished', status: results.status, resultsPath, reportPath, error: results.error });
  }
}

/** The preprocessing a run applied to a model that came without a preprocessing file: the CSV values
 *  as they are (an identity standardisation, mean 0 and std 1) in the run's feature order, or the
 *  images at the model's input size and the run's pixel scale; with the run's class order. */
export function appliedPreprocessing(d: Dataset): Preprocessing {
  const r = d.record;
  if (r.imageColumn) {
    const [height, width, channels] = d.sampleShape;
    return { version: 1, label: r.label, groupColumns: r.groupColumns, columns: null, outputFeatures: null, image: { column: r.imageColumn, height, width, channels, pixelScale: r.pixelScale ?? DEFAULT_PIXEL_SCALE } };
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
