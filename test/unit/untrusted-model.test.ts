/**
 * A model file from a cloned repository is untrusted: nothing in it may make Fair Prune read or
 * write another file. Each crafted file is made by the test; the run must stop with a clear error and
 * exit code 1, and the victim file must be byte-identical afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { spawnSync } from 'child_process';
import { sha256 } from '../../src/core/atomic';
import * as zlib from 'zlib';
import * as tfl from '@tensorflow/tfjs-layers';
import { loadModel, prunableKernels, saveModel, topologyOf } from '../../src/core/model-io';
import { PRUNING_METHODS, pruneModelKernels } from '../../src/core/pruning';
import { Rng } from '../../src/core/rng';
import { h5wasm } from '../../src/core/keras/h5';
import { maxParameters } from '../../src/core/model-limits';
import { readSavedWeights } from '../../src/core/model-files';
import { crc32, readZip } from '../../src/core/keras/zip';
import { expectUserError, tempDir, useCpu } from '../helpers';
import {
  fairprune,
  fairpruneWithPeak,
  pythonWithH5py,
  rawZip,
  writeCsv,
  writeSmallKerasH5,
  writeVictimH5,
} from '../untrusted-fixtures';

const RUN = [
  '--data',
  'data.csv',
  '--label',
  'label',
  '--group',
  'group',
  '--sparsity',
  '0.5',
  '--loss',
  'ce',
  '--epochs',
  '1',
  '--backend',
  'cpu',
  '--bootstrap',
  '10',
  '--out',
  'out',
];

function snapshot(files: string[]): string[] {
  return files.map((f) => sha256(fs.readFileSync(f)));
}

test('the plain crafted model runs (the fixture itself is sound)', async () => {
  await useCpu();
  const dir = tempDir();
  await writeSmallKerasH5(path.join(dir, 'model.h5'));
  const m = await loadModel(path.join(dir, 'model.h5'));
  assert.deepEqual(m.inputShape, [2]);
  writeCsv(path.join(dir, 'data.csv'));
  const r = fairprune(['run', '--model', 'model.h5', ...RUN], dir);
  assert.equal(r.code, 0, r.stderr);
});

test('.h5: a kernel that is an HDF5 external link into another file is refused naming the dataset; the other file is untouched', async () => {
  const dir = tempDir();
  const victim = path.join(dir, 'victim.h5');
  await writeVictimH5(victim);
  await writeSmallKerasH5(path.join(dir, 'evil.h5'), (g, name) => g.create_external_link('victim.h5', '/k', name));
  writeCsv(path.join(dir, 'data.csv'));
  const before = snapshot([victim]);
  const r = fairprune(['run', '--model', 'evil.h5', ...RUN], dir);
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /^error: .*evil\.h5, '\/model_weights\/dense_1\/dense_1\/kernel:0': this dataset or group is an HDF5 external link into another file \('victim\.h5'\).*Fix: save the model again with Keras/m,
  );
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  assert.deepEqual(snapshot([victim]), before, 'the linked file is byte-identical');
  assert.equal(
    fs.existsSync(path.join(dir, 'out', 'sessions')) && fs.readdirSync(path.join(dir, 'out', 'sessions')).length > 0,
    false,
    'no session was started',
  );
});

test('.h5: a soft link whose target passes through an external link is refused', async () => {
  await useCpu();
  const dir = tempDir();
  await writeVictimH5(path.join(dir, 'victim.h5'));
  const file = path.join(dir, 'soft.h5');
  await writeSmallKerasH5(file, (g, name) => {
    g.create_external_link('victim.h5', '/', 'elsewhere');
    g.create_soft_link('/model_weights/dense_1/dense_1/elsewhere/k', name);
  });
  await assert.rejects(
    loadModel(file),
    expectUserError(
      /'\/model_weights\/dense_1\/dense_1\/(elsewhere': this dataset or group is an HDF5 external link|kernel:0': this dataset or group is a soft link)/,
    ),
  );
});

/** External storage and virtual datasets: h5wasm cannot create them, h5py can. */
test('.h5: a kernel stored in another file (external storage) or a virtual dataset is refused; the victims are untouched', async (t) => {
  const py = pythonWithH5py();
  if (!py) {
    t.skip(
      'h5py is not installed (/usr/bin/python3 -c "import h5py" failed): external storage and virtual datasets cannot be made',
    );
    return;
  }
  const dir = tempDir();
  const victimBin = path.join(dir, 'secret.bin');
  fs.writeFileSync(victimBin, Buffer.from(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]).buffer));
  const victimH5 = path.join(dir, 'victim.h5');
  await writeVictimH5(victimH5);
  for (const kind of ['external', 'virtual'] as const) {
    const file = path.join(dir, `${kind}.h5`);
    await writeSmallKerasH5(file);
    const script = `import h5py, sys
with h5py.File(sys.argv[1], 'a') as f:
    g = f['model_weights/dense_1/dense_1']
    del g['kernel:0']
    if sys.argv[2] == 'external':
        g.create_dataset('kernel:0', shape=(2, 4), dtype='<f4', external=[(sys.argv[3], 0, 32)])
    else:
        lay = h5py.VirtualLayout(shape=(2, 4), dtype='<f4')
        lay[:] = h5py.VirtualSource(sys.argv[4], 'k', shape=(2, 4))
        g.create_virtual_dataset('kernel:0', lay)
`;
    const made: { status: number | null; stderr: string } = spawnSync(
      py,
      ['-c', script, file, kind, victimBin, victimH5],
      { encoding: 'utf8' },
    );
    assert.equal(made.status, 0, made.stderr);
    writeCsv(path.join(dir, 'data.csv'));
    const before = snapshot([victimBin, victimH5]);
    const r = fairprune(['run', '--model', `${kind}.h5`, ...RUN], dir);
    assert.equal(r.code, 1, `${kind}: ${r.stderr}`);
    const what =
      kind === 'external'
        ? /stores its data in another file \('.*secret\.bin', HDF5 external storage\)/
        : /is a virtual dataset made of '.*victim\.h5'/;
    assert.match(
      r.stderr,
      new RegExp(
        `^error: .*${kind}\\.h5, '/model_weights/dense_1/dense_1/kernel:0': this dataset or group ${what.source}`,
        'm',
      ),
    );
    assert.doesNotMatch(r.stderr, /HDF5-DIAG/, 'one line, not the HDF5 error stack');
    assert.deepEqual(snapshot([victimBin, victimH5]), before, `${kind}: the victims are byte-identical`);
  }
});

