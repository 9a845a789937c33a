// The side-bar Fairness Report in a real VS Code (code-server 4.100.3) and Chromium, in the dark, light
// and high-contrast themes, opened as a user opens it: the Fair Prune activity bar icon, then a session's
// row in the Sessions view. Its text, tables and VS Code Elements Commit buttons must be legible (WCAG
// contrast measured in each theme), the CSP must refuse nothing, a failing point's Commit is disabled and
// says why, and a passing point's Commit (by mouse, and by keyboard) commits it.
// Skips when the e2e set-up is absent (scripts/run-tests.sh counts a failed set-up as a failure).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Frame } from 'playwright-core';
import type { SessionResults } from '../../src/protocol/results';
import {
  answerDialog,
  e2eSkipReason,
  frameWith,
  repoRoot,
  until,
  withWorkbench,
  type Theme,
  type Workbench,
} from './harness';
import { assertLegible, cspViolations } from './legibility';
import { cliSession } from '../session-fixture';
import { checkPoint, DEFAULT_POLICY } from '../../src/shared/gate';

const skip = e2eSkipReason();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fairprune-e2e-report-'));
const workspace = path.join(tmp, 'workspace');
let results: SessionResults;
// A gate the 50% point passes and the 99% one (a model pruned to chance) fails: checked in before().
const settings = {
  'fairPrune.gate.minAccuracy': 0.7,
  'fairPrune.gate.maxWorstGroupDrop': 0.25,
  'fairPrune.gate.maxGapIncrease': 0.25,
  'fairPrune.gate.judgeOn': 'estimate',
};
const policy = {
  ...DEFAULT_POLICY,
  minAccuracy: 0.7,
  maxWorstGroupDrop: 0.25,
  maxGapIncrease: 0.25,
  judgeOn: 'estimate' as const,
};

