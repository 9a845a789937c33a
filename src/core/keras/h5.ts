/**
 * h5wasm (the HDF5 C library compiled to WebAssembly) from our CommonJS code. h5wasm is an ES module
 * only, so it is loaded with a real `import()`: TypeScript would turn a plain `import()` into
 * `require()` under CommonJS output, which Node refuses for an ES module, so the call is built at run
 * time. esbuild leaves it alone too; h5wasm stays external (scripts/build.mjs) and is loaded from
 * node_modules. Its Node build reads and writes real files by path.
 */
import type * as H5 from 'h5wasm';
import { UserError } from '../errors';

export type H5Module = typeof H5;
export type H5File = H5.File;
export type H5Group = H5.Group;
export type H5Dataset = H5.Dataset;

const importEsm = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

let loading: Promise<H5Module> | undefined;

export function h5wasm(): Promise<H5Module> {
  loading ??= (async () => {
    const mod = (await importEsm('h5wasm/node')) as H5Module;
    await mod.ready;
    return mod;
  })();
  return loading;
}

/** HDF5 files start with this signature (at offset 0 for files Keras writes). */
export function isHdf5(bytes: Uint8Array): boolean {
  const sig = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
  return bytes.length >= 8 && sig.every((b, i) => bytes[i] === b);
}

export function isGroup(h5: H5Module, e: unknown): e is H5Group {
  return e instanceof h5.Group;
}

export function isDataset(h5: H5Module, e: unknown): e is H5Dataset {
  return e instanceof h5.Dataset;
}

/** A string attribute (Keras writes fixed-length bytes, variable-length str or a byte array). */
export function stringAttr(holder: { attrs: Record<string, H5.Attribute> }, name: string): string | undefined {
  const a = holder.attrs[name];
  if (!a) return undefined;
  const v = a.value;
  if (typeof v === 'string') return v.replace(/\0+$/, '');
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8').replace(/\0+$/, '');
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'string') return v[0];
  return undefined;
}

/**
 * A list-of-strings attribute such as `layer_names` / `weight_names`: fixed-length bytes (Keras 2),
 * variable-length str (Keras 3), a single string, or an empty float64 array for "no weights".
 */
export function stringListAttr(holder: { attrs: Record<string, H5.Attribute> }, name: string): string[] | undefined {
  const a = holder.attrs[name];
  if (!a) return undefined;
  const v = a.value as unknown;
  if (v == null) return [];
  if (typeof v === 'string') return [v.replace(/\0+$/, '')];
  if (Array.isArray(v)) {
    return v.map((s) => (s instanceof Uint8Array ? Buffer.from(s).toString('utf8') : String(s)).replace(/\0+$/, ''));
  }
  if (ArrayBuffer.isView(v) && (v as unknown as ArrayLike<number>).length === 0) return [];
  return undefined;
}

/** A dataset's values as float32, whatever float type it is stored in. */
export function readFloat32(ds: H5Dataset): Float32Array {
  const v = ds.value as unknown;
  if (v instanceof Float32Array) return v;
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
    const arr = v as unknown as ArrayLike<number | bigint>;
    const out = new Float32Array(arr.length);
    for (let i = 0; i < arr.length; i++) out[i] = Number(arr[i]);
    return out;
  }
  if (typeof v === 'number') return Float32Array.of(v);
  throw new Error(`dataset ${ds.path} does not hold numbers`);
}

// ---------- a model file is read only from inside itself ----------

/** Links and datasets a Keras file may hold are checked one by one; past these bounds the file is refused. */
const MAX_H5_DEPTH = 64;
const MAX_H5_ENTRIES = 200_000;

const O_CREAT_EXCL = 0o100 | 0o200;

interface EmscriptenFs {
  open: (path: unknown, ...rest: unknown[]) => unknown;
  write: (stream: unknown, ...rest: unknown[]) => unknown;
  ErrnoError: new (errno: number) => Error;
}

/**
 * Runs `fn` while h5wasm may open the one file `allowed` and nothing else: the HDF5 library follows
 * external links, external storage and virtual datasets by opening other files, and h5wasm's Node
 * build opens real paths. Returns what `fn` returned and the paths that were refused.
 */