// ---------- the pruned .h5 is a fresh file ----------

test('.h5: the pruned model is written as a fresh file: bytes left in the user file (a deleted attribute), its compression and its chunks are not carried over', async () => {
  await useCpu();
  const dir = tempDir();
  const file = path.join(dir, 'model.h5');
  await writeSmallKerasH5(file, (g, name) =>
    g.create_dataset({
      name,
      data: Float32Array.from([0.5, -0.3, 0.2, 0.9, -0.7, 0.4, 0.1, -0.2]),
      shape: [2, 4],
      dtype: '<f',
      chunks: [1, 4],
      compression: 'gzip',
    }),
  );
  const marker = `LEFTOVER-${'x'.repeat(200)}`;
  const h5 = await h5wasm();
  const f = new h5.File(file, 'a');
  f.create_attribute('leftover', marker);
  f.close();
  const g = new h5.File(file, 'a');
  g.delete_attribute('leftover');
  g.close();
  assert.ok(
    fs.readFileSync(file).includes(marker),
    'the deleted attribute still lies in the user file (the fixture is what it says)',
  );
  const before = snapshot([file]);
  const m = await loadModel(file);
  pruneModelKernels(prunableKernels(m.model), PRUNING_METHODS['magnitude-layer'], 0.5, new Rng(1));
  await saveModel(m.model, path.join(dir, 'pruned'), m.json);
  const written = fs.readFileSync(path.join(dir, 'pruned', 'model.h5'));
  assert.ok(!written.includes(marker), "nothing of the user file's free space is in the pruned file");
  assert.deepEqual(snapshot([file]), before, 'the user file is byte-identical');
  const again = await loadModel(path.join(dir, 'pruned', 'model.h5'));
  assert.deepEqual(
    Array.from(again.model.getLayer('dense_1').getWeights()[0].dataSync()),
    Array.from(m.model.getLayer('dense_1').getWeights()[0].dataSync()),
  );
  const r = new h5.File(path.join(dir, 'pruned', 'model.h5'), 'r');
  try {
    const k = r.get('/model_weights/dense_1/dense_1/kernel:0') as unknown as {
      metadata: { chunks: number[] | null };
      filters: unknown[];
    };
    assert.equal(k.metadata.chunks, null, 'written contiguous, without the gzip filter');
  } finally {
    r.close();
  }
});

