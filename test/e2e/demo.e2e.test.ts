// "Try the Demo" as a new user meets it, in a real VS Code (code-server 4.100.3) and Chromium: a fresh,
// empty workspace, the Fair Prune side bar's welcome button, one Enter on where to write it, and the
// curves panel ends up drawing the demo's points (the ink groups × ce, pw, group-balanced) with the
// session's own numbers. The settings keep the run short (one sparsity, one epoch); the engine runs at
// the lowest priority, so on a busy machine it takes as long as the other work lets it. Its screenshots
// are the walkthrough's images (cropped and copied by hand into media/walkthrough/ after a look). Then, in a
// workbench of its own, the walkthrough opens from the Welcome page with its five steps.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { SessionResults } from '../../src/protocol/results';
import { e2eSkipReason, frameWith, repoRoot, until, withWorkbench } from './harness';

const skip = e2eSkipReason();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fairprune-e2e-demo-'));
const workspace = path.join(tmp, 'empty-workspace');
const settings = { 'fairPrune.sparsities': [0.8], 'fairPrune.epochs': 1, 'fairPrune.bootstrapResamples': 200 };

after(() => fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 500 }));

interface Drawn {
  group: string;
  loss: string;
  points: { x: number; y: number; pointId: string }[];
}

test(
  "Try the Demo in an empty workspace ends with the curves panel showing the demo's points",
  { skip: skip ?? false, timeout: 1_200_000 },
  async () => {
    fs.mkdirSync(workspace);
    await withWorkbench(
      { workspace, extensionDevelopmentPath: repoRoot, settings, viewport: { width: 1280, height: 800 } },
      'demo',
      async (wb) => {
        const { page } = wb;
        // The Fair Prune side bar of an empty workspace: the Sessions view's welcome text has the button.
        await page
          .locator(
            '.part.activitybar .action-item a[aria-label^="Fair Prune"], .part.activitybar .action-item .action-label[aria-label^="Fair Prune"]',
          )
          .first()
          .click();
        const button = page
          .locator('.part.sidebar .welcome-view-content .monaco-button', { hasText: 'Try the Demo' })
          .first();
        await button.waitFor({ timeout: 60_000 });
        await wb.screenshot('demo-01-welcome-button');
        await button.click();
        // Where to write it: the workspace folder is the first choice.
        await wb.quickPickSelect(/fair-prune-demo/, { timeoutMs: 30_000 });

        // The engine writes the data set, trains the dense CNN, starts the session: the curves panel opens by itself.
        const frame = await frameWith(wb, '#main-figure[data-series]', 900_000);
        const series = await until(
          "the demo's three points drawn",
          async () => {
            const s = JSON.parse((await frame.locator('#main-figure').getAttribute('data-series')) ?? '[]') as Drawn[];
            return s.length === 6 && s.every((x) => x.points.length === 1) ? s : undefined;
          },
          900_000,
        );
        await wb.waitForNotification(/session finished with 3 pruned points/, { timeoutMs: 120_000 });
        const folder = path.join(workspace, 'fair-prune-demo');
        assert.deepEqual(
          fs.readdirSync(folder).sort(),
          ['data', 'model'],
          'the demo folder holds the data set and the model',
        );
        assert.ok(
          fs.existsSync(path.join(folder, 'model', 'model.json')) &&
            fs.existsSync(path.join(folder, 'data', 'data.csv')),
        );
        const sessions = path.join(workspace, '.fairprune', 'sessions');
        const results = JSON.parse(
          fs.readFileSync(path.join(sessions, fs.readdirSync(sessions)[0], 'results.json'), 'utf8'),
        ) as SessionResults;
        assert.equal(results.status, 'completed');
        assert.deepEqual(results.points.map((p) => p.loss).sort(), ['ce', 'group-balanced', 'pw']);
        // One series per ink group × loss, each with the session's own test accuracy.
        assert.deepEqual(series.map((s) => `${s.group}|${s.loss}`).sort(), [
          'ink=cool|ce',
          'ink=cool|group-balanced',
          'ink=cool|pw',
          'ink=warm|ce',
          'ink=warm|group-balanced',
          'ink=warm|pw',
        ]);
        for (const s of series) {
          const point = results.points.find((p) => p.loss === s.loss)!;
          assert.equal(s.points[0].pointId, point.id);
          assert.equal(s.points[0].y, point.evaluation.groups.find((g) => g.group === s.group)!.accuracy.value);
        }
        await page.keyboard.press('Escape');
        await wb.screenshot('walkthrough-demo-curves');
        // The Sessions view with the demo's session and its points.
        const sessionsPane = page.locator('.part.sidebar .pane', {
          has: page.locator('.pane-header', { hasText: /Sessions/i }),
        });
        for (let i = 0; i < 3; i++) {
          const twistie = sessionsPane.locator('.monaco-list-row .monaco-tl-twistie.collapsible.collapsed').first();
          if ((await twistie.count()) === 0) break;
          await twistie.click();
        }
        await wb.screenshot('walkthrough-sessions');

        // Pruning one's own model starts with the models found in the workspace.
        await wb.runCommand('Fair Prune: Prune with Fairness Check…');
        await page.locator('.quick-input-widget', { hasText: '(1/6)' }).waitFor();
        await wb.screenshot('walkthrough-prune-pickers');
        await page.keyboard.press('Escape');

        // The policy: the gate's settings.
        await wb.runCommand('Preferences: Open User Settings');
        const search = page
          .locator(
            '.settings-editor .suggest-input-container .monaco-editor textarea, .settings-editor .search-container textarea',
          )
          .first();
        await search.waitFor({ timeout: 30_000 });
        await search.focus();
        await page.keyboard.type('fairPrune.gate');
        await page
          .locator('.settings-editor .setting-item-contents', { hasText: /Max Worst Group Drop/i })
          .first()
          .waitFor({ timeout: 30_000 });
        await wb.screenshot('walkthrough-policy');
      },
    );
  },
);

