/**
 * Every file the product writes is written whole or not at all: data goes to a temporary file in the
 * same folder, is flushed, and is renamed over the target (rename is atomic on one file system).
 * Folders (a saved model: model.json + weights) are built under a temporary name and renamed into
 * place; an existing folder is never overwritten.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';

function tempName(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);
}

export function writeFileAtomic(target: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = tempName(target);
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Writes a set of files as one folder that appears all at once. `target` must not exist.
 * `files` maps a relative file name to its content.
 */
export function writeFolderAtomic(target: string, files: Record<string, string | Uint8Array>): void {
  if (fs.existsSync(target)) {
    throw new Error(`${target} already exists; refusing to overwrite it`);
  }
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = tempName(target);
  fs.mkdirSync(tmp);
  try {
    for (const [name, data] of Object.entries(files)) {
      const p = path.join(tmp, name);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, data);
    }
    fs.renameSync(tmp, target);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

export function sha256File(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

export function sha256(data: string | Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}
