/**
 * A whole session, checked from the outside with nothing but the CSV, the saved models and hand-written
 * formulas (no ../shared, no engine code on the checking side):
 * - each point trained on its own loss's targets and weights: the validation loss the point recorded
 *   (its final weights under its training loss) equals the one computed here by hand from the saved
 *   pruned model and the targets and weights that loss defines — and differs from every other loss's;
 * - the intervals in results.json are 95% percentile-bootstrap intervals, as the session states: they
 *   agree with an independent bootstrap (another generator) of the same statistics.
 * Table-driven over LOSS_NAMES: a loss added there without a hand-written reference here fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import type { Estimate, LossName, SessionResults } from '../../src/protocol/results';
import { LOSS_NAMES } from '../../src/protocol/results';
import { runSession } from '../../src/core/session';
import { tempDir } from '../helpers';
import { makeFixture, request } from '../session-fixture';

const PW = { minWeight: 0.75, gamma: 5 };

/**
 * The training target t (P(y = 1)) and weight w of one sample of a binary task, by hand, for each loss:
 * p is the dense model's P(y = 1), y the label (1 = denied), group the sample's group ("north"/"south").
 * The dense model is right when (p > 0.5 ? 1 : 0) = y; s = p for y = 1, else 1 − p.
 */
type Reference = (p: number, y: number, group: string) => { t: number; w: number };
const pwWeight = (p: number, y: number) => PW.minWeight + (1 - PW.minWeight) * (1 - (y === 1 ? p : 1 - p)) ** PW.gamma;
const right = (p: number, y: number) => (p > 0.5 ? 1 : 0) === y;
const HAND: Partial<Record<LossName, Reference>> = {
  ce: (_p, y) => ({ t: y, w: 1 }),
  kd: (p) => ({ t: p, w: 1 }),
  pw: (p, y) => ({ t: right(p, y) ? p : y, w: pwWeight(p, y) }),
  'pw-weight-only': (p, y) => ({ t: p, w: pwWeight(p, y) }),
  'pw-correction-only': (p, y) => ({ t: right(p, y) ? p : y, w: 1 }),
};

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
}

/** The two Dense layers of a saved fixture model (3 → 16 relu → 1 sigmoid), read from its files. */
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
  return { W1: out[0], b1: out[1], W2: out[2], b2: out[3], hidden: out[1].length };
}

/** The logit z (P(y = 1) = sigmoid(z)), in float64. */
function logit(m: Dense2, x: number[]): number {
  let z = m.b2[0];
  for (let h = 0; h < m.hidden; h++) {
    let a = m.b1[h];
    for (let j = 0; j < x.length; j++) a += Math.fround(x[j]) * m.W1[j * m.hidden + h];
    z += Math.max(a, 0) * m.W2[h];
  }
  return z;
}
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
/** Binary cross-entropy of a logit against a soft target. */
const bce = (z: number, t: number) => -t * Math.log(sigmoid(z)) - (1 - t) * Math.log(1 - sigmoid(z));

function readSamples(csv: string): Sample[] {
  const [header, ...lines] = fs.readFileSync(csv, 'utf8').split(/\r?\n/).filter((l) => l);
  const col = header.split(',');
  assert.deepEqual(col, ['x1', 'x2', 'x3', 'region', 'decision', 'split']);
  return lines.map((l) => {
    const v = l.split(',');
    return { x: [Number(v[0]), Number(v[1]), Number(v[2])], group: v[3], y: v[4] === 'denied' ? 1 : 0, split: v[5] };
  });
}

/** One session over every loss, shared by the tests of this file. */
let session: Promise<{ results: SessionResults; sessionDir: string; modelDir: string; samples: Sample[] }> | undefined;
function theSession() {
  session ??= (async () => {
    const dir = tempDir();
    const { csv, modelPath } = await makeFixture(dir, 600, 'plain');
    const out = path.join(dir, '.fairprune');
    const req = request(modelPath, csv, out, {
      ignore: undefined,
      splitColumn: 'split',
      sparsities: [0.9],
      losses: [...LOSS_NAMES],
      epochs: 1,
      bootstrapResamples: 2000,
      workers: 1,
    });
    const results = await runSession(req);
    return { results, sessionDir: path.join(out, 'sessions', results.sessionId), modelDir: path.dirname(modelPath), samples: readSamples(csv) };
  })();
  return session;
}

