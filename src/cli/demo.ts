/**
 * `fairprune demo`: the method end to end on a real biased image task (coloured MNIST, the ink
 * colour as the subgroup, rare in training and balanced in test), with the real engine.
 */
import * as path from 'path';
import { parseArgs } from 'util';
import type { BackendPreference } from '../protocol/results';
import { prepareDemo } from '../core/demo/prepare';
import { DEMO_LOSSES, DEMO_SEED, FULL_DEMO, QUICK_DEMO } from '../core/demo/plan';
import { runSession } from '../core/session';
import { UserError } from '../core/errors';
import { pct } from '../core/report';
import { RUN_DEFAULTS } from './defaults';
import { printResults, progressPrinter } from './output';
import { checkOutputFolder } from '../core/output-folder';

export async function runDemo(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: {
        out: { type: 'string' },
        quick: { type: 'boolean' },
        backend: { type: 'string' },
        workers: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (e) {
    throw new UserError((e as Error).message, { field: 'fairprune demo', fix: 'see fairprune help demo' });
  }
  if (values.help) {
    console.log('fairprune demo [--out DIR] [--quick] [--backend NAME] [--workers N]');
    return 0;
  }
  const plan = values.quick ? QUICK_DEMO : FULL_DEMO;
  const out = path.resolve((values.out as string | undefined) ?? '.fairprune-demo');
  checkOutputFolder(out, '--out');
  const backend = ((values.backend as string | undefined) ?? 'auto') as BackendPreference;
  const workers = values.workers === undefined ? RUN_DEFAULTS.workers : Number(values.workers);
  if (!Number.isInteger(workers) || workers < 0)
    throw new UserError(`'${values.workers}' is not a whole number of workers.`, {
      field: '--workers',
      fix: 'give 0 (one per core), 1 (one point at a time) or more.',
    });
  const seed = DEMO_SEED;
  const t0 = Date.now();
  const log = (m: string) => console.error(m);
  let step = 0;
  const demo = await prepareDemo(
    {
      dataDir: path.join(out, 'data'),
      modelDir: path.join(out, values.quick ? 'model-quick' : 'model'),
      plan,
      backend,
    },
    { log, step: (m) => log(`${++step}/3 ${m}`) },
  );

  log(`3/3 pruning to ${plan.sparsities.map((s) => pct(s, 0)).join(', ')}; fine-tuning with ${DEMO_LOSSES.join(', ')}`);
  let resultsPath = '';
  const printer = progressPrinter();
  const results = await runSession(
    {
      modelPath: demo.modelPath,
      data: { csvPath: demo.csvPath, label: demo.label, groups: demo.groups },
      sparsities: plan.sparsities,
      losses: [...DEMO_LOSSES],
      method: 'magnitude-layer',
      epochs: plan.fineTuneEpochs,
      batchSize: 64,
      learningRate: RUN_DEFAULTS.learningRate,
      patience: 0,
      seed,
      minWeight: RUN_DEFAULTS.minWeight,
      gamma: RUN_DEFAULTS.gamma,
      bootstrapResamples: RUN_DEFAULTS.bootstrap,
      backend,
      workers,
      outDir: out,
    },
    {
      emit: (e) => {
        if (e.type === 'finished') resultsPath = e.resultsPath;
        printer(e);
      },
    },
  );
  printResults(results, resultsPath);
  console.log(`demo finished in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return 0;
}
