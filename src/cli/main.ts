/**
 * The `fairprune` command line: `run` prunes a model the user brings, `train` makes a small dense
 * baseline, `demo` runs the whole method on a biased MNIST task. Everything it does is the engine's
 * (src/core); this file only reads options and prints.
 */
import * as path from 'path';
import { parseArgs } from 'util';
import type { DataSpec, RunRequest } from '../protocol/engine';
import type { BackendPreference } from '../protocol/results';
import { PRUNING_METHOD_NAMES } from '../protocol/results';
import { CancelledError, UserError } from '../core/errors';
import { parseLossNames, parseSparsities } from '../core/options';
import { resolveKernels } from '../core/kernels/choice';
import { methodOptions, normalizeSchedule, PRUNING_METHODS, pruningMethod } from '../core/pruning';
import type { PruningMethod } from '../core/pruning';
import { runSession } from '../core/session';
import { trainBaseline } from '../core/baseline';
import { pct } from '../core/report';
import { backendSummary } from '../core/backend';
import { BACKENDS, RUN_DEFAULTS } from './defaults';
import { ENGINE_VERSION } from '../core/version';
import { dataContractHelp } from './help-text';
import { runDemo } from './demo';
import { checkOutputFolder } from '../core/output-folder';
import { cleanStaleSessionTemps } from '../core/atomic';
import { cmdCommit, HELP_COMMIT } from './commit';
import { cmdCheck, HELP_CHECK } from './check';
import { RUN_OUTPUT_HELP, RUN_OUTPUT_OPTIONS, runOutput } from './run-output';

const HELP_MAIN = `fairprune ${ENGINE_VERSION} — prune a neural network without letting the pruning hurt some groups
more than others

Usage:
  fairprune run   --model M --data D --label COL --group COL [options]   prune a model, measure every subgroup
  fairprune train --data D --label COL --group COL --out DIR [options]   train a small dense baseline to start from
  fairprune demo  [--out DIR] [--quick]                                  the whole method on a biased MNIST task
  fairprune commit --session DIR --point ID [--to DIR] [--override WHY]  commit a pruned point with its fairness record
  fairprune check --model DIR --data D [--policy FILE] [--json]          CI: does a committed model still pass?
  fairprune help [run|train|demo|data|commit|check]

The method: every pruned model is fine-tuned with plain cross-entropy (ce) and with the performance
weighted loss (pw) of Meyer & Wong, "A Fair Loss Function for Network Pruning" (arXiv 2211.10285),
which weights each sample by how unsure the dense model was of it and learns from the dense model's
answers where it was right. Results go to <out>/sessions/<id>/ (results.json, report.md, the models).
`;

/** `--method`'s help: every method of the table, what it scores, needs, and whether it shrinks the model. */
function methodHelp(): string {
  const indent = ' '.repeat(24 + 2 + 17);
  const lines: string[] = [];
  for (const name of PRUNING_METHOD_NAMES) {
    const m = PRUNING_METHODS[name];
    const text =
      `${m.kind}: ${m.scores}; decides from ${m.needs.join(' and ')}` +
      (m.shrinks ? '; also saves the physically smaller model (points/<point>/shrunk/)' : '');
    let line = `${' '.repeat(24)}  ${name.padEnd(16)} `;
    for (const word of text.split(' ')) {
      if (line.length + word.length + 1 > 118 && line.trim().length) {
        lines.push(line.trimEnd());
        line = indent;
      }
      line += `${word} `;
    }
    lines.push(line.trimEnd());
  }
  return lines.join('\n');
}

