/**
 * End-to-end sessions on a model "trained elsewhere": its own feature order, a CSV with extra text
 * columns, a mixed-case split column and text labels. Every per-group number in results.json is
 * recomputed here independently — our own CSV reading, the saved pruned model loaded by tfjs
 * itself, plain counting — and must match.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { fork } from 'child_process';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { EngineEvent, EngineMessage } from '../../src/protocol/engine';
import type { SessionResults } from '../../src/protocol/results';
import { runSession } from '../../src/core/session';
import { CancelledError, UserError } from '../../src/core/errors';
import { sha256File } from '../../src/core/atomic';
import { repoRoot, tempDir } from '../helpers';
import { makeFixture, request } from '../session-fixture';

/** A small RFC 4180 reader written for this test, independent of src/core/data. */
function readCsv(file: string): { header: string[]; rows: string[][] } {
  const text = fs.readFileSync(file, 'utf8');
  const records: string[][] = [];
  let field = '';
  let rec: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      rec.push(field);
      field = '';
    } else if (ch === '\n') {
      rec.push(field);
      records.push(rec);
      rec = [];
      field = '';
    } else if (ch !== '\r') field += ch;
  }
  if (field || rec.length) {
    rec.push(field);
    records.push(rec);
  }
  return { header: records[0], rows: records.slice(1) };
}

async function loadSaved(dir: string): Promise<tfl.LayersModel> {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const weights = fs.readFileSync(path.join(dir, json.weightsManifest[0].paths[0]));
  return tfl.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest[0].weights,
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.length),
    }),
  );
}

