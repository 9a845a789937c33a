// Self-test of the e2e harness with a throwaway "probe" extension written into a temp folder at test
// time (not product code): a real code-server workbench opens a folder, the probe activates, its
// palette command shows a notification (read from the DOM) and writes a file, a quick pick and an
// input box are answered, a webview is read and clicked; then the same probe loaded in development
// mode runs an extensionTestsPath module whose exit code comes back. Skips when the e2e set-up is
// absent (scripts/run-tests.sh counts a failed set-up as a failure).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  defaultStartTimeoutMs,
  e2eSkipReason,
  processesMentioning,
  repoRoot,
  startWorkbench,
  type Workbench,
} from './harness';

const PROBE_ID = 'fairprune-test.fp-e2e-probe';

const probePackage = {
  name: 'fp-e2e-probe',
  displayName: 'FP e2e probe',
  description: 'Throwaway extension for the Fair Prune e2e harness self-test',
  publisher: 'fairprune-test',
  version: '0.0.1',
  license: 'MIT',
  engines: { vscode: '^1.100.0' },
  main: './extension.js',
  activationEvents: ['onStartupFinished'],
  contributes: {
    commands: [
      { command: 'fpE2eProbe.hello', title: 'Say Hello', category: 'FP Probe' },
      { command: 'fpE2eProbe.pick', title: 'Pick a Letter', category: 'FP Probe' },
      { command: 'fpE2eProbe.webview', title: 'Show Webview', category: 'FP Probe' },
    ],
  },
};

const probeMain = String.raw`
const vscode = require('vscode');
const fs = require('fs');
const path = require('path');
function out(name, text) {
  const root = vscode.workspace.workspaceFolders[0].uri.fsPath;
  fs.writeFileSync(path.join(root, name), text);
}
exports.activate = function (context) {
  out('activated.json', JSON.stringify({ version: vscode.version, uiKind: vscode.env.uiKind, pid: process.pid }));
  context.subscriptions.push(
    vscode.commands.registerCommand('fpE2eProbe.hello', () => {
      const n = vscode.workspace.workspaceFolders.length;
      out('hello.txt', 'hello from the probe, folders=' + n);
      vscode.window.showInformationMessage('FP probe says hello (' + n + ' folder)');
    }),
    vscode.commands.registerCommand('fpE2eProbe.pick', async () => {
      const letter = await vscode.window.showQuickPick(['alpha', 'beta', 'gamma'], { placeHolder: 'Pick a letter' });
      const words = await vscode.window.showInputBox({ prompt: 'Say something' });
      out('pick.txt', letter + ':' + words);
    }),
    vscode.commands.registerCommand('fpE2eProbe.webview', () => {
      const panel = vscode.window.createWebviewPanel('fpProbe', 'FP Probe Webview', vscode.ViewColumn.One, { enableScripts: true });
      panel.webview.onDidReceiveMessage((m) => out('webview.txt', JSON.stringify(m)));
      panel.webview.html = '<!DOCTYPE html><html><body><h1 id="greeting">Hello from the probe webview</h1>' +
        '<button id="send">Send</button><script>const api = acquireVsCodeApi();' +
        'document.getElementById("send").addEventListener("click", () => api.postMessage({ clicked: 7 * 6 }));</script></body></html>';
    }),
  );
};
exports.deactivate = function () {};
`;

// Runs in the extension host (extensionTestsPath): uses the real vscode API and reports through a file
// and through run()'s outcome (the exit code the harness receives).
const probeTests = String.raw`
const vscode = require('vscode');
const fs = require('fs');
const path = require('path');
exports.run = async function () {
  const root = vscode.workspace.workspaceFolders[0].uri.fsPath;
  const ext = vscode.extensions.getExtension('${PROBE_ID}');
  if (!ext) throw new Error('probe extension not found');
  await ext.activate();
  await vscode.commands.executeCommand('fpE2eProbe.hello');
  const hello = fs.readFileSync(path.join(root, 'hello.txt'), 'utf8');
  const all = await vscode.commands.getCommands(true);
  fs.writeFileSync(path.join(root, 'tests-ran.json'), JSON.stringify({
    uiKind: vscode.env.uiKind, version: vscode.version, isActive: ext.isActive,
    extensionMode: ext.extensionKind, hello, hasPick: all.includes('fpE2eProbe.pick'),
  }));
};
`;

function writeProbe(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(probePackage, null, 2));
  fs.writeFileSync(path.join(dir, 'extension.js'), probeMain);
  fs.writeFileSync(path.join(dir, 'README.md'), '# FP e2e probe\n\nA throwaway extension for the harness self-test.\n');
  fs.writeFileSync(path.join(dir, 'LICENSE'), 'MIT\n');
}

