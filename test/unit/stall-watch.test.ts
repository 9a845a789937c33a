import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StallWatch } from '../../src/ui/stall-watch';

test('StallWatch: a late tick is a stall, labelled with the last mark; handlers are timed; the longest are kept', () => {
  let now = 1000;
  let run = 0;
  let wait = 0;
  const w = new StallWatch(
    30,
    10,
    () => now,
    2,
    () => ({ runMs: run, waitMs: wait }),
  );
  w.start();
  w.stop(); // no timer in this test: ticks are driven by hand
  const tick = (ms: number) => {
    now += ms;
    w.tick();
  };
  tick(10);
  tick(12); // 2 ms late: not a stall
  w.mark('starting the engine process');
  wait += 45;
  tick(60); // 50 ms late, 45 of them waiting for a core
  w.timed('a point event', () => {
    now += 45;
  });
  tick(5); // the handler's 45 ms and 5 more: 40 ms late (the third longest: not kept)
  tick(10);
  w.mark('a progress (finetune) event');
  tick(35); // 25 ms late: under the threshold
  run += 90;
  w.gcPause(now + 80, 70);
  tick(110); // 100 ms late, 90 ms on the CPU, 70 of them collecting garbage
  assert.deepEqual(w.longestStalls(), [
    { atMs: 187, ms: 100, after: 'a progress (finetune) event', cpuMs: 90, waitMs: 0, blockedMs: 10, gcMs: 70 },
    { atMs: 32, ms: 50, after: 'starting the engine process', cpuMs: 0, waitMs: 45, blockedMs: 5 },
  ]);
  assert.deepEqual(w.slowestHandlers(), [{ what: 'a point event', ms: 45, atMs: 82 }]);
  assert.equal(
    w.summary(),
    'event-loop stalls over 30 ms: 100 ms at 0.2 s (after a progress (finetune) event; ran 90 ms, waited 0 ms for a core, 10 ms neither (blocked, or the machine paused), 70 ms in GC), ' +
      "50 ms at 0.0 s (after starting the engine process; ran 0 ms, waited 45 ms for a core, 5 ms neither (blocked, or the machine paused)); Fair Prune's slowest handlers: a point event 45.0 ms",
  );
});

test('StallWatch: a real timer sees a blocked event loop', async () => {
  const w = new StallWatch(30, 10);
  w.start();
  await new Promise((r) => setTimeout(r, 30));
  w.timed('busy', () => {
    const until = performance.now() + 120;
    while (performance.now() < until);
  });
  await new Promise((r) => setTimeout(r, 30));
  w.stop();
  // Lower bounds only (a loaded machine makes stalls longer, never shorter): the 120 ms block is
  // among the kept stalls, marked as after 'busy', even when the machine added stalls of its own.
  const busy = w.longestStalls().find((s) => s.after === 'busy' && s.ms >= 80);
  assert.ok(busy, JSON.stringify(w.longestStalls()));
  assert.ok(
    w.slowestHandlers().some((h) => h.what === 'busy' && h.ms >= 120),
    JSON.stringify(w.slowestHandlers()),
  );
  const idle = new StallWatch(30, 10);
  idle.start();
  idle.stop();
  assert.match(idle.summary(), /stalls over 30 ms: none; Fair Prune's slowest handlers: none/);
});
