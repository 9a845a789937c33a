// The fairness curves panel in a real VS Code (code-server 4.100.3) and Chromium, in the dark, light
// and high-contrast themes: it draws one series per subgroup × loss with the session's own numbers, its text table
// holds every plotted value, a failing point's Commit button says why it is disabled, selecting a
// passing point and pressing Commit writes the files, and the panel comes back after a reload with
// the same session and selection; the points grid works from the keyboard. The text must be legible:
// its contrast (VS Code Elements' controls included) is measured in every theme, and the CSP refuses nothing.
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
import { DEFAULT_POLICY, recommendPoint } from '../../src/shared/gate';

const skip = e2eSkipReason();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fairprune-e2e-curves-'));
const workspace = path.join(tmp, 'workspace');
let results: SessionResults;

const settings = { 'fairPrune.gate.minAccuracy': 0.75 };
/** The gate policy the settings above set. */
const policyOf = (s: Record<string, unknown>) =>
  Object.fromEntries(
    Object.entries(s)
      .filter(([k]) => k.startsWith('fairPrune.gate.'))
      .map(([k, v]) => [k.slice('fairPrune.gate.'.length), v]),
  );

interface Drawn {
  group: string;
  loss: string;
  points: { x: number; y: number; pointId: string }[];
}

async function openCurves(wb: Workbench): Promise<Frame> {
  await wb.runCommand('Fair Prune: Show Fairness Curves');
  const frame = await frameWith(wb, '#main-figure[data-series]');
  // Drawn once Chart.js has run: data-series holds what the chart itself has.
  await until('the main chart drawn', async () =>
    (await frame.locator('#main-figure').getAttribute('data-series')) !== '[]' ? true : undefined,
  );
  return frame;
}

/** Every kind of text in the panel, VS Code Elements' controls included, against what it is drawn on. */
async function legibility(frame: Frame, theme: Theme): Promise<void> {
  await assertLegible(frame, theme, [
    { what: 'body text', selector: 'header h1, #detail h2, .rules li' },
    { what: 'the PASS / FAIL badge', selector: '#detail .badge' },
    { what: 'secondary text', selector: 'header .meta, #detail .meta, figcaption' },
    { what: 'the chart data table', selector: '#chart-table td, #chart-table th' },
    { what: 'the points grid', selector: '#points-grid th, #points-grid td:not(.verdict)' },
    { what: 'the verdicts in the points grid', selector: '#points-grid td.verdict' },
    { what: "the selected point's group table", selector: '#detail table.groups td, #detail table.groups th' },
    { what: 'buttons', selector: 'vscode-button:not([disabled])', shadow: '.base' },
    { what: 'dropdowns', selector: 'vscode-single-select', shadow: '.select-face' },
    { what: 'checkbox labels', selector: 'vscode-checkbox' },
  ]);
  assert.deepEqual(await cspViolations(frame), [], `${theme}: the CSP refused nothing`);
}

/** The points grid's row of a point. */
const row = (frame: Frame, id: string) => frame.locator(`#points-grid tr[data-point="${id}"]`);

