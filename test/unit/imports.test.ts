/**
 * Which code may load what, read from the source imports (not the bundle, so a file that moves or a
 * new import fails here before anything is built):
 *
 *  - the extension host (src/extension), the view models (src/ui) and the webviews (webview/) never
 *    reach TensorFlow.js, sharp or h5wasm, following every runtime import transitively (type-only
 *    imports are erased by the compiler and load nothing); the engine runs in its own process;
 *  - src/protocol, the contract between host, engine and webviews, imports nothing outside itself,
 *    types included;
 *  - src/shared, the TensorFlow.js-free code that every process runs (the metric table, the
 *    fairness gate, markdown escaping), imports only src/protocol and itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from '../helpers';

const FORBIDDEN = [/^@tensorflow\//, /^sharp$/, /^h5wasm$/];

interface Import {
  specifier: string;
  typeOnly: boolean;
}

/** Every `import … from`, `export … from`, side-effect import, `require()` and `import()` of a file. */
export function importsOf(source: string): Import[] {
  const out: Import[] = [];
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const fromRe = /\b(import|export)\s+(type\s+)?([\w*{}\s,$]*?)\s*from\s*['"]([^'"]+)['"]/g;
  for (const m of code.matchAll(fromRe)) {
    const names = m[3];
    // `import { type A, type B }` is erased too.
    const allTyped =
      /^\{[\s\S]*\}$/.test(names.trim()) &&
      names
        .replace(/[{}\s]/g, '')
        .split(',')
        .filter(Boolean)
        .every((n) => n.startsWith('type'));
    out.push({ specifier: m[4], typeOnly: !!m[2] || allTyped });
  }
  for (const m of code.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm)) out.push({ specifier: m[1], typeOnly: false });
  for (const m of code.matchAll(/\b(?:require|import)\s*\(\s*['"]([^'"]+)['"]\s*\)/g))
    out.push({ specifier: m[1], typeOnly: false });
  return out;
}

/** The .ts file a relative specifier names, or undefined for a package, a built-in or a non-code file. */
function resolveSource(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(from), specifier);
  for (const f of [base, `${base}.ts`, `${base}.tsx`, path.join(base, 'index.ts')]) {
    if (fs.existsSync(f) && fs.statSync(f).isFile() && /\.tsx?$/.test(f)) return f;
  }
  return undefined;
}

function sourceFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory()
        ? sourceFiles(path.join(dir, e.name))
        : /\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts')
          ? [path.join(dir, e.name)]
          : [],
    );
}

/** Forbidden packages reached from `roots` by runtime imports, each with the chain of files that leads there. */
function forbiddenReach(roots: string[]): string[] {
  const seen = new Map<string, string[]>(roots.map((r) => [r, [r]]));
  const queue = [...roots];
  const found: string[] = [];
  while (queue.length) {
    const file = queue.shift()!;
    const chain = seen.get(file)!;
    for (const imp of importsOf(fs.readFileSync(file, 'utf8'))) {
      if (imp.typeOnly) continue;
      if (FORBIDDEN.some((re) => re.test(imp.specifier))) {
        found.push([...chain, imp.specifier].map((f) => path.relative(repoRoot, f) || f).join(' → '));
        continue;
      }
      const next = resolveSource(file, imp.specifier);
      if (next && !seen.has(next)) {
        seen.set(next, [...chain, next]);
        queue.push(next);
      }
    }
  }
  return found;
}

test('the import reader sees runtime, type-only, side-effect, require and dynamic imports', () => {
  const imps = importsOf(`
    import * as tf from '@tensorflow/tfjs-core';
    import type { X } from './x';
    import { type A, type B } from './ab';
    import { type C, D } from './cd';
    export { E } from './e';
    export type { F } from './f';
    import './side';
    const s = require('sharp');
    const h = await import('h5wasm');
    // import { commented } from 'nothing';
  `);
  assert.deepEqual(
    imps.map((i) => `${i.specifier}${i.typeOnly ? ' (type)' : ''}`).sort(),
    [
      './ab (type)',
      './cd',
      './e',
      './f (type)',
      './side',
      './x (type)',
      '@tensorflow/tfjs-core',
      'h5wasm',
      'sharp',
    ].sort(),
  );
});

test('the walk follows imports transitively and names the chain (a file that reaches tfjs is caught)', () => {
  const found = forbiddenReach([path.join(repoRoot, 'src', 'core', 'session.ts')]);
  assert.ok(
    found.some((f) => /^src\/core\/session\.ts → .*@tensorflow\/tfjs-core$/.test(f)),
    found.join('\n'),
  );
});

test('the extension host, src/ui and the webviews never reach @tensorflow/*, sharp or h5wasm', () => {
  const roots = ['src/extension', 'src/ui', 'webview', 'src/protocol'].flatMap((d) =>
    sourceFiles(path.join(repoRoot, d)),
  );
  assert.ok(roots.length > 10);
  assert.deepEqual(forbiddenReach(roots), []);
});

/** Imports of the files under `dir` whose target is outside every folder of `allowed`. */
function importsOutside(dir: string, allowed: string[]): string[] {
  const inside = allowed.map((d) => path.join(repoRoot, d) + path.sep);
  const outside: string[] = [];
  for (const file of sourceFiles(path.join(repoRoot, dir))) {
    for (const imp of importsOf(fs.readFileSync(file, 'utf8'))) {
      const target = imp.specifier.startsWith('.') ? path.resolve(path.dirname(file), imp.specifier) : imp.specifier;
      if (!inside.some((d) => target.startsWith(d)))
        outside.push(`${path.relative(repoRoot, file)} → ${imp.specifier}`);
    }
  }
  return outside;
}

test('src/protocol imports nothing outside src/protocol, not even types', () => {
  assert.deepEqual(importsOutside('src/protocol', ['src/protocol']), []);
});

test('src/shared imports only src/protocol and itself: no TensorFlow.js, no engine, no Node file system', () => {
  assert.deepEqual(importsOutside('src/shared', ['src/protocol', 'src/shared']), []);
});
