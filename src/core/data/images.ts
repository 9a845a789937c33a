/**
 * Images named in a CSV column become model inputs: decoded (PNG, JPEG, WebP), resized to the
 * model's height × width (stretched, bilinear) when they differ, converted to its channel count
 * (grey = ITU-R 601 luma as PIL/Keras compute it; alpha dropped unless the model takes 4 channels)
 * and divided by the pixel scale. EXIF orientation is not applied (Keras does not apply it either).
 */
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
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

/** Resolves an image path from the CSV: relative paths are relative to the CSV's folder. */
export function resolveImagePath(csvPath: string, value: string): string {
  return path.resolve(path.dirname(path.resolve(csvPath)), value);
}

function imageError(csvPath: string, column: string, job: ImageJob, problem: string, fix: string): UserError {
  return new UserError(`image '${job.value}' ${problem}`, { file: csvPath, field: column, row: job.row, fix });
}

/** Width, height and channels (1 grey, 3 colour; alpha not counted) of the first image, to size a new model. */
export async function probeImage(csvPath: string, column: string, job: ImageJob): Promise<{ height: number; width: number; channels: number }> {
  const file = resolveImagePath(csvPath, job.value);
  if (!fs.existsSync(file)) throw imageError(csvPath, column, job, `does not exist (looked for ${file}).`, 'paths in the image column are relative to the CSV file’s folder.');
  try {
    const m = await sharp(file).metadata();
    const grey = m.space === 'b-w' || m.space === 'grey16' || (m.channels ?? 3) <= 2;
    return { height: m.height!, width: m.width!, channels: grey ? 1 : 3 };
  } catch (e) {
    throw imageError(csvPath, column, job, `cannot be decoded (${(e as Error).message}).`, 'replace it with a valid PNG, JPEG or WebP file.');
  }
}

/**
 * Decodes every image into `out` (rows × height × width × channels, in job order). Returns how many
 * images had to be resized and one example size.
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
      const file = resolveImagePath(csvPath, job.value);
      if (!fs.existsSync(file)) {
        throw imageError(csvPath, column, job, `does not exist (looked for ${file}).`, 'paths in the image column are relative to the CSV file’s folder; fix the path or add the file.');
      }
      let data: Buffer;
      let got: number;
      try {
        const img = sharp(file, { failOn: 'error' });
        const meta = await img.metadata();
        if (meta.width !== width || meta.height !== height) {
          resized++;
          example ??= `${meta.width}×${meta.height} → ${width}×${height}`;
          img.resize(width, height, { fit: 'fill', kernel: 'linear' });
        }
        if (channels === 4) img.toColourspace('srgb').ensureAlpha();
        else img.removeAlpha().toColourspace('srgb');
        const r = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
        data = r.data;
        got = r.info.channels;
        if (r.info.width !== width || r.info.height !== height || (got !== 3 && got !== 4)) {
          throw new Error(`decoded to ${r.info.width}×${r.info.height}×${got}`);
        }
      } catch (e) {
        throw imageError(csvPath, column, job, `cannot be decoded (${(e as Error).message}).`, 'replace it with a valid PNG, JPEG or WebP file.');
      }
      convertPixels(data, got, channels, pixelScale, out, k * per);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, jobs.length)) }, worker));
  return { resized, example };
}

/**
 * Interleaved 8-bit RGB(A) pixels → `channels` floats divided by `scale`, written at `offset`.
 * Grey is PIL's integer luma: (R·19595 + G·38470 + B·7471 + 32768) >> 16.
 */
export function convertPixels(src: Uint8Array, srcChannels: number, channels: number, scale: number, out: Float32Array, offset: number): void {
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
