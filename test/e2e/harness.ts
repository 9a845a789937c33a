// End-to-end harness: a REAL VS Code workbench (code-server 4.100.3 = VS Code 1.100.3, the web
// workbench with a real remote extension host) driven by playwright-core and Debian's Chromium.
// Install both first with `bash scripts/setup-e2e.sh` (cached outside the repository).
//
//   const wb = await startWorkbench({ workspace, extensionDevelopmentPath: repoRoot });
//   try {
//     await wb.runCommand('Fair Prune: Show Log');          // F1 palette, exact label, Enter
//     await wb.quickPickSelect('beta');                      // a showQuickPick item by label
//     await wb.quickPickType('hello');                       // an input box: type + Enter
//     await wb.waitForNotification(/hello/);                 // toast text read from the DOM
//     await wb.webviewFrame().locator('h1').textContent();   // inside the active webview
//     await wb.screenshot('my-step');                        // test-results/screenshots/my-step.png
//   } catch (e) { await wb.reportFailure('my-test', e); throw e; }   // screenshot + exthost log tail
//   finally { await wb.close(); }                            // ends code-server's group and Chromium
//
// or `await withWorkbench(opts, 'my-test', async (wb) => { ... })`, which does the try/catch/finally.
//
// Traps handled here (measured; see ../shared/notes/environment.md): code-server gets its own
// --config, user-data and extensions folders, XDG_* and TMPDIR (or it writes into the home folder);
// it runs in its own process group, and close() ends the whole group, because every page load starts a
// new extension host that otherwise lingers for hours; Chromium runs as root headless with
// --no-sandbox and a fresh profile and its XDG_*/TMPDIR in the temp folder too. A failing activate()
// shows nothing in the web workbench: read extHostLog().
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { BrowserContext, Frame, FrameLocator, Locator, Page } from 'playwright-core';

export const CODE_SERVER_VERSION = '4.100.3';
/** The repository root (this file is test/e2e/harness.ts, compiled to out/test/e2e/harness.js). */
export const repoRoot = findRepoRoot(__dirname);
/** Where screenshots go. */
export const screenshotDir = path.join(repoRoot, 'test-results', 'screenshots');

export type Theme = 'dark' | 'light' | 'hc';

export interface WorkbenchOptions {
  /** Folder opened as the workspace (absolute or relative to the cwd; it must exist). */
  workspace: string;
  /** An extension folder loaded in development mode (its package.json `main` must exist). */
  extensionDevelopmentPath?: string;
  /** A CommonJS module exporting `run(): Promise<void>`, run in the extension host with the full
   *  `vscode` API (like @vscode/test-electron's extensionTestsPath). Its outcome: testsExitCode(). */
  extensionTestsPath?: string;
  /** .vsix file(s) installed with `code-server --install-extension` before the workbench opens. */
  vsix?: string | string[];
  /** User settings merged over the harness's quiet defaults. */
  settings?: Record<string, unknown>;
  /** Colour theme (default dark). */
  theme?: Theme;
  /** Browser viewport (default 1400×900). */
  viewport?: { width: number; height: number };
  /** Bound on start-up: code-server listening + workbench rendered (default FAIRPRUNE_E2E_START_MS, else 90 s). */
  startTimeoutMs?: number;
  /** Extra environment for code-server and so for the extension host. */
  env?: Record<string, string>;
  /** Open the folder in Restricted Mode (workspace trust on, the folder not trusted, no prompt).
   *  Default false: trust is switched off and every folder is trusted. */
  restricted?: boolean;
}

