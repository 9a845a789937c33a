/**
 * The session results file (`.fairprune/sessions/<id>/results.json`): the one record of what a
 * pruning session did and measured. The engine writes it, the command line prints it, the
 * extension's side panel and curves panel read it. Numbers are stored at full precision; rounding is
 * for the report and the screen only.
 */

export const RESULTS_SCHEMA_VERSION = 1 as const;

/** Which fine-tuning loss produced a pruned model (see `../shared/conformance/README.md`). */
export type LossName =
  'ce' | 'kd' | 'pw' | 'pw-weight-only' | 'pw-correction-only' | 'group-balanced' | 'group-dro' | 'ceag';
export const LOSS_NAMES: readonly LossName[] = [
  'ce',
  'kd',
  'pw',
  'pw-weight-only',
  'pw-correction-only',
  'group-balanced',
  'group-dro',
  'ceag',
];
/** Losses that need the subgroups of the training rows (src/core/objectives.ts). */
export const GROUP_OBJECTIVES: readonly LossName[] = ['group-balanced', 'group-dro', 'ceag'];
export const LOSS_LABELS: Record<LossName, string> = {
  ce: 'cross-entropy',
  kd: 'distillation from the dense model',
  pw: 'performance weighted (PW)',
  'pw-weight-only': 'PW, sample weights only',
  'pw-correction-only': 'PW, corrected targets only',
  'group-balanced': 'cross-entropy, every group weighted equally',
  'group-dro': 'Group DRO (worst-group loss)',
  ceag: 'constrained excess accuracy gaps (CEAG)',
};

/** What a group-aware objective learned by the end of fine-tuning (src/core/objectives.ts). */
export interface GroupObjectiveRecord {
  objective: 'group-balanced' | 'group-dro' | 'ceag';
  /** How the training batches were drawn: `group-balanced`, every group filling an equal share of each epoch. */
  sampling?: 'group-balanced';
  /** group-dro: η; ceag: the multipliers' step size. */
  stepSize?: number;
  /** ceag: ε, how far a group's accuracy drop may exceed the overall drop. */
  tolerance?: number;
  steps?: number;
  groups: Array<{
    group: string;
    trainingRows: number;
    /** group-balanced: each sample's weight; group-dro: the group's weight q_g (they sum to 1). */
    weight?: number;
    /** ceag: the Lagrange multiplier λ_g at the end (0: the constraint held). */
    multiplier?: number;
    /** ceag: the group's last measured excess accuracy gap ψ_g on recent training samples. */
    excessGap?: number;
  }>;
}

/**
 * How weights are chosen for removal: the names of the methods in src/core/pruning/methods.ts, which
 * says what each one needs, how it scores and whether it shrinks the model (the engine does not
 * compile while a name here has no entry there, or an entry has no name here).
 */
export const PRUNING_METHOD_NAMES = [
  'magnitude-layer',
  'magnitude-global',
  'random',
  'l1-filter',
  'taylor-filter',
] as const;
export type PruningMethodName = (typeof PRUNING_METHOD_NAMES)[number];

/** When pruning happens during fine-tuning (see src/core/pruning/schedules.ts). */
export interface ScheduleSpec {
  name: 'one-shot' | 'gradual' | 'iterative';
  /** gradual: fractions of the fine-tuning steps where sparsity starts rising and reaches the target. */
  begin?: number;
  end?: number;
  /** gradual: steps between mask updates; iterative: steps between rounds. */
  frequency?: number;
  /** gradual: exponent of the polynomial decay. */
  power?: number;
  /** iterative: rounds to reach the target. */
  rounds?: number;
}

/** What the sparsity numbers mean for structured methods: weights or FLOPs removed, per layer or globally. */
export interface PruningTarget {
  metric: 'weights' | 'flops';
  scope: 'layer' | 'global';
}

/** Parameters and FLOPs (per sample, counted as in docs/structured-pruning.md) before and after pruning. */
export interface CostRecord {
  parametersBefore: number;
  parametersAfter: number;
  flopsBefore: number;
  flopsAfter: number;
}

/** Inference latency of the dense and the pruned model, measured in turns on the same backend. */
export interface LatencyRecord {
  backend: string;
  batchSize: number;
  runs: number;
  /** Median milliseconds per batch. */
  denseMs: number;
  prunedMs: number;
  /** dense / pruned (> 1: the pruned model is faster). */
  speedup: number;
  /** A plain sentence: whether speed changed, and why. */
  sentence: string;
}

export interface StructureLayer {
  layer: string;
  className: string;
  channels: number;
  kept: number;
  /** Whether the removed channels are physically gone from the shrunk model (else only masked). */
  removed: boolean;
  note?: string;
}

