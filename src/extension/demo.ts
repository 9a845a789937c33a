/**
 * "Fair Prune: Try the Demo": a biased image task (coloured MNIST digits, the ink colour as the
 * subgroup, rare in training) and its trained dense model, written into a folder the user picks, then
 * a pruning session on it — Fair Prune without a model of one's own. The engine makes the data set and
 * the model (src/core/demo/prepare.ts), from digits shipped with the extension.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { DemoSetup, RunRequest } from '../protocol/engine';
import { BIASED_MNIST_COLUMNS, DEMO_LAYOUT, DEMO_LOSSES, DEMO_SEED } from '../core/demo/plan';
import { UserError } from '../core/errors';
import { outDirFor, settings } from './config';
import { sessionSettings } from './prune';

/** The folder the demo goes into, inside the one the user picks. */
export const DEMO_FOLDER = 'fair-prune-demo';

/** Asks where to write the demo: the workspace folder (one Enter) or another folder. */
async function pickParent(): Promise<string | undefined> {
  const browse = async () =>
    (
      await vscode.window.showOpenDialog({
        title: 'Fair Prune: where to write the demo',
        canSelectFiles: false,
        canSelectFolders: true,
        canSelectMany: false,
        openLabel: 'Write the Demo Here',
      })
    )?.[0]?.fsPath;
  const folders = vscode.workspace.workspaceFolders ?? [];
  if (folders.length === 0) return browse();
  const other = '$(folder-opened) Choose Another Folder…';
  const items = [
    ...folders.map((f) => ({
      label: `$(folder) ${f.name}/${DEMO_FOLDER}`,
      description: 'in this workspace',
      detail: '4,500 small PNGs of biased MNIST digits and a CNN trained on them, then a pruning session',
      dir: f.uri.fsPath,
    })),
    { label: other, description: '', detail: undefined, dir: '' },
  ];
  const picked = await vscode.window.showQuickPick(items, {
    title: 'Fair Prune: Try the Demo — where to write it',
    placeHolder: 'The demo data set and its model go into a new folder fair-prune-demo',
    ignoreFocusOut: true,
  });
  if (!picked) return undefined;
  return picked.label === other ? browse() : picked.dir;
}

/**
 * The session request and demo setup for a demo in the folder the user picks; undefined when they back out.
 * The session runs the demo's losses at the sparsities and epochs of the settings.
 */
export async function askDemoRequest(): Promise<{ request: RunRequest; demo: DemoSetup } | undefined> {
  const parent = await pickParent();
  if (!parent) return undefined;
  const folder = path.join(parent, DEMO_FOLDER);
  if (fs.existsSync(folder) && !fs.statSync(folder).isDirectory()) {
    throw new UserError('exists and is not a folder; the demo goes into a folder of that name.', {
      file: folder,
      fix: 'rename or move that file, or pick another folder for the demo.',
    });
  }
  const request: RunRequest = {
    modelPath: path.join(folder, DEMO_LAYOUT.model, 'model.json'),
    data: {
      csvPath: path.join(folder, DEMO_LAYOUT.data, DEMO_LAYOUT.csv),
      label: BIASED_MNIST_COLUMNS.label,
      groups: [BIASED_MNIST_COLUMNS.group],
    },
    sparsities: settings().sparsities,
    losses: [...DEMO_LOSSES],
    ...sessionSettings(),
    method: 'magnitude-layer',
    seed: DEMO_SEED,
    outDir: outDirFor(vscode.Uri.file(folder)) ?? path.join(folder, '.fairprune'),
  };
  return { request, demo: { folder: parent } };
}
