/**
 * `fairprune demo`: the method end to end on a real biased image task (coloured MNIST, the ink
 * colour as the subgroup, rare in training and balanced in test), with the real engine.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import type { BackendPreference } from '../protocol/results';
import { writeBiasedMnist } from '../core/demo/biased-mnist';
import { trainBaseline } from '../core/baseline';
import { runSession } from '../core/session';
import { UserError } from '../core/errors';
import { pct } from '../core/report';
import { RUN_DEFAULTS } from './defaults';
import { printResults, progressPrinter } from './output';
import { checkOutputFolder } from '../core/output-folder';

export interface DemoPlan {
  trainCount: number;
  validationCount: number;
  testCount: number;
  baselineEpochs: number;
  sparsities: number[];
  fineTuneEpochs: number;
}

export const FULL_DEMO: DemoPlan = { trainCount: 6000, validationCount: 1000, testCount: 2000, baselineEpochs: 6, sparsities: [0.5, 0.8, 0.9], fineTuneEpochs: 3 };
/** What the demo compares: the group-blind losses and the group-aware objective that kept the rare group best in our runs. */
export const DEMO_LOSSES = ['ce', 'pw', 'group-balanced'] as const;
export const QUICK_DEMO: DemoPlan = { trainCount: 1200, validationCount: 200, testCount: 400, baselineEpochs: 2, sparsities: [0.8], fineTuneEpochs: 1 };

export async function runDemo(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: argv, options: { out: { type: 'string' }, quick: { type: 'boolean' }, backend: { type: 'string' }, workers: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true }).values;
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
  if (!Number.isInteger(workers) || workers < 0) throw new UserError(`'${values.workers}' is not a whole number of workers.`, { field: '--workers', fix: 'give 0 (one per core), 1 (one point at a time) or more.' });
  const seed = 7;
  const t0 = Date.now();
  const log = (m: string) => console.error(m);

  log(`1/3 writing the biased MNIST data set to ${path.join(out, 'data')}`);
  const data = await writeBiasedMnist({ outDir: path.join(out, 'data'), seed, trainCount: plan.trainCount, validationCount: plan.validationCount, testCount: plan.testCount, minorityFraction: 0.05 });
  for (const [split, counts] of Object.entries(data.counts)) log(`    ${split}: ${Object.entries(counts).map(([g, n]) => `ink=${g} ${n}`).join(', ')}`);

  const modelDir = path.join(out, values.quick ? 'model-quick' : 'model');
  const modelPath = path.join(modelDir, 'model.json');
  if (fs.existsSync(modelPath)) {
    log(`2/3 reusing the dense CNN in ${modelDir} (delete it to retrain)`);
  } else {
    log(`2/3 training the dense CNN (${plan.baselineEpochs} epochs)`);
    const base = await trainBaseline(
      {
        data: { csvPath: data.csvPath, label: 'digit', groups: ['ink'], seed },
        outDir: modelDir,
        epochs: plan.baselineEpochs,
        batchSize: 64,
        learningRate: 0.003,
        patience: 0,
        backend,
      },
      { log },
    );
    log(`    dense test accuracy ${pct(base.test.accuracy.value)}: ${base.test.groups.map((g) => `${g.group} ${pct(g.accuracy.value)}`).join(', ')} (${base.training.seconds.toFixed(0)} s)`);
  }

  log(`3/3 pruning to ${plan.sparsities.map((s) => pct(s, 0)).join(', ')}; fine-tuning with ${DEMO_LOSSES.join(', ')}`);
  let resultsPath = '';
  const printer = progressPrinter();
  const results = await runSession(
    {
      modelPath,
      dataPath: data.csvPath,
      label: 'digit',
      groups: ['ink'],
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
