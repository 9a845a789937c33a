/**
 * Runs a sweep's points several at a time, each in its own worker thread (sweep-worker.ts), so a
 * sweep uses every core: the wasm and cpu backends compute on one thread each. Every worker holds
 * its own backend, model and copy of the inputs on that backend (the inputs in JavaScript are one
 * SharedArrayBuffer for all), so memory grows with the number of workers, not with the number of
 * points; `sweepWorkers` caps the workers by cores and by free memory. The session's own thread runs
 * points too.
 *
 * Results come back in the order points finish; a cancel reaches every busy worker between two
 * training steps, like a single-threaded session; the first error stops the sweep after the
 * points already running have ended, and what finished is kept.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import type { BackendName } from '../protocol/results';
import { CancelledError, fromPlainError } from './errors';
import type { PlainError } from './errors';
import { runPoint } from './sweep-point';
import type { PointOutcome, SweepJob, SweepRuntime, SweepSetup } from './sweep-point';
import type { TrainProgress } from './train';

/** Pool → worker. */
export type ToSweepWorker = { type: 'job'; job: SweepJob } | { type: 'cancel' };

/** Worker → pool. */
export type FromSweepWorker =
  | { type: 'ready' }
  | { type: 'progress'; pointNo: number; progress: TrainProgress }
  | { type: 'phase'; pointNo: number; phase: 'evaluate' | 'save' }
  | { type: 'point'; pointNo: number; outcome: PointOutcome }
  | { type: 'error'; pointNo: number; error: PlainError };

export interface SweepPoolHooks {
  signal?: AbortSignal;
  onStart?(job: SweepJob): void;
  onProgress?(job: SweepJob, p: TrainProgress): void;
  onPhase?(job: SweepJob, phase: 'evaluate' | 'save'): void;
  /** A finished point, in the order points finish. */
  onPoint(job: SweepJob, outcome: PointOutcome): void;
  /** Something the user should know that does not stop the sweep (a worker thread that could not start). */
  onWarning?(message: string): void;
}

/** Fixed cost of one worker thread: its V8 isolate, tfjs and the wasm module with its heap (measured:
 *  the demo CNN's sweep added about 190 MiB of RSS per worker, its inputs included). */
const WORKER_BASE_BYTES = 160 * 2 ** 20;

export interface WorkerChoice {
  /** Points at once: the session's own thread plus workers − 1 worker threads. */
  workers: number;
  /** One sentence for the session log. */
  why: string;
}

/**
 * How many points run at once. `requested`: 0 or undefined for one per core, 1 for one after
 * another. TensorFlow's own backends use every core already and get 1. The count never exceeds the
 * points, and is cut to the worker threads that half the free memory holds, with each one's copy of
 * the inputs, targets and model estimated (the session's own thread already holds its copy).
 */
export function sweepWorkers(
  requested: number | undefined,
  backend: BackendName,
  points: number,
  bytesPerWorker: number,
  freeBytes = os.freemem(),
  cores = os.availableParallelism(),
): WorkerChoice {
  if (requested === 1) return { workers: 1, why: 'one point at a time (--workers 1)' };
  if (points < 2) return { workers: 1, why: 'one point' };
  if (backend === 'tensorflow' || backend === 'tensorflow-gpu')
    return { workers: 1, why: `one point at a time: the ${backend} backend uses every core itself` };
  const wanted = Math.min(requested && requested > 0 ? requested : cores, points);
  const perWorker = Math.max(1, bytesPerWorker + WORKER_BASE_BYTES);
  const workers = Math.min(wanted, 1 + Math.floor((freeBytes * 0.5) / perWorker));
  if (workers < wanted)
    return {
      workers,
      why:
        `${workers} point${workers === 1 ? '' : 's'} at a time: ${wanted} would ` +
        `need ${mib((wanted - 1) * perWorker)} more of the ${mib(freeBytes)} free`,
    };
  if (workers === 1) return { workers, why: 'one point at a time (one core)' };
  return {
    workers,
    why:
      `${workers} points at a time: this thread and ${workers - 1} ` +
      `worker thread${workers === 2 ? '' : 's'} ` +
      `(${requested && requested > 0 ? '--workers' : `${cores} cores`})`,
  };
}

function mib(bytes: number): string {
  return `${Math.round(bytes / 2 ** 20)} MiB`;
}

/** The worker script: beside this module, both in the esbuild bundles (dist/) and in the tsc output. */
export function sweepWorkerScript(): string {
  const file = path.join(__dirname, 'sweep-worker.js');
  if (!fs.existsSync(file))
    throw new Error(`the sweep worker script is missing: ${file} (rebuild with 'npm run build').`);
  return file;
}

/** The inputs in one SharedArrayBuffer, so that every worker reads the same memory instead of a copy each. */
function shared(x: Float32Array): Float32Array {
  if (x.buffer instanceof SharedArrayBuffer) return x;
  const out = new Float32Array(new SharedArrayBuffer(x.byteLength));
  out.set(x);
  return out;
}

