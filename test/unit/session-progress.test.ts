/** The running session's item in the Sessions view, its progress bar and status bar entry (src/ui/session-progress). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EngineEvent } from '../../src/protocol/engine';
import { PROGRESS_UI_MS, SessionProgress } from '../../src/ui/session-progress';

type Progress = Extract<EngineEvent, { type: 'progress' }>;

const finetune = (o: Partial<Progress>): Progress => ({
  type: 'progress',
  phase: 'finetune',
  point: 3,
  points: 9,
  targetSparsity: 0.5,
  loss: 'ce',
  epoch: 1,
  epochs: 3,
  step: 10,
  steps: 100,
  ...o,
});

function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test('before the session: the engine starting, then the demo set-up steps, indeterminate (no share done)', () => {
  const c = clock();
  const s = new SessionProgress('demo/model.json', c.now);
  assert.equal(s.view().description, 'starting the engine');
  assert.equal(s.view().statusText, '$(sync~spin) Fair Prune');
  assert.deepEqual(s.onEvent({ type: 'log', level: 'info', message: 'writing the demo data set' }), { increment: 0 });
  assert.equal(s.view().description, 'writing the demo data set');
  // Indented lines are details, not steps.
  assert.equal(s.onEvent({ type: 'log', level: 'info', message: '  epoch 1/3' }), undefined);
  assert.equal(s.view().description, 'writing the demo data set');
  assert.equal(s.onEvent({ type: 'started', sessionId: 'x', sessionDir: '/s/x', backend: {} as never }), undefined);
  // Once the session runs, its log lines are for the output channel only.
  assert.equal(s.onEvent({ type: 'log', level: 'info', message: 'a log line' }), undefined);
  assert.equal(s.view().description, 'writing the demo data set');
  assert.ok(s.onEvent({ type: 'progress', phase: 'dense', point: 0, points: 9 }));
  assert.equal(s.view().description, 'measuring the dense model');
});

test('two points at a time: the same words as the curves panel, and the bar advances by the share newly done', () => {
  const c = clock();
  const s = new SessionProgress('model/model.json', c.now);
  const a = s.onEvent(finetune({ running: [3, 4], fraction: 0.25, secondsLeft: 11.2 }));
  assert.deepEqual(a, { increment: 0.25 });
  const v = s.view();
  assert.equal(v.label, 'Running: model/model.json');
  assert.equal(v.description, 'points 3, 4 of 9 (2 at a time): 25% of the sweep done · ~12 s left');
  assert.equal(v.statusText, '$(sync~spin) Fair Prune 3+4/9');
  assert.match(v.statusTooltip, /^Fair Prune: model\/model\.json — points 3, 4 of 9/);
  assert.equal(v.contextValue, 'fairPrune.running');
  // A step sooner than PROGRESS_UI_MS after the last redraw is not drawn…
  c.advance(PROGRESS_UI_MS - 1);
  assert.equal(s.onEvent(finetune({ running: [3, 4], fraction: 0.3 })), undefined);
  assert.match(s.view().description, /25% of the sweep/);
  // …the next one is, by what was done since the last drawn one.
  c.advance(1);
  const b = s.onEvent(finetune({ running: [3, 4], fraction: 0.4 }));
  assert.ok(b && Math.abs(b.increment - 0.15) < 1e-12);
  // What a progress bar begun now (the view shown mid-session) starts from.
  assert.equal(s.done, 0.4);
  // A point's end (another phase) is drawn at once; the bar never goes back.
  assert.deepEqual(s.onEvent(finetune({ phase: 'evaluate', running: [4], point: 4, fraction: 0.35 })), {
    increment: 0,
  });
  assert.equal(s.view().description, 'point 4/9: evaluate');
  assert.equal(s.view().statusText, '$(sync~spin) Fair Prune 4/9');
  assert.equal(s.done, 0.4);
});

test('cancelling: the item says so and no longer offers Cancel', () => {
  const s = new SessionProgress('model/model.json', clock().now);
  s.onEvent(finetune({}));
  assert.match(s.view().description, /^point 3\/9: 50% ce, epoch 1\/3/);
  s.cancel();
  const v = s.view();
  assert.equal(v.contextValue, 'fairPrune.running.cancelling');
  assert.equal(v.description, 'cancelling: finished points are kept');
  assert.match(v.tooltip, /stops at its next training step/);
  // Progress still arriving before the engine stops does not bring the old words back.
  s.onEvent(finetune({ phase: 'evaluate' }));
  assert.equal(s.view().description, 'cancelling: finished points are kept');
});
