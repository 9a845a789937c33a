/**
 * The fine-tuning losses: cross-entropy, distillation from the dense model, and the performance
 * weighted (PW) loss of Meyer & Wong (arXiv 2211.10285) with its two ablations — exactly as
 * `../shared/conformance/README.md` defines them.
 *
 * Every loss here is one shape: mean_i w_i · CE(student_i, target_i). They differ only in the
 * per-sample weight w_i and target t_i, which depend on the dense model's predictions and the labels
 * alone. So those are computed once, before pruning (`lossTargets`), and the training loop runs one
 * tensor function (`weightedCrossEntropy`) for all five losses.
 *
 * Binary models have one output: a logit z with p(y=1) = sigmoid(z); targets are p(y=1) and CE is
 * the binary cross-entropy with logits on a soft target. Multiclass: K logits, softmax, and
 * CE(z, t) = −Σ_c t_c · log softmax(z)_c.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { LossName, PwWeightSummary, Task } from '../protocol/results';
import { predictedClass } from './metrics';
import { groupBalancedWeights, type BatchReweighting, type GroupContext } from './objectives';

export interface PwParams {
  /** m: the weight of a sample the dense model was sure of. */
  minWeight: number;
  /** γ: how sharply the weight rises as the dense model's confidence falls. */
  gamma: number;
}

/** Output width of a task: 1 for binary (p(y=1)), K for multiclass. */
export function outputWidth(task: Task, numClasses: number): number {
  return task === 'binary' ? 1 : numClasses;
}

/** The dense model's confidence in the true class: s_i = p_i[y_i] (binary: p_i or 1 − p_i). */
export function trueClassConfidence(
  task: Task,
  teacher: ArrayLike<number>,
  width: number,
  i: number,
  label: number,
): number {
  if (task === 'binary') {
    const p = teacher[i];
    return label === 1 ? p : 1 - p;
  }
  return teacher[i * width + label];
}

/**
 * Whether the dense model got sample i right: argmax = label; binary: round(p) = label, where p = 0.5
 * exactly rounds to class 0 (as the authors' `torch.round` does, and as the metrics count it).
 */
export function teacherIsRight(teacher: ArrayLike<number>, width: number, i: number, label: number): boolean {
  return predictedClass(teacher, width, i) === label;
}

/** PW weights w_i = m + (1 − m)(1 − s_i)^γ, in float64. No clipping, no normalisation. */
export function pwWeights(
  task: Task,
  teacher: ArrayLike<number>,
  labels: ArrayLike<number>,
  width: number,
  pw: PwParams,
): Float64Array {
  const w = new Float64Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const s = trueClassConfidence(task, teacher, width, i, labels[i]);
    w[i] = pw.minWeight + (1 - pw.minWeight) * Math.pow(1 - s, pw.gamma);
  }
  return w;
}

/** Mean PW weight over `rows`, overall and in each group (`groupIds[r]` indexes `groupNames`). */
export function pwWeightSummary(
  task: Task,
  teacher: ArrayLike<number>,
  labels: ArrayLike<number>,
  width: number,
  pw: PwParams,
  rows: ArrayLike<number>,
  groupIds: ArrayLike<number>,
  groupNames: readonly string[],
): PwWeightSummary {
  const w = pwWeights(task, teacher, labels, width, pw);
  const sum = new Float64Array(groupNames.length);
  const n = new Float64Array(groupNames.length);
  let total = 0;
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    sum[groupIds[r]] += w[r];
    n[groupIds[r]]++;
    total += w[r];
  }
  return {
    minWeight: pw.minWeight,
    gamma: pw.gamma,
    mean: rows.length ? total / rows.length : NaN,
    groups: groupNames.map((group, g) => ({ group, n: n[g], meanWeight: n[g] ? sum[g] / n[g] : NaN })),
  };
}

/** Corrected targets: the dense model's probabilities where it was right, else the one-hot label. */
export function correctedTargets(
  task: Task,
  teacher: ArrayLike<number>,
  labels: ArrayLike<number>,
  width: number,
): Float64Array {
  const t = new Float64Array(labels.length * width);
  for (let i = 0; i < labels.length; i++) {
    const right = teacherIsRight(teacher, width, i, labels[i]);
    for (let c = 0; c < width; c++) {
      t[i * width + c] = right ? teacher[i * width + c] : oneHot(task, labels[i], c);
    }
  }
  return t;
}

function oneHot(task: Task, label: number, c: number): number {
  return task === 'binary' ? label : label === c ? 1 : 0;
}

