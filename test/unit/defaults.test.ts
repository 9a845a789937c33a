import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { RUN_DEFAULTS } from '../../src/protocol/defaults';
import { DEFAULT_POLICY } from '../../src/shared/gate';
import { LOSS_NAMES } from '../../src/protocol/results';
import { parseLossNames, parseSparsities } from '../../src/core/options';
import { repoRoot } from '../helpers';

const props = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).contributes.configuration.properties;
const def = (key: string) => props[`fairPrune.${key}`].default;

test('package.json settings have the defaults of src/protocol/defaults.ts, the one source', () => {
  assert.deepEqual(def('sparsities'), RUN_DEFAULTS.sparsities);
  assert.deepEqual(def('sparsities'), parseSparsities(RUN_DEFAULTS.sparsity));
  assert.deepEqual(def('losses'), RUN_DEFAULTS.losses);
  assert.deepEqual(def('losses'), parseLossNames(RUN_DEFAULTS.loss));
  assert.equal(def('method'), RUN_DEFAULTS.method);
  assert.equal(def('epochs'), RUN_DEFAULTS.epochs);
  assert.equal(def('batchSize'), RUN_DEFAULTS.batchSize);
  assert.equal(def('learningRate'), RUN_DEFAULTS.learningRate);
  assert.equal(def('patience'), RUN_DEFAULTS.patience);
  assert.equal(def('seed'), RUN_DEFAULTS.seed);
  assert.equal(def('seeds'), RUN_DEFAULTS.seeds);
  assert.equal(def('groupDro.eta'), RUN_DEFAULTS.droEta);
  assert.equal(def('ceag.tolerance'), RUN_DEFAULTS.ceagTolerance);
  assert.equal(def('pw.minWeight'), RUN_DEFAULTS.minWeight);
  assert.equal(def('pw.gamma'), RUN_DEFAULTS.gamma);
  assert.equal(def('bootstrapResamples'), RUN_DEFAULTS.bootstrap);
  assert.equal(def('backend'), RUN_DEFAULTS.backend);
  assert.equal(def('workers'), RUN_DEFAULTS.workers);
  assert.equal(def('outputFolder'), RUN_DEFAULTS.out);
  for (const [key, value] of Object.entries(DEFAULT_POLICY)) assert.equal(def(`gate.${key}`), value, `gate.${key}`);
});

test('package.json enums list every loss the engine knows, and nothing else (methods: pruning-methods.test)', () => {
  assert.deepEqual([...props['fairPrune.losses'].items.enum].sort(), [...LOSS_NAMES].sort());
});

test('PW defaults are the setting the authors ran most (m = 0.3, γ = 1), not their unused argparse defaults', () => {
  assert.equal(RUN_DEFAULTS.minWeight, 0.3);
  assert.equal(RUN_DEFAULTS.gamma, 1);
});
