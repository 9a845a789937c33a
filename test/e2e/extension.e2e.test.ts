// The extension as a user meets it, in a real VS Code (code-server 4.100.3) with the built .vsix
// installed: right-click a model in the explorer, answer the pickers, watch points arrive in the
// curves panel and the side-bar report, commit a point that passes the fairness gate and open what it
// wrote, be refused on one that fails, cancel one session, kill the engine of another, and get a
// clear error for a broken CSV. Screenshots of each moment go to test-results/screenshots.
// Skips when the e2e set-up is absent (scripts/run-tests.sh counts a failed set-up as a failure).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  answerDialog,
  e2eSkipReason,
  frameWith as frameIn,
  processesMentioning,
  repoRoot,
  startWorkbench,
  until,
  type Workbench,
} from './harness';
import { makeFixture } from '../session-fixture';

const skip = e2eSkipReason();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fairprune-e2e-ext-'));
const workspace = path.join(tmp, 'workspace');
const modelJson = path.join(workspace, 'model', 'model.json');
const sessionsDir = path.join(workspace, '.fairprune', 'sessions');
let wb: Workbench | undefined;
let tempRoot = '';
/** A long session (cancelled, killed or reloaded before it ends): 19 sparsities × two losses. */
const LONG_SPARSITIES = Array.from({ length: 19 }, (_, i) => `${5 * (i + 1)}%`).join(', ');

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The webview frame (curves panel or side-bar report) whose document has `selector`. */
const frameWith = (selector: string, timeoutMs?: number) => frameIn(wb!, selector, timeoutMs);
const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

interface Results {
  status: string;
  error?: string;
  points: { id: string; targetSparsity: number; loss: string; modelDir: string; files?: Record<string, string> }[];
}

function sessionFolders(): string[] {
  return fs.existsSync(sessionsDir)
    ? fs
        .readdirSync(sessionsDir)
        .map((d) => path.join(sessionsDir, d))
        .sort()
    : [];
}

function readResults(dir: string): Results | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as Results;
  } catch {
    return undefined; // not written yet
  }
}

/** The session folder that appeared after `known` were there. */
async function newSession(known: string[], timeoutMs = 60_000): Promise<string> {
  return until(
    'a new session folder with results.json',
    () => sessionFolders().find((d) => !known.includes(d) && readResults(d)),
    timeoutMs,
  );
}

async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    await wb?.reportFailure(name, e);
    throw e;
  }
}

/** An explorer row by its exact file name. */
function explorerRow(name: string) {
  return wb!.page.locator('.explorer-folders-view .monaco-list-row').filter({
    has: wb!.page.locator('.label-name', { hasText: new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }),
  });
}

/** Click an entry of the open context menu (hover first: the menu takes a click only once it has
 *  settled; Enter on the hovered entry when a click was swallowed). */
async function contextMenu(label: string): Promise<void> {
  const page = wb!.page;
  const item = page.locator('.context-view .action-item', { hasText: label });
  await item.waitFor();
  await item.hover();
  await delay(250);
  await item.click();
  const menu = page.locator('.context-view .monaco-menu');
  try {
    await menu.waitFor({ state: 'detached', timeout: 3_000 });
  } catch {
    await page.keyboard.press('Enter');
    await menu.waitFor({ state: 'detached', timeout: 5_000 });
  }
}

/** The lines of the "Fair Prune" output channel that match `filter` (typed into the Output view's
 *  filter box, as a user would; the editor renders spaces as NBSP). */
async function outputLines(filter: string, match: RegExp): Promise<string> {
  await wb!.runCommand('Fair Prune: Show Log', { timeoutMs: 60_000 });
  await wb!.page.locator('.part.panel input[placeholder^="Filter"]').first().fill(filter);
  const lines = wb!.page.locator('.part.panel .monaco-editor .view-lines');
  const text = await until(`"${filter}" in the Fair Prune output`, async () => {
    const t = ((await lines.first().textContent()) ?? '').replace(/\u00a0/g, ' ');
    return match.test(t) ? t : undefined;
  });
  await wb!.page.locator('.part.panel input[placeholder^="Filter"]').first().fill('');
  return text;
}

