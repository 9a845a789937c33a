/**
 * The fairness gate, rule by rule: each rule × `judgeOn` (`interval`, `estimate`) × the judged value
 * below, at and above its limit. Every verdict, observed value and message below is written by hand.
 * In each row the value the other `judgeOn` would judge sits on the other side of the limit where an
 * interval allows it, so a rule that ignores `judgeOn` (or reads the wrong end of the interval) fails
 * a row.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Estimate, PrunedPoint, SessionResults } from '../../src/protocol/results';
import { checkPoint, checkSession, DEFAULT_POLICY } from '../../src/shared/gate';
import type { FairnessPolicy, GateRule } from '../../src/shared/gate';

const est = (value: number, low: number, high: number): Estimate => ({ value, low, high });

/** A point whose three gate inputs are given; anything not given passes every rule by a wide margin. */
function point(p: { worst?: Estimate; gap?: Estimate; accuracy?: Estimate; id?: string }): PrunedPoint {
  return {
    id: p.id ?? 's0.80-pw',
    evaluation: { accuracy: p.accuracy ?? est(0.95, 0.94, 0.96) } as PrunedPoint['evaluation'],
    comparison: {
      worstGroupChange: p.worst ?? est(0.01, 0.005, 0.02),
      gapChange: p.gap ?? est(-0.01, -0.02, -0.005),
    } as PrunedPoint['comparison'],
  } as PrunedPoint;
}

const LIMITS = { maxWorstGroupDrop: 0.05, maxGapIncrease: 0.03, minAccuracy: 0.8 };
const DESCRIPTIONS: Record<GateRule['id'], string> = {
  'worst-group-drop': 'worst-group accuracy may drop at most 5.0 pts',
  'gap-increase': 'the largest gap between groups may grow at most 3.0 pts',
  'min-accuracy': 'overall accuracy must be at least 80.0%',
};

interface Row {
  rule: GateRule['id'];
  judgeOn: FairnessPolicy['judgeOn'];
  where: 'below' | 'at' | 'above';
  input: { worst?: Estimate; gap?: Estimate; accuracy?: Estimate };
  passed: boolean;
  observed: number;
  estimate: number;
  message: string;
}

