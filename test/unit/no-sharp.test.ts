/**
 * The engine on a platform without `sharp`: the bundle the extension ships (dist/engine.js) runs a
 * tabular session in a process where `sharp` and its `@img/*` binaries cannot be resolved, and PNG
 * and JPEG images decode there too (pure JavaScript); only WebP names the missing package.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { fork, spawnSync } from 'child_process';
import type { EngineCommand, EngineMessage } from '../../src/protocol/engine';
import { makeFixture, request } from '../session-fixture';
import { repoRoot, tempDir } from '../helpers';

const engine = path.join(repoRoot, 'dist', 'engine.js');

/** A --require file that makes `sharp` and `@img/*` unresolvable, and notes every attempt in `log`. */
function hideSharp(dir: string, log: string): string {
  const file = path.join(dir, 'hide-sharp.cjs');
  fs.writeFileSync(
    file,
    `const Module = require('module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === 'sharp' || request.startsWith('sharp/') || request.startsWith('@img/')) {
    require('fs').appendFileSync(${JSON.stringify(log)}, request + '\\n');
    const e = new Error("Cannot find module '" + request + "' (hidden by the test)");
    e.code = 'MODULE_NOT_FOUND';
    throw e;
  }
  return resolve.call(this, request, ...rest);
};
`,
  );
  return file;
}

/** Runs one engine command in a forked dist/engine.js with sharp hidden; resolves with its messages and exit code. */
function runEngine(
  command: EngineCommand,
  preload: string,
): Promise<{ messages: EngineMessage[]; code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = fork(engine, [], { execArgv: ['--require', preload], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const messages: EngineMessage[] = [];
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('message', (m: EngineMessage) => messages.push(m));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ messages, code, stderr }));
    child.send(command);
  });
}

test('dist/engine.js runs a tabular session where sharp cannot be resolved, and never asks for it', async () => {
  if (!fs.existsSync(engine)) {
    const b = spawnSync(process.execPath, [path.join(repoRoot, 'scripts', 'build.mjs')], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    assert.equal(b.status, 0, b.stderr);
  }
  const dir = tempDir();
  const { csv, modelPath } = await makeFixture(dir, 300);
  const log = path.join(dir, 'sharp-requests.txt');
  const preload = hideSharp(dir, log);
  // The hook works: a process that asks for sharp fails.
  const probe = spawnSync(process.execPath, ['--require', preload, '-e', "require('sharp')"], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  assert.notEqual(probe.status, 0);
  assert.match(probe.stderr, /hidden by the test/);
  fs.rmSync(log, { force: true });

  const out = path.join(dir, 'out');
  const run = await runEngine(
    {
      type: 'run',
      request: request(modelPath, csv, out, { sparsities: [0.5], losses: ['ce'], epochs: 1, workers: 1 }),
    },
    preload,
  );
  const fatal = run.messages.find((m) => m.type === 'fatal');
  assert.equal(fatal, undefined, fatal && fatal.type === 'fatal' ? fatal.message : '');
  assert.equal(run.code, 0, run.stderr);
  const finished = run.messages.find((m) => m.type === 'event' && m.event.type === 'finished');
  assert.ok(
    finished &&
      finished.type === 'event' &&
      finished.event.type === 'finished' &&
      finished.event.status === 'completed',
    JSON.stringify(finished),
  );
  assert.ok(fs.existsSync(finished.event.resultsPath));
  assert.equal(
    fs.existsSync(log),
    false,
    `the engine asked for ${fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : ''}`,
  );
});

test('without sharp, PNG and JPEG decode (pure JavaScript) and WebP is an error naming the missing package', async () => {
  const sharp = (await import('sharp')).default;
  const dir = tempDir();
  const make = (format: 'png' | 'jpeg' | 'webp') => {
    const image = sharp({ create: { width: 5, height: 4, channels: 3, background: { r: 200, g: 40, b: 10 } } });
    return image[format]({ quality: 100, lossless: true } as never).toFile(path.join(dir, `a.${format}`));
  };
  await Promise.all([make('png'), make('jpeg'), make('webp')]);
  const preload = hideSharp(dir, path.join(dir, 'sharp-requests.txt'));
  const images = path.join(repoRoot, 'out', 'src', 'core', 'data', 'images.js');
  const script = `const { decodeImage } = require(${JSON.stringify(images)});
(async () => {
  for (const f of ['a.png', 'a.jpeg', 'a.webp']) {
    try {
      const img = await decodeImage(require('fs').readFileSync(require('path').join(${JSON.stringify(dir)}, f)));
      console.log(f, img.width, img.height, Array.from(img.rgba.slice(0, 4)).join(' '));
    } catch (e) { console.log(f, 'error:', e.message); }
  }
})();`;
  const r = spawnSync(process.execPath, ['--require', preload, '-e', script], { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines[0], 'a.png 5 4 200 40 10 255');
  const jpeg = lines[1].split(' ').map(Number);
  assert.deepEqual(jpeg.slice(1, 3), [5, 4]);
  assert.ok(Math.abs(jpeg[3] - 200) <= 3 && Math.abs(jpeg[4] - 40) <= 3 && Math.abs(jpeg[5] - 10) <= 3, lines[1]);
  assert.match(lines[2], /^a\.webp error: is a WebP file, and WebP needs the optional sharp package/);
});

test('Try the Demo in dist/engine.js without sharp: the data set and dense model are written, then the session runs on them', async () => {
  const dir = tempDir();
  const preload = hideSharp(dir, path.join(dir, 'sharp-requests.txt'));
  const folder = path.join(dir, 'fair-prune-demo');
  const base = request(
    path.join(folder, 'model', 'model.json'),
    path.join(folder, 'data', 'data.csv'),
    path.join(dir, '.fairprune'),
    {
      data: { label: 'digit', groups: ['ink'], features: undefined, ignore: undefined, splitColumn: undefined },
      sparsities: [0.8],
      losses: ['ce'],
      epochs: 1,
      workers: 1,
      // The editor's engine picks wasm; the fixture's cpu backend would train the demo's CNN in pure JavaScript (minutes).
      backend: 'wasm',
    },
  );
  const run = await runEngine({ type: 'run', request: base, demo: { folder: dir } }, preload);
  const fatal = run.messages.find((m) => m.type === 'fatal');
  assert.equal(fatal, undefined, fatal && fatal.type === 'fatal' ? fatal.message : '');
  assert.equal(run.code, 0, run.stderr);
  const logs = run.messages.flatMap((m) => (m.type === 'event' && m.event.type === 'log' ? [m.event.message] : []));
  assert.ok(
    logs.some((l) => /writing the biased MNIST data set/.test(l)) && logs.some((l) => /training the dense CNN/.test(l)),
    logs.join('\n'),
  );
  const points = run.messages.filter((m) => m.type === 'event' && m.event.type === 'point');
  assert.equal(points.length, 1);
  assert.ok(
    fs.existsSync(path.join(folder, 'model', 'model.json')) &&
      fs.existsSync(path.join(folder, 'data', 'manifest.json')),
  );
  // Nothing else was written into the folder the user picked.
  assert.deepEqual(fs.readdirSync(folder).sort(), ['data', 'model']);
});
