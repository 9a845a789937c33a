/**
 * Keras models in and out. The tests write their own small Keras files with h5wasm in the layouts
 * Keras writes (Keras 2 .h5, Keras 3 legacy .h5, Keras 3 .keras zip), read them, check the
 * predictions against models built directly in TensorFlow.js (and a plain JS forward pass), prune,
 * save, read the saved Keras file back and check it is the original file with only weights changed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { loadModel, makeLogitModel, prunableKernels, saveModel, type LoadedModel } from '../../src/core/model-io';
import { PRUNING_METHODS, pruneModelKernels } from '../../src/core/pruning';
import { Rng } from '../../src/core/rng';
import { sha256 } from '../../src/core/atomic';
import { UserError } from '../../src/core/errors';
import { h5wasm, type H5File, type H5Group } from '../../src/core/keras/h5';
import { crc32, readZip, writeZip } from '../../src/core/keras/zip';
import { kerasConfigToTfjs } from '../../src/core/keras/config';
import { expectUserError, tempDir, useCpu } from '../helpers';

type Json = Record<string, unknown>;

// ---------- fixture writing ----------

function randomArray(rng: Rng, n: number, scale = 0.5): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

async function writeH5(file: string, build: (f: H5File) => void): Promise<void> {
  const h5 = await h5wasm();
  const f = new h5.File(file, 'w');
  try {
    build(f);
  } finally {
    f.close();
  }
}

function ensureGroup(root: H5Group, p: string): H5Group {
  let g = root;
  for (const part of p.split('/').filter(Boolean)) {
    g = (g.keys().includes(part) ? g.get(part) : g.create_group(part)) as H5Group;
  }
  return g;
}

function putDataset(root: H5Group, p: string, data: Float32Array, shape: number[]): void {
  const parent = ensureGroup(root, path.posix.dirname(p));
  parent.create_dataset({ name: path.posix.basename(p), data, shape, dtype: '<f' });
}

/** Fixed-length byte strings, as Keras 2 (h5py with numpy bytes) writes them. */
function fixedStrings(g: H5Group, name: string, values: string[]): void {
  if (values.length === 0) g.create_attribute(name, new Float64Array(0), [0], '<d');
  else g.create_attribute(name, values, [values.length], `S${Math.max(...values.map((v) => v.length))}`);
}

/** Variable-length strings, as Keras 3 writes them; weightless layers get an empty float64 array. */
function vlenStrings(g: H5Group, name: string, values: string[]): void {
  if (values.length === 0) g.create_attribute(name, new Float64Array(0), [0], '<d');
  else g.create_attribute(name, values, [values.length], 'S');
}

const POLICY = { module: 'keras', class_name: 'DTypePolicy', config: { name: 'float32' }, registered_name: null };
const k3init = (cls: string, config: Json = {}) => ({
  module: 'keras.initializers',
  class_name: cls,
  config,
  registered_name: null,
});
const k3tensor = (layer: string, shape: (number | null)[]) => ({
  class_name: '__keras_tensor__',
  config: { shape, dtype: 'float32', keras_history: [layer, 0, 0] },
});

/** Keras 2 Sequential, Dense layers: input 6 → dense_10 (5, relu) → dropout → dense_2 (3, softmax). */
interface DenseFixture {
  file: string;
  k1: Float32Array;
  b1: Float32Array;
  k2: Float32Array;
  b2: Float32Array;
  optimizer: Float32Array;
}

