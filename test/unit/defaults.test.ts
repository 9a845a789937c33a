import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_POLICY, EXTENSION_DEFAULTS, RUN_DEFAULTS } from '../../src/protocol/defaults';
import { RUN_DEFAULTS as CLI_DEFAULTS } from '../../src/cli/defaults';
import { JUDGE_ON } from '../../src/protocol/gate';
import { BACKEND_PREFERENCES, LOSS_NAMES } from '../../src/protocol/results';
import { normalizeSchedule } from '../../src/core/pruning';
import { parseLossNames, parseSparsities } from '../../src/core/options';
import { repoRoot } from '../helpers';

const props = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).contributes.configuration
  .properties;
const def = (key: string) => props[`fairPrune.${key}`].default;

/** Every `fairPrune.*` setting and its default in src/protocol/defaults.ts, the one source. */
const SOURCE: Record<string, unknown> = {
  sparsities: RUN_DEFAULTS.sparsities,
  losses: RUN_DEFAULTS.losses,
  method: RUN_DEFAULTS.method,
  epochs: RUN_DEFAULTS.epochs,
  batchSize: RUN_DEFAULTS.batchSize,
  learningRate: RUN_DEFAULTS.learningRate,
  patience: RUN_DEFAULTS.patience,
  seed: RUN_DEFAULTS.seed,
  seeds: RUN_DEFAULTS.seeds,
  'groupDro.eta': RUN_DEFAULTS.droEta,
  'ceag.tolerance': RUN_DEFAULTS.ceagTolerance,
  'pw.minWeight': RUN_DEFAULTS.minWeight,
  'pw.gamma': RUN_DEFAULTS.gamma,
  bootstrapResamples: RUN_DEFAULTS.bootstrap,
  backend: RUN_DEFAULTS.backend,
  workers: RUN_DEFAULTS.workers,
  outputFolder: RUN_DEFAULTS.out,
  ...Object.fromEntries(Object.entries(DEFAULT_POLICY).map(([k, v]) => [`gate.${k}`, v])),
  'git.stage': EXTENSION_DEFAULTS.gitStage,
  'commit.confirm': EXTENSION_DEFAULTS.commitConfirm,
};

test('package.json settings have the defaults of src/protocol/defaults.ts, the one source, and none is left out', () => {
  assert.deepEqual(
    Object.keys(props).sort(),
    Object.keys(SOURCE)
      .map((k) => `fairPrune.${k}`)
      .sort(),
  );
  for (const [key, value] of Object.entries(SOURCE)) assert.deepEqual(def(key), value, key);
  assert.deepEqual(def('sparsities'), parseSparsities(RUN_DEFAULTS.sparsity));
  assert.deepEqual(def('losses'), parseLossNames(RUN_DEFAULTS.loss));
});

test('the CLI, the schedules and the extension read the same defaults', () => {
  assert.equal(CLI_DEFAULTS, RUN_DEFAULTS);
  assert.deepEqual(normalizeSchedule({ name: 'gradual' }), {
    name: 'gradual',
    begin: RUN_DEFAULTS.scheduleBegin,
    end: RUN_DEFAULTS.scheduleEnd,
    frequency: RUN_DEFAULTS.scheduleEvery,
    power: RUN_DEFAULTS.schedulePower,
  });
  assert.deepEqual(normalizeSchedule({ name: 'iterative' }), {
    name: 'iterative',
    frequency: RUN_DEFAULTS.iterativeEvery,
    rounds: RUN_DEFAULTS.scheduleRounds,
  });
  // The extension's settings fall back on the source, never on a literal of their own.
  const config = fs.readFileSync(path.join(repoRoot, 'src', 'extension', 'config.ts'), 'utf8');
  const fallbacks = [...config.matchAll(/\.get<[^>]+>\('[^']+',\s*([^)]+)\)/g)].map((m) => m[1].trim());
  assert.ok(fallbacks.length >= 20, `${fallbacks.length} settings read`);
  for (const f of fallbacks) assert.match(f, /^(D|E|DEFAULT_POLICY)\./, `a setting falls back on '${f}'`);
});

test('package.json enums list every loss, backend and judging the engine knows, and nothing else (methods: pruning-methods.test)', () => {
  assert.deepEqual([...props['fairPrune.losses'].items.enum].sort(), [...LOSS_NAMES].sort());
  assert.deepEqual(props['fairPrune.backend'].enum, [...BACKEND_PREFERENCES]);
  assert.deepEqual(props['fairPrune.gate.judgeOn'].enum, [...JUDGE_ON]);
});

test('PW defaults are the setting the authors ran most (m = 0.3, γ = 1), not their unused argparse defaults', () => {
  assert.equal(RUN_DEFAULTS.minWeight, 0.3);
  assert.equal(RUN_DEFAULTS.gamma, 1);
});
