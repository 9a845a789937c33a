/**
 * The metrics' resampling and intervals (src/core/bootstrap.ts) with hand-computed values: type-7
 * quantiles, percentile intervals at the stated level widened to contain the estimate, undefined
 * resamples skipped, and the stratified draws.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupMembers, interval, intervalOrNull, quantile, StratifiedResampler } from '../../src/core/bootstrap';
import { Rng } from '../../src/core/rng';

const f64 = (xs: number[]) => Float64Array.from(xs);

test('quantile: type 7, linear between the order statistics around (n − 1) · p', () => {
  const s = f64([1, 2, 4, 8]);
  assert.equal(quantile(s, 0), 1);
  assert.equal(quantile(s, 1), 8);
  assert.equal(quantile(s, 0.5), 3); // h = 1.5: 2 + 0.5 · (4 − 2)
  assert.equal(quantile(s, 0.25), 1.75); // h = 0.75: 1 + 0.75 · (2 − 1)
  assert.ok(Math.abs(quantile(s, 0.9) - 6.8) < 1e-12); // h = 2.7: 4 + 0.7 · (8 − 4)
  assert.equal(quantile(f64([5]), 0.3), 5);
  assert.equal(quantile(f64([5]), 1), 5);
  assert.equal(quantile(f64([2, 2, 3]), 0.25), 2);
  assert.equal(quantile(f64([-3, -1]), 0.5), -2);
});

test('interval: the percentile interval at the stated level, of resamples in any order', () => {
  // 1 … 100, shuffled: at 90% the 5th and 95th percentiles, h = 4.95 and 94.05
  const rng = new Rng(4);
  const boot = Array.from({ length: 100 }, (_, i) => i + 1);
  rng.shuffle(boot);
  const at90 = interval(50, f64(boot), 0.9);
  assert.equal(at90.value, 50);
  assert.ok(Math.abs(at90.low - 5.95) < 1e-12, `${at90.low}`);
  assert.ok(Math.abs(at90.high - 95.05) < 1e-12, `${at90.high}`);
  // at 50%: the quartiles, h = 24.75 and 74.25
  const at50 = interval(50, f64(boot), 0.5);
  assert.ok(Math.abs(at50.low - 25.75) < 1e-12 && Math.abs(at50.high - 75.25) < 1e-12, JSON.stringify(at50));
  // numeric order, not text order: 9 < 10 < 100
  assert.deepEqual(interval(10, f64([100, 9, 10]), 0.5), { value: 10, low: 9.5, high: 55 });
});

test('interval: widened to contain its estimate; undefined (NaN) resamples skipped; none left: zero width', () => {
  assert.deepEqual(interval(0, f64([1, 2, 3]), 0.5), { value: 0, low: 0, high: 2.5 });
  assert.deepEqual(interval(9, f64([1, 2, 3]), 0.5), { value: 9, low: 1.5, high: 9 });
  // [NaN, 3, NaN, 1] is [1, 3]: at 50%, h = 0.25 and 0.75
  assert.deepEqual(interval(2, f64([NaN, 3, NaN, 1]), 0.5), { value: 2, low: 1.5, high: 2.5 });
  assert.deepEqual(interval(0.4, f64([NaN, NaN]), 0.95), { value: 0.4, low: 0.4, high: 0.4 });
  assert.deepEqual(interval(0.4, f64([]), 0.95), { value: 0.4, low: 0.4, high: 0.4 });
  assert.equal(intervalOrNull(NaN, f64([1, 2]), 0.95), null);
  assert.deepEqual(intervalOrNull(2, f64([1, 3]), 0.5), { value: 2, low: 1.5, high: 2.5 });
});

test('groupMembers and StratifiedResampler: each group keeps its size, drawn in group order from its members', () => {
  const members = groupMembers(Int32Array.from([2, 0, 2, 2]), 3);
  assert.deepEqual(
    members.map((m) => [...m]),
    [[1], [], [0, 2, 3]],
  );
  const rs = new StratifiedResampler(members, 12);
  const rng = new Rng(12);
  for (let b = 0; b < 4; b++) {
    const drawn = rs.next();
    assert.equal(drawn, rs.drawn, 'the same arrays, refilled');
    assert.deepEqual([...drawn[0]], [1]);
    assert.deepEqual([...drawn[1]], []);
    rng.int(1); // group 0's one draw comes first in the stream
    const want = [0, 1, 2].map(() => members[2][rng.int(3)]);
    assert.deepEqual([...drawn[2]], want);
  }
});