test('.h5: data beside the weights past what an optimizer keeps, and types Keras does not write, are refused at load naming the dataset or attribute, with bounded memory', async (t) => {
  const py = pythonWithH5py();
  if (!py)
    return t.skip('h5py is not installed (/usr/bin/python3 -c "import h5py" failed): the crafted files cannot be made');
  const dir = tempDir();
  writeCsv(path.join(dir, 'data.csv'));
  const script = `import h5py, sys, numpy as np
with h5py.File(sys.argv[1], 'a') as f:
    if sys.argv[2] == 'big':
        f.create_dataset('optimizer_weights/huge', shape=(1000000000,), dtype='<f4', chunks=(1000000,))
    else:
        f['model_weights'].attrs['odd'] = np.array([(1, 2.0)], dtype=[('a', '<i4'), ('b', '<f8')])
`;
  for (const kind of ['big', 'compound'] as const) {
    const file = path.join(dir, `${kind}.h5`);
    await writeSmallKerasH5(file);
    const made: { status: number | null; stderr: string } = spawnSync(py, ['-c', script, file, kind], {
      encoding: 'utf8',
    });
    assert.equal(made.status, 0, made.stderr);
    assert.ok(fs.statSync(file).size < 1_000_000, 'a small file');
    const r = fairpruneWithPeak(['run', '--model', `${kind}.h5`, ...RUN], dir);
    assert.equal(r.code, 1, r.stderr);
    if (kind === 'big') {
      assert.match(
        r.stderr,
        /^error: .*big\.h5, '\/optimizer_weights\/huge': holds 4,000,000,000 bytes of data besides the 88 bytes of layer weights .*Fix: save the model again with Keras; to leave out the optimizer, model\.save\(\.\.\., include_optimizer=False\)/m,
      );
      assert.ok(r.peakKb < 400 * 1024, `peak memory ${r.peakKb} KiB`);
    } else {
      assert.match(
        r.stderr,
        /^error: .*compound\.h5, '\/model_weights\.odd': attribute 'odd' holds compound data, which Keras does not write/m,
      );
    }
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
});

// ---------- model.json weight paths ----------

async function tfjsModelIn(dir: string): Promise<string> {
  await useCpu();
  const m = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [2], units: 4, activation: 'relu' }),
      tfl.layers.dense({ units: 2, activation: 'softmax' }),
    ],
  });
  await saveModel(m, dir, topologyOf(m));
  return path.join(dir, 'model.json');
}

function setWeightPath(modelJson: string, p: string): void {
  const json = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  json.weightsManifest[0].paths = [p];
  fs.writeFileSync(modelJson, JSON.stringify(json));
}

