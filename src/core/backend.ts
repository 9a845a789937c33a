/**
 * Chooses and starts the TensorFlow.js backend that runs the numbers, and records why.
 *
 * 'auto' tries, in order: @tensorflow/tfjs-node-gpu (only when it loads and a CUDA GPU answers),
 * @tensorflow/tfjs-node (TensorFlow's C library on the CPU), wasm (SIMD, single-threaded in Node),
 * and the pure-JavaScript cpu backend. The native packages are optional: they are required lazily,
 * and why one was not used goes into `BackendInfo.notes`.
 *
 * wasm and cpu get this project's `Conv2DBackpropFilter` kernel (see kernels/), without which a CNN
 * cannot train on wasm and trains very slowly on cpu; wasm also gets the two depthwise-conv gradient
 * kernels it lacks, and faster Conv2DBackpropInput, MaxPoolGrad, GatherV2 and transposed BatchMatMul
 * kernels in front of its own. With `--kernels stock` none of them is registered (kernels/choice.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
// Used by name (not a bare import): esbuild drops a bare import of it, its package.json declaring the
// node bundle free of side effects, and then the cpu backend would never be registered.
import * as tfcpu from '@tensorflow/tfjs-backend-cpu';
// tfjs-core's Node entry registers no gradient functions; tfjs-layers' does (into the one global registry).
import '@tensorflow/tfjs-layers';
import * as tfwasm from '@tensorflow/tfjs-backend-wasm';
import type { BackendInfo, BackendName, BackendPreference, KernelChoice } from '../protocol/results';
import { UserError } from './errors';
import { registerConv2DBackpropFilter } from './kernels/conv2d-backprop-filter';
import { registerDepthwiseBackprop } from './kernels/depthwise-conv2d-backprop';
import { registerConv2DBackpropInput } from './kernels/conv2d-backprop-input';
import { registerMaxPoolGrad } from './kernels/max-pool-grad';
import { registerGather } from './kernels/gather';
import { registerSlice } from './kernels/slice';
import { registerBatchMatMul } from './kernels/batch-mat-mul';
import { registerIdentity } from './kernels/identity';
import { registerSum } from './kernels/sum';
import { findSimdKernels, registerSimdKernels, simdKernels, SIMD_KERNELS_FILE } from './kernels/simd-kernels';
import { resolveKernels, stockKernels, useKernels } from './kernels/choice';

const BACKEND_OPTION = '--backend';
const NODE_PKG = '@tensorflow/tfjs-node';
const GPU_PKG = '@tensorflow/tfjs-node-gpu';
/** What tfjs-node-gpu 4.x's libtensorflow 2.9.1 loads: a newer CUDA (12, 13) or cuDNN (9) is not used. */
const GPU_NEEDS = 'CUDA 11.2 and cuDNN 8.1 (libcudart.so.11.0, libcudnn.so.8)';
const WASM_SIMD = 'tfjs-backend-wasm-simd.wasm';
const WASM_PLAIN = 'tfjs-backend-wasm.wasm';

type Log = (msg: string) => void;

/** One attempt at a backend: the info when it started, or the reason (one sentence) why not. */
type Attempt = { ok: true; info: BackendInfo } | { ok: false; reason: string };

const started = new Map<BackendPreference, Promise<BackendInfo>>();

/**
 * Starts the backend for `preference` and makes it the current tfjs backend. A second call with the
 * same preference returns the same info (and makes that backend current again if it was switched).
 * An explicit preference that cannot be met throws a UserError naming `--backend`. `kernels` (default:
 * FAIRPRUNE_KERNELS, else fairprune) is fixed by the first call in a thread (kernels/choice.ts).
 */
export async function initBackend(
  preference: BackendPreference,
  log: Log = () => {},
  kernels?: KernelChoice,
): Promise<BackendInfo> {
  const choice = kernels ?? resolveKernels();
  useKernels(choice);
  let p = started.get(preference);
  if (!p) {
    p = choose(preference, log).then((info) => ({ ...info, kernels: choice }));
    started.set(preference, p);
    p.catch(() => started.delete(preference));
  }
  const info = await p;
  if (tf.getBackend() !== info.tfjsBackend) {
    if (!(await tf.setBackend(info.tfjsBackend))) {
      throw new Error(`tfjs backend '${info.tfjsBackend}' started before but cannot be made current again`);
    }
  }
  return info;
}

/** One line for logs and reports, e.g. "wasm (SIMD, 1 thread) · tfjs 4.22.0 · tfjs-node not installed". */
export function backendSummary(info: BackendInfo): string {
  let head: string = info.name;
  if (info.name === 'wasm') {
    const parts: string[] = [];
    if (info.simd !== undefined) parts.push(info.simd ? 'SIMD' : 'no SIMD');
    if (info.threads !== undefined) parts.push(`${info.threads} thread${info.threads === 1 ? '' : 's'}`);
    if (parts.length) head += ` (${parts.join(', ')})`;
  } else if (info.name === 'tensorflow-gpu') {
    head += ' (CUDA)';
  }
  const notes = info.notes.map(shortNote);
  return [head, `tfjs ${info.tfjsVersion}`, ...(info.kernels === 'stock' ? ['stock kernels only'] : []), ...notes].join(
    ' · ',
  );
}