const HELP_RUN = `fairprune run — prune a model at several sparsities, fine-tune with each loss, measure every
subgroup

Required:
  --model FILE          a TensorFlow.js Layers model.json (weight files beside it), or a Keras .h5 / .keras file
  --data FILE           a CSV with a header row
  --label COL           the label column
  --group COL           a subgroup column; repeat for intersectional groups (--group ethnicity --group gender)

Data (see "fairprune help data" for the full rules):
  --features a,b,c      feature columns in model-input order (default: every other column, in file order)
  --ignore x,y          columns that are not features
  --split-column COL    column holding train / validation (val, valid) / test (default: a column named split)
  --image-column COL    column of image paths, relative to the CSV (default: the column of .png/.jpg/.jpeg/.webp names)
  --classes a,b,c       label values in output order (default: 0..K-1 integers, else sorted text)
  --pixel-scale N       images: pixels are divided by N (default 255 → 0–1; 1 keeps 0–255)
  --reuse-split FILE    use the split of an earlier session (its results.json or folder)

Pruning and fine-tuning:
  --sparsity LIST       target fractions of weights removed (default ${RUN_DEFAULTS.sparsity}; 80% also works)
  --loss LIST           fine-tuning objectives to compare (default ${RUN_DEFAULTS.loss}); group-blind:
                          ce              cross-entropy on the labels
                          pw              performance weighted (Meyer & Wong): weights samples by how unsure the
                                          dense model was, learns its answers where it was right; needs no groups,
                                          so it is the choice when groups are unknown at training time or too
                                          small to estimate
                          kd, pw-weight-only, pw-correction-only   distillation and PW's two ablations
                        group-aware (use the --group columns on the training rows; for groups known at training time):
                          group-balanced  cross-entropy with every group weighing the same in total: each epoch's
                                          batches draw every group equally often; same steps as ce
                          group-dro       Group DRO (Sagawa et al. 2020): raises the weight of the group with the
                                          highest loss as it trains; minimises the worst group's loss
                          ceag            Balancing Act (Hashemizadeh et al. 2024): keeps each group's accuracy drop
                                          within --ceag-tolerance of the overall drop, with one multiplier per group
                          (all three train on group-balanced batches, as many steps as ce)
  --dro-eta X           group-dro: step size of the group weights (default ${RUN_DEFAULTS.droEta})
  --ceag-tolerance X    ceag: how far a group's accuracy drop may exceed the overall drop
                        (default ${RUN_DEFAULTS.ceagTolerance})
  --ceag-dual-lr X      ceag: step size of the multipliers (default ${RUN_DEFAULTS.ceagDualLearningRate})
  --method NAME         ${PRUNING_METHOD_NAMES.join(' | ')} (default ${RUN_DEFAULTS.method}):
${methodHelp()}
  --schedule NAME       one-shot | gradual | iterative (default one-shot): when pruning happens during fine-tuning
  --schedule-begin F    gradual: fraction of fine-tuning steps where sparsity starts rising
                        (default ${RUN_DEFAULTS.scheduleBegin})
  --schedule-end F      gradual: fraction of fine-tuning steps where it reaches the target
                        (default ${RUN_DEFAULTS.scheduleEnd})
  --schedule-power P    gradual: exponent of the polynomial decay (default ${RUN_DEFAULTS.schedulePower})
  --schedule-every N    gradual: steps between mask updates (default ${RUN_DEFAULTS.scheduleEvery});
                        iterative: steps of fine-tuning between pruning rounds (default ${RUN_DEFAULTS.iterativeEvery})
  --schedule-rounds K   iterative: rounds to reach the target, each removing 1/K of it
                        (default ${RUN_DEFAULTS.scheduleRounds})
  --target NAME         filter methods: weights | flops — what --sparsity is a fraction of
                        (default ${RUN_DEFAULTS.target})
  --scope NAME          filter methods: layer (same fraction of filters in each layer) | global
                        (default ${RUN_DEFAULTS.scope})
  --skip-layers LIST    layers left alone: names, first, last, none
                        (default first,last for filter methods, none otherwise)
  --sensitivity LIST    filter methods: first prune each layer alone to these levels (e.g. 0.25,0.5,0.75), measure
                        accuracy and worst-group accuracy on validation rows, and set per-layer sparsity from it
  --sensitivity-tolerance X  worst-group accuracy a layer may lose at its level
                        (default ${RUN_DEFAULTS.sensitivityTolerance})
  --epochs N            fine-tuning epochs per point (default ${RUN_DEFAULTS.epochs})
  --patience N          stop early after N epochs without better validation loss, keep the best (default 0: off)
  --batch-size N        (default ${RUN_DEFAULTS.batchSize})
  --lr X                Adam learning rate, decayed by a cosine (default ${RUN_DEFAULTS.learningRate})
  --pw-min-weight M     PW weight of a sample the dense model was sure of (default ${RUN_DEFAULTS.minWeight})
  --pw-gamma G          PW focus exponent (default ${RUN_DEFAULTS.gamma})
  --seed N              seeds splits, pruning, shuffling and bootstrap (default ${RUN_DEFAULTS.seed})
  --seeds N             fine-tune every sparsity × loss N times with different seeds from the same pruned network
                        (default ${RUN_DEFAULTS.seeds}); the table and report show the mean and spread across runs, and
                        each loss against ce with a 95% interval over seeds × a paired bootstrap of the test rows
  --bootstrap N         bootstrap resamples for the 95% intervals (default ${RUN_DEFAULTS.bootstrap})

Output and engine:
  --out DIR             folder for sessions/ and cache/ (default ${RUN_DEFAULTS.out})
  --backend NAME        ${BACKENDS.join(' | ')}
                        (default auto: tfjs-node-gpu, tfjs-node, wasm, cpu — the first that works)
  --workers N           sweep points run at once, each in a worker thread (default 0: one per core, as free
                        memory allows; 1: one after another). Same results either way; tfjs-node uses 1
  --kernels NAME        fairprune | stock
                        (default ${RUN_DEFAULTS.kernels}, or the FAIRPRUNE_KERNELS environment variable):
                        stock runs tfjs's own kernels only, without Fair Prune's hand-written wasm kernels, heap
                        training steps and fused Adam — slower, and the same numbers up to float rounding; a
                        result that changes with it points at a kernel, not at the model
${RUN_OUTPUT_HELP}
  -h, --help

Example:
  fairprune run --model model/model.json --data arrests.csv --label released --group colour \\
    --sparsity 0.5,0.9 --loss ce,pw
`;

