/**
 * How `fairprune run` reports, for scripts and CI: `--json` prints the results JSON itself on stdout
 * (everything else goes to stderr), `--progress json` prints every engine event as one JSON line on
 * stderr, and `--gate` makes the run fail (exit 1) when no point passes the fairness policy
 * (`--policy FILE`, default the default policy), printing the recommended point when one does.
 */
import * as path from 'path';
import type { EngineEvent } from '../protocol/engine';
import type { SessionResults } from '../protocol/results';
import { DEFAULT_POLICY, recommendPoint } from '../shared/gate';
import { readPolicyFile } from '../core/policy-file';
import { UserError } from '../core/errors';
import { printResults, progressPrinter } from './output';

export const RUN_OUTPUT_OPTIONS = {
  json: { type: 'boolean' },
  progress: { type: 'string' },
  gate: { type: 'boolean' },
  policy: { type: 'string' },
} as const;

export const RUN_OUTPUT_HELP = `\
  --json                print the results JSON itself on stdout; progress and messages go to stderr
  --progress text|json  progress on stderr as text (default) or as one JSON engine event per line
  --gate                exit 1 when no point passes the fairness policy (prints the recommended point when one does)
  --policy FILE         the policy for --gate and the recommendation: a fairprune.policy.json with the
                        fairPrune.gate.* fields (default: worst group −5 pts, gap +3 pts, on 95% intervals)`;

export interface RunOutput {
  emit(e: EngineEvent): void;
  /** Prints the results and returns the exit code. */
  finish(results: SessionResults, resultsPath: string): number;
}

export function runOutput(values: Record<string, unknown>, cwd = process.cwd()): RunOutput {
  const json = values.json === true;
  const progress = (values.progress as string | undefined) ?? 'text';
  if (progress !== 'text' && progress !== 'json') {
    throw new UserError(`unknown progress format '${progress}'.`, {
      field: '--progress',
      fix: 'use --progress text or --progress json.',
    });
  }
  const policy =
    typeof values.policy === 'string'
      ? readPolicyFile(path.resolve(cwd, values.policy), DEFAULT_POLICY)
      : DEFAULT_POLICY;
  const printer =
    progress === 'json' ? (e: EngineEvent) => process.stderr.write(`${JSON.stringify(e)}\n`) : progressPrinter();
  return {
    emit: printer,
    finish(results, resultsPath) {
      // The session records the recommendation under the default policy; a --policy judges again.
      if (policy !== DEFAULT_POLICY) results.recommendation = recommendPoint(results, policy);
      if (json) process.stdout.write(`${JSON.stringify(results, null, 1)}\n`);
      else printResults(results, resultsPath);
      const sentence = results.recommendation?.sentence ?? 'No pruned point yet.';
      if (json && progress === 'text') process.stderr.write(`${sentence}\nResults: ${resultsPath}\n`);
      if (!values.gate) return 0;
      const passed = Boolean(results.recommendation?.pointId);
      process.stderr.write(
        passed ? `gate: passed (${results.recommendation!.pointId})\n` : `gate: FAILED — ${sentence}\n`,
      );
      return passed ? 0 : 1;
    },
  };
}
