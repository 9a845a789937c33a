/**
 * The editor-side logic that needs no editor: the engine process's lifetime (cancel, crash), the
 * session store, the report HTML, and the native-backend module redirect.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import type { EngineEvent } from '../../src/protocol/engine';
import type { SessionResults } from '../../src/protocol/results';
import { EngineRun } from '../../src/extension/engine-host';
import { listSessions, markSessionEnded, readSession } from '../../src/core/session-store';
import { DEFAULT_POLICY, recommendPoint } from '../../src/shared/gate';
import type { GateVerdict } from '../../src/shared/gate';
import { renderReportBody, renderReportDocument } from '../../src/ui/report-html';
import { installTfjsRedirect } from '../../src/engine/native-preload';
import { repoRoot, tempDir } from '../helpers';
import { makeFixture, request } from '../session-fixture';

const enginePath = path.join(repoRoot, 'out', 'src', 'engine', 'main.js');

test('an engine killed from outside: the session is marked failed, finished points kept, the cause named', async () => {
  const dir = tempDir();
  const { csv, modelPath } = await makeFixture(dir, 400);
  const events: EngineEvent[] = [];
  let killed = false;
  const run: EngineRun = new EngineRun(
    request(modelPath, csv, path.join(dir, 'out'), { sparsities: [0.5, 0.7, 0.9], epochs: 3 }),
    {
      enginePath,
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'point' && !killed) {
          killed = true;
          process.kill(run.pid!, 'SIGKILL'); // as the OOM killer would
        }
      },
    },
  );
  const outcome = await run.done;
  assert.equal(outcome.status, 'failed');
  assert.match(outcome.error!, /engine process was killed \(SIGKILL\)/);
  const stored = readSession(outcome.sessionDir!)!;
  assert.equal(stored.results.status, 'failed');
  assert.equal(stored.results.error, outcome.error);
  assert.ok(stored.results.points.length >= 1 && stored.results.points.length < 6);
  assert.ok(fs.existsSync(path.join(outcome.sessionDir!, 'report.md')));
  // the next session starts cleanly
  const next = new EngineRun(
    request(modelPath, csv, path.join(dir, 'out'), { sparsities: [0.5], losses: ['ce'], epochs: 1 }),
    { enginePath, onEvent: () => {} },
  );
  assert.equal((await next.done).status, 'completed');
  assert.equal(listSessions(path.join(dir, 'out')).length, 2);
});

test('cancel stops the engine within the point under way and keeps the finished points', async () => {
  // Judged on events, not on the clock: after the cancel no further point finishes (the one under way,
  // several training steps long, is abandoned at its next step), and the session keeps exactly the
  // points that had finished. One worker, so no other point is close to finishing when the cancel comes.
  const dir = tempDir();
  const { csv, modelPath } = await makeFixture(dir, 400);
  let pointsAtCancel = -1;
  let points = 0;
  let pointsAfterCancel = 0;
  const run: EngineRun = new EngineRun(
    request(modelPath, csv, path.join(dir, 'out'), { sparsities: [0.5, 0.7, 0.9], epochs: 4, workers: 1 }),
    {
      enginePath,
      onEvent: (e) => {
        if (e.type !== 'point') return;
        points++;
        if (pointsAtCancel >= 0) pointsAfterCancel++;
        else {
          pointsAtCancel = points;
          run.cancel();
        }
      },
    },
  );
  const outcome = await run.done;
  assert.equal(outcome.status, 'cancelled');
  assert.equal(pointsAtCancel, 1);
  assert.equal(pointsAfterCancel, 0, 'no point finished after the cancel');
  const stored = readSession(outcome.sessionDir!)!;
  assert.equal(stored.results.status, 'cancelled');
  assert.equal(stored.results.points.length, 1);
});

test('a bad CSV fails the engine with the message that names the column', async () => {
  const dir = tempDir();
  const { csv, modelPath } = await makeFixture(dir, 200);
  const run = new EngineRun(request(modelPath, csv, path.join(dir, 'out'), { data: { label: 'decisoin' } }), {
    enginePath,
    onEvent: () => {},
  });
  const outcome = await run.done;
  assert.equal(outcome.status, 'failed');
  assert.match(outcome.error!, /loans\.csv.*no column 'decisoin'/);
  assert.equal(outcome.sessionDir, undefined);
});

test('markSessionEnded changes only a running session', () => {
  const dir = tempDir();
  // a session whose engine died before the dense model was evaluated: no `dense` yet
  const size = { parameters: 10, prunableParameters: 8, nonZeroParameters: 10, weightBytes: 40, gzipBytes: 40 };
  const running = {
    schemaVersion: 1,
    sessionId: 'x',
    status: 'running',
    points: [],
    createdAt: '2026-01-01T00:00:00Z',
    engine: {
      version: '0',
      backend: { name: 'cpu', tfjsBackend: 'cpu', tfjsVersion: '4.22.0', notes: [] },
      node: 'v20',
      platform: 'linux-x64',
    },
    model: {
      path: '/w/model/model.json',
      format: 'tfjs-layers',
      sha256: '',
      inputShape: [3],
      outputUnits: 1,
      task: 'binary',
      size,
    },
    data: {
      path: '/w/data.csv',
      sha256: '',
      rows: 5,
      label: { column: 'y', classes: ['0', '1'], order: 'integer' },
      groupColumns: ['g'],
      groups: [],
      features: ['a'],
      imageColumn: null,
      pixelScale: null,
      preprocessing: null,
      split: { source: 'seeded', counts: { train: 3, validation: 1, test: 1 }, assignment: 'ttvxt' },
      warnings: [],
    },
    config: {
      sparsities: [0.5],
      losses: ['ce'],
      method: 'magnitude-layer',
      epochs: 1,
      batchSize: 8,
      learningRate: 0.01,
      patience: 0,
      seed: 1,
      pw: { minWeight: 0.75, gamma: 5 },
      bootstrap: { resamples: 100, confidence: 0.95 },
    },
  } as unknown as SessionResults;
  fs.writeFileSync(path.join(dir, 'results.json'), JSON.stringify(running));
  assert.equal(markSessionEnded(dir, 'failed', 'boom')!.status, 'failed');
  assert.equal(readSession(dir)!.results.error, 'boom');
  assert.equal(markSessionEnded(dir, 'cancelled')!.status, 'failed', 'an ended session is not rewritten');
});

test('report HTML: groups, verdicts, disabled Commit with its reason, and escaping of data values', async () => {
  const dir = tempDir();
  const { csv, modelPath } = await makeFixture(dir, 300);
  // a group value that would be markup if not escaped
  fs.writeFileSync(csv, fs.readFileSync(csv, 'utf8').replace(/,south,/g, ',<img src=x onerror=alert(1)>,'));
  const outDir = path.join(dir, 'out');
  const run = new EngineRun(request(modelPath, csv, outDir, { sparsities: [0.3, 0.95], losses: ['pw'], epochs: 1 }), {
    enginePath,
    onEvent: () => {},
  });
  const outcome = await run.done;
  assert.equal(outcome.status, 'completed', outcome.error);
  const s = readSession(outcome.sessionDir!)!;
  // Verdicts written by hand (not by checkPoint): the first point passes, the second fails for a stated reason.
  assert.deepEqual(
    s.results.points.map((p) => p.id),
    ['s0.30-pw', 's0.95-pw'],
  );
  const verdict = (passed: boolean, summary: string): GateVerdict => ({
    passed,
    policy: DEFAULT_POLICY,
    rules: [],
    summary,
  });
  const verdicts: Record<string, GateVerdict> = {
    's0.30-pw': verdict(true, 'passes the fairness gate (judged on 95% intervals)'),
    's0.95-pw': verdict(false, 'fails: worst-group accuracy drops 9.0 pts'),
  };
  const recommendation = recommendPoint(s.results, DEFAULT_POLICY);
  const html = renderReportBody({ sessionDir: s.dir, results: s.results, verdicts, canCommit: true, recommendation });
  assert.ok(!html.includes('<img'), 'data values are escaped');
  assert.ok(html.replace(/<wbr>/g, '').includes('region=&lt;img src=x onerror=alert(1)&gt;'));
  assert.ok(html.includes('region=<wbr>'), 'a group name wraps after its =, not inside a word');
  // each point's own section only: from its data-point to the next point's section
  const section = (id: string) => {
    const start = html.indexOf(`data-point="${id}"`);
    assert.ok(start >= 0, `no section for ${id}`);
    const next = html.indexOf('<section class="point', start);
    return html.slice(start, next < 0 ? undefined : next);
  };
  const first = section('s0.30-pw');
  const second = section('s0.95-pw');
  assert.match(first, /PASS/);
  assert.doesNotMatch(first, /FAIL/);
  assert.doesNotMatch(first, /<vscode-button class="commit"[^>]*disabled/);
  assert.match(second, /FAIL/);
  assert.doesNotMatch(second, /PASS/);
  assert.match(
    second,
    /<vscode-button class="commit"[^>]*disabled title="Fails the fairness gate: fails: worst-group accuracy drops 9\.0 pts"/,
  );
  const untrusted = renderReportBody({
    sessionDir: s.dir,
    results: s.results,
    verdicts,
    canCommit: false,
    recommendation,
  });
  assert.equal((untrusted.match(/Restricted Mode/g) ?? []).length >= s.results.points.length, true);
  const doc = renderReportDocument(null, 'abc123', 'vscode-resource:', { script: 'run()', style: 'p{}' });
  assert.match(
    doc,
    /Content-Security-Policy" content="default-src 'none'; form-action 'none'; base-uri 'none'; style-src vscode-resource: 'nonce-abc123'; script-src 'nonce-abc123'"/,
  );
  assert.match(doc, /<style nonce="abc123">p\{\}<\/style>/);
  assert.match(doc, /<script nonce="abc123">run\(\)<\/script>/);
  assert.match(doc, /No session selected/);
  assert.match(doc, /<main id="report">/, 'later bodies replace #report without reloading the document');
});

test('native backend redirect: @tensorflow packages the install has load from it, others from the extension', () => {
  const root = tempDir();
  const fake = path.join(root, 'node_modules', '@tensorflow', 'tfjs-core');
  fs.mkdirSync(fake, { recursive: true });
  fs.writeFileSync(
    path.join(fake, 'package.json'),
    JSON.stringify({ name: '@tensorflow/tfjs-core', main: 'index.js' }),
  );
  fs.writeFileSync(path.join(fake, 'index.js'), 'module.exports = { fromNativeInstall: true };');
  installTfjsRedirect(root);

  assert.equal(require('@tensorflow/tfjs-core').fromNativeInstall, true);
  assert.ok(require.resolve('@tensorflow/tfjs-backend-wasm').startsWith(path.join(repoRoot, 'node_modules')));
});

test('the extension bundle loads no TensorFlow.js: activation stays in the extension host, training in the engine', (t) => {
  const bundle = path.join(__dirname, '..', '..', '..', 'dist', 'extension.js');
  if (!fs.existsSync(bundle)) return t.skip('dist/extension.js is not built (node scripts/build.mjs)');
  const text = fs.readFileSync(bundle, 'utf8');
  assert.deepEqual(
    text.match(/require\(["']@tensorflow\/[^"']+["']\)/g) ?? [],
    [],
    'no require of @tensorflow/* in dist/extension.js',
  );
  assert.doesNotMatch(text, /registerKernel\(|tfjs-backend-wasm/, 'no tfjs code bundled in');
  const engine = fs.readFileSync(path.join(path.dirname(bundle), 'engine.js'), 'utf8');
  assert.match(engine, /@tensorflow\/tfjs-core/, 'the engine is where tfjs runs');
});