const HELP_TRAIN = `fairprune train — train a small dense baseline (MLP for features, CNN for images) with cross-entropy

Required: --data FILE --label COL --group COL --out DIR
(a new folder: model.json, weights.bin, ${'fairprune.preprocessing.json'})
Data options as for "run" (--features, --ignore, --split-column, --image-column, --classes, --pixel-scale).
Numeric features are standardised and text features one-hot encoded on the training rows; what was
done is saved beside the model and reused by every later "run" on it.
  --image-size HxW      images: the input size (default: the first image's size)
  --channels N          images: 1 (grey) or 3 (RGB) (default: the first image's)
  --epochs N (default 10)  --batch-size N (64)  --lr X (0.003)  --patience N (3)  --seed N (1)  --backend NAME
`;

const HELP_DEMO = `fairprune demo — the method end to end on a real biased image task

Builds a coloured-MNIST data set from real MNIST digits shipped with Fair Prune: the subgroup is the ink colour,
rare in training (5% "cool" ink: dark blue on cream, the inverse polarity of the common bright orange
on dark grey) and balanced in test. The rare group's inputs are shifted, not its labels: the digit is the
label for both groups, so this is a covariate shift of a minority, not the label-correlated shortcut of
the paper's biased CIFAR variants. Trains a small CNN, prunes it to 50/80/90% by magnitude, fine-tunes
each with cross-entropy, the PW loss and the group-balanced objective, prints the comparison with the
recommended point, and writes the session report.
  --out DIR    (default .fairprune-demo)   --quick   a smaller, faster run (for tests)   --backend NAME
  --workers N  sweep points at once (default 0: one per core)
`;

type Values = Record<string, string | boolean | string[] | undefined>;

