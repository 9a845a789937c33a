/**
 * Every file the product writes is written whole or not at all: data goes to a temporary file in the
 * same folder, is flushed, and is renamed over the target (rename is atomic on one file system); the
 * folder is flushed before and after the rename. Temporaries left by a process that died are removed
 * at the next start (`cleanStaleSessionTemps`).
 * Folders (a saved model: model.json + weights) are built under a temporary name and renamed into
 * place; an existing folder is never overwritten.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';

const TEMP_SUFFIX = /^\.(.+)\.(\d+)\.[0-9a-f]{8}\.tmp$/;

function tempName(target: string): string {
  return path.join(
    path.dirname(target),
    `.${path.basename(target)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`,
  );
}

/**
 * Flushes a folder's entries (a rename or a new file in it) to disk. Platforms that cannot open a
 * folder for fsync (Windows) keep their own ordering; there it is skipped.
 */
export function fsyncFolder(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fs.fsyncSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EPERM' && code !== 'EISDIR' && code !== 'ENOTSUP') throw e;
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes and flushes one file (its data reaches the disk before anything is renamed over it). */
function writeSynced(file: string, data: string | Uint8Array): void {
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Replaces `target` whole: the data is written to a temporary file beside it and flushed, the folder
 * is flushed, the file is renamed over the target, and the folder is flushed again, so after a crash
 * or power loss the target holds the old or the new content, never a mix or nothing.
 */
export function writeFileAtomic(target: string, data: string | Uint8Array): void {
  const dir = path.dirname(target);
  fs.mkdirSync(dir, { recursive: true });
  const tmp = tempName(target);
  try {
    writeSynced(tmp, data);
    fsyncFolder(dir);
    fs.renameSync(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncFolder(dir);
}

/**
 * Writes a set of files as one folder that appears all at once. `target` must not exist.
 * `files` maps a relative file name to its content. Every file and folder is flushed before the
 * rename, and the parent folder before and after it.
 */
export function writeFolderAtomic(target: string, files: Record<string, string | Uint8Array>): void {
  if (fs.existsSync(target)) {
    throw new Error(`${target} already exists; refusing to overwrite it`);
  }
  const parent = path.dirname(target);
  fs.mkdirSync(parent, { recursive: true });
  const tmp = tempName(target);
  fs.mkdirSync(tmp);
  try {
    const folders = new Set<string>([tmp]);
    for (const [name, data] of Object.entries(files)) {
      const p = path.join(tmp, name);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      for (let d = path.dirname(p); d.startsWith(tmp) && !folders.has(d); d = path.dirname(d)) folders.add(d);
      writeSynced(p, data);
    }
    // deepest first, so each folder's entries are on disk before its parent's
    for (const d of [...folders].sort((a, b) => b.length - a.length)) fsyncFolder(d);
    fsyncFolder(parent);
    fs.renameSync(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  fsyncFolder(parent);
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // alive, someone else's
  }
}

/**
 * Removes the temporary files and folders that a process which no longer runs left in `dir` (a crash,
 * a kill, a power loss between write and rename). Temporaries of running processes are kept. Returns
 * the names removed.
 */
export function cleanStaleTemps(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_SUFFIX.exec(name);
    if (!m || processAlive(Number(m[2]))) continue;
    fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

/** `cleanStaleTemps` over an output folder: its sessions/, each session, and each session's points/. */
export function cleanStaleSessionTemps(outDir: string): string[] {
  const sessions = path.join(outDir, 'sessions');
  const removed = cleanStaleTemps(sessions);
  let names: string[] = [];
  try {
    names = fs.readdirSync(sessions);
  } catch {
    return removed;
  }
  for (const name of names) {
    const dir = path.join(sessions, name);
    removed.push(...cleanStaleTemps(dir), ...cleanStaleTemps(path.join(dir, 'points')));
  }
  return removed;
}

export function sha256File(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

export function sha256(data: string | Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}