/**
 * Runs `jobs` on `threads` threads: the caller's own (with `local`, the runtime it already holds) and
 * threads − 1 worker threads, all taking points from one queue. The caller's thread starts on the
 * first point at once, so a worker's start-up (tfjs, the model, the inputs on its backend: about a
 * second) costs nothing on a short sweep, and the inputs sit on one backend fewer.
 */
export function runSweep(
  setup: SweepSetup,
  jobs: SweepJob[],
  threads: number,
  local: SweepRuntime,
  hooks: SweepPoolHooks,
): Promise<void> {
  const queue = [...jobs];
  const busy = new Map<Worker, SweepJob>();
  const alive = new Set<Worker>();
  const started = new Set<Worker>();
  const warned = new Set<Worker>();
  // Stops the caller's thread between two steps when a worker fails or the session is cancelled.
  const localStop = new AbortController();
  let localRunning = true;
  let failure: Error | null = null;
  let cancelled = false;

  return new Promise<void>((resolve, reject) => {
    const settle = () => {
      if (alive.size || localRunning) return;
      hooks.signal?.removeEventListener('abort', onAbort);
      if (failure) reject(failure);
      else if (cancelled) reject(new CancelledError());
      else resolve();
    };
    const stopAll = () => {
      queue.length = 0;
      localStop.abort();
      for (const [w] of busy) w.postMessage({ type: 'cancel' } satisfies ToSweepWorker);
      for (const w of alive) if (!busy.has(w)) void w.terminate();
    };
    const fail = (e: Error) => {
      if (!failure && !(e instanceof CancelledError)) failure = e;
      stopAll();
    };
    const onAbort = () => {
      cancelled = true;
      stopAll();
    };
    const next = (w: Worker) => {
      busy.delete(w);
      const job = failure || cancelled ? undefined : queue.shift();
      if (!job) {
        void w.terminate();
        return;
      }
      busy.set(w, job);
      hooks.onStart?.(job);
      w.postMessage({ type: 'job', job } satisfies ToSweepWorker);
    };

    if (hooks.signal?.aborted) {
      reject(new CancelledError());
      return;
    }
    hooks.signal?.addEventListener('abort', onAbort);
    const helpers = Math.min(threads - 1, jobs.length - 1);
    if (helpers > 0) {
      const script = sweepWorkerScript();
      const data: SweepSetup = { ...setup, x: shared(setup.x) };
      for (let i = 0; i < helpers; i++) startWorker(script, data);
    }
    void (async () => {
      try {
        for (let job = queue.shift(); job && !localStop.signal.aborted; job = queue.shift()) {
          const current = job;
          hooks.onStart?.(current);
          const outcome = await runPoint(local, current, {
            signal: localStop.signal,
            onProgress: (p) => hooks.onProgress?.(current, p),
            onPhase: (phase) => hooks.onPhase?.(current, phase),
          });
          hooks.onPoint(current, outcome);
        }
      } catch (e) {
        fail(e as Error);
      } finally {
        localRunning = false;
        settle();
      }
    })();

    function startWorker(script: string, data: SweepSetup) {
      const w = new Worker(script, { workerData: data });
      alive.add(w);
      w.on('message', (m: FromSweepWorker) => {
        const job = busy.get(w);
        try {
          if (m.type === 'ready') {
            started.add(w);
            next(w);
          } else if (m.type === 'progress' && job) hooks.onProgress?.(job, m.progress);
          else if (m.type === 'phase' && job) hooks.onPhase?.(job, m.phase);
          else if (m.type === 'point' && job) {
            hooks.onPoint(job, m.outcome);
            next(w);
          } else if (m.type === 'error' && !job) {
            // The worker could not start (memory, a file it could not read): the sweep goes on without it.
            startFailed(w, fromPlainError(m.error).message);
          } else if (m.type === 'error') {
            busy.delete(w);
            fail(fromPlainError(m.error));
            void w.terminate();
          }
        } catch (e) {
          // A hook that throws (e.g. results.json cannot be written) ends the sweep like a failed point.
          busy.delete(w);
          fail(e as Error);
          void w.terminate();
        }
      });
      w.on('error', (e) => {
        if (!busy.has(w)) return startFailed(w, e.message);
        busy.delete(w);
        fail(e);
      });
      w.on('exit', (code) => {
        const job = busy.get(w);
        alive.delete(w);
        busy.delete(w);
        if (job && !failure && !cancelled) {
          fail(
            new Error(
              `the worker thread running point ${job.pointNo} ` +
                `(${(job.sparsity * 100).toFixed(0)}% ${job.loss}) ` +
                `stopped with exit code ${code} — out of memory? Try --workers 1.`,
            ),
          );
        } else if (!job && !started.has(w) && code !== 0 && !failure && !cancelled) {
          startFailed(w, `it stopped with exit code ${code}`);
        }
        settle();
      });
    }

    function startFailed(w: Worker, why: string) {
      if (started.has(w) || warned.has(w)) return;
      warned.add(w);
      hooks.onWarning?.(`a worker thread could not start (${why}); the sweep goes on with the other threads.`);
      void w.terminate();
    }
  });
}
