/**
 * `fairprune check`: does a committed pruned model still pass the fairness policy? It reads the
 * fairness.json committed beside the model, verifies every committed file against its sha256,
 * measures the model again on the data's test rows (the split, label mapping, groups and
 * preprocessing recorded at commit) against the committed dense reference, and judges the result
 * with the same gate as the commit (gate.ts).
 *
 * Outcomes: `pass` (exit 0), `fail` (a rule failed, exit 1), `error` (it cannot run: a missing or
 * changed file, data that is not the data of the commit; exit 2).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import type { BackendPreference, Evaluation, PrunedPoint } from '../protocol/results';
import type { FairnessRecord } from './commit';
import { checkPoint } from '../shared/gate';
import type { FairnessPolicy, GateRule, GateVerdict } from '../shared/gate';
import { UserError } from './errors';
import { sha256 } from './atomic';
import { initBackend } from './backend';
import { loadDataset, readPreprocessingBeside } from './data';
import type { Dataset } from './data';
import { loadModel, makeLogitModel } from './model-io';
import type { LoadedModel } from './model-io';
import { compare, evaluate, evaluationInputOf } from './metrics';
import type { EvaluationInput } from './metrics';
import { predictProbabilities } from './train';
import { toClassProbabilities } from './sweep-point';
import { outputWidth } from './losses';
import { readPolicyFile } from './policy-file';

/** A check that cannot run: a file missing or changed since the commit. Exit code 2. */
export class CheckCannotRunError extends UserError {
  constructor(problem: string, details: ConstructorParameters<typeof UserError>[1]) {
    super(problem, details);
    this.name = 'CheckCannotRunError';
  }
}

export interface CheckRequest {
  /** The committed folder, or its model.json. */
  model: string;
  /** The CSV to measure on: the data the model was committed on (`--data`). */
  csvPath: string;
  /** A fairprune.policy.json overriding the policy recorded at commit. */
  policyFile?: string;
  backend?: BackendPreference;
}

export interface CheckedRule extends GateRule {
  /** The group the rule is about: the worst group, the two groups of the largest gap, or all. */
  group: string;
}

export interface CheckResult {
  passed: boolean;
  modelDir: string;
  pointId: string;
  committedAt: string;
  policy: FairnessPolicy;
  policySource: string;
  verdict: GateVerdict;
  rules: CheckedRule[];
  verifiedFiles: string[];
  testRows: number;
  evaluation: Evaluation;
  /** The pruned model's test accuracy as committed and as measured now. */
  accuracy: { committed: number; measured: number };
}

function readRecord(file: string): FairnessRecord {
  if (!fs.existsSync(file)) {
    throw new CheckCannotRunError('is missing: the model was not committed by Fair Prune, or the file was removed.', {
      file,
      field: 'fairness.json',
      fix: "commit the model with `fairprune commit` (or the editor's Commit), and check the committed folder.",
    });
  }
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as FairnessRecord;
  } catch (e) {
    throw new CheckCannotRunError(`cannot be read as JSON (${(e as Error).message}).`, {
      file,
      field: 'fairness.json',
      fix: 'restore it from the commit.',
    });
  }
}

/** Every committed file present with the sha256 fairness.json recorded; names the first that is not. */
export function verifyCommittedFiles(dir: string, record: FairnessRecord): string[] {
  const fairnessFile = path.join(dir, 'fairness.json');
  const files = record.hashes?.files;
  if (!files || !Object.keys(files).length) {
    throw new CheckCannotRunError('records no file hashes (it was committed by an older version of Fair Prune).', {
      file: fairnessFile,
      field: 'hashes.files',
      fix: 'commit the point again with this version.',
    });
  }
  for (const [name, hash] of Object.entries(files)) {
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) {
      throw new CheckCannotRunError('is missing from the committed model.', {
        file,
        field: `hashes.files["${name}"]`,
        fix: 'restore it from the commit, or commit the model again.',
      });
    }
    if (sha256(fs.readFileSync(file)) !== hash) {
      throw new CheckCannotRunError('has changed since the commit (its sha256 differs from fairness.json).', {
        file,
        field: `hashes.files["${name}"]`,
        fix: 'restore the committed file, or commit the new model with `fairprune commit` so its fairness is measured.',
      });
    }
  }
  return Object.keys(files);
}

/** The committed folder, its fairness.json and the data to measure on, each checked before anything loads. */
interface Commit {
  modelDir: string;
  modelPath: string;
  record: FairnessRecord;
  measurement: NonNullable<FairnessRecord['measurement']> & { denseReference: { file: string; numClasses: number } };
  verifiedFiles: string[];
  dataPath: string;
}

export async function checkCommitted(req: CheckRequest, log: (m: string) => void = () => {}): Promise<CheckResult> {
  const commit = locateCommit(req);
  const { modelDir, modelPath, record, measurement: m } = commit;
  const policy = req.policyFile
    ? readPolicyFile(path.resolve(req.policyFile), record.verdict.policy)
    : record.verdict.policy;
  const policySource = req.policyFile ? path.resolve(req.policyFile) : 'recorded at commit (fairness.json)';

  await initBackend(req.backend ?? 'auto', log);
  const loaded = await loadModel(modelPath);
  try {
    const dataset = await loadCommittedData(commit, loaded);
    const testIdx = dataset.indices('test');
    const dense = readDenseReference(modelDir, m.denseReference, testIdx.length);
    const input: EvaluationInput = evaluationInputOf(dataset, testIdx, 'test');
    const pruned = await predictRows(loaded, dataset, testIdx);
    const boot = { resamples: m.bootstrapResamples, confidence: m.confidence, seed: m.seed };
    const evaluation = evaluate(pruned, input, boot);
    const comparison = compare(dense, pruned, input, boot);
    const verdict = checkPoint({ evaluation, comparison } as PrunedPoint, policy);
    return {
      passed: verdict.passed,
      modelDir,
      pointId: record.point.id,
      committedAt: record.committedAt,
      policy,
      policySource,
      verdict,
      rules: verdict.rules.map((r) => ({ ...r, group: groupOfRule(r.id, evaluation) })),
      verifiedFiles: commit.verifiedFiles,
      testRows: testIdx.length,
      evaluation,
      accuracy: { committed: record.point.evaluation.accuracy.value, measured: evaluation.accuracy.value },
    };
  } finally {
    loaded.model.dispose();
  }
}

