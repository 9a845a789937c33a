/**
 * What the curves panel and the side-bar report share as webview pages: their Content Security Policy
 * and their script and stylesheet (the esbuild bundles in dist/webview), placed inline in the page with
 * a fresh nonce. No `vscode` import, so it is unit-tested like the engine.
 *
 * Inline rather than loaded from dist/webview: in the browser workbench (code-server) a webview's
 * resources are fetched by its service worker, which asks the workbench for each one and can wait for
 * an answer that never comes; inline, a page needs no resource load to start, and `localResourceRoots`
 * can stay empty.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

/** A nonce for one page load: the only way a script or style element gets past the CSP. */
export function newNonce(): string {
  return crypto.randomBytes(16).toString('base64');
}

/**
 * The CSP of a Fair Prune webview: nothing by default; script and style elements only with the page's
 * nonce (VS Code Elements' Lit styles take it from `window.litNonce`, see webview/lit-nonce.ts); no form
 * posts, no <base>. `images: true` lets in `data:` images (the curves panel's exemplars).
 */
export function webviewCsp(nonce: string, cspSource: string, opts: { images?: boolean } = {}): string {
  return [
    `default-src 'none'`,
    `form-action 'none'`,
    `base-uri 'none'`,
    ...(opts.images ? [`img-src ${cspSource} data:`] : []),
    `style-src ${cspSource} 'nonce-${nonce}'`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
}

export interface PageAssets {
  script: string;
  style: string;
}

const cache = new Map<string, PageAssets>();

/**
 * dist/webview/<name>.js and .css under `extensionPath`, read once, made safe to place inside a
 * <script>/<style> element. A missing bundle says how to build it.
 */
export function pageAssets(extensionPath: string, name: string): PageAssets {
  const dir = path.join(extensionPath, 'dist', 'webview');
  const key = path.join(dir, name);
  const cached = cache.get(key);
  if (cached) return cached;
  const sourceMapLine = /\n\/[/*]# sourceMappingURL=[^\n]*\s*$/;
  const read = (file: string) => {
    const full = path.join(dir, file);
    if (!fs.existsSync(full)) throw new Error(`${full} is missing: build the webviews with "node scripts/build.mjs"`);
    return fs.readFileSync(full, 'utf8').replace(sourceMapLine, '');
  };
  // `</script` would end the element early; `<\/` is the same text in JS strings, templates and regular expressions.
  const assets = {
    script: read(`${name}.js`).replace(/<\/script/gi, '<\\/script'),
    style: read(`${name}.css`).replace(/<\/style/gi, '<\\/style'),
  };
  cache.set(key, assets);
  return assets;
}

/** A whole page: the CSP, the nonce'd stylesheet, `body` (already escaped HTML), then the nonce'd script. */
export function webviewPage(p: {
  title: string;
  nonce: string;
  csp: string;
  style: string;
  body: string;
  script: string;
}): string {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${p.csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0"><title>${p.title}</title>
<style nonce="${p.nonce}">${p.style}</style></head>
<body>${p.body}
<script nonce="${p.nonce}">${p.script}</script></body></html>`;
}
