/**
 * Crafted files for the untrusted-input tests: a small Keras 2 `.h5` model whose kernel can be
 * replaced by a link or dataset that points outside the file, a victim file beside it, and a CSV.
 */
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { h5wasm, type H5File, type H5Group } from '../src/core/keras/h5';
import { repoRoot } from './helpers';

export const cliPath = path.join(repoRoot, 'out', 'src', 'cli', 'main.js');

/** The command line as a user runs it; `maxRssKb` is the child's peak resident memory (Linux). */
export function fairprune(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [cliPath, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 240_000,
    env: { ...process.env, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The command line, also reporting the process's peak resident memory in KiB: VmHWM of its own
 * address space on Linux (getrusage's maxRSS would include the forking test process's memory).
 */
export function fairpruneWithPeak(
  args: string[],
  cwd: string,
): { code: number | null; stdout: string; stderr: string; peakKb: number } {
  const script = `process.on('exit', () => {
  let kb = process.resourceUsage().maxRSS;
  try { kb = Number(/VmHWM:\\s+(\\d+) kB/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]); } catch {}
  process.stderr.write('\\nPEAK_KB=' + kb + '\\n');
});
require(${JSON.stringify(cliPath)}).runCli(${JSON.stringify(args)});`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd, encoding: 'utf8', timeout: 240_000 });
  const m = /\nPEAK_KB=(\d+)\n/.exec(r.stderr);
  if (!m) throw new Error(`no peak memory reported: ${r.stderr}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.replace(m[0], ''), peakKb: Number(m[1]) };
}

/** A 2-feature, 2-class data set the small model fits. */
export function writeCsv(file: string, rows = 40): void {
  const lines = ['x1,x2,group,label'];
  for (let i = 0; i < rows; i++)
    lines.push(`${(i % 7) / 7},${(i % 5) / 5},${i % 2 ? 'a' : 'b'},${i % 3 === 0 ? 1 : 0}`);
  fs.writeFileSync(file, lines.join('\n') + '\n');
}

const dense = (name: string, units: number, activation: string, extra: Record<string, unknown> = {}) => ({
  class_name: 'Dense',
  config: {
    name,
    trainable: true,
    ...extra,
    dtype: 'float32',
    units,
    activation,
    use_bias: true,
    kernel_initializer: { class_name: 'GlorotUniform', config: { seed: null } },
    bias_initializer: { class_name: 'Zeros', config: {} },
    kernel_regularizer: null,
    bias_regularizer: null,
    activity_regularizer: null,
    kernel_constraint: null,
    bias_constraint: null,
  },
});

function fixedStrings(g: H5Group, name: string, values: string[]): void {
  g.create_attribute(name, values, [values.length], `S${Math.max(...values.map((v) => v.length))}`);
}

/**
 * Keras 2 Sequential: 2 inputs → dense_1 (4, relu) → dense_2 (2, softmax). `kernel` decides how
 * dense_1's kernel is stored (a plain dataset when absent).
 */
export async function writeSmallKerasH5(
  file: string,
  kernel?: (g: H5Group, name: string) => void,
  declared?: { units: number; inputs: number },
): Promise<void> {
  const h5 = await h5wasm();
  const f: H5File = new h5.File(file, 'w');
  try {
    f.create_attribute('keras_version', '2.2.4-tf');
    f.create_attribute('backend', 'tensorflow');
    const layers = [
      dense('dense_1', declared?.units ?? 4, 'relu', { batch_input_shape: [null, declared?.inputs ?? 2] }),
      dense('dense_2', 2, 'softmax'),
    ];
    f.create_attribute(
      'model_config',
      JSON.stringify({ class_name: 'Sequential', config: { name: 'sequential', layers } }),
    );
    const mw = f.create_group('model_weights');
    fixedStrings(mw, 'layer_names', ['dense_1', 'dense_2']);
    const g1 = mw.create_group('dense_1');
    fixedStrings(g1, 'weight_names', ['dense_1/kernel:0', 'dense_1/bias:0']);
    const inner1 = g1.create_group('dense_1');
    if (kernel) kernel(inner1, 'kernel:0');
    else
      inner1.create_dataset({
        name: 'kernel:0',
        data: Float32Array.from([0.5, -0.3, 0.2, 0.9, -0.7, 0.4, 0.1, -0.2]),
        shape: [2, 4],
        dtype: '<f',
      });
    inner1.create_dataset({ name: 'bias:0', data: new Float32Array(4), shape: [4], dtype: '<f' });
    const g2 = mw.create_group('dense_2');
    fixedStrings(g2, 'weight_names', ['dense_2/kernel:0', 'dense_2/bias:0']);
    const inner2 = g2.create_group('dense_2');
    inner2.create_dataset({
      name: 'kernel:0',
      data: Float32Array.from([0.3, -0.1, 0.6, 0.2, -0.4, 0.8, 0.05, -0.5]),
      shape: [4, 2],
      dtype: '<f',
    });
    inner2.create_dataset({ name: 'bias:0', data: new Float32Array(2), shape: [2], dtype: '<f' });
  } finally {
    f.close();
  }
}

/** A victim HDF5 file with one [2, 4] float dataset `/k`. */
export async function writeVictimH5(file: string): Promise<void> {
  const h5 = await h5wasm();
  const f = new h5.File(file, 'w');
  try {
    f.create_dataset({ name: 'k', data: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), shape: [2, 4], dtype: '<f' });
  } finally {
    f.close();
  }
}

/** Debian's python3 with h5py, or undefined. */
export function pythonWithH5py(): string | undefined {
  for (const py of ['/usr/bin/python3', 'python3']) {
    if (spawnSync(py, ['-c', 'import h5py'], { encoding: 'utf8' }).status === 0) return py;
  }
  return undefined;
}

/** A ZIP whose members carry the compressed bytes, method and declared size given (to craft bad archives). */
export function rawZip(members: { name: string; raw: Buffer; method: 0 | 8; size: number; crc: number }[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const m of members) {
    const name = Buffer.from(m.name, 'utf8');
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt16LE(20, 4);
    lh.writeUInt16LE(m.method, 8);
    lh.writeUInt32LE(m.crc, 14);
    lh.writeUInt32LE(m.raw.length, 18);
    lh.writeUInt32LE(m.size, 22);
    lh.writeUInt16LE(name.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(m.method, 10);
    ch.writeUInt32LE(m.crc, 16);
    ch.writeUInt32LE(m.raw.length, 20);
    ch.writeUInt32LE(m.size, 24);
    ch.writeUInt16LE(name.length, 28);
    ch.writeUInt32LE(offset, 42);
    parts.push(lh, name, m.raw);
    central.push(ch, name);
    offset += 30 + name.length + m.raw.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cd, end]);
}
