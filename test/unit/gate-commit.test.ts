import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import type { Estimate, PrunedPoint, SessionResults } from '../../src/protocol/results';
import { checkPoint, DEFAULT_POLICY } from '../../src/shared/gate';
import { commitPoint, GateRefusedError, renderFairnessMarkdown } from '../../src/core/commit';
import type { FairnessRecord } from '../../src/core/commit';
import { runSession } from '../../src/core/session';
import { sha256, sha256File } from '../../src/core/atomic';
import { UserError } from '../../src/core/errors';
import { tempDir } from '../helpers';
import { makeFixture, request } from '../session-fixture';

const est = (value: number, low: number, high: number): Estimate => ({ value, low, high });

function point(worstChange: Estimate, gapChange: Estimate, accuracy: Estimate): PrunedPoint {
  return {
    id: 's0.80-pw',
    evaluation: { accuracy } as PrunedPoint['evaluation'],
    comparison: { worstGroupChange: worstChange, gapChange } as PrunedPoint['comparison'],
  } as PrunedPoint;
}

test('gate on intervals: the pessimistic end decides, and the message says by how much', () => {
  const policy = { ...DEFAULT_POLICY, maxWorstGroupDrop: 0.05, maxGapIncrease: 0.03, minAccuracy: 0.8 };
  const ok = checkPoint(point(est(-0.01, -0.04, 0.01), est(0.01, -0.01, 0.025), est(0.9, 0.85, 0.93)), policy);
  assert.equal(ok.passed, true);
  // the estimate is within the limit, the interval is not
  const wide = checkPoint(point(est(-0.03, -0.07, 0.0), est(0.01, 0, 0.02), est(0.9, 0.85, 0.93)), policy);
  assert.equal(wide.passed, false);
  const rule = wide.rules.find((r) => r.id === 'worst-group-drop')!;
  assert.equal(rule.passed, false);
  assert.ok(Math.abs(rule.observed - 0.07) < 1e-12 && Math.abs(rule.estimate - 0.03) < 1e-12);
  assert.match(
    wide.summary,
    /drops 7\.0 pts at the 95% bound \(estimate 3\.0 pts\), 2\.0 pts over the 5\.0 pts allowed/,
  );
  // the same point judged on estimates passes
  assert.equal(
    checkPoint(point(est(-0.03, -0.07, 0.0), est(0.01, 0, 0.02), est(0.9, 0.85, 0.93)), {
      ...policy,
      judgeOn: 'estimate',
    }).passed,
    true,
  );
  // gap and accuracy rules
  const gap = checkPoint(point(est(0, 0, 0), est(0.02, 0.01, 0.05), est(0.79, 0.75, 0.82)), policy);
  assert.deepEqual(
    gap.rules.map((r) => r.passed),
    [true, false, false],
  );
  assert.match(gap.summary, /gap between groups grows 5\.0 pts/);
  assert.match(gap.summary, /accuracy is 75\.0% at the 95% bound/);
});

