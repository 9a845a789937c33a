/**
 * The fairness gate's policy and verdicts, as the engine writes them and the host and the webviews
 * show them (the rules themselves: src/shared/gate.ts; the default policy: defaults.ts).
 */

/** What a rule is judged on: the pessimistic end of the 95% interval, or the point estimate. */
export const JUDGE_ON = ['interval', 'estimate'] as const;
export type JudgeOn = (typeof JUDGE_ON)[number];

export interface FairnessPolicy {
  /** Largest allowed drop of worst-group accuracy against the dense model (0.05 = 5 points). */
  maxWorstGroupDrop: number;
  /** Largest allowed increase of the largest accuracy gap between groups. */
  maxGapIncrease: number;
  /** Smallest allowed overall accuracy of the pruned model. */
  minAccuracy: number;
  judgeOn: JudgeOn;
}

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
