// The webview pages' shared parts (src/ui/webview-assets.ts) and what they are built from: the CSP, the
// inlined bundles, and that the archived webview UI toolkit stays out of the dependencies and the bundles
// (the panels use VS Code Elements; docs/webviews.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { newNonce, pageAssets, webviewCsp, webviewPage } from '../../src/ui/webview-assets';
import { tempDir } from '../helpers';

const repoRoot = path.join(__dirname, '..', '..', '..');
const TOOLKIT = /@vscode\/webview-ui-toolkit|webview-ui-toolkit|provideVSCodeDesignSystem|vscode-data-grid/;

test('the CSP: nothing by default, script and style only with the nonce, no forms or <base>, images only when asked', () => {
  assert.equal(
    webviewCsp('N1', 'https://src'),
    "default-src 'none'; form-action 'none'; base-uri 'none'; style-src https://src 'nonce-N1'; script-src 'nonce-N1'",
  );
  const withImages = webviewCsp('N2', 'https://src', { images: true });
  assert.match(withImages, /; img-src https:\/\/src data:;/);
  assert.doesNotMatch(withImages, /unsafe-inline|unsafe-eval|\*/);
  const a = newNonce();
  const b = newNonce();
  assert.notEqual(a, b, 'a fresh nonce per page load');
  assert.match(a, /^[A-Za-z0-9+/]{22}==$/, '16 random bytes');
});

test('page assets: read once, source map comment dropped, </script> and </style> cannot end the element early', () => {
  const root = tempDir();
  const dir = path.join(root, 'dist', 'webview');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'p.js'), 'const s = "</script><script>alert(1)";\n//# sourceMappingURL=p.js.map\n');
  fs.writeFileSync(path.join(dir, 'p.css'), 'a::after { content: "</STYLE>"; }\n/*# sourceMappingURL=p.css.map */\n');
  const assets = pageAssets(root, 'p');
  assert.equal(assets.script, 'const s = "<\\/script><script>alert(1)";');
  assert.equal(assets.style, 'a::after { content: "<\\/style>"; }');
  fs.writeFileSync(path.join(dir, 'p.js'), 'changed');
  assert.equal(pageAssets(root, 'p'), assets, 'read once per extension folder');
  assert.throws(
    () => pageAssets(root, 'missing'),
    /dist\/webview\/missing\.js is missing: build the webviews with "node scripts\/build\.mjs"/,
  );
  const page = webviewPage({
    title: 'T',
    nonce: 'N',
    csp: webviewCsp('N', 'src'),
    style: assets.style,
    body: '<main></main>',
    script: assets.script,
  });
  assert.equal(page.match(/<\/script/gi)?.length, 1, 'one script element, ended where the page ends it');
  assert.match(page, /<style nonce="N">/);
  assert.match(page, /<script nonce="N">const s/);
  assert.ok(
    page.indexOf('<main></main>') < page.indexOf('<script nonce'),
    'the script runs after the body it wires is parsed',
  );
});

test('the archived webview UI toolkit is in neither package.json nor package-lock.json; VS Code Elements is, pinned', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as Record<
    string,
    Record<string, string>
  >;
  const deps = { ...pkg.dependencies, ...pkg.devDependencies, ...pkg.optionalDependencies };
  assert.equal(deps['@vscode/webview-ui-toolkit'], undefined);
  assert.match(deps['@vscode-elements/elements'] ?? '', /^\d+\.\d+\.\d+$/, 'an exact version');
  const lock = fs.readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8');
  assert.doesNotMatch(lock, /webview-ui-toolkit/);
  assert.match(lock, /"node_modules\/@vscode-elements\/elements"/);
});

test('the webview bundles hold VS Code Elements and no part of the webview UI toolkit', (t) => {
  const dir = path.join(repoRoot, 'dist', 'webview');
  if (!fs.existsSync(path.join(dir, 'curves.js'))) return t.skip('dist/webview is not built (node scripts/build.mjs)');
  const files = fs.readdirSync(dir).filter((f) => /\.(js|css)$/.test(f));
  assert.deepEqual(files.filter((f) => f.endsWith('.js')).sort(), ['curves.js', 'report.js']);
  for (const f of files)
    assert.doesNotMatch(fs.readFileSync(path.join(dir, f), 'utf8'), TOOLKIT, `${f} carries the toolkit`);
  // nor any other file the build wrote (source maps included): what `grep -r webview-ui-toolkit dist/` checks
  const dist = path.dirname(dir);
  const all = (fs.readdirSync(dist, { recursive: true }) as string[]).filter((f) =>
    fs.statSync(path.join(dist, f)).isFile(),
  );
  assert.deepEqual(
    all.filter((f) => fs.readFileSync(path.join(dist, f)).includes('webview-ui-toolkit')),
    [],
    'files in dist/ naming the toolkit',
  );
  // each element's class decorated with (a minified) customElement('vscode-…')
  const defined = (f: string) =>
    new Set(
      [...fs.readFileSync(path.join(dir, f), 'utf8').matchAll(/\[[\w$]+\("(vscode-[a-z-]+)"\)\]/g)].map((m) => m[1]),
    );
  const curves = defined('curves.js');
  for (const tag of [
    'vscode-button',
    'vscode-checkbox',
    'vscode-single-select',
    'vscode-option',
    'vscode-progress-ring',
  ])
    assert.ok(curves.has(tag), `curves.js defines <${tag}>`);
  assert.ok(defined('report.js').has('vscode-button'), 'report.js defines <vscode-button>');
  for (const f of ['curves.js', 'report.js'])
    assert.match(fs.readFileSync(path.join(dir, f), 'utf8'), /litNonce/, `${f} hands Lit the page's nonce`);
});
