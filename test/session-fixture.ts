/** A small binary task with a minority region, and a model trained on it "elsewhere" (tfjs's own fit). */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { DataSpec, RunRequest } from '../src/protocol/engine';
import type { SessionResults } from '../src/protocol/results';
import { saveModel, topologyOf } from '../src/core/model-io';
import { Rng } from '../src/core/rng';
import { useCpu } from './helpers';

/** Writes the CSV and a model trained on it "elsewhere" (here: tfjs's own fit, inputs x1, x2, x3).
 *  `messy` (the default) shuffles the columns, adds text columns and oddly spelled splits, for the
 *  engine's tests; `plain` writes x1,x2,x3,region,decision,split, which needs no options at all. */
export async function makeFixture(dir: string, n = 900, layout: 'messy' | 'plain' = 'messy') {
  const rng = new Rng(11);
  const lines = [layout === 'plain' ? 'x1,x2,x3,region,decision,split' : '"id","note",x2,region,x1,decision,Split,x3'];
  const splits = ['Train', 'train', 'VAL', 'Test', 'TEST', 'train', 'train', 'train', 'Valid', 'test'];
  const xs: number[][] = [];
  const ys: number[] = [];
  for (let i = 0; i < n; i++) {
    const south = i % 4 === 0; // the minority region, a quarter of the rows
    const x1 = rng.normal() + (south ? 0.8 : 0);
    const x2 = rng.normal();
    const x3 = rng.normal() * 0.5;
    const score = south ? 1.2 * x1 - x2 + 0.3 * rng.normal() - 0.8 : x1 + x2 - 0.5 * x3 + 0.3 * rng.normal();
    const denied = score > 0 ? 1 : 0;
    xs.push([x1, x2, x3]);
    ys.push(denied);
    if (layout === 'plain')
      lines.push(
        `${x1},${x2},${x3},${south ? 'south' : 'north'},${denied ? 'denied' : 'approved'},${splits[i % 10].toLowerCase()}`,
      );
    else
      lines.push(
        `"r${i}","free text, with a comma and ""quotes""",${x2},${south ? 'south' : 'north'},${x1},${denied ? 'denied' : 'approved'},${splits[i % 10]},${x3}`,
      );
  }
  const csv = path.join(dir, 'loans.csv');
  fs.writeFileSync(csv, lines.join('\r\n') + '\r\n');
  await useCpu();
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({
        inputShape: [3],
        units: 16,
        activation: 'relu',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }),
      }),
      tfl.layers.dense({
        units: 1,
        activation: 'sigmoid',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 4 }),
      }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(0.03), loss: 'binaryCrossentropy' });
  const x = tf.tensor2d(xs);
  const y = tf.tensor2d(ys, [n, 1]);
  await model.fit(x, y, { epochs: 15, batchSize: 64, verbose: 0, shuffle: false }); // deterministic: the same model every run
  x.dispose();
  y.dispose();
  const modelDir = path.join(dir, 'model');
  await saveModel(model, modelDir, topologyOf(model));
  model.dispose();
  return { csv, modelPath: path.join(modelDir, 'model.json') };
}

/** Changes to the fixture's request; `data` changes only the data fields it names. */
export type RequestChanges = Partial<Omit<RunRequest, 'data'>> & { data?: Partial<DataSpec> };

export function request(modelPath: string, csv: string, outDir: string, extra: RequestChanges = {}): RunRequest {
  return {
    modelPath,
    sparsities: [0.5, 0.9],
    losses: ['ce', 'pw'],
    method: 'magnitude-layer',
    epochs: 2,
    batchSize: 32,
    learningRate: 0.01,
    patience: 0,
    seed: 5,
    minWeight: 0.75,
    gamma: 5,
    bootstrapResamples: 200,
    backend: 'cpu',
    outDir,
    ...extra,
    data: {
      csvPath: csv,
      label: 'decision',
      groups: ['region'],
      features: ['x1', 'x2', 'x3'],
      ignore: ['id', 'note'],
      splitColumn: 'Split',
      ...extra.data,
    },
  };
}

/**
 * A finished session made as a user makes one from a shell: `fairprune run` (dist/cli.js) on a plain
 * fixture of `rows` rows in `workspace`, grouped by region, into `workspace/.fairprune`. Returns its
 * folder and results.json; fails with the command's output if it does not exit 0.
 */
export async function cliSession(
  workspace: string,
  cli: string,
  o: { rows: number; sparsity: string; loss: string; epochs: number; bootstrap: number; lr?: number },
): Promise<{ sessionDir: string; results: SessionResults }> {
  const { csv, modelPath } = await makeFixture(workspace, o.rows, 'plain');
  const out = path.join(workspace, '.fairprune');
  const args = [
    cli,
    'run',
    '--model',
    modelPath,
    '--data',
    csv,
    '--label',
    'decision',
    '--group',
    'region',
    '--sparsity',
    o.sparsity,
    '--loss',
    o.loss,
    '--epochs',
    String(o.epochs),
    ...(o.lr === undefined ? [] : ['--lr', String(o.lr)]),
    '--bootstrap',
    String(o.bootstrap),
    '--out',
    out,
  ];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) throw new Error(`fairprune run failed (status ${r.status}):\n${r.stdout}\n${r.stderr}`);
  const sessions = path.join(out, 'sessions');
  const sessionDir = path.join(sessions, fs.readdirSync(sessions)[0]);
  return {
    sessionDir,
    results: JSON.parse(fs.readFileSync(path.join(sessionDir, 'results.json'), 'utf8')) as SessionResults,
  };
}
