/**
 * h5wasm (the HDF5 C library compiled to WebAssembly) from our CommonJS code. h5wasm is an ES module
 * only, so it is loaded with a real `import()`: TypeScript would turn a plain `import()` into
 * `require()` under CommonJS output, which Node refuses for an ES module, so the call is built at run
 * time. esbuild leaves it alone too; h5wasm stays external (scripts/build.mjs) and is loaded from
 * node_modules. Its Node build reads and writes real files by path.
 */
import type * as H5 from 'h5wasm';

export type H5Module = typeof H5;
export type H5File = H5.File;
export type H5Group = H5.Group;
export type H5Dataset = H5.Dataset;

// eslint-disable-next-line @typescript-eslint/no-implied-eval
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

/** Overwrites a whole dataset in place, in its own float type. */
export function writeWhole(ds: H5Dataset, values: Float32Array): void {
  const shape = ds.shape ?? [];
  const meta = ds.metadata;
  const data = meta.size === 8 ? Float64Array.from(values) : values;
  ds.write_slice(
    shape.map((d) => [0, d]),
    data,
  );
}