async function writeKeras2Dense(
  dir: string,
  opts: { k2Shape?: number[]; lambda?: boolean } = {},
): Promise<DenseFixture> {
  const rng = new Rng(11);
  const fx = {
    file: path.join(dir, 'dense.h5'),
    k1: randomArray(rng, 30),
    b1: randomArray(rng, 5, 0.1),
    k2: randomArray(rng, 15),
    b2: randomArray(rng, 3, 0.1),
    optimizer: randomArray(rng, 30),
  };
  const dense = (name: string, units: number, activation: string, extra: Json = {}) => ({
    class_name: 'Dense',
    config: {
      name,
      trainable: true,
      ...extra,
      dtype: 'float32',
      units,
      activation,
      use_bias: true,
      kernel_initializer: { class_name: 'GlorotUniform', config: { seed: null } },
      bias_initializer: { class_name: 'Zeros', config: {} },
      kernel_regularizer: null,
      bias_regularizer: null,
      activity_regularizer: null,
      kernel_constraint: null,
      bias_constraint: null,
    },
  });
  const layers: Json[] = [
    dense('dense_10', 5, 'relu', { batch_input_shape: [null, 6] }),
    {
      class_name: 'Dropout',
      config: { name: 'dropout', trainable: true, dtype: 'float32', rate: 0.5, noise_shape: null, seed: null },
    },
  ];
  if (opts.lambda)
    layers.push({
      class_name: 'Lambda',
      config: {
        name: 'scale_by_two',
        trainable: true,
        dtype: 'float32',
        function: [
          '4wEAAAAAAAAAAQAAAAIAAABDAAAAcwgAAAB8AGQBFABTACkCTukCAAAAqQApAdoBeHIBAAAAcgEAAAD6HjxpcHl0aG9uLWlucHV0LTItZjQ=',
          null,
          null,
        ],
        function_type: 'lambda',
        output_shape: null,
        arguments: {},
      },
    });
  layers.push(dense('dense_2', 3, 'softmax'));
  const modelConfig = { class_name: 'Sequential', config: { name: 'sequential', layers } };
  const layerNames = layers.map((l) => String((l.config as Json).name));
  await writeH5(fx.file, (f) => {
    f.create_attribute('keras_version', '2.2.4-tf');
    f.create_attribute('backend', 'tensorflow');
    f.create_attribute('model_config', JSON.stringify(modelConfig));
    f.create_attribute(
      'training_config',
      JSON.stringify({
        loss: 'categorical_crossentropy',
        optimizer_config: { class_name: 'Adam', config: { learning_rate: 0.001 } },
      }),
    );
    const mw = f.create_group('model_weights');
    mw.create_attribute('backend', 'tensorflow');
    mw.create_attribute('keras_version', '2.2.4-tf');
    fixedStrings(mw, 'layer_names', layerNames);
    // Created in reverse order: nothing may depend on creation or iteration order.
    for (const name of [...layerNames].reverse()) {
      const g = mw.create_group(name);
      if (name === 'dense_10') {
        fixedStrings(g, 'weight_names', ['dense_10/kernel:0', 'dense_10/bias:0']);
        putDataset(g, 'dense_10/bias:0', fx.b1, [5]);
        putDataset(g, 'dense_10/kernel:0', fx.k1, [6, 5]);
      } else if (name === 'dense_2') {
        fixedStrings(g, 'weight_names', ['dense_2/kernel:0', 'dense_2/bias:0']);
        putDataset(g, 'dense_2/bias:0', fx.b2, [3]);
        putDataset(g, 'dense_2/kernel:0', fx.k2, opts.k2Shape ?? [5, 3]);
      } else {
        fixedStrings(g, 'weight_names', []);
      }
    }
    const ow = f.create_group('optimizer_weights');
    fixedStrings(ow, 'weight_names', ['training/Adam/Variable_1:0']);
    putDataset(ow, 'training/Adam/Variable_1:0', fx.optimizer, [6, 5]);
  });
  return fx;
}

/** Keras 3 legacy h5, Functional: input (6,6,2) → conv2d → conv2d_1 → add(conv2d, conv2d_1) → flatten → dense (3, softmax). */
interface ConvFixture {
  file: string;
  weights: Record<string, Float32Array[]>;
}

