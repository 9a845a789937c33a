/**
 * The demo a user can try without a model of their own: the biased MNIST data set (biased-mnist.ts)
 * and a small CNN trained on it, written into a folder, ready for a pruning session. `fairprune demo`
 * and the editor's "Try the Demo" both start here. Each part appears whole or not at all (the data
 * folder is renamed into place, the model folder is written atomically) and nothing of the user's is
 * overwritten: a folder that holds something else is refused, an earlier demo is reused.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { BackendPreference } from '../../protocol/results';
import { writeBiasedMnist } from './biased-mnist';
import type { BiasedMnistResult } from './biased-mnist';
import { BIASED_MNIST_COLUMNS, DEMO_MINORITY_FRACTION, DEMO_SEED } from './plan';
import type { DemoDataPlan } from './plan';
import { trainBaseline } from '../baseline';
import { pct } from '../report';

export interface PreparedDemo {
  csvPath: string;
  modelPath: string;
  label: string;
  groups: string[];
  data: BiasedMnistResult;
  reusedModel: boolean;
}

/** Writes (or reuses) the demo's data set in `dataDir` and its trained dense CNN in `modelDir`. */
export async function prepareDemo(
  opts: { dataDir: string; modelDir: string; plan: DemoDataPlan; backend: BackendPreference },
  hooks: { log?: (m: string) => void; step?: (m: string) => void; signal?: AbortSignal } = {},
): Promise<PreparedDemo> {
  const log = hooks.log ?? (() => {});
  const step = hooks.step ?? log;
  const { plan } = opts;
  const label = BIASED_MNIST_COLUMNS.label;
  const groups = [BIASED_MNIST_COLUMNS.group];
  step(`writing the biased MNIST data set to ${opts.dataDir}`);
  const data = await writeBiasedMnist({
    outDir: opts.dataDir,
    seed: DEMO_SEED,
    trainCount: plan.trainCount,
    validationCount: plan.validationCount,
    testCount: plan.testCount,
    minorityFraction: DEMO_MINORITY_FRACTION,
    signal: hooks.signal,
  });
  for (const [split, counts] of Object.entries(data.counts))
    log(
      `    ${split}: ${Object.entries(counts)
        .map(([g, n]) => `ink=${g} ${n}`)
        .join(', ')}`,
    );

  const modelPath = path.join(opts.modelDir, 'model.json');
  if (fs.existsSync(modelPath)) {
    step(`reusing the dense CNN in ${opts.modelDir} (delete it to retrain)`);
    return { csvPath: data.csvPath, modelPath, label, groups, data, reusedModel: true };
  }
  step(`training the dense CNN (${plan.baselineEpochs} epochs)`);
  const base = await trainBaseline(
    {
      data: { csvPath: data.csvPath, label, groups, seed: DEMO_SEED },
      outDir: opts.modelDir,
      epochs: plan.baselineEpochs,
      batchSize: 64,
      learningRate: 0.003,
      patience: 0,
      backend: opts.backend,
    },
    { log, signal: hooks.signal },
  );
  const byGroup = base.test.groups.map((g) => `${g.group} ${pct(g.accuracy.value)}`).join(', ');
  log(
    `    dense test accuracy ${pct(base.test.accuracy.value)}: ${byGroup} ` + `(${base.training.seconds.toFixed(0)} s)`,
  );
  return { csvPath: data.csvPath, modelPath, label, groups, data, reusedModel: false };
}
