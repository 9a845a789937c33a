/**
 * A whole session, checked from the outside with nothing but the CSV, the saved models and hand-written
 * formulas (no ../shared, no engine code on the checking side):
 * - each point trained on its own loss's targets and weights: the validation loss the point recorded
 *   (its final weights under its training loss) equals the one computed here by hand from the saved
 *   pruned model and the targets and weights that loss defines — and differs from every other loss's;
 * - the intervals in results.json are 95% percentile-bootstrap intervals, as the session states: they
 *   agree with an independent bootstrap (another generator) of the same statistics.
 * Table-driven over LOSS_NAMES, on a binary and a three-class model: a loss added there without a
 * hand-written reference here fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import type { Estimate, LossName, SessionResults } from '../../src/protocol/results';
import { LOSS_NAMES } from '../../src/protocol/results';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { runSession } from '../../src/core/session';
import { saveModel, topologyOf } from '../../src/core/model-io';
import { tempDir } from '../helpers';
import { makeFixture, request } from '../session-fixture';

const PW = { minWeight: 0.75, gamma: 5 };

/**
 * The training targets t and weight w of one sample, by hand, for each loss: p is the dense model's
 * output (binary: [P(y = 1)]; K classes: the K probabilities), y the label, group the sample's group.
 * The dense model is right when its class is y (binary: p > 0.5 is class 1; else the first largest
 * probability); s is its probability of y (binary: p or 1 − p); the one-hot label is [y] for binary.
 */
type Reference = (p: number[], y: number, group: string) => { t: number[]; w: number };
const confidence = (p: number[], y: number) => (p.length === 1 ? (y === 1 ? p[0] : 1 - p[0]) : p[y]);
const pwWeight = (p: number[], y: number) => PW.minWeight + (1 - PW.minWeight) * (1 - confidence(p, y)) ** PW.gamma;
const classOf = (p: number[]) => (p.length === 1 ? (p[0] > 0.5 ? 1 : 0) : p.indexOf(Math.max(...p)));
const oneHot = (p: number[], y: number) => (p.length === 1 ? [y] : p.map((_, c) => (c === y ? 1 : 0)));
const corrected = (p: number[], y: number) => (classOf(p) === y ? p : oneHot(p, y));
/** group-balanced's weight of a group: N / (G · n_g) over the training rows (set when the session's CSV is read). */
let balancedWeight: (group: string) => number = () => NaN;
const HAND: Partial<Record<LossName, Reference>> = {
  ce: (p, y) => ({ t: oneHot(p, y), w: 1 }),
  kd: (p) => ({ t: p, w: 1 }),
  pw: (p, y) => ({ t: corrected(p, y), w: pwWeight(p, y) }),
  'pw-weight-only': (p, y) => ({ t: p, w: pwWeight(p, y) }),
  'pw-correction-only': (p, y) => ({ t: corrected(p, y), w: 1 }),
  'group-balanced': (p, y, group) => ({ t: oneHot(p, y), w: balancedWeight(group) }),
  // Group DRO and CEAG reweight each step by group (checked below through what they record); the loss
  // they are validated on has ce's targets and weights.
  'group-dro': (p, y) => ({ t: oneHot(p, y), w: 1 }),
  ceag: (p, y) => ({ t: oneHot(p, y), w: 1 }),
};
/** Losses whose validation loss has the same targets and weights, so it cannot tell them apart. */
const SAME_VALIDATION_LOSS: LossName[] = ['ce', 'group-dro', 'ceag'];

interface Sample {
  x: number[];
  y: number;
  group: string;
  split: string;
}

interface Dense2 {
  W1: Float32Array;
  b1: Float32Array;
  W2: Float32Array;
  b2: Float32Array;
  hidden: number;
  width: number;
}

/** The two Dense layers of a saved fixture model (3 → hidden relu → width), read from its files. */
function readModel(dir: string): Dense2 {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const manifest = json.weightsManifest[0];
  const bytes = fs.readFileSync(path.join(dir, manifest.paths[0]));
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  const out: Float32Array[] = [];
  let at = 0;
  for (const w of manifest.weights as Array<{ shape: number[]; dtype: string }>) {
    assert.equal(w.dtype, 'float32');
    const size = w.shape.reduce((a, b) => a * b, 1);
    out.push(all.subarray(at, at + size));
    at += size;
  }
  assert.equal(out.length, 4, 'kernel and bias of two layers');
  return { W1: out[0], b1: out[1], W2: out[2], b2: out[3], hidden: out[1].length, width: out[3].length };
}

