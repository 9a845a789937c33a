/**
 * The fairness gate: may this pruned model replace the dense one? Each rule compares the pruned
 * model with the dense one on the test split. With `judgeOn: 'interval'` (the default) a rule is
 * judged on the pessimistic end of its 95% bootstrap interval, not on the point estimate: a pruned
 * model passes only when the data can't plausibly show a larger harm than the policy allows.
 */
import type { PrunedPoint, Recommendation, SessionResults } from '../protocol/results';
import { GROUP_OBJECTIVES } from '../protocol/results';
import type { FairnessPolicy, GateRule, GateVerdict } from '../protocol/gate';

export type { FairnessPolicy, GateRule, GateVerdict } from '../protocol/gate';
export { DEFAULT_POLICY } from '../protocol/defaults';

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
        ? `worst-group drop ${pts(dropJudged)}${interval ? ' (95% bound)' : ''} ` +
          `is within ${pts(policy.maxWorstGroupDrop)}`
        : `worst-group accuracy drops ${pts(dropJudged)}${atBound(interval, pts(drop))}, ` +
          `${pts(dropJudged - policy.maxWorstGroupDrop)} over the ${pts(policy.maxWorstGroupDrop)} allowed`,
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
        : `the gap between groups grows ${pts(gapJudged)}${atBound(interval, pts(gap))}, ` +
          `${pts(gapJudged - policy.maxGapIncrease)} over the ${pts(policy.maxGapIncrease)} allowed`,
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
        : `accuracy is ${pc(accJudged)}${atBound(interval, pc(acc))}, ` +
          `${pts(policy.minAccuracy - accJudged)} under the ${pc(policy.minAccuracy)} required`,
  });

  const failed = rules.filter((r) => !r.passed);
  return {
    passed: failed.length === 0,
    policy,
    rules,
    summary:
      failed.length === 0
        ? 'passes the fairness gate ' +
          `(${policy.judgeOn === 'interval' ? 'judged on 95% intervals' : 'judged on estimates'})`
        : `fails: ${failed.map((r) => r.message).join('; ')}`,
  };
}

/** Every point of a session with its verdict. */
/** ' at the 95% bound (estimate …)' when the gate judges on the interval's pessimistic end. */
function atBound(interval: boolean, estimate: string): string {
  return interval ? ` at the 95% bound (estimate ${estimate})` : '';
}

export function checkSession(
  results: SessionResults,
  policy: FairnessPolicy,
): Array<{ point: PrunedPoint; verdict: GateVerdict }> {
  return results.points.map((point) => ({ point, verdict: checkPoint(point, policy) }));
}

/** Points the gate and the recommendation consider: the first fine-tuning run of each sparsity × loss
 *  (with `--seeds N`, runs 2…N are spread, not models to commit). */
export function committablePoints(results: SessionResults): PrunedPoint[] {
  return results.points.filter((p) => !p.run || p.run === 1);
}

/**
 * The answer to "how far can I prune before a group pays?": the sparsest point, over every loss, that
 * passes the gate under `policy` (at equal sparsity, the one with the best worst-group accuracy), with
 * the other losses that pass at that sparsity as runners-up. When none passes, which rule failed first
 * at the lowest sparsity (for its best point).
 */
export function recommendPoint(results: SessionResults, policy: FairnessPolicy): Recommendation {
  const checked = committablePoints(results).map((point) => ({ point, verdict: checkPoint(point, policy) }));
  const better = (a: PrunedPoint, b: PrunedPoint) =>
    b.targetSparsity - a.targetSparsity ||
    b.evaluation.worstGroup.accuracy.value - a.evaluation.worstGroup.accuracy.value;
  const passing = checked
    .filter((c) => c.verdict.passed)
    .map((c) => c.point)
    .sort(better);
  if (passing.length) {
    const best = passing[0];
    const runnersUp = passing.filter((p) => p !== best && p.targetSparsity === best.targetSparsity);
    const also = runnersUp.length
      ? `; ${runnersUp.map((p) => p.loss).join(', ')} also pass${runnersUp.length === 1 ? 'es' : ''} there`
      : '';
    return {
      policy,
      pointId: best.id,
      sparsity: best.targetSparsity,
      loss: best.loss,
      runnersUp: runnersUp.map((p) => p.id),
      sentence:
        `Recommended: ${best.id} — ${pc(best.targetSparsity)} sparsity ` +
        `with ${best.loss} is the sparsest point that passes the ` +
        `fairness gate (worst group ${best.evaluation.worstGroup.group} ` +
        `at ${pc(best.evaluation.worstGroup.accuracy.value)})${also}.`,
    };
  }
  if (!checked.length) return { policy, pointId: null, runnersUp: [], sentence: 'No pruned point yet.' };
  const lowest = Math.min(...checked.map((c) => c.point.targetSparsity));
  const first = checked.filter((c) => c.point.targetSparsity === lowest).sort((a, b) => better(a.point, b.point))[0];
  const rule = first.verdict.rules.find((r) => !r.passed)!;
  const groupAware = results.points.some((p) => GROUP_OBJECTIVES.includes(p.loss))
    ? ''
    : ` or a group-aware loss (${GROUP_OBJECTIVES.join(', ')})`;
  return {
    policy,
    pointId: null,
    runnersUp: [],
    failedRule: rule.id,
    failedAt: lowest,
    sentence:
      'No point passes the fairness gate. ' +
      `Already at ${pc(lowest)} sparsity (the lowest tried), ` +
      `the best point (${first.point.id}) fails: ${rule.message}. ` +
      `Try lower sparsities, more fine-tuning epochs${groupAware}.`,
  };
}