export interface Workbench {
  page: Page;
  context: BrowserContext;
  /** The URL the page opened. */
  url: string;
  port: number;
  /** The temp folder holding everything below (removed by close()). */
  tempRoot: string;
  userDataDir: string;
  extensionsDir: string;
  /** `<userDataDir>/logs`: one folder per session, `exthost*` / `remoteexthost.log` inside. */
  logsDir: string;
  /** F1, type the command's palette label (e.g. 'Fair Prune: Show Log'), pick the exact row. */
  runCommand(title: string, opts?: { timeoutMs?: number }): Promise<void>;
  /** Labels of the rows the open quick pick currently renders. */
  quickPickItems(opts?: { timeoutMs?: number }): Promise<string[]>;
  /** Pick a quick-pick row by its exact label (or a RegExp); filters by typing when not rendered. */
  quickPickSelect(label: string | RegExp, opts?: { timeoutMs?: number }): Promise<void>;
  /** Type into the open quick input (input box, filter, or a path in an open/save dialog) and press
   *  Enter. `replace` (default true) clears what is there first. */
  quickPickType(text: string, opts?: { replace?: boolean; timeoutMs?: number; enter?: boolean }): Promise<void>;
  /** Messages of the notification toasts now shown (and of the notification centre when open). */
  notifications(): Promise<string[]>;
  /** Wait until a notification's message matches; returns its text. */
  waitForNotification(match: string | RegExp, opts?: { timeoutMs?: number }): Promise<string>;
  /** The content frame of a webview (the most recently shown one by default). */
  webviewFrame(opts?: { nth?: number }): FrameLocator;
  /** PNG of the page into test-results/screenshots/<name>.png; prints and returns the path. */
  screenshot(name: string): Promise<string>;
  /** The remote extension host log(s) of this workbench ('' when none yet). */
  extHostLog(): string;
  /** What the extension wrote to its "Fair Prune" output channel (VS Code keeps each channel in a
   *  `*-Fair Prune.log` file under logsDir); '' before it activates. */
  fairPruneOutput(): string;
  /** Wait until the extension host log matches (e.g. an activation line); returns the log. */
  waitForExtHostLog(match: RegExp, opts?: { timeoutMs?: number }): Promise<string>;
  /** code-server's own stdout+stderr so far. */
  serverLog(): string;
  /** Resolves with the exit code of extensionTestsPath's run() (0 passed, else failed). */
  testsExitCode(opts?: { timeoutMs?: number }): Promise<number>;
  /** Screenshot `failure-<name>` and print the extension host log tail and code-server's log tail. */
  reportFailure(name: string, error?: unknown): Promise<void>;
  /** Close Chromium, end code-server's whole process group, remove the temp folders. Idempotent.
   *  Then fails (throws) when the Fair Prune output says a webview page had to be loaded again
   *  (PAGE_RELOAD_LINE): that retry must never be what made a test pass. */
  close(): Promise<void>;
}

/**
 * What the e2e tests skip for, or null when they run. Outside CI an unavailable workbench (a Node other
 * than 20, no set-up) skips them with its reason. In CI (CI=true) only FAIRPRUNE_E2E=0 skips them: a
 * suite that silently skips there hides that nothing was tested, so the tests run and fail with the
 * reason (startWorkbench throws it).
 */
export function e2eSkipReason(): string | null {
  const why = e2eUnavailableReason();
  if (!why || process.env.FAIRPRUNE_E2E === '0') return why;
  return isCi() ? null : why;
}

/** CI=true (or 1), as CI services set it. */
export function isCi(): boolean {
  return /^(true|1)$/i.test(process.env.CI ?? '');
}

/** Why the e2e tests cannot run here, or null when they can. */
export function e2eUnavailableReason(): string | null {
  if (process.env.FAIRPRUNE_E2E === '0') return 'FAIRPRUNE_E2E=0';
  const major = Number(process.versions.node.split('.')[0]);
  if (major !== 20) return `code-server ${CODE_SERVER_VERSION} needs Node 20 (this is ${process.version})`;
  if (!fs.existsSync(codeServerEntry())) {
    return `code-server ${CODE_SERVER_VERSION} is not installed in ${codeServerDir()}: run bash scripts/setup-e2e.sh`;
  }
  if (!fs.existsSync(chromiumPath())) return `no Chromium at ${chromiumPath()}: run bash scripts/setup-e2e.sh`;
  try {
    require.resolve('playwright-core');
  } catch {
    return 'playwright-core is not installed: npm ci';
  }
  return null;
}

