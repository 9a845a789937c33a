/**
 * Structured pruning: FLOPs counted against hand-computed values, shrinking equivalence (the
 * physically smaller model predicts what the masked one does), Taylor scores against a brute-force
 * finite difference, channel selection for weights/FLOPs targets, sensitivity scan.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { useCpu } from '../helpers';
import { softCrossEntropy } from '../../src/core/losses';
import {
  allocationFromScan,
  analyzeModel,
  buildMasks,
  countCost,
  l1Scores,
  latencySentence,
  maxOutputDifference,
  selectChannels,
  sensitivityScan,
  shrinkModel,
  shrinkTopology,
  skipSet,
  taylorScores,
  channelScaleWeights,
} from '../../src/core/structured';
import { UserError } from '../../src/core/errors';
import { Rng } from '../../src/core/rng';

function seededWeights(model: tfl.LayersModel, seed: number): void {
  const rng = new Rng(seed);
  model.setWeights(
    model.weights.map((w) => {
      const n = w.shape.reduce((a: number, d) => a * (d as number), 1);
      const name = w.originalName;
      const v = Float32Array.from({ length: n }, () =>
        /moving_variance$/.test(name)
          ? 0.5 + rng.next()
          : /gamma$/.test(name)
            ? 0.5 + rng.next()
            : rng.normal() * (/bias|beta|moving_mean/.test(name) ? 0.3 : 0.5),
      );
      return tf.tensor(v, w.shape as number[]);
    }),
  );
}

function convModel(seed = 1): tfl.LayersModel {
  const m = tfl.sequential({
    layers: [
      tfl.layers.conv2d({
        inputShape: [6, 6, 2],
        filters: 3,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        name: 'c1',
      }),
      tfl.layers.batchNormalization({ name: 'bn1' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }),
      tfl.layers.conv2d({ filters: 4, kernelSize: 2, padding: 'valid', activation: 'relu', name: 'c2' }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ units: 2, name: 'out' }),
    ],
  });
  seededWeights(m, seed);
  return m;
}

/** Dense MLP with a sigmoid hidden layer: pruned units read as 0.5, folded into the next bias. */
function mlp(seed = 2): tfl.LayersModel {
  const m = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [5], units: 8, activation: 'relu', name: 'h1' }),
      tfl.layers.dense({ units: 6, activation: 'sigmoid', name: 'h2' }),
      tfl.layers.dropout({ rate: 0.1, name: 'drop' }),
      tfl.layers.dense({ units: 3, name: 'out' }),
    ],
  });
  seededWeights(m, seed);
  return m;
}

function randomX(shape: number[], seed: number): tf.Tensor {
  const rng = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    Float32Array.from({ length: n }, () => rng.normal()),
    shape,
  );
}

test('FLOPs and parameters match hand-computed counts, before and after removing a filter', async () => {
  await useCpu();
  const m = tfl.sequential({
    layers: [
      tfl.layers.conv2d({
        inputShape: [6, 6, 2],
        filters: 3,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        name: 'c1',
      }),
      tfl.layers.batchNormalization({ name: 'bn1' }),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ units: 4, activation: 'relu', name: 'd1' }),
      tfl.layers.dense({ units: 2, name: 'out' }),
    ],
  });
  const c = countCost(m);
  const byLayer = Object.fromEntries(c.layers.map((l) => [l.layer, l.flops]));
  // conv: 2·(3·3)·2·3·36 MACs→FLOPs + 3·36 bias + 3·36 relu
  assert.equal(byLayer.c1, 2 * 9 * 2 * 3 * 36 + 108 + 108);
  assert.equal(byLayer.bn1, 2 * 108);
  assert.equal(byLayer.pool, 4 * 27);
  assert.equal(byLayer.flat, 0);
  assert.equal(byLayer.d1, 2 * 27 * 4 + 4 + 4);
  assert.equal(byLayer.out, 2 * 4 * 2 + 2);
  assert.equal(c.flops, 4670);
  assert.equal(c.parameters, 57 + 12 + 112 + 10);
  assert.equal(c.prunableParameters, 54 + 108 + 8);
  assert.deepEqual(c.uncounted, []);

  const graph = analyzeModel(m);
  const kept = new Map([['c1', 2]]);
  const after = countCost(m, graph, kept);
  assert.equal(after.flops, 2 * 9 * 2 * 2 * 36 + 72 + 72 + 2 * 72 + 4 * 18 + (2 * 18 * 4 + 8) + 18);
  assert.equal(after.prunableParameters, 36 + 72 + 8);
  // the count of the kept assignment equals the count of the model physically shrunk to it
  const shrunk = await shrinkModel(m, graph, new Map([['c1', [1]]]));
  const real = countCost(shrunk.model);
  assert.equal(real.flops, after.flops);
  assert.equal(real.parameters, after.parameters);
  shrunk.model.dispose();
  m.dispose();
});

