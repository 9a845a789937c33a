import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { loadDataset, loadDatasetForTraining } from '../../src/core/data/dataset';
import { UserError } from '../../src/core/errors';
import { Rng } from '../../src/core/rng';

const W = 4;
const H = 3;

/** A folder with `n` random RGB PNGs (W×H) under imgs/, and their raw pixels. */
async function makeImages(n: number, seed: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-data-img-'));
  fs.mkdirSync(path.join(dir, 'imgs'));
  const rng = new Rng(seed);
  const pixels: Uint8Array[] = [];
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const px = new Uint8Array(W * H * 3);
    for (let k = 0; k < px.length; k++) px[k] = rng.int(256);
    const name = `imgs/im${i}.PNG`;
    await sharp(Buffer.from(px), { raw: { width: W, height: H, channels: 3 } })
      .png()
      .toFile(path.join(dir, name));
    pixels.push(px);
    names.push(name);
  }
  return { dir, pixels, names };
}

function writeCsv(dir: string, header: string, rows: string[]): string {
  const p = path.join(dir, 'data.csv');
  fs.writeFileSync(p, [header, ...rows].join('\n') + '\n');
  return p;
}

const isUserError =
  (re: RegExp, extra: (e: UserError) => boolean = () => true) =>
  (e: unknown) =>
    e instanceof UserError && re.test(e.message) && extra(e);

test('the image column is found by its file names, paths are relative to the CSV, pixels are scaled to 0–1', async () => {
  const { dir, pixels, names } = await makeImages(6, 1);
  const csv = writeCsv(
    dir,
    'file,g,y',
    names.map((n, i) => `"${n}",${i % 2 ? 'a' : 'b'},${i % 2}`),
  );
  const d = await loadDataset(
    { csvPath: csv, label: 'y', groups: ['g'], seed: 1 },
    { inputShape: [H, W, 3], outputUnits: 1 },
  );
  assert.equal(d.record.imageColumn, 'file');
  assert.equal(d.record.features, null);
  assert.equal(d.record.pixelScale, 255);
  assert.deepEqual(d.sampleShape, [H, W, 3]);
  const per = H * W * 3;
  for (let i = 0; i < 6; i++)
    for (let k = 0; k < per; k++) assert.ok(Math.abs(d.x[i * per + k] - pixels[i][k] / 255) < 1e-6);
  // --pixel-scale 1 for models trained on 0–255
  const raw = await loadDataset(
    { csvPath: csv, label: 'y', groups: ['g'], seed: 1, pixelScale: 1 },
    { inputShape: [H, W, 3], outputUnits: 1 },
  );
  assert.equal(raw.x[5], pixels[0][5]);
  assert.equal(raw.record.pixelScale, 1);
});

