/**
 * Images named in a CSV column become model inputs: decoded (PNG, JPEG, WebP), resized to the
 * model's height × width (stretched, bilinear with PIL's antialiasing, as Keras's `load_img` does)
 * when they differ, converted to its channel count (grey = ITU-R 601 luma as PIL/Keras compute it;
 * alpha dropped unless the model takes 4 channels) and divided by the pixel scale. EXIF orientation is
 * not applied (Keras does not apply it either).
 *
 * PNG and JPEG are decoded in JavaScript (pngjs, jpeg-js), the same on every platform, and loaded only
 * when a session has an image column. WebP needs the optional native `sharp` package, loaded only
 * when a WebP file is met: the extension does not ship it (its binaries are per platform), the command
 * line uses it where npm installed it.
 */
import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';

export interface ImageTarget {
  height: number;
  width: number;
  channels: number;
  pixelScale: number;
}

export interface ImageJob {
  /** The value in the CSV. */
  value: string;
  /** 1-based data row. */
  row: number;
}

/** A decoded image: 8-bit RGBA, row-major; `grey` when the file stores one colour channel. */
export interface DecodedImage {
  width: number;
  height: number;
  rgba: Uint8Array;
  grey: boolean;
}

/** Resolves an image path from the CSV: relative paths are relative to the CSV's folder. */
export function resolveImagePath(csvPath: string, value: string): string {
  return path.resolve(path.dirname(path.resolve(csvPath)), value);
}

function imageError(csvPath: string, column: string, job: ImageJob, problem: string, fix: string): UserError {
  return new UserError(`image '${job.value}' ${problem}`, { file: csvPath, field: column, row: job.row, fix });
}

const UNDECODABLE_FIX = 'replace it with a valid PNG, JPEG or WebP file.';

/** Thrown for a WebP file where `sharp` cannot be loaded: its own message and fix, not "cannot be decoded". */
class NoWebpDecoder extends Error {}

type SharpModule = typeof import('sharp');
let sharpModule: SharpModule | null | undefined;

/** The optional `sharp` package, required on first use (null when it is not installed or fails to load). */
function loadSharp(): SharpModule | null {
  if (sharpModule === undefined) {
    try {
      // A plain require (not an import): the bundles keep `sharp` external, and it must not load at start-up.
      sharpModule = require('sharp') as SharpModule;
    } catch {
      sharpModule = null;
    }
  }
  return sharpModule;
}

type Format = 'png' | 'jpeg' | 'webp';

/** The format by the file's first bytes (not its name). */
export function sniffFormat(bytes: Uint8Array): Format | null {
  const at = (i: number, ...b: number[]) => b.every((v, k) => bytes[i + k] === v);
  if (at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'png';
  if (at(0, 0xff, 0xd8, 0xff)) return 'jpeg';
  if (at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return 'webp';
  return null;
}

/** Number of colour components in a JPEG's frame header (SOFn), or 0 if none is found. */
function jpegComponents(bytes: Uint8Array): number {
  let i = 2;
  while (i + 9 < bytes.length) {
    if (bytes[i] !== 0xff) return 0;
    const marker = bytes[i + 1];
    if (marker === 0xff) {
      i++;
      continue;
    }
    const length = (bytes[i + 2] << 8) | bytes[i + 3];
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) return bytes[i + 9];
    i += 2 + length;
  }
  return 0;
}

/** Decodes a PNG, JPEG or WebP file's bytes to 8-bit RGBA. Throws on anything else or a broken file. */
export async function decodeImage(bytes: Buffer): Promise<DecodedImage> {
  const format = sniffFormat(bytes);
  if (format === 'png') {
    const { PNG } = require('pngjs') as typeof import('pngjs');
    const png = PNG.sync.read(bytes);
    return { width: png.width, height: png.height, rgba: png.data, grey: !png.color };
  }
  if (format === 'jpeg') {
    const jpeg = require('jpeg-js') as typeof import('jpeg-js');
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
    return { width: img.width, height: img.height, rgba: img.data, grey: jpegComponents(bytes) === 1 };
  }
  if (format === 'webp') {
    const sharp = loadSharp();
    if (!sharp)
      throw new NoWebpDecoder(
        'is a WebP file, and WebP needs the optional sharp package, which this installation lacks',
      );
    const img = sharp(bytes, { failOn: 'error' });
    const meta = await img.metadata();
    const r = await img
      .toColourspace('srgb')
      .ensureAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const grey = meta.space === 'b-w' || meta.space === 'grey16' || (meta.channels ?? 3) <= 2;
    return { width: r.info.width, height: r.info.height, rgba: r.data, grey };
  }
  throw new Error('it is not a PNG, JPEG or WebP file (judged by its first bytes)');
}

/** Reads and decodes one image of the CSV, turning every failure into an error naming file, column and row. */
async function readImage(csvPath: string, column: string, job: ImageJob, missingFix: string): Promise<DecodedImage> {
  const file = resolveImagePath(csvPath, job.value);
  let bytes: Buffer;
  try {
    // Read synchronously: thousands of small files, each a round trip through libuv's thread pool
    // otherwise, and the engine runs at the lowest priority, where every such hop waits for a core.
    bytes = fs.readFileSync(file);
  } catch {
    throw imageError(csvPath, column, job, `does not exist (looked for ${file}).`, missingFix);
  }
  try {
    return await decodeImage(bytes);
  } catch (e) {
    if (e instanceof NoWebpDecoder) {
      throw imageError(
        csvPath,
        column,
        job,
        `${e.message}.`,
        'convert the images to PNG (lossless) or JPEG, or run the fairprune command line where npm installed sharp.',
      );
    }
    throw imageError(csvPath, column, job, `cannot be decoded (${(e as Error).message}).`, UNDECODABLE_FIX);
  }
}

/** Width, height and channels (1 grey, 3 colour; alpha not counted) of the first image, to size a new model. */
export async function probeImage(
  csvPath: string,
  column: string,
  job: ImageJob,
): Promise<{ height: number; width: number; channels: number }> {
  const hint = 'paths in the image column are relative to the CSV file’s folder.';
  const img = await readImage(csvPath, column, job, hint);
  return { height: img.height, width: img.width, channels: img.grey ? 1 : 3 };
}

/**
 * Decodes every image into `out` (rows × height × width × channels, in job order). Returns how many
 * images had to be resized and one example size. Reading and decoding run on this thread; `concurrency`
 * workers take turns between images (WebP, decoded by sharp off this thread, overlaps).
 */
export async function loadImages(
  csvPath: string,
  column: string,
  jobs: ImageJob[],
  target: ImageTarget,
  out: Float32Array,
  concurrency = 4,
): Promise<{ resized: number; example?: string }> {
  const { height, width, channels, pixelScale } = target;
  const per = height * width * channels;
  let resized = 0;
  let example: string | undefined;
  let next = 0;
  const worker = async () => {
    for (;;) {
      const k = next++;
      if (k >= jobs.length) return;
      const job = jobs[k];
      const img = await readImage(
        csvPath,
        column,
        job,
        'paths in the image column are relative to the CSV file’s folder; fix the path or add the file.',
      );
      let rgba = img.rgba;
      if (img.width !== width || img.height !== height) {
        resized++;
        example ??= `${img.width}×${img.height} → ${width}×${height}`;
        rgba = resizeBilinear(rgba, img.width, img.height, width, height);
      }
      convertPixels(rgba, 4, channels, pixelScale, out, k * per);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, jobs.length)) }, worker));
  return { resized, example };
}