const ROWS: Row[] = [
  // worst-group drop = −(worst-group change); the pessimistic end is −(its low end). high is positive,
  // so reading the wrong end turns a failure into a pass.
  {
    rule: 'worst-group-drop',
    judgeOn: 'interval',
    where: 'below',
    input: { worst: est(-0.02, -0.04, 0.03) },
    passed: true,
    observed: 0.04,
    estimate: 0.02,
    message: 'worst-group drop 4.0 pts (95% bound) is within 5.0 pts',
  },
  {
    rule: 'worst-group-drop',
    judgeOn: 'interval',
    where: 'at',
    input: { worst: est(-0.02, -0.05, 0.03) },
    passed: true,
    observed: 0.05,
    estimate: 0.02,
    message: 'worst-group drop 5.0 pts (95% bound) is within 5.0 pts',
  },
  {
    rule: 'worst-group-drop',
    judgeOn: 'interval',
    where: 'above',
    input: { worst: est(-0.02, -0.06, 0.03) },
    passed: false,
    observed: 0.06,
    estimate: 0.02,
    message: 'worst-group accuracy drops 6.0 pts at the 95% bound (estimate 2.0 pts), 1.0 pts over the 5.0 pts allowed',
  },
  {
    rule: 'worst-group-drop',
    judgeOn: 'estimate',
    where: 'below',
    input: { worst: est(-0.04, -0.09, 0.03) },
    passed: true,
    observed: 0.04,
    estimate: 0.04,
    message: 'worst-group drop 4.0 pts is within 5.0 pts',
  },
  {
    rule: 'worst-group-drop',
    judgeOn: 'estimate',
    where: 'at',
    input: { worst: est(-0.05, -0.09, 0.03) },
    passed: true,
    observed: 0.05,
    estimate: 0.05,
    message: 'worst-group drop 5.0 pts is within 5.0 pts',
  },
  {
    rule: 'worst-group-drop',
    judgeOn: 'estimate',
    where: 'above',
    input: { worst: est(-0.06, -0.09, 0.03) },
    passed: false,
    observed: 0.06,
    estimate: 0.06,
    message: 'worst-group accuracy drops 6.0 pts, 1.0 pts over the 5.0 pts allowed',
  },
  // gap increase: the pessimistic end is the high end; low is negative.
  {
    rule: 'gap-increase',
    judgeOn: 'interval',
    where: 'below',
    input: { gap: est(0.01, -0.02, 0.02) },
    passed: true,
    observed: 0.02,
    estimate: 0.01,
    message: 'gap increase 2.0 pts (95% bound) is within 3.0 pts',
  },
  {
    rule: 'gap-increase',
    judgeOn: 'interval',
    where: 'at',
    input: { gap: est(0.01, -0.02, 0.03) },
    passed: true,
    observed: 0.03,
    estimate: 0.01,
    message: 'gap increase 3.0 pts (95% bound) is within 3.0 pts',
  },
  {
    rule: 'gap-increase',
    judgeOn: 'interval',
    where: 'above',
    input: { gap: est(0.01, -0.02, 0.04) },
    passed: false,
    observed: 0.04,
    estimate: 0.01,
    message:
      'the gap between groups grows 4.0 pts at the 95% bound (estimate 1.0 pts), 1.0 pts over the 3.0 pts allowed',
  },
  {
    rule: 'gap-increase',
    judgeOn: 'estimate',
    where: 'below',
    input: { gap: est(0.02, -0.02, 0.07) },
    passed: true,
    observed: 0.02,
    estimate: 0.02,
    message: 'gap increase 2.0 pts is within 3.0 pts',
  },
  {
    rule: 'gap-increase',
    judgeOn: 'estimate',
    where: 'at',
    input: { gap: est(0.03, -0.02, 0.07) },
    passed: true,
    observed: 0.03,
    estimate: 0.03,
    message: 'gap increase 3.0 pts is within 3.0 pts',
  },
  {
    rule: 'gap-increase',
    judgeOn: 'estimate',
    where: 'above',
    input: { gap: est(0.04, -0.02, 0.07) },
    passed: false,
    observed: 0.04,
    estimate: 0.04,
    message: 'the gap between groups grows 4.0 pts, 1.0 pts over the 3.0 pts allowed',
  },
  // overall accuracy: the pessimistic end is the low end; below the limit fails. high is above it.
  {
    rule: 'min-accuracy',
    judgeOn: 'interval',
    where: 'below',
    input: { accuracy: est(0.85, 0.79, 0.95) },
    passed: false,
    observed: 0.79,
    estimate: 0.85,
    message: 'accuracy is 79.0% at the 95% bound (estimate 85.0%), 1.0 pts under the 80.0% required',
  },
  {
    rule: 'min-accuracy',
    judgeOn: 'interval',
    where: 'at',
    input: { accuracy: est(0.85, 0.8, 0.95) },
    passed: true,
    observed: 0.8,
    estimate: 0.85,
    message: 'accuracy 80.0% (95% bound) meets 80.0%',
  },
  {
    rule: 'min-accuracy',
    judgeOn: 'interval',
    where: 'above',
    input: { accuracy: est(0.85, 0.81, 0.95) },
    passed: true,
    observed: 0.81,
    estimate: 0.85,
    message: 'accuracy 81.0% (95% bound) meets 80.0%',
  },
  {
    rule: 'min-accuracy',
    judgeOn: 'estimate',
    where: 'below',
    input: { accuracy: est(0.79, 0.7, 0.95) },
    passed: false,
    observed: 0.79,
    estimate: 0.79,
    message: 'accuracy is 79.0%, 1.0 pts under the 80.0% required',
  },
  {
    rule: 'min-accuracy',
    judgeOn: 'estimate',
    where: 'at',
    input: { accuracy: est(0.8, 0.7, 0.95) },
    passed: true,
    observed: 0.8,
    estimate: 0.8,
    message: 'accuracy 80.0% meets 80.0%',
  },
  {
    rule: 'min-accuracy',
    judgeOn: 'estimate',
    where: 'above',
    input: { accuracy: est(0.81, 0.7, 0.95) },
    passed: true,
    observed: 0.81,
    estimate: 0.81,
    message: 'accuracy 81.0% meets 80.0%',
  },
];

