// Runs extension tests (a module exporting `run(): Promise<void>`, the same kind that
// test/e2e/harness.ts passes as extensionTestsPath to code-server) in DESKTOP VS Code (Electron)
// through @vscode/test-electron, wherever VS Code can be downloaded from update.code.visualstudio.com.
//
//   npm run test:electron [-- TESTS_MODULE [WORKSPACE]]
//   (Linux without a display: xvfb-run -a npm run test:electron)
//
// TESTS_MODULE defaults to $FAIRPRUNE_EXTENSION_TESTS, else out/test/extension/index.js. The download
// goes to ${FAIRPRUNE_E2E_CACHE:-~/.cache/fair-prune-e2e}/vscode-test (outside the repository);
// $VSCODE_EXECUTABLE skips it. Where the download host is unreachable (as on the build machine this
// was written on) it fails within ~FAIRPRUNE_ELECTRON_DOWNLOAD_TIMEOUT_S (default 60) with a message,
// never hangs. Exit code: VS Code's (0 = the tests passed), 2 = could not start.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The VS Code release matching engines.vscode and code-server 4.100.3. */
const VSCODE_VERSION = '1.100.3';

function repoRootFrom(dir: string): string {
  for (let d = dir; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'package.json')) && fs.existsSync(path.join(d, 'scripts', 'setup-e2e.sh'))) return d;
    if (path.dirname(d) === d) return process.cwd();
  }
}

function fail(message: string): never {
  console.error(`test:electron: ${message}`);
  process.exit(2);
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

async function main(): Promise<void> {
  const root = repoRootFrom(__dirname);
  const testsArg =
    process.argv[2] ?? process.env.FAIRPRUNE_EXTENSION_TESTS ?? path.join(root, 'out', 'test', 'extension', 'index.js');
  const extensionTestsPath = path.resolve(testsArg);
  if (!fs.existsSync(extensionTestsPath)) {
    fail(
      `no extension tests module at ${extensionTestsPath} (compile them first, or pass a module exporting run(): npm run test:electron -- path/to/tests.js)`,
    );
  }
  const workspace = path.resolve(process.argv[3] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'fairprune-electron-ws-')));
  const cache =
    process.env.FAIRPRUNE_E2E_CACHE ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'fair-prune-e2e');
  const cachePath = path.join(cache, 'vscode-test');
  const downloadTimeoutMs = Number(process.env.FAIRPRUNE_ELECTRON_DOWNLOAD_TIMEOUT_S ?? 60) * 1000;

  const { download, runTests } = await import('@vscode/test-electron');
  let vscodeExecutablePath = process.env.VSCODE_EXECUTABLE;
  if (!vscodeExecutablePath) {
    console.log(`test:electron: getting VS Code ${VSCODE_VERSION} into ${cachePath} ...`);
    try {
      vscodeExecutablePath = await withDeadline(
        download({ version: VSCODE_VERSION, cachePath, timeout: 15_000 }),
        downloadTimeoutMs,
        `downloading VS Code ${VSCODE_VERSION}`,
      );
    } catch (e) {
      fail(
        `could not download VS Code ${VSCODE_VERSION} (${(e as Error).message}).\n` +
          '  @vscode/test-electron needs https://update.code.visualstudio.com; this network cannot reach it.\n' +
          '  Run the same tests in a real VS Code offline instead: bash scripts/setup-e2e.sh && npm run test:e2e\n' +
          '  (or point VSCODE_EXECUTABLE at an installed desktop VS Code).',
      );
    }
  }
  if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
    console.warn('test:electron: no DISPLAY; desktop VS Code needs one on Linux: xvfb-run -a npm run test:electron');
  }
  const launchArgs = [
    workspace,
    '--disable-workspace-trust',
    '--skip-welcome',
    '--skip-release-notes',
    '--disable-updates',
  ];
  if (process.getuid?.() === 0)
    launchArgs.push('--no-sandbox', '--user-data-dir', path.join(cachePath, 'user-data-root'));
  const code = await runTests({ vscodeExecutablePath, extensionDevelopmentPath: root, extensionTestsPath, launchArgs });
  console.log(`test:electron: VS Code exited with ${code}`);
  process.exit(code);
}

main().catch((e: unknown) => {
  const code = (e as { code?: unknown }).code;
  console.error(`test:electron: ${(e as Error)?.message ?? String(e)}`);
  process.exit(typeof code === 'number' && code !== 0 ? code : 1);
});
