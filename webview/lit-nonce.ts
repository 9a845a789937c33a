/**
 * Imported first by every webview bundle, before VS Code Elements. Elements are Lit components: Lit gives
 * each shadow root its styles as adopted stylesheets, and where a browser cannot adopt them it writes
 * `<style>` elements instead, which the page's CSP (`style-src 'nonce-…'`) lets in only with the nonce
 * Lit reads from `window.litNonce`. The nonce is the one the host gave this page's own <script>.
 *
 * It also keeps what the CSP refused, in `data-csp-violations` on <html> (the e2e tests read it: a
 * component that needs `'unsafe-inline'` or a font shows up there instead of silently losing its look).
 */
declare global {
  interface Window {
    litNonce?: string;
  }
}

const script = document.currentScript as HTMLScriptElement | null;
if (script?.nonce) window.litNonce = script.nonce;

const refused: string[] = [];
document.addEventListener('securitypolicyviolation', (e) => {
  refused.push(`${e.effectiveDirective} ${e.blockedURI || 'inline'}${e.sample ? ` ${e.sample.slice(0, 60)}` : ''}`);
  document.documentElement.dataset.cspViolations = JSON.stringify(refused);
});

export {};
