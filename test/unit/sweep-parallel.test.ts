/**
 * Sweep points in parallel worker threads: the same numbers and files as one after another, a
 * cancel and a failure that reach every worker and keep what finished, and how many workers a
 * session takes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import type { EngineEvent } from '../../src/protocol/engine';
import type { SessionResults } from '../../src/protocol/results';
import { runSession } from '../../src/core/session';
import { sweepWorkers } from '../../src/core/sweep-pool';
import { CancelledError, fromPlainError, toPlainError, UserError } from '../../src/core/errors';
import { describeProgress } from '../../src/ui/progress-text';
import { repoRoot, tempDir } from '../helpers';
import { writeBiasedMnist } from '../../src/core/demo/biased-mnist';
import { makeFixture, request } from '../session-fixture';

const MiB = 2 ** 20;

function logs(events: EngineEvent[]): string[] {
  return events.flatMap((e) => (e.type === 'log' ? [e.message] : []));
}

function savedPoints(results: SessionResults) {
  return results.points.map((p) => ({
    id: p.id,
    achievedSparsity: p.achievedSparsity,
    accuracy: p.evaluation.accuracy,
    worstGroup: p.evaluation.worstGroup,
    groups: p.evaluation.groups.map((g) => [g.group, g.accuracy]),
    worstGroupChange: p.comparison.worstGroupChange,
    finalTrainLoss: p.training.finalTrainLoss,
    parameters: p.size.parameters,
  }));
}

function weightsOf(results: SessionResults, sessionDir: string): Record<string, string> {
  return Object.fromEntries(
    results.points.map((p) => [
      p.id,
      fs.readFileSync(path.join(sessionDir, p.modelDir, 'weights.bin')).toString('base64'),
    ]),
  );
}

test('two worker threads give the same points, in the same order, with the same weights as one thread', async () => {
  const dir = tempDir();
  // Points long enough (a few hundred ms) for the worker thread to start (about a second) and take some.
  const { csv, modelPath } = await makeFixture(dir, 3000);
  const runs: { results: SessionResults; dir: string; events: EngineEvent[] }[] = [];
  for (const workers of [1, 2]) {
    const events: EngineEvent[] = [];
    let sessionDir = '';
    const results = await runSession(
      request(modelPath, csv, path.join(dir, `w${workers}`), {
        sparsities: [0.3, 0.6, 0.9],
        losses: ['ce', 'pw'],
        epochs: 6,
        workers,
      }),
      {
        emit: (e) => {
          events.push(e);
          if (e.type === 'started') sessionDir = e.sessionDir;
        },
      },
    );
    runs.push({ results, dir: sessionDir, events });
  }
  const [one, two] = runs;
  assert.ok(
    logs(one.events).some((m) => /sweep: one point at a time/.test(m)),
    logs(one.events).join('\n'),
  );
  assert.ok(
    logs(two.events).some((m) => /sweep: 2 points at a time: this thread and 1 worker thread/.test(m)),
    logs(two.events).join('\n'),
  );
  assert.equal(two.results.status, 'completed');
  assert.deepEqual(
    two.results.points.map((p) => p.id),
    ['s0.30-ce', 's0.30-pw', 's0.60-ce', 's0.60-pw', 's0.90-ce', 's0.90-pw'],
  );
  assert.deepEqual(savedPoints(two.results), savedPoints(one.results));
  assert.deepEqual(weightsOf(two.results, two.dir), weightsOf(one.results, one.dir));
  // results.json on disk is the returned results (sweep order), and every point streamed once.
  const onDisk: SessionResults = JSON.parse(fs.readFileSync(path.join(two.dir, 'results.json'), 'utf8'));
  assert.deepEqual(
    onDisk.points.map((p) => p.id),
    two.results.points.map((p) => p.id),
  );
  assert.equal(two.events.filter((e) => e.type === 'point').length, 6);

  // Progress: two points were seen running at once, and the sweep's share done only grows to 1.
  const progress = two.events.flatMap((e) => (e.type === 'progress' && e.fraction !== undefined ? [e] : []));
  assert.ok(
    progress.some((e) => (e.running?.length ?? 0) === 2),
    'no event saw two points running',
  );
  for (let i = 1; i < progress.length; i++)
    assert.ok(progress[i].fraction! >= progress[i - 1].fraction! - 1e-9, `fraction went back at event ${i}`);
  assert.ok(progress.at(-1)!.fraction! > 0.8);
  const both = progress.find((e) => (e.running?.length ?? 0) === 2)!;
  assert.match(describeProgress(both).text, /^points \d, \d of 6 \(2 at a time\): \d+% of the sweep done/);
  assert.match(describeProgress(both).short, /^\d\+\d\/6$/);
});

test('a cancel reaches every worker: the session is cancelled, finished points are kept whole', async () => {
  const dir = tempDir();
  const { csv, modelPath } = await makeFixture(dir, 3000);
  const out = path.join(dir, 'out');
  const controller = new AbortController();
  let sessionDir = '';
  await assert.rejects(
    runSession(
      request(modelPath, csv, out, { sparsities: [0.3, 0.5, 0.7, 0.9], losses: ['ce', 'pw'], epochs: 6, workers: 2 }),
      {
        signal: controller.signal,
        emit: (e) => {
          if (e.type === 'started') sessionDir = e.sessionDir;
          // Cancel once both threads are training, so the cancel reaches the worker mid-point.
          if (e.type === 'progress' && e.phase === 'finetune' && (e.running?.length ?? 0) === 2) controller.abort();
        },
      },
    ),
    CancelledError,
  );
  const saved: SessionResults = JSON.parse(fs.readFileSync(path.join(sessionDir, 'results.json'), 'utf8'));
  assert.equal(saved.status, 'cancelled');
  // Only points that had finished before both threads stopped (none, or the local thread's first ones).
  assert.ok(saved.points.length < 8, `${saved.points.length} points`);
  for (const p of saved.points) assert.ok(fs.existsSync(path.join(sessionDir, p.modelDir, 'weights.bin')), p.id);
  // No point beyond those was started: the cancel stops the queue.
  const pointDirs = fs.existsSync(path.join(sessionDir, 'points'))
    ? fs.readdirSync(path.join(sessionDir, 'points'))
    : [];
  assert.deepEqual(pointDirs.sort(), saved.points.map((p) => p.id).sort());
  assert.ok(fs.existsSync(path.join(sessionDir, 'report.md')));
});

test('a point that fails fails the session with its error, and every thread stops', async () => {
  const dir = tempDir();
  const { csv, modelPath } = await makeFixture(dir, 300);
  const out = path.join(dir, 'out');
  let sessionDir = '';
  await assert.rejects(
    runSession(request(modelPath, csv, out, { workers: 2 }), {
      emit: (e) => {
        // A file where the points folder goes: saving any point fails (ENOTDIR / EEXIST).
        if (e.type === 'started') {
          sessionDir = e.sessionDir;
          fs.writeFileSync(path.join(sessionDir, 'points'), 'not a folder');
        }
      },
    }),
    (e: unknown) => e instanceof Error && !(e instanceof CancelledError) && /points/.test((e as Error).message),
  );
  const saved: SessionResults = JSON.parse(fs.readFileSync(path.join(sessionDir, 'results.json'), 'utf8'));
  assert.equal(saved.status, 'failed');
  assert.equal(saved.points.length, 0);
  assert.match(saved.error ?? '', /points/);
});

test('a worker thread that cannot start is reported, and the session finishes every point on the threads it has', async () => {
  const dir = tempDir();
  const { csv, modelPath } = await makeFixture(dir, 600);
  const events: EngineEvent[] = [];
  const results = await runSession(
    request(modelPath, csv, path.join(dir, 'out'), { sparsities: [0.3, 0.6], losses: ['ce', 'pw'], workers: 2 }),
    {
      emit: (e) => {
        events.push(e);
        // The model file disappears after the session read it and before the worker thread reads it.
        if (e.type === 'dense') fs.renameSync(modelPath, `${modelPath}.away`);
      },
    },
  );
  fs.renameSync(`${modelPath}.away`, modelPath);
  assert.equal(results.status, 'completed');
  assert.equal(results.points.length, 4);
  const warnings = events.flatMap((e) => (e.type === 'log' && e.level === 'warn' ? [e.message] : []));
  assert.ok(
    warnings.some((m) =>
      /^a worker thread could not start \(.*model\.json.*\); the sweep goes on with the other threads\.$/.test(m),
    ),
    warnings.join('\n'),
  );
});

const KERAS_H5 = path.resolve(
  repoRoot,
  '..',
  'shared',
  'models',
  'h5-keras3.5-legacy-mnist-cnn-sequential',
  'mnist_cnn.h5',
);

test(
  "a real Keras .h5 model (../shared) prunes two points at once: the worker thread reads the .h5 itself, each point is saved as model.h5, and the numbers equal one thread's",
  { skip: !fs.existsSync(KERAS_H5) && 'no ../shared/models' },
  async () => {
    const dir = tempDir();
    // A copy, so the test shows the user's file is never written (its sha256 is compared after).
    const modelPath = path.join(dir, 'mnist_cnn.h5');
    fs.copyFileSync(KERAS_H5, modelPath);
    const before = fs.readFileSync(modelPath);
    const data = await writeBiasedMnist({
      outDir: path.join(dir, 'mnist'),
      seed: 3,
      trainCount: 256,
      validationCount: 32,
      testCount: 128,
    });
    const run = async (workers: number) => {
      const events: EngineEvent[] = [];
      let sessionDir = '';
      const results = await runSession(
        {
          ...request(modelPath, data.csvPath, path.join(dir, `out-${workers}`), {
            sparsities: [0.3, 0.6],
            losses: ['ce', 'pw'],
            epochs: 1,
            workers,
            data: { label: 'digit', groups: ['ink'], features: undefined, ignore: undefined, splitColumn: undefined },
          }),
          backend: 'wasm',
        },
        {
          emit: (e) => {
            events.push(e);
            if (e.type === 'started') sessionDir = e.sessionDir;
          },
        },
      );
      return { results, sessionDir, events };
    };
    const two = await run(2);
    assert.ok(
      logs(two.events).some((m) => /sweep: 2 points at a time/.test(m)),
      logs(two.events).join('\n'),
    );
    assert.ok(
      two.events.some((e) => e.type === 'progress' && (e.running?.length ?? 0) === 2),
      'both threads trained a point',
    );
    for (const p of two.results.points)
      assert.ok(fs.existsSync(path.join(two.sessionDir, p.modelDir, 'model.h5')), `${p.id}: model.h5 saved`);
    const one = await run(1);
    assert.deepEqual(savedPoints(two.results), savedPoints(one.results));
    assert.ok(fs.readFileSync(modelPath).equals(before), "the user's .h5 is unchanged");
  },
);

test('how many workers a session takes: cores, points, memory, and the backends that thread themselves', () => {
  const GiB = 1024 * MiB;
  assert.equal(sweepWorkers(undefined, 'wasm', 6, 10 * MiB, 8 * GiB, 2).workers, 2);
  assert.equal(sweepWorkers(0, 'wasm', 6, 10 * MiB, 8 * GiB, 16).workers, 6, 'never more workers than points');
  assert.equal(sweepWorkers(1, 'wasm', 6, 10 * MiB, 8 * GiB, 16).workers, 1);
  assert.equal(sweepWorkers(3, 'cpu', 6, 10 * MiB, 8 * GiB, 2).workers, 3, 'an explicit count is taken');
  assert.equal(sweepWorkers(undefined, 'wasm', 1, 10 * MiB, 8 * GiB, 4).workers, 1);
  const native = sweepWorkers(undefined, 'tensorflow', 6, 10 * MiB, 8 * GiB, 8);
  assert.equal(native.workers, 1);
  assert.match(native.why, /uses every core itself/);
  // 1 GiB free, half of it usable, ~460 MiB per worker thread (inputs + the fixed cost): the session's
  // own thread and one worker.
  const tight = sweepWorkers(undefined, 'wasm', 6, 300 * MiB, 1 * GiB, 4);
  assert.equal(tight.workers, 2);
  assert.match(tight.why, /^2 points at a time: 4 would need 1380 MiB more of the 1024 MiB free$/);
  assert.equal(sweepWorkers(undefined, 'wasm', 6, 600 * MiB, 1 * GiB, 4).workers, 1, 'no worker fits: one at a time');
});

test('errors cross the worker boundary as the same class, message and fields', () => {
  const user = new UserError('has no column x9.', { file: 'data.csv', field: 'x9', fix: 'check --features.' });
  const back = fromPlainError(structuredClone(toPlainError(user)));
  assert.ok(back instanceof UserError);
  assert.equal(back.message, user.message);
  assert.equal((back as UserError).file, 'data.csv');
  assert.equal((back as UserError).fix, 'check --features.');
  assert.ok(fromPlainError(structuredClone(toPlainError(new CancelledError()))) instanceof CancelledError);
  const other = fromPlainError(structuredClone(toPlainError(new TypeError('boom'))));
  assert.equal(other.message, 'boom');
  assert.match(other.stack ?? '', /TypeError: boom/);
});
