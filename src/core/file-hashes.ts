/**
 * The files of a saved pruned model, read as regular files only and fingerprinted with sha256: the
 * hashes are recorded in results.json when the point is evaluated, and checked again when it is
 * committed, so the gate's verdict belongs to exactly the weights that are copied.
 */
import * as fs from 'fs';
import * as path from 'path';
import { sha256 } from './atomic';
import { UserError } from './errors';

/** Every regular file under `dir` (relative path with `/` → bytes); a symlink or other special file is refused. */
export function readRegularFiles(dir: string): Record<string, Buffer> {
  const files: Record<string, Buffer> = {};
  const walk = (d: string, prefix: string) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full, rel);
      else if (entry.isFile()) files[rel] = fs.readFileSync(full);
      else {
        throw new UserError(
          `'${rel}' is ${entry.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}; ` +
            'a pruned model folder holds regular files only.',
          {
            file: dir,
            field: rel,
            fix: 'run the session again to write the model afresh; do not link files into a session folder.',
          },
        );
      }
    }
  };
  walk(dir, '');
  return files;
}

/** sha256 of every regular file under `dir`, by relative path. */
export function hashFolder(dir: string): Record<string, string> {
  return Object.fromEntries(
    Object.entries(readRegularFiles(dir))
      .map(([rel, bytes]) => [rel, sha256(bytes)])
      .sort((a, b) => (a[0] < b[0] ? -1 : 1)),
  );
}

/** The first difference between the files read now and the hashes recorded, or undefined. */
export function hashMismatch(files: Record<string, Uint8Array>, recorded: Record<string, string>): string | undefined {
  for (const [rel, hash] of Object.entries(recorded)) {
    if (!(rel in files)) return `'${rel}' is missing`;
    if (sha256(files[rel]) !== hash) return `'${rel}' has changed since the point was evaluated`;
  }
  const extra = Object.keys(files).find((rel) => !(rel in recorded));
  return extra ? `'${extra}' was added after the point was evaluated` : undefined;
}
