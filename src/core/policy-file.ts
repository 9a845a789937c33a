/**
 * A fairness policy from a file (`fairprune.policy.json`), for the command line and CI: the same
 * fields as the editor's `fairPrune.gate.*` settings, written either as those setting names
 * (`"fairPrune.gate.maxWorstGroupDrop": 0.05`, as in a settings.json) or bare (`"maxWorstGroupDrop"`).
 * Fields left out keep the base policy's values (the one recorded at commit, or the default).
 */
import * as fs from 'fs';
import type { FairnessPolicy } from '../shared/gate';
import { UserError } from './errors';

export const POLICY_FILE = 'fairprune.policy.json';
const PREFIX = 'fairPrune.gate.';
const FRACTIONS = ['maxWorstGroupDrop', 'maxGapIncrease', 'minAccuracy'] as const;

export function readPolicyFile(file: string, base: FairnessPolicy): FairnessPolicy {
  let doc: unknown;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`cannot read it as JSON (${(e as Error).message}).`, {
      file,
      field: '--policy',
      fix: `give a JSON object such as {"${PREFIX}maxWorstGroupDrop": 0.05, "${PREFIX}judgeOn": "interval"}.`,
    });
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new UserError('is not a JSON object.', {
      file,
      field: '--policy',
      fix: `give e.g. {"${PREFIX}maxGapIncrease": 0.03}.`,
    });
  }
  const policy: FairnessPolicy = { ...base };
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const name = key.startsWith(PREFIX) ? key.slice(PREFIX.length) : key;
    if ((FRACTIONS as readonly string[]).includes(name)) {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
        throw new UserError(`'${JSON.stringify(value)}' is not a fraction between 0 and 1.`, {
          file,
          field: key,
          fix: `give e.g. "${key}": 0.05 (5 points).`,
        });
      }
      policy[name as (typeof FRACTIONS)[number]] = value;
    } else if (name === 'judgeOn') {
      if (value !== 'interval' && value !== 'estimate') {
        throw new UserError(`'${JSON.stringify(value)}' is neither "interval" nor "estimate".`, {
          file,
          field: key,
          fix: `give "${key}": "interval".`,
        });
      }
      policy.judgeOn = value;
    } else {
      throw new UserError('is not a field of the fairness policy.', {
        file,
        field: key,
        fix: `use ${[...FRACTIONS, 'judgeOn'].map((f) => PREFIX + f).join(', ')}.`,
      });
    }
  }
  return policy;
}