test('commit: a passing point lands beside the dense model, whole, with fairness.json and FAIRNESS.md; a failing one is refused unless overridden', async () => {
  const dir = tempDir();
  const { csv, modelPath } = await makeFixture(dir, 600);
  const denseHash = sha256File(path.join(path.dirname(modelPath), 'weights.bin'));
  const results: SessionResults = await runSession(
    request(modelPath, csv, path.join(dir, '.fairprune'), { sparsities: [0.3, 0.95], losses: ['pw'], epochs: 1 }),
  );
  const sessionDir = path.join(dir, '.fairprune', 'sessions', results.sessionId);
  const lenient = { maxWorstGroupDrop: 1, maxGapIncrease: 1, minAccuracy: 0, judgeOn: 'interval' as const };
  const strict = { maxWorstGroupDrop: 0, maxGapIncrease: 0, minAccuracy: 0.999, judgeOn: 'interval' as const };

  // a point may hold a sub-folder (structured pruning's shrunk/ model): it is committed too
  fs.mkdirSync(path.join(sessionDir, 'points', 's0.30-pw', 'shrunk'));
  fs.writeFileSync(path.join(sessionDir, 'points', 's0.30-pw', 'shrunk', 'model.json'), '{}');
  // (as the session records it when it writes a shrunk model: commit checks every file against these hashes)
  const p30 = results.points.find((p) => p.id === 's0.30-pw')!;
  p30.files = { ...p30.files, 'shrunk/model.json': sha256('{}') };
  const ok = commitPoint({ sessionDir, results, pointId: 's0.30-pw', policy: lenient });
  assert.equal(ok.dir, path.join(dir, 'model.pruned-s0.30-pw'));
  assert.deepEqual(fs.readdirSync(ok.dir).sort(), [
    'FAIRNESS.md',
    'dense-reference.f32',
    'fairness.json',
    'fairprune.preprocessing.json',
    'model.json',
    'shrunk',
    'weights.bin',
  ]);
  assert.equal(fs.readFileSync(path.join(ok.dir, 'shrunk', 'model.json'), 'utf8'), '{}');
  const record = JSON.parse(fs.readFileSync(path.join(ok.dir, 'fairness.json'), 'utf8'));
  assert.equal(record.decision, 'passed');
  assert.equal(record.hashes.denseModel, results.model.sha256);
  assert.equal(record.hashes.data, results.data.sha256);
  assert.equal(record.hashes.prunedWeights, sha256File(path.join(ok.dir, 'weights.bin')));
  assert.equal(record.engine.backend.name, 'cpu');
  assert.deepEqual(record.point.evaluation, results.points[0].evaluation);
  assert.match(
    fs.readFileSync(path.join(ok.dir, 'FAIRNESS.md'), 'utf8'),
    /\*\*Passed\*\* the fairness gate[\s\S]*region=south/,
  );
  assert.equal(record.point.schedule, 'one-shot');
  assert.match(
    fs.readFileSync(path.join(ok.dir, 'FAIRNESS.md'), 'utf8'),
    /\d+\.\d% of its prunable weights removed \(magnitude-layer, one-shot\)/,
  );
  // A structured, gradual point says so, with its parameters, FLOPs and latency.
  const structured = renderFairnessMarkdown({
    ...record,
    point: {
      ...record.point,
      method: 'taylor-filter',
      schedule: 'gradual',
      cost: { parametersBefore: 106000, parametersAfter: 21000, flopsBefore: 2000000, flopsAfter: 1000000 },
      latency: {
        backend: 'wasm',
        batchSize: 64,
        runs: 5,
        denseMs: 6.6,
        prunedMs: 4.5,
        speedup: 1.47,
        sentence: 'The pruned model runs a batch in 4.5 ms against 6.6 ms.',
      },
      structure: { target: { metric: 'flops', scope: 'layer' }, reached: 0.5 } as FairnessRecord['point']['structure'],
    },
  });
  assert.match(
    structured,
    /50\.0% fewer multiply-adds \(FLOPs\) by removing whole filters and units \(taylor-filter, gradual, per layer\)/,
  );
  assert.match(structured, /Parameters 106,000 → 21,000; FLOPs per sample 2,000,000 → 1,000,000\./);
  assert.match(structured, /runs a batch in 4\.5 ms/);
  // a second commit of the same point gets a new folder; nothing is overwritten
  const again = commitPoint({ sessionDir, results, pointId: 's0.30-pw', policy: lenient });
  assert.equal(again.dir, path.join(dir, 'model.pruned-s0.30-pw-2'));

  assert.throws(
    () => commitPoint({ sessionDir, results, pointId: 's0.95-pw', policy: strict }),
    (e: unknown) => e instanceof GateRefusedError && /fails: /.test((e as Error).message),
  );
  assert.ok(!fs.existsSync(path.join(dir, 'model.pruned-s0.95-pw')), 'a refusal writes nothing');
  assert.throws(
    () => commitPoint({ sessionDir, results, pointId: 's0.95-pw', policy: strict, override: { reason: '  ' } }),
    UserError,
  );
  const forced = commitPoint({
    sessionDir,
    results,
    pointId: 's0.95-pw',
    policy: strict,
    override: { reason: 'ships behind a flag for the demo' },
  });
  const forcedRecord = JSON.parse(fs.readFileSync(path.join(forced.dir, 'fairness.json'), 'utf8'));
  assert.equal(forcedRecord.decision, 'overridden');
  assert.equal(forcedRecord.override.reason, 'ships behind a flag for the demo');
  assert.match(
    fs.readFileSync(path.join(forced.dir, 'FAIRNESS.md'), 'utf8'),
    /committed by \*\*override\*\*\. Reason given: “ships behind a flag for the demo”/,
  );
  assert.throws(
    () => commitPoint({ sessionDir, results, pointId: 's0.50-ce', policy: lenient }),
    /has no point 's0\.50-ce'.*s0\.30-pw, s0\.95-pw/,
  );
  assert.equal(
    sha256File(path.join(path.dirname(modelPath), 'weights.bin')),
    denseHash,
    'the dense model is untouched',
  );
});