async function writeKeras3FunctionalH5(dir: string): Promise<ConvFixture> {
  const rng = new Rng(12);
  const weights: Record<string, Float32Array[]> = {
    conv2d: [randomArray(rng, 3 * 3 * 2 * 4), randomArray(rng, 4, 0.1)],
    conv2d_1: [randomArray(rng, 3 * 3 * 4 * 4), randomArray(rng, 4, 0.1)],
    dense: [randomArray(rng, 6 * 6 * 4 * 3, 0.2), randomArray(rng, 3, 0.1)],
  };
  const shapes: Record<string, number[][]> = {
    conv2d: [[3, 3, 2, 4], [4]],
    conv2d_1: [[3, 3, 4, 4], [4]],
    dense: [[144, 3], [3]],
  };
  const conv = (name: string, input: string, inShape: (number | null)[]) => ({
    module: 'keras.layers',
    class_name: 'Conv2D',
    config: {
      name,
      trainable: true,
      dtype: POLICY,
      filters: 4,
      kernel_size: [3, 3],
      strides: [1, 1],
      padding: 'same',
      data_format: 'channels_last',
      dilation_rate: [1, 1],
      groups: 1,
      activation: 'relu',
      use_bias: true,
      kernel_initializer: k3init('GlorotUniform', { seed: null }),
      bias_initializer: k3init('Zeros'),
      kernel_regularizer: {
        module: 'keras.regularizers',
        class_name: 'L2',
        config: { l2: 0.001 },
        registered_name: null,
      },
      bias_regularizer: null,
      activity_regularizer: null,
      kernel_constraint: null,
      bias_constraint: null,
    },
    registered_name: null,
    build_config: { input_shape: inShape },
    name,
    inbound_nodes: [{ args: [k3tensor(input, inShape)], kwargs: {} }],
  });
  const modelConfig = {
    module: 'keras.src.models.functional',
    class_name: 'Functional',
    config: {
      name: 'functional',
      trainable: true,
      layers: [
        {
          module: 'keras.layers',
          class_name: 'InputLayer',
          config: { batch_shape: [null, 6, 6, 2], dtype: 'float32', sparse: false, name: 'input_layer' },
          registered_name: null,
          name: 'input_layer',
          inbound_nodes: [],
        },
        conv('conv2d', 'input_layer', [null, 6, 6, 2]),
        conv('conv2d_1', 'conv2d', [null, 6, 6, 4]),
        {
          module: 'keras.layers',
          class_name: 'Add',
          config: { name: 'add', trainable: true, dtype: POLICY },
          registered_name: null,
          name: 'add',
          inbound_nodes: [
            { args: [[k3tensor('conv2d', [null, 6, 6, 4]), k3tensor('conv2d_1', [null, 6, 6, 4])]], kwargs: {} },
          ],
        },
        {
          module: 'keras.layers',
          class_name: 'Flatten',
          config: { name: 'flatten', trainable: true, dtype: POLICY, data_format: 'channels_last' },
          registered_name: null,
          name: 'flatten',
          inbound_nodes: [{ args: [k3tensor('add', [null, 6, 6, 4])], kwargs: {} }],
        },
        {
          module: 'keras.layers',
          class_name: 'Dense',
          config: {
            name: 'dense',
            trainable: true,
            dtype: POLICY,
            units: 3,
            activation: 'softmax',
            use_bias: true,
            kernel_initializer: k3init('GlorotUniform', { seed: null }),
            bias_initializer: k3init('Zeros'),
            kernel_regularizer: null,
            bias_regularizer: null,
            kernel_constraint: null,
            bias_constraint: null,
            lora_rank: null,
          },
          registered_name: null,
          build_config: { input_shape: [null, 144] },
          name: 'dense',
          inbound_nodes: [{ args: [k3tensor('flatten', [null, 144])], kwargs: {} }],
        },
      ],
      input_layers: ['input_layer', 0, 0],
      output_layers: ['dense', 0, 0],
    },
    registered_name: 'Functional',
    build_config: { input_shape: null },
  };
  const file = path.join(dir, 'conv.h5');
  const layerNames = ['conv2d', 'conv2d_1', 'add', 'flatten', 'dense'];
  await writeH5(file, (f) => {
    f.create_attribute('keras_version', '3.5.0');
    f.create_attribute('backend', 'tensorflow');
    f.create_attribute('model_config', JSON.stringify(modelConfig));
    const mw = f.create_group('model_weights');
    vlenStrings(mw, 'layer_names', layerNames);
    for (const name of layerNames) {
      const g = mw.create_group(name);
      const w = weights[name];
      if (!w) {
        vlenStrings(g, 'weight_names', []);
        continue;
      }
      vlenStrings(g, 'weight_names', [`functional/${name}/kernel`, `functional/${name}/bias`]);
      putDataset(g, `functional/${name}/kernel`, w[0], shapes[name][0]);
      putDataset(g, `functional/${name}/bias`, w[1], shapes[name][1]);
    }
    const top = mw.create_group('top_level_model_weights');
    vlenStrings(top, 'weight_names', []);
  });
  return { file, weights };
}

