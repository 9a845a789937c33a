import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Estimate, LossName, PrunedPoint, SessionResults } from '../../src/protocol/results';
import { DEFAULT_POLICY, recommendPoint } from '../../src/shared/gate';
import type { FairnessPolicy } from '../../src/shared/gate';
import { renderReport } from '../../src/core/report';

const exact = (v: number): Estimate => ({ value: v, low: v, high: v });

/** A point whose worst-group accuracy, worst-group change and gap change are exact (zero-width intervals). */
function point(
  sparsity: number,
  loss: LossName,
  worst: number,
  worstChange: number,
  gapChange: number,
  run?: number,
): PrunedPoint {
  return {
    id: `s${sparsity.toFixed(2)}-${loss}${run && run > 1 ? `-r${run}` : ''}`,
    ...(run ? { run } : {}),
    targetSparsity: sparsity,
    loss,
    evaluation: {
      accuracy: exact(0.9),
      worstGroup: { group: 'ink=cool', accuracy: exact(worst) },
    } as PrunedPoint['evaluation'],
    comparison: { worstGroupChange: exact(worstChange), gapChange: exact(gapChange) } as PrunedPoint['comparison'],
  } as PrunedPoint;
}

const session = (points: PrunedPoint[]) => ({ points }) as SessionResults;
const policy: FairnessPolicy = { ...DEFAULT_POLICY, judgeOn: 'estimate' }; // drop ≤ 5 pts, gap growth ≤ 3 pts

test('the recommended point is the sparsest that passes, over every loss; the others passing there are runners-up', () => {
  const r = recommendPoint(
    session([
      point(0.5, 'ce', 0.9, -0.01, 0.0),
      point(0.5, 'pw', 0.9, -0.01, 0.0),
      point(0.8, 'ce', 0.7, -0.2, 0.15), // fails
      point(0.8, 'pw', 0.86, -0.04, 0.02), // passes
      point(0.8, 'group-dro', 0.88, -0.02, 0.01), // passes, better worst group
      point(0.8, 'ceag', 0.87, -0.03, 0.01), // passes
      point(0.9, 'ce', 0.5, -0.4, 0.4), // fails
      point(0.9, 'group-dro', 0.8, -0.1, 0.05), // fails
    ]),
    policy,
  );
  assert.equal(r.pointId, 's0.80-group-dro');
  assert.equal(r.sparsity, 0.8);
  assert.equal(r.loss, 'group-dro');
  assert.deepEqual(r.runnersUp, ['s0.80-ceag', 's0.80-pw']);
  assert.match(r.sentence, /s0\.80-group-dro.*80\.0% sparsity.*ceag, pw also pass/);
});

test('at the limit passes, just over fails; runs 2…N of --seeds are not candidates', () => {
  const atLimit = recommendPoint(
    session([point(0.5, 'ce', 0.85, -0.05, 0.03), point(0.9, 'ce', 0.8, -0.0501, 0)]),
    policy,
  );
  assert.equal(atLimit.pointId, 's0.50-ce');
  const seeds = recommendPoint(session([point(0.5, 'ce', 0.9, 0, 0, 1), point(0.9, 'pw', 0.9, 0, 0, 2)]), policy);
  assert.equal(seeds.pointId, 's0.50-ce', 'a second run is spread, not a model to commit');
});

test('when no point passes it says which rule failed first, at the lowest sparsity tried', () => {
  const r = recommendPoint(
    session([point(0.8, 'ce', 0.7, -0.02, 0.1), point(0.8, 'pw', 0.72, -0.01, 0.2), point(0.9, 'ce', 0.5, -0.3, 0.3)]),
    policy,
  );
  assert.equal(r.pointId, null);
  assert.equal(r.failedAt, 0.8);
  assert.equal(r.failedRule, 'gap-increase');
  assert.match(r.sentence, /No point passes.*80\.0% sparsity.*s0\.80-pw.*gap between groups grows 20\.0 pts/);
  assert.deepEqual(recommendPoint(session([]), policy).runnersUp, []);
});