export function oneHotTargets(task: Task, labels: ArrayLike<number>, width: number): Float64Array {
  const t = new Float64Array(labels.length * width);
  for (let i = 0; i < labels.length; i++) for (let c = 0; c < width; c++) t[i * width + c] = oneHot(task, labels[i], c);
  return t;
}

export interface LossTargets {
  /** n × width training targets. */
  targets: Float64Array;
  /** n per-sample weights. */
  weights: Float64Array;
}

/**
 * The per-sample targets and weights of a loss. `teacher` (n × width, the dense model's
 * probabilities) is needed by the distillation and PW losses, `groups` by `group-balanced`. For
 * `group-dro` and `ceag` these are the fixed part (one-hot labels, weight 1); their per-step group
 * weights come from a `BatchReweighting` (objectives.ts).
 */
export function lossTargets(
  loss: LossName,
  task: Task,
  labels: ArrayLike<number>,
  width: number,
  teacher: ArrayLike<number> | undefined,
  pw: PwParams,
  groups?: GroupContext,
): LossTargets {
  const n = labels.length;
  const ones = () => new Float64Array(n).fill(1);
  const needTeacher = (): ArrayLike<number> => {
    if (!teacher) throw new Error(`the ${loss} loss needs the dense model's predictions`);
    if (teacher.length !== n * width)
      throw new Error(`teacher predictions have ${teacher.length} values, expected ${n} × ${width}`);
    return teacher;
  };
  switch (loss) {
    case 'ce':
      return { targets: oneHotTargets(task, labels, width), weights: ones() };
    case 'kd':
      return { targets: Float64Array.from(needTeacher()), weights: ones() };
    case 'pw': {
      const t = needTeacher();
      return { targets: correctedTargets(task, t, labels, width), weights: pwWeights(task, t, labels, width, pw) };
    }
    case 'pw-weight-only': {
      // The authors' retraining with weights on and correction off: PW-weighted distillation on the
      // dense model's uncorrected probabilities (not on one-hot labels).
      const t = needTeacher();
      return { targets: Float64Array.from(t), weights: pwWeights(task, t, labels, width, pw) };
    }
    case 'pw-correction-only':
      return { targets: correctedTargets(task, needTeacher(), labels, width), weights: ones() };
    case 'group-balanced': {
      if (!groups) throw new Error('the group-balanced loss needs the subgroups of the training rows');
      return { targets: oneHotTargets(task, labels, width), weights: groupBalancedWeights(groups).weights };
    }
    case 'group-dro':
    case 'ceag':
      // Cross-entropy on the labels; the per-step group weights come from the objective (objectives.ts).
      return { targets: oneHotTargets(task, labels, width), weights: ones() };
  }
}

/**
 * Per-sample cross-entropy of logits against soft targets, shape [n].
 * Binary (width 1): max(z, 0) − z·t + log(1 + e^−|z|), the stable form of BCE with logits.
 */
export function softCrossEntropy(task: Task, logits: tf.Tensor2D, targets: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    if (task === 'binary') {
      const z = tf.reshape(logits, [-1]);
      const t = tf.reshape(targets, [-1]);
      return tf.add(tf.sub(tf.relu(z), tf.mul(z, t)), tf.log1p(tf.exp(tf.neg(tf.abs(z))))) as tf.Tensor1D;
    }
    return tf.neg(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), -1)) as tf.Tensor1D;
  });
}

/** mean_i w_i · CE(logits_i, targets_i): the one loss function of every fine-tuning loss. */
export function weightedCrossEntropy(
  task: Task,
  logits: tf.Tensor2D,
  targets: tf.Tensor2D,
  weights: tf.Tensor1D,
): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.mul(softCrossEntropy(task, logits, targets), weights)) as tf.Scalar);
}

/** A group-aware objective's per-step reweighting, with every row's label to tell right from wrong. */
export interface HostReweight {
  objective: BatchReweighting;
  labels: ArrayLike<number>;
}

/**
 * The value of `weightedCrossEntropy` for a batch of logits `zv` (rows × width, row-major) whose
 * samples are the rows `rows` of `targets` and `weights`, computed in float64; its gradient with
 * respect to the logits goes into `grad` (same layout). Shared by `weightedCrossEntropyOnHost` and the
 * heap training steps (dense-step.ts, conv-step.ts).
 *
 * With `reweight` (a group-aware objective, objectives.ts), each sample's weight is further multiplied
 * by what the objective returns for this step, given every sample's unweighted cross-entropy and
 * whether the logits predict its label (`labels`).
 */