/** "@tensorflow/tfjs-node is not installed: long reason" → "tfjs-node not installed". */
function shortNote(note: string): string {
  const colon = note.indexOf(':');
  const head = colon > 0 ? note.slice(0, colon) : note;
  return head
    .replace(/@tensorflow\//g, '')
    .replace(/ is /g, ' ')
    .trim();
}

async function choose(preference: BackendPreference, log: Log): Promise<BackendInfo> {
  switch (preference) {
    case 'auto':
      return chooseAuto(log);
    case 'tensorflow-gpu': {
      const a = await tryNative(GPU_PKG, log);
      if (a.ok && a.info.name === 'tensorflow-gpu') return a.info;
      throw unavailable(
        'tensorflow-gpu',
        a.ok ? `${GPU_PKG} loaded but no CUDA GPU answered` : a.reason,
        `install ${GPU_PKG} on Linux with an NVIDIA GPU and ${GPU_NEEDS}, or use ${BACKEND_OPTION} auto`,
      );
    }
    case 'tensorflow': {
      const a = await tryNative(NODE_PKG, log);
      if (a.ok) return a.info;
      throw unavailable(
        'tensorflow',
        a.reason,
        `run \`npm install ${NODE_PKG}\` where its libtensorflow ` +
          `download can be reached, or use ${BACKEND_OPTION} auto (wasm)`,
      );
    }
    case 'wasm': {
      const a = await tryWasm(log);
      if (a.ok) return a.info;
      throw unavailable(
        'wasm',
        a.reason,
        `reinstall @tensorflow/tfjs-backend-wasm (its dist/ holds the .wasm files), or use ${BACKEND_OPTION} cpu`,
      );
    }
    case 'cpu':
      return startCpu([], log);
    default:
      throw new UserError(`Unknown backend '${String(preference)}'.`, {
        field: BACKEND_OPTION,
        fix: `use one of auto, tensorflow-gpu, tensorflow, wasm, cpu.`,
      });
  }
}

async function chooseAuto(log: Log): Promise<BackendInfo> {
  const notes: string[] = [];
  if (isInstalled(GPU_PKG)) {
    const gpu = await tryNative(GPU_PKG, log);
    if (gpu.ok && gpu.info.name === 'tensorflow-gpu') return gpu.info;
    if (gpu.ok) {
      // The GPU package is loaded and owns the 'tensorflow' backend; it runs TensorFlow on the CPU.
      gpu.info.notes.push(`${GPU_PKG} found no CUDA GPU: TensorFlow runs on the CPU (it needs ${GPU_NEEDS})`);
      return gpu.info;
    }
    notes.push(gpu.reason);
  }
  const node = await tryNative(NODE_PKG, log);
  if (node.ok) {
    node.info.notes.unshift(...notes);
    return node.info;
  }
  notes.push(node.reason);
  log(`${node.reason}; trying wasm`);
  const wasm = await tryWasm(log);
  if (wasm.ok) {
    wasm.info.notes.unshift(...notes);
    return wasm.info;
  }
  notes.push(wasm.reason);
  log(`${wasm.reason}; using cpu`);
  return startCpu(notes, log);
}

function unavailable(name: BackendName, reason: string, fix: string): UserError {
  return new UserError(`The backend '${name}' cannot be used here: ${reason}.`, {
    field: BACKEND_OPTION,
    fix: `${fix}.`,
  });
}

/** Whether `pkg` can be resolved from here (without loading it). */
function isInstalled(pkg: string): boolean {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

/** Loads an optional package at run time; the bundler leaves this require alone (the name is not a literal). */
function requireOptional(pkg: string): unknown {
  const load: (id: string) => unknown = require;
  return load(pkg);
}

function errorText(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0].trim();
}

async function tryNative(pkg: typeof NODE_PKG | typeof GPU_PKG, _log: Log): Promise<Attempt> {
  try {
    requireOptional(pkg);
  } catch (e) {
    const code = (e as { code?: string }).code;
    const missing = code === 'MODULE_NOT_FOUND' && errorText(e).includes(`'${pkg}'`);
    const why =
      pkg === NODE_PKG
        ? "it is an optional dependency whose install downloads TensorFlow's C library, which failed or was skipped"
        : `it is not a dependency of Fair Prune; it must be installed separately, on Linux with ${GPU_NEEDS}`;
    const reason = missing
      ? `${pkg} is not installed: ${why}`
      : `${pkg} is installed but did not load: ${errorText(e)}`;
    return { ok: false, reason };
  }
  let ok = false;
  try {
    ok = await tf.setBackend('tensorflow');
  } catch (e) {
    return { ok: false, reason: `${pkg} loaded but its 'tensorflow' backend did not start: ${errorText(e)}` };
  }
  if (!ok) return { ok: false, reason: `${pkg} loaded but its 'tensorflow' backend did not start` };
  const gpu = (tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true;
  const name: BackendName = pkg === GPU_PKG && gpu ? 'tensorflow-gpu' : 'tensorflow';
  return { ok: true, info: { name, tfjsBackend: 'tensorflow', tfjsVersion: tf.version_core, notes: [] } };
}

/**
 * The folder holding the .wasm binaries: next to the running bundle (`<dir>/wasm/` or `<dir>/`, where
 * the build copies them), else the package's own dist/. Returned with a trailing separator: in Node the
 * wasm loader reads `prefix + fileName` from disk with fs, so a plain file path (not a URL) is right.
 */
export function findWasmDir(fileName = WASM_SIMD): string | null {
  const candidates = [path.join(__dirname, 'wasm'), __dirname];
  try {
    candidates.push(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist'));
  } catch {
    // not resolvable from here (a bundle shipped without node_modules): only the bundle's folders count
  }
  for (const dir of candidates) {
    if (fs.existsSync(path.join(dir, fileName))) return dir + path.sep;
  }
  return null;
}

let wasmPathSet: string | null = null;

async function tryWasm(_log: Log): Promise<Attempt> {
  const simd = (await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT')) === true;
  const file = simd ? WASM_SIMD : WASM_PLAIN;
  // Set the path before tfjs first initialises 'wasm' (tf.findBackend('wasm') would too, so it is not used here).
  if (wasmPathSet === null) {
    const dir = findWasmDir(file);
    if (!dir)
      return {
        ok: false,
        reason:
          `wasm could not start: ${file} was found neither next to the ` +
          `program (${__dirname}) nor in @tensorflow/tfjs-backend-wasm/dist`,
      };
    try {
      tfwasm.setWasmPaths(dir);
    } catch (e) {
      return { ok: false, reason: `wasm could not start: ${errorText(e)}` };
    }
    wasmPathSet = dir;
  }
  if (stockKernels()) registerWasmGaps();
  else registerWasmKernels();
  let ok = false;
  try {
    ok = await tf.setBackend('wasm');
  } catch (e) {
    return { ok: false, reason: `wasm could not start: ${errorText(e)}` };
  }
  if (!ok)
    return { ok: false, reason: `wasm could not start (the .wasm binary from ${wasmPathSet ?? '?'} did not load)` };
  const threads = tfwasm.getThreadsCount();
  // Fair Prune's own SIMD kernels (filter and max-pool gradients, bias sums, Adam): without them training
  // still works through the kernels behind them, only slower, so it is said rather than failed.
  const notes =
    stockKernels() || simdKernels(tf.backend())
      ? []
      : [
          `Fair Prune's SIMD kernels did not load ` +
            `(${findSimdKernels() ?? `${SIMD_KERNELS_FILE} not found next to ${__dirname}`}): ` +
            'CNN fine-tuning runs about a third slower',
        ];
  return { ok: true, info: { name: 'wasm', tfjsBackend: 'wasm', tfjsVersion: tf.version_core, notes, simd, threads } };
}

/**
 * The gradient kernels tfjs's wasm backend does not have at all (a convolution's filter gradient, both of a
 * depthwise convolution's), built from kernels it has: without them no CNN trains on wasm, so they are
 * registered with stock kernels too. They replace none of wasm's own.
 */
function registerWasmGaps(): void {
  registerConv2DBackpropFilter('wasm');
  registerDepthwiseBackprop('wasm');
}

/** Fair Prune's kernels in front of wasm's own (kernels/), and the gaps filled. */
function registerWasmKernels(): void {
  registerWasmGaps();
  registerConv2DBackpropInput('wasm');
  registerMaxPoolGrad('wasm');
  registerGather('wasm');
  registerSlice('wasm');
  registerBatchMatMul('wasm');
  registerIdentity('wasm');
  registerSum('wasm');
  // In front of the kernels above (filter and max-pool gradients, sums), which stay for the cases it
  // does not take.
  registerSimdKernels('wasm');
}

async function startCpu(notes: string[], log: Log): Promise<BackendInfo> {
  if (!stockKernels()) registerConv2DBackpropFilter('cpu');
  if (!(await tf.setBackend('cpu'))) throw new Error("tfjs's cpu backend did not start");
  // Its one-time console banner ("install our node backend") repeats what notes already say.
  const cpu = tf.findBackend('cpu') as unknown as { firstUse?: boolean } | null;
  if (cpu && 'firstUse' in cpu) cpu.firstUse = false;
  // Named use of the package: esbuild drops a bare import of it (its sideEffects list omits the Node build).
  log(`running on the pure-JavaScript cpu backend (tfjs-backend-cpu ${tfcpu.version_cpu}), the slowest one`);
  return { name: 'cpu', tfjsBackend: 'cpu', tfjsVersion: tf.version_core, notes };
}
