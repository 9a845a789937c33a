/**
 * The `fairprune` command as `npm install -g` / `npm link` installs it: a symlink in a bin folder to
 * bin/fairprune, which loads the bundle dist/cli.js. The command must print, run and exit with the
 * CLI's status (a failing run must not look like a success to a CI script).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { repoRoot, tempDir } from '../helpers';

const bundle = path.join(repoRoot, 'dist', 'cli.js');

/** dist/cli.js as `npm run build` makes it, rebuilt when a CLI source is newer. */
function ensureBuilt(): void {
  const newest = Math.max(
    ...['src/cli/main.ts', 'bin/fairprune'].map((f) => fs.statSync(path.join(repoRoot, f)).mtimeMs),
  );
  if (fs.existsSync(bundle) && fs.statSync(bundle).mtimeMs >= newest) return;
  const r = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(r.status, 0, `build: ${r.stderr}`);
}

test('the installed fairprune command prints help, exits 0, and a failing run exits 1', () => {
  ensureBuilt();
  const prefix = tempDir('fairprune-prefix-');
  const npm = spawnSync(
    'npm',
    [
      'install',
      '-g',
      '--prefix',
      prefix,
      '--offline',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
      '.',
    ],
    { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 },
  );
  assert.equal(npm.status, 0, `npm install -g: ${npm.stderr}`);
  const command = path.join(prefix, 'bin', 'fairprune');
  assert.ok(fs.lstatSync(command).isSymbolicLink(), 'npm installs the command as a symlink');
  const work = tempDir();
  const run = (...args: string[]) => spawnSync(command, args, { cwd: work, encoding: 'utf8', timeout: 120_000 });

  const help = run('help');
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^fairprune \d+\.\d+\.\d+ — prune a neural network/);
  assert.match(help.stdout, /fairprune run +--model M --data D/);
  const runHelp = run('run', '--help');
  assert.equal(runHelp.status, 0);
  assert.match(runHelp.stdout, /--model FILE/);

  const missing = run(
    'run',
    '--model',
    'nowhere/model.json',
    '--data',
    'd.csv',
    '--label',
    'y',
    '--group',
    'g',
    '--backend',
    'cpu',
  );
  assert.equal(missing.status, 1, 'a failing run exits 1');
  assert.match(missing.stderr, /^error: .*nowhere\/model\.json: no such file\. Fix: /m);
  assert.doesNotMatch(missing.stderr, /\n\s+at /, 'no stack trace');
  const unknown = run('prune');
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /^error: 'fairprune': unknown command 'prune'\./);
  const bare = run();
  assert.equal(bare.status, 2, 'no command: usage, exit 2');
  assert.match(bare.stdout, /Usage:/);
  fs.rmSync(prefix, { recursive: true, force: true });
});

test('node dist/cli.js still runs as the main module', () => {
  ensureBuilt();
  const r = spawnSync(process.execPath, [bundle, '--version'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^\d+\.\d+\.\d+/);
});