function list(v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  const items = (Array.isArray(v) ? v : [v])
    .flatMap((s) => String(s).split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  return items.length ? items : undefined;
}

function num(values: Values, key: string, def: number, opts: { integer?: boolean; min?: number } = {}): number {
  const raw = values[key];
  if (raw === undefined) return def;
  const v = Number(raw);
  if (!Number.isFinite(v) || (opts.integer && !Number.isInteger(v)) || (opts.min !== undefined && v < opts.min)) {
    const what = `${opts.integer ? 'a whole number' : 'a number'}${opts.min !== undefined ? ` ≥ ${opts.min}` : ''}`;
    throw new UserError(`'${raw}' is not ${what}.`, { field: `--${key}`, fix: `give e.g. --${key} ${def}` });
  }
  return v;
}

function required(values: Values, key: string, example: string): string {
  const v = values[key];
  if (typeof v !== 'string' || !v)
    throw new UserError('this option is required.', { field: `--${key}`, fix: `add --${key} ${example}` });
  return v;
}

function backendOf(values: Values): BackendPreference {
  const b = (values.backend as string | undefined) ?? 'auto';
  if (!BACKENDS.includes(b as BackendPreference))
    throw new UserError(`unknown backend '${b}'.`, { field: '--backend', fix: `use one of ${BACKENDS.join(', ')}.` });
  return b as BackendPreference;
}

const DATA_OPTIONS = {
  data: { type: 'string' },
  label: { type: 'string' },
  group: { type: 'string', multiple: true },
  features: { type: 'string' },
  ignore: { type: 'string' },
  'split-column': { type: 'string' },
  'image-column': { type: 'string' },
  classes: { type: 'string' },
  'pixel-scale': { type: 'string' },
  seed: { type: 'string' },
  backend: { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  patience: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** `--data`, `--label`, `--group` and the other data options, as `run` and `train` both take them. */
function dataSpecFromArgs(values: Values, cwd: string): DataSpec {
  const groups = list(values.group);
  if (!groups)
    throw new UserError('at least one subgroup column is required.', {
      field: '--group',
      fix: 'add --group COLUMN (repeat it for intersectional groups).',
    });
  return {
    csvPath: path.resolve(cwd, required(values, 'data', 'path/to/data.csv')),
    label: required(values, 'label', 'COLUMN'),
    groups,
    features: list(values.features),
    ignore: list(values.ignore),
    splitColumn: values['split-column'] as string | undefined,
    imageColumn: values['image-column'] as string | undefined,
    classes: list(values.classes),
    pixelScale: values['pixel-scale'] === undefined ? undefined : num(values, 'pixel-scale', 255, { min: 1e-9 }),
  };
}

function parse(
  argv: string[],
  options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>,
  command: string,
): Values {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as Values;
  } catch (e) {
    throw new UserError((e as Error).message.replace(/\. To specify.*$/, '.'), {
      field: `fairprune ${command}`,
      fix: `see fairprune help ${command}`,
    });
  }
}

export function runRequestFromArgs(argv: string[], cwd = process.cwd()): RunRequest | 'help' {
  const values = parse(
    argv,
    {
      ...DATA_OPTIONS,
      model: { type: 'string' },
      sparsity: { type: 'string' },
      loss: { type: 'string' },
      method: { type: 'string' },
      'pw-min-weight': { type: 'string' },
      'pw-gamma': { type: 'string' },
      'dro-eta': { type: 'string' },
      seeds: { type: 'string' },
      'ceag-tolerance': { type: 'string' },
      'ceag-dual-lr': { type: 'string' },
      bootstrap: { type: 'string' },
      out: { type: 'string' },
      'reuse-split': { type: 'string' },
      workers: { type: 'string' },
      kernels: { type: 'string' },
      ...STRUCTURED_OPTIONS,
      ...RUN_OUTPUT_OPTIONS,
    },
    'run',
  );
  if (values.help) return 'help';
  const data = dataSpecFromArgs(values, cwd);
  const method = pruningMethod((values.method as string | undefined) ?? RUN_DEFAULTS.method);
  const resolve = (p: string) => path.resolve(cwd, p);
  return {
    modelPath: resolve(required(values, 'model', 'path/to/model.json')),
    data,
    reuseSplitFrom: values['reuse-split'] ? resolve(values['reuse-split'] as string) : undefined,
    sparsities: parseSparsities((values.sparsity as string | undefined) ?? RUN_DEFAULTS.sparsity),
    losses: parseLossNames((values.loss as string | undefined) ?? RUN_DEFAULTS.loss),
    method: method.name,
    epochs: num(values, 'epochs', RUN_DEFAULTS.epochs, { integer: true, min: 0 }),
    batchSize: num(values, 'batch-size', RUN_DEFAULTS.batchSize, { integer: true, min: 1 }),
    learningRate: num(values, 'lr', RUN_DEFAULTS.learningRate, { min: 0 }),
    patience: num(values, 'patience', RUN_DEFAULTS.patience, { integer: true, min: 0 }),
    seed: num(values, 'seed', RUN_DEFAULTS.seed, { integer: true }),
    seeds: num(values, 'seeds', RUN_DEFAULTS.seeds, { integer: true, min: 1 }),
    minWeight: num(values, 'pw-min-weight', RUN_DEFAULTS.minWeight, { min: 0 }),
    gamma: num(values, 'pw-gamma', RUN_DEFAULTS.gamma, { min: 0 }),
    droEta: num(values, 'dro-eta', RUN_DEFAULTS.droEta, { min: 0 }),
    ceagTolerance: num(values, 'ceag-tolerance', RUN_DEFAULTS.ceagTolerance, { min: 0 }),
    ceagDualLearningRate: num(values, 'ceag-dual-lr', RUN_DEFAULTS.ceagDualLearningRate, { min: 1e-12 }),
    bootstrapResamples: num(values, 'bootstrap', RUN_DEFAULTS.bootstrap, { integer: true, min: 1 }),
    backend: backendOf(values),
    kernels: resolveKernels(values.kernels as string | undefined),
    workers: num(values, 'workers', RUN_DEFAULTS.workers, { integer: true, min: 0 }),
    outDir: resolve((values.out as string | undefined) ?? RUN_DEFAULTS.out),
    ...structuredRequest(values, method),
  };
}

const STRUCTURED_OPTIONS = {
  schedule: { type: 'string' },
  'schedule-begin': { type: 'string' },
  'schedule-end': { type: 'string' },
  'schedule-power': { type: 'string' },
  'schedule-every': { type: 'string' },
  'schedule-rounds': { type: 'string' },
  target: { type: 'string' },
  scope: { type: 'string' },
  'skip-layers': { type: 'string' },
  sensitivity: { type: 'string' },
  'sensitivity-tolerance': { type: 'string' },
} as const;

/** The schedule/target/skip/sensitivity options; absent ones leave the request as before. */
function structuredRequest(values: Values, method: PruningMethod): Partial<RunRequest> {
  const out: Partial<RunRequest> = {};
  const structured = method.kind === 'structured';
  const name = values.schedule as string | undefined;
  if (name !== undefined) {
    const iterative = name === 'iterative';
    out.schedule = normalizeSchedule({
      name,
      begin: num(values, 'schedule-begin', RUN_DEFAULTS.scheduleBegin),
      end: num(values, 'schedule-end', RUN_DEFAULTS.scheduleEnd),
      power: num(values, 'schedule-power', RUN_DEFAULTS.schedulePower),
      frequency: num(values, 'schedule-every', iterative ? RUN_DEFAULTS.iterativeEvery : RUN_DEFAULTS.scheduleEvery, {
        integer: true,
        min: 1,
      }),
      rounds: num(values, 'schedule-rounds', RUN_DEFAULTS.scheduleRounds, { integer: true, min: 1 }),
    });
  }
  const needStructured = (opt: string) => {
    if (!structured)
      throw new UserError(`${opt} applies to the filter methods only.`, {
        field: opt,
        fix: `add ${methodOptions('structured')}, or drop ${opt}.`,
      });
  };
  if (values.target !== undefined || values.scope !== undefined) {
    needStructured(values.target !== undefined ? '--target' : '--scope');
    const metric = (values.target as string | undefined) ?? RUN_DEFAULTS.target;
    const scope = (values.scope as string | undefined) ?? RUN_DEFAULTS.scope;
    if (metric !== 'weights' && metric !== 'flops')
      throw new UserError(`unknown target '${metric}'.`, { field: '--target', fix: 'use weights or flops.' });
    if (scope !== 'layer' && scope !== 'global')
      throw new UserError(`unknown scope '${scope}'.`, { field: '--scope', fix: 'use layer or global.' });
    out.target = { metric, scope };
  }
  const skip = list(values['skip-layers']);
  if (skip) out.skipLayers = skip;
  if (values.sensitivity !== undefined) {
    needStructured('--sensitivity');
    out.sensitivityLevels = parseSparsities(String(values.sensitivity), '--sensitivity');
    out.sensitivityTolerance = num(values, 'sensitivity-tolerance', RUN_DEFAULTS.sensitivityTolerance, { min: 0 });
  }
  return out;
}

async function cmdRun(argv: string[]): Promise<number> {
  const req = runRequestFromArgs(argv);
  if (req === 'help') {
    console.log(HELP_RUN);
    return 0;
  }
  checkOutputFolder(req.outDir, '--out');
  cleanStaleSessionTemps(req.outDir);
  const output = runOutput(parseArgs({ args: argv, options: RUN_OUTPUT_OPTIONS, strict: false }).values);
  const controller = new AbortController();
  // Ctrl-C and a terminating CI runner or `kill` alike: the session is marked cancelled, its finished points kept
  process.once('SIGINT', () => controller.abort());
  process.once('SIGTERM', () => controller.abort());
  let resultsPath = '';
  const results = await runSession(req, {
    signal: controller.signal,
    emit: (e) => {
      if (e.type === 'finished') resultsPath = e.resultsPath;
      output.emit(e);
    },
  });
  return output.finish(results, resultsPath);
}

async function cmdTrain(argv: string[]): Promise<number> {
  const values = parse(
    argv,
    { ...DATA_OPTIONS, out: { type: 'string' }, 'image-size': { type: 'string' }, channels: { type: 'string' } },
    'train',
  );
  if (values.help) {
    console.log(HELP_TRAIN);
    return 0;
  }
  const data = dataSpecFromArgs(values, process.cwd());
  let imageShape: number[] | undefined;
  if (values['image-size'] || values.channels) {
    const m = /^(\d+)x(\d+)$/.exec(String(values['image-size'] ?? ''));
    if (!m)
      throw new UserError(`'${values['image-size'] ?? ''}' is not HEIGHTxWIDTH.`, {
        field: '--image-size',
        fix: 'e.g. --image-size 28x28 --channels 3',
      });
    imageShape = [Number(m[1]), Number(m[2]), num(values, 'channels', 3, { integer: true, min: 1 })];
  }
  const out = path.resolve(required(values, 'out', 'models/baseline'));
  checkOutputFolder(out, '--out');
  const result = await trainBaseline(
    {
      data: { ...data, seed: num(values, 'seed', 1, { integer: true }) },
      outDir: out,
      imageShape,
      epochs: num(values, 'epochs', 10, { integer: true, min: 1 }),
      batchSize: num(values, 'batch-size', 64, { integer: true, min: 1 }),
      learningRate: num(values, 'lr', 0.003, { min: 0 }),
      patience: num(values, 'patience', 3, { integer: true, min: 0 }),
      backend: backendOf(values),
    },
    { log: (m) => console.error(m), onProgress: progressPrinterForTraining() },
  );
  process.stderr.write('\n');
  console.log(
    `trained ${result.parameters.toLocaleString('en')} parameters ` +
      `in ${result.training.seconds.toFixed(1)} s ` +
      `on ${backendSummary(result.backend)}`,
  );
  const byGroup = result.test.groups.map((g) => `${g.group} ${pct(g.accuracy.value)} (n=${g.n})`);
  console.log(`test accuracy ${pct(result.test.accuracy.value)}; ${byGroup.join(', ')}`);
  console.log(`saved ${result.modelPath}`);
  return 0;
}

function progressPrinterForTraining() {
  let last = 0;
  return (p: {
    epoch: number;
    epochs: number;
    step: number;
    steps: number;
    trainLoss: number;
    samplesPerSecond: number;
  }) => {
    if (process.stderr.isTTY)
      process.stderr.write(
        `\r\x1b[Kepoch ${p.epoch}/${p.epochs} step ${p.step}/${p.steps} ` +
          `loss ${p.trainLoss.toFixed(4)} ${Math.round(p.samplesPerSecond)} ` +
          'samples/s',
      );
    else if (Date.now() - last > 5000) {
      last = Date.now();
      process.stderr.write(`epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.steps} loss ${p.trainLoss.toFixed(4)}\n`);
    }
  };
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return cmdRun(rest);
    case 'train':
      return cmdTrain(rest);
    case 'demo':
      return runDemo(rest);
    case 'commit':
      return cmdCommit(rest);
    case 'check':
      return cmdCheck(rest);
    case 'help':
    case '--help':
    case '-h':
    case undefined: {
      const topic = rest[0];
      if (topic === 'commit' || topic === 'check') {
        console.log(topic === 'commit' ? HELP_COMMIT : HELP_CHECK);
        return 0;
      }
      console.log(
        topic === 'run'
          ? HELP_RUN
          : topic === 'train'
            ? HELP_TRAIN
            : topic === 'demo'
              ? HELP_DEMO
              : topic === 'data'
                ? dataContractHelp()
                : HELP_MAIN,
      );
      return command === undefined ? 2 : 0;
    }
    case '--version':
      console.log(ENGINE_VERSION);
      return 0;
    default:
      throw new UserError(`unknown command '${command}'.`, {
        field: 'fairprune',
        fix: 'use run, train, demo, commit, check or help.',
      });
  }
}

export { HELP_RUN, HELP_TRAIN, HELP_DEMO };

/**
 * Runs the command line and exits with its status: 0 done, 1 a user mistake or a failure, 2 usage
 * shown, 130 cancelled. `bin/fairprune` (the installed `fairprune` command) calls this; so does
 * `node dist/cli.js`.
 */
export function runCli(argv: string[]): void {
  main(argv).then(
    (code) => process.exit(code),
    (e) => {
      if (e instanceof UserError) console.error(`error: ${e.message}`);
      else if (e instanceof CancelledError)
        console.error('cancelled: the finished points are kept in the session folder');
      else console.error(e);
      process.exit(e instanceof CancelledError ? 130 : 1);
    },
  );
}

if (require.main === module) runCli(process.argv.slice(2));