test('a session on a model trained elsewhere: every per-group number is reproduced independently', async () => {
  const dir = tempDir();
  const { csv, modelPath } = await makeFixture(dir);
  const inputHash = sha256File(path.join(path.dirname(modelPath), 'weights.bin'));
  const events: EngineEvent[] = [];
  const results = await runSession(request(modelPath, csv, path.join(dir, '.fairprune')), {
    emit: (e) => events.push(e),
  });

  // the data contract, as recorded
  assert.equal(results.status, 'completed');
  assert.deepEqual(results.data.label.classes, ['approved', 'denied']);
  assert.equal(results.data.label.order, 'sorted');
  assert.deepEqual(results.data.features, ['x1', 'x2', 'x3']);
  assert.deepEqual(
    results.data.groups.map((g) => g.name),
    ['region=north', 'region=south'],
  );
  assert.equal(results.data.split.source, 'column');
  assert.equal(results.engine.backend.name, 'cpu');
  assert.equal(results.points.length, 4);
  // each group's mean PW weight on the training rows: recorded, in [m, 1], and in the report
  const pwW = results.pwWeights!;
  assert.deepEqual(
    pwW.groups.map((g) => [g.group, g.n]),
    results.data.groups.map((g) => [g.name, g.counts.train]),
  );
  for (const g of pwW.groups) assert.ok(g.meanWeight >= 0.75 && g.meanWeight <= 1, `${g.group}: ${g.meanWeight}`);

  // independent: CSV → rows of the test split → predictions of each saved model → accuracy by group
  const { header, rows } = readCsv(csv);
  const col = (name: string) => header.indexOf(name);
  const test = rows.filter((r) => /^test$/i.test(r[col('Split')]));
  assert.equal(results.data.split.counts.test, test.length);
  const x = tf.tensor2d(test.map((r) => [Number(r[col('x1')]), Number(r[col('x2')]), Number(r[col('x3')])]));
  const truth = test.map((r) => (r[col('decision')] === 'denied' ? 1 : 0));
  const region = test.map((r) => r[col('region')]);
  const check = async (modelDir: string, evaluation: SessionResults['dense']) => {
    const model = await loadSaved(modelDir);
    const p = (model.predict(x) as tf.Tensor).dataSync();
    model.dispose();
    const acc = (keep: (i: number) => boolean) => {
      let n = 0;
      let right = 0;
      truth.forEach((y, i) => {
        if (!keep(i)) return;
        n++;
        if ((p[i] >= 0.5 ? 1 : 0) === y) right++;
      });
      return { n, acc: right / n };
    };
    assert.ok(Math.abs(evaluation.accuracy.value - acc(() => true).acc) < 1e-12);
    for (const g of evaluation.groups) {
      const name = g.group.split('=')[1];
      const mine = acc((i) => region[i] === name);
      assert.equal(g.n, mine.n, g.group);
      assert.ok(Math.abs(g.accuracy.value - mine.acc) < 1e-12, `${g.group}: ${g.accuracy.value} vs ${mine.acc}`);
      assert.ok(g.accuracy.low <= g.accuracy.value && g.accuracy.value <= g.accuracy.high);
    }
    return acc;
  };
  await check(path.dirname(modelPath), results.dense);
  const sessionDir = path.join(dir, '.fairprune', 'sessions', results.sessionId);
  for (const point of results.points) {
    const modelDir = path.join(sessionDir, point.modelDir);
    await check(modelDir, point.evaluation);
    // the saved model really is that sparse, and the change is pruned − dense
    const saved = await loadSaved(modelDir);
    const kernels = saved.layers.map((l) => l.getWeights()[0].dataSync());
    const zeros = kernels.reduce((a, k) => a + k.filter((v) => v === 0).length, 0);
    const total = kernels.reduce((a, k) => a + k.length, 0);
    saved.dispose();
    assert.ok(Math.abs(zeros / total - point.targetSparsity) < 0.01, `${point.id}: ${zeros / total}`);
    assert.ok(Math.abs(point.achievedSparsity - zeros / total) < 1e-12);
    assert.ok(
      Math.abs(
        point.comparison.accuracyChange.value - (point.evaluation.accuracy.value - results.dense.accuracy.value),
      ) < 1e-12,
    );
    for (const g of point.comparison.groups) {
      const d = results.dense.groups.find((x) => x.group === g.group)!.accuracy.value;
      const q = point.evaluation.groups.find((x) => x.group === g.group)!.accuracy.value;
      const psi = d - q - (results.dense.accuracy.value - point.evaluation.accuracy.value);
      assert.ok(Math.abs(g.excessGap.value - psi) < 1e-12);
    }
    assert.ok(point.size.nonZeroParameters < results.model.size.nonZeroParameters);
  }
  x.dispose();

  // same pruned network for every loss at one sparsity; results file, report and input intact
  const s90 = results.points.filter((p) => p.targetSparsity === 0.9);
  assert.equal(s90[0].size.nonZeroParameters, s90[1].size.nonZeroParameters);
  assert.deepEqual(
    JSON.parse(fs.readFileSync(path.join(sessionDir, 'results.json'), 'utf8')),
    JSON.parse(JSON.stringify(results)),
  );
  const report = fs.readFileSync(path.join(sessionDir, 'report.md'), 'utf8');
  assert.match(report, /region=south/);
  assert.match(report, /0 = approved, 1 = denied/);
  assert.equal(
    sha256File(path.join(path.dirname(modelPath), 'weights.bin')),
    inputHash,
    'the input model is never modified',
  );

  // events: started → dense → points in order → finished
  const kinds = events.map((e) => e.type).filter((t) => t !== 'log' && t !== 'progress');
  assert.deepEqual(kinds, ['started', 'dense', 'point', 'point', 'point', 'point', 'finished']);
  assert.ok(events.some((e) => e.type === 'progress' && e.phase === 'finetune' && (e.samplesPerSecond ?? 0) > 0));

  // a second run reuses the dense predictions (cached per model + data) and the first run's split
  const again = await runSession(
    request(modelPath, csv, path.join(dir, '.fairprune'), {
      sparsities: [0.5],
      losses: ['ce'],
      data: { splitColumn: undefined },
      reuseSplitFrom: sessionDir,
    }),
    {},
  );
  assert.deepEqual(again.dense, results.dense);
  assert.equal(again.data.split.assignment, results.data.split.assignment);

  // The model came without a preprocessing file, so each pruned model gets the one this run applied
  // (the CSV values as they are, in the run's feature order, with its class order). A later run on a
  // pruned model needs no --features or --ignore and measures exactly what the session measured.
  const point = results.points[0];
  const pointDir = path.join(sessionDir, point.modelDir);
  const pre = JSON.parse(fs.readFileSync(path.join(pointDir, 'fairprune.preprocessing.json'), 'utf8')) as {
    outputFeatures: string[];
    label: { classes: string[] };
  };
  assert.deepEqual(pre.outputFeatures, ['x1', 'x2', 'x3']);
  assert.deepEqual(pre.label.classes, ['approved', 'denied']);
  const onPruned = await runSession(
    request(path.join(pointDir, 'model.json'), csv, path.join(dir, 'on-pruned'), {
      data: { features: undefined, ignore: undefined, splitColumn: undefined },
      sparsities: [0.5],
      losses: ['ce'],
      epochs: 1,
      reuseSplitFrom: sessionDir,
    }),
    {},
  );
  assert.equal(onPruned.dense!.accuracy.value, point.evaluation.accuracy.value);
  assert.deepEqual(
    onPruned.dense!.groups.map((g) => g.accuracy.value),
    point.evaluation.groups.map((g) => g.accuracy.value),
  );
});

