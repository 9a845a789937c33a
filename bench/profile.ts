/**
 * `npm run bench:profile`: where a fine-tuning epoch's time goes on the wasm backend. Every kernel
 * registered for wasm is wrapped with a timer that keeps a stack, so a kernel built from other kernels
 * (our Conv2DBackpropFilter, for one) is charged only its own time; what no kernel accounts for is
 * tfjs's dispatch (tape, tidy, tensor bookkeeping) and our JavaScript between kernels.
 *
 * A small MLP and a plain CNN train on wasm through a heap step (src/core/dense-step.ts, conv-step.ts)
 * that calls the kernels without tfjs: their epoch is timed as trained, and the kernel table comes from
 * the tfjs path beside it, which runs the same kernels through tfjs.
 *
 *   npm run bench:profile                 # every bench workload, 3 epochs after a warm-up
 *   npm run bench:profile -- mlp          # one workload
 *   npm run bench:profile -- --shapes=Conv2D,Sum   # those kernels a row per input shape
 *   npm run bench:profile -- resnet20 --heap-only  # only the heap step's table, not the tfjs path's
 *
 * Then, for a workload that trains through a heap step, the SIMD module's own calls in that step, a row per
 * kernel and layer shape (what the module does not account for is the step's JavaScript: copies, filter
 * rotations, bookkeeping).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/core/backend';
import { wrapSimdKernels } from '../src/core/kernels/simd-kernels';
import { train, type TrainOptions } from '../src/core/train';
import { WORKLOADS, prepare } from './workloads';

interface Row {
  calls: number;
  selfMs: number;
}

/** The shapes of a kernel's inputs, `x[64,32,32,3] filter[3,3,3,16]`. */
function describeInputs(inputs: tf.NamedTensorInfoMap): string {
  return Object.entries(inputs)
    .map(([name, t]) => `${name}[${t?.shape.join(',')}]`)
    .join(' ');
}

/** Wraps every kernel of `backendName` with a self-time timer; returns the table and a function that unwraps them. */
function instrument(backendName: string, detail: string[]): { table: Map<string, Row>; restore: () => void } {
  const table = new Map<string, Row>();
  const stack: number[] = []; // child time accumulated per open kernel
  const originals = tf.getKernelsForBackend(backendName);
  for (const k of originals) {
    const f = k.kernelFunc;
    tf.unregisterKernel(k.kernelName, backendName);
    tf.registerKernel({
      ...k,
      kernelFunc: (args) => {
        stack.push(0);
        const t0 = performance.now();
        try {
          return f(args);
        } finally {
          const total = performance.now() - t0;
          const children = stack.pop()!;
          if (stack.length) stack[stack.length - 1] += total;
          const key = detail.includes(k.kernelName) ? `${k.kernelName} ${describeInputs(args.inputs)}` : k.kernelName;
          const row = table.get(key) ?? { calls: 0, selfMs: 0 };
          row.calls++;
          row.selfMs += total - children;
          table.set(key, row);
        }
      },
    });
  }
  return {
    table,
    restore: () => {
      for (const k of originals) {
        tf.unregisterKernel(k.kernelName, backendName);
        tf.registerKernel(k);
      }
    },
  };
}

/** The layer shape of a SIMD-module call, from its arguments (see kernels.c), to tell the layers apart. */
const SHAPE_ARGS: Record<string, (a: number[]) => string> = {
  conv2d: (a) => `${a[7]}x${a[8]}x${a[9]}→${a[12]} ${a[13]}x${a[14]}/${a[15]}`,
  conv2d_phase: (a) => `${a[5]}x${a[6]}x${a[7]}→${a[10]} ${a[11]}x${a[12]} phase`,
  conv2d_winograd: (a) => `${a[9]}x${a[10]}x${a[11]}→${a[14]}`,
  conv2d_winograd4: (a) => `${a[10]}x${a[11]}x${a[12]}→${a[15]}`,
  conv2d_filter_grad: (a) => `${a[4]}x${a[5]}x${a[6]}→${a[9]} ${a[10]}x${a[11]}/${a[12]}`,
  conv2d_filter_grad_winograd: (a) => `${a[6]}x${a[7]}x${a[8]}→${a[11]}`,
  conv2d_filter_grad_winograd4: (a) => `${a[6]}x${a[7]}x${a[8]}→${a[11]}`,
  winograd_filter: (a) => `${a[2]}→${a[3]}`,
  winograd4_filter: (a) => `${a[2]}→${a[3]}`,
  conv2d_winograd_s2: (a) => `${a[8]}x${a[9]}x${a[10]}→${a[13]} 3x3/2`,
  conv2d_filter_grad_winograd_s2: (a) => `${a[6]}x${a[7]}x${a[8]}→${a[11]} 3x3/2`,
  conv2d_input_grad_winograd_s2: (a) => `${a[6]}x${a[7]}x${a[8]}→${a[11]} 3x3/2`,
  winograd_s2_filter: (a) => `${a[2]}→${a[3]}`,
  bn_moments: (a) => `${a[3]}x${a[4]}`,
  bn_forward: (a) => `${a[5]}x${a[6]}`,
  bn_backward: (a) => `${a[11]}x${a[12]}${a[10] ? ' +bias' : ''}`,
  add_act: (a) => `${a[3]}`,
  relu_grad: (a) => `${a[3]}`,
  sum_rows: (a) => `${a[2]}x${a[3]}`,
};

