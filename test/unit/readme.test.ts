/**
 * The README is a user's guide (issue 22): the two commands near the top, no dated measurements (those
 * live in docs/performance.md and bench/RESULTS.md), about 150 lines, and every relative link resolving
 * to a file of the repository.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { repoRoot } from '../helpers';

const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
const lines = readme.split('\n');

test('the README gives the demo and the test command in its first 30 lines', () => {
  const top = lines.slice(0, 30).join('\n');
  assert.match(top, /^npm ci && npm run demo$/m);
  assert.match(top, /^bash scripts\/test\.sh$/m);
  assert.match(fs.readFileSync(path.join(repoRoot, '.ci', 'run'), 'utf8'), /bash scripts\/test\.sh/);
});

test('the README has no dates and about 150 lines', () => {
  const dated = lines.filter((l) => /\b20\d\d-\d\d-\d\d\b|\b(19|20)\d\d\b(?!\))/.test(l) && !/et al\. \d{4}/.test(l));
  assert.deepEqual(dated, [], 'dated lines belong in docs/performance.md');
  assert.ok(lines.length <= 165, `${lines.length} lines`);
});

test("the README's relative links lead to files of the repository", () => {
  const links = [...readme.matchAll(/\]\(([^)#\s]+)\)/g)].map((m) => m[1]).filter((l) => !/^[a-z]+:/.test(l));
  assert.ok(links.length > 3);
  for (const l of links) assert.ok(fs.existsSync(path.join(repoRoot, l)), `README links to ${l}, which is missing`);
});