test('cancel keeps the finished points and marks the session cancelled', async () => {
  const dir = tempDir();
  const { csv, modelPath } = await makeFixture(dir, 400);
  const controller = new AbortController();
  const out = path.join(dir, 'out');
  let points = 0;
  await assert.rejects(
    // One point at a time: exactly the first point is finished when the cancel comes (sweep-parallel.test.ts cancels workers).
    runSession(request(modelPath, csv, out, { epochs: 3, workers: 1 }), {
      signal: controller.signal,
      emit: (e) => {
        if (e.type === 'point' && ++points === 1) controller.abort();
      },
    }),
    CancelledError,
  );
  const [id] = fs.readdirSync(path.join(out, 'sessions'));
  const saved: SessionResults = JSON.parse(fs.readFileSync(path.join(out, 'sessions', id, 'results.json'), 'utf8'));
  assert.equal(saved.status, 'cancelled');
  assert.equal(saved.points.length, 1);
  assert.ok(fs.existsSync(path.join(out, 'sessions', id, saved.points[0].modelDir, 'model.json')));
  assert.ok(fs.existsSync(path.join(out, 'sessions', id, 'report.md')));
});

test('bad input fails before any session folder is made, naming the column', async () => {
  const dir = tempDir();
  const { csv, modelPath } = await makeFixture(dir, 200);
  const out = path.join(dir, 'out');
  await assert.rejects(
    runSession(request(modelPath, csv, out, { data: { groups: ['regoin'] } })),
    (e: unknown) => e instanceof UserError && /regoin/.test((e as Error).message),
  );
  await assert.rejects(
    runSession(request(modelPath, csv, out, { data: { features: ['x1', 'x2'] } })),
    (e: unknown) => e instanceof UserError && /2/.test((e as Error).message) && /3/.test((e as Error).message),
  );
  assert.ok(!fs.existsSync(path.join(out, 'sessions')) || fs.readdirSync(path.join(out, 'sessions')).length === 0);
});

