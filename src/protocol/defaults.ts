/**
 * The one source of defaults for a pruning session: the command line, the extension's settings
 * (package.json's `contributes.configuration`, checked against this file by a test) and the engine
 * read these. Plain data, no imports, so every process and the webviews can use it.
 */
import type { BackendPreference, KernelChoice } from './results';
import type { FairnessPolicy } from './gate';

export const RUN_DEFAULTS = {
  sparsity: '0.5,0.8,0.9',
  sparsities: [0.5, 0.8, 0.9],
  loss: 'ce,pw',
  losses: ['ce', 'pw'],
  method: 'magnitude-layer',
  epochs: 3,
  batchSize: 64,
  learningRate: 1e-3,
  patience: 0,
  seed: 1,
  /** Fine-tuning runs per sparsity × loss, each with its own seed, from the same pruned network. */
  seeds: 1,
  /**
   * PW's m and γ: the setting Meyer & Wong's experiment scripts ran most (CelebA with AutoBot, and
   * CIFAR-10 with m = 0.5). Their argparse defaults (m = 0.75, γ = 5) are used by none of their
   * experiments, and with γ = 5 every sample the dense model is over 60% sure of weighs about m.
   */
  minWeight: 0.3,
  gamma: 1,
  /** Group DRO's step size for the group weights (Sagawa et al. 2020's default). */
  droEta: 0.01,
  /** CEAG: how far a group's accuracy drop may exceed the overall drop (Hashemizadeh et al. 2024). */
  ceagTolerance: 0.02,
  /** CEAG: step size of the gradient ascent on the Lagrange multipliers. */
  ceagDualLearningRate: 0.05,
  bootstrap: 1000,
  /** The level of every interval Fair Prune reports. */
  confidence: 0.95,
  backend: 'auto' as BackendPreference,
  kernels: 'fairprune' as KernelChoice,
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

/** The fairness gate's policy when none is set (the `fairPrune.gate.*` settings, `--policy`). */
export const DEFAULT_POLICY: FairnessPolicy = {
  maxWorstGroupDrop: 0.05,
  maxGapIncrease: 0.03,
  minAccuracy: 0,
  judgeOn: 'interval',
};

/** Settings of the extension alone (package.json's `contributes.configuration`). */
export const EXTENSION_DEFAULTS = {
  /** Stage a committed model's files in git. */
  gitStage: false,
  /** Ask before committing (only the user's own setting can turn this off, never a workspace's). */
  commitConfirm: true,
};