export function weightedCrossEntropyAndGradient(
  task: Task,
  zv: ArrayLike<number>,
  width: number,
  targets: ArrayLike<number>,
  weights: ArrayLike<number>,
  rows: ArrayLike<number>,
  grad: { [i: number]: number; length: number },
  reweight?: HostReweight,
): number {
  const n = rows.length;
  if (zv.length !== n * width)
    throw new Error(`weightedCrossEntropyOnHost: ${zv.length / width} logits rows for ${n} samples`);
  if (targets.length !== weights.length * width) {
    throw new Error(
      `weightedCrossEntropyOnHost: ${targets.length} targets for ${weights.length} samples of width ${width}`,
    );
  }
  // First each sample's unweighted cross-entropy and its unscaled gradient (in float64), then the weights.
  const ce = new Float64Array(n);
  const g = new Float64Array(n * width);
  for (let i = 0; i < n; i++) {
    const o = i * width;
    const t0 = rows[i] * width;
    if (task === 'binary') {
      const zi = zv[o];
      const t = targets[t0];
      const e = Math.exp(-Math.abs(zi));
      ce[i] = Math.max(zi, 0) - zi * t + Math.log1p(e);
      // d/dz = sigmoid(z) − t (also at z = 0, where tfjs takes relu' = 0 and |z|' = −1: 0 − t + 1/2)
      g[o] = (zi > 0 ? 1 / (1 + e) : e / (1 + e)) - t;
      continue;
    }
    let m = -Infinity;
    for (let c = 0; c < width; c++) m = Math.max(m, zv[o + c]);
    let s = 0;
    for (let c = 0; c < width; c++) s += Math.exp(zv[o + c] - m);
    const lse = m + Math.log(s);
    let v = 0;
    let tSum = 0;
    for (let c = 0; c < width; c++) {
      const t = targets[t0 + c];
      v -= t * (zv[o + c] - lse);
      tSum += t;
    }
    ce[i] = v;
    for (let c = 0; c < width; c++) g[o + c] = Math.exp(zv[o + c] - lse) * tSum - targets[t0 + c];
  }
  let extra: Float64Array | null = null;
  if (reweight) {
    const correct = new Uint8Array(n);
    // The logits' class: argmax (lowest index on ties); binary z > 0, i.e. p > 0.5 (predictedClass's rule).
    for (let i = 0; i < n; i++) correct[i] = predictedClassOfLogits(zv, width, i) === reweight.labels[rows[i]] ? 1 : 0;
    extra = reweight.objective.step(rows, ce, correct);
  }
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const w = weights[rows[i]] * (extra ? extra[i] : 1);
    sum += w * ce[i];
    const scale = w / n;
    for (let c = 0, o = i * width; c < width; c++) grad[o + c] = g[o + c] * scale;
  }
  return sum / n;
}

function predictedClassOfLogits(z: ArrayLike<number>, width: number, i: number): number {
  if (width === 1) return z[i] > 0 ? 1 : 0;
  return predictedClass(z, width, i);
}

/**
 * `weightedCrossEntropy` for one training batch, with its value and its gradient computed on the host
 * (in float64) from the logits, the targets and weights of the rows `rows` of `targets` (n × width,
 * row-major) and `weights` (n). The backward pass is then one multiply (the saved gradient by the
 * incoming dy) instead of the ~30 small kernels of the loss's forward and backward ops, which is most of
 * a step's dispatch for a small model on wasm. The value and gradient are the ones of the tensor
 * version up to float rounding (at a binary logit of exactly 0 too, where tfjs's relu and |z| kinks give
 * sigmoid(0) − t as well).
 *
 * Reads the logits back (`dataSync`), so the training loop uses it only where the data is on the host
 * anyway (the wasm backend).
 */
export function weightedCrossEntropyOnHost(
  task: Task,
  logits: tf.Tensor2D,
  targets: ArrayLike<number>,
  weights: ArrayLike<number>,
  rows: ArrayLike<number>,
  reweight?: HostReweight,
): tf.Scalar {
  const loss = tf.customGrad(((z: tf.Tensor, save: tf.GradSaveFunc) => {
    const [n, width] = z.shape as [number, number];
    const grad = new Float32Array(n * width);
    const value = weightedCrossEntropyAndGradient(
      task,
      z.dataSync() as Float32Array,
      width,
      targets,
      weights,
      rows,
      grad,
      reweight,
    );
    const g = tf.tensor2d(grad, [n, width]);
    save([g]);
    return { value: tf.scalar(value), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(saved[0], dy) };
  }) as unknown as Parameters<typeof tf.customGrad<tf.Scalar>>[0]);
  return loss(logits) as tf.Scalar;
}