export function onlyThisFile<T>(
  h5: H5Module,
  allowed: string,
  fn: (refused: string[]) => T,
): { result: T; refused: string[] } {
  const fsys = (h5 as unknown as { FS: EmscriptenFs }).FS;
  const open = fsys.open;
  const refused: string[] = [];
  const target = allowed;
  fsys.open = function (this: unknown, p: unknown, ...rest: unknown[]) {
    // O_CREAT | O_EXCL makes a new file and never opens an existing one: h5wasm's error handler
    // formats the HDF5 error stack into a tmpfile()
    const flags = rest[0];
    const createsNew = typeof flags === 'number' && (flags & O_CREAT_EXCL) === O_CREAT_EXCL;
    if (typeof p === 'string' && p !== target && !createsNew) {
      refused.push(p);
      throw new fsys.ErrnoError(2);
    }
    return open.call(this, p, ...rest);
  };
  // The HDF5 library prints its error stack (HDF5-DIAG) to stderr when a refused open fails; a user
  // error says it in one line instead, and anything else is shown with the stack it printed.
  // (its Node build writes fd 2 itself, through FS.write)
  const write = fsys.write;
  let diagnostics = '';
  fsys.write = function (
    this: unknown,
    stream: unknown,
    buffer: unknown,
    offset: unknown,
    length: unknown,
    ...rest: unknown[]
  ) {
    if ((stream as { nfd?: number } | null)?.nfd === 2 && ArrayBuffer.isView(buffer)) {
      const heap = new Uint8Array(buffer.buffer, buffer.byteOffset + Number(offset), Number(length));
      diagnostics += Buffer.from(heap).toString('utf8');
      return length;
    }
    return write.call(this, stream, buffer, offset, length, ...rest);
  };
  let ok = false;
  try {
    const result = fn(refused);
    ok = true;
    return { result, refused };
  } catch (e) {
    ok = e instanceof UserError;
    throw e;
  } finally {
    fsys.open = open;
    fsys.write = write;
    if (!ok && diagnostics) process.stderr.write(diagnostics);
  }
}

/**
 * Refuses an HDF5 file that points outside itself: an external link, a soft link whose target passes
 * through one, a virtual dataset, or a dataset whose data is stored in another file (seen when its
 * first element is read under `onlyThisFile`). Call inside `onlyThisFile`; `refused` is its list.
 * `file` is the user's file for the message, `inside` a prefix for paths in a member (`.keras`).
 */
export function assertSelfContained(h5: H5Module, root: H5Group, refused: string[], file: string, inside = ''): void {
  let entries = 0;
  const where = (p: string) => `${inside}${p}`;
  const fix = 'save the model again with Keras (model.save), which writes every weight inside the file.';
  const externalOf = (p: string) => (root.get_external_link(p) as { filename?: string } | null)?.filename;
  const refuse = (p: string, what: string): never => {
    throw new UserError(`this dataset or group ${what}; Fair Prune reads and writes nothing outside the model file.`, {
      file,
      field: where(p),
      fix,
    });
  };
  const walk = (group: string, depth: number) => {
    if (depth > MAX_H5_DEPTH) refuse(group, `is nested more than ${MAX_H5_DEPTH} groups deep (a loop of links?)`);
    const g = root.get(group);
    for (const name of isGroup(h5, g) ? g.keys() : []) {
      if (++entries > MAX_H5_ENTRIES) refuse(group, `holds more than ${MAX_H5_ENTRIES.toLocaleString('en')} objects`);
      const p = group === '/' ? `/${name}` : `${group}/${name}`;
      const ext = externalOf(p);
      if (ext !== undefined) refuse(p, `is an HDF5 external link into another file ('${ext}')`);
      const soft = root.get_link(p) as string | null;
      if (typeof soft === 'string') {
        const target = soft.startsWith('/') ? soft : `${group}/${soft}`;
        const parts = target.split('/').filter(Boolean);
        for (let i = 1; i <= parts.length; i++) {
          const prefix = `/${parts.slice(0, i).join('/')}`;
          const e = externalOf(prefix);
          if (e !== undefined) refuse(p, `is a soft link to '${soft}', which leads into another file ('${e}')`);
        }
        continue; // the target is reached through its own hard link
      }
      const before = refused.length;
      const entry = root.get(p);
      if (refused.length > before) refuse(p, `reaches into another file ('${refused[before]}')`);
      if (isGroup(h5, entry)) walk(p, depth + 1);
      else if (isDataset(h5, entry)) {
        const meta = entry.metadata as { virtual_sources?: { file_name: string }[]; total_size?: number };
        if (meta.virtual_sources?.length)
          refuse(p, `is a virtual dataset made of '${meta.virtual_sources[0].file_name}'`);
        const shape = entry.shape ?? [];
        if ((meta.total_size ?? 0) > 0) {
          try {
            if (shape.length === 0) void entry.value;
            else entry.slice(shape.map(() => [0, 1] as [number, number]));
          } catch {
            // reported below when it tried another file; otherwise the read fails again where it matters
          }
          if (refused.length > before)
            refuse(p, `stores its data in another file ('${refused[before]}', HDF5 external storage)`);
        }
      }
    }
  };
  walk('/', 0);
}
