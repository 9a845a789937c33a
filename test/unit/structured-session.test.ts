/**
 * Structured pruning through a whole session: the shrunk model saved beside the masked one is an
 * ordinary smaller model that tfjs loads and that predicts what the masked model predicts; FLOPs
 * and parameters recorded match a recount of the saved files; first/last layers are left alone;
 * latency and its sentence are recorded; the sensitivity scan feeds the per-layer allocation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { runSession } from '../../src/core/session';
import { UserError } from '../../src/core/errors';
import { saveModel, topologyOf } from '../../src/core/model-io';
import { tempDir, useCpu } from '../helpers';
import { makeFixture, request } from '../session-fixture';

async function loadSaved(dir: string): Promise<tfl.LayersModel> {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const weights = fs.readFileSync(path.join(dir, json.weightsManifest[0].paths[0]));
  return tfl.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest[0].weights,
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.length),
    }),
  );
}

async function mlpModel(dir: string): Promise<string> {
  await useCpu();
  const init = (seed: number) => tfl.initializers.glorotUniform({ seed });
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [3], units: 16, activation: 'relu', kernelInitializer: init(1), name: 'in16' }),
      tfl.layers.dense({ units: 12, activation: 'relu', kernelInitializer: init(2), name: 'mid12' }),
      tfl.layers.dense({ units: 10, activation: 'sigmoid', kernelInitializer: init(3), name: 'mid10' }),
      tfl.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: init(4), name: 'out' }),
    ],
  });
  const modelDir = path.join(dir, 'mlp');
  await saveModel(model, modelDir, topologyOf(model));
  model.dispose();
  return path.join(modelDir, 'model.json');
}

test('filter pruning in a session: the shrunk model is smaller, loads, and predicts what the masked one does', async () => {
  const dir = tempDir();
  const { csv } = await makeFixture(dir, 400);
  const modelPath = await mlpModel(dir);
  const x = tf.tensor2d(
    fs
      .readFileSync(csv, 'utf8')
      .trim()
      .split(/\r\n/)
      .slice(1)
      .map((line) => {
        const cells = line.match(/("([^"]|"")*"|[^,]*)(,|$)/g)!.map((c) => c.replace(/,$/, ''));
        return [Number(cells[4]), Number(cells[2]), Number(cells[7])]; // x1, x2, x3
      }),
  );

  for (const extra of [
    {
      method: 'taylor-filter' as const,
      schedule: { name: 'gradual' as const, begin: 0, end: 0.5, frequency: 3, power: 3 },
      target: { metric: 'flops' as const, scope: 'global' as const },
      losses: ['pw' as const],
    },
    {
      method: 'l1-filter' as const,
      schedule: { name: 'iterative' as const, frequency: 4, rounds: 2 },
      losses: ['ce' as const],
      sensitivityLevels: [0.25, 0.5],
      sensitivityTolerance: 0.05,
    },
  ]) {
    const results = await runSession(
      request(modelPath, csv, path.join(dir, `fp-${extra.method}`), { sparsities: [0.5], epochs: 2, ...extra }),
    );
    assert.equal(results.status, 'completed');
    assert.equal(results.points.length, 1);
    const p = results.points[0];
    const st = p.structure!;
    assert.ok(st, 'structure recorded');
    assert.deepEqual(st.skipped.sort(), ['in16', 'out']);
    assert.equal(st.layers.find((l) => l.layer === 'in16')!.kept, 16);
    assert.ok(st.reached >= 0.5 - 1e-9, `reached ${st.reached}`);
    assert.ok(st.modelDir, 'a shrunk model was saved');
    const sessionDir = path.dirname(
      path.join(dir, `fp-${extra.method}`, 'sessions', results.sessionId, 'results.json'),
    );
    const masked = await loadSaved(path.join(sessionDir, p.modelDir));
    const shrunk = await loadSaved(path.join(sessionDir, st.modelDir!));
    for (const l of st.layers) {
      const cfg = shrunk.getLayer(l.layer).getConfig() as { units: number };
      assert.equal(cfg.units, l.kept);
    }
    assert.ok(fs.existsSync(path.join(sessionDir, st.modelDir!, 'model.json')));
    // equal predictions (probabilities, output activation included) within float tolerance
    const diff = tf.tidy(
      () => tf.max(tf.abs(tf.sub(masked.predict(x) as tf.Tensor, shrunk.predict(x) as tf.Tensor))).dataSync()[0],
    );
    assert.ok(diff < 1e-5, `saved shrunk vs masked: ${diff}`);
    // FLOPs and parameters: recorded values equal a recount of the saved files
    // By hand, per sample: a Dense layer of i inputs and u units costs 2·i·u multiply-adds, u bias adds and
    // u activations (relu, sigmoid); the engine counts the logit model, so the output's sigmoid is left out.
    // Dense: 3→16 relu (2·3·16 + 32 = 128), 16→12 relu (408), 12→10 sigmoid (260), 10→1 (21): 817.
    assert.equal(results.model.flops, 817);
    assert.equal(p.cost!.flopsBefore, 817);
    const kept = (layer: string, units: number) => st.layers.find((l) => l.layer === layer)?.kept ?? units;
    const [k16, k12, k10] = [kept('in16', 16), kept('mid12', 12), kept('mid10', 10)];
    assert.equal(k16, 16);
    assert.equal(
      p.cost!.flopsAfter,
      2 * 3 * k16 + 2 * k16 + (2 * k16 * k12 + 2 * k12) + (2 * k12 * k10 + 2 * k10) + (2 * k10 + 1),
    );
    assert.ok(p.cost!.flopsAfter < p.cost!.flopsBefore);
    assert.equal(p.cost!.parametersAfter, shrunk.countParams());
    assert.equal(p.cost!.parametersBefore, masked.countParams());
    assert.equal(st.size!.parameters, shrunk.countParams());
    if (extra.target?.metric === 'flops') assert.ok(1 - p.cost!.flopsAfter / p.cost!.flopsBefore >= 0.5 - 1e-9);
    // latency measured on the session's backend, with its sentence in the report
    assert.equal(p.latency!.backend, 'cpu');
    assert.ok(p.latency!.denseMs > 0 && p.latency!.prunedMs > 0);
    const report = fs.readFileSync(path.join(sessionDir, 'report.md'), 'utf8');
    assert.ok(report.includes(p.latency!.sentence));
    assert.ok(report.includes('FLOPs/sample'));
    assert.equal(results.config.schedule!.name, extra.schedule.name);
    if (extra.sensitivityLevels) {
      const sv = results.sensitivity!;
      assert.equal(sv.split, 'validation');
      assert.deepEqual(
        sv.rows.map((r) => `${r.layer}@${r.level}`),
        ['mid12@0.25', 'mid12@0.5', 'mid10@0.25', 'mid10@0.5'],
      );
      assert.ok(sv.allocation && Object.keys(sv.allocation).length === 2);
    }
    masked.dispose();
    shrunk.dispose();
  }
  x.dispose();
});

test('a sensitivity scan is refused with a global scope (it would be ignored) and with an unstructured method, before any session folder', async () => {
  const dir = tempDir();
  const { csv, modelPath } = await makeFixture(dir, 300);
  const out = path.join(dir, '.fairprune');
  await assert.rejects(
    runSession(
      request(modelPath, csv, out, {
        method: 'l1-filter',
        target: { metric: 'weights', scope: 'global' },
        sensitivityLevels: [0.5],
      }),
    ),
    (e: unknown) => e instanceof UserError && e.field === '--scope' && /--scope layer/.test(e.message),
  );
  await assert.rejects(
    runSession(request(modelPath, csv, out, { sensitivityLevels: [0.5] })),
    (e: unknown) => e instanceof UserError && e.field === '--sensitivity',
  );
  assert.equal(fs.existsSync(path.join(out, 'sessions')), false);
});
