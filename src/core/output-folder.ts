/**
 * Where results go must be a folder (or not exist yet, or only its parents): a path naming an existing
 * file, or inside one, is a user mistake to report in one line, before any work starts.
 */
import * as fs from 'fs';
import * as path from 'path';
import { UserError } from './errors';

export function checkOutputFolder(dir: string, field: string): void {
  let p = path.resolve(dir);
  for (;;) {
    let stat: fs.Stats | undefined;
    try {
      stat = fs.statSync(p);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') {
        throw new UserError(`cannot be used as the output folder (${code}).`, {
          file: dir,
          field,
          fix: 'give a folder you can write to.',
        });
      }
    }
    if (stat) {
      if (stat.isDirectory()) return;
      throw new UserError(
        p === path.resolve(dir) ? 'is a file, not a folder.' : `lies inside '${p}', which is a file, not a folder.`,
        {
          file: dir,
          field,
          fix: 'give a folder for the results (a new name is created), not a file.',
        },
      );
    }
    const parent = path.dirname(p);
    if (parent === p) return;
    p = parent;
  }
}

/**
 * The sessions folder for a workspace folder `root` from the `fairPrune.outputFolder` setting: a path
 * relative to the workspace that stays inside it. A setting that leads elsewhere (absolute, `..`) is
 * not followed: the default `.fairprune` is used, and `problem` says why.
 */
export function resolveOutputFolder(
  root: string,
  setting: string | undefined,
  fallback = '.fairprune',
): { dir: string; problem?: string } {
  const value = typeof setting === 'string' && setting.trim() ? setting.trim() : fallback;
  const resolved = path.resolve(root, value);
  const rootAbs = path.resolve(root);
  const inside = resolved.startsWith(rootAbs + path.sep) && !path.isAbsolute(value) && !path.win32.isAbsolute(value);
  if (inside) return { dir: resolved };
  return {
    dir: path.resolve(root, fallback),
    problem:
      `fairPrune.outputFolder '${value}' leads outside the workspace ` +
      `folder ${rootAbs}; sessions are kept in ${fallback} inside it.`,
  };
}
