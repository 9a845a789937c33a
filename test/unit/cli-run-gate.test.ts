/** `fairprune run` for scripts and CI: --json prints the results, --progress json one event per line, --gate fails the run. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import type { SessionResults } from '../../src/protocol/results';
import { repoRoot, tempDir } from '../helpers';
import { makeFixture } from '../session-fixture';

const cli = path.join(repoRoot, 'out', 'src', 'cli', 'main.js');

function fairprune(args: string[], cwd = repoRoot) {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('run --json --progress json --gate: results on stdout, events on stderr, exit 1 when no point passes', async () => {
  const dir = tempDir();
  const { csv, modelPath } = await makeFixture(dir, 400, 'plain');
  const strict = path.join(dir, 'strict.json');
  fs.writeFileSync(strict, JSON.stringify({ 'fairPrune.gate.minAccuracy': 1, 'fairPrune.gate.maxWorstGroupDrop': 0 }));
  const lenient = path.join(dir, 'lenient.json');
  fs.writeFileSync(lenient, JSON.stringify({ maxWorstGroupDrop: 1, maxGapIncrease: 1, minAccuracy: 0 }));
  const args = [
    'run',
    '--model',
    modelPath,
    '--data',
    csv,
    '--label',
    'decision',
    '--group',
    'region',
    '--sparsity',
    '0.5',
    '--loss',
    'ce',
    '--epochs',
    '1',
    '--backend',
    'cpu',
    '--bootstrap',
    '50',
    '--workers',
    '1',
    '--out',
    path.join(dir, 'fp'),
  ];

  const failing = fairprune([...args, '--json', '--progress', 'json', '--gate', '--policy', strict], dir);
  assert.equal(failing.code, 1, failing.stderr);
  const results = JSON.parse(failing.stdout) as SessionResults;
  assert.equal(results.status, 'completed');
  assert.equal(results.recommendation?.pointId, null);
  assert.equal(results.recommendation?.policy.minAccuracy, 1);
  const lines = failing.stderr.trim().split('\n');
  const events = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  assert.deepEqual([...new Set(events.map((e) => e.type))].sort(), [
    'dense',
    'finished',
    'log',
    'point',
    'progress',
    'started',
  ]);
  assert.match(lines[lines.length - 1], /^gate: FAILED — No point passes the fairness gate/);

  const passing = fairprune([...args, '--gate', '--policy', lenient], dir);
  assert.equal(passing.code, 0, passing.stderr);
  assert.match(passing.stdout, /Recommended: s0\.50-ce/);
  assert.match(passing.stderr, /gate: passed \(s0\.50-ce\)/);
  // Without --gate a run that no point passes still exits 0; a bad --progress is refused before anything runs.
  assert.equal(fairprune([...args, '--policy', strict], dir).code, 0);
  assert.match(fairprune([...args, '--progress', 'xml'], dir).stderr, /'--progress': unknown progress format 'xml'/);
});
