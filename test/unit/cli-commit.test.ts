/** `fairprune commit`: the editor's Commit from a shell, as a real process. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { runSession } from '../../src/core/session';
import { readPolicyFile } from '../../src/core/policy-file';
import { DEFAULT_POLICY } from '../../src/shared/gate';
import { repoRoot, expectUserError, tempDir } from '../helpers';
import { makeFixture, request } from '../session-fixture';

const cli = path.join(repoRoot, 'out', 'src', 'cli', 'main.js');

function fairprune(args: string[], cwd = repoRoot) {
  const r = spawnSync(process.execPath, [cli, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 240_000,
    env: { ...process.env, GITHUB_ACTIONS: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('policy file: settings names or bare names, fields left out keep the base, bad fields named', () => {
  const dir = tempDir();
  const file = path.join(dir, 'fairprune.policy.json');
  fs.writeFileSync(file, JSON.stringify({ 'fairPrune.gate.minAccuracy': 0.7, judgeOn: 'estimate' }));
  assert.deepEqual(readPolicyFile(file, DEFAULT_POLICY), { ...DEFAULT_POLICY, minAccuracy: 0.7, judgeOn: 'estimate' });
  fs.writeFileSync(file, JSON.stringify({ 'fairPrune.gate.maxGapIncrease': 3 }));
  assert.throws(
    () => readPolicyFile(file, DEFAULT_POLICY),
    expectUserError(/'fairPrune\.gate\.maxGapIncrease': '3' is not a fraction/),
  );
  fs.writeFileSync(file, JSON.stringify({ maxGap: 0.1 }));
  assert.throws(
    () => readPolicyFile(file, DEFAULT_POLICY),
    expectUserError(/'maxGap': is not a field of the fairness policy/),
  );
});

test('commit from the CLI: refused with every failed rule (exit 1), overridden with a reason, or committed whole', async () => {
  const dir = tempDir();
  const { csv, modelPath } = await makeFixture(dir, 600);
  const results = await runSession(
    request(modelPath, csv, path.join(dir, '.fairprune'), { sparsities: [0.3], losses: ['pw'], epochs: 1 }),
  );
  const sessionDir = path.join(dir, '.fairprune', 'sessions', results.sessionId);
  const point = results.points[0];
  const lenient = path.join(dir, 'lenient.json');
  fs.writeFileSync(
    lenient,
    JSON.stringify({
      'fairPrune.gate.maxWorstGroupDrop': 1,
      'fairPrune.gate.maxGapIncrease': 1,
      'fairPrune.gate.minAccuracy': 0,
    }),
  );
  const strict = path.join(dir, 'strict.json');
  fs.writeFileSync(strict, JSON.stringify({ minAccuracy: 1, maxWorstGroupDrop: 0, maxGapIncrease: 0 }));

  // A refused commit: exit 1, every failed rule listed with how far it missed, nothing written.
  const refusedDir = path.join(dir, 'refused');
  const refused = fairprune([
    'commit',
    '--session',
    sessionDir,
    '--point',
    point.id,
    '--to',
    refusedDir,
    '--policy',
    strict,
  ]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /refused: point s0\.30-pw fails the fairness gate/);
  assert.match(refused.stderr, /FAIL {2}accuracy is [\d.]+% at the 95% bound .*under the 100\.0% required/);
  assert.ok(!fs.existsSync(refusedDir));
  // The same, overridden with a reason: committed, and the reason recorded.
  const overridden = fairprune([
    'commit',
    '--session',
    sessionDir,
    '--point',
    point.id,
    '--to',
    refusedDir,
    '--policy',
    strict,
    '--override',
    'pilot only',
  ]);
  assert.equal(overridden.code, 0, overridden.stderr);
  const overrideRecord = JSON.parse(fs.readFileSync(path.join(refusedDir, 'fairness.json'), 'utf8'));
  assert.deepEqual([overrideRecord.decision, overrideRecord.override], ['overridden', { reason: 'pilot only' }]);
  // An unknown point names the ones there are.
  assert.match(
    fairprune(['commit', '--session', sessionDir, '--point', 's0.99-ce']).stderr,
    /has no point 's0\.99-ce'.*pick one of s0\.30-pw/,
  );

  const committed = path.join(dir, 'models', 'net.pruned');
  const commit = fairprune([
    'commit',
    '--session',
    sessionDir,
    '--point',
    point.id,
    '--to',
    committed,
    '--policy',
    lenient,
  ]);
  assert.equal(commit.code, 0, commit.stderr);
  assert.match(commit.stdout, /committed s0\.30-pw \(passed the fairness gate\)/);
  const record = JSON.parse(fs.readFileSync(path.join(committed, 'fairness.json'), 'utf8'));
  assert.equal(record.decision, 'passed');
  assert.equal(record.verdict.policy.maxGapIncrease, 1);
  assert.ok(fs.existsSync(path.join(committed, 'weights.bin')) && fs.existsSync(path.join(committed, 'FAIRNESS.md')));
  // --to never overwrites
  assert.match(
    fairprune(['commit', '--session', sessionDir, '--point', point.id, '--to', committed, '--policy', lenient]).stderr,
    /already exists/,
  );
});