/**
 * Weights of a separable bilinear (triangle) filter from `inSize` to `outSize` samples, as PIL computes
 * them: when shrinking, the filter widens by the scale, so every input pixel counts (antialiasing).
 */
function filterWeights(
  inSize: number,
  outSize: number,
): { start: Int32Array; count: Int32Array; weights: Float64Array; taps: number } {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * taps);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5));
    let total = 0;
    for (let i = lo; i < hi; i++) {
      const w = Math.max(0, 1 - Math.abs((i - center + 0.5) / filterScale));
      weights[o * taps + i - lo] = w;
      total += w;
    }
    for (let i = 0; i < hi - lo; i++) weights[o * taps + i] = total > 0 ? weights[o * taps + i] / total : 0;
    start[o] = lo;
    count[o] = hi - lo;
  }
  return { start, count, weights, taps };
}

/** Resizes 8-bit RGBA pixels to `outWidth` × `outHeight` (stretched, bilinear, rounded back to 8 bits). */
export function resizeBilinear(
  src: Uint8Array,
  inWidth: number,
  inHeight: number,
  outWidth: number,
  outHeight: number,
): Uint8Array {
  const h = filterWeights(inWidth, outWidth);
  const v = filterWeights(inHeight, outHeight);
  const mid = new Float64Array(outWidth * inHeight * 4);
  for (let y = 0; y < inHeight; y++) {
    for (let x = 0; x < outWidth; x++) {
      for (let c = 0; c < 4; c++) {
        let s = 0;
        for (let t = 0; t < h.count[x]; t++)
          s += h.weights[x * h.taps + t] * src[(y * inWidth + h.start[x] + t) * 4 + c];
        mid[(y * outWidth + x) * 4 + c] = s;
      }
    }
  }
  const out = new Uint8Array(outWidth * outHeight * 4);
  for (let y = 0; y < outHeight; y++) {
    for (let x = 0; x < outWidth; x++) {
      for (let c = 0; c < 4; c++) {
        let s = 0;
        for (let t = 0; t < v.count[y]; t++)
          s += v.weights[y * v.taps + t] * mid[((v.start[y] + t) * outWidth + x) * 4 + c];
        out[(y * outWidth + x) * 4 + c] = Math.min(255, Math.max(0, Math.round(s)));
      }
    }
  }
  return out;
}

/**
 * Interleaved 8-bit RGB(A) pixels → `channels` floats divided by `scale`, written at `offset`.
 * Grey is PIL's integer luma: (R·19595 + G·38470 + B·7471 + 32768) >> 16.
 */
export function convertPixels(
  src: Uint8Array,
  srcChannels: number,
  channels: number,
  scale: number,
  out: Float32Array,
  offset: number,
): void {
  const pixels = src.length / srcChannels;
  let o = offset;
  for (let p = 0, s = 0; p < pixels; p++, s += srcChannels) {
    if (channels === 1) {
      out[o++] = ((src[s] * 19595 + src[s + 1] * 38470 + src[s + 2] * 7471 + 32768) >> 16) / scale;
    } else {
      out[o++] = src[s] / scale;
      out[o++] = src[s + 1] / scale;
      out[o++] = src[s + 2] / scale;
      if (channels === 4) out[o++] = (srcChannels === 4 ? src[s + 3] : 255) / scale;
    }
  }
}
