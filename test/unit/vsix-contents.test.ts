/**
 * The .vsix is one package for every platform VS Code runs on: the files `vsce package` would pack
 * (`vsce ls --dependencies`, which applies .vscodeignore) hold no native binary, and they do hold
 * what the engine loads at run time on any platform.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { repoRoot } from '../helpers';

/** Native code for one platform: Node add-ons, shared libraries, prebuilt folders, sharp's per-platform packages. */
const NATIVE = [
  /\.node$/,
  /\.(so|dylib|dll|exe)(\.\d+)*$/i,
  /(^|\/)prebuilds?\//,
  /(^|\/)node_modules\/@img\/sharp-(?!wasm32\/)/,
  /(^|\/)node_modules\/sharp\//,
  /(^|\/)node_modules\/@tensorflow\/tfjs-node(-gpu)?\//,
];

test('the .vsix holds no native binary for any platform, and the pure-JavaScript decoders the engine loads', () => {
  const vsce = path.join(repoRoot, 'node_modules', '@vscode', 'vsce', 'vsce');
  const r = spawnSync(process.execPath, [vsce, 'ls', '--dependencies'], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const files = r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  assert.ok(files.length > 50, `vsce ls listed ${files.length} files`);
  const native = files.filter((f) => NATIVE.some((re) => re.test(f)));
  assert.deepEqual(native, [], `platform-specific files in the .vsix:\n${native.join('\n')}`);
  for (const needed of [
    'package.json',
    'dist/extension.js',
    'dist/engine.js',
    'node_modules/pngjs/lib/png-sync.js',
    'node_modules/jpeg-js/index.js',
    'node_modules/h5wasm/package.json',
    'dist/mnist-digits.br',
  ]) {
    assert.ok(files.includes(needed), `${needed} is packed`);
  }
  for (const f of files) assert.ok(fs.existsSync(path.join(repoRoot, f)), `${f} exists`);
});