/** What structured pruning did to a point, and the physically smaller model it saved. */
export interface StructureRecord {
  target: PruningTarget;
  /** Weight or FLOPs reduction actually reached (the metric of `target`). */
  reached: number;
  layers: StructureLayer[];
  /** Layers left alone (first/last by default, and those the user named). */
  skipped: string[];
  /** Folder of the shrunk model, relative to the session folder; null when nothing could be removed. */
  modelDir: string | null;
  size: ModelSize | null;
  /** Largest |difference| between the shrunk and the masked model's outputs (logits) on test rows. */
  maxOutputDifference: number | null;
  notes: string[];
}

/** Accuracy and worst-group accuracy (validation rows) when one layer alone is pruned to a level. */
export interface SensitivityRow {
  layer: string;
  level: number;
  accuracy: number;
  worstGroupAccuracy: number;
}

export interface SensitivityScan {
  split: SplitName;
  method: PruningMethodName;
  dense: { accuracy: number; worstGroupAccuracy: number };
  rows: SensitivityRow[];
  /** Relative per-layer sparsity the sweep used (largest level within the tolerance). */
  allocation?: Record<string, number>;
  tolerance?: number;
}

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export type BackendPreference = BackendName | 'auto';
/** Every backend a user may ask for (`--backend`, `fairPrune.backend`); auto takes the first that works. */
export const BACKEND_PREFERENCES: readonly BackendPreference[] = [
  'auto',
  'tensorflow-gpu',
  'tensorflow',
  'wasm',
  'cpu',
];

export type SplitName = 'train' | 'validation' | 'test';

export type Task = 'binary' | 'multiclass';

/** What ran the numbers: always recorded and printed. */
export interface BackendInfo {
  /** tfjs backend name as the user asks for it. */
  name: BackendName;
  /** tfjs's own name for the backend (`tensorflow`, `wasm`, `cpu`). */
  tfjsBackend: string;
  tfjsVersion: string;
  /** Why this backend and not a faster one, e.g. "@tensorflow/tfjs-node is not installed". */
  notes: string[];
  /** Whether wasm SIMD / threads are in use (wasm only). */
  simd?: boolean;
  threads?: number;
  /** Whose kernels ran the numbers (absent in sessions written before the choice existed: fairprune). */
  kernels?: KernelChoice;
}

/**
 * fairprune: tfjs with Fair Prune's hand-written kernels in front of its own where they apply (wasm's
 * gradient kernels and SIMD kernels, the heap training steps for small MLPs and CNNs, the fused Adam);
 * stock: tfjs's own kernels only, to tell a kernel bug from a model bug (`--kernels stock`,
 * `FAIRPRUNE_KERNELS=stock`).
 */
export const KERNEL_CHOICES = ['fairprune', 'stock'] as const;
export type KernelChoice = (typeof KERNEL_CHOICES)[number];

/** A value with its seeded bootstrap confidence interval. */
export interface Estimate {
  value: number;
  low: number;
  high: number;
}

/** One subgroup: named by its column(s) and value(s), never by an index. */
export interface GroupInfo {
  /** e.g. `colour=Black` or, intersectional, `ethnicity=afam & gender=female`. */
  name: string;
  /** column → value, in the order the columns were given. */
  values: Record<string, string>;
  /** Sample count of the group in each split. */
  counts: Record<SplitName, number>;
}

export interface GroupMetrics {
  group: string;
  /** Number of test samples of the group. */
  n: number;
  accuracy: Estimate;
  /** Binary: AUROC of the positive class; multiclass: mean one-vs-rest AUROC. Null when undefined (one class only). */
  auroc: Estimate | null;
  /** Set when the group is so small that its interval is wide; the text says so. */
  warning?: string;
  /**
   * Binary tasks: the group's rates under Fairlearn's names (`true_positive_rate`,
   * `false_positive_rate`, `selection_rate`; the list is the metric table, src/core/metric-table.ts).
   * Null when undefined (e.g. no positive sample for the true-positive rate). Absent in older files.
   */
  rates?: Record<string, Estimate | null>;
  /** Accuracy on each class within the group (the fraction of its samples of that class predicted as it). */
  classAccuracy?: ClassAccuracy[];
}

/** Accuracy on one class: of the samples labelled `class`, the fraction predicted as it. */
export interface ClassAccuracy {
  class: string;
  /** Samples of the class. */
  n: number;
  /** Null when there is no sample of the class. */
  accuracy: Estimate | null;
}