test('graph analysis: groups, followers, flatten positions, and residual Add left masked with a reason', async () => {
  await useCpu();
  const m = convModel();
  const g = analyzeModel(m);
  assert.deepEqual(g.prunableLayers, ['c1', 'c2', 'out']);
  assert.equal(g.groups.length, 2);
  const [c1, c2] = g.groups;
  assert.deepEqual(c1.followers, ['bn1']);
  assert.deepEqual(
    c1.consumers.map((c) => [c.layer, c.mode, c.positions, c.constant]),
    [['c2', 'conv', 1, 0]],
  );
  assert.deepEqual(
    c2.consumers.map((c) => [c.layer, c.mode, c.positions]),
    [['out', 'dense', 4]],
  );
  assert.ok(c1.shrinkable && c2.shrinkable);

  const inp = tfl.input({ shape: [4] });
  const a = tfl.layers.dense({ units: 3, activation: 'relu', name: 'a' }).apply(inp) as tfl.SymbolicTensor;
  const b = tfl.layers.dense({ units: 3, name: 'b' }).apply(inp) as tfl.SymbolicTensor;
  const s = tfl.layers.add({ name: 'sum' }).apply([a, b]) as tfl.SymbolicTensor;
  const o = tfl.layers.dense({ units: 2, name: 'o' }).apply(s) as tfl.SymbolicTensor;
  const res = tfl.model({ inputs: inp, outputs: o });
  const rg = analyzeModel(res);
  assert.equal(rg.groups.length, 2);
  for (const grp of rg.groups) {
    assert.equal(grp.shrinkable, false);
    assert.match(grp.note ?? '', /residual Add/);
  }
  const shr = await shrinkModel(res, rg, new Map([['a', [0]]]));
  assert.equal(shr.kept.size, 0);
  assert.deepEqual(
    shr.maskedOnly.map((x) => x.layer),
    ['a'],
  );
  shr.model.dispose();
  m.dispose();
  res.dispose();
});

async function checkShrinkEquivalence(m: tfl.LayersModel, removed: Map<string, number[]>, x: tf.Tensor) {
  const graph = analyzeModel(m);
  const masks = buildMasks(m, graph.groups, removed);
  tf.tidy(() => {
    for (const { variable, mask } of masks.values()) variable.assign(tf.mul(variable, mask));
  });
  for (const e of masks.values()) e.mask.dispose();
  const shr = await shrinkModel(m, graph, removed);
  for (const [layer, gone] of removed) {
    const g = graph.groups.find((x) => x.producer === layer)!;
    assert.equal(shr.kept.get(layer), g.channels - gone.length);
    const units = shr.model.getLayer(layer).getConfig() as Record<string, unknown>;
    assert.equal(units.units ?? units.filters, g.channels - gone.length);
  }
  const diff = maxOutputDifference(m, shr.model, x);
  const scale = tf.tidy(() => tf.max(tf.abs(m.apply(x) as tf.Tensor)).dataSync()[0]);
  assert.ok(scale > 0.1, 'outputs are not trivially small');
  assert.ok(diff <= 1e-5 * Math.max(1, scale), `shrunk vs masked max difference ${diff}`);
  assert.ok(countCost(shr.model).parameters < countCost(m).parameters);
  return shr.model;
}

test('shrinking equivalence: conv + batch norm + pooling + flatten→dense; the smaller model predicts what the masked one does', async () => {
  await useCpu();
  const m = convModel(3);
  const x = randomX([16, 6, 6, 2], 4);
  const small = await checkShrinkEquivalence(
    m,
    new Map([
      ['c1', [1]],
      ['c2', [0, 2]],
    ]),
    x,
  );
  assert.deepEqual(small.getLayer('out').getWeights()[0].shape, [8, 2]); // 2×2 positions × 2 filters kept
  assert.deepEqual(small.getLayer('bn1').getWeights()[0].shape, [2]);
  // the shrunk topology is an ordinary model that round-trips through JSON
  const again = await tfl.models.modelFromJSON({
    modelTopology: shrinkTopology(
      m.toJSON(null, false) as Record<string, unknown>,
      new Map([
        ['c1', 2],
        ['c2', 2],
      ]),
    ),
  } as never);
  assert.deepEqual(again.outputs[0].shape, [null, 2]);
  again.dispose();
  small.dispose();
  m.dispose();
  x.dispose();
});

test("shrinking equivalence: dense MLP with a sigmoid layer, the pruned units' constant 0.5 folded into the next bias", async () => {
  await useCpu();
  const m = mlp(5);
  const x = randomX([32, 5], 6);
  const graph = analyzeModel(m);
  assert.equal(graph.groups[1].consumers[0].constant, 0.5);
  const small = await checkShrinkEquivalence(
    m,
    new Map([
      ['h1', [0, 3, 7]],
      ['h2', [1, 2]],
    ]),
    x,
  );
  assert.deepEqual(small.getLayer('out').getWeights()[0].shape, [4, 3]);
  small.dispose();
  m.dispose();
  x.dispose();
});

