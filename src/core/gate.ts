/**
 * The fairness gate: may this pruned model replace the dense one? Each rule compares the pruned
 * model with the dense one on the test split. With `judgeOn: 'interval'` (the default) a rule is
 * judged on the pessimistic end of its 95% bootstrap interval, not on the point estimate: a pruned
 * model passes only when the data can't plausibly show a larger harm than the policy allows.
 */
import type { PrunedPoint, SessionResults } from '../protocol/results';

export interface FairnessPolicy {
  /** Largest allowed drop of worst-group accuracy against the dense model (0.05 = 5 points). */
  maxWorstGroupDrop: number;
  /** Largest allowed increase of the largest accuracy gap between groups. */
  maxGapIncrease: number;
  /** Smallest allowed overall accuracy of the pruned model. */
  minAccuracy: number;
  judgeOn: 'interval' | 'estimate';
}

export const DEFAULT_POLICY: FairnessPolicy = { maxWorstGroupDrop: 0.05, maxGapIncrease: 0.03, minAccuracy: 0, judgeOn: 'interval' };

export interface GateRule {
  id: 'worst-group-drop' | 'gap-increase' | 'min-accuracy';
  /** What the rule says, for a person. */
  description: string;
  limit: number;
  /** The value judged (the interval's pessimistic end, or the estimate). */
  observed: number;
  /** The point estimate, always reported. */
  estimate: number;
  passed: boolean;
  /** Why it failed and by how much, or that it passed. */
  message: string;
}

export interface GateVerdict {
  passed: boolean;
  policy: FairnessPolicy;
  rules: GateRule[];
  /** One line: "passes" or which rules failed by how much. */
  summary: string;
}

const pts = (x: number) => `${(x * 100).toFixed(1)} pts`;
const pc = (x: number) => `${(x * 100).toFixed(1)}%`;

export function checkPoint(point: PrunedPoint, policy: FairnessPolicy): GateVerdict {
  const interval = policy.judgeOn === 'interval';
  const c = point.comparison;
  const rules: GateRule[] = [];

  // worst-group drop: −change; pessimistic end = −(low end of the change)
  const drop = -c.worstGroupChange.value;
  const dropJudged = interval ? -c.worstGroupChange.low : drop;
  rules.push({
    id: 'worst-group-drop',
    description: `worst-group accuracy may drop at most ${pts(policy.maxWorstGroupDrop)}`,
    limit: policy.maxWorstGroupDrop,
    observed: dropJudged,
    estimate: drop,
    passed: dropJudged <= policy.maxWorstGroupDrop + 1e-12,
    message:
      dropJudged <= policy.maxWorstGroupDrop + 1e-12
        ? `worst-group drop ${pts(dropJudged)}${interval ? ' (95% bound)' : ''} is within ${pts(policy.maxWorstGroupDrop)}`
        : `worst-group accuracy drops ${pts(dropJudged)}${interval ? ` at the 95% bound (estimate ${pts(drop)})` : ''}, ${pts(dropJudged - policy.maxWorstGroupDrop)} over the ${pts(policy.maxWorstGroupDrop)} allowed`,
  });

  const gap = c.gapChange.value;
  const gapJudged = interval ? c.gapChange.high : gap;
  rules.push({
    id: 'gap-increase',
    description: `the largest gap between groups may grow at most ${pts(policy.maxGapIncrease)}`,
    limit: policy.maxGapIncrease,
    observed: gapJudged,
    estimate: gap,
    passed: gapJudged <= policy.maxGapIncrease + 1e-12,
    message:
      gapJudged <= policy.maxGapIncrease + 1e-12
        ? `gap increase ${pts(gapJudged)}${interval ? ' (95% bound)' : ''} is within ${pts(policy.maxGapIncrease)}`
        : `the gap between groups grows ${pts(gapJudged)}${interval ? ` at the 95% bound (estimate ${pts(gap)})` : ''}, ${pts(gapJudged - policy.maxGapIncrease)} over the ${pts(policy.maxGapIncrease)} allowed`,
  });

  const acc = point.evaluation.accuracy.value;
  const accJudged = interval ? point.evaluation.accuracy.low : acc;
  rules.push({
    id: 'min-accuracy',
    description: `overall accuracy must be at least ${pc(policy.minAccuracy)}`,
    limit: policy.minAccuracy,
    observed: accJudged,
    estimate: acc,
    passed: accJudged >= policy.minAccuracy - 1e-12,
    message:
      accJudged >= policy.minAccuracy - 1e-12
        ? `accuracy ${pc(accJudged)}${interval ? ' (95% bound)' : ''} meets ${pc(policy.minAccuracy)}`
        : `accuracy is ${pc(accJudged)}${interval ? ` at the 95% bound (estimate ${pc(acc)})` : ''}, ${pts(policy.minAccuracy - accJudged)} under the ${pc(policy.minAccuracy)} required`,
  });

  const failed = rules.filter((r) => !r.passed);
  return {
    passed: failed.length === 0,
    policy,
    rules,
    summary: failed.length === 0 ? `passes the fairness gate (${policy.judgeOn === 'interval' ? 'judged on 95% intervals' : 'judged on estimates'})` : `fails: ${failed.map((r) => r.message).join('; ')}`,
  };
}

/** Every point of a session with its verdict. */
export function checkSession(results: SessionResults, policy: FairnessPolicy): Array<{ point: PrunedPoint; verdict: GateVerdict }> {
  return results.points.map((point) => ({ point, verdict: checkPoint(point, policy) }));
}