export interface Evaluation {
  split: SplitName;
  n: number;
  accuracy: Estimate;
  auroc: Estimate | null;
  groups: GroupMetrics[];
  /** The group with the lowest accuracy, and that accuracy with its interval. */
  worstGroup: { group: string; accuracy: Estimate };
  /** Largest accuracy difference between any two groups (max − min). */
  largestGap: Estimate;
  /** Binary tasks: the rates of `GroupMetrics.rates` over all samples. Absent in older files. */
  rates?: Record<string, Estimate | null>;
  /**
   * Binary tasks: between-group differences under Fairlearn's names (`demographic_parity_difference`,
   * `equal_opportunity_difference`, `equalized_odds_difference`). Absent in older files.
   */
  fairness?: Record<string, Estimate | null>;
  /** Accuracy on each class over all samples. Absent in older files. */
  classAccuracy?: ClassAccuracy[];
}

/** A pruned model measured against the dense one on the same samples (paired bootstrap). */
export interface Comparison {
  /** Overall accuracy change, pruned − dense. */
  accuracyChange: Estimate;
  /** Worst-group accuracy change, pruned − dense (the worst group of each model). */
  worstGroupChange: Estimate;
  /** Largest-gap change, pruned − dense. */
  gapChange: Estimate;
  /**
   * Binary tasks: the paired change, pruned − dense, of each `Evaluation.fairness` difference.
   * Absent in older files.
   */
  fairnessChange?: Record<string, Estimate | null>;
  groups: Array<{
    group: string;
    /** pruned − dense accuracy of this group. */
    accuracyChange: Estimate;
    /**
     * Excess accuracy gap ψ_g = [A_g(dense) − A_g(pruned)] − [A(dense) − A(pruned)]; > 0: the group pays more
     * than average.
     */
    excessGap: Estimate;
  }>;
  /** Pruning-identified exemplars: test samples whose predicted class pruning changed. */
  exemplars: {
    total: number;
    byGroup: Array<{
      group: string;
      count: number;
      /** Fraction of the group's test samples that changed. */
      rate: number;
      /** Up to 50 examples: CSV row number (1-based data row, header excluded), dense and pruned predicted class. */
      samples: Array<{ row: number; label: string; dense: string; pruned: string }>;
    }>;
  };
}

export interface ModelSize {
  /** All weights of the model (trainable and not). */
  parameters: number;
  /** Parameters that prunable layers hold (kernels of Dense/Conv layers). */
  prunableParameters: number;
  nonZeroParameters: number;
  /** Bytes of the saved weights file, and of it gzipped (zeros compress, which is what unstructured pruning buys). */
  weightBytes: number;
  gzipBytes: number;
}

export interface TrainingSummary {
  epochs: number;
  steps: number;
  seconds: number;
  finalTrainLoss: number;
  /** Validation loss of the kept weights (the best epoch when early stopping). */
  validationLoss: number | null;
  validationAccuracy: number | null;
  stoppedEarly: boolean;
  samplesPerSecond: number;
}

export interface PrunedPoint {
  /** e.g. `s0.80-pw` — stable within a session; with `--seeds N`, runs 2…N are `s0.80-pw-r2` … */
  id: string;
  /** With `--seeds N`: which fine-tuning run of this sparsity × loss (1…N); absent means 1. */
  run?: number;
  targetSparsity: number;
  loss: LossName;
  method: PruningMethodName;
  /** Fraction of prunable weights that are exactly zero in the saved model. */
  achievedSparsity: number;
  size: ModelSize;
  training: TrainingSummary;
  evaluation: Evaluation;
  comparison: Comparison;
  /** Folder of the saved pruned model, relative to the session folder. */
  modelDir: string;
  /**
   * sha256 of every file in `modelDir` (relative path → hash), recorded when the point was saved and checked
   * at commit.
   */
  files?: Record<string, string>;
  /** Schedule name (absent: one-shot). */
  schedule?: ScheduleSpec['name'];
  /** Parameters and FLOPs before/after, of the model as it runs (the shrunk one when there is one). */
  cost?: CostRecord;
  latency?: LatencyRecord;
  /** Structured methods only. */
  structure?: StructureRecord;
  /** Group-aware objectives only: the group weights or multipliers at the end of fine-tuning. */
  objective?: GroupObjectiveRecord;
}

export interface LabelMapping {
  column: string;
  /** Class names in output-index order: `classes[i]` is output i (binary: index 1 is the positive class). */
  classes: string[];
  /** How the order was decided. */
  order: 'integer' | 'sorted' | 'given';
}

export interface SplitRecord {
  source: 'column' | 'seeded';
  column?: string;
  seed?: number;
  counts: Record<SplitName, number>;
  /** One character per data row: t(rain), v(alidation), x (test) — so a later run can reuse the split. */
  assignment: string;
  /** Set when validation rows were drawn from train because the split column had none. */
  validationDrawnFromTrain?: boolean;
}

export interface DataRecord {
  path: string;
  sha256: string;
  rows: number;
  label: LabelMapping;
  groupColumns: string[];
  groups: GroupInfo[];
  /** Feature columns in model-input order, or null for image data. */
  features: string[] | null;
  imageColumn: string | null;
  /** Images: pixels are divided by this (255 → 0–1). */
  pixelScale: number | null;
  /** Path of the preprocessing file applied, if any (written by `fairprune train`). */
  preprocessing: string | null;
  split: SplitRecord;
  warnings: string[];
}

