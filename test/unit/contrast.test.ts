import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'path';
import * as fs from 'fs';
import { pairedContrast, spread, summarizeRuns } from '../../src/core/contrast';
import type { PrunedPoint } from '../../src/protocol/results';
import { runSession } from '../../src/core/session';
import { renderReport } from '../../src/core/report';
import { printResults } from '../../src/cli/output';
import { Rng } from '../../src/core/rng';
import { tempDir } from '../helpers';
import { makeFixture, request } from '../session-fixture';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('spread across runs: mean, sample standard deviation, least and largest', () => {
  const s = spread([0.7, 0.8, 0.9]);
  close(s.mean, 0.8);
  close(s.sd, 0.1);
  assert.deepEqual([s.min, s.max], [0.7, 0.9]);
  assert.deepEqual(spread([0.5]), { mean: 0.5, sd: 0, min: 0.5, max: 0.5 });
});

test('paired contrast by hand: mean over runs of (worst group, gap) differences; identical runs give [0, 0]', () => {
  // 4 rows of group 0, 2 of group 1
  const groups = [0, 0, 0, 0, 1, 1];
  const u = (bits: number[]) => Uint8Array.from(bits);
  // run 1: base A0 3/4, A1 0/2 → worst 0, gap 0.75; other A0 3/4, A1 1/2 → worst 0.5, gap 0.25
  // run 2: base A0 4/4, A1 1/2 → worst 0.5, gap 0.5; other A0 2/4, A1 2/2 → worst 0.5, gap 0.5
  const base = [u([1, 1, 1, 0, 0, 0]), u([1, 1, 1, 1, 1, 0])];
  const other = [u([1, 1, 0, 1, 1, 0]), u([1, 0, 0, 1, 1, 1])];
  const c = pairedContrast(base, other, groups, 2, { resamples: 400, confidence: 0.95, seed: 3 });
  assert.equal(c.runs, 2);
  close(c.worstGroupAccuracy.value, (0.5 + 0) / 2);
  close(c.largestGap.value, (-0.5 + 0) / 2);
  assert.ok(
    c.worstGroupAccuracy.low <= c.worstGroupAccuracy.value && c.worstGroupAccuracy.value <= c.worstGroupAccuracy.high,
  );
  const same = pairedContrast(base, base, groups, 2, { resamples: 200, confidence: 0.95, seed: 1 });
  assert.deepEqual(same.worstGroupAccuracy, { value: 0, low: 0, high: 0 });
  assert.deepEqual(same.largestGap, { value: 0, low: 0, high: 0 });
});

test('paired contrast: the interval has the stated coverage of an independent percentile bootstrap, and narrows with more test rows', () => {
  // other is right on 10% more of the rare group's rows than base, in every run: the difference is
  // +0.1 on the rare (worst) group; an independent check of the interval's width, drawn the same way.
  const make = (n: number) => {
    const rng = new Rng(5);
    const groups = Array.from({ length: n }, (_, i) => (i % 5 === 0 ? 1 : 0));
    const runs = (lift: number) =>
      [0, 1, 2].map(() => Uint8Array.from(groups, (g) => (rng.next() < (g ? 0.5 + lift : 0.9) ? 1 : 0)));
    return { groups, base: runs(0), other: runs(0.1) };
  };
  const small = make(500);
  const big = make(5000);
  const opts = { resamples: 1000, confidence: 0.95, seed: 9 };
  const cs = pairedContrast(small.base, small.other, small.groups, 2, opts);
  const cb = pairedContrast(big.base, big.other, big.groups, 2, opts);
  const width = (e: { low: number; high: number }) => e.high - e.low;
  assert.ok(width(cb.worstGroupAccuracy) < width(cs.worstGroupAccuracy), 'ten times the rows: a narrower interval');
  assert.ok(
    cb.worstGroupAccuracy.low > 0,
    `a real +10-point lift on 1,000 rare rows is told from 0: ${JSON.stringify(cb.worstGroupAccuracy)}`,
  );
  // the stated level: at 50% the interval is far narrower than at 95%
  const half = pairedContrast(small.base, small.other, small.groups, 2, { ...opts, confidence: 0.5 });
  assert.ok(width(half.worstGroupAccuracy) < 0.6 * width(cs.worstGroupAccuracy));
});

