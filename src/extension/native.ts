/**
 * "Fair Prune: Install Native Backend": a .vsix cannot carry TensorFlow's C library, so this
 * installs @tensorflow/tfjs-node (or -gpu) with npm into the extension's global storage. The engine
 * then loads it from there (see src/engine/native-preload.ts), and every report names the backend.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';

const TFJS_VERSION = '4.22.0';

export function nativeRoot(context: vscode.ExtensionContext): string {
  return path.join(context.globalStorageUri.fsPath, 'native-backend');
}

/** Environment for the engine process: the preload and where the native install is, if there is one. */
export function nativeEnv(context: vscode.ExtensionContext): { preload?: string; env?: Record<string, string> } {
  const root = nativeRoot(context);
  const installed = ['tfjs-node', 'tfjs-node-gpu'].some((p) =>
    fs.existsSync(path.join(root, 'node_modules', '@tensorflow', p, 'package.json')),
  );
  if (!installed) return {};
  return {
    preload: path.join(context.extensionPath, 'dist', 'native-preload.js'),
    env: { FAIRPRUNE_NATIVE_ROOT: root },
  };
}

function run(
  cmd: string,
  args: string[],
  cwd: string,
  output: vscode.OutputChannel,
  token: vscode.CancellationToken,
): Promise<{ code: number | null; tail: string }> {
  return new Promise((resolve) => {
    let tail = '';
    const child = spawn(cmd, args, {
      cwd,
      shell: process.platform === 'win32',
      env: { ...process.env, npm_config_yes: 'true' },
    });
    const onData = (d: Buffer) => {
      const t = d.toString();
      output.append(t);
      tail = (tail + t).slice(-2000);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    token.onCancellationRequested(() => child.kill());
    child.on('error', (e) => resolve({ code: -1, tail: e.message }));
    child.on('close', (code) => resolve({ code, tail }));
  });
}

export async function installNativeBackend(
  context: vscode.ExtensionContext,
  output: vscode.OutputChannel,
): Promise<void> {
  if (!vscode.workspace.isTrusted) {
    void vscode.window.showErrorMessage('Fair Prune installs the native backend only from a trusted workspace.');
    return;
  }
  const pick = await vscode.window.showQuickPick(
    [
      {
        label: 'CPU',
        description: `@tensorflow/tfjs-node ${TFJS_VERSION}`,
        detail: "TensorFlow's C library on this machine's CPU: much faster than wasm",
        pkg: '@tensorflow/tfjs-node',
      },
      {
        label: 'CUDA GPU',
        description: `@tensorflow/tfjs-node-gpu ${TFJS_VERSION}`,
        detail: 'Linux with an NVIDIA GPU and CUDA 11.2 + cuDNN 8.1 installed (newer CUDA is not used)',
        pkg: '@tensorflow/tfjs-node-gpu',
      },
    ],
    { title: 'Fair Prune: install which native backend?' },
  );
  if (!pick) return;
  const root = nativeRoot(context);
  fs.mkdirSync(root, { recursive: true });
  if (!fs.existsSync(path.join(root, 'package.json')))
    fs.writeFileSync(
      path.join(root, 'package.json'),
      JSON.stringify({ name: 'fair-prune-native-backend', private: true }, null, 1),
    );
  output.show(true);
  output.appendLine(`installing ${pick.pkg}@${TFJS_VERSION} into ${root}`);
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Fair Prune: installing ${pick.pkg}`, cancellable: true },
    async (_p, token) => {
      const npm = await run('npm', ['--version'], root, output, token);
      if (npm.code !== 0)
        return { ok: false, why: 'npm was not found on PATH. Install Node.js (which brings npm) and try again.' };
      const r = await run(
        'npm',
        ['install', '--no-audit', '--no-fund', `${pick.pkg}@${TFJS_VERSION}`],
        root,
        output,
        token,
      );
      if (r.code === 0 && fs.existsSync(path.join(root, 'node_modules', ...pick.pkg.split('/'), 'package.json')))
        return { ok: true, why: '' };
      const offline = /ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN|getaddrinfo|fetch failed|network/i.test(r.tail);
      return {
        ok: false,
        why: offline
          ? "the download failed: this machine cannot reach the npm registry or the server TensorFlow's C library comes from."
          : `npm exited with code ${r.code}. ${pick.label === 'CUDA GPU' ? 'tfjs-node-gpu needs Linux with CUDA 11.2 and cuDNN 8.1; ' : ''}see the Fair Prune output for npm's message.`,
      };
    },
  );
  if (result.ok) {
    void vscode.window.showInformationMessage(
      `Fair Prune: ${pick.pkg} is installed. New sessions use it (set fairPrune.backend to "auto" or "${pick.label === 'CPU' ? 'tensorflow' : 'tensorflow-gpu'}").`,
    );
  } else {
    void vscode.window
      .showErrorMessage(
        `Fair Prune could not install ${pick.pkg}: ${result.why} Sessions keep running on the wasm backend.`,
        'Show Log',
      )
      .then((p) => p && output.show(true));
  }
}
