/**
 * results.json is input too: the extension reads it from the workspace, also in Restricted Mode. A
 * crafted one is refused with the field at fault, before anything acts on it; commit copies regular
 * files only, exactly the bytes that were evaluated, into the workspace only; values from the files
 * are escaped in FAIRNESS.md and report.md.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import type { SessionResults } from '../../src/protocol/results';
import { runSession } from '../../src/core/session';
import { readSession, refusedSessions, sessionProblem } from '../../src/core/session-store';
import { resultsProblem } from '../../src/core/results-check';
import { commitPoint } from '../../src/core/commit';
import { renderReport } from '../../src/core/report';
import { mdCode, mdText } from '../../src/shared/markdown';
import { sha256 } from '../../src/core/atomic';
import { expectUserError, repoRoot, tempDir } from '../helpers';
import { makeFixture, request } from '../session-fixture';

const { schemaText } = require(path.join(repoRoot, 'scripts', 'results-schema.cjs')) as { schemaText: () => string };

test('results.schema.json is what scripts/results-schema.cjs makes from src/protocol/results.ts', () => {
  const committed = fs.readFileSync(path.join(repoRoot, 'results.schema.json'), 'utf8');
  assert.equal(committed, schemaText(), 'run `node scripts/results-schema.cjs` after changing src/protocol/results.ts');
});

const lenient = { maxWorstGroupDrop: 1, maxGapIncrease: 1, minAccuracy: 0, judgeOn: 'interval' as const };

test('a real session passes the check; crafted results.json files are refused naming the field, and never acted on', async () => {
  const ws = tempDir();
  const { csv, modelPath } = await makeFixture(ws, 400);
  const results: SessionResults = await runSession(
    request(modelPath, csv, path.join(ws, '.fairprune'), {
      sparsities: [0.5],
      losses: ['ce'],
      epochs: 1,
      bootstrapResamples: 50,
    }),
  );
  const sessionDir = path.join(ws, '.fairprune', 'sessions', results.sessionId);
  assert.equal(
    resultsProblem(JSON.parse(fs.readFileSync(path.join(sessionDir, 'results.json'), 'utf8')), sessionDir),
    undefined,
  );
  assert.ok(readSession(sessionDir));
  assert.deepEqual(
    Object.keys(results.points[0].files ?? {}).sort(),
    ['fairprune.preprocessing.json', 'model.json', 'weights.bin']
      .filter((f) => fs.existsSync(path.join(sessionDir, results.points[0].modelDir, f)))
      .sort(),
  );

  const text = fs.readFileSync(path.join(sessionDir, 'results.json'), 'utf8');
  const crafted: [string, (r: Record<string, any>) => void, RegExp][] = [
    [
      'a point id with a path in it',
      (r) => (r.points[0].id = '../../x'),
      /results\.points\[0\]\.id: "\.\.\/\.\.\/x" does not match/,
    ],
    [
      'a model folder outside the session',
      (r) => (r.points[0].modelDir = '../../../etc'),
      /results\.points\[0\]\.modelDir: "\.\.\/\.\.\/\.\.\/etc" does not match/,
    ],
    [
      'a number that is text',
      (r) => (r.points[0].evaluation.accuracy.value = '<img src=x onerror=alert(1)>'),
      /results\.points\[0\]\.evaluation\.accuracy\.value: is a string, expected a number/,
    ],
    [
      'a number that overflows to Infinity',
      (r) => (r.dense.accuracy.value = 'INF'),
      /results\.dense\.accuracy\.value: is not a finite number/,
    ],
    ['a missing field', (r) => delete r.points[0].comparison, /results\.points\[0\]\.comparison: is missing/],
    ['an unknown status', (r) => (r.status = 'done'), /results\.status: is "done", expected one of "running"/],
    ['a duplicate point', (r) => r.points.push(r.points[0]), /results\.points\[1\]\.id: 's0\.50-ce' appears twice/],
  ];
  for (const [what, edit, re] of crafted) {
    const r = JSON.parse(text);
    edit(r);
    // 1e999 parses to Infinity: written as text so JSON.stringify cannot turn it into null
    const json = JSON.stringify(r, null, 1).replace('"INF"', '1e999');
    fs.writeFileSync(path.join(sessionDir, 'results.json'), json);
    assert.equal(readSession(sessionDir), undefined, `${what}: not read`);
    assert.match(sessionProblem(sessionDir) ?? '', re, what);
    assert.match(refusedSessions(path.join(ws, '.fairprune'))[0]?.problem ?? '', re, `${what}: listed as refused`);
  }
  fs.writeFileSync(path.join(sessionDir, 'results.json'), text);
  assert.ok(readSession(sessionDir), 'the real file reads again');
  assert.equal(sessionProblem(sessionDir), undefined);
});

test('commit copies regular files only, exactly the evaluated bytes, and only into the workspace', async () => {
  const ws = tempDir();
  const { csv, modelPath } = await makeFixture(ws, 400);
  const results: SessionResults = await runSession(
    request(modelPath, csv, path.join(ws, '.fairprune'), {
      sparsities: [0.5],
      losses: ['ce'],
      epochs: 1,
      bootstrapResamples: 50,
    }),
  );
  const sessionDir = path.join(ws, '.fairprune', 'sessions', results.sessionId);
  const pointDir = path.join(sessionDir, results.points[0].modelDir);
  const secret = path.join(ws, 'secret.txt');
  fs.writeFileSync(secret, 'private\n');
  const before = sha256(fs.readFileSync(secret));

  // a symlink in the point folder is refused (its target is never read or copied)
  fs.symlinkSync(secret, path.join(pointDir, 'notes.txt'));
  assert.throws(
    () => commitPoint({ sessionDir, results, pointId: 's0.50-ce', policy: lenient, workspaceRoot: ws }),
    expectUserError(/'notes\.txt' is a symbolic link; a pruned model folder holds regular files only/),
  );
  fs.unlinkSync(path.join(pointDir, 'notes.txt'));

  // weights changed after evaluation: the gate's verdict was for other weights
  const weights = path.join(pointDir, 'weights.bin');
  const original = fs.readFileSync(weights);
  const changed = Buffer.from(original);
  changed[0] ^= 0xff;
  fs.writeFileSync(weights, changed);
  assert.throws(
    () => commitPoint({ sessionDir, results, pointId: 's0.50-ce', policy: lenient, workspaceRoot: ws }),
    expectUserError(/is not the one that was evaluated: 'weights\.bin' has changed since the point was evaluated/),
  );
  fs.writeFileSync(weights, original);

  // a results.json naming a model outside the workspace would commit beside it: refused
  const elsewhere = tempDir('fairprune-elsewhere-');
  const moved = { ...results, model: { ...results.model, path: path.join(elsewhere, 'model', 'model.json') } };
  assert.throws(
    () => commitPoint({ sessionDir, results: moved, pointId: 's0.50-ce', policy: lenient, workspaceRoot: ws }),
    expectUserError(/would write '.*fairprune-elsewhere-.*', outside the workspace folder/),
  );
  assert.deepEqual(fs.readdirSync(elsewhere), []);

  const ok = commitPoint({ sessionDir, results, pointId: 's0.50-ce', policy: lenient, workspaceRoot: ws });
  assert.ok(ok.dir.startsWith(ws + path.sep));
  assert.equal(sha256(fs.readFileSync(path.join(ok.dir, 'weights.bin'))), results.points[0].files!['weights.bin']);
  assert.equal(sha256(fs.readFileSync(secret)), before);
});

test('values from the files are escaped in Markdown tables and code spans', () => {
  assert.equal(mdText('a|b`c<script>&[x](y)\nz\\'), 'a\\|b\\`c&lt;script&gt;&amp;[x\\](y) z\\\\');
  assert.equal(mdText('[a][b] and [3.2%, 7.3%]'), '[a\\][b] and [3.2%, 7.3%]');
  assert.equal(mdCode('plain.csv'), '`plain.csv`');
  assert.equal(mdCode('we`ird``.csv'), '```we`ird``.csv```');
  assert.equal(mdCode('`start'), '`` `start ``');
});

test('report.md and FAIRNESS.md: a group named with | and <script> stays in its cell', async () => {
  const ws = tempDir();
  const { csv, modelPath } = await makeFixture(ws, 400);
  // rename the minority region in the CSV to a hostile name
  const hostile = 'south | <script>alert(1)</script> `x`';
  const text = fs.readFileSync(csv, 'utf8').replace(/,south,/g, `,"${hostile.replace(/"/g, '""')}",`);
  fs.writeFileSync(csv, text);
  const results: SessionResults = await runSession(
    request(modelPath, csv, path.join(ws, '.fairprune'), {
      sparsities: [0.5],
      losses: ['ce'],
      epochs: 1,
      bootstrapResamples: 50,
    }),
  );
  const sessionDir = path.join(ws, '.fairprune', 'sessions', results.sessionId);
  const report = renderReport(results);
  const fairness = fs.readFileSync(
    path.join(
      commitPoint({ sessionDir, results, pointId: 's0.50-ce', policy: lenient, workspaceRoot: ws }).dir,
      'FAIRNESS.md',
    ),
    'utf8',
  );
  for (const [name, md] of [
    ['report.md', report],
    ['FAIRNESS.md', fairness],
  ] as const) {
    const lines = md.split('\n');
    const rows = lines.map((l, i) => [l, i] as const).filter(([l]) => l.startsWith('| ') && l.includes('region=south'));
    assert.ok(rows.length > 0, `${name} has the group's rows`);
    for (const [row, i] of rows) {
      assert.doesNotMatch(row, /<script>/, `${name}: no raw HTML`);
      assert.match(row, /region=south \\\| &lt;script&gt;alert\(1\)&lt;\/script&gt; \\`x\\`/, `${name}: escaped`);
      let h = i;
      while (h > 0 && !lines[h].startsWith('| ---')) h--;
      const cells = (l: string) => l.replace(/\\\|/g, '').split('|').length;
      assert.equal(cells(row), cells(lines[h - 1]), `${name}: the row has as many cells as its table's header`);
    }
  }
});