test('summaries: one per sparsity × loss, runs in order, a contrast against ce for every other loss', () => {
  const pt = (id: string, sparsity: number, loss: PrunedPoint['loss'], run: number, worst: number) =>
    ({
      id,
      run,
      targetSparsity: sparsity,
      loss,
      evaluation: {
        accuracy: { value: worst + 0.1 },
        worstGroup: { accuracy: { value: worst } },
        largestGap: { value: 0.2 },
      },
    }) as unknown as PrunedPoint;
  const points = [
    pt('a', 0.5, 'ce', 1, 0.7),
    pt('b', 0.5, 'pw', 1, 0.8),
    pt('a2', 0.5, 'ce', 2, 0.72),
    pt('b2', 0.5, 'pw', 2, 0.78),
  ];
  const right = Uint8Array.from([1, 0, 1, 1]);
  const s = summarizeRuns(points, () => right, [0, 0, 1, 1], 2, { resamples: 50, confidence: 0.95, seed: 1 });
  assert.deepEqual(
    s.map((x) => [x.loss, x.runs, x.pointIds]),
    [
      ['ce', 2, ['a', 'a2']],
      ['pw', 2, ['b', 'b2']],
    ],
  );
  close(s[1].worstGroupAccuracy.mean, 0.79);
  assert.equal(s[0].againstCe, undefined);
  assert.deepEqual(s[1].againstCe!.worstGroupAccuracy, { value: 0, low: 0, high: 0 }); // same right/wrong
  assert.equal(
    summarizeRuns(points, () => undefined, [0], 1, { resamples: 10, confidence: 0.95, seed: 1 })[1].againstCe,
    undefined,
  );
});

