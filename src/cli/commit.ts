/**
 * `fairprune commit`: the editor's "Commit Pruned Model…" from a shell. The same gate, the same
 * atomic write of the pruned model with fairness.json and FAIRNESS.md beside the dense model, the
 * same refusal (exit 1, each failed rule with how far it missed) and the same override with a reason.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import { commitPoint, GateRefusedError } from '../core/commit';
import { DEFAULT_POLICY } from '../shared/gate';
import type { GateVerdict } from '../shared/gate';
import { readPolicyFile } from '../core/policy-file';
import { readSession } from '../core/session-store';
import { UserError } from '../core/errors';

export const HELP_COMMIT = `fairprune commit — commit a pruned point of a session: the model, fairness.json and
FAIRNESS.md

Usage:
  fairprune commit --session DIR --point ID [--to DIR] [--policy FILE] [--override REASON] [--json]

  --session DIR        the session folder (<out>/sessions/<id>, where results.json is)
  --point ID           the point to commit, e.g. s0.50-pw (the ids are in results.json and metrics.csv)
  --to DIR             a new folder for it (default: beside the dense model, <model>.pruned-<point>)
  --policy FILE        the fairness policy (fairprune.policy.json: the fairPrune.gate.* fields);
                       default: the default settings (worst group −5 pts, gap +3 pts, judged on 95% intervals)
  --override REASON    commit a point that fails the policy anyway; the reason is recorded with the model
  --json               print the commit (folder, files, verdict) as JSON

Exit codes: 0 committed; 1 refused by the fairness gate (each failed rule is printed) or bad input.
`;

export function printVerdict(verdict: GateVerdict, out: (line: string) => void): void {
  for (const r of verdict.rules) out(`  ${r.passed ? 'pass' : 'FAIL'}  ${r.message}`);
}

export async function cmdCommit(argv: string[], cwd = process.cwd()): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: {
        session: { type: 'string' },
        point: { type: 'string' },
        to: { type: 'string' },
        policy: { type: 'string' },
        override: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    throw new UserError((e as Error).message.replace(/\. To specify.*$/, '.'), {
      field: 'fairprune commit',
      fix: 'see fairprune help commit',
    });
  }
  if (values.help) {
    console.log(HELP_COMMIT);
    return 0;
  }
  if (typeof values.session !== 'string')
    throw new UserError('this option is required.', {
      field: '--session',
      fix: 'add --session .fairprune/sessions/<id>',
    });
  if (typeof values.point !== 'string')
    throw new UserError('this option is required.', {
      field: '--point',
      fix: 'add --point s0.50-pw (an id from results.json)',
    });
  const sessionDir = path.resolve(cwd, values.session);
  const session = readSession(sessionDir);
  if (!session) {
    throw new UserError(fs.existsSync(sessionDir) ? 'holds no readable results.json.' : 'does not exist.', {
      file: sessionDir,
      field: '--session',
      fix: 'give a session folder, <out>/sessions/<id>, as fairprune run printed it.',
    });
  }
  const policy =
    typeof values.policy === 'string'
      ? readPolicyFile(path.resolve(cwd, values.policy), DEFAULT_POLICY)
      : DEFAULT_POLICY;
  const override = typeof values.override === 'string' ? { reason: values.override } : undefined;
  const targetDir = typeof values.to === 'string' ? path.resolve(cwd, values.to) : undefined;
  if (targetDir && fs.existsSync(targetDir)) {
    throw new UserError('already exists; a commit never overwrites a folder.', {
      file: targetDir,
      field: '--to',
      fix: 'give a new folder, or remove the old one first.',
    });
  }
  try {
    const result = commitPoint({
      sessionDir,
      results: session.results,
      pointId: values.point,
      policy,
      override,
      targetDir,
    });
    if (values.json) {
      const { dir, files, verdict } = result;
      console.log(JSON.stringify({ committed: true, dir, files, decision: result.record.decision, verdict }, null, 1));
    } else {
      const how = result.record.decision === 'passed' ? 'passed the fairness gate' : 'by override';
      console.log(`committed ${values.point} (${how}) to ${result.dir}`);
      printVerdict(result.verdict, console.log);
      console.log(`files: ${result.files.join(', ')}`);
    }
    return 0;
  } catch (e) {
    if (!(e instanceof GateRefusedError)) throw e;
    if (values.json)
      console.log(JSON.stringify({ committed: false, point: values.point, verdict: e.verdict }, null, 1));
    else {
      console.error(`refused: point ${values.point} fails the fairness gate and was not committed`);
      printVerdict(e.verdict, console.error);
      console.error(
        'Pick a point that passes, relax the policy (--policy FILE), or commit anyway with --override "REASON".',
      );
    }
    return 1;
  }
}