before(async () => {
  if (skip) return;
  fs.mkdirSync(workspace);
  // A finished session, made with the command line: two sparsities × two losses.
  ({ results } = await cliSession(workspace, path.join(repoRoot, 'dist', 'cli.js'), {
    rows: 3000,
    sparsity: '0.5,0.99',
    loss: 'ce,pw',
    epochs: 2,
    lr: 0.01,
    bootstrap: 200,
  }));
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test(
  "dark theme: one series per group × loss with the session's numbers, gate-aware Commit that writes the files, restored after a reload",
  { skip: skip ?? false, timeout: 240_000 },
  async () => {
    await withWorkbench(
      { workspace, extensionDevelopmentPath: repoRoot, settings, theme: 'dark' },
      'curves-dark',
      async (wb) => {
        let frame = await openCurves(wb);
        // The output log the harness reads for page reloads (see Workbench.close) is there: its check is not blind.
        await until(
          'the Fair Prune output log',
          async () => (/Fair Prune activated/.test(wb.fairPruneOutput()) ? true : undefined),
          30_000,
        );
        // The panel opens on the recommended point (the sparsest that passes the gate under these settings),
        // says so in a banner, and marks its row.
        const recommended = recommendPoint(results, { ...DEFAULT_POLICY, ...policyOf(settings) });
        assert.ok(recommended.pointId, 'the 50% points pass this gate');
        const rec = results.points.find((p) => p.id === recommended.pointId)!;
        assert.equal(
          (await frame.locator('#recommendation').textContent())?.replace(/^★\s*/, '').trim(),
          recommended.sentence,
        );
        await until(
          'the recommended point selected on open',
          async () =>
            ((await frame.locator('#detail').textContent()) ?? '').includes(
              `${Math.round(rec.targetSparsity * 100)}% sparsity · ${rec.loss}`,
            ) || undefined,
        );
        assert.match((await row(frame, rec.id).getAttribute('class')) ?? '', /recommended/);
        assert.equal(await row(frame, rec.id).getAttribute('aria-selected'), 'true');
        assert.match((await row(frame, rec.id).textContent()) ?? '', new RegExp(`★ ${rec.loss}`));
        const series = JSON.parse((await frame.locator('#main-figure').getAttribute('data-series'))!) as Drawn[];
        // One series per subgroup × loss, each holding the session's own test accuracies.
        assert.deepEqual(series.map((s) => `${s.group}|${s.loss}`).sort(), [
          'region=north|ce',
          'region=north|pw',
          'region=south|ce',
          'region=south|pw',
        ]);
        for (const s of series) {
          const expected = results.points
            .filter((p) => p.loss === s.loss)
            .sort((a, b) => a.achievedSparsity - b.achievedSparsity);
          assert.deepEqual(
            s.points.map((p) => p.pointId),
            expected.map((p) => p.id),
          );
          s.points.forEach((p, i) => {
            assert.equal(p.x, expected[i].achievedSparsity);
            assert.equal(p.y, expected[i].evaluation.groups.find((g) => g.group === s.group)!.accuracy.value);
          });
        }
        // The dense model's per-group accuracy as reference lines.
        const refs = JSON.parse((await frame.locator('#main-figure').getAttribute('data-references'))!) as {
          group: string;
          y: number;
        }[];
        assert.deepEqual(refs.map((r) => r.y).sort(), results.dense!.groups.map((g) => g.accuracy.value).sort());
        // ...inside the y axis, with every interval whisker (the axis is not fitted to the points alone).
        const y = JSON.parse((await frame.locator('#main-figure').getAttribute('data-y-range'))!) as {
          min: number;
          max: number;
        };
        for (const r of refs)
          assert.ok(r.y >= y.min && r.y <= y.max, `dense ${r.group} ${r.y} within the y axis [${y.min}, ${y.max}]`);
        for (const p of results.points)
          for (const g of p.evaluation.groups)
            assert.ok(g.accuracy.low >= y.min - 1e-9, `whisker of ${p.id} ${g.group} within the y axis`);
        // The text table holds every plotted value.
        assert.equal(await frame.locator('#chart-table tbody tr').count(), 8);
        await legibility(frame, 'dark');

        // A failing point: Commit is disabled and says why.
        const failing = results.points.find((p) => p.targetSparsity === 0.99)!;
        await row(frame, failing.id).click();
        await until(
          'the failing point selected',
          async () => ((await frame.locator('#detail').textContent()) ?? '').includes('99%') || undefined,
        );
        assert.equal(await frame.locator('#commit').getAttribute('disabled'), '');
        assert.match((await frame.locator('#commit-why').textContent()) ?? '', /fails|accuracy/i);
        await wb.screenshot('curves-dark-failing-point');
        // The ★ in the banner takes the user back to the recommended point.
        await frame.locator('#select-recommended').click();
        await until(
          'the recommended point selected again',
          async () =>
            ((await frame.locator('#detail').textContent()) ?? '').includes(
              `${Math.round(rec.targetSparsity * 100)}% sparsity · ${rec.loss}`,
            ) || undefined,
        );

        // A passing point: Commit writes the model, fairness.json and FAIRNESS.md beside the original.
        const passing = results.points.find((p) => p.targetSparsity === 0.5 && p.loss === 'pw')!;
        await row(frame, passing.id).click();
        await until('Commit enabled', async () =>
          (await frame.locator('#commit').getAttribute('disabled')) === null ? true : undefined,
        );
        await wb.screenshot('curves-dark-passing-point');
        await frame.locator('#commit').click();
        const confirm = await answerDialog(
          wb.page,
          new RegExp(`commit ${passing.id} to model\\.pruned-${passing.id}\\?`),
          'Commit',
        );
        assert.match(confirm, /Gate policy from user settings\./);
        await wb.waitForNotification(new RegExp(`committed ${passing.id}`));
        const committed = path.join(workspace, 'model.pruned-' + passing.id);
        for (const f of ['model.json', 'fairness.json', 'FAIRNESS.md'])
          assert.ok(fs.existsSync(path.join(committed, f)), `${f} in ${committed}`);

        // Reload the window as a user does (the workbench saves its state first): the serializer
        // restores the panel on the same session and selection.
        const beforeReload = frame;
        await wb.runCommand('Developer: Reload Window');
        // the reload has happened once the old page's frame is gone (else the old frame would pass the wait below)
        await until('the old page unloaded', async () => (beforeReload.isDetached() ? true : undefined), 60_000);
        frame = await until(
          'the restored curves panel',
          async () => {
            for (const f of wb.page.frames()) {
              const ok = await f
                .evaluate(
                  () =>
                    document.querySelector('#main-figure[data-series]') !== null &&
                    document.querySelector('#main-figure')!.getAttribute('data-series') !== '[]',
                )
                .catch(() => false);
              if (ok) return f;
            }
            return undefined;
          },
          90_000,
        );
        assert.match((await frame.locator('.meta, header').first().textContent()) ?? '', new RegExp(results.sessionId));
        await until(
          'the selection restored',
          async () => ((await frame.locator('#detail').textContent()) ?? '').includes(passing.loss) || undefined,
        );
        assert.equal(await frame.locator('#commit').getAttribute('disabled'), null);
        await wb.screenshot('curves-dark-after-reload');
      },
    );
  },
);

test(
  'light theme: legible, the same series, screenshot for review',
  { skip: skip ?? false, timeout: 180_000 },
  async () => {
    await withWorkbench(
      { workspace, extensionDevelopmentPath: repoRoot, settings, theme: 'light' },
      'curves-light',
      async (wb) => {
        const frame = await openCurves(wb);
        const series = JSON.parse((await frame.locator('#main-figure').getAttribute('data-series'))!) as Drawn[];
        assert.equal(series.length, 4);
        await legibility(frame, 'light');
        const passing = results.points.find((p) => p.targetSparsity === 0.5 && p.loss === 'ce')!;
        await row(frame, passing.id).click();
        await until('Commit enabled', async () =>
          (await frame.locator('#commit').getAttribute('disabled')) === null ? true : undefined,
        );
        await wb.screenshot('curves-light');
      },
    );
  },
);

test(
  "high-contrast theme: legible; the points grid from the keyboard: ↓ moves the focus, Enter and Space select the row's point",
  { skip: skip ?? false, timeout: 180_000 },
  async () => {
    await withWorkbench(
      { workspace, extensionDevelopmentPath: repoRoot, settings, theme: 'hc' },
      'curves-hc',
      async (wb) => {
        const frame = await openCurves(wb);
        await legibility(frame, 'hc');
        const point = results.points.find((p) => p.targetSparsity === 0.99 && p.loss === 'pw')!;
        // The grid from the keyboard: the row above the point, ↓ to it, Enter selects it.
        const ids = await frame
          .locator('#points-grid tbody tr[data-point]')
          .evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.point!));
        const at = ids.indexOf(point.id);
        assert.ok(at > 0, `${point.id} is not the first row: ${ids.join(', ')}`);
        await row(frame, ids[at - 1]).focus();
        await wb.page.keyboard.press('ArrowDown');
        assert.equal(
          await frame.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.point),
          point.id,
          '↓ moved the focus one row down',
        );
        assert.deepEqual(
          await frame
            .locator('#points-grid tbody tr[tabindex="0"]')
            .evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.point)),
          [point.id],
          'one tab stop, on the focused row',
        );
        await wb.page.keyboard.press('Enter');
        await until(
          'the point selected from the keyboard',
          async () => ((await frame.locator('#detail').textContent()) ?? '').includes('99% sparsity · pw') || undefined,
        );
        assert.equal(await row(frame, point.id).getAttribute('aria-selected'), 'true');
        // its row keeps the focus after the panel redraws, so ↑ ↓ go on from there
        await until(
          'the selected row focused',
          async () =>
            (await frame.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.point)) === point.id ||
            undefined,
        );
        // Space selects too
        await wb.page.keyboard.press('ArrowUp');
        await wb.page.keyboard.press(' ');
        await until(
          'the row above selected with Space',
          async () => (await row(frame, ids[at - 1]).getAttribute('aria-selected')) === 'true' || undefined,
        );
        await wb.screenshot('curves-hc');
      },
    );
  },
);