test(
  'the walkthrough opens from the Welcome page with its five steps, each with its button',
  { skip: skip ?? false, timeout: 240_000 },
  async () => {
    const empty = path.join(tmp, 'walkthrough-workspace');
    fs.mkdirSync(empty);
    await withWorkbench(
      { workspace: empty, extensionDevelopmentPath: repoRoot, viewport: { width: 1280, height: 800 } },
      'walkthrough',
      async (wb) => {
        const { page } = wb;
        await wb.runCommand('Help: Welcome', { timeoutMs: 60_000 });
        // code-server may open its own walkthrough first: its "Welcome" link leads back to the list.
        const back = page.locator('.gettingStartedContainer .prev-button', { hasText: 'Welcome' }).first();
        const entry = page
          .locator('.gettingStartedContainer button.getting-started-category', {
            hasText: 'Get Started with Fair Prune',
          })
          .first();
        await until(
          'the Welcome page',
          async () => (await entry.isVisible()) || (await back.isVisible()) || undefined,
          60_000,
        );
        if (!(await entry.isVisible()) && (await back.isVisible())) await back.click();
        const more = page
          .locator('.gettingStartedContainer .see-all-walkthroughs, .gettingStartedContainer a', { hasText: /^More/ })
          .first();
        await until(
          'Fair Prune in the walkthrough list',
          async () => {
            if (await entry.isVisible()) return true;
            if (await more.isVisible()) await more.click();
            return undefined;
          },
          30_000,
        );
        await wb.screenshot('walkthrough-01-welcome');
        await entry.click();
        const steps = [
          'Try the demo',
          'Prune your own model',
          'Read the curves',
          'Commit a point that passes the gate',
          'Set the fairness policy',
        ];
        for (const step of steps)
          await page
            .locator('.gettingStartedContainer .getting-started-step', { hasText: step })
            .first()
            .waitFor({ timeout: 30_000 });
        // The first step is open with its command button and its image.
        await page
          .locator('.gettingStartedContainer .getting-started-step.expanded .monaco-button', {
            hasText: 'Try the Demo',
          })
          .first()
          .waitFor({ timeout: 30_000 });
        await until(
          'the step image',
          async () =>
            (await page.locator('.gettingStartedContainer .getting-started-media img').count()) > 0 || undefined,
          30_000,
        );
        await wb.screenshot('walkthrough-02-steps');
      },
    );
  },
);