test('Taylor scores: the mean over samples of |a·∂L_i/∂a| before batch norm, equal to a per-sample finite difference', async () => {
  await useCpu();
  for (const [make, shape] of [
    [() => mlp(7), [24, 5]],
    [() => convModel(8), [12, 6, 6, 2]],
  ] as Array<[() => tfl.LayersModel, number[]]>) {
    const m = make();
    const n = shape[0];
    const x = randomX(shape, 9);
    const rng = new Rng(10);
    const width = 3 - (shape.length > 2 ? 1 : 0);
    const t = Float32Array.from({ length: n * width }, () => rng.next());
    const targets = tf.tensor2d(t, [n, width]);
    const weights = tf.tensor1d(Float32Array.from({ length: n }, () => 0.5 + 2 * rng.next())); // PW-like, non-uniform
    const indices = Int32Array.from({ length: n }, (_, i) => i);
    const graph = analyzeModel(m);
    const scores = taylorScores(m, graph.groups, { x, targets, weights, indices, task: 'multiclass' });
    // Each sample's own weighted loss w_i · CE_i, all samples in one pass.
    const perSample = () =>
      tf.tidy(
        () =>
          tf
            .mul(softCrossEntropy('multiclass', m.apply(x, { training: false }) as tf.Tensor2D, targets), weights)
            .dataSync() as Float32Array,
      );
    const eps = 1e-2;
    let checked = 0;
    graph.groups.forEach((g, gi) => {
      // Scaling the channel by (1 + ε) before any batch norm: its kernel column and bias in the producer.
      const vars = ['kernel', 'bias'].map(
        (suffix) =>
          m
            .getLayer(g.producer)
            .weights.find((w) => w.originalName.endsWith(`/${suffix}`))!
            .read() as tf.Variable,
      );
      assert.deepEqual(
        channelScaleWeights(m, g).map((v) => v.name),
        vars.map((v) => v.name),
      );
      for (let c = 0; c < g.channels; c++) {
        const orig = vars.map((v) => tf.keep(tf.clone(v)));
        const scaled = (f: number) => {
          vars.forEach((v, i) => {
            const C = g.channels;
            const vals = Float32Array.from(orig[i].dataSync() as Float32Array);
            for (let k = c; k < vals.length; k += C) vals[k] *= f;
            v.assign(tf.tensor(vals, v.shape));
          });
          return perSample();
        };
        const up = scaled(1 + eps);
        const down = scaled(1 - eps);
        let fd = 0;
        for (let i = 0; i < n; i++) fd += Math.abs((up[i] - down[i]) / (2 * eps)) / n; // |·| per sample, then the mean
        vars.forEach((v, i) => v.assign(orig[i]));
        orig.forEach((o) => o.dispose());
        const maxScore = Math.max(...scores[gi]);
        assert.ok(
          Math.abs(scores[gi][c] - fd) <= 3e-3 * maxScore + 2e-5,
          `${g.producer}[${c}]: taylor ${scores[gi][c]} vs finite difference ${fd}`,
        );
        checked++;
      }
    });
    assert.ok(checked >= 7);
    [x, targets, weights].forEach((v) => v.dispose());
    m.dispose();
  }
});

