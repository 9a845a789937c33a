// Restricted Mode in a real VS Code (code-server 4.100.3, workspace trust on, the folder not trusted):
// existing fairness reports can be read in the side bar and the curves panel, while running a session
// and committing are refused, and the UI says why, with the way to trust the workspace one click away.
// Crafted results.json files beside the real session are error items in the Sessions view, never acted on.
// Skips when the e2e set-up is absent (scripts/run-tests.sh counts a failed set-up as a failure).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { e2eSkipReason, frameWith, repoRoot, until, withWorkbench } from './harness';
import { makeFixture } from '../session-fixture';

const skip = e2eSkipReason();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fairprune-e2e-restricted-'));
const workspace = path.join(tmp, 'workspace');

before(async () => {
  if (skip) return;
  fs.mkdirSync(workspace);
  const { csv, modelPath } = await makeFixture(workspace, 1500, 'plain');
  const r = spawnSync(
    process.execPath,
    [
      path.join(repoRoot, 'dist', 'cli.js'),
      'run',
      '--model',
      modelPath,
      '--data',
      csv,
      '--label',
      'decision',
      '--group',
      'region',
      '--sparsity',
      '0.5',
      '--loss',
      'ce',
      '--epochs',
      '1',
      '--bootstrap',
      '100',
      '--out',
      path.join(workspace, '.fairprune'),
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  // Crafted sessions beside the real one, as a cloned repository could hold them: copies of the real
  // session whose results.json points a model folder out of the session (through a symlink), holds a
  // number that is not finite (1e999 parses to Infinity), or names a point with a path in its id.
  const sessions = path.join(workspace, '.fairprune', 'sessions');
  const [real] = fs.readdirSync(sessions);
  const text = fs.readFileSync(path.join(sessions, real, 'results.json'), 'utf8');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'model.json'), '{}');
  for (const [name, edit] of CRAFTED) {
    const dir = path.join(sessions, name);
    fs.cpSync(path.join(sessions, real), dir, { recursive: true });
    const r = JSON.parse(text);
    edit(r, dir);
    fs.writeFileSync(path.join(dir, 'results.json'), JSON.stringify(r, null, 1).replace('"INF"', '1e999'));
  }
});

const outside = path.join(tmp, 'outside');

const CRAFTED: [string, (r: Record<string, any>, dir: string) => void, RegExp][] = [
  [
    'crafted-escape',
    (r, dir) => {
      fs.symlinkSync(outside, path.join(dir, 'points', 'escape'));
      r.points[0].modelDir = 'points/escape';
    },
    /results\.points\[0\]\.modelDir: 'points\/escape' leads outside the session folder/,
  ],
  [
    'crafted-infinity',
    (r) => (r.points[0].evaluation.accuracy.value = 'INF'),
    /results\.points\[0\]\.evaluation\.accuracy\.value: is not a finite number/,
  ],
  ['crafted-point-id', (r) => (r.points[0].id = '../../x'), /results\.points\[0\]\.id: "\.\.\/\.\.\/x" does not match/],
];

/** Every file under `dir` (links not followed) with its size and modification time. */
function tree(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .map((e) => {
      const p = path.join(e.parentPath, e.name);
      const st = fs.lstatSync(p);
      return `${path.relative(dir, p)} ${st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : `${st.size} ${st.mtimeMs}`}`;
    })
    .sort();
}

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test(
  'Restricted Mode: reports are readable; pruning and committing are refused with the reason and a way to trust',
  { skip: skip ?? false, timeout: 180_000 },
  async () => {
    await withWorkbench(
      { workspace, extensionDevelopmentPath: repoRoot, restricted: true },
      'restricted',
      async (wb) => {
        const page = wb.page;
        await page.locator('.part.statusbar', { hasText: 'Restricted Mode' }).waitFor();
        // Reading works: the session is in the tree and its report in the side bar.
        const before = [tree(workspace), tree(outside)];
        await page.locator('.part.activitybar .action-item .action-label[aria-label^="Fair Prune"]').first().click();
        // Each crafted results.json is an error item naming the field at fault, and nothing acts on it.
        for (const [name, , problem] of CRAFTED) {
          const row = page.locator('.part.sidebar .monaco-list-row', { hasText: `${name} · results.json refused` });
          await row.waitFor();
          const shown = ((await row.textContent()) ?? '').replace(/\u00a0/g, ' ');
          assert.match(shown, problem, `${name}: the tree item says what is wrong: ${shown}`);
          assert.equal(await row.locator('.codicon-error').count(), 1, `${name}: shown as an error`);
          await row.click();
        }
        await wb.screenshot('restricted-crafted-results-refused');
        const session = page.locator('.part.sidebar .monaco-list-row', { hasText: 'region' }).first();
        await session.waitFor();
        await session.click();
        const report = await frameWith(wb, 'section.point');
        assert.match(
          (await report.locator('section.point .why-disabled').first().textContent()) ?? '',
          /Committing is disabled in Restricted Mode: trust this workspace to commit\./,
        );
        assert.equal(await report.locator('vscode-button.commit').first().getAttribute('disabled'), '');
        // The curves panel reads too, and its Commit says why it is off.
        await wb.runCommand('Fair Prune: Show Fairness Curves');
        const curves = await frameWith(wb, '#points-grid tr[data-point]');
        await curves.locator('#points-grid tr[data-point]').first().click();
        await until('the reason under Commit', async () =>
          /Restricted Mode/.test(
            (await curves
              .locator('#commit-why')
              .textContent()
              .catch(() => '')) ?? '',
          )
            ? true
            : undefined,
        );
        await wb.screenshot('restricted-reading');
        // Running a session: refused, saying why, with the way to trust the workspace.
        await wb.runCommand('Fair Prune: Prune with Fairness Check…');
        const message = await wb.waitForNotification(/only in a trusted workspace/);
        assert.match(
          message,
          /Fair Prune runs pruning sessions only in a trusted workspace: it trains on your files in a separate process\. Reading reports works in Restricted Mode; trust this workspace to run pruning sessions\./,
        );
        await page
          .locator('.notifications-toasts .notification-toast', { hasText: 'only in a trusted workspace' })
          .locator('.monaco-button', { hasText: 'Manage Workspace Trust' })
          .waitFor();
        await wb.screenshot('restricted-prune-refused');
        assert.deepEqual(
          [tree(workspace), tree(outside)],
          before,
          'no session started, no file written in the workspace or where a crafted session points',
        );
      },
    );
  },
);