export interface ModelRecord {
  path: string;
  /** The file format the model came in (and pruned models are saved in, beside model.json). */
  format: 'tfjs-layers' | 'keras-h5' | 'keras-v3';
  sha256: string;
  inputShape: number[];
  outputUnits: number;
  task: Task;
  size: ModelSize;
  /** FLOPs per sample (docs/structured-pruning.md). */
  flops?: number;
}

export interface SessionConfig {
  sparsities: number[];
  losses: LossName[];
  method: PruningMethodName;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Early stopping patience in epochs on validation loss; 0 = fixed epochs. */
  patience: number;
  seed: number;
  /** Fine-tuning runs per sparsity × loss (`--seeds`; absent: 1). */
  seeds?: number;
  pw: { minWeight: number; gamma: number };
  /** group-dro's step size η (sessions that ran group-dro). */
  droEta?: number;
  /** ceag's tolerance ε and the multipliers' step size (sessions that ran ceag). */
  ceag?: { tolerance: number; dualLearningRate: number };
  bootstrap: { resamples: number; confidence: number };
  schedule?: ScheduleSpec;
  /** Structured methods: what the sparsities are fractions of. */
  target?: PruningTarget;
  /** Layers left alone, as given (`first`, `last`, names). */
  skipLayers?: string[];
}

/**
 * Each group's mean PW weight on the training rows, from the dense model's confidence: shows whether
 * PW spread the weights at all (with γ large, every sample the dense model was sure of weighs ≈ m).
 */
export interface PwWeightSummary {
  minWeight: number;
  gamma: number;
  /** Mean weight over all training rows. */
  mean: number;
  groups: Array<{ group: string; n: number; meanWeight: number }>;
}

/**
 * The sparsest point that passes the fairness gate (see src/core/gate.ts `recommendPoint`), under the
 * policy given; results.json holds it under the default policy, the editor recomputes it under yours.
 */
export interface Recommendation {
  policy: { maxWorstGroupDrop: number; maxGapIncrease: number; minAccuracy: number; judgeOn: 'interval' | 'estimate' };
  /** Null when no point passes. */
  pointId: string | null;
  sparsity?: number;
  loss?: LossName;
  /** Other points at the same sparsity that pass too, best worst-group accuracy first. */
  runnersUp: string[];
  /** When none passes: the rule that failed first at the lowest sparsity tried, and that sparsity. */
  failedRule?: 'worst-group-drop' | 'gap-increase' | 'min-accuracy';
  failedAt?: number;
  /** One sentence for people. */
  sentence: string;
}

/** Mean, sample standard deviation, least and largest value across fine-tuning runs (seeds). */
export interface Spread {
  mean: number;
  sd: number;
  min: number;
  max: number;
}

/** One sparsity × loss over its fine-tuning runs (`--seeds N`; one run gives a spread of 0). */
export interface PointSummary {
  sparsity: number;
  loss: LossName;
  runs: number;
  /** The runs' point ids, run 1 first. */
  pointIds: string[];
  accuracy: Spread;
  worstGroupAccuracy: Spread;
  largestGap: Spread;
  /**
   * This loss minus `ce` at the same sparsity (absent for `ce`, or when the session has no `ce`): worst-group
   * accuracy and largest gap, mean over paired runs, with a 95% interval over seeds × a paired
   * stratified bootstrap of the test rows (src/core/contrast.ts).
   */
  againstCe?: { worstGroupAccuracy: Estimate; largestGap: Estimate; runs: number };
}

export type SessionStatus = 'running' | 'completed' | 'cancelled' | 'failed';

export interface SessionResults {
  schemaVersion: typeof RESULTS_SCHEMA_VERSION;
  sessionId: string;
  status: SessionStatus;
  error?: string;
  createdAt: string;
  finishedAt?: string;
  engine: { version: string; backend: BackendInfo; node: string; platform: string };
  model: ModelRecord;
  data: DataRecord;
  config: SessionConfig;
  /** The headline numbers are on the test split. */
  dense: Evaluation;
  points: PrunedPoint[];
  /** Per-layer sensitivity scan, when one was asked for. */
  sensitivity?: SensitivityScan;
  /** Each group's mean PW weight on the training rows (sessions of Fair Prune 0.2 on). */
  pwWeights?: PwWeightSummary;
  /** The recommended point under the default fairness policy, updated as points land. */
  recommendation?: Recommendation;
  /** Each sparsity × loss across its runs, and against `ce` (sessions of Fair Prune 0.2 on). */
  summaries?: PointSummary[];
}