/** Measurements of the editor's responsiveness for bench/RESULTS.md (npm run bench reads this file). */
const measurementsFile = path.join(repoRoot, 'test-results', 'e2e-measurements.json');
function recordMeasurement(values: Record<string, unknown>): void {
  fs.mkdirSync(path.dirname(measurementsFile), { recursive: true });
  const old = fs.existsSync(measurementsFile)
    ? (JSON.parse(fs.readFileSync(measurementsFile, 'utf8')) as Record<string, unknown>)
    : {};
  fs.writeFileSync(
    measurementsFile,
    JSON.stringify(
      { ...old, ...values, measuredAt: new Date().toISOString(), vscode: '1.100.3 (code-server 4.100.3)' },
      null,
      2,
    ),
  );
}

/** A row of the Fair Prune "Sessions" tree whose label matches. */
function sessionsRow(label: string | RegExp) {
  return wb!.page
    .locator('.part.sidebar .pane', { has: wb!.page.locator('.pane-header', { hasText: /Sessions/i }) })
    .locator('.monaco-list-row', { hasText: label });
}

/** The toast that shows `message`, for its buttons. */
function toast(message: string | RegExp) {
  return wb!.page.locator('.notifications-toasts .notification-toast', { hasText: message });
}

async function openFairPruneSideBar(): Promise<void> {
  const item = wb!.page
    .locator(
      '.part.activitybar .action-item a[aria-label^="Fair Prune"], .part.activitybar .action-item .action-label[aria-label^="Fair Prune"]',
    )
    .first();
  const sessionsHeader = wb!.page.locator('.part.sidebar .pane-header', { hasText: /Sessions/i });
  if (!(await sessionsHeader.isVisible().catch(() => false))) await item.click();
  await sessionsHeader.waitFor();
}

/** Palette (or explorer) → the six pickers of "Prune with Fairness Check…". */
async function answerPickers(o: { data: string; sparsities?: string; fromPalette: boolean }): Promise<void> {
  if (o.fromPalette) {
    await wb!.runCommand('Fair Prune: Prune with Fairness Check…');
    await wb!.page.locator('.quick-input-widget', { hasText: '(1/6)' }).waitFor();
    await wb!.quickPickSelect('model/model.json');
  }
  await wb!.page.locator('.quick-input-widget', { hasText: '(2/6)' }).waitFor();
  await wb!.quickPickSelect(o.data);
  await wb!.page.locator('.quick-input-widget', { hasText: '(3/6)' }).waitFor();
  await wb!.quickPickSelect('decision');
  const groups = wb!.page.locator('.quick-input-widget', { hasText: '(4/6)' });
  await groups.waitFor();
  // Prefilled from the last run on this model; tick it when it is not.
  const regionRow = groups.locator('.quick-input-list .monaco-list-row', { hasText: 'region' });
  if ((await regionRow.getAttribute('aria-checked')) !== 'true') await regionRow.click();
  await groups.locator('.quick-input-action .monaco-button', { hasText: 'OK' }).click();
  await wb!.page.locator('.quick-input-widget', { hasText: '(5/6)' }).waitFor();
  if (o.sparsities) await wb!.quickPickType(o.sparsities);
  else await wb!.page.keyboard.press('Enter');
  const losses = wb!.page.locator('.quick-input-widget', { hasText: '(6/6)' });
  await losses.waitFor();
  await losses.locator('.quick-input-action .monaco-button', { hasText: 'OK' }).click();
}