/** The code-server install folder (scripts/setup-e2e.sh puts it there; same environment variables). */
export function codeServerDir(): string {
  const cache =
    process.env.FAIRPRUNE_E2E_CACHE ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'fair-prune-e2e');
  return path.join(cache, `code-server-${CODE_SERVER_VERSION}`);
}

export function codeServerEntry(): string {
  return path.join(codeServerDir(), 'node_modules', 'code-server', 'out', 'node', 'entry.js');
}

export function chromiumPath(): string {
  return process.env.FAIRPRUNE_CHROMIUM ?? '/usr/bin/chromium';
}

/**
 * The start-up bound when a test names none: FAIRPRUNE_E2E_START_MS (milliseconds; a loaded machine can
 * take longer than 90 s to start the workbench), else 90 s. A value that is not a positive number is an error.
 */
export function defaultStartTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.FAIRPRUNE_E2E_START_MS;
  if (raw === undefined || raw === '') return 90_000;
  const ms = Number(raw);
  if (!Number.isFinite(ms) || ms <= 0)
    throw new Error(`FAIRPRUNE_E2E_START_MS=${raw}: give the start-up bound in milliseconds, e.g. 180000`);
  return ms;
}

/** Start a workbench, run `fn`, report a failure (screenshot + logs), always close. */
export async function withWorkbench<T>(
  opts: WorkbenchOptions,
  name: string,
  fn: (wb: Workbench) => Promise<T>,
): Promise<T> {
  const wb = await startWorkbench(opts);
  try {
    return await fn(wb);
  } catch (e) {
    await wb.reportFailure(name, e);
    throw e;
  } finally {
    await wb.close();
  }
}

interface Dirs {
  root: string;
  userData: string;
  extensions: string;
  config: string;
  env: NodeJS.ProcessEnv;
}

function makeDirs(): Dirs {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fairprune-e2e-'));
  const sub = (name: string): string => {
    const p = path.join(root, name);
    fs.mkdirSync(p, { recursive: true, mode: 0o700 });
    return p;
  };
  const userData = sub('user-data');
  const extensions = sub('extensions');
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // A terminal inside VS Code would otherwise hand its IPC hooks to the server it starts.
    if (k.startsWith('VSCODE_') || k === 'ELECTRON_RUN_AS_NODE') continue;
    env[k] = v;
  }
  Object.assign(env, {
    XDG_CONFIG_HOME: sub('xdg/config'),
    XDG_DATA_HOME: sub('xdg/data'),
    XDG_CACHE_HOME: sub('xdg/cache'),
    XDG_STATE_HOME: sub('xdg/state'),
    XDG_RUNTIME_DIR: sub('xdg/runtime'),
    TMPDIR: sub('tmp'),
  });
  return { root, userData, extensions, config: path.join(root, 'config.yaml'), env };
}

function serverArgs(dirs: Dirs): string[] {
  return ['--config', dirs.config, '--user-data-dir', dirs.userData, '--extensions-dir', dirs.extensions];
}

/** Install a .vsix into `extensionsDir` with `code-server --install-extension` (offline). */
export function installVsix(
  vsix: string,
  dirs: { userData: string; extensions: string; config: string; env?: NodeJS.ProcessEnv },
): string {
  const file = path.resolve(vsix);
  if (!fs.existsSync(file)) throw new Error(`installVsix: ${file} does not exist`);
  const r = spawnSync(
    process.execPath,
    [
      codeServerEntry(),
      '--config',
      dirs.config,
      '--user-data-dir',
      dirs.userData,
      '--extensions-dir',
      dirs.extensions,
      '--install-extension',
      file,
      '--force',
    ],
    { env: dirs.env ?? process.env, encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.error || r.status !== 0 || !/successfully installed/i.test(out)) {
    throw new Error(
      `code-server --install-extension ${file} failed (status ${r.status}${r.error ? `, ${r.error.message}` : ''}):\n${out}`,
    );
  }
  return out.trim();
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => {
      req.destroy();
      resolve(0);
    });
  });
}

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function themeName(theme: Theme): string {
  return theme === 'light' ? 'Default Light Modern' : theme === 'hc' ? 'Default High Contrast' : 'Default Dark Modern';
}

