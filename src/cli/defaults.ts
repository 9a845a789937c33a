/** Defaults of the command line, shared by `run`, `demo` and their help texts. */
import type { BackendPreference } from '../protocol/results';

export const BACKENDS: BackendPreference[] = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

export const RUN_DEFAULTS = {
  sparsity: '0.5,0.8,0.9',
  loss: 'ce,pw',
  method: 'magnitude-layer',
  epochs: 3,
  batchSize: 64,
  learningRate: 1e-3,
  patience: 0,
  seed: 1,
  minWeight: 0.75,
  gamma: 5,
  bootstrap: 1000,
  backend: 'auto' as BackendPreference,
  /** Sweep points at once: 0 = one per core. */
  workers: 0,
  out: '.fairprune',
  // structured and gradual pruning (used only when asked for)
  scheduleBegin: 0,
  scheduleEnd: 0.5,
  schedulePower: 3,
  scheduleEvery: 10,
  iterativeEvery: 20,
  scheduleRounds: 4,
  target: 'weights' as 'weights' | 'flops',
  scope: 'layer' as 'layer' | 'global',
  sensitivityTolerance: 0.02,
};

