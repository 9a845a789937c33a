/**
 * Preloaded into the engine process (`node --require`) when the user installed the native backend
 * with "Fair Prune: Install Native Backend": every `@tensorflow/*` package that the install folder
 * has is loaded from there, tfjs-core included, so the native backend and the engine share exactly
 * one copy of TensorFlow.js. Packages it lacks (the wasm backend) still load from the extension.
 */
import * as fs from 'fs';
import * as path from 'path';

const Module = require('module') as {
  _resolveFilename: (request: string, parent: unknown, ...rest: unknown[]) => string;
};

export function installTfjsRedirect(installRoot: string): void {
  const modules = path.join(installRoot, 'node_modules');
  if (!fs.existsSync(modules)) return;
  const original = Module._resolveFilename;
  Module._resolveFilename = function (request: string, parent: unknown, ...rest: unknown[]) {
    const m = /^(@tensorflow\/[^/]+)/.exec(request);
    if (m && fs.existsSync(path.join(modules, m[1], 'package.json'))) {
      // Node's own resolution, started from the install folder (the `paths` option of require.resolve).
      return original.call(this, request, parent, false, { paths: [installRoot] });
    }
    return original.call(this, request, parent, ...rest);
  };
}

if (process.env.FAIRPRUNE_NATIVE_ROOT) installTfjsRedirect(process.env.FAIRPRUNE_NATIVE_ROOT);
