/**
 * Durability: files and folders are flushed before and after the rename that publishes them,
 * temporaries of processes that died are cleaned at the next start, and SIGTERM ends a run like
 * Ctrl-C (the session is marked cancelled, not left running).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawn, spawnSync } from 'child_process';
import { cleanStaleSessionTemps, writeFileAtomic, writeFolderAtomic } from '../../src/core/atomic';
import { tempDir } from '../helpers';
import { cliPath, writeCsv, writeSmallKerasH5 } from '../untrusted-fixtures';

/** Records, in order, which paths were fsynced and renamed while `fn` runs. */
function recordSyncs(fn: () => void): string[] {
  const events: string[] = [];
  const fdPaths = new Map<number, string>();
  const real = { openSync: fs.openSync, fsyncSync: fs.fsyncSync, renameSync: fs.renameSync };
  // the module object itself (an `import * as` namespace has getters only); atomic.ts reads through to it

  const mutable = require('fs') as Record<string, unknown>;
  mutable.openSync = (p: fs.PathLike, ...rest: unknown[]) => {
    const fd = (real.openSync as (...a: unknown[]) => number)(p, ...rest);
    fdPaths.set(fd, String(p));
    return fd;
  };
  mutable.fsyncSync = (fd: number) => {
    events.push(`fsync ${fdPaths.get(fd)}`);
    real.fsyncSync(fd);
  };
  mutable.renameSync = (a: fs.PathLike, b: fs.PathLike) => {
    events.push(`rename ${String(b)}`);
    real.renameSync(a, b);
  };
  try {
    fn();
  } finally {
    Object.assign(mutable, real);
  }
  return events;
}

test('writeFileAtomic flushes the file, then the folder, renames, then flushes the folder again', () => {
  const dir = tempDir();
  const target = path.join(dir, 'results.json');
  const events = recordSyncs(() => writeFileAtomic(target, '{"a":1}'));
  assert.equal(fs.readFileSync(target, 'utf8'), '{"a":1}');
  const rename = events.indexOf(`rename ${target}`);
  assert.ok(rename > 0, events.join('\n'));
  assert.match(events[0], /^fsync .*\.results\.json\.\d+\.[0-9a-f]{8}\.tmp$/, 'the data first');
  assert.ok(events.slice(1, rename).includes(`fsync ${dir}`), 'the folder before the rename');
  assert.deepEqual(events.slice(rename + 1), [`fsync ${dir}`], 'and after it');
});

test('writeFolderAtomic flushes every file and folder before the rename and the parent after it', () => {
  const parent = tempDir();
  const target = path.join(parent, 'model');
  const events = recordSyncs(() =>
    writeFolderAtomic(target, { 'model.json': '{}', 'weights.bin': new Uint8Array(8), 'shrunk/model.json': '{}' }),
  );
  const rename = events.indexOf(`rename ${target}`);
  const before = events.slice(0, rename);
  for (const f of ['model.json', 'weights.bin', path.join('shrunk', 'model.json')]) {
    assert.ok(
      before.some((e) => e.startsWith('fsync ') && e.endsWith(path.sep + f) && e.includes('.tmp')),
      `${f} flushed: ${events.join('\n')}`,
    );
  }
  assert.ok(
    before.some((e) => /\.tmp[/\\]shrunk$/.test(e)),
    'the sub-folder flushed',
  );
  assert.ok(
    before.some((e) => /\.tmp$/.test(e)),
    'the new folder flushed',
  );
  assert.ok(before.includes(`fsync ${parent}`), 'the parent flushed before the rename');
  assert.deepEqual(events.slice(rename + 1), [`fsync ${parent}`], 'and after it');
});

test('temporaries of a process that died are removed at start; those of a live process stay', () => {
  const out = tempDir();
  const session = path.join(out, 'sessions', '20260101-000000-abcd');
  fs.mkdirSync(path.join(session, 'points'), { recursive: true });
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // a process that has ended
  const stale = [
    path.join(session, `.results.json.${dead}.0123abcd.tmp`),
    path.join(session, 'points', `.s0.50-ce.${dead}.89abcdef.tmp`),
    path.join(out, 'sessions', `.other.${dead}.00000000.tmp`),
  ];
  fs.writeFileSync(stale[0], 'half a file');
  fs.mkdirSync(stale[1]);
  fs.writeFileSync(path.join(stale[1], 'weights.bin'), 'half a model');
  fs.writeFileSync(stale[2], 'x');
  const live = path.join(session, `.results.json.${process.pid}.fedcba98.tmp`);
  fs.writeFileSync(live, 'being written');
  const kept = path.join(session, 'results.json');
  fs.writeFileSync(kept, '{}');
  const removed = cleanStaleSessionTemps(out);
  assert.deepEqual(removed.sort(), stale.map((s) => path.basename(s)).sort());
  for (const s of stale) assert.equal(fs.existsSync(s), false, s);
  assert.ok(fs.existsSync(live), "a running process's temporary is kept");
  assert.ok(fs.existsSync(kept));
  assert.deepEqual(cleanStaleSessionTemps(path.join(out, 'nowhere')), []);
});

test('SIGTERM ends a run like Ctrl-C: exit 130 and the session is marked cancelled', async () => {
  const dir = tempDir();
  await writeSmallKerasH5(path.join(dir, 'model.h5'));
  writeCsv(path.join(dir, 'data.csv'), 400);
  const child = spawn(
    process.execPath,
    [
      cliPath,
      'run',
      '--model',
      'model.h5',
      '--data',
      'data.csv',
      '--label',
      'label',
      '--group',
      'group',
      '--sparsity',
      '0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9',
      '--loss',
      'ce,pw',
      '--epochs',
      '400',
      '--backend',
      'cpu',
      '--workers',
      '1',
      '--bootstrap',
      '10',
      '--out',
      'out',
    ],
    { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // wait until the session has written its results.json (it is running), then terminate it
  const sessions = path.join(dir, 'out', 'sessions');
  const resultsFile = (): string | undefined => {
    const ids = fs.existsSync(sessions) ? fs.readdirSync(sessions).filter((n) => !n.startsWith('.')) : [];
    const f = ids[0] && path.join(sessions, ids[0], 'results.json');
    return f && fs.existsSync(f) ? f : undefined;
  };
  while (!resultsFile() && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
  assert.equal(child.exitCode, null, `the run ended before it could be terminated: ${stderr}`);
  child.kill('SIGTERM');
  const code = await exited;
  assert.equal(code, 130, stderr);
  assert.match(stderr, /cancelled: the finished points are kept in the session folder/);
  const results = JSON.parse(fs.readFileSync(resultsFile()!, 'utf8'));
  assert.equal(results.status, 'cancelled');
});
