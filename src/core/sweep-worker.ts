/**
 * A worker thread that runs sweep points for sweep-pool.ts: it starts the session's backend, loads
 * the model and puts the shared inputs on the backend once, then runs one point per `job` message
 * and posts its progress and its result. It never writes results.json; the session does.
 */
import { parentPort, workerData } from 'worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from './backend';
import { toPlainError } from './errors';
import { loadModel, makeLogitModel } from './model-io';
import { runPoint, sweepRuntime } from './sweep-point';
import type { SweepRuntime, SweepSetup } from './sweep-point';
import type { FromSweepWorker, ToSweepWorker } from './sweep-pool';

const port = parentPort;
if (port) {
  const post = (m: FromSweepWorker) => port.postMessage(m);
  let runtime: Promise<SweepRuntime> | null = null;
  let controller: AbortController | null = null;

  const start = async (): Promise<SweepRuntime> => {
    const setup = workerData as SweepSetup;
    await initBackend(setup.backend, undefined, setup.req.kernels);
    const loaded = await loadModel(setup.req.modelPath);
    const x = tf.tensor(setup.x, [setup.labels.length, ...setup.sampleShape]);
    return sweepRuntime(setup, loaded, x, await makeLogitModel(loaded));
  };

  port.on('message', (m: ToSweepWorker) => {
    if (m.type === 'cancel') {
      controller?.abort();
      return;
    }
    const { job } = m;
    const signal = (controller = new AbortController()).signal;
    runtime!
      .then((rt) =>
        runPoint(rt, job, {
          signal,
          onProgress: (progress) => post({ type: 'progress', pointNo: job.pointNo, progress }),
          onPhase: (phase) => post({ type: 'phase', pointNo: job.pointNo, phase }),
        }),
      )
      .then((outcome) => post({ type: 'point', pointNo: job.pointNo, outcome }))
      .catch((e) => post({ type: 'error', pointNo: job.pointNo, error: toPlainError(e) }));
  });

  runtime = start();
  runtime.then(
    () => post({ type: 'ready' }),
    (e) => post({ type: 'error', pointNo: 0, error: toPlainError(e) }),
  );
}