test('channels follow the model: grey is luma (0.299 R + 0.587 G + 0.114 B), grey images give 3 equal channels', async () => {
  const { dir, pixels, names } = await makeImages(4, 2);
  const csv = writeCsv(
    dir,
    'y,g,path',
    names.map((n, i) => `${i % 2},g${i % 2},${n}`),
  );
  const d = await loadDataset(
    { csvPath: csv, label: 'y', groups: ['g'], seed: 1 },
    { inputShape: [H, W, 1], outputUnits: 1 },
  );
  for (let i = 0; i < 4; i++) {
    for (let p = 0; p < H * W; p++) {
      const [r, g, b] = [pixels[i][p * 3], pixels[i][p * 3 + 1], pixels[i][p * 3 + 2]];
      const luma = 0.299 * r + 0.587 * g + 0.114 * b;
      assert.ok(Math.abs(d.x[i * H * W + p] * 255 - luma) <= 0.51, `image ${i} pixel ${p}`);
    }
  }
  // a [h, w] input (no channel axis) is grey too
  const flat = await loadDataset(
    { csvPath: csv, label: 'y', groups: ['g'], seed: 1 },
    { inputShape: [H, W], outputUnits: 1 },
  );
  assert.deepEqual([...flat.x], [...d.x]);
  // a single-channel PNG into a 3-channel model
  const grey = new Uint8Array(W * H).map((_, k) => k * 20);
  await sharp(Buffer.from(grey), { raw: { width: W, height: H, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toFile(path.join(dir, 'grey.png'));
  assert.equal((await sharp(path.join(dir, 'grey.png')).metadata()).channels, 1);
  const csv2 = path.join(dir, 'grey.csv');
  fs.writeFileSync(csv2, 'y,g,path\n0,a,grey.png\n1,b,grey.png\n0,a,grey.png\n1,b,grey.png\n');
  const g3 = await loadDataset(
    { csvPath: csv2, label: 'y', groups: ['g'], seed: 1 },
    { inputShape: [H, W, 3], outputUnits: 1 },
  );
  for (let p = 0; p < W * H; p++)
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(g3.x[p * 3 + c] - grey[p] / 255) < 1e-6);
});

test('images of another size are resized to the model input (with a warning); jpg/jpeg/webp are found too', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fp-data-img-'));
  const colours = [
    [200, 40, 10],
    [0, 128, 255],
  ];
  const files = ['a.jpg', 'b.JPEG', 'c.webp', 'd.png'];
  for (let i = 0; i < files.length; i++) {
    const [r, g, b] = colours[i % 2];
    const img = sharp({ create: { width: 10, height: 8, channels: 3, background: { r, g, b } } });
    const f = path.join(dir, files[i]);
    if (files[i].endsWith('webp')) await img.webp({ lossless: true }).toFile(f);
    else if (/jpe?g$/i.test(files[i])) await img.jpeg({ quality: 100 }).toFile(f);
    else await img.png().toFile(f);
  }
  const csv = writeCsv(
    dir,
    'y,g,img',
    files.map((f, i) => `${i % 2},g,${f}`),
  );
  const d = await loadDataset(
    { csvPath: csv, label: 'y', groups: ['g'], seed: 1, splitFractions: { train: 0.5, validation: 0, test: 0.5 } },
    { inputShape: [H, W, 3], outputUnits: 1 },
  );
  assert.ok(d.record.warnings.some((w) => /4 of 4 images were resized .*10×8 → 4×3/.test(w)));
  const per = H * W * 3;
  for (let i = 0; i < files.length; i++) {
    for (let p = 0; p < H * W; p++) {
      for (let c = 0; c < 3; c++)
        assert.ok(Math.abs(d.x[i * per + p * 3 + c] * 255 - colours[i % 2][c]) <= 3, `${files[i]} pixel ${p}`);
    }
  }
});

test('a missing or undecodable image is an error naming the file and the row', async () => {
  const { dir, names } = await makeImages(3, 3);
  fs.writeFileSync(path.join(dir, 'imgs', 'broken.png'), 'this is not a png');
  const spec = (csv: string) => ({ csvPath: csv, label: 'y', groups: ['g'], seed: 1 });
  const csvMissing = writeCsv(dir, 'y,g,img', [
    `0,a,${names[0]}`,
    `1,a,${names[1]}`,
    '0,b,imgs/nope.png',
    `1,b,${names[2]}`,
  ]);
  await assert.rejects(
    loadDataset(spec(csvMissing), { inputShape: [H, W, 3], outputUnits: 1 }),
    isUserError(/image 'imgs\/nope.png' does not exist/, (e) => e.row === 3 && e.field === 'img'),
  );
  const csvBroken = writeCsv(dir, 'y,g,img', [
    `0,a,${names[0]}`,
    '1,a,imgs/broken.png',
    `0,b,${names[1]}`,
    `1,b,${names[2]}`,
  ]);
  await assert.rejects(
    loadDataset(spec(csvBroken), { inputShape: [H, W, 3], outputUnits: 1 }),
    isUserError(/image 'imgs\/broken.png' cannot be decoded/, (e) => e.row === 2),
  );
  const csvEmpty = writeCsv(dir, 'y,g,img', [`0,a,${names[0]}`, '1,a,NA', `0,b,${names[1]}`, `1,b,${names[2]}`]);
  await assert.rejects(
    loadDataset(spec(csvEmpty), { inputShape: [H, W, 3], outputUnits: 1 }),
    isUserError(/image column 'img' has a missing value/, (e) => e.row === 2),
  );
});

test('--image-column, two image columns, and an image column beside a tabular model', async () => {
  const { dir, names } = await makeImages(4, 4);
  const csv = writeCsv(
    dir,
    'y,g,a,b,x',
    names.map((n, i) => `${i % 2},g${i % 2},${n},${names[(i + 1) % 4]},${i}`),
  );
  await assert.rejects(
    loadDataset({ csvPath: csv, label: 'y', groups: ['g'], seed: 1 }, { inputShape: [H, W, 3], outputUnits: 1 }),
    isUserError(/more than one column holds image file names.*--image-column/),
  );
  const d = await loadDataset(
    { csvPath: csv, label: 'y', groups: ['g'], seed: 1, imageColumn: 'b' },
    { inputShape: [H, W, 3], outputUnits: 1 },
  );
  assert.equal(d.record.imageColumn, 'b');
  const viaA = await loadDataset(
    { csvPath: csv, label: 'y', groups: ['g'], seed: 1, imageColumn: 'a' },
    { inputShape: [H, W, 3], outputUnits: 1 },
  );
  // row i of b is row i+1 of a
  const per = H * W * 3;
  assert.deepEqual([...d.x.subarray(0, per)], [...viaA.x.subarray(per, 2 * per)]);
  // a tabular model: file-name columns are never features
  const t = await loadDataset(
    { csvPath: csv, label: 'y', groups: ['g'], seed: 1 },
    { inputShape: [1], outputUnits: 1 },
  );
  assert.deepEqual(t.record.features, ['x']);
  await assert.rejects(
    loadDataset(
      { csvPath: csv, label: 'y', groups: ['g'], seed: 1, imageColumn: 'a' },
      { inputShape: [5], outputUnits: 1 },
    ),
    isUserError(/not \[height, width, channels\]/),
  );
});

test('training on images records size, channels and pixel scale; a later run applies them', async () => {
  const { dir, pixels, names } = await makeImages(6, 5);
  const csv = writeCsv(
    dir,
    'y,g,img',
    names.map((n, i) => `${i % 2},g${i % 3},${n}`),
  );
  const t = await loadDatasetForTraining({ csvPath: csv, label: 'y', groups: ['g'], seed: 1, pixelScale: 1 });
  assert.deepEqual(t.preprocessing.image, { column: 'img', height: H, width: W, channels: 3, pixelScale: 1 });
  assert.deepEqual(t.dataset.sampleShape, [H, W, 3]);
  assert.equal(t.dataset.x[7], pixels[0][7]);
  const later = await loadDataset(
    { csvPath: csv, label: 'y', groups: ['g'], seed: 1 },
    { inputShape: [H, W, 3], outputUnits: 1 },
    { path: path.join(dir, 'pp.json'), value: t.preprocessing },
  );
  assert.equal(later.record.pixelScale, 1);
  assert.deepEqual([...later.x], [...t.dataset.x]);
  await assert.rejects(
    loadDataset(
      { csvPath: csv, label: 'y', groups: ['g'], seed: 1, pixelScale: 255 },
      { inputShape: [H, W, 3], outputUnits: 1 },
      { path: 'pp.json', value: t.preprocessing },
    ),
    isUserError(/--pixel-scale 255 differs/),
  );
});

test('resizing is bilinear with PIL’s antialiasing: shrinking by 2 weighs 3 pixels 3:3:1 or 1:3:3', async () => {
  const { resizeBilinear } = await import('../../src/core/data/images');
  // One row of 4 grey pixels (RGBA), shrunk to 2: PIL's triangle filter widened to ±2 pixels.
  const src = new Uint8Array([0, 100, 200, 255].flatMap((v) => [v, v, v, 255]));
  const out = resizeBilinear(src, 4, 1, 2, 1);
  // (0·0.75 + 100·0.75 + 200·0.25) / 1.75 = 71.4 and (100·0.25 + 200·0.75 + 255·0.75) / 1.75 = 209.3.
  assert.deepEqual(Array.from(out), [71, 71, 71, 255, 209, 209, 209, 255]);
  // Enlarging interpolates between neighbours: 2 → 4 pixels gives 0, 25, 75, 100 (edges clamp).
  const up = resizeBilinear(new Uint8Array([0, 0, 0, 0, 100, 100, 100, 100]), 2, 1, 4, 1);
  assert.deepEqual(
    Array.from(up).filter((_, i) => i % 4 === 0),
    [0, 25, 75, 100],
  );
});