before(async () => {
  if (skip) return;
  fs.mkdirSync(workspace);
  ({ results } = await cliSession(workspace, path.join(repoRoot, 'dist', 'cli.js'), {
    rows: 3000,
    sparsity: '0.5,0.99',
    loss: 'ce',
    epochs: 2,
    lr: 0.01,
    bootstrap: 100,
  }));
  assert.deepEqual(
    results.points.map((p) => [p.targetSparsity, checkPoint(p, policy).passed]),
    [
      [0.5, true],
      [0.99, false],
    ],
    'the fixture session fits the test',
  );
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The activity bar's Fair Prune icon, then the session's row in the Sessions view: the report shows it. */
async function openReport(wb: Workbench): Promise<Frame> {
  const page = wb.page;
  const sessionsHeader = page.locator('.part.sidebar .pane-header', { hasText: /Sessions/i });
  if (!(await sessionsHeader.isVisible().catch(() => false))) {
    await page.locator('.part.activitybar .action-item .action-label[aria-label^="Fair Prune"]').first().click();
  }
  await sessionsHeader.waitFor();
  const sessionRow = page.locator('.part.sidebar .monaco-list-row', { hasText: 'region' }).first();
  await sessionRow.waitFor();
  await sessionRow.click();
  const frame = await frameWith(wb, 'section.point');
  await until('both points in the report', async () =>
    (await frame.locator('section.point').count()) === 2 ? true : undefined,
  );
  // the Commit buttons are VS Code Elements' buttons, upgraded (their shadow root painted)
  await until(
    'the Commit buttons upgraded',
    () =>
      frame.evaluate(() =>
        Array.from(document.querySelectorAll('vscode-button.commit')).every((b) =>
          b.shadowRoot?.querySelector('.base'),
        ),
      ) || undefined,
  );
  return frame;
}

const point = (sparsity: number) => results.points.find((p) => p.targetSparsity === sparsity)!;
const commitButton = (frame: Frame, id: string) =>
  frame.locator(`section.point[data-point="${id}"] vscode-button.commit`);

async function checkLook(frame: Frame, theme: Theme): Promise<void> {
  await assertLegible(frame, theme, [
    { what: 'headings and summaries', selector: 'header h2, section h3, p.summary, p.verdict' },
    { what: 'the PASS / FAIL badges', selector: '.badge' },
    { what: 'changes against dense', selector: '.worse, .better' },
    { what: 'secondary text', selector: 'header .meta, caption, .why-disabled' },
    { what: 'the group tables', selector: 'section table td, section table th' },
    { what: 'links', selector: 'button.link' },
    { what: 'the enabled Commit button', selector: 'vscode-button.commit:not([disabled])', shadow: '.base' },
  ]);
  assert.deepEqual(await cspViolations(frame), [], `${theme}: the CSP refused nothing`);
  // A failing point's Commit: disabled, out of the tab order, and the reason is written under it.
  const failing = point(0.99);
  assert.equal(await commitButton(frame, failing.id).getAttribute('disabled'), '');
  assert.equal(await commitButton(frame, failing.id).evaluate((b) => (b as HTMLElement).tabIndex), -1);
  assert.match(
    (await frame.locator(`section.point[data-point="${failing.id}"] .why-disabled`).textContent()) ?? '',
    /Fails the fairness gate/,
  );
  assert.equal(await commitButton(frame, point(0.5).id).getAttribute('disabled'), null);
}

/** Screenshots of the report's top, then of its points with the Sessions view collapsed (more room). */
async function shot(wb: Workbench, frame: Frame, name: string): Promise<void> {
  await wb.screenshot(name);
  await wb.page.locator('.part.sidebar .pane-header', { hasText: /Sessions/i }).click();
  await frame
    .locator('section.point')
    .first()
    .evaluate((e) => e.scrollIntoView({ block: 'start' }));
  await wb.screenshot(`${name}-points`);
}

async function expectCommitted(wb: Workbench, id: string): Promise<void> {
  await answerDialog(wb.page, new RegExp(`commit ${id} to model\\.pruned-${id}\\?`), 'Commit');
  await wb.waitForNotification(new RegExp(`committed ${id}`));
  const committed = path.join(workspace, `model.pruned-${id}`);
  for (const f of ['model.json', 'fairness.json', 'FAIRNESS.md'])
    assert.ok(fs.existsSync(path.join(committed, f)), `${f} in ${committed}`);
  fs.rmSync(committed, { recursive: true, force: true });
}

test(
  "dark theme: legible, Elements Commit buttons gate-aware, a click on the passing point's Commit commits it",
  { skip: skip ?? false, timeout: 240_000 },
  async () => {
    await withWorkbench(
      { workspace, extensionDevelopmentPath: repoRoot, settings, theme: 'dark' },
      'report-dark',
      async (wb) => {
        const frame = await openReport(wb);
        await checkLook(frame, 'dark');
        await shot(wb, frame, 'report-dark');
        await commitButton(frame, point(0.5).id).click();
        await expectCommitted(wb, point(0.5).id);
      },
    );
  },
);

test(
  'light theme: legible; Commit from the keyboard (Tab to it, Enter)',
  { skip: skip ?? false, timeout: 240_000 },
  async () => {
    await withWorkbench(
      { workspace, extensionDevelopmentPath: repoRoot, settings, theme: 'light' },
      'report-light',
      async (wb) => {
        const frame = await openReport(wb);
        await checkLook(frame, 'light');
        await shot(wb, frame, 'report-light');
        const passing = point(0.5);
        // From the last link in the header, Tab reaches the first enabled Commit button (the passing point's;
        // a table too wide for the side bar scrolls, and takes a Tab stop of its own on the way).
        assert.equal(
          results.points.findIndex((p) => p.id === passing.id),
          0,
          'the passing point is the first section',
        );
        await frame.locator('button.link[data-open-report]').focus();
        const stops: string[] = [];
        for (let i = 0; i < 8 && !stops.includes(passing.id); i++) {
          await wb.page.keyboard.press('Tab');
          stops.push(
            await frame.evaluate(() => {
              const e = document.activeElement as HTMLElement | null;
              return e?.dataset.point ?? `${e?.tagName.toLowerCase()}.${e?.className}`;
            }),
          );
        }
        assert.ok(stops.includes(passing.id), `Tab reached the Commit button; it stopped at ${stops.join(', ')}`);
        await wb.page.keyboard.press('Enter');
        await expectCommitted(wb, passing.id);
      },
    );
  },
);

test('high-contrast theme: legible', { skip: skip ?? false, timeout: 180_000 }, async () => {
  await withWorkbench(
    { workspace, extensionDevelopmentPath: repoRoot, settings, theme: 'hc' },
    'report-hc',
    async (wb) => {
      const frame = await openReport(wb);
      await checkLook(frame, 'hc');
      await shot(wb, frame, 'report-hc');
    },
  );
});
