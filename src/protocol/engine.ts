/**
 * Messages between whoever drives a pruning session (the command line, the VS Code host) and the
 * engine that runs it (in-process for the command line, a forked child process for the editor).
 * The same event type streams to the webview panels.
 */
import type {
  BackendPreference,
  Evaluation,
  KernelChoice,
  LossName,
  PruningMethodName,
  PrunedPoint,
  PruningTarget,
  ScheduleSpec,
  SessionResults,
} from './results';

/**
 * The data set and what its columns are (docs/data-contract.md): `fairprune run`'s and `fairprune
 * train`'s `--data`, `--label`, `--groups`, `--features`, `--ignore`, `--split-column`,
 * `--image-column`, `--classes` and `--pixel-scale`.
 */
export interface DataSpec {
  csvPath: string;
  label: string;
  groups: string[];
  features?: string[];
  ignore?: string[];
  splitColumn?: string;
  imageColumn?: string;
  classes?: string[];
  /** Images: pixels are divided by this; default 255 (0–1). Use 1 for models trained on 0–255. */
  pixelScale?: number;
}

/** What the user asked for: everything `fairprune run` takes. */
export interface RunRequest {
  modelPath: string;
  data: DataSpec;
  /** Reuse the split of an earlier session (its results.json), so numbers are comparable. */
  reuseSplitFrom?: string;
  sparsities: number[];
  losses: LossName[];
  method: PruningMethodName;
  epochs: number;
  batchSize: number;
  learningRate: number;
  patience: number;
  seed: number;
  /** Fine-tuning runs per sparsity × loss, each with its own seed, from the same pruned network (default 1). */
  seeds?: number;
  minWeight: number;
  gamma: number;
  /** group-dro's step size η (default 0.01). */
  droEta?: number;
  /** ceag's tolerance ε (default 0.02) and its multipliers' step size (default in src/protocol/defaults.ts). */
  ceagTolerance?: number;
  ceagDualLearningRate?: number;
  bootstrapResamples: number;
  backend: BackendPreference;
  /** Whose kernels run the numbers (default: FAIRPRUNE_KERNELS, else fairprune; see KernelChoice). */
  kernels?: KernelChoice;
  /** Folder holding `sessions/` and `cache/` (default: `.fairprune` in the working folder). */
  outDir: string;
  /** When pruning happens during fine-tuning (default one-shot). */
  schedule?: ScheduleSpec;
  /** Structured methods: sparsities are fractions of weights or FLOPs, per layer or global (default weights, layer). */
  target?: PruningTarget;
  /** Layers left alone: names, `first`, `last`, `none` (default: first,last for structured methods, none otherwise). */
  skipLayers?: string[];
  /** Structured methods: scan each layer's sensitivity at these levels and set per-layer sparsity from it. */
  sensitivityLevels?: number[];
  /** Worst-group accuracy a layer may lose in the scan at its allocated level (default 0.02). */
  sensitivityTolerance?: number;
  /**
   * Sweep points run at once, each in its own worker thread: 0 or absent for one per core (cut to
   * what free memory holds), 1 for one after another. The results are the same either way.
   */
  workers?: number;
}

export type ProgressPhase = 'loading' | 'dense' | 'prune' | 'finetune' | 'evaluate' | 'save';

export type EngineEvent =
  | { type: 'log'; level: 'info' | 'warn'; message: string }
  | { type: 'started'; sessionId: string; sessionDir: string; backend: SessionResults['engine']['backend'] }
  | { type: 'dense'; evaluation: Evaluation }
  | {
      type: 'progress';
      phase: ProgressPhase;
      /** Which sweep point, 1-based, of how many (0 when not in a point). */
      point: number;
      points: number;
      targetSparsity?: number;
      loss?: LossName;
      epoch?: number;
      epochs?: number;
      step?: number;
      steps?: number;
      trainLoss?: number;
      samplesPerSecond?: number;
      /** Estimated seconds left for the whole session. */
      secondsLeft?: number;
      /** Share of the sweep done, 0…1 (finished points plus the done share of each running one). */
      fraction?: number;
      /** The points running now, 1-based (more than one when points run in parallel). */
      running?: number[];
    }
  | { type: 'point'; point: PrunedPoint }
  | { type: 'finished'; status: SessionResults['status']; resultsPath: string; reportPath: string; error?: string };

/**
 * "Try the Demo": before the session, the engine writes the demo's data set and trains its dense model
 * (src/core/demo/prepare.ts) where the request's `data.csvPath` and `modelPath` say, or reuses them.
 */
export interface DemoSetup {
  /** The folder the user picked; the engine runs in it. */
  folder: string;
}

/** Host → engine process. */
export type EngineCommand = { type: 'run'; request: RunRequest; demo?: DemoSetup } | { type: 'cancel' };

/** Engine process → host: events, plus a final error for failures before a session exists. */
export type EngineMessage = { type: 'event'; event: EngineEvent } | { type: 'fatal'; message: string };
