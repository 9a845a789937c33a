/**
 * A pruning session: the dense model measured once, then every target sparsity × loss pruned,
 * fine-tuned and measured on every subgroup, each point saved and streamed as it finishes.
 *
 * Everything lands under `<outDir>/sessions/<id>/`: `results.json` (rewritten atomically after
 * every point, so a crash or a cancel keeps what was finished), `points/<point>/` (the pruned
 * models, with the preprocessing they expect beside them) and `report.md`.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import * as tf from '@tensorflow/tfjs-core';
import type { EngineEvent, RunRequest } from '../protocol/engine';
import type { Evaluation, LossName, PrunedPoint, SessionResults } from '../protocol/results';
import { RESULTS_SCHEMA_VERSION } from '../protocol/results';
import { initBackend } from './backend';
import { DEFAULT_PIXEL_SCALE, loadDataset, preprocessingJson, readPreprocessingBeside, PREPROCESSING_FILE } from './data';
import type { Dataset, DataSpec, Preprocessing } from './data';
import { CancelledError, UserError } from './errors';
import { lossTargets, outputWidth } from './losses';
import { compare, evaluate } from './metrics';
import type { Predictions } from './metrics';
import { loadModel, makeLogitModel, modelRecord, modelSize, prunableKernels, saveModel } from './model-io';
import type { LoadedModel } from './model-io';
import { criterionByName, measuredSparsity, oneShot, scheduleByName, ScheduledPruning } from './pruning';
import type { StepPruning } from './pruning';
import {
  allocationFromScan, analyzeModel, countCost, DEFAULT_STRUCTURED_SKIP, DEFAULT_TARGET, finishStructured, groupAccuracy, l1Scores,
  measureCostAndLatency, normalizeSchedule, sensitivityScan, skipSet, structuredCriterionOf, StructuredPruning, taylorScores,
} from './structured';
import type { StructuredOutcome } from './structured';
import { Rng } from './rng';
import { predictProbabilities, train } from './train';
import type { TrainingData } from './train';
import { sha256, writeFileAtomic } from './atomic';
import { writeReport } from './report';
import { ENGINE_VERSION } from './version';

export interface SessionHooks {
  emit?: (event: EngineEvent) => void;
  signal?: AbortSignal;
}

export function newSessionId(now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`;
  return `${stamp}-${crypto.randomBytes(2).toString('hex')}`;
}

export function pointId(sparsity: number, loss: LossName): string {
  return `s${sparsity.toFixed(2)}-${loss}`;
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

function pick(probs: Float32Array, width: number, indices: Int32Array): Float32Array {
  const out = new Float32Array(indices.length * width);
  indices.forEach((r, i) => out.set(probs.subarray(r * width, (r + 1) * width), i * width));
  return out;
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
  const totalPoints = req.sparsities.length * req.losses.length;
  const criterion = criterionByName(req.method);
  const structuredCriterion = structuredCriterionOf(req.method);
  const scheduleSpec = req.schedule ? normalizeSchedule(req.schedule) : undefined;
  const schedule = scheduleSpec ? scheduleByName(scheduleSpec) : oneShot;
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
  const { weightData: _denseWeights, ...denseSize } = modelSize(loaded.model);
  const denseGraph = analyzeModel(denseLogits);
  const skipSpec = req.skipLayers ?? (structuredCriterion ? DEFAULT_STRUCTURED_SKIP : []);
  const skipLayers = skipSet(skipSpec, structuredCriterion ? denseGraph.prunableLayers : [...new Set(prunableKernels(denseLogits).map((k) => k.layer))], req.modelPath);
  const boot = { resamples: req.bootstrapResamples, confidence: 0.95, seed: req.seed };
  const evalInput = {
    labels: Int32Array.from(testIdx, (r) => dataset.labels[r]),
    groupIds: Int32Array.from(testIdx, (r) => dataset.groupIds[r]),
    groupNames: dataset.groupNames,
    rows: Int32Array.from(testIdx, (r) => dataset.rowNumbers[r]),
    classNames: dataset.record.label.classes,
    split: 'test' as const,
  };

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
      pw: { minWeight: req.minWeight, gamma: req.gamma },
      bootstrap: { resamples: req.bootstrapResamples, confidence: 0.95 },
      ...(scheduleSpec ? { schedule: scheduleSpec } : {}),
      ...(structuredCriterion ? { target } : {}),
      ...(req.skipLayers || structuredCriterion ? { skipLayers: skipSpec } : {}),
    },
    dense: undefined as unknown as Evaluation,
    points: [],
  };
  const save = () => writeFileAtomic(resultsPath, JSON.stringify(results, null, 1));

  try {
    progress({ phase: 'dense', point: 0, points: totalPoints });
    const teacher = teacherProbabilities(req.outDir, loaded, dataset, () => predictProbabilities(denseLogits, loaded.task, x), log);
    const denseTest = toClassProbabilities(pick(teacher, width, testIdx), width, loaded.numClasses);
    results.dense = evaluate(denseTest, evalInput, boot);
    save();
    emit({ type: 'dense', evaluation: results.dense });

    // Every pruned model carries the preprocessing it was measured with: the dense model's own file,
    // or, for a model that came without one, what this run fed it (columns in input order, the class
    // order, image size and pixel scale), so a later run on the pruned model reads the same inputs.
    const preprocessingFile: Record<string, Uint8Array> = {
      [PREPROCESSING_FILE]: preprocessing ? fs.readFileSync(preprocessing.path) : Buffer.from(preprocessingJson(appliedPreprocessing(dataset)), 'utf8'),
    };
    const steps = Math.ceil(trainIdx.length / req.batchSize) * req.epochs;
    // Taylor scores and the shrink check run on seeded samples of the training and test rows.
    const taylorRows = new Rng(req.seed * 31 + 7).shuffle(Int32Array.from(trainIdx)).subarray(0, 512);
    const testSample = (n: number) => tf.tidy(() => tf.gather(x, tf.tensor1d(testIdx.subarray(0, Math.min(n, testIdx.length)), 'int32')));
    let allocation: Map<string, number> | undefined;
    if (structuredCriterion && req.sensitivityLevels?.length) {
      allocation = await scanSensitivity(taylorRows);
    }
    const sessionStart = Date.now();
    let pointNo = 0;
    for (const [si, sparsity] of req.sparsities.entries()) {
      for (const loss of req.losses) {
        pointNo++;
        const id = pointId(sparsity, loss);
        const secondsLeftAfter = (fractionOfPoint: number) => {
          const elapsed = (Date.now() - sessionStart) / 1000;
          const done = pointNo - 1 + fractionOfPoint;
          return done > 0 ? (elapsed / done) * (totalPoints - done) : undefined;
        };
        progress({ phase: 'prune', point: pointNo, points: totalPoints, targetSparsity: sparsity, loss });
        const student = await makeLogitModel(loaded);
        const kernels = prunableKernels(student);
        const t = lossTargets(loss, loaded.task, dataset.labels, width, teacher, { minWeight: req.minWeight, gamma: req.gamma });
        const data: TrainingData = {
          x,
          targets: tf.tensor2d(Float32Array.from(t.targets), [dataset.labels.length, width]),
          weights: tf.tensor1d(Float32Array.from(t.weights)),
          labels: dataset.labels,
          train: trainIdx,
          validation: dataset.indices('validation'),
        };
        // The same seed per sparsity: every loss fine-tunes the same pruned network (Taylor scores use the point's own loss, PW included).
        const pruning: (StepPruning & { prepare(n: number): void; dispose(): void }) | StructuredPruning = structuredCriterion
          ? new StructuredPruning(student, analyzeModel(student), {
              criterion: structuredCriterion,
              schedule,
              target,
              finalSparsity: sparsity,
              skip: skipLayers,
              taylor: { x, targets: data.targets, weights: data.weights, indices: taylorRows, task: loaded.task },
              allocation,
            })
          : new ScheduledPruning(kernels.filter((k) => !skipLayers.has(k.layer)), criterion, schedule, sparsity, new Rng(req.seed * 7919 + si));
        pruning.prepare(steps);
        let outcome: StructuredOutcome | null = null;
        try {
          const training = await train(student, data, {
            task: loaded.task,
            epochs: req.epochs,
            batchSize: req.batchSize,
            learningRate: req.learningRate,
            patience: req.patience,
            seed: req.seed + pointNo,
            pruning,
            signal: hooks.signal,
            onProgress: (p) =>
              progress({
                phase: 'finetune',
                point: pointNo,
                points: totalPoints,
                targetSparsity: sparsity,
                loss,
                epoch: p.epoch,
                epochs: p.epochs,
                step: p.step,
                steps: p.steps,
                trainLoss: p.trainLoss,
                samplesPerSecond: p.samplesPerSecond,
                secondsLeft: secondsLeftAfter(p.step / p.steps),
              }),
          });
          progress({ phase: 'evaluate', point: pointNo, points: totalPoints, targetSparsity: sparsity, loss });
          const prunedTest = toClassProbabilities(predictProbabilities(student, loaded.task, x, testIdx), width, loaded.numClasses);
          const evaluation = evaluate(prunedTest, evalInput, boot);
          const comparison = compare(denseTest, prunedTest, evalInput, boot);
          progress({ phase: 'save', point: pointNo, points: totalPoints, targetSparsity: sparsity, loss });
          const modelDir = path.join('points', id);
          const shrunkFiles: Record<string, string | Uint8Array> = {};
          if (pruning instanceof StructuredPruning) {
            const check = testSample(256);
            outcome = await finishStructured(student, pruning, loaded.json, check, [...skipLayers]).finally(() => check.dispose());
            if (outcome.files) {
              for (const [name, data] of Object.entries({ ...outcome.files, ...preprocessingFile })) shrunkFiles[`shrunk/${name}`] = data;
              outcome.structure.modelDir = path.join(modelDir, 'shrunk');
            }
          }
          await saveModel(student, path.join(sessionDir, modelDir), loaded.json, { ...preprocessingFile, ...shrunkFiles });
          const { weightData: _d, ...size } = modelSize(student);
          const batch = testSample(64);
          const measured = measureCostAndLatency(denseLogits, outcome?.shrunk ?? student, denseSize.parameters, outcome?.size?.parameters ?? size.parameters, batch, !!structuredCriterion, !!outcome?.shrunk);
          batch.dispose();
          const point: PrunedPoint = {
            id,
            targetSparsity: sparsity,
            loss,
            method: criterion.name,
            achievedSparsity: measuredSparsity(kernels),
            size,
            training,
            evaluation,
            comparison,
            modelDir,
            ...(scheduleSpec ? { schedule: scheduleSpec.name } : {}),
            cost: measured.cost,
            latency: measured.latency,
            ...(outcome ? { structure: outcome.structure } : {}),
          };
          results.points.push(point);
          save();
          emit({ type: 'point', point });
        } finally {
          outcome?.shrunk?.dispose();
          pruning.dispose();
          data.targets.dispose();
          data.weights.dispose();
          student.dispose();
        }
      }
    }
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
    results.finishedAt = new Date().toISOString();
    save();
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