before(async () => {
  if (skip) return;
  // The built .vsix, exactly what a user installs (dist/ is built by the test script's build step).
  const vsix = path.join(tmp, 'fair-prune.vsix');
  const vsce = path.join(path.dirname(require.resolve('@vscode/vsce/package.json')), 'vsce');
  const pack = spawnSync(
    process.execPath,
    [vsce, 'package', '--dependencies', '--allow-missing-repository', '--no-rewrite-relative-links', '-o', vsix],
    { cwd: repoRoot, encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  assert.equal(pack.status, 0, `vsce package failed:\n${pack.stdout}${pack.stderr}`);
  console.log(`packaged ${vsix}: ${(fs.statSync(vsix).size / 1e6).toFixed(2)} MB`);

  // A workspace like a user's: a TensorFlow.js model trained elsewhere, its data, and a broken copy.
  fs.mkdirSync(workspace);
  await makeFixture(workspace, 3000, 'plain');
  const lines = fs.readFileSync(path.join(workspace, 'loans.csv'), 'utf8').split(/\r?\n/);
  const cells = lines[42].split(',');
  cells[1] = 'n/a'; // x2 of data row 42: not a number
  lines[42] = cells.join(',');
  fs.writeFileSync(path.join(workspace, 'broken.csv'), lines.join('\n'));
  // The same rows 150 times over: sessions long enough to cancel, kill or reload while they run (about a
  // minute on 2 cores; twenty times over finished before a second session could be asked for once the
  // engine ran two points at a time, and sixty times over in under 30 s once its training steps got faster).
  const rows = fs.readFileSync(path.join(workspace, 'loans.csv'), 'utf8').trim().split(/\r?\n/);
  fs.writeFileSync(
    path.join(workspace, 'big.csv'),
    [rows[0], ...Array.from({ length: 150 }, () => rows.slice(1)).flat()].join('\n') + '\n',
  );

  wb = await startWorkbench({
    workspace,
    vsix,
    settings: {
      // 50% keeps the model's accuracy; 99% leaves about one weight of 80, which the gate must refuse.
      'fairPrune.sparsities': [0.5, 0.99],
      'fairPrune.gate.minAccuracy': 0.75,
      'fairPrune.losses': ['ce', 'pw'],
      'fairPrune.epochs': 2,
      'fairPrune.batchSize': 64,
      'fairPrune.learningRate': 0.01,
      'fairPrune.bootstrapResamples': 200,
    },
  });
  tempRoot = wb.tempRoot;
});

after(async () => {
  await wb?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test(
  'right-click model.json → Prune with Fairness Check…: pickers with group counts, live points in the curves panel, report and tree',
  { skip: skip ?? false, timeout: 300_000 },
  async () => {
    const page = wb!.page;
    const denseHash = sha256(modelJson);
    await step('explorer-right-click', async () => {
      await explorerRow('model').click();
      await explorerRow('model.json').waitFor();
      await explorerRow('model.json').click({ button: 'right' });
      await contextMenu('Prune with Fairness Check…');
    });
    await step('pickers', async () => {
      // Started from the model: no model picker; the data set picker lists the workspace's CSVs.
      const data = page.locator('.quick-input-widget', { hasText: '(2/6)' });
      await data.waitFor();
      const items = await wb!.quickPickItems();
      assert.ok(items.includes('loans.csv') && items.includes('broken.csv'), JSON.stringify(items));
      await wb!.quickPickSelect('loans.csv');
      const label = page.locator('.quick-input-widget', { hasText: '(3/6)' });
      await label.waitFor();
      // Each column says what it holds: the label's classes and the subgroups with their counts.
      const decision = await label.locator('.quick-input-list .monaco-list-row', { hasText: 'decision' }).textContent();
      assert.match(decision ?? '', /2 values: (approved|denied) \d+, (approved|denied) \d+/);
      await wb!.screenshot('ext-01-label-picker');
      await wb!.quickPickSelect('decision');
      const groups = page.locator('.quick-input-widget', { hasText: '(4/6)' });
      await groups.waitFor();
      const region = groups.locator('.quick-input-list .monaco-list-row', { hasText: 'region' });
      assert.match((await region.textContent()) ?? '', /2 values: north 2250, south 750/);
      await region.click();
      await groups.locator('.quick-input-action .monaco-button', { hasText: 'OK' }).click();
      await page.locator('.quick-input-widget', { hasText: '(5/6)' }).waitFor();
      assert.equal(
        await page.locator('.quick-input-widget .quick-input-box input').inputValue(),
        '0.5, 0.99',
        'sparsities prefilled from settings',
      );
      await page.keyboard.press('Enter');
      const losses = page.locator('.quick-input-widget', { hasText: '(6/6)' });
      await losses.waitFor();
      await losses.locator('.quick-input-action .monaco-button', { hasText: 'OK' }).click();
    });
    const session = await step('session-runs', async () => {
      // No notification stays up while it runs (its progress is in the Sessions view and the status bar).
      const dir = await newSession([]);
      // The curves panel opened by itself and draws the points as they land.
      const curves = await frameWith('#chart-table', 60_000);
      await until(
        'a first point in the curves panel',
        async () => ((await curves.locator('#points-grid tr[data-point]').count()) >= 1 ? true : undefined),
        120_000,
      );
      await wb!.screenshot('ext-02-live-points');
      await wb!.waitForNotification(/session finished with 4 pruned points/, { timeoutMs: 180_000 });
      return dir;
    });
    const results = readResults(session)!;
    assert.equal(results.status, 'completed');
    assert.deepEqual(results.points.map((p) => `${p.targetSparsity}/${p.loss}`).sort(), [
      '0.5/ce',
      '0.5/pw',
      '0.99/ce',
      '0.99/pw',
    ]);
    assert.equal(sha256(modelJson), denseHash, 'the dense model is never modified');

    await step('report-and-tree', async () => {
      const curves = await frameWith('#chart-table');
      assert.equal(await curves.locator('#points-grid tr[data-point]').count(), 4);
      // The side-bar report: dense vs pruned accuracy by group with a verdict per point.
      const report = await frameWith('section.point');
      assert.equal(await report.locator('section.point').count(), 4);
      assert.match((await report.locator('.meta').textContent()) ?? '', /groups by region · wasm backend/);
      assert.match((await report.locator('section.dense').textContent()) ?? '', /north[\s\S]*south|south[\s\S]*north/);
      // The editor stayed responsive while the session ran: the extension host's event-loop delay.
      const loop = await outputLines('event-loop delay', /p99 ([\d.]+) ms, max ([\d.]+) ms \((\d+) samples/);
      const [, p99, max, samples] = /p99 ([\d.]+) ms, max ([\d.]+) ms \((\d+) samples/.exec(loop)!;
      console.log(
        `extension host event-loop delay during a 4-point session: p99 ${p99} ms, max ${max} ms (${samples} samples)`,
      );
      assert.ok(Number(samples) > 10, 'sampled through the session');
      // When it stalled and after what (the engine starting, an event Fair Prune handled, or nothing of ours).
      const stallLine = await outputLines('event-loop stalls', /event-loop stalls over \d+ ms: .*slowest handlers: /);
      // (the output view wraps long lines: its text has runs of spaces where it wrapped)
      const stalls = /event-loop stalls over .*$/.exec(stallLine)![0].replace(/\s+/g, ' ');
      console.log(stalls);
      recordMeasurement({
        eventLoopDelayP99Ms: Number(p99),
        eventLoopDelayMaxMs: Number(max),
        eventLoopSamples: Number(samples),
        eventLoopStalls: stalls,
      });
      await openFairPruneSideBar();
      await sessionsRow('model/model.json').waitFor();
      const sessionRow = sessionsRow(/region/);
      await sessionRow.waitFor();
      // Its row shows the report when clicked; the twistie opens its points.
      if ((await sessionRow.getAttribute('aria-expanded')) !== 'true')
        await sessionRow.locator('.monaco-tl-twistie').click();
      await sessionsRow('50% · ce').first().waitFor();
      assert.equal(await sessionsRow(/% · (ce|pw)/).count(), 4);
      await wb!.screenshot('ext-03-session-finished');
    });
  },
);

/** The tree rows of points, whether each passes the gate (from its icon) and whether it is the ★ recommended one. */
async function pointRows(): Promise<{ label: string; passed: boolean; recommended: boolean }[]> {
  const rows = sessionsRow(/% · (ce|pw)/);
  const n = await rows.count();
  const out: { label: string; passed: boolean; recommended: boolean }[] = [];
  for (let i = 0; i < n; i++) {
    const row = rows.nth(i);
    const label = ((await row.locator('.label-name, .monaco-highlighted-label').first().textContent()) ?? '').trim();
    const passed = (await row.locator('.codicon-pass').count()) > 0;
    const failed = (await row.locator('.codicon-error').count()) > 0;
    assert.ok(passed !== failed, `point row ${label} shows exactly one of the pass / fail icons`);
    const recommended = /★ recommended/.test((await row.locator('.label-description').first().textContent()) ?? '');
    out.push({ label, passed, recommended });
  }
  return out;
}

/** "50% · ce" → its sparsity, 0.5. */
const sparsityOfRow = (label: string) => Number(/(\d+)%/.exec(label)![1]) / 100;

function committedFolders(): string[] {
  return fs.readdirSync(workspace).filter((d) => d.startsWith('model.pruned-'));
}

test(
  'commit a point that passes the fairness gate: model, fairness.json and FAIRNESS.md beside the original, and it opens',
  { skip: skip ?? false, timeout: 120_000 },
  async () => {
    const page = wb!.page;
    const denseHash = sha256(modelJson);
    const rows = await step('verdicts', () => pointRows());
    // The tree marks one point ★ recommended: the sparsest that passes the gate. The user commits that one.
    const recommended = rows.filter((r) => r.recommended);
    assert.equal(recommended.length, 1, `one ★ recommended point in the tree: ${JSON.stringify(rows)}`);
    const pass = recommended[0];
    assert.ok(pass.passed, 'the recommended point passes the gate');
    const sparsest = Math.max(...rows.filter((r) => r.passed).map((r) => sparsityOfRow(r.label)));
    assert.equal(
      sparsityOfRow(pass.label),
      sparsest,
      `the recommended point is the sparsest that passes: ${JSON.stringify(rows)}`,
    );
    let confirmed = '';
    await step('commit-pass', async () => {
      await sessionsRow(pass.label).first().click({ button: 'right' });
      await contextMenu('Commit Pruned Model…');
      // Nothing is written before the developer confirms the folder, told where the gate policy came from.
      await page.locator('.monaco-dialog-box', { hasText: /to model\.pruned-/ }).waitFor();
      assert.deepEqual(committedFolders(), [], 'nothing written while the confirmation is open');
      const confirm = await answerDialog(page, /to model\.pruned-/, 'Commit');
      const named = /commit (s\d\.\d\d-[\w-]+) to (model\.pruned-[\w.-]+)\?/.exec(confirm);
      assert.ok(named, `the confirmation names the point and the folder: ${confirm}`);
      assert.ok(
        confirm.includes(`into the new folder ${path.join(workspace, named[2])}`),
        `the full destination path: ${confirm}`,
      );
      assert.match(
        confirm,
        /Gate policy from user settings\./,
        'fairPrune.gate.minAccuracy is set in the user settings',
      );
      confirmed = named[2];
      const message = await wb!.waitForNotification(/committed .* to model\.pruned-/);
      await wb!.screenshot('ext-04-committed');
      await toast(message).locator('.monaco-button', { hasText: 'Open FAIRNESS.md' }).click();
      await page.locator('.tabs-container .tab.active', { hasText: 'FAIRNESS.md' }).waitFor();
      await until(
        'FAIRNESS.md text in the editor',
        async () =>
          ((await page.locator('.editor-instance .view-lines').first().textContent()) ?? '')
            .replace(/\u00a0/g, ' ')
            .includes('**Passed** the fairness gate') || undefined,
      );
      await wb!.screenshot('ext-05-fairness-md-open');
    });
    const [folder] = committedFolders();
    assert.ok(folder, 'a model.pruned-* folder beside the model');
    assert.equal(folder, confirmed, 'written where the confirmation said');
    const dir = path.join(workspace, folder);
    for (const f of ['model.json', 'fairness.json', 'FAIRNESS.md'])
      assert.ok(fs.existsSync(path.join(dir, f)), `${f} written`);
    const record = JSON.parse(fs.readFileSync(path.join(dir, 'fairness.json'), 'utf8')) as {
      decision: string;
      hashes: Record<string, string>;
      engine: { backend: { name: string } };
    };
    assert.equal(record.decision, 'passed');
    for (const k of ['denseModel', 'data', 'prunedWeights'])
      assert.match(record.hashes[k], /^[0-9a-f]{64}$/, `hashes.${k}`);
    assert.equal(record.engine.backend.name, 'wasm');
    assert.equal(sha256(modelJson), denseHash, 'never written over the original');
  },
);

test(
  'commit a point that fails the gate: refused, naming the rule and by how much; nothing written',
  { skip: skip ?? false, timeout: 120_000 },
  async () => {
    const page = wb!.page;
    const before = committedFolders();
    const fail = (await step('verdicts', () => pointRows())).find((r) => !r.passed);
    assert.ok(fail, 'some point fails the gate');
    await step('commit-fail', async () => {
      await sessionsRow(fail.label).first().click({ button: 'right' });
      await contextMenu('Commit Pruned Model…');
      const dialog = page.locator('.monaco-dialog-box');
      await dialog.waitFor();
      const text = (await dialog.textContent()) ?? '';
      assert.match(text, /fails the fairness gate and was not committed/);
      assert.match(text, /✗ .*(worst-group|gap|accuracy).*\d/i);
      await wb!.screenshot('ext-06-commit-refused');
      await dialog.locator('.monaco-button', { hasText: /^Cancel$/ }).click();
      await dialog.waitFor({ state: 'detached' });
    });
    // The host says when it has finished with the refusal; only then is "nothing written" a fact.
    await outputLines('was not committed', /s\d\.\d\d-[\w-]+ was not committed: it fails the fairness gate/);
    assert.deepEqual(committedFolders(), before, 'a refused point writes nothing');
  },
);

/** The engine processes of this workbench (dist/engine.js of the installed extension). */
function enginePids(): number[] {
  return processesMentioning(tempRoot).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`${path.sep}dist${path.sep}engine.js`);
    } catch {
      return false;
    }
  });
}

/** From the palette, a long session on big.csv; resolves with its folder once its first point is in. */
async function startLongSession(): Promise<string> {
  const known = sessionFolders();
  await step('start-long', () => answerPickers({ data: 'big.csv', sparsities: LONG_SPARSITIES, fromPalette: true }));
  const dir = await newSession(known);
  await until(
    'a first finished point',
    () => ((readResults(dir)?.points.length ?? 0) >= 1 ? true : undefined),
    120_000,
  );
  return dir;
}

test(
  'cancel a running session from its item in the Sessions view: the engine stops, finished points are kept whole',
  { skip: skip ?? false, timeout: 240_000 },
  async () => {
    const dir = await startLongSession();
    await step('cancel', async () => {
      assert.equal(enginePids().length, 1, 'one engine process runs the session');
      assert.equal(
        readResults(dir)?.status,
        'running',
        'the long session is still running when the second one is asked for',
      );
      // One session per model: a second one asks whether to queue it or cancel the running one.
      await answerPickers({ data: 'big.csv', fromPalette: true });
      const busy = wb!.page.locator('.monaco-dialog-box', {
        hasText: 'A pruning session is already running for model/model.json',
      });
      await busy.waitFor();
      for (const label of ['Queue It', 'Cancel Running Session', 'Cancel'])
        await busy.locator('.monaco-button', { hasText: new RegExp(`^${label}$`) }).waitFor();
      await wb!.screenshot('ext-07-second-session-asks');
      await busy.locator('.monaco-button', { hasText: /^Cancel$/ }).click();
      await busy.waitFor({ state: 'detached' });
      assert.equal(enginePids().length, 1, 'backing out of the question starts nothing');
      // The status bar says a session runs, whichever side bar is open; a click brings the Sessions view.
      await wb!.page
        .locator('.part.statusbar .statusbar-item', { hasText: /Fair Prune/ })
        .first()
        .click();
      // The running session's item: the model, with a spinning icon, above the sessions.
      const running = sessionsRow('model/model.json').filter({ has: wb!.page.locator('.codicon-sync') });
      await running.waitFor();
      const description = running.locator('.label-description').first();
      // Two points train at once (the engine's thread and a worker thread), and the running item says which.
      const doing =
        os.availableParallelism() >= 2
          ? /^points \d+, \d+ of 38 \(2 at a time\): \d+% of the sweep done/
          : /^point \d+\/38: /;
      const said = await until(
        'the running item saying what the session is doing',
        async () => {
          const t = ((await description.textContent()) ?? '').replace(/\s+/g, ' ').trim();
          return doing.test(t) ? t : undefined;
        },
        20_000,
      );
      console.log(`the running session's item: ${said}`);
      if (os.availableParallelism() >= 2)
        await until(
          'the status bar counting both points',
          async () =>
            (await wb!.page
              .locator('.part.statusbar .statusbar-item', { hasText: /Fair Prune \d+\+\d+\/\d+/ })
              .count()) > 0 || undefined,
          20_000,
        );
      // The view's own progress bar runs with the session.
      const sessionsPane = wb!.page.locator('.part.sidebar .pane', {
        has: wb!.page.locator('.pane-header', { hasText: /Sessions/i }),
      });
      await sessionsPane.locator('.monaco-progress-container.active').first().waitFor({ timeout: 10_000 });
      // While it runs, the palette offers Cancel, with its keybinding.
      await wb!.page.keyboard.press('Escape');
      await wb!.page.keyboard.press('F1');
      await wb!.page.locator('.quick-input-widget .quick-input-box input').fill('>Fair Prune: Cancel Pruning Session');
      const paletteRow = wb!.page.locator('.quick-input-widget .monaco-list-row', {
        hasText: 'Cancel Pruning Session',
      });
      await paletteRow.waitFor();
      const keys = ((await paletteRow.locator('.monaco-keybinding').first().textContent()) ?? '').replace(/\W/g, '');
      assert.equal(keys, 'CtrlKCtrlShiftX', 'Cancel has its keybinding while a session runs');
      await wb!.page.keyboard.press('Escape');
      await wb!.screenshot('ext-08-before-cancel');
      const before = committedFolders();
      // The running item's own Cancel (an inline action, shown on hover).
      await running.hover();
      const cancel = running.locator('.actions .action-label[aria-label^="Cancel Pruning Session"]');
      await cancel.waitFor();
      const clicked = Date.now();
      await cancel.click();
      // Judged on events: the engine process ends and results.json says cancelled with fewer points than
      // the sweep (below). How fast is not asserted here (a shared CI machine makes any budget flaky);
      // the time is logged for a person to read.
      await until('the engine process to end', () => (enginePids().length === 0 ? true : undefined), 30_000);
      console.log(`engine stopped ${Date.now() - clicked} ms after Cancel was clicked`);
      await wb!.waitForNotification(/session cancelled; \d+ finished points? (is|are) kept/);
      await running.waitFor({ state: 'detached', timeout: 10_000 });
      await wb!.screenshot('ext-09-cancelled');
      // The curves panel now shows the session as cancelled, with the points it finished.
      const curves = await frameWith('#chart-table', 10_000);
      await until('the curves panel marks the session cancelled', async () =>
        /cancelled/.test((await curves.locator('h1').textContent()) ?? '') ? true : undefined,
      );
      assert.ok((await curves.locator('#points-grid tr[data-point]').count()) >= 1, 'the kept points are listed');
      assert.deepEqual(committedFolders(), before, 'a cancel commits nothing');
      // Once no session runs, the palette no longer offers Cancel.
      await wb!.page.keyboard.press('Escape');
      await wb!.page.keyboard.press('F1');
      await wb!.page.locator('.quick-input-widget .quick-input-box input').fill('>Fair Prune: Cancel Pruning Session');
      const rows = wb!.page.locator('.quick-input-widget .monaco-list-row');
      const none = wb!.page.locator('.quick-input-widget', { hasText: 'No matching commands' });
      // (the palette matches loosely: other Fair Prune commands may be listed, but not Cancel)
      await until(
        'the palette listing what matches',
        async () => (await rows.count()) + (await none.count()) || undefined,
      );
      assert.equal(await rows.filter({ hasText: 'Cancel Pruning Session' }).count(), 0, 'no Cancel once it ended');
      await wb!.page.keyboard.press('Escape');
    });
    const r = await until('results.json marked cancelled', () =>
      readResults(dir)?.status === 'cancelled' ? readResults(dir) : undefined,
    );
    assert.ok(r.points.length >= 1 && r.points.length < 38, `kept ${r.points.length} finished points`);
    // The kept points' files are whole (each as hashed when it was saved), and no temporary file is left.
    for (const p of r.points) {
      assert.ok(p.files && Object.keys(p.files).length > 0, `${p.id} lists its files`);
      for (const [file, hash] of Object.entries(p.files))
        assert.equal(sha256(path.join(dir, p.modelDir, file)), hash, `${p.id}/${file} is whole`);
    }
    const temporaries = fs.readdirSync(dir, { recursive: true }).filter((f) => String(f).endsWith('.tmp'));
    assert.deepEqual(temporaries, [], 'no temporary file left in the session folder');
  },
);

test(
  'the engine dies mid-session: a clear message, the session marked failed with what it finished',
  { skip: skip ?? false, timeout: 240_000 },
  async () => {
    const dir = await startLongSession();
    await step('kill', async () => {
      const pids = enginePids();
      assert.equal(pids.length, 1);
      process.kill(pids[0], 'SIGKILL'); // as the OOM killer would
      const message = await wb!.waitForNotification(/session failed/, { timeoutMs: 15_000 });
      assert.match(message, /the engine process was killed \(SIGKILL\)/);
      assert.match(message, /\d+ finished points? (is|are) kept/);
      // The Sessions view no longer shows it running (its item with the spinning icon goes).
      const running = sessionsRow('model/model.json').filter({ has: wb!.page.locator('.codicon-sync') });
      await running.waitFor({ state: 'detached', timeout: 10_000 });
      await wb!.screenshot('ext-10-engine-killed');
    });
    const r = await until('results.json marked failed', () =>
      readResults(dir)?.status === 'failed' ? readResults(dir) : undefined,
    );
    assert.ok(r.points.length >= 1);
    assert.match(r.error ?? '', /killed/);
  },
);

test(
  'a broken CSV: the next session starts cleanly and the error names the file, the row and the column',
  { skip: skip ?? false, timeout: 180_000 },
  async () => {
    await step('broken-csv', async () => {
      await answerPickers({ data: 'broken.csv', fromPalette: true });
      const message = await wb!.waitForNotification(/session failed/, { timeoutMs: 60_000 });
      assert.match(message, /broken\.csv/);
      assert.match(message, /row 43|line 43|row 42/);
      assert.match(message, /x2/);
      assert.match(message, /n\/a/);
      // It failed before it began: nothing is left shown as running.
      const running = sessionsRow('model/model.json').filter({ has: wb!.page.locator('.codicon-sync') });
      await running.waitFor({ state: 'detached', timeout: 10_000 });
      await wb!.screenshot('ext-11-broken-csv');
    });
  },
);

const kerasModel = path.join(repoRoot, '..', 'shared', 'models', 'h5-keras3.5-legacy-mnist-cnn-sequential');
const kerasFile = fs.existsSync(kerasModel) ? fs.readdirSync(kerasModel).find((f) => /\.h5$/i.test(f)) : undefined;

test(
  'a Keras .h5 file (upper-case extension too) offers the same right-click entry, which starts the pickers with it',
  { skip: skip ?? (kerasFile ? false : '../shared/models is absent'), timeout: 60_000 },
  async () => {
    // A copy in the temporary workspace (never into the repository), renamed .H5 to check case.
    fs.mkdirSync(path.join(workspace, 'keras'), { recursive: true });
    fs.copyFileSync(path.join(kerasModel, kerasFile!), path.join(workspace, 'keras', 'digits.H5'));
    await step('keras-right-click', async () => {
      await wb!.page.locator('.part.activitybar .action-item .action-label[aria-label^="Explorer"]').first().click();
      await explorerRow('keras').waitFor({ timeout: 15_000 });
      await explorerRow('keras').click();
      await explorerRow('digits.H5').click({ button: 'right' });
      await contextMenu('Prune with Fairness Check…');
      const data = wb!.page.locator('.quick-input-widget', { hasText: /\(2\/6\): the data set for keras/ });
      await data.waitFor();
      await wb!.screenshot('ext-12-keras-right-click');
      await wb!.page.keyboard.press('Escape');
      // From the palette, the model picker lists it too (its upper-case extension included).
      await wb!.runCommand('Fair Prune: Prune with Fairness Check…');
      await wb!.page.locator('.quick-input-widget', { hasText: '(1/6)' }).waitFor();
      const models = await until('the model picker rows', async () => {
        const items = await wb!.quickPickItems();
        return items.includes('digits.H5') ? items : undefined;
      });
      assert.ok(models.includes('model/model.json'), JSON.stringify(models));
      await wb!.page.keyboard.press('Escape');
    });
  },
);

test(
  'reloading the window ends a running engine (deactivate), and activation after it is quick',
  { skip: skip ?? false, timeout: 240_000 },
  async () => {
    const dir = await startLongSession();
    const [pid] = enginePids();
    assert.ok(pid, 'the engine runs');
    await step('reload', async () => {
      await wb!.runCommand('Developer: Reload Window');
      // The old extension host deactivates Fair Prune, which ends its engine; code-server stays up.
      await until(`engine ${pid} to end`, () => (fs.existsSync(`/proc/${pid}`) ? undefined : true), 20_000);
    });
    // Not left "running" forever: marked cancelled, with why, and its finished points kept.
    const r = readResults(dir)!;
    assert.equal(r.status, 'cancelled');
    assert.match(r.error ?? '', /window closed or reloaded/);
    assert.ok(r.points.length >= 1);
    const log = await step('activation', async () => {
      await wb!.page.locator('.monaco-workbench .part.statusbar').waitFor();
      return outputLines('activated in', /activated in [\d.]+ ms/);
    });
    const ms = Number(/activated in ([\d.]+) ms/.exec(log)![1]);
    console.log(`Fair Prune activated in ${ms} ms in the extension host (no TensorFlow.js loaded there)`);
    assert.ok(ms > 0);
    recordMeasurement({ activationMs: ms });
    await wb!.screenshot('ext-13-after-reload');
  },
);
