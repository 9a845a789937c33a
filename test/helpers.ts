/** Shared test helpers: where the repository and ../shared are, and temporary folders. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import assert from 'node:assert/strict';
import { UserError } from '../src/core/errors';

/** The repository root, from out/test/… or test/… alike. */
export const repoRoot = (() => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
})();

/** ../shared beside the checkout, or undefined when it is absent (then those tests skip). */
export const sharedDir: string | undefined = (() => {
  const d = path.resolve(repoRoot, '..', 'shared');
  return fs.existsSync(d) ? d : undefined;
})();

export function tempDir(prefix = 'fairprune-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

let cpuReady: Promise<void> | undefined;
/** Most unit tests run on the plain cpu backend: fast to start, exact, always there. */
export function useCpu(): Promise<void> {
  cpuReady ??= (async () => {
    tf.enableProdMode();
    await tf.setBackend('cpu');
    await tf.ready();
  })();
  return cpuReady.then(() => {
    if (tf.getBackend() !== 'cpu') return tf.setBackend('cpu').then(() => undefined);
  });
}

/** For assert.throws/rejects: a UserError whose message matches and which says how to fix it. */
export function expectUserError(re: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${e}`);
    assert.match((e as Error).message, re);
    assert.ok((e as UserError).fix, 'the error says how to fix it');
    return true;
  };
}

/** max |a − b| / max |b|: one scale for the whole tensor, so entries near zero do not dominate. */
export function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / Math.max(m, 1e-12);
}