async function waitForFile(file: string, timeoutMs = 30_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (fs.existsSync(file)) {
      const text = fs.readFileSync(file, 'utf8');
      if (text.length > 0) return text;
    }
    if (Date.now() > end) throw new Error(`${file} did not appear within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function withFailureReport<T>(wb: Workbench, name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    await wb.reportFailure(name, e);
    throw e;
  }
}

const skip = e2eSkipReason();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fairprune-e2e-selftest-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

test(
  'a .vsix installed with code-server --install-extension: palette command, notification, quick pick, input box, webview',
  { skip: skip ?? false, timeout: 240_000 },
  async () => {
    const probe = path.join(tmp, 'probe');
    writeProbe(probe);
    const vsix = path.join(tmp, 'fp-e2e-probe-0.0.1.vsix');
    const vsce = path.join(path.dirname(require.resolve('@vscode/vsce/package.json')), 'vsce');
    const pack = spawnSync(
      process.execPath,
      [vsce, 'package', '--no-dependencies', '--allow-missing-repository', '--skip-license', '-o', vsix],
      { cwd: probe, encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    assert.equal(pack.status, 0, `vsce package failed:\n${pack.stdout}${pack.stderr}`);
    assert.ok(fs.statSync(vsix).size > 0);

    const workspace = path.join(tmp, 'workspace-vsix');
    fs.mkdirSync(workspace);
    fs.writeFileSync(path.join(workspace, 'data.csv'), 'x,y\n1,2\n');
    const wb = await startWorkbench({ workspace, vsix });
    const tempRoot = wb.tempRoot;
    try {
      await withFailureReport(wb, 'vsix', async () => {
        // Installed into the workbench's own extensions folder, not the user's.
        assert.ok(
          fs.readdirSync(wb.extensionsDir).some((d) => d.startsWith(`${PROBE_ID}-0.0.1`)),
          `not in ${wb.extensionsDir}`,
        );
        // The folder is open: its file shows in the explorer.
        await wb.page
          .locator('.explorer-folders-view .monaco-list-row', { hasText: 'data.csv' })
          .waitFor({ timeout: 30_000 });
        // onStartupFinished activated it in a real extension host (env.uiKind 2 = Web).
        const activated = JSON.parse(await waitForFile(path.join(workspace, 'activated.json'))) as {
          version: string;
          uiKind: number;
          pid: number;
        };
        assert.equal(activated.version, '1.100.3');
        assert.equal(activated.uiKind, 2);
        assert.notEqual(activated.pid, process.pid);

        await wb.runCommand('FP Probe: Say Hello');
        const message = await wb.waitForNotification('FP probe says hello');
        assert.equal(message, 'FP probe says hello (1 folder)');
        assert.equal(await waitForFile(path.join(workspace, 'hello.txt')), 'hello from the probe, folders=1');
        assert.deepEqual(
          (await wb.notifications()).filter((t) => t.startsWith('FP probe')),
          ['FP probe says hello (1 folder)'],
        );

        await wb.runCommand('FP Probe: Pick a Letter');
        assert.deepEqual(await wb.quickPickItems(), ['alpha', 'beta', 'gamma']);
        await wb.quickPickSelect('beta');
        await wb.page.locator('.quick-input-widget', { hasText: 'Say something' }).waitFor();
        await wb.quickPickType('fair and small');
        assert.equal(await waitForFile(path.join(workspace, 'pick.txt')), 'beta:fair and small');

        await wb.runCommand('FP Probe: Show Webview');
        const frame = wb.webviewFrame();
        assert.equal(await frame.locator('#greeting').textContent(), 'Hello from the probe webview');
        await frame.locator('#send').click();
        assert.deepEqual(JSON.parse(await waitForFile(path.join(workspace, 'webview.txt'))), { clicked: 42 });

        const shot = await wb.screenshot('harness-selftest-vsix');
        const png = fs.readFileSync(shot);
        assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
        assert.equal(png.readUInt32BE(16), 1400); // IHDR width = the viewport
        assert.equal(png.readUInt32BE(20), 900);
        assert.match(wb.extHostLog(), /fp-e2e-probe|fairprune-test/i);
      });
    } finally {
      await wb.close();
    }
    assert.equal(fs.existsSync(tempRoot), false, 'close() removes the temp folders');
    assert.deepEqual(
      processesMentioning(tempRoot),
      [],
      'close() leaves no code-server, extension host or Chromium process behind',
    );
  },
);

test(
  'extensionDevelopmentPath + extensionTestsPath: run() gets the vscode API and its exit code comes back',
  { skip: skip ?? false, timeout: 240_000 },
  async () => {
    const probe = path.join(tmp, 'probe-dev');
    writeProbe(probe);
    const testsFile = path.join(tmp, 'probe-tests.js');
    fs.writeFileSync(testsFile, probeTests);
    const workspace = path.join(tmp, 'workspace-dev');
    fs.mkdirSync(workspace);
    const wb = await startWorkbench({
      workspace,
      extensionDevelopmentPath: probe,
      extensionTestsPath: testsFile,
      theme: 'light',
    });
    try {
      await withFailureReport(wb, 'devpath', async () => {
        assert.equal(await wb.testsExitCode({ timeoutMs: 120_000 }), 0);
        const ran = JSON.parse(await waitForFile(path.join(workspace, 'tests-ran.json'))) as Record<string, unknown>;
        assert.equal(ran.uiKind, 2);
        assert.equal(ran.version, '1.100.3');
        assert.equal(ran.isActive, true);
        assert.equal(ran.hello, 'hello from the probe, folders=1');
        assert.equal(ran.hasPick, true);
        // Nothing was installed: the probe ran from its development folder.
        assert.deepEqual(
          fs.readdirSync(wb.extensionsDir).filter((d) => d.startsWith(PROBE_ID)),
          [],
        );
        await wb.screenshot('harness-selftest-devpath');
      });
    } finally {
      await wb.close();
    }
  },
);

test('repoRoot is this repository', () => {
  assert.ok(fs.existsSync(path.join(repoRoot, 'scripts', 'setup-e2e.sh')));
});

test('the start-up bound: 90 s unless FAIRPRUNE_E2E_START_MS says otherwise; a bad value is an error naming it', () => {
  assert.equal(defaultStartTimeoutMs({}), 90_000);
  assert.equal(defaultStartTimeoutMs({ FAIRPRUNE_E2E_START_MS: '' }), 90_000);
  assert.equal(defaultStartTimeoutMs({ FAIRPRUNE_E2E_START_MS: '240000' }), 240_000);
  for (const bad of ['0', '-5', 'two minutes'])
    assert.throws(
      () => defaultStartTimeoutMs({ FAIRPRUNE_E2E_START_MS: bad }),
      /FAIRPRUNE_E2E_START_MS=.*milliseconds/,
    );
});