/** Keras 3 .keras, Sequential: input (8,8,1) → 'features' Conv2D(3) → 'bn' BatchNormalization → pool → flatten → 'head' Dense(1, sigmoid). */
async function writeKeras3Zip(dir: string, opts: { custom?: boolean } = {}): Promise<ConvFixture> {
  const rng = new Rng(13);
  const variance = Float32Array.from(randomArray(rng, 3), (v) => 0.5 + Math.abs(v));
  const weights: Record<string, Float32Array[]> = {
    conv2d: [randomArray(rng, 27), randomArray(rng, 3, 0.1)],
    batch_normalization: [
      randomArray(rng, 3, 0.2).map((v) => 1 + v),
      randomArray(rng, 3, 0.1),
      randomArray(rng, 3, 0.1),
      variance,
    ],
    dense: [randomArray(rng, 27), randomArray(rng, 1, 0.1)],
  };
  const shapes: Record<string, number[][]> = {
    conv2d: [[3, 3, 1, 3], [3]],
    batch_normalization: [[3], [3], [3], [3]],
    dense: [[27, 1], [1]],
  };
  const layer = (class_name: string, config: Json, module = 'keras.layers', registered_name: string | null = null) => ({
    module,
    class_name,
    config: { trainable: true, dtype: POLICY, ...config },
    registered_name,
  });
  const layers = [
    {
      module: 'keras.layers',
      class_name: 'InputLayer',
      config: {
        batch_shape: [null, 8, 8, 1],
        dtype: 'float32',
        sparse: false,
        ragged: false,
        name: 'input_layer',
        optional: false,
      },
      registered_name: null,
    },
    layer('Conv2D', {
      name: 'features',
      filters: 3,
      kernel_size: [3, 3],
      strides: [1, 1],
      padding: 'valid',
      data_format: 'channels_last',
      dilation_rate: [1, 1],
      groups: 1,
      activation: 'relu',
      use_bias: true,
      kernel_initializer: k3init('GlorotUniform', { seed: null, input_axes: null }),
      bias_initializer: k3init('Zeros'),
    }),
    layer('BatchNormalization', {
      name: 'bn',
      axis: -1,
      momentum: 0.99,
      epsilon: 0.001,
      center: true,
      scale: true,
      beta_initializer: k3init('Zeros'),
      gamma_initializer: k3init('Ones'),
      moving_mean_initializer: k3init('Zeros'),
      moving_variance_initializer: k3init('Ones'),
      synchronized: false,
    }),
    layer('MaxPooling2D', {
      name: 'pool',
      pool_size: [2, 2],
      padding: 'valid',
      strides: [2, 2],
      data_format: 'channels_last',
    }),
    layer('Flatten', { name: 'flat', data_format: 'channels_last' }),
    opts.custom
      ? layer(
          'Dense',
          { name: 'head', units: 1, activation: 'sigmoid', use_bias: true },
          'my_package.layers',
          'MyPackage>Dense',
        )
      : layer('Dense', {
          name: 'head',
          units: 1,
          activation: 'sigmoid',
          use_bias: true,
          kernel_initializer: k3init('GlorotUniform', { seed: null }),
          bias_initializer: k3init('Zeros'),
        }),
  ];
  const config = {
    module: 'keras',
    class_name: 'Sequential',
    config: { name: 'sequential', trainable: true, dtype: POLICY, layers },
    registered_name: null,
    build_config: { input_shape: [null, 8, 8, 1] },
    compile_config: { optimizer: 'adam', loss: 'binary_crossentropy' },
  };
  const h5file = path.join(dir, 'model.weights.h5');
  await writeH5(h5file, (f) => {
    for (const name of ['conv2d', 'batch_normalization', 'max_pooling2d', 'flatten', 'dense']) {
      const vars = ensureGroup(f, `layers/${name}/vars`);
      vars.create_attribute('name', name);
      (weights[name] ?? []).forEach((w, i) => putDataset(f, `layers/${name}/vars/${i}`, w, shapes[name][i]));
    }
    ensureGroup(f, 'vars').create_attribute('name', 'sequential');
    ensureGroup(f, 'optimizer/vars').create_attribute('name', 'adam');
    putDataset(f, 'optimizer/vars/2', Float32Array.from(weights.conv2d[0]), [3, 3, 1, 3]);
  });
  const file = path.join(dir, 'model.keras');
  fs.writeFileSync(
    file,
    writeZip([
      {
        name: 'metadata.json',
        data: Buffer.from(JSON.stringify({ keras_version: '3.15.1', date_saved: '2026-01-01@00:00:00' })),
        dosTime: 0,
        dosDate: 0x21,
      },
      { name: 'config.json', data: Buffer.from(JSON.stringify(config)), dosTime: 0, dosDate: 0x21 },
      { name: 'model.weights.h5', data: fs.readFileSync(h5file), dosTime: 0, dosDate: 0x21 },
    ]),
  );
  fs.rmSync(h5file);
  return { file, weights };
}

// ---------- reading back ----------

interface H5Dump {
  attrs: Record<string, string>;
  datasets: Record<string, { shape: number[]; values: number[] }>;
  groups: string[];
}

/** Every group, dataset (as numbers) and attribute (as JSON) of an HDF5 file, read with h5wasm. */
async function dumpH5(bytes: Uint8Array): Promise<H5Dump> {
  const h5 = await h5wasm();
  const dir = tempDir();
  const file = path.join(dir, 'd.h5');
  fs.writeFileSync(file, bytes);
  const f = new h5.File(file, 'r');
  const out: H5Dump = { attrs: {}, datasets: {}, groups: [] };
  const attrsOf = (p: string, e: { attrs: Record<string, { value: unknown; metadata: unknown }> }) => {
    for (const [k, a] of Object.entries(e.attrs))
      out.attrs[`${p}@${k}`] = JSON.stringify([
        a.value instanceof Float64Array ? Array.from(a.value) : a.value,
        a.metadata,
      ]);
  };
  const walk = (g: H5Group, p: string) => {
    attrsOf(p || '/', g as never);
    for (const k of g.keys()) {
      const e = g.get(k);
      const q = `${p}/${k}`;
      if (e instanceof h5.Group) {
        out.groups.push(q);
        walk(e, q);
      } else if (e instanceof h5.Dataset) {
        attrsOf(q, e as never);
        out.datasets[q] = { shape: e.shape ?? [], values: Array.from(e.value as Float32Array) };
      }
    }
  };
  walk(f, '');
  f.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return out;
}

