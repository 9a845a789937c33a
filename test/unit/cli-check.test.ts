/** `fairprune commit` and `fairprune check` as CI runs them: real processes, real files, exit codes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { runSession } from '../../src/core/session';
import { repoRoot, tempDir } from '../helpers';
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

test('commit a point from the CLI, then check passes (0), fails when the policy is tightened (1), and cannot run when a committed byte changes (2)', async () => {
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
  assert.deepEqual(Object.keys(record.hashes.files).sort(), [
    'dense-reference.f32',
    'fairprune.preprocessing.json',
    'model.json',
    'weights.bin',
  ]);
  assert.equal(record.data.split.assignment, results.data.split.assignment);

  // Passes under the policy recorded at commit; the numbers are measured again, the same.
  const pass = fairprune(['check', '--model', committed, '--data', csv, '--backend', 'cpu']);
  assert.equal(pass.code, 0, pass.stdout + pass.stderr);
  assert.match(pass.stdout, /4 committed file\(s\) match fairness\.json/);
  assert.match(pass.stdout, /RESULT: PASS/);
  const passJson = JSON.parse(
    fairprune(['check', '--model', path.join(committed, 'model.json'), '--data', csv, '--backend', 'cpu', '--json'])
      .stdout,
  );
  assert.equal(passJson.status, 'pass');
  assert.equal(passJson.accuracy.measured, point.evaluation.accuracy.value);
  assert.deepEqual(
    passJson.groups.map((g: { accuracy: unknown }) => g.accuracy),
    point.evaluation.groups.map((g) => g.accuracy),
  );

  // Tightened past the point's numbers: exit 1, with the rule, its value, its limit and the group.
  const tight = path.join(dir, 'fairprune.policy.json');
  const limit = Math.min(1, point.evaluation.accuracy.value + 0.01);
  fs.writeFileSync(
    tight,
    JSON.stringify({ 'fairPrune.gate.minAccuracy': limit, 'fairPrune.gate.judgeOn': 'estimate' }),
  );
  const fail = fairprune(['check', '--model', committed, '--data', csv, '--policy', tight, '--backend', 'cpu']);
  assert.equal(fail.code, 1, fail.stdout + fail.stderr);
  assert.match(fail.stdout, /FAIL {2}min-accuracy: value [\d.]+%, limit [\d.]+%, group all/);
  assert.match(fail.stdout, /RESULT: FAIL — 1 of 3 rule\(s\) failed/);
  const failJson = JSON.parse(
    fairprune(['check', '--model', committed, '--data', csv, '--policy', tight, '--backend', 'cpu', '--json']).stdout,
  );
  assert.equal(failJson.status, 'fail');
  const rule = failJson.rules.find((r: { rule: string }) => r.rule === 'min-accuracy');
  assert.deepEqual([rule.passed, rule.limit, rule.group], [false, limit, 'all']);
  assert.equal(
    failJson.rules.find((r: { rule: string }) => r.rule === 'worst-group-drop').group,
    point.evaluation.worstGroup.group,
  );

  // One byte of the committed weights changed: exit 2, naming the file.
  const weights = path.join(committed, 'weights.bin');
  const bytes = fs.readFileSync(weights);
  bytes[7] ^= 1;
  fs.writeFileSync(weights, bytes);
  const changed = fairprune(['check', '--model', committed, '--data', csv, '--backend', 'cpu']);
  assert.equal(changed.code, 2, changed.stdout + changed.stderr);
  assert.match(changed.stderr, /cannot run: .*weights\.bin.*has changed since the commit/);
  assert.equal(JSON.parse(fairprune(['check', '--model', committed, '--data', csv, '--json']).stdout).status, 'error');
  bytes[7] ^= 1;
  fs.writeFileSync(weights, bytes);
  assert.equal(fairprune(['check', '--model', committed, '--data', csv, '--backend', 'cpu']).code, 0);

  // Other data than the commit's, a missing weights file, no fairness.json: exit 2.
  const other = path.join(dir, 'other.csv');
  fs.writeFileSync(other, fs.readFileSync(csv, 'utf8').replace(/approved/, 'denied'));
  const otherData = fairprune(['check', '--model', committed, '--data', other, '--backend', 'cpu']);
  assert.equal(otherData.code, 2);
  assert.match(otherData.stderr, /other\.csv.*is not the data the model was committed on/);
  fs.rmSync(weights);
  assert.match(
    fairprune(['check', '--model', committed, '--data', csv]).stderr,
    /weights\.bin.*is missing from the committed model/,
  );
  const bare = fairprune(['check', '--model', path.dirname(modelPath), '--data', csv]);
  assert.equal(bare.code, 2);
  assert.match(bare.stderr, /fairness\.json.*is missing/);
});
