/**
 * `fairprune check`: the fairness gate for CI. Exit 0 when the committed model passes the policy on
 * the data, 1 when a rule fails (each rule, its value, its limit, its group), 2 when the check cannot
 * run (a missing or changed file). Progress and messages go to stderr; the verdict to stdout.
 */
import { parseArgs } from 'util';
import type { BackendPreference } from '../protocol/results';
import { checkCommitted } from '../core/check';
import type { CheckResult } from '../core/check';
import { UserError } from '../core/errors';
import { pct } from '../core/report';
import { BACKENDS } from './defaults';

export const HELP_CHECK = `fairprune check — does a committed pruned model still pass the fairness policy? (for CI)

Usage:
  fairprune check --model DIR_OR_FILE --data D [--policy FILE] [--json] [--backend NAME]

  --model DIR_OR_FILE  the committed folder (fairprune commit's output) or its model.json
  --data FILE          the CSV the model was committed on (its test rows are measured again)
  --policy FILE        a fairprune.policy.json (the fairPrune.gate.* fields) overriding the policy
                       recorded at commit; fields left out keep the recorded values
  --json               print the verdict as JSON on stdout
  --backend NAME       ${BACKENDS.join(' | ')} (default auto)

It verifies every committed file against the sha256 in fairness.json, measures every group on the
test rows with the recorded label mapping, groups, split and preprocessing, compares with the dense
model's committed test predictions, and judges the policy with the same gate as the commit.

Exit codes: 0 the policy holds; 1 a rule failed; 2 the check cannot run (a missing or changed file,
other data than the commit's, bad options).
`;

function verdictJson(r: CheckResult) {
  return {
    status: r.passed ? 'pass' : 'fail',
    exitCode: r.passed ? 0 : 1,
    model: r.modelDir,
    point: r.pointId,
    committedAt: r.committedAt,
    policy: r.policy,
    policySource: r.policySource,
    verifiedFiles: r.verifiedFiles,
    testRows: r.testRows,
    rules: r.rules.map((x) => ({
      rule: x.id,
      passed: x.passed,
      value: x.observed,
      estimate: x.estimate,
      limit: x.limit,
      group: x.group,
      message: x.message,
    })),
    accuracy: r.accuracy,
    worstGroup: { group: r.evaluation.worstGroup.group, accuracy: r.evaluation.worstGroup.accuracy },
    largestGap: r.evaluation.largestGap,
    groups: r.evaluation.groups.map((g) => ({ group: g.group, n: g.n, accuracy: g.accuracy })),
  };
}

export async function cmdCheck(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: {
        model: { type: 'string' },
        data: { type: 'string' },
        policy: { type: 'string' },
        json: { type: 'boolean' },
        backend: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    const message = (e as Error).message.replace(/\. To specify.*$/, '.');
    return cannotRun(new UserError(message, { field: 'fairprune check', fix: 'see fairprune help check' }), false);
  }
  const json = Boolean(values.json);
  if (values.help) {
    console.log(HELP_CHECK);
    return 0;
  }
  try {
    if (typeof values.model !== 'string')
      throw new UserError('this option is required.', {
        field: '--model',
        fix: 'add --model models/net.pruned-s0.50-pw',
      });
    if (typeof values.data !== 'string')
      throw new UserError('this option is required.', {
        field: '--data',
        fix: 'add --data data/eval.csv',
      });
    const backend = (values.backend as string | undefined) ?? 'auto';
    if (!BACKENDS.includes(backend as BackendPreference)) {
      throw new UserError(`unknown backend '${backend}'.`, {
        field: '--backend',
        fix: `use one of ${BACKENDS.join(', ')}.`,
      });
    }
    const r = await checkCommitted(
      {
        model: values.model,
        csvPath: values.data,
        policyFile: values.policy as string | undefined,
        backend: backend as BackendPreference,
      },
      (m) => process.stderr.write(`${m}\n`),
    );
    if (json) console.log(JSON.stringify(verdictJson(r), null, 1));
    else printCheck(r);
    return r.passed ? 0 : 1;
  } catch (e) {
    // Anything that stops the measurement is "cannot run" (2), never a failed rule (1).
    return cannotRun(
      e instanceof UserError ? e : new UserError(`${(e as Error).stack ?? e}`, { field: 'fairprune check' }),
      json,
    );
  }
}

function cannotRun(e: UserError, json: boolean): number {
  if (json)
    console.log(
      JSON.stringify(
        { status: 'error', exitCode: 2, error: e.message, file: e.file ?? null, field: e.field ?? null },
        null,
        1,
      ),
    );
  console.error(`fairprune check: cannot run: ${e.message}`);
  if (process.env.GITHUB_ACTIONS === 'true')
    console.log(`::error title=fairprune check cannot run::${annotation(e.message)}`);
  return 2;
}

/** GitHub Actions workflow commands take one line; %, CR and LF are escaped. */
const annotation = (s: string) => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');

function printCheck(r: CheckResult): void {
  const out = (s: string) => console.log(s);
  out(`fairprune check: ${r.modelDir} (point ${r.pointId}, committed ${r.committedAt})`);
  out(`files: ${r.verifiedFiles.length} committed file(s) match fairness.json (sha256)`);
  const worst = r.evaluation.worstGroup;
  out(
    `measured: ${r.testRows} test rows; ` +
      `accuracy ${pct(r.accuracy.measured)} ` +
      `(committed ${pct(r.accuracy.committed)}); ` +
      `worst group ${worst.group} ${pct(worst.accuracy.value)}`,
  );
  out(`policy: ${r.policySource}; judged on ${r.policy.judgeOn === 'interval' ? '95% intervals' : 'estimates'}`);
  const fmt = (id: string, x: number) => (id === 'min-accuracy' ? pct(x) : `${(x * 100).toFixed(1)} pts`);
  for (const x of r.rules) {
    out(
      `  ${x.passed ? 'pass' : 'FAIL'}  ${x.id}: ` +
        `value ${fmt(x.id, x.observed)}, limit ${fmt(x.id, x.limit)}, ` +
        `group ${x.group} — ${x.message}`,
    );
    if (!x.passed && process.env.GITHUB_ACTIONS === 'true')
      out(`::error title=fairness gate: ${x.id}::${annotation(`${x.group}: ${x.message}`)}`);
  }
  const failed = r.rules.filter((x) => !x.passed).length;
  out(
    r.passed
      ? 'RESULT: PASS — the fairness policy holds'
      : `RESULT: FAIL — ${failed} of ${r.rules.length} rule(s) failed`,
  );
}
