import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { loadModel, makeLogitModel, modelSize, saveModel, topologyOf } from '../../src/core/model-io';
import { expectUserError, sharedDir, tempDir, useCpu } from '../helpers';

async function writeSmallModel(
  dir: string,
  activation: 'softmax' | 'sigmoid' | 'linear' = 'softmax',
  units = 3,
): Promise<string> {
  const m = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [4], units: 5, activation: 'relu', name: 'hidden' }),
      tfl.layers.dense({ units, activation, name: 'out' }),
    ],
  });
  await saveModel(m, dir, topologyOf(m));
  m.dispose();
  return path.join(dir, 'model.json');
}

test('save then load gives the same predictions; the folder holds model.json and weights.bin', async () => {
  await useCpu();
  const dir = path.join(tempDir(), 'm');
  const file = await writeSmallModel(dir);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['model.json', 'weights.bin']);
  const a = await loadModel(file);
  assert.equal(a.task, 'multiclass');
  assert.equal(a.numClasses, 3);
  assert.equal(a.outputKind, 'softmax');
  assert.deepEqual(a.inputShape, [4]);
  const copy = path.join(path.dirname(dir), 'copy');
  await saveModel(a.model, copy, a.json);
  const b = await loadModel(path.join(copy, 'model.json'));
  const x = tf.randomNormal([7, 4]);
  const pa = (a.model.predict(x) as tf.Tensor).dataSync();
  const pb = (b.model.predict(x) as tf.Tensor).dataSync();
  assert.deepEqual(Array.from(pa), Array.from(pb));
  assert.match(a.sha256, /^[0-9a-f]{64}$/);
  assert.equal(b.sha256, a.sha256, 'same topology and weights, same hash');
});

test('saving never writes over an existing folder (the input model is safe)', async () => {
  await useCpu();
  const dir = path.join(tempDir(), 'm');
  const file = await writeSmallModel(dir);
  const before = fs.readFileSync(path.join(dir, 'weights.bin'));
  const a = await loadModel(file);
  await assert.rejects(saveModel(a.model, dir, a.json), /already exists/);
  assert.deepEqual(fs.readFileSync(path.join(dir, 'weights.bin')), before);
  assert.deepEqual(fs.readdirSync(path.dirname(dir)), ['m'], 'no temporary folder left behind');
});

test('the logit model returns the pre-activation of the stored model', async () => {
  await useCpu();
  for (const [activation, units] of [
    ['softmax', 3],
    ['sigmoid', 1],
  ] as const) {
    const file = await writeSmallModel(path.join(tempDir(), 'm'), activation, units);
    const loaded = await loadModel(file);
    const logits = await makeLogitModel(loaded);
    const x = tf.randomNormal([5, 4]);
    const p = (loaded.model.predict(x) as tf.Tensor).dataSync();
    const z = logits.predict(x) as tf.Tensor;
    const q = (activation === 'softmax' ? tf.softmax(z) : tf.sigmoid(z)).dataSync();
    for (let i = 0; i < p.length; i++) assert.ok(Math.abs(p[i] - q[i]) < 1e-6);
    assert.equal(loaded.task, activation === 'softmax' ? 'multiclass' : 'binary');
  }
});

test("a softmax before the Reshape that ends the model (Keras 2.2.4's MobileNet) is the output activation, not logits", async () => {
  await useCpu();
  const m = tfl.sequential({
    layers: [
      tfl.layers.reshape({ inputShape: [4], targetShape: [1, 1, 4] }),
      tfl.layers.conv2d({ filters: 3, kernelSize: 1, name: 'conv_preds' }),
      tfl.layers.activation({ activation: 'softmax', name: 'act_softmax' }),
      tfl.layers.reshape({ targetShape: [3], name: 'reshape_2' }),
    ],
  });
  const dir = path.join(tempDir(), 'm');
  await saveModel(m, dir, topologyOf(m));
  m.dispose();
  const loaded = await loadModel(path.join(dir, 'model.json'));
  assert.equal(loaded.outputKind, 'softmax');
  assert.equal(loaded.outputLayer, 'act_softmax');
  const logits = await makeLogitModel(loaded);
  const x = tf.randomNormal([5, 4]);
  const p = (loaded.model.predict(x) as tf.Tensor).dataSync();
  const q = tf.softmax(logits.predict(x) as tf.Tensor2D).dataSync();
  for (let i = 0; i < p.length; i++) assert.ok(Math.abs(p[i] - q[i]) < 1e-6, `${p[i]} vs ${q[i]}`);
});

