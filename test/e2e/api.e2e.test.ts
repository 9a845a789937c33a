// Runs the extension-host tests (test/extension/index.ts, the module `npm run test:electron` runs in
// desktop VS Code) in code-server through the harness's extensionTestsPath, so they run on every CI
// run, not only where desktop VS Code can be downloaded. Skips when the e2e set-up is absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { e2eSkipReason, repoRoot, withWorkbench } from './harness';

const skip = e2eSkipReason();

test(
  "the extension-host tests (test:electron's suite) pass in code-server",
  { skip: skip ?? false, timeout: 300_000 },
  async () => {
    const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'fairprune-e2e-api-'));
    try {
      const extensionTestsPath = path.join(repoRoot, 'out', 'test', 'extension', 'index.js');
      await withWorkbench(
        { workspace, extensionDevelopmentPath: repoRoot, extensionTestsPath },
        'extension-host-tests',
        async (wb) => {
          const code = await wb.testsExitCode({ timeoutMs: 240_000 });
          const report = path.join(workspace, 'extension-tests.json');
          const seen = fs.existsSync(report) ? fs.readFileSync(report, 'utf8') : '(no extension-tests.json)';
          console.log(seen);
          assert.equal(code, 0, `extension-host tests failed:\n${seen}`);
          const r = JSON.parse(seen) as { activeBefore: boolean; activationMs: number; committed: string[] };
          assert.equal(r.activeBefore, false, 'nothing in an empty workspace activates Fair Prune');
          assert.ok(r.committed.includes('FAIRNESS.md'));
        },
      );
    } finally {
      fs.rmSync(workspace, { recursive: true, force: true });
    }
  },
);