/** The logits, in float64 (binary: one logit z, P(y = 1) = sigmoid(z)). */
function logits(m: Dense2, x: number[]): number[] {
  const h = Array.from({ length: m.hidden }, (_, j) => {
    let a = m.b1[j];
    for (let i = 0; i < x.length; i++) a += Math.fround(x[i]) * m.W1[i * m.hidden + j];
    return Math.max(a, 0);
  });
  return Array.from({ length: m.width }, (_, k) => h.reduce((z, hj, j) => z + hj * m.W2[j * m.width + k], m.b2[k]));
}
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
/** The model's probabilities: sigmoid of one logit, else the softmax. */
function probabilities(z: number[]): number[] {
  if (z.length === 1) return [sigmoid(z[0])];
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}
/** Cross-entropy of logits against soft targets: binary −t log σ(z) − (1 − t) log(1 − σ(z)); else −Σ t_c log softmax(z)_c. */
function crossEntropy(z: number[], t: number[]): number {
  const p = probabilities(z);
  if (z.length === 1) return -t[0] * Math.log(p[0]) - (1 - t[0]) * Math.log(1 - p[0]);
  return -t.reduce((a, tc, c) => a + tc * Math.log(p[c]), 0);
}

function readSamples(csv: string, classes: string[]): Sample[] {
  const [header, ...lines] = fs
    .readFileSync(csv, 'utf8')
    .split(/\r?\n/)
    .filter((l) => l);
  assert.deepEqual(header.split(','), ['x1', 'x2', 'x3', 'region', 'decision', 'split']);
  return lines.map((l) => {
    const v = l.split(',');
    const y = classes.indexOf(v[4]);
    assert.ok(y >= 0, v[4]);
    return { x: [Number(v[0]), Number(v[1]), Number(v[2])], group: v[3], y, split: v[5] };
  });
}

/** The plain fixture with three classes: the binary decision split by x3's sign, and a model trained on it. */
async function threeClassFixture(dir: string): Promise<{ csv: string; modelPath: string }> {
  const { csv } = await makeFixture(dir, 600, 'plain');
  const classes = ['approved', 'denied-high', 'denied-low'];
  const lines = fs
    .readFileSync(csv, 'utf8')
    .split(/\r?\n/)
    .filter((l) => l);
  const rows = lines.slice(1).map((l) => {
    const v = l.split(',');
    v[4] = v[4] === 'approved' ? 'approved' : Number(v[2]) > 0 ? 'denied-high' : 'denied-low';
    return v;
  });
  fs.writeFileSync(csv, [lines[0], ...rows.map((v) => v.join(','))].join('\n') + '\n');
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({
        inputShape: [3],
        units: 8,
        activation: 'relu',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 5 }),
      }),
      tfl.layers.dense({
        units: 3,
        activation: 'softmax',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 6 }),
      }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.03), loss: 'categoricalCrossentropy' });
  const x = tf.tensor2d(rows.map((v) => [Number(v[0]), Number(v[1]), Number(v[2])]));
  const y = tf.oneHot(
    tf.tensor1d(
      rows.map((v) => classes.indexOf(v[4])),
      'int32',
    ),
    3,
  );
  await model.fit(x, y, { epochs: 10, batchSize: 64, verbose: 0, shuffle: false });
  tf.dispose([x, y]);
  const modelDir = path.join(dir, 'model3');
  await saveModel(model, modelDir, topologyOf(model));
  model.dispose();
  return { csv, modelPath: path.join(modelDir, 'model.json') };
}

type Task = 'binary' | 'three-class';
interface Run {
  results: SessionResults;
  sessionDir: string;
  modelDir: string;
  samples: Sample[];
}
/** One session over every loss per task, shared by the tests of this file. */
const sessions = new Map<Task, Promise<Run>>();
function theSession(task: Task = 'binary'): Promise<Run> {
  let run = sessions.get(task);
  if (!run) {
    run = (async () => {
      const dir = tempDir();
      const { csv, modelPath } =
        task === 'binary' ? await makeFixture(dir, 600, 'plain') : await threeClassFixture(dir);
      const out = path.join(dir, '.fairprune');
      const req = request(modelPath, csv, out, {
        data: { ignore: undefined, splitColumn: 'split' },
        sparsities: [0.9],
        losses: [...LOSS_NAMES],
        epochs: 1,
        bootstrapResamples: task === 'binary' ? 2000 : 50,
        workers: 1,
      });
      const results = await runSession(req);
      const train = readSamples(
        csv,
        task === 'binary' ? ['approved', 'denied'] : ['approved', 'denied-high', 'denied-low'],
      ).filter((x) => x.split === 'train');
      const counts = new Map<string, number>();
      for (const x of train) counts.set(x.group, (counts.get(x.group) ?? 0) + 1);
      balancedWeight = (group) => train.length / (counts.size * counts.get(group)!);
      const classes = task === 'binary' ? ['approved', 'denied'] : ['approved', 'denied-high', 'denied-low'];
      assert.deepEqual(results.data.label.classes, classes);
      return {
        results,
        sessionDir: path.join(out, 'sessions', results.sessionId),
        modelDir: path.dirname(modelPath),
        samples: readSamples(csv, classes),
      };
    })();
    sessions.set(task, run);
  }
  return run;
}