for (const row of ROWS) {
  test(`gate: ${row.rule} judged on the ${row.judgeOn}, ${row.where} the limit → ${row.passed ? 'passes' : 'fails'}`, () => {
    const policy: FairnessPolicy = { ...LIMITS, judgeOn: row.judgeOn };
    const verdict = checkPoint(point(row.input), policy);
    assert.equal(verdict.policy, policy);
    assert.deepEqual(
      verdict.rules.map((r) => r.id),
      ['worst-group-drop', 'gap-increase', 'min-accuracy'],
    );
    for (const r of verdict.rules) {
      assert.equal(r.description, DESCRIPTIONS[r.id]);
      assert.equal(r.limit, r.id === 'worst-group-drop' ? 0.05 : r.id === 'gap-increase' ? 0.03 : 0.8);
      // every other rule passes by a wide margin
      if (r.id !== row.rule) assert.equal(r.passed, true, `${r.id}: ${r.message}`);
    }
    const rule = verdict.rules.find((r) => r.id === row.rule)!;
    assert.equal(rule.passed, row.passed);
    assert.ok(Math.abs(rule.observed - row.observed) < 1e-12, `observed ${rule.observed}, want ${row.observed}`);
    assert.ok(Math.abs(rule.estimate - row.estimate) < 1e-12, `estimate ${rule.estimate}, want ${row.estimate}`);
    assert.equal(rule.message, row.message);
    assert.equal(verdict.passed, row.passed);
    const how = row.judgeOn === 'interval' ? 'judged on 95% intervals' : 'judged on estimates';
    assert.equal(verdict.summary, row.passed ? `passes the fairness gate (${how})` : `fails: ${row.message}`);
  });
}

test("gate: the other rules' messages, when every rule passes by a margin", () => {
  const v = checkPoint(point({}), { ...LIMITS, judgeOn: 'interval' });
  assert.deepEqual(
    v.rules.map((r) => r.message),
    [
      'worst-group drop -0.5 pts (95% bound) is within 5.0 pts',
      'gap increase -0.5 pts (95% bound) is within 3.0 pts',
      'accuracy 94.0% (95% bound) meets 80.0%',
    ],
  );
  assert.deepEqual(
    v.rules.map((r) => r.observed),
    [-0.005, -0.005, 0.94],
  );
});

test('gate: at the limit up to float rounding still passes; a hair over fails', () => {
  // −(−(0.1 + 0.2)) = 0.30000000000000004, over 0.3 only by rounding
  const limits = { maxWorstGroupDrop: 0.3, maxGapIncrease: 0.3, minAccuracy: 0.3, judgeOn: 'estimate' as const };
  const rounded = 0.1 + 0.2;
  assert.ok(rounded > 0.3);
  const atLimit = checkPoint(
    point({ worst: est(-rounded, -1, 0), gap: est(rounded, 0, 1), accuracy: est(0.3 - 1e-13, 0, 1) }),
    limits,
  );
  assert.deepEqual(
    atLimit.rules.map((r) => r.passed),
    [true, true, true],
  );
  const over = checkPoint(
    point({ worst: est(-0.3 - 1e-9, -1, 0), gap: est(0.3 + 1e-9, 0, 1), accuracy: est(0.3 - 1e-9, 0, 1) }),
    limits,
  );
  assert.deepEqual(
    over.rules.map((r) => r.passed),
    [false, false, false],
  );
  assert.equal(over.passed, false);
});

test('gate: a point failing two rules names both, in rule order, joined by "; "', () => {
  const v = checkPoint(point({ worst: est(-0.06, -0.07, 0), accuracy: est(0.7, 0.6, 0.8) }), {
    ...LIMITS,
    judgeOn: 'estimate',
  });
  assert.deepEqual(
    v.rules.map((r) => r.passed),
    [false, true, false],
  );
  assert.equal(
    v.summary,
    'fails: worst-group accuracy drops 6.0 pts, 1.0 pts over the 5.0 pts allowed; accuracy is 70.0%, 10.0 pts under the 80.0% required',
  );
});

test('gate: the default policy is 5 pts worst-group drop, 3 pts gap, no accuracy floor, judged on intervals', () => {
  assert.deepEqual(DEFAULT_POLICY, {
    maxWorstGroupDrop: 0.05,
    maxGapIncrease: 0.03,
    minAccuracy: 0,
    judgeOn: 'interval',
  });
});

test('checkSession: every point in order, each with its own verdict', () => {
  const good = point({ id: 's0.50-ce' });
  const bad = point({ id: 's0.90-pw', gap: est(0.05, 0.04, 0.06) });
  const results = { points: [good, bad] } as SessionResults;
  const checked = checkSession(results, { ...LIMITS, judgeOn: 'interval' });
  assert.deepEqual(
    checked.map((c) => c.point.id),
    ['s0.50-ce', 's0.90-pw'],
  );
  assert.equal(checked[0].point, good);
  assert.deepEqual(
    checked.map((c) => c.verdict.passed),
    [true, false],
  );
  assert.equal(
    checked[1].verdict.summary,
    'fails: the gap between groups grows 6.0 pts at the 95% bound (estimate 5.0 pts), 3.0 pts over the 3.0 pts allowed',
  );
});