/** The SIMD module's calls (self time, a row per kernel and shape) while `run` runs. */
async function heapKernelTable(run: () => Promise<void>): Promise<Map<string, Row> | null> {
  const table = new Map<string, Row>();
  const restore = wrapSimdKernels(tf.backend(), (name, f) => (...args) => {
    const t0 = performance.now();
    f(...args);
    const key = `${name} ${SHAPE_ARGS[name]?.(args) ?? ''}`;
    const row = table.get(key) ?? { calls: 0, selfMs: 0 };
    row.calls++;
    row.selfMs += performance.now() - t0;
    table.set(key, row);
  });
  if (!restore) return null;
  try {
    await run();
  } finally {
    restore();
  }
  return table;
}

function printTable(rows: [string, Row][], epochs: number, wallMs: number): void {
  console.log(
    'kernel'.padEnd(60) +
      'calls/epoch'.padStart(12) +
      'ms/epoch'.padStart(10) +
      'µs/call'.padStart(10) +
      'share'.padStart(8),
  );
  for (const [name, r] of rows) {
    const ms = r.selfMs / epochs;
    if (ms < 0.05 * (wallMs / 100)) continue;
    console.log(
      name.padEnd(60) +
        String(r.calls / epochs).padStart(12) +
        ms.toFixed(1).padStart(10) +
        ((1000 * r.selfMs) / r.calls).toFixed(0).padStart(10) +
        `${((100 * ms) / wallMs).toFixed(1)}%`.padStart(8),
    );
  }
}

async function main() {
  const only = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  // --shapes=Conv2D,Sum: those kernels get a row per input shape
  const detail = (process.argv.find((a) => a.startsWith('--shapes='))?.slice(9) ?? '').split(',').filter(Boolean);
  // --heap-only: skip the tfjs path's table (only the heap step's SIMD calls)
  const heapOnly = process.argv.includes('--heap-only');
  const epochs = 3;
  await initBackend('wasm');
  for (const w of WORKLOADS.filter((x) => !only.length || only.includes(x.name))) {
    const job = prepare(w);
    const tfjsPath = { ...job.opts, denseStep: false };
    const epochMs = async (opts: TrainOptions) => {
      await train(job.model, job.data, opts); // warm-up
      const t0 = performance.now();
      for (let e = 0; e < epochs; e++) await train(job.model, job.data, opts);
      return (performance.now() - t0) / epochs;
    };
    const trainedMs = await epochMs(job.opts);
    console.log(`\n${w.name}: ${w.description}`);
    if (heapOnly) {
      console.log(`epoch as trained ${trainedMs.toFixed(1)} ms`);
    } else {
      const plainMs = await epochMs(tfjsPath);
      const { table, restore } = instrument('wasm', detail);
      const t1 = performance.now();
      try {
        for (let e = 0; e < epochs; e++) await train(job.model, job.data, tfjsPath);
      } finally {
        restore();
      }
      const wallMs = (performance.now() - t1) / epochs;
      const rows = [...table.entries()].sort((a, b) => b[1].selfMs - a[1].selfMs);
      const kernelMs = rows.reduce((s, [, r]) => s + r.selfMs, 0) / epochs;
      console.log(
        `epoch as trained ${trainedMs.toFixed(1)} ms; through tfjs ${plainMs.toFixed(1)} ms (${wallMs.toFixed(1)} ms while profiled): in kernels ${kernelMs.toFixed(1)} ms, outside kernels ${(wallMs - kernelMs).toFixed(1)} ms`,
      );
      printTable(rows, epochs, wallMs);
    }
    const t2 = performance.now();
    const heapTable = await heapKernelTable(async () => {
      for (let e = 0; e < epochs; e++) await train(job.model, job.data, job.opts);
    });
    const heapWallMs = (performance.now() - t2) / epochs;
    const heapRows = [...(heapTable ?? new Map<string, Row>()).entries()].sort((a, b) => b[1].selfMs - a[1].selfMs);
    const heapKernelMs = heapRows.reduce((s, [, r]) => s + r.selfMs, 0) / epochs;
    if (heapRows.length) {
      console.log(
        `\nas trained, the SIMD module's calls (${heapWallMs.toFixed(1)} ms an epoch while profiled): in the module ${heapKernelMs.toFixed(1)} ms, outside it ${(heapWallMs - heapKernelMs).toFixed(1)} ms`,
      );
      printTable(heapRows, epochs, heapWallMs);
    }
    job.model.dispose();
    job.x.dispose();
    job.targets.dispose();
    job.weights.dispose();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