/** The committed folder and model, its fairness.json with every file verified, and the data file. */
function locateCommit(req: CheckRequest): Commit {
  const given = path.resolve(req.model);
  if (!fs.existsSync(given))
    throw new CheckCannotRunError('does not exist.', {
      file: given,
      field: '--model',
      fix: 'give the committed folder or its model.json.',
    });
  const modelDir = fs.statSync(given).isDirectory() ? given : path.dirname(given);
  const modelPath = fs.statSync(given).isDirectory() ? path.join(given, 'model.json') : given;
  const fairnessFile = path.join(modelDir, 'fairness.json');
  const record = readRecord(fairnessFile);
  const verifiedFiles = verifyCommittedFiles(modelDir, record);
  if (!fs.existsSync(modelPath))
    throw new CheckCannotRunError('is missing.', {
      file: modelPath,
      field: '--model',
      fix: 'give the committed folder or its model.json.',
    });
  const m = record.measurement;
  if (!m?.denseReference || typeof record.data?.split?.assignment !== 'string') {
    throw new CheckCannotRunError(
      'lacks the dense reference or the split of the commit (it was committed by an older version).',
      {
        file: fairnessFile,
        field: m?.denseReference ? 'data.split.assignment' : 'measurement.denseReference',
        fix: 'commit the point again with this version.',
      },
    );
  }
  const dataPath = path.resolve(req.csvPath);
  if (!fs.existsSync(dataPath))
    throw new CheckCannotRunError('does not exist.', {
      file: dataPath,
      field: '--data',
      fix: 'give the CSV the model was committed on.',
    });
  return {
    modelDir,
    modelPath,
    record,
    measurement: { ...m, denseReference: m.denseReference },
    verifiedFiles,
    dataPath,
  };
}

/** The data read as at commit (its label mapping, groups, split); it must be the committed file. */
async function loadCommittedData(commit: Commit, loaded: LoadedModel): Promise<Dataset> {
  const preprocessing = readPreprocessingBeside(commit.modelPath);
  const d = commit.record.data;
  const dataset = await loadDataset(
    {
      csvPath: commit.dataPath,
      label: d.label.column,
      groups: d.groupColumns,
      features: preprocessing ? undefined : (d.features ?? undefined),
      imageColumn: d.imageColumn ?? undefined,
      classes: d.label.classes,
      pixelScale: d.pixelScale ?? undefined,
      seed: commit.measurement.seed,
      reuseSplit: d.split.assignment,
    },
    { inputShape: loaded.inputShape, outputUnits: loaded.outputUnits },
    preprocessing,
  );
  if (dataset.record.sha256 !== commit.record.hashes.data) {
    throw new CheckCannotRunError(
      'is not the data the model was committed on (its sha256 differs from fairness.json).',
      {
        file: commit.dataPath,
        field: 'hashes.data',
        fix: 'check on the committed evaluation data, or commit again after a session on the new data.',
      },
    );
  }
  return dataset;
}

/** The dense model's committed test predictions, one row per test row of the data. */
function readDenseReference(
  modelDir: string,
  ref: { file: string; numClasses: number },
  testRows: number,
): { probs: Float32Array; numClasses: number } {
  const K = ref.numClasses;
  const refFile = path.join(modelDir, ref.file);
  const buf = fs.readFileSync(refFile);
  if (buf.length !== testRows * K * 4) {
    throw new CheckCannotRunError(`holds ${buf.length / 4 / K} test rows but the data has ${testRows}.`, {
      file: refFile,
      field: 'measurement.denseReference',
      fix: 'commit the point again.',
    });
  }
  return { probs: new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length)), numClasses: K };
}

/** The committed model's class probabilities on the given rows. */
async function predictRows(
  loaded: LoadedModel,
  dataset: Dataset,
  rows: Int32Array,
): Promise<{ probs: Float32Array; numClasses: number }> {
  const logits = await makeLogitModel(loaded);
  const x = tf.tensor(dataset.x, [dataset.labels.length, ...dataset.sampleShape]);
  let probs: Float32Array;
  try {
    probs = predictProbabilities(logits, loaded.task, x, rows);
  } finally {
    x.dispose();
    logits.dispose();
  }
  return toClassProbabilities(probs, outputWidth(loaded.task, loaded.numClasses), loaded.numClasses);
}

/** The group a rule is about: the worst group, the two groups of the largest gap, or all. */
function groupOfRule(id: GateRule['id'], evaluation: Evaluation): string {
  const groups = [...evaluation.groups].filter((g) => g.n > 0).sort((a, b) => a.accuracy.value - b.accuracy.value);
  return id === 'worst-group-drop'
    ? evaluation.worstGroup.group
    : id === 'gap-increase' && groups.length > 1
      ? `${groups[groups.length - 1].group} vs ${groups[0].group}`
      : 'all';
}