for (const task of ['binary', 'three-class'] as const) {
  for (const loss of LOSS_NAMES) {
    test(`session (${task}): the '${loss}' point trained on the '${loss}' loss's own targets and weights`, async () => {
      const hand = HAND[loss];
      assert.ok(hand, `no hand-written targets and weights for the '${loss}' loss: add them to HAND in this file`);
      const { results, sessionDir, modelDir, samples } = await theSession(task);
      assert.equal(results.status, 'completed');
      const point = results.points.find((p) => p.loss === loss);
      assert.ok(point, `no '${loss}' point in ${results.points.map((p) => p.id).join(', ')}`);
      const dense = readModel(modelDir);
      const pruned = readModel(path.join(sessionDir, point.modelDir));
      const validation = samples.filter((s) => s.split === 'val' || s.split === 'valid');
      assert.equal(validation.length, results.data.split.counts.validation);
      assert.ok(validation.length >= 50);

      /** Mean over the validation rows of w · CE(pruned logits, t), with the targets and weights of `ref`. */
      const validationLoss = (ref: Reference) => {
        let sum = 0;
        for (const s of validation) {
          const { t, w } = ref(probabilities(logits(dense, s.x)), s.y, s.group);
          sum += w * crossEntropy(logits(pruned, s.x), t);
        }
        return sum / validation.length;
      };
      const mine = validationLoss(hand);
      const recorded = point.training.validationLoss!;
      assert.ok(Math.abs(recorded - mine) < 1e-5, `${loss}: recorded validation loss ${recorded}, by hand ${mine}`);
      // the check tells the losses apart: under any other loss's targets and weights the same model scores differently
      for (const [other, ref] of Object.entries(HAND) as [LossName, Reference][]) {
        if (other === loss || (SAME_VALIDATION_LOSS.includes(other) && SAME_VALIDATION_LOSS.includes(loss))) continue;
        const theirs = validationLoss(ref);
        assert.ok(
          Math.abs(theirs - mine) > 1e-3,
          `${loss} vs ${other}: ${mine} and ${theirs} are too close to tell apart`,
        );
      }
      // the group-aware objectives record what they learned, over every step the point trained
      if (loss === 'group-dro' || loss === 'ceag') {
        assert.equal(point.objective?.objective, loss);
        assert.equal(point.objective?.steps, point.training.steps);
        assert.deepEqual(
          point.objective?.groups.map((g) => g.group),
          results.data.groups.map((g) => g.name),
        );
      } else if (loss === 'group-balanced') {
        for (const g of point.objective!.groups)
          assert.ok(Math.abs(g.weight! - balancedWeight(g.group.replace(/^region=/, ''))) < 1e-12);
      } else assert.equal(point.objective, undefined);
      // and each trained on group-balanced batches
      if (point.objective)
        assert.equal(point.objective.sampling, 'group-balanced', `${loss} draws each group equally often`);
      const accuracy =
        validation.filter((s) => classOf(probabilities(logits(pruned, s.x))) === s.y).length / validation.length;
      assert.ok(Math.abs(point.training.validationAccuracy! - accuracy) < 1e-12);
      // the test accuracy per group, from the saved model (the class probabilities the metrics took)
      const testRows = samples.filter((s) => s.split === 'test');
      for (const g of point.evaluation.groups) {
        const rows = testRows.filter((s) => `region=${s.group}` === g.group);
        const right = (m: Dense2) => rows.filter((s) => classOf(probabilities(logits(m, s.x))) === s.y).length;
        assert.ok(
          Math.abs(g.accuracy.value - right(pruned) / rows.length) < 1e-12,
          `${g.group}: ${g.accuracy.value} vs ${right(pruned)}/${rows.length}`,
        );
        // and its change against the dense model, which the comparison takes from the dense model's saved predictions
        const change = point.comparison.groups.find((c) => c.group === g.group)!.accuracyChange.value;
        assert.ok(
          Math.abs(change - (right(pruned) - right(dense)) / rows.length) < 1e-12,
          `${g.group} change ${change}`,
        );
      }
    });
  }
}

/** A seeded linear congruential generator: not the engine's generator, so not its draw order. */
function lcg(seed: number) {
  let state = seed >>> 0;
  return (n: number) => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return Math.floor(((state >>> 8) / 16777216) * n);
  };
}

