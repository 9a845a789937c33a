/**
 * The table of pruning methods (src/core/pruning/methods.ts) is the one list: every name the
 * protocol knows has its entry, the settings' enum and the help text list exactly the table, and
 * every entry's function does what its kind promises — so a method added to the table is checked
 * here without a new test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { PRUNING_METHOD_NAMES } from '../../src/protocol/results';
import { PRUNING_METHODS, methodOptions, pruningMethod } from '../../src/core/pruning';
import type { KernelValues, PruningMethod } from '../../src/core/pruning';
import { HELP_RUN } from '../../src/cli/main';
import { UserError } from '../../src/core/errors';
import { Rng } from '../../src/core/rng';
import { repoRoot } from '../helpers';

const table: PruningMethod[] = Object.values(PRUNING_METHODS);
const setting = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).contributes.configuration
  .properties['fairPrune.method'];

test('every method the protocol names has one entry in the table, under its own name, and the table has no other', () => {
  assert.deepEqual(Object.keys(PRUNING_METHODS).sort(), [...PRUNING_METHOD_NAMES].sort());
  for (const [key, m] of Object.entries(PRUNING_METHODS)) assert.equal(m.name, key);
});

test("package.json's fairPrune.method enum is the table, each description saying the method's kind", () => {
  assert.deepEqual([...setting.enum].sort(), Object.keys(PRUNING_METHODS).sort());
  assert.equal(setting.enumDescriptions.length, setting.enum.length);
  setting.enum.forEach((name: string, i: number) => {
    const kind = pruningMethod(name).kind;
    assert.match(setting.enumDescriptions[i], new RegExp(`^${kind}:`, 'i'), name);
  });
});

test('`fairprune run --help` lists every method of the table with how it scores', () => {
  for (const m of table) {
    assert.ok(HELP_RUN.includes(`  ${m.name} `), `${m.name} is missing from the help`);
    assert.ok(HELP_RUN.replace(/\s+/g, ' ').includes(m.scores.split(' ').slice(0, 4).join(' ')), `${m.name}'s scoring`);
  }
});

test('an entry is whole: structured methods shrink the model and score channels, unstructured ones mask weights', () => {
  for (const m of table) {
    assert.ok(m.needs.length > 0 && m.scores.length > 10, m.name);
    if (m.kind === 'structured') {
      assert.equal(m.shrinks, true, m.name);
      assert.equal(typeof m.channelScores, 'function', m.name);
    } else {
      assert.equal(m.shrinks, false, m.name);
      assert.equal(typeof m.masks, 'function', m.name);
    }
  }
  assert.equal(methodOptions('structured'), '--method l1-filter or --method taylor-filter');
});

test('every unstructured method removes exactly the asked fraction of each layer (or of all weights), deterministically', () => {
  const kernels: KernelValues[] = [7, 20].map((n, i) => {
    const values = Float32Array.from({ length: n }, (_, j) => Math.sin(j * 1.7 + i) * (j + 1));
    return {
      kernel: { layer: `l${i}`, className: 'Dense', variable: undefined as never, shape: [n], size: n },
      values,
    };
  });
  for (const m of table) {
    if (m.kind !== 'unstructured') continue;
    for (const sparsity of [0, 0.3, 0.5, 0.9]) {
      const masks = m.masks(kernels, sparsity, new Rng(4));
      assert.deepEqual(masks, m.masks(kernels, sparsity, new Rng(4)), `${m.name} is not deterministic for a seed`);
      const pruned = masks.map((k) => k.filter((v) => v === 0).length);
      const total = pruned.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(total - 27 * sparsity) <= 1, `${m.name} at ${sparsity}: ${total} of 27 pruned`);
      masks.forEach((k, i) => assert.equal(k.length, kernels[i].values.length));
    }
  }
});

test('an unknown method is refused once, with the option and the known names', () => {
  assert.equal(pruningMethod('random'), PRUNING_METHODS.random);
  assert.throws(
    () => pruningMethod('taylor', 'fairPrune.method'),
    (e: unknown) =>
      e instanceof UserError &&
      /fairPrune\.method/.test(e.message) &&
      PRUNING_METHOD_NAMES.every((n) => e.message.includes(n)),
  );
});