/** Settings that keep the workbench quiet and deterministic (no welcome page, tips, trust prompt,
 *  update checks, telemetry, chat or extension recommendations). */
export function quietSettings(theme: Theme): Record<string, unknown> {
  return {
    'workbench.colorTheme': themeName(theme),
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'workbench.welcomePage.walkthroughs.openOnInstall': false,
    'security.workspace.trust.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'extensions.ignoreRecommendations': true,
    'git.openRepositoryInParentFolders': 'never',
    'chat.commandCenter.enabled': false,
    'window.commandCenter': false,
    'editor.fontSize': 13,
  };
}

/** Start code-server + Chromium on `opts.workspace`; resolves once the workbench has rendered. */
export async function startWorkbench(opts: WorkbenchOptions): Promise<Workbench> {
  const why = e2eUnavailableReason();
  if (why) throw new Error(`e2e workbench unavailable: ${why}`);
  const workspace = path.resolve(opts.workspace);
  if (!fs.statSync(workspace, { throwIfNoEntry: false })?.isDirectory()) {
    throw new Error(`startWorkbench: workspace ${workspace} is not a folder`);
  }
  const devPath = opts.extensionDevelopmentPath ? path.resolve(opts.extensionDevelopmentPath) : undefined;
  if (devPath && !fs.existsSync(path.join(devPath, 'package.json'))) {
    throw new Error(`startWorkbench: extensionDevelopmentPath ${devPath} has no package.json`);
  }
  const testsPath = opts.extensionTestsPath ? path.resolve(opts.extensionTestsPath) : undefined;
  if (testsPath && !fs.existsSync(testsPath))
    throw new Error(`startWorkbench: extensionTestsPath ${testsPath} does not exist`);
  const startTimeout = opts.startTimeoutMs ?? defaultStartTimeoutMs();
  const deadline = Date.now() + startTimeout;

  const dirs = makeDirs();
  let server: ChildProcess | undefined;
  let context: BrowserContext | undefined;
  let serverOut = '';
  const chromiumProfile = path.join(dirs.root, 'chromium-profile');
  const cleanup = async (): Promise<void> => {
    if (context) await closeContext(context, chromiumProfile);
    if (server) await killGroup(server);
    removeTree(dirs.root);
  };

  try {
    const theme = opts.theme ?? 'dark';
    const settingsFile = path.join(dirs.userData, 'User', 'settings.json');
    fs.mkdirSync(path.dirname(settingsFile), { recursive: true });
    const trust = opts.restricted
      ? {
          'security.workspace.trust.enabled': true,
          'security.workspace.trust.startupPrompt': 'never',
          'security.workspace.trust.banner': 'always',
        }
      : {};
    fs.writeFileSync(settingsFile, JSON.stringify({ ...quietSettings(theme), ...trust, ...opts.settings }, null, 2));

    const port = await freePort();
    fs.writeFileSync(dirs.config, `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
    const env = { ...dirs.env, ...opts.env };
    for (const v of ([] as string[]).concat(opts.vsix ?? [])) installVsix(v, { ...dirs, env });

    server = spawn(
      process.execPath,
      [
        codeServerEntry(),
        ...serverArgs(dirs),
        '--auth',
        'none',
        '--bind-addr',
        `127.0.0.1:${port}`,
        '--disable-telemetry',
        '--disable-update-check',
        ...(opts.restricted ? [] : ['--disable-workspace-trust']),
        '--disable-getting-started-override',
        '--ignore-last-opened',
        '--locale',
        'en',
      ],
      { env, cwd: dirs.root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const srv = server;
    const keep = (b: Buffer): void => {
      serverOut += b.toString();
      if (serverOut.length > 400_000) serverOut = serverOut.slice(-200_000);
    };
    srv.stdout?.on('data', keep);
    srv.stderr?.on('data', keep);
    let exited: string | undefined;
    srv.on('exit', (code, sig) => (exited = `exited with ${code ?? sig}`));

    const base = `http://127.0.0.1:${port}`;
    for (;;) {
      if (exited) throw new Error(`code-server ${exited} before listening:\n${serverOut.slice(-4000)}`);
      if ((await httpStatus(`${base}/healthz`)) === 200) break;
      if (Date.now() > deadline)
        throw new Error(`code-server did not answer on ${base} within ${startTimeout} ms:\n${serverOut.slice(-4000)}`);
      await delay(200);
    }

    const query = new URLSearchParams({ folder: workspace });
    const payload: [string, string][] = [];
    const remote = (p: string): string => `vscode-remote://127.0.0.1:${port}${p}`;
    if (devPath) payload.push(['extensionDevelopmentPath', remote(devPath)]);
    if (testsPath) payload.push(['extensionTestsPath', remote(testsPath)]);
    if (payload.length) query.set('payload', JSON.stringify(payload));
    const url = `${base}/?${query.toString()}`;

    const { chromium } = await import('playwright-core');
    fs.mkdirSync(chromiumProfile, { recursive: true });
    const viewport = opts.viewport ?? { width: 1400, height: 900 };
    context = await chromium.launchPersistentContext(chromiumProfile, {
      executablePath: chromiumPath(),
      headless: true,
      env: dirs.env as Record<string, string>,
      viewport,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-dev-shm-usage',
        '--password-store=basic',
        '--use-mock-keychain',
      ],
      timeout: Math.max(10_000, deadline - Date.now()),
    });
    const ctx = context;
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(30_000);

    // extensionTestsPath: the workbench reports run()'s result through window.codeAutomationExit.
    let exitCode: number | undefined;
    const exitWaiters: ((code: number) => void)[] = [];
    await page.exposeFunction('codeAutomationExit', (code: number) => {
      exitCode = code;
      for (const w of exitWaiters.splice(0)) w(code);
    });

    await page.goto(url, { waitUntil: 'domcontentloaded', timeout: Math.max(5_000, deadline - Date.now()) });
    await page
      .locator('.monaco-workbench .part.statusbar')
      .waitFor({ state: 'visible', timeout: Math.max(5_000, deadline - Date.now()) });
    // The folder is open once the explorer has a root (or the title shows it): the window is usable.
    await page
      .locator('.monaco-workbench .part.activitybar, .monaco-workbench .activitybar')
      .first()
      .waitFor({ state: 'visible', timeout: Math.max(5_000, deadline - Date.now()) });

    const logsDir = path.join(dirs.userData, 'logs');
    const extHostLog = (): string => readExtHostLogs(logsDir);
    // Ready when the remote extension host has started its eager extensions (commands registered).
    for (;;) {
      if (/Eager extensions activated/.test(extHostLog())) break;
      if (exited) throw new Error(`code-server ${exited}:\n${serverOut.slice(-4000)}`);
      if (Date.now() > deadline) {
        throw new Error(
          `the extension host did not start within ${startTimeout} ms (no "Eager extensions activated" in ${logsDir})`,
        );
      }
      await delay(200);
    }
    let closed = false;

    const quickInput = page.locator('.quick-input-widget');
    const quickInputBox = quickInput.locator('.quick-input-box input');
    const rowLabels = async (): Promise<string[]> =>
      quickInput.locator('.quick-input-list .monaco-list-row').evaluateAll((rows) =>
        rows.map((r) => {
          const label = r.querySelector('.label-name') ?? r.querySelector('.monaco-highlighted-label');
          return (label?.textContent ?? '').trim();
        }),
      );
    const clickRow = async (
      match: (label: string) => boolean,
      timeoutMs: number,
      what: string,
      filter?: string,
    ): Promise<void> => {
      const start = Date.now();
      const end = start + timeoutMs;
      let typed = false;
      for (;;) {
        const labels = await rowLabels();
        const i = labels.findIndex(match);
        if (i >= 0) {
          await quickInput.locator('.quick-input-list .monaco-list-row').nth(i).click();
          return;
        }
        // Rows outside the rendered window of a long list: filter by typing after a short wait.
        if (!typed && filter !== undefined && Date.now() > start + 1500) {
          await quickInputBox.fill(filter);
          typed = true;
        }
        if (Date.now() > end) throw new Error(`quick pick has no row ${what}; rows: ${JSON.stringify(labels)}`);
        await delay(100);
      }
    };
    const matcher =
      (m: string | RegExp) =>
      (s: string): boolean =>
        typeof m === 'string' ? s === m : m.test(s);
    const notificationTexts = async (): Promise<string[]> =>
      page
        .locator(
          '.notifications-toasts .notification-list-item-message, .notifications-center .notification-list-item-message',
        )
        .evaluateAll((els) => els.map((e) => (e.textContent ?? '').trim()));

    const wb: Workbench = {
      page,
      context: ctx,
      url,
      port,
      tempRoot: dirs.root,
      userDataDir: dirs.userData,
      extensionsDir: dirs.extensions,
      logsDir,
      async runCommand(title, o) {
        const timeoutMs = o?.timeoutMs ?? 20_000;
        const end = Date.now() + timeoutMs;
        // The palette lists the commands known when it opens, and an extension's contributions can
        // arrive a moment later: reopen it until the command shows or time is up.
        for (;;) {
          // Escape closes whatever quick input is open; F1 opens the palette with its '>' prefix.
          await page.keyboard.press('Escape');
          await page.keyboard.press('F1');
          try {
            await quickInputBox.waitFor({
              state: 'visible',
              timeout: Math.max(1000, Math.min(3000, end - Date.now())),
            });
          } catch (e) {
            if (Date.now() >= end) throw e;
            // F1 went to a focused webview's frame (a restored panel, say): focus the workbench.
            await page
              .locator('.part.titlebar .window-title, .part.statusbar')
              .first()
              .click({ position: { x: 2, y: 2 } })
              .catch(() => undefined);
            continue;
          }
          try {
            // The palette can close under us while the workbench is still restoring (after a reload).
            await quickInputBox.fill(`>${title}`, { timeout: Math.max(1000, Math.min(3000, end - Date.now())) });
            await clickRow(matcher(title), Math.min(4000, Math.max(500, end - Date.now())), JSON.stringify(title));
            return;
          } catch (e) {
            if (Date.now() >= end) throw e;
          }
        }
      },
      async quickPickItems(o) {
        await quickInput.waitFor({ state: 'visible', timeout: o?.timeoutMs ?? 20_000 });
        return rowLabels();
      },
      async quickPickSelect(label, o) {
        const timeoutMs = o?.timeoutMs ?? 20_000;
        await quickInput.waitFor({ state: 'visible', timeout: timeoutMs });
        await clickRow(matcher(label), timeoutMs, String(label), typeof label === 'string' ? label : undefined);
      },
      async quickPickType(text, o) {
        await quickInputBox.waitFor({ state: 'visible', timeout: o?.timeoutMs ?? 20_000 });
        if (o?.replace === false) {
          await quickInputBox.focus();
          await page.keyboard.type(text);
        } else {
          await quickInputBox.fill(text);
        }
        if (o?.enter !== false) await quickInputBox.press('Enter');
      },
      notifications: notificationTexts,
      async waitForNotification(match, o) {
        const timeoutMs = o?.timeoutMs ?? 20_000;
        const end = Date.now() + timeoutMs;
        const m = typeof match === 'string' ? (s: string) => s.includes(match) : (s: string) => match.test(s);
        for (;;) {
          const texts = await notificationTexts();
          const hit = texts.find(m);
          if (hit !== undefined) return hit;
          if (Date.now() > end)
            throw new Error(
              `no notification matching ${String(match)} within ${timeoutMs} ms; shown: ${JSON.stringify(texts)}`,
            );
          await delay(100);
        }
      },
      webviewFrame(o) {
        const frames = page.locator('iframe.webview.ready');
        const frame = o?.nth === undefined ? frames.last() : frames.nth(o.nth);
        return frame.contentFrame().frameLocator('#active-frame');
      },
      async screenshot(name) {
        fs.mkdirSync(screenshotDir, { recursive: true });
        const file = path.join(screenshotDir, `${name.replace(/[^\w.-]+/g, '_')}.png`);
        await page.screenshot({ path: file, timeout: 15_000 });
        console.log(`screenshot: ${file}`);
        return file;
      },
      extHostLog,
      fairPruneOutput: () => readFairPruneOutput(path.join(dirs.userData, 'logs')),
      async waitForExtHostLog(match, o) {
        const timeoutMs = o?.timeoutMs ?? 30_000;
        const end = Date.now() + timeoutMs;
        for (;;) {
          const log = extHostLog();
          if (match.test(log)) return log;
          if (Date.now() > end)
            throw new Error(
              `extension host log has no ${String(match)} within ${timeoutMs} ms; its tail:\n${tail(log, 40)}`,
            );
          await delay(200);
        }
      },
      serverLog: () => serverOut,
      testsExitCode(o) {
        if (exitCode !== undefined) return Promise.resolve(exitCode);
        const timeoutMs = o?.timeoutMs ?? 120_000;
        return new Promise((resolve, reject) => {
          const t = setTimeout(
            () => reject(new Error(`extension tests did not finish within ${timeoutMs} ms`)),
            timeoutMs,
          );
          exitWaiters.push((code) => {
            clearTimeout(t);
            resolve(code);
          });
        });
      },
      async reportFailure(name, error) {
        console.error(`\n--- e2e failure in ${name}: ${error instanceof Error ? error.message : String(error ?? '')}`);
        if (!closed) {
          try {
            await wb.screenshot(`failure-${name}`);
          } catch (e) {
            console.error(`(no failure screenshot: ${(e as Error).message})`);
          }
        }
        console.error(`--- extension host log (tail):\n${tail(extHostLog(), 60) || '(empty)'}`);
        console.error(`--- code-server output (tail):\n${tail(serverOut, 30) || '(empty)'}`);
      },
      async close() {
        if (closed) return;
        closed = true;
        const reloads = readFairPruneOutput(path.join(dirs.userData, 'logs'))
          .split('\n')
          .filter((l) => PAGE_RELOAD_LINE.test(l));
        if (process.env.FAIRPRUNE_E2E_KEEP === '1') {
          context = undefined;
          console.log(`FAIRPRUNE_E2E_KEEP=1: left ${dirs.root} (code-server pid group ${server?.pid} ended)`);
          if (server) await killGroup(server);
          await ctx.close().catch(() => undefined);
        } else await cleanup();
        if (reloads.length)
          throw new Error(`a webview page did not start and was loaded again:\n${reloads.join('\n')}`);
      },
    };
    return wb;
  } catch (e) {
    const logs = readExtHostLogs(path.join(dirs.userData, 'logs'));
    await cleanup().catch(() => undefined);
    if (e instanceof Error && logs) e.message += `\n--- extension host log (tail):\n${tail(logs, 40)}`;
    throw e;
  }
}