test('judged on intervals, the pessimistic end decides the recommendation', () => {
  const p = point(0.8, 'pw', 0.86, -0.04, 0.0);
  p.comparison.worstGroupChange = { value: -0.04, low: -0.07, high: -0.01 };
  const r = recommendPoint(session([point(0.5, 'ce', 0.9, -0.01, 0), p]), DEFAULT_POLICY);
  assert.equal(r.pointId, 's0.50-ce');
});

test('report.md names the recommended point first, before the model and data', () => {
  const results = {
    sessionId: 'x',
    status: 'completed',
    createdAt: 'then',
    recommendation: recommendPoint(session([point(0.5, 'ce', 0.9, 0, 0)]), policy),
    model: { path: 'm', task: 'binary', inputShape: [3], size: { parameters: 1, weightBytes: 4, gzipBytes: 4 } },
    data: {
      path: 'd',
      rows: 1,
      label: { column: 'y', classes: ['a', 'b'], order: 'sorted' },
      features: ['x'],
      imageColumn: null,
      preprocessing: null,
      split: { source: 'seeded', seed: 1, counts: { train: 1, validation: 0, test: 1 } },
      groupColumns: ['g'],
      groups: [],
      warnings: [],
    },
    config: {
      method: 'magnitude-layer',
      sparsities: [0.5],
      epochs: 1,
      batchSize: 1,
      learningRate: 0.1,
      patience: 0,
      losses: ['ce'],
      pw: { minWeight: 0.3, gamma: 1 },
      bootstrap: { resamples: 10, confidence: 0.95 },
    },
    engine: { version: '0', backend: { name: 'cpu', tfjsVersion: '4' }, node: 'v20', platform: 'linux' },
    points: [],
  } as unknown as SessionResults;
  const md = renderReport(results);
  const rec = md.indexOf('Recommended: s0.50-ce');
  assert.ok(rec > 0 && rec < md.indexOf('- Model:'), md.slice(0, 400));
});

test("the recommendation's sentences, word for word: one runner-up, none, no point passing with and without a group-aware loss, no point yet", () => {
  const one = recommendPoint(
    session([point(0.8, 'ce', 0.88, -0.02, 0.01), point(0.8, 'pw', 0.86, -0.04, 0.02)]),
    policy,
  );
  assert.equal(
    one.sentence,
    'Recommended: s0.80-ce — 80.0% sparsity with ce is the sparsest point that passes the fairness gate (worst group ink=cool at 88.0%); pw also passes there.',
  );
  const alone = recommendPoint(session([point(0.8, 'ce', 0.88, -0.02, 0.01)]), policy);
  assert.equal(
    alone.sentence,
    'Recommended: s0.80-ce — 80.0% sparsity with ce is the sparsest point that passes the fairness gate (worst group ink=cool at 88.0%).',
  );
  assert.deepEqual(alone.runnersUp, []);

  const failing = [point(0.8, 'ce', 0.7, -0.02, 0.1)];
  const blind = recommendPoint(session(failing), policy);
  assert.deepEqual(blind.runnersUp, []);
  assert.ok(
    blind.sentence.endsWith(
      'Try lower sparsities, more fine-tuning epochs or a group-aware loss (group-balanced, group-dro, ceag).',
    ),
    `suggests a group-aware loss when none was tried: ${blind.sentence}`,
  );
  const aware = recommendPoint(session([...failing, point(0.8, 'group-dro', 0.7, -0.02, 0.1)]), policy);
  assert.ok(
    aware.sentence.endsWith('Try lower sparsities, more fine-tuning epochs.'),
    `no group-aware suggestion once one was tried: ${aware.sentence}`,
  );
  const onlyAware = recommendPoint(
    session([point(0.8, 'group-dro', 0.7, -0.02, 0.1), point(0.8, 'ceag', 0.7, -0.02, 0.1)]),
    policy,
  );
  assert.ok(onlyAware.sentence.endsWith('Try lower sparsities, more fine-tuning epochs.'), onlyAware.sentence);

  const none = recommendPoint(session([]), policy);
  assert.equal(none.sentence, 'No pruned point yet.');
  assert.equal(none.pointId, null);
});
