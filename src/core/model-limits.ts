/**
 * How large a model Fair Prune agrees to build. A model file states its layers' sizes; a crafted or
 * mistaken one (a Dense layer of a billion units) would otherwise exhaust memory while TensorFlow.js
 * allocates its weights. Every weight a layer asks for is counted before it is allocated, and the
 * build stops with the count and the limit once the total passes the limit.
 */
import * as os from 'os';
import * as tfl from '@tensorflow/tfjs-layers';
import { UserError } from './errors';

/**
 * Parameters a session can hold: fine-tuning keeps about eight float32 copies of each weight (the
 * dense and the pruned model, gradients, Adam's two moments, masks, the saved copy), and the wasm
 * backend addresses at most 4 GiB.
 */
export function maxParameters(totalMemoryBytes = os.totalmem()): number {
  return Math.floor(Math.min(totalMemoryBytes, 4 * 2 ** 30) / (8 * 4));
}

export function tooLargeError(file: string, count: number, limit: number, where: string): UserError {
  return new UserError(
    `declares more than ${limit.toLocaleString('en')} parameters ` +
      `(${count.toLocaleString('en')} counted so far, at ${where}), ` +
      `more than this machine's memory can fine-tune.`,
    {
      file,
      field: where,
      fix:
        `prune a model with at most ${limit.toLocaleString('en')} parameters, ` +
        'or check the layer sizes in the model file.',
    },
  );
}

let active: { file: string; count: number; limit: number } | undefined;

/**
 * Runs `build` (a tfjs model build) while every `addWeight` is counted first: past `limit`
 * parameters the build throws a UserError naming `file` and the layer, before allocating.
 */
export async function buildWithinLimit<T>(file: string, build: () => Promise<T>, limit = maxParameters()): Promise<T> {
  const proto = tfl.layers.Layer.prototype as unknown as { addWeight: (...args: unknown[]) => unknown };
  const original = proto.addWeight;
  if (active) return build(); // already counting (a nested build): the outer count applies
  active = { file, count: 0, limit };
  proto.addWeight = function (this: { name: string }, name: unknown, shape: unknown, ...rest: unknown[]) {
    const a = active;
    if (a && Array.isArray(shape)) {
      a.count += shape.reduce((p: number, d: unknown) => p * (typeof d === 'number' && d > 0 ? d : 1), 1);
      if (a.count > a.limit) throw tooLargeError(a.file, a.count, a.limit, `layer ${this.name}`);
    }
    return original.call(this, name, shape, ...rest);
  };
  try {
    return await build();
  } finally {
    proto.addWeight = original;
    active = undefined;
  }
}