/** The line the curves panel writes when its page has not started and it loads the page again. */
export const PAGE_RELOAD_LINE = /page had not started after|page did not start after/;

/** The "Fair Prune" output channel's log file(s) under logsDir, oldest first. */
export function readFairPruneOutput(logsDir: string): string {
  // A log output channel (`{ log: true }`) is `Fair Prune.log` in the extension's log folder; a plain one `N-Fair Prune.log`.
  return findLogs(logsDir, /(^|-)Fair Prune\.log$/)
    .map((f) => fs.readFileSync(f, 'utf8'))
    .join('\n');
}

function findLogs(logsDir: string, name: RegExp): string[] {
  const found: { file: string; mtime: number }[] = [];
  const walk = (dir: string, depth: number): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && depth < 5) walk(p, depth + 1);
      else if (e.isFile() && name.test(e.name)) found.push({ file: p, mtime: fs.statSync(p).mtimeMs });
    }
  };
  walk(logsDir, 0);
  return found.sort((a, b) => a.mtime - b.mtime).map((f) => f.file);
}

/** All remote extension host logs under logsDir, oldest session first, each under a header. */
export function readExtHostLogs(logsDir: string): string {
  return findLogs(logsDir, /exthost\.log$/i)
    .map((f) => `==> ${f} <==\n${fs.readFileSync(f, 'utf8')}`)
    .join('\n');
}