function predict(m: tfl.LayersModel, x: tf.Tensor): number[] {
  return tf.tidy(() => Array.from((m.predict(x) as tf.Tensor).dataSync()));
}

function assertClose(a: number[], b: number[], tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

/** Prunes half of every kernel, saves, and checks what was saved. Returns the folder and the pruned predictions. */
async function pruneAndSave(loaded: LoadedModel, x: tf.Tensor, dir: string) {
  const kernels = prunableKernels(loaded.model);
  pruneModelKernels(kernels, PRUNING_METHODS['magnitude-layer'], 0.5, new Rng(5));
  for (const k of kernels) {
    const zeros = Array.from(k.variable.dataSync()).filter((v) => v === 0).length;
    assert.ok(
      zeros >= Math.floor(k.size / 2) - 1 && zeros < k.size,
      `${k.layer}: half the kernel pruned (${zeros}/${k.size})`,
    );
  }
  const pruned = predict(loaded.model, x);
  await saveModel(loaded.model, dir, loaded.json, { 'note.txt': 'extra' });
  return { pruned, kernels };
}

/** With Debian's python3-h5py (undefined where it is not installed): the arrays h5py reads from `file`. */
function h5pyDump(file: string): Record<string, { shape: number[]; values: number[] }> | undefined {
  const py = '/usr/bin/python3';
  if (spawnSync(py, ['-c', 'import h5py'], { encoding: 'utf8' }).status !== 0) return undefined;
  const script = `import h5py, json, sys
out = {}
def visit(name, obj):
    if isinstance(obj, h5py.Dataset):
        out['/' + name] = {'shape': list(obj.shape), 'values': [float(v) for v in obj[()].reshape(-1)]}
with h5py.File(sys.argv[1], 'r') as f:
    f.visititems(visit)
    out['@layer_names'] = {'shape': [], 'values': []}
    if 'model_weights' in f:
        out['@layer_names']['names'] = [n.decode() if isinstance(n, bytes) else n for n in f['model_weights'].attrs['layer_names']]
print(json.dumps(out))`;
  const r = spawnSync(py, ['-c', script, file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

// ---------- tests ----------

test('Keras 2 .h5 (Sequential, Dense): weights found through layer_names/weight_names; predictions match a plain forward pass', async () => {
  await useCpu();
  const dir = tempDir();
  const fx = await writeKeras2Dense(dir);
  const m = await loadModel(fx.file);
  assert.equal(m.format, 'keras-h5');
  assert.deepEqual(m.inputShape, [6]);
  assert.equal(m.outputKind, 'softmax');
  assert.equal(m.numClasses, 3);
  const rng = new Rng(3);
  const xs = randomArray(rng, 4 * 6, 1);
  // Independent forward pass: relu(x·K1 + b1)·K2 + b2, softmax.
  const expected: number[] = [];
  for (let n = 0; n < 4; n++) {
    const h = Array.from({ length: 5 }, (_, j) =>
      Math.max(
        0,
        fx.b1[j] + Array.from({ length: 6 }, (_, i) => xs[n * 6 + i] * fx.k1[i * 5 + j]).reduce((a, b) => a + b, 0),
      ),
    );
    const z = Array.from({ length: 3 }, (_, j) => fx.b2[j] + h.reduce((a, hv, i) => a + hv * fx.k2[i * 3 + j], 0));
    const mx = Math.max(...z);
    const e = z.map((v) => Math.exp(v - mx));
    const s = e.reduce((a, b) => a + b, 0);
    expected.push(...e.map((v) => v / s));
  }
  assertClose(predict(m.model, tf.tensor2d(xs, [4, 6])), expected, 1e-5, 'dense predictions');
});

test('Keras 2 .h5: a pruned model is saved as model.h5 (same file, new weights) beside model.json; both read back with the same predictions', async () => {
  await useCpu();
  const dir = tempDir();
  const fx = await writeKeras2Dense(dir);
  const before = sha256(fs.readFileSync(fx.file));
  const m = await loadModel(fx.file);
  const x = tf.tensor2d(randomArray(new Rng(4), 5 * 6, 1), [5, 6]);
  const out = path.join(dir, 'points', 's0.50');
  const { pruned } = await pruneAndSave(m, x, out);
  assert.deepEqual(fs.readdirSync(out).sort(), ['model.h5', 'model.json', 'note.txt', 'weights.bin']);
  assert.equal(sha256(fs.readFileSync(fx.file)), before, 'the input file is untouched');

  const again = await loadModel(path.join(out, 'model.h5'));
  assert.equal(again.format, 'keras-h5');
  assert.deepEqual(predict(again.model, x), pruned, 'model.h5 predicts exactly like the pruned model');
  const json = await loadModel(path.join(out, 'model.json'));
  assert.equal(json.format, 'tfjs-layers');
  assert.deepEqual(predict(json.model, x), pruned);

  // The written file is the original with only the layer weights changed.
  const a = await dumpH5(fs.readFileSync(fx.file));
  const b = await dumpH5(fs.readFileSync(path.join(out, 'model.h5')));
  assert.deepEqual(b.attrs, a.attrs, 'every attribute (model_config, layer_names as fixed-length strings, ...) kept');
  assert.deepEqual(b.groups, a.groups);
  assert.deepEqual(Object.keys(b.datasets), Object.keys(a.datasets));
  assert.deepEqual(
    b.datasets['/optimizer_weights/training/Adam/Variable_1:0'],
    a.datasets['/optimizer_weights/training/Adam/Variable_1:0'],
    'optimizer state kept as it was',
  );
  assert.deepEqual(
    b.datasets['/model_weights/dense_10/dense_10/bias:0'],
    a.datasets['/model_weights/dense_10/dense_10/bias:0'],
    'biases are not pruned',
  );
  const k1 = b.datasets['/model_weights/dense_10/dense_10/kernel:0'].values;
  assert.deepEqual(
    k1,
    Array.from(m.model.getLayer('dense_10').getWeights()[0].dataSync()),
    'the kernel holds the pruned values',
  );
  assert.equal(k1.filter((v) => v === 0).length, 15);
  k1.forEach((v, i) => assert.ok(v === 0 || v === fx.k1[i], 'kept weights are unchanged'));

  // As a session saves: from the logit model (output activation removed), under the user's topology.
  const logits = await makeLogitModel(m);
  const out2 = path.join(dir, 'points', 'from-logits');
  await saveModel(logits, out2, m.json);
  const viaLogits = await loadModel(path.join(out2, 'model.h5'));
  assert.deepEqual(predict(viaLogits.model, x), pruned, 'model.h5 keeps the softmax and the pruned weights');
});

test('Keras 3 legacy .h5 (Functional, Conv2D + Add): nested weight paths, variable-length strings, Keras 3 config; matches the same network built in TensorFlow.js', async (t) => {
  await useCpu();
  const dir = tempDir();
  const fx = await writeKeras3FunctionalH5(dir);
  const m = await loadModel(fx.file);
  assert.equal(m.format, 'keras-h5');
  assert.deepEqual(m.inputShape, [6, 6, 2]);
  // Reference: the same architecture built directly with the tfjs API, weights set by hand.
  const input = tfl.input({ shape: [6, 6, 2] });
  const c1 = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' });
  const c2 = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' });
  const d = tfl.layers.dense({ units: 3, activation: 'softmax' });
  const a1 = c1.apply(input) as tfl.SymbolicTensor;
  const a2 = c2.apply(a1) as tfl.SymbolicTensor;
  const sum = tfl.layers.add().apply([a1, a2]) as tfl.SymbolicTensor;
  const ref = tfl.model({ inputs: input, outputs: d.apply(tfl.layers.flatten().apply(sum)) as tfl.SymbolicTensor });
  c1.setWeights([tf.tensor(fx.weights.conv2d[0], [3, 3, 2, 4]), tf.tensor(fx.weights.conv2d[1])]);
  c2.setWeights([tf.tensor(fx.weights.conv2d_1[0], [3, 3, 4, 4]), tf.tensor(fx.weights.conv2d_1[1])]);
  d.setWeights([tf.tensor(fx.weights.dense[0], [144, 3]), tf.tensor(fx.weights.dense[1])]);
  const x = tf.tensor4d(randomArray(new Rng(6), 3 * 72, 1), [3, 6, 6, 2]);
  assertClose(predict(m.model, x), predict(ref, x), 1e-5, 'conv predictions');

  const out = path.join(dir, 'pruned');
  const { pruned } = await pruneAndSave(m, x, out);
  const again = await loadModel(path.join(out, 'model.h5'));
  assert.deepEqual(predict(again.model, x), pruned);
  const a = await dumpH5(fs.readFileSync(fx.file));
  const b = await dumpH5(fs.readFileSync(path.join(out, 'model.h5')));
  assert.deepEqual(b.attrs, a.attrs);
  assert.deepEqual(b.groups, a.groups);
  assert.ok(b.groups.includes('/model_weights/top_level_model_weights'), 'top_level_model_weights kept');
  const kernel = b.datasets['/model_weights/conv2d_1/functional/conv2d_1/kernel'].values;
  assert.equal(kernel.filter((v) => v === 0).length, 72);

  // An independent HDF5 reader: Debian's python3-h5py (scripts/test.sh installs it). Where it is missing
  // this check is reported as skipped, not passed.
  const fromPy = h5pyDump(path.join(out, 'model.h5'));
  await t.test('h5py reads the written model.h5 back with the same arrays and layer names', (st) => {
    if (!fromPy)
      return st.skip('python3-h5py is not installed (apt-get install python3-h5py; called as /usr/bin/python3)');
    for (const [p, ds] of Object.entries(b.datasets)) {
      assert.deepEqual(fromPy[p].shape, ds.shape, `h5py: shape of ${p}`);
      assert.deepEqual(fromPy[p].values, ds.values, `h5py: values of ${p}`);
    }
    assert.deepEqual((fromPy['@layer_names'] as unknown as { names: string[] }).names, [
      'conv2d',
      'conv2d_1',
      'add',
      'flatten',
      'dense',
    ]);
  });
});

test('Keras 3 .keras (Sequential, Conv2D + BatchNorm, sigmoid): weights at layers/<class>/vars/i; saved back as model.keras with a new model.weights.h5', async () => {
  await useCpu();
  const dir = tempDir();
  const fx = await writeKeras3Zip(dir);
  const m = await loadModel(fx.file);
  assert.equal(m.format, 'keras-v3');
  assert.equal(m.task, 'binary');
  assert.equal(m.outputKind, 'sigmoid');
  const ref = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: 3, kernelSize: 3, activation: 'relu' }),
      tfl.layers.batchNormalization({ epsilon: 0.001 }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
  });
  ref.layers[0].setWeights([tf.tensor(fx.weights.conv2d[0], [3, 3, 1, 3]), tf.tensor(fx.weights.conv2d[1])]);
  ref.layers[1].setWeights(fx.weights.batch_normalization.map((w) => tf.tensor(w)));
  ref.layers[4].setWeights([tf.tensor(fx.weights.dense[0], [27, 1]), tf.tensor(fx.weights.dense[1])]);
  const x = tf.tensor4d(randomArray(new Rng(7), 4 * 64, 1), [4, 8, 8, 1]);
  assertClose(predict(m.model, x), predict(ref, x), 1e-5, 'predictions');

  const out = path.join(dir, 'pruned');
  const { pruned } = await pruneAndSave(m, x, out);
  assert.deepEqual(fs.readdirSync(out).sort(), ['model.json', 'model.keras', 'note.txt', 'weights.bin']);
  const again = await loadModel(path.join(out, 'model.keras'));
  assert.equal(again.format, 'keras-v3');
  assert.deepEqual(predict(again.model, x), pruned);
  const zipA = readZip(fs.readFileSync(fx.file));
  const zipB = readZip(fs.readFileSync(path.join(out, 'model.keras')));
  assert.deepEqual(
    zipB.map((e) => e.name),
    zipA.map((e) => e.name),
  );
  assert.deepEqual(zipB[1].data, zipA[1].data, 'config.json unchanged');
  const a = await dumpH5(zipA[2].data);
  const b = await dumpH5(zipB[2].data);
  assert.deepEqual(b.attrs, a.attrs);
  assert.deepEqual(b.groups, a.groups);
  assert.deepEqual(b.datasets['/optimizer/vars/2'], a.datasets['/optimizer/vars/2']);
  assert.deepEqual(b.datasets['/layers/batch_normalization/vars/3'], a.datasets['/layers/batch_normalization/vars/3']);
  const head = b.datasets['/layers/dense/vars/0'].values;
  assert.deepEqual(
    head,
    Array.from(m.model.getLayer('head').getWeights()[0].dataSync()),
    'the kernel holds the pruned values',
  );
  assert.ok([13, 14].includes(head.filter((v) => v === 0).length), 'half of 27 weights are zero');
});

test('a Lambda layer is refused by name and class, before anything is built', async () => {
  await useCpu();
  const dir = tempDir();
  const fx = await writeKeras2Dense(dir, { lambda: true });
  await assert.rejects(loadModel(fx.file), expectUserError(/'scale_by_two' is a Lambda layer.*never runs code/));
  await assert.rejects(
    loadModel(fx.file),
    (e: unknown) => (e as UserError).field === 'layer scale_by_two (Lambda)' && (e as UserError).file === fx.file,
  );
});

test('a Keras 3 custom layer is refused by its registered name, even when its class name is a built-in one', async () => {
  await useCpu();
  const fx = await writeKeras3Zip(tempDir(), { custom: true });
  await assert.rejects(loadModel(fx.file), expectUserError(/layer 'head' has class 'MyPackage>Dense'/));
});

test('files that are not Keras models, or whose weights do not fit the architecture, are refused naming the file and what is wrong', async () => {
  await useCpu();
  const dir = tempDir();
  const notH5 = path.join(dir, 'model.h5');
  fs.writeFileSync(notH5, 'hello');
  await assert.rejects(loadModel(notH5), expectUserError(/model\.h5: is not an HDF5 file/));
  const notZip = path.join(dir, 'model.keras');
  fs.writeFileSync(notZip, 'hello');
  await assert.rejects(loadModel(notZip), expectUserError(/cannot be read as a Keras 3 \.keras file/));
  const noConfig = path.join(dir, 'other.keras');
  fs.writeFileSync(
    noConfig,
    writeZip([{ name: 'model.weights.h5', data: Buffer.from('x'), dosTime: 0, dosDate: 0x21 }]),
  );
  await assert.rejects(loadModel(noConfig), expectUserError(/has no config\.json inside/));
  const weightsOnly = path.join(dir, 'weights.h5');
  await writeH5(weightsOnly, (f) => fixedStrings(f, 'layer_names', ['dense']));
  await assert.rejects(loadModel(weightsOnly), expectUserError(/holds weights only/));
  const sub = path.join(dir, 'bad');
  fs.mkdirSync(sub);
  const fx = await writeKeras2Dense(sub, { k2Shape: [3, 5] });
  await assert.rejects(
    loadModel(fx.file),
    expectUserError(
      /weight 'dense_2\/kernel:0' of layer 'dense_2' \(Dense\) has shape \[3, 5\], but the layer needs \[5, 3\]/,
    ),
  );
});

test('Keras 3 config conversion: batch_shape, DTypePolicy, module fields, {args, kwargs} nodes, flat input_layers, L2', () => {
  const k3 = {
    module: 'keras.src.models.functional',
    class_name: 'Functional',
    config: {
      name: 'f',
      layers: [
        {
          module: 'keras.layers',
          class_name: 'InputLayer',
          config: { batch_shape: [null, 4], dtype: 'float32', name: 'in' },
          registered_name: null,
          name: 'in',
          inbound_nodes: [],
        },
        {
          module: 'keras.layers',
          class_name: 'Dense',
          config: {
            name: 'd',
            dtype: POLICY,
            units: 2,
            kernel_regularizer: {
              module: 'keras.regularizers',
              class_name: 'L2',
              config: { l2: 0.5 },
              registered_name: null,
            },
          },
          registered_name: null,
          name: 'd',
          inbound_nodes: [
            {
              args: [k3tensor('in', [null, 4])],
              kwargs: { training: false, mask: { class_name: '__keras_tensor__', config: {} } },
            },
          ],
        },
      ],
      input_layers: ['in', 0, 0],
      output_layers: [['d', 0, 0]],
    },
    registered_name: 'Functional',
  };
  assert.deepEqual(kerasConfigToTfjs(k3), {
    class_name: 'Functional',
    config: {
      name: 'f',
      layers: [
        {
          class_name: 'InputLayer',
          config: { batch_input_shape: [null, 4], dtype: 'float32', name: 'in' },
          name: 'in',
          inbound_nodes: [],
        },
        {
          class_name: 'Dense',
          config: {
            name: 'd',
            dtype: 'float32',
            units: 2,
            kernel_regularizer: { class_name: 'L1L2', config: { l1: 0, l2: 0.5 } },
          },
          name: 'd',
          inbound_nodes: [[['in', 0, 0, { training: false }]]],
        },
      ],
      input_layers: [['in', 0, 0]],
      output_layers: [['d', 0, 0]],
    },
  });
  // A Keras 2 config is left as it is.
  const k2 = {
    class_name: 'Model',
    config: {
      name: 'm',
      layers: [
        {
          class_name: 'Dense',
          name: 'd',
          config: { name: 'd', dtype: 'float32', batch_input_shape: [null, 3] },
          inbound_nodes: [[['in', 0, 0, {}]]],
        },
      ],
      input_layers: [['in', 0, 0]],
      output_layers: [['d', 0, 0]],
    },
  };
  assert.deepEqual(kerasConfigToTfjs(k2), k2);
});

test('zip: stored members round-trip with correct CRC-32; deflated members are read', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926, 'the standard CRC-32 check value');
  const members = [
    { name: 'a.json', data: Buffer.from('{"x":1}'), dosTime: 1, dosDate: 0x21 },
    { name: 'b.bin', data: Buffer.from([0, 1, 2, 255]), dosTime: 2, dosDate: 0x21 },
  ];
  assert.deepEqual(readZip(writeZip(members)), members);
  // A deflated member, built by hand.
  const data = Buffer.from('hello hello hello hello');
  const comp = require('zlib').deflateRawSync(data) as Buffer;
  const zip = writeZip([{ name: 'c.txt', data: comp, dosTime: 0, dosDate: 0x21 }]);
  zip.writeUInt16LE(8, 8); // local header: method deflate
  zip.writeUInt32LE(crc32(data), 14);
  zip.writeUInt32LE(data.length, 22);
  const cd = zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
  zip.writeUInt16LE(8, cd + 10);
  zip.writeUInt32LE(crc32(data), cd + 16);
  zip.writeUInt32LE(data.length, cd + 24);
  assert.deepEqual(readZip(zip)[0].data, data);
  zip.writeUInt32LE((crc32(data) ^ 1) >>> 0, cd + 16);
  assert.throws(() => readZip(zip), /CRC/);
});