test('model.json: weight paths that leave the model folder (.., absolute, a symlink out) are refused naming the path', async () => {
  const dir = tempDir();
  const modelDir = path.join(dir, 'model');
  const modelJson = await tfjsModelIn(modelDir);
  const weights = fs.readFileSync(path.join(modelDir, 'weights.bin'));
  // victims of exactly the right size, so only the path check can stop them
  fs.mkdirSync(path.join(dir, 'private'));
  const keys = path.join(dir, 'private', 'keys.bin');
  fs.writeFileSync(keys, Buffer.alloc(weights.length, 7));
  fs.symlinkSync(keys, path.join(modelDir, 'link.bin'));
  writeCsv(path.join(dir, 'data.csv'));
  const before = snapshot([keys]);
  const cases: [string, RegExp][] = [
    ['../private/keys.bin', /weight file '\.\.\/private\/keys\.bin' leaves the model's folder \('\.\.'\)/],
    [keys, /weight file '.*keys\.bin' is an absolute path/],
    ['link.bin', /weight file 'link\.bin' resolves to '.*private\/keys\.bin', outside the model's folder/],
  ];
  for (const [p, re] of cases) {
    setWeightPath(modelJson, p);
    const r = fairprune(['run', '--model', 'model/model.json', ...RUN], dir);
    assert.equal(r.code, 1, `${p}: ${r.stderr}`);
    assert.match(
      r.stderr,
      new RegExp(
        `^error: .*model\\.json, 'weightsManifest\\[0\\]\\.paths': ${re.source}.*Fix: put the weight files beside model\\.json`,
        'm',
      ),
    );
    await assert.rejects(loadModel(modelJson), expectUserError(re));
  }
  assert.deepEqual(snapshot([keys]), before);
  assert.equal(fs.existsSync(path.join(dir, 'out', 'sessions')), false, 'nothing was written');
  setWeightPath(modelJson, 'weights.bin');
  await loadModel(modelJson); // the same model with its own weights file loads
});

test('a point folder as the editor panels read it (readSavedWeights): sizes before reading, weight paths inside the folder', async () => {
  const dir = tempDir();
  const modelJson = await tfjsModelIn(path.join(dir, 'point'));
  const good = readSavedWeights(modelJson, 2 ** 20);
  assert.deepEqual(
    good.groups.map((g) => g.length),
    [(2 * 4 + 4 + 4 * 2 + 2) * 4],
  );
  assert.throws(
    () => readSavedWeights(modelJson, 40),
    expectUserError(/declare more than the 40 bytes that are read here/),
  );
  fs.writeFileSync(path.join(dir, 'secret.bin'), Buffer.alloc(88));
  setWeightPath(modelJson, '../secret.bin');
  assert.throws(
    () => readSavedWeights(modelJson, 2 ** 20),
    expectUserError(/weight file '\.\.\/secret\.bin' leaves the model's folder/),
  );
  const big = path.join(dir, 'big', 'model.json');
  fs.mkdirSync(path.dirname(big));
  fs.writeFileSync(big, '');
  fs.truncateSync(big, 65 * 2 ** 20); // sparse: 65 MiB declared, nothing read
  assert.throws(
    () => readSavedWeights(big, 2 ** 20),
    expectUserError(/is 68,157,440 bytes, larger than a model\.json can be/),
  );
});

test('--model naming a folder, with or without model.json in it, is a one-line error', async () => {
  const dir = tempDir();
  writeCsv(path.join(dir, 'data.csv'));
  fs.mkdirSync(path.join(dir, 'empty'));
  const none = fairprune(['run', '--model', 'empty', ...RUN], dir);
  assert.equal(none.code, 1);
  assert.match(
    none.stderr,
    /^error: .*empty, '--model': is a folder without a model\.json in it, not a model file\. Fix: give the path of a model\.json, \.h5 or \.keras file\.$/m,
  );
  assert.doesNotMatch(none.stderr, /\n\s+at /);
  await tfjsModelIn(path.join(dir, 'model'));
  const folder = fairprune(['run', '--model', 'model', ...RUN], dir);
  assert.equal(folder.code, 1);
  assert.match(folder.stderr, /is a folder, not a model file\. Fix: give the model file itself: .*model\/model\.json/);
});

// ---------- .keras zip bombs and model size ----------

test('.keras: a member that inflates past its declared size stops at that size, with bounded memory', () => {
  const dir = tempDir();
  const big = Buffer.alloc(300 * 2 ** 20); // 300 MB of zeros deflate to about 300 KB
  const raw = zlib.deflateRawSync(big, { level: 9 });
  assert.ok(raw.length < 1_000_000);
  const config = Buffer.from('{}');
  fs.writeFileSync(
    path.join(dir, 'bomb.keras'),
    rawZip([
      { name: 'config.json', raw: config, method: 0, size: config.length, crc: crc32(config) },
      { name: 'model.weights.h5', raw, method: 8, size: 10, crc: 0 },
    ]),
  );
  writeCsv(path.join(dir, 'data.csv'));
  const r = fairpruneWithPeak(['run', '--model', 'bomb.keras', ...RUN], dir);
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /^error: .*bomb\.keras: cannot be read as a Keras 3 \.keras file: member model\.weights\.h5 inflates to more than the 10 bytes it declares/m,
  );
  // the CLI alone (tfjs, h5wasm) stays far below the 300 MB the member would inflate to
  assert.ok(r.peakKb < 250 * 1024, `peak memory ${r.peakKb} KiB`);
});

test('.keras: members that declare more than the total cap are refused before inflating', () => {
  const small = zlib.deflateRawSync(Buffer.alloc(1000));
  const members = [0, 1, 2].map((i) => ({ name: `m${i}`, raw: small, method: 8 as const, size: 2 ** 29 + 1, crc: 0 }));
  assert.throws(
    () => readZip(rawZip(members)),
    /its members declare more than 1,073,741,824 bytes together \(member m1 brings them to 1,073,741,826\)/,
  );
  assert.throws(() => readZip(rawZip(members.slice(0, 1)), 100), /more than 100 bytes together/);
});

test('a model that declares more parameters than memory can hold is refused with the count and the limit, before building', async () => {
  const dir = tempDir();
  const limit = maxParameters();
  // Keras .h5: a config with a 200,000 × 200,000 Dense layer (40 billion weights), tiny weights in the file
  const file = path.join(dir, 'huge.h5');
  await writeSmallKerasH5(file, undefined, { units: 200_000, inputs: 200_000 });
  writeCsv(path.join(dir, 'data.csv'));
  const r = fairpruneWithPeak(['run', '--model', 'huge.h5', ...RUN], dir);
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(
      `^error: .*huge\\.h5, 'layer dense_1': declares more than ${limit.toLocaleString('en')} parameters \\(40,000,000,000 counted so far, at layer dense_1\\)`,
      'm',
    ),
  );
  assert.ok(r.peakKb < 400 * 1024, `peak memory ${r.peakKb} KiB`);

  // model.json: the manifest declares it before any weight file is read
  const modelJson = await tfjsModelIn(path.join(dir, 'm'));
  const json = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  json.weightsManifest[0].weights[0].shape = [200_000, 200_000];
  fs.writeFileSync(modelJson, JSON.stringify(json));
  await assert.rejects(
    loadModel(modelJson),
    expectUserError(/declares more than [\d,]+ parameters \(40,000,000,000 counted so far, at weightsManifest\[0\] /),
  );
  // and a topology whose layer is huge while the manifest is small: stopped while building
  const t2 = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
  t2.weightsManifest[0].weights[0].shape = [2, 4];
  t2.modelTopology.config.layers[0].config.units = 200_000;
  t2.modelTopology.config.layers[0].config.batch_input_shape = [null, 200_000];
  fs.writeFileSync(modelJson, JSON.stringify(t2));
  await assert.rejects(
    loadModel(modelJson),
    expectUserError(/declares more than [\d,]+ parameters \(40,000,000,000 counted so far, at layer /),
  );
});