/** A process's autogroup ("/autogroup-925 nice 0"), where the kernel schedules by them (Linux with autogroup on). */
function autogroup(pid: number): string | undefined {
  try {
    if (fs.readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() !== '1') return undefined;
    return fs.readFileSync(`/proc/${pid}/autogroup`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Each thread's scheduling priority (its nice value on Linux), by thread id; elsewhere the process's. */
function threadPriorities(pid: number): Map<number, number> {
  const tasks = `/proc/${pid}/task`;
  if (!fs.existsSync(tasks)) return new Map([[pid, os.getPriority(pid)]]);
  const out = new Map<number, number>();
  for (const tid of fs.readdirSync(tasks)) {
    try {
      const stat = fs.readFileSync(path.join(tasks, tid, 'stat'), 'utf8');
      out.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

test('the engine child process streams typed events and stops on cancel', async () => {
  const dir = tempDir();
  const { csv, modelPath } = await makeFixture(dir, 400);
  const engine = path.join(repoRoot, 'out', 'src', 'engine', 'main.js');
  const ownGroupBefore = autogroup(process.pid);
  const run = (cancelAfterFirstPoint: boolean, detached = false) =>
    new Promise<{ code: number | null; messages: EngineMessage[]; priorities: number[]; group?: string }>(
      (resolve, reject) => {
        // detached: a session of its own, as the extension host starts it
        const child = fork(engine, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], detached });
        let group: string | undefined;
        const messages: EngineMessage[] = [];
        const priorities: number[] = [];
        const early = new Set<number>();
        child.on('message', (m: EngineMessage) => {
          messages.push(m);
          // Threads that exist when the session starts are Node's and V8's own (started before the engine
          // lowered its priority); every thread made after it, the sweep's workers included, and the
          // main thread must run below normal.
          if (m.type === 'event' && m.event.type === 'started')
            for (const tid of threadPriorities(child.pid!).keys()) if (tid !== child.pid) early.add(tid);
          if (m.type === 'event' && m.event.type === 'progress' && m.event.phase === 'finetune') {
            for (const [tid, nice] of threadPriorities(child.pid!)) if (!early.has(tid)) priorities.push(nice);
            group ??= autogroup(child.pid!);
          }
          if (cancelAfterFirstPoint && m.type === 'event' && m.event.type === 'point') child.send({ type: 'cancel' });
        });
        child.on('error', reject);
        child.on('exit', (code) => resolve({ code, messages, priorities, group }));
        child.send({
          type: 'run',
          request: request(modelPath, csv, path.join(dir, 'engine-out'), { sparsities: [0.5, 0.8, 0.9], epochs: 2 }),
        });
      },
    );
  const done = await run(false);
  assert.equal(done.code, 0);
  const events = done.messages.flatMap((m) => (m.type === 'event' ? [m.event] : []));
  const finished = events.find((e) => e.type === 'finished');
  assert.ok(finished && finished.type === 'finished' && finished.status === 'completed');
  assert.equal(events.filter((e) => e.type === 'point').length, 6);
  // The engine trains at the lowest priority, its sweep worker threads included, so the editor stays responsive.
  assert.ok(done.priorities.length > 1, 'the main thread and the workers were seen');
  for (const p of done.priorities) assert.equal(p, os.constants.priority.PRIORITY_LOW);
  // Started in the parent's session, it leaves the session's scheduling group (the parent's) alone.
  assert.equal(autogroup(process.pid), ownGroupBefore);
  if (ownGroupBefore !== undefined) {
    // Started in a session of its own, as the extension host starts it, its group gets the lowest weight.
    const detached = await run(false, true);
    assert.equal(detached.code, 0);
    assert.match(detached.group ?? '', /nice 19$/, `the engine's own autogroup: ${detached.group}`);
    assert.equal(autogroup(process.pid), ownGroupBefore);
  }

  const cancelled = await run(true);
  assert.equal(cancelled.code, 0);
  const evs = cancelled.messages.flatMap((m) => (m.type === 'event' ? [m.event] : []));
  const fin = evs.find((e) => e.type === 'finished');
  assert.ok(fin && fin.type === 'finished' && fin.status === 'cancelled', JSON.stringify(fin));
  assert.ok(evs.filter((e) => e.type === 'point').length < 6);
});