/** Type-7 percentile interval of `boot` at `level`, widened to contain `value`. */
function percentileInterval(value: number, boot: number[], level: number): Estimate {
  const s = [...boot].sort((a, b) => a - b);
  const q = (p: number) => {
    const h = (s.length - 1) * p;
    const lo = Math.floor(h);
    const hi = Math.min(lo + 1, s.length - 1);
    return s[lo] + (h - lo) * (s[hi] - s[lo]);
  };
  const a = (1 - level) / 2;
  return { value, low: Math.min(value, q(a)), high: Math.max(value, q(1 - a)) };
}

test('session: its intervals are 95% bootstrap intervals, as it states, and agree with an independent bootstrap', async () => {
  const { results, sessionDir, modelDir, samples } = await theSession();
  assert.equal(results.config.bootstrap.confidence, 0.95);
  const testRows = samples.filter((s) => s.split === 'test');
  const groups = [...new Set(testRows.map((s) => s.group))].sort();
  const members = groups.map((g) => testRows.map((s, i) => (s.group === g ? i : -1)).filter((i) => i >= 0));
  const correctOf = (dir: string) => {
    const m = readModel(dir);
    return testRows.map((s) => (classOf(probabilities(logits(m, s.x))) === s.y ? 1 : 0));
  };
  /** Overall accuracy and worst-group accuracy of one resample (indices per group). */
  const stats = (correct: number[], sample: number[][]) => {
    const groupAcc = sample.map((rows) => rows.reduce((a, i) => a + correct[i], 0) / rows.length);
    return {
      accuracy: sample.flat().reduce((a, i) => a + correct[i], 0) / testRows.length,
      worst: Math.min(...groupAcc),
    };
  };
  const B = 4000;
  const bootstrap = (fn: (sample: number[][]) => number, seed: number) => {
    const draw = lcg(seed);
    return Array.from({ length: B }, () => fn(members.map((m) => m.map(() => m[draw(m.length)]))));
  };
  const agree = (got: Estimate, want: Estimate, what: string) => {
    assert.ok(Math.abs(got.value - want.value) < 1e-12, `${what}: estimate ${got.value}, by hand ${want.value}`);
    const wGot = got.high - got.low;
    const wWant = want.high - want.low;
    if (wWant === 0) return assert.equal(wGot, 0, what);
    assert.ok(Math.abs(wGot / wWant - 1) < 0.2, `${what}: width ${wGot}, independent 95% bootstrap ${wWant}`);
    assert.ok(
      Math.abs(got.low - want.low) < 0.2 * wWant && Math.abs(got.high - want.high) < 0.2 * wWant,
      `${what}: ${JSON.stringify(got)} vs ${JSON.stringify(want)}`,
    );
  };

  const dense = correctOf(modelDir);
  const full = members;
  for (const [name, stat] of [
    ['accuracy', 'accuracy'],
    ['worst-group accuracy', 'worst'],
  ] as const) {
    const pointValue = stats(dense, full)[stat];
    const want = percentileInterval(
      pointValue,
      bootstrap((s) => stats(dense, s)[stat], 3),
      0.95,
    );
    const got = stat === 'accuracy' ? results.dense.accuracy : results.dense.worstGroup.accuracy;
    assert.ok(want.high - want.low > 0.02, `dense ${name}: the reference interval is wide enough to tell levels apart`);
    agree(got, want, `dense ${name}`);
  }
  let tested = 0;
  for (const point of results.points) {
    const pruned = correctOf(path.join(sessionDir, point.modelDir));
    const acc = stats(pruned, full).accuracy;
    agree(
      point.evaluation.accuracy,
      percentileInterval(
        acc,
        bootstrap((s) => stats(pruned, s).accuracy, 5),
        0.95,
      ),
      `${point.id} accuracy`,
    );
    const change = (s: number[][]) => stats(pruned, s).accuracy - stats(dense, s).accuracy;
    const worstChange = (s: number[][]) => stats(pruned, s).worst - stats(dense, s).worst;
    agree(
      point.comparison.accuracyChange,
      percentileInterval(change(full), bootstrap(change, 7), 0.95),
      `${point.id} accuracy change`,
    );
    agree(
      point.comparison.worstGroupChange,
      percentileInterval(worstChange(full), bootstrap(worstChange, 11), 0.95),
      `${point.id} worst-group change`,
    );
    if (point.comparison.accuracyChange.high > point.comparison.accuracyChange.low) tested++;
  }
  assert.ok(tested > 0, 'at least one point disagrees with the dense model somewhere, so a change interval is checked');
});