export function tail(text: string, lines: number): string {
  return text.split('\n').slice(-lines).join('\n').trim();
}

async function closeContext(context: BrowserContext, profileDir: string): Promise<void> {
  const closed = await Promise.race([
    context.close().then(
      () => true,
      () => false,
    ),
    delay(15_000).then(() => false),
  ]);
  if (!closed) killByCmdline(profileDir);
}

/** End processes whose command line names `marker` (our unique temp folder): ours, by pid. */
function killByCmdline(marker: string): void {
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes(marker)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      /* gone or not ours */
    }
  }
}

/** SIGTERM code-server's process group (server, extension hosts, pty host, watchers), then SIGKILL. */
async function killGroup(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  const alive = (): boolean => {
    try {
      process.kill(-pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    return;
  }
  const end = Date.now() + 5_000;
  while (alive() && Date.now() < end) await delay(100);
  if (alive()) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    const end2 = Date.now() + 3_000;
    while (alive() && Date.now() < end2) await delay(100);
  }
  child.stdout?.destroy();
  child.stderr?.destroy();
}

function removeTree(dir: string): void {
  for (let i = 0; i < 3; i++) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
      return;
    } catch {
      /* a late writer: retry */
    }
  }
}

/** PIDs of live processes whose command line or environment mention `marker` (for leak checks). */
export function processesMentioning(marker: string): number[] {
  const pids: number[] = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    if (Number(pid) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      let env = '';
      try {
        env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
      } catch {
        /* not readable */
      }
      if (cmd.includes(marker) || env.includes(marker)) pids.push(Number(pid));
    } catch {
      /* exited */
    }
  }
  return pids;
}

function findRepoRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'scripts', 'setup-e2e.sh')))
      return dir;
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

/** Poll `fn` until it returns something other than undefined/null/false; throws after timeoutMs. */
export async function until<T>(
  what: string,
  fn: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(150);
  }
}

/** The frame (of any webview: panels and side-bar views alike) whose document has `selector`. */
export async function frameWith(wb: Pick<Workbench, 'page'>, selector: string, timeoutMs = 30_000): Promise<Frame> {
  return until(
    `a webview showing ${selector}`,
    async () => {
      for (const f of wb.page.frames()) {
        if (await f.evaluate((s) => document.querySelector(s) !== null, selector).catch(() => false)) return f;
      }
      return undefined;
    },
    timeoutMs,
  );
}

/**
 * The modal dialog whose text matches `match` (waited for), answered with the button labelled `button`;
 * returns the dialog's text as the user read it.
 */
export async function answerDialog(page: Page, match: RegExp, button: string, timeoutMs = 30_000): Promise<string> {
  const dialog = page.locator('.monaco-dialog-box', { hasText: match });
  await dialog.waitFor({ timeout: timeoutMs });
  const text = ((await dialog.textContent()) ?? '').replace(/\u00a0/g, ' ');
  await dialog.locator('.monaco-button', { hasText: new RegExp(`^${button}$`) }).click();
  await dialog.waitFor({ state: 'detached' });
  return text;
}

export type { Locator };