test('L1 scores are mean |w| per filter, and selection removes the smallest first for weights and FLOPs targets', async () => {
  await useCpu();
  const m = mlp(11);
  const graph = analyzeModel(m);
  const h1 = m.getLayer('h1');
  const k = h1.getWeights()[0].dataSync() as Float32Array;
  const manual = Array.from({ length: 8 }, (_, c) => {
    let s = 0;
    for (let i = 0; i < 5; i++) s += Math.abs(k[i * 8 + c]);
    return s / 5;
  });
  const scores = l1Scores(m, graph.groups);
  manual.forEach((v, c) => assert.ok(Math.abs(scores[0][c] - v) < 1e-6));

  const base = countCost(m);
  for (const metric of ['weights', 'flops'] as const) {
    for (const scope of ['layer', 'global'] as const) {
      const sel = selectChannels(m, graph, graph.groups, scores, { metric, scope }, 0.4);
      const kept = new Map(graph.groups.map((g) => [g.producer, g.channels - sel.removed.get(g.producer)!.length]));
      const after = countCost(m, graph, kept);
      const reached =
        metric === 'flops' ? 1 - after.flops / base.flops : 1 - after.prunableParameters / base.prunableParameters;
      assert.ok(Math.abs(reached - sel.reached) < 1e-12);
      assert.ok(sel.reached >= 0.4, `${metric}/${scope} reached ${sel.reached}`);
      // removing one channel fewer anywhere would miss the target, so it did not overshoot by a whole layer
      assert.ok(sel.reached < 0.75, `${metric}/${scope} overshoots: ${sel.reached}`);
      // the channels removed from each layer are its lowest-scored ones
      graph.groups.forEach((g, gi) => {
        const gone = sel.removed.get(g.producer)!;
        const keptMin = Math.min(...Array.from(scores[gi]).filter((_, c) => !gone.includes(c)));
        for (const c of gone) assert.ok(scores[gi][c] <= keptMin);
      });
      if (scope === 'layer') {
        const fr = graph.groups.map((g) => sel.removed.get(g.producer)!.length / g.channels);
        assert.ok(Math.abs(fr[0] - fr[1]) <= 0.5 / 6 + 1e-9, `per-layer fractions ${fr}`);
      }
    }
  }
  // already removed channels stay removed, whatever the scores say now
  const already = new Map([['h1', new Set([scores[0].indexOf(Math.max(...scores[0]))])]]);
  const sel = selectChannels(m, graph, graph.groups, scores, { metric: 'weights', scope: 'global' }, 0.2, already);
  assert.ok(sel.removed.get('h1')!.includes([...already.get('h1')!][0]));
  m.dispose();
});

test('sensitivity scan: one row per layer and level, weights restored, allocation follows the tolerance', async () => {
  await useCpu();
  const m = mlp(12);
  const graph = analyzeModel(m);
  const before = m.getWeights().map((w) => Array.from(w.dataSync()));
  const n = 60;
  const x = randomX([n, 5], 13);
  const pred = tf.tidy(() => tf.argMax(m.apply(x) as tf.Tensor, -1).dataSync() as Int32Array);
  const labels = Int32Array.from(pred); // the dense model is right everywhere
  const groupIds = Int32Array.from({ length: n }, (_, i) => i % 2);
  const data = {
    x,
    indices: Int32Array.from({ length: n }, (_, i) => i),
    labels,
    groupIds,
    numGroups: 2,
    task: 'multiclass' as const,
  };
  const rows = sensitivityScan(m, graph, graph.groups, l1Scores(m, graph.groups), [0.25, 0.75], data);
  assert.deepEqual(
    rows.map((r) => `${r.layer}@${r.level}`),
    ['h1@0.25', 'h1@0.75', 'h2@0.25', 'h2@0.75'],
  );
  for (const r of rows) assert.ok(r.worstGroupAccuracy <= r.accuracy + 1e-12 && r.accuracy <= 1);
  m.getWeights().forEach((w, i) => assert.deepEqual(Array.from(w.dataSync()), before[i]));
  const alloc = allocationFromScan(rows, { worstGroupAccuracy: 1 }, 0.05);
  for (const layer of ['h1', 'h2']) {
    const ok = rows.filter((r) => r.layer === layer && 1 - r.worstGroupAccuracy <= 0.05).map((r) => r.level);
    assert.equal(alloc.get(layer), ok.length ? Math.max(...ok) : 0);
  }
  x.dispose();
  m.dispose();
});

test('skip layers: first/last/none resolve, an unknown name is a UserError naming the option and the layers', () => {
  assert.deepEqual([...skipSet(['first', 'last'], ['a', 'b', 'c'], 'm.json')], ['a', 'c']);
  assert.deepEqual([...skipSet(['first', 'none', 'b'], ['a', 'b', 'c'], 'm.json')], ['b']);
  assert.throws(
    () => skipSet(['nope'], ['a', 'b'], 'm.json'),
    (e: unknown) =>
      e instanceof UserError && e.field === '--skip-layers' && /nope/.test(e.message) && /a, b/.test(e.message),
  );
});

test('latency sentence says plainly whether speed changed and why', () => {
  const base = { backend: 'wasm', batchSize: 64 };
  const unstructured = latencySentence(
    { ...base, denseMs: 5, prunedMs: 5.1, speedup: 5 / 5.1 },
    { flopsBefore: 100, flopsAfter: 100, structured: false, shrunk: false },
  );
  assert.match(unstructured, /^Speed did not change/);
  assert.match(unstructured, /no sparse kernels/);
  const faster = latencySentence(
    { ...base, denseMs: 6, prunedMs: 3, speedup: 2 },
    { flopsBefore: 100, flopsAfter: 40, structured: true, shrunk: true },
  );
  assert.match(faster, /2\.0× faster/);
  assert.match(faster, /60% fewer FLOPs/);
  const same = latencySentence(
    { ...base, denseMs: 1, prunedMs: 0.98, speedup: 1.02 },
    { flopsBefore: 100, flopsAfter: 70, structured: true, shrunk: true },
  );
  assert.match(same, /did not change measurably/);
});