test('a regression model (one linear output) is refused with the reason', async () => {
  await useCpu();
  const file = await writeSmallModel(path.join(tempDir(), 'm'), 'linear', 1);
  await assert.rejects(loadModel(file), expectUserError(/regression/));
});

test('bad model files: clear errors naming the file, the field and the fix', async () => {
  await useCpu();
  const dir = path.join(tempDir(), 'm');
  const file = await writeSmallModel(dir);
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  const variant = (name: string, f: (j: any) => void, extra?: (d: string) => void) => {
    const d = path.join(path.dirname(dir), name);
    fs.mkdirSync(d);
    const j = structuredClone(json);
    f(j);
    fs.writeFileSync(path.join(d, 'model.json'), JSON.stringify(j));
    fs.copyFileSync(path.join(dir, 'weights.bin'), path.join(d, 'weights.bin'));
    extra?.(d);
    return path.join(d, 'model.json');
  };
  await assert.rejects(loadModel(path.join(dir, 'nope.json')), expectUserError(/no such file/));
  await assert.rejects(
    loadModel(
      variant('graph', (j) => {
        j.format = 'graph-model';
        j.modelTopology = { node: [] };
      }),
    ),
    expectUserError(/graph model/),
  );
  await assert.rejects(
    loadModel(
      variant('missing', (j) => {
        j.weightsManifest[0].paths = ['gone.bin'];
      }),
    ),
    expectUserError(/gone\.bin.*missing/),
  );
  await assert.rejects(
    loadModel(
      variant(
        'short',
        () => {},
        (d) => fs.truncateSync(path.join(d, 'weights.bin'), 40),
      ),
    ),
    expectUserError(/hold 40 bytes.*need 172/),
  );
  await assert.rejects(
    loadModel(
      variant('lambda', (j) => {
        j.modelTopology.config.layers[1].class_name = 'Lambda';
      }),
    ),
    expectUserError(/'out' is a Lambda layer/),
  );
  await assert.rejects(
    loadModel(
      variant('custom', (j) => {
        j.modelTopology.config.layers[1].class_name = 'MyAttention';
      }),
    ),
    expectUserError(/'out' has class 'MyAttention'/),
  );
  const broken = path.join(path.dirname(dir), 'broken.json');
  fs.writeFileSync(broken, '{"modelTopology": ');
  await assert.rejects(loadModel(broken), expectUserError(/not valid JSON/));
});

test('model size: non-zero parameters and gzip size follow the zeros', async () => {
  await useCpu();
  const m = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [64], units: 64 })] });
  const dense = modelSize(m);
  assert.equal(dense.parameters, 64 * 64 + 64);
  assert.equal(dense.prunableParameters, 64 * 64);
  const k = m.layers[0].getWeights()[0];
  m.layers[0].setWeights([tf.mul(k, tf.cast(tf.greater(tf.abs(k), 0.15), 'float32')), m.layers[0].getWeights()[1]]);
  const pruned = modelSize(m);
  assert.ok(pruned.nonZeroParameters < dense.nonZeroParameters);
  assert.ok(pruned.gzipBytes < dense.gzipBytes, `${pruned.gzipBytes} < ${dense.gzipBytes}`);
  assert.equal(pruned.weightBytes, dense.weightBytes);
});

test('real TensorFlow.js models other people saved', { skip: !sharedDir && 'no ../shared' }, async () => {
  await useCpu();
  const fashion = await loadModel(path.join(sharedDir!, 'models', 'tfjs-layers-fashion-mnist-cnn', 'model.json'));
  assert.deepEqual(fashion.inputShape, [28, 28, 1]);
  assert.equal(fashion.numClasses, 10);
  assert.equal(modelSize(fashion.model).parameters, 179926);
  const logits = await makeLogitModel(fashion);
  const x = tf.randomUniform([3, 28, 28, 1]);
  const p = (fashion.model.predict(x) as tf.Tensor).dataSync();
  const q = tf.softmax(logits.predict(x) as tf.Tensor).dataSync();
  for (let i = 0; i < p.length; i++) assert.ok(Math.abs(p[i] - q[i]) < 1e-5);
  // the tfjs-native abalone model is a regressor: refused, with the layer named
  await assert.rejects(
    loadModel(path.join(sharedDir!, 'models', 'tfjs-layers-abalone-dense-tfjsnode', 'model.json')),
    expectUserError(/dense_Dense3.*regression/),
  );
});
