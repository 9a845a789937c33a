/**
 * Checks the project's losses against reference vectors (the format of `../shared/conformance`).
 * The weights and corrected targets come from the same functions the session uses, and the loss
 * values from the same tensor function the training loop runs, so a pass here is a pass for training.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import type { LossName, Task } from '../protocol/results';
import { lossTargets, outputWidth, weightedCrossEntropy } from './losses';
import { UserError } from './errors';

export interface ConformanceCase {
  name: string;
  task: Task;
  numClasses: number;
  minWeight: number;
  gamma: number;
  tolerance?: number;
  labels: number[];
  teacherProbs: number[][];
  studentLogits: number[][];
  expected: {
    weights: number[];
    correctedTargets: number[][];
    loss_pw: number;
    loss_weight_only: number;
    loss_correction_only: number;
    loss_kd: number;
    loss_ce: number;
  };
}

export interface CheckResult {
  file: string;
  caseName: string;
  quantity: string;
  passed: boolean;
  /** Largest absolute difference found. */
  maxError: number;
  tolerance: number;
}

const LOSS_KEYS: Array<[LossName, keyof ConformanceCase['expected']]> = [
  ['pw', 'loss_pw'],
  ['pw-weight-only', 'loss_weight_only'],
  ['pw-correction-only', 'loss_correction_only'],
  ['kd', 'loss_kd'],
  ['ce', 'loss_ce'],
];

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

export function checkCase(c: ConformanceCase, file = ''): CheckResult[] {
  const tol = c.tolerance ?? 1e-6;
  const width = outputWidth(c.task, c.numClasses);
  const teacher = c.teacherProbs.flat();
  const pw = { minWeight: c.minWeight, gamma: c.gamma };
  const results: CheckResult[] = [];
  const push = (quantity: string, err: number) =>
    results.push({ file, caseName: c.name, quantity, passed: err <= tol, maxError: err, tolerance: tol });

  const pwT = lossTargets('pw', c.task, c.labels, width, teacher, pw);
  push('weights', maxAbsDiff(pwT.weights, c.expected.weights));
  push('correctedTargets', maxAbsDiff(pwT.targets, c.expected.correctedTargets.flat()));

  const n = c.labels.length;
  const logits = tf.tensor2d(c.studentLogits.flat(), [n, width]);
  try {
    for (const [loss, key] of LOSS_KEYS) {
      const t = lossTargets(loss, c.task, c.labels, width, teacher, pw);
      const value = tf.tidy(
        () =>
          weightedCrossEntropy(
            c.task,
            logits,
            tf.tensor2d(Float32Array.from(t.targets), [n, width]),
            tf.tensor1d(Float32Array.from(t.weights)),
          ).dataSync()[0],
      );
      push(key, Math.abs(value - (c.expected[key] as number)));
    }
  } finally {
    logits.dispose();
  }
  return results;
}

/** Every `*.json` vectors file in `dir` (or the one file `dir` names). */
export function checkVectors(dirOrFile: string): CheckResult[] {
  if (!fs.existsSync(dirOrFile)) {
    throw new UserError('no such file or folder.', {
      file: dirOrFile,
      fix: 'give the folder that holds the conformance vectors, e.g. ../shared/conformance',
    });
  }
  const files = fs.statSync(dirOrFile).isDirectory()
    ? fs
        .readdirSync(dirOrFile)
        .filter((f) => f.endsWith('.json'))
        .sort()
        .map((f) => path.join(dirOrFile, f))
    : [dirOrFile];
  const results: CheckResult[] = [];
  for (const file of files) {
    let doc: { cases?: ConformanceCase[] };
    try {
      doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new UserError(`not valid JSON (${(e as Error).message}).`, {
        file,
        fix: 'give a vectors file in the format of ../shared/conformance/README.md',
      });
    }
    if (!Array.isArray(doc.cases)) {
      throw new UserError('has no "cases" array.', {
        file,
        field: 'cases',
        fix: 'give a vectors file in the format of ../shared/conformance/README.md',
      });
    }
    for (const c of doc.cases) results.push(...checkCase(c, file));
  }
  return results;
}