test('--seeds 2: every sparsity × loss fine-tuned twice from the same pruned network; summaries, contrasts and the report', async () => {
  const dir = tempDir();
  const { csv, modelPath } = await makeFixture(dir);
  const results = await runSession(
    request(modelPath, csv, path.join(dir, '.fairprune'), { sparsities: [0.5], losses: ['ce', 'pw'], seeds: 2 }),
  );
  assert.deepEqual(
    results.points.map((p) => [p.id, p.run ?? 1]),
    [
      ['s0.50-ce', 1],
      ['s0.50-pw', 1],
      ['s0.50-ce-r2', 2],
      ['s0.50-pw-r2', 2],
    ],
  );
  assert.equal(results.config.seeds, 2);
  // the same pruned network: the same weights are zero in both runs
  assert.equal(results.points[0].size.nonZeroParameters, results.points[2].size.nonZeroParameters);
  // different seeds: the runs' fine-tuning differs
  assert.notEqual(results.points[0].training.finalTrainLoss, results.points[2].training.finalTrainLoss);
  const [ce, pw] = results.summaries!;
  assert.equal(ce.runs, 2);
  const w = [results.points[0], results.points[2]].map((p) => p.evaluation.worstGroup.accuracy.value);
  close(ce.worstGroupAccuracy.mean, (w[0] + w[1]) / 2);
  close(ce.worstGroupAccuracy.min, Math.min(...w));
  const diff = [0, 1].map(
    (r) =>
      results.points[2 * r + 1].evaluation.worstGroup.accuracy.value -
      results.points[2 * r].evaluation.worstGroup.accuracy.value,
  );
  close(pw.againstCe!.worstGroupAccuracy.value, (diff[0] + diff[1]) / 2, 1e-12);
  const md = fs.readFileSync(path.join(dir, '.fairprune', 'sessions', results.sessionId, 'report.md'), 'utf8');
  assert.equal(md, renderReport(results));
  assert.match(md, /## Across 2 seeds, and each loss against ce/);
  assert.match(md, /\| 50% \| pw \| 2 \| /);
  // the recommendation considers run 1 only
  assert.ok(!results.recommendation!.pointId?.endsWith('-r2'));
  // the command line's table: every run, the summaries with the contrast against ce, the recommendation last
  let printed = '';
  printResults(results, path.join(dir, 'results.json'), {
    write: (t: string) => ((printed += t), true),
  } as unknown as NodeJS.WriteStream);
  assert.match(printed, /^ce \(run 2\) /m);
  assert.match(printed, /\| 50% \| pw \| 2 \| .*\| [−+]\d+\.\d pts \[[−+]\d+\.\d pts, [−+]\d+\.\d pts\] \|/);
  assert.match(printed.trimEnd().split('\n').pop()!, /^(Recommended: s0\.50-|No point passes)/);
});

test('paired contrast: the interval is exactly the bootstrap reproduced by hand (run, then rows within each group), pairing the first min(N) runs', async () => {
  const { interval } = await import('../../src/core/metrics');
  // 3 groups, the last one empty in the test rows (it is left out, never NaN)
  const groups = [0, 1, 0, 1, 0, 0, 1, 0];
  const u = (bits: number[]) => Uint8Array.from(bits);
  const base = [u([1, 0, 1, 1, 0, 1, 1, 0]), u([1, 1, 0, 1, 1, 0, 0, 1]), u([0, 1, 1, 1, 1, 1, 0, 0])];
  const other = [u([1, 1, 1, 0, 0, 1, 1, 1]), u([0, 1, 1, 1, 1, 1, 1, 1])]; // two runs: base's third is unpaired
  const opts = { resamples: 300, confidence: 0.9, seed: 21 };
  const c = pairedContrast(base, other, groups, 3, opts);
  assert.equal(c.runs, 2);
  const members = [[0, 2, 4, 5, 7], [1, 3, 6], []];
  const stats = (bits: Uint8Array, rows: number[]) => {
    const acc = members
      .filter((m) => m.length)
      .map((m) => {
        const mine = rows.filter((r) => m.includes(r));
        return mine.reduce((a, r) => a + bits[r], 0) / mine.length;
      });
    return [Math.min(...acc), Math.max(...acc) - Math.min(...acc)];
  };
  const all = [0, 1, 2, 3, 4, 5, 6, 7];
  const diff = (r: number, rows: number[]) => {
    const [wb, gb] = stats(base[r], rows);
    const [wo, go] = stats(other[r], rows);
    return [wo - wb, go - gb];
  };
  close(c.worstGroupAccuracy.value, (diff(0, all)[0] + diff(1, all)[0]) / 2);
  close(c.largestGap.value, (diff(0, all)[1] + diff(1, all)[1]) / 2);
  const rng = new Rng(21);
  const w = new Float64Array(300);
  const g = new Float64Array(300);
  for (let b = 0; b < 300; b++) {
    const r = rng.int(2);
    const rows: number[] = [];
    for (const m of members) for (let j = 0; j < m.length; j++) rows.push(m[rng.int(m.length)]);
    [w[b], g[b]] = diff(r, rows);
  }
  assert.deepEqual(c.worstGroupAccuracy, interval(c.worstGroupAccuracy.value, w, 0.9));
  assert.deepEqual(c.largestGap, interval(c.largestGap.value, g, 0.9));
  assert.throws(() => pairedContrast([], other, groups, 3, opts), /no runs/);
});

test('summaries pair run r with run r whatever order the points come in', () => {
  const pt = (id: string, loss: PrunedPoint['loss'], run: number) =>
    ({
      id,
      run,
      targetSparsity: 0.8,
      loss,
      evaluation: {
        accuracy: { value: 0.5 },
        worstGroup: { accuracy: { value: run / 10 } },
        largestGap: { value: 0.1 },
      },
    }) as unknown as PrunedPoint;
  // ce run 1 right on everything, run 2 wrong on everything; pw the same: paired, the differences are 0
  const correct: Record<string, Uint8Array> = {
    c1: Uint8Array.from([1, 1]),
    c2: Uint8Array.from([0, 0]),
    p1: Uint8Array.from([1, 1]),
    p2: Uint8Array.from([0, 0]),
  };
  const s = summarizeRuns(
    [pt('p2', 'pw', 2), pt('c2', 'ce', 2), pt('p1', 'pw', 1), pt('c1', 'ce', 1)],
    (id) => correct[id],
    [0, 1],
    2,
    { resamples: 20, confidence: 0.95, seed: 1 },
  );
  const pw = s.find((x) => x.loss === 'pw')!;
  assert.deepEqual(pw.pointIds, ['p1', 'p2']);
  assert.deepEqual(pw.againstCe!.worstGroupAccuracy, { value: 0, low: 0, high: 0 }); // unpaired, it would be ±1
});