for (const loss of LOSS_NAMES) {
  test(`session: the '${loss}' point trained on the '${loss}' loss's own targets and weights`, async () => {
    const hand = HAND[loss];
    assert.ok(hand, `no hand-written targets and weights for the '${loss}' loss: add them to HAND in this file`);
    const { results, sessionDir, modelDir, samples } = await theSession();
    assert.equal(results.status, 'completed');
    const point = results.points.find((p) => p.loss === loss);
    assert.ok(point, `no '${loss}' point in ${results.points.map((p) => p.id).join(', ')}`);
    const dense = readModel(modelDir);
    const pruned = readModel(path.join(sessionDir, point.modelDir));
    const validation = samples.filter((s) => s.split === 'val' || s.split === 'valid');
    assert.equal(validation.length, results.data.split.counts.validation);
    assert.ok(validation.length >= 50);

    /** Mean over the validation rows of w · BCE(pruned logit, t), with the targets and weights of `ref`. */
    const validationLoss = (ref: Reference) => {
      let sum = 0;
      for (const s of validation) {
        const { t, w } = ref(sigmoid(logit(dense, s.x)), s.y, s.group);
        sum += w * bce(logit(pruned, s.x), t);
      }
      return sum / validation.length;
    };
    const mine = validationLoss(hand);
    const recorded = point.training.validationLoss!;
    assert.ok(Math.abs(recorded - mine) < 1e-5, `${loss}: recorded validation loss ${recorded}, by hand ${mine}`);
    // the check tells the losses apart: under any other loss's targets and weights the same model scores differently
    for (const [other, ref] of Object.entries(HAND) as [LossName, Reference][]) {
      if (other === loss) continue;
      const theirs = validationLoss(ref);
      assert.ok(Math.abs(theirs - mine) > 1e-3, `${loss} vs ${other}: ${mine} and ${theirs} are too close to tell apart`);
    }
    const accuracy = validation.filter((s) => (logit(pruned, s.x) > 0 ? 1 : 0) === s.y).length / validation.length;
    assert.ok(Math.abs(point.training.validationAccuracy! - accuracy) < 1e-12);
  });
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
    return testRows.map((s) => ((logit(m, s.x) > 0 ? 1 : 0) === s.y ? 1 : 0));
  };
  /** Overall accuracy and worst-group accuracy of one resample (indices per group). */
  const stats = (correct: number[], sample: number[][]) => {
    const groupAcc = sample.map((rows) => rows.reduce((a, i) => a + correct[i], 0) / rows.length);
    return { accuracy: sample.flat().reduce((a, i) => a + correct[i], 0) / testRows.length, worst: Math.min(...groupAcc) };
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
    assert.ok(Math.abs(got.low - want.low) < 0.2 * wWant && Math.abs(got.high - want.high) < 0.2 * wWant, `${what}: ${JSON.stringify(got)} vs ${JSON.stringify(want)}`);
  };

  const dense = correctOf(modelDir);
  const full = members;
  for (const [name, stat] of [['accuracy', 'accuracy'], ['worst-group accuracy', 'worst']] as const) {
    const pointValue = stats(dense, full)[stat];
    const want = percentileInterval(pointValue, bootstrap((s) => stats(dense, s)[stat], 3), 0.95);
    const got = stat === 'accuracy' ? results.dense.accuracy : results.dense.worstGroup.accuracy;
    assert.ok(want.high - want.low > 0.02, `dense ${name}: the reference interval is wide enough to tell levels apart`);
    agree(got, want, `dense ${name}`);
  }
  let tested = 0;
  for (const point of results.points) {
    const pruned = correctOf(path.join(sessionDir, point.modelDir));
    const acc = stats(pruned, full).accuracy;
    agree(point.evaluation.accuracy, percentileInterval(acc, bootstrap((s) => stats(pruned, s).accuracy, 5), 0.95), `${point.id} accuracy`);
    const change = (s: number[][]) => stats(pruned, s).accuracy - stats(dense, s).accuracy;
    const worstChange = (s: number[][]) => stats(pruned, s).worst - stats(dense, s).worst;
    agree(point.comparison.accuracyChange, percentileInterval(change(full), bootstrap(change, 7), 0.95), `${point.id} accuracy change`);
    agree(point.comparison.worstGroupChange, percentileInterval(worstChange(full), bootstrap(worstChange, 11), 0.95), `${point.id} worst-group change`);
    if (point.comparison.accuracyChange.high > point.comparison.accuracyChange.low) tested++;
  }
  assert.ok(tested > 0, 'at least one point disagrees with the dense model somewhere, so a change interval is checked');
});
