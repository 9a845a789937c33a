/**
 * Whose kernels run the numbers in this thread: Fair Prune's own (the default) or tfjs's stock ones
 * only (`--kernels stock`, `FAIRPRUNE_KERNELS=stock`). With stock, nothing of src/core/kernels is
 * registered but the gradient kernels wasm lacks altogether (built from its own kernels; without them no CNN
 * trains on wasm), and the training loop, Adam and the pruning masks take tfjs's ops instead of their
 * passes over wasm's memory (dense-step.ts, conv-step.ts, adam.ts, pruning/masks.ts): a result that
 * changes between the two points at a kernel, one that does not at the model or the method.
 *
 * Kernels are registered into tfjs's one global registry when a backend starts, so the choice is made
 * once per thread, by the first `initBackend`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelChoice } from '../../protocol/results';
import { KERNEL_CHOICES } from '../../protocol/results';
import { RUN_DEFAULTS } from '../../protocol/defaults';
import { UserError } from '../errors';
import { wasmInternals, type WasmBackendInternals } from './wasm-heap';

export const KERNELS_ENV = 'FAIRPRUNE_KERNELS';

let chosen: KernelChoice | null = null;

/** The choice of a request, else of FAIRPRUNE_KERNELS, else the default; a bad value is a UserError naming it. */
export function resolveKernels(requested?: string, field = '--kernels'): KernelChoice {
  const env = process.env[KERNELS_ENV];
  const [value, where] =
    requested !== undefined ? [requested, field] : env ? [env, KERNELS_ENV] : [RUN_DEFAULTS.kernels, field];
  if (!(KERNEL_CHOICES as readonly string[]).includes(value)) {
    throw new UserError(`unknown kernels '${value}'.`, { field: where, fix: `use ${KERNEL_CHOICES.join(' or ')}.` });
  }
  return value as KernelChoice;
}

/** Fixes this thread's kernels; asking for the other choice once kernels are registered is an error. */
export function useKernels(choice: KernelChoice): void {
  if (chosen && chosen !== choice) {
    throw new Error(`this process already runs ${chosen} kernels; ${choice} kernels need a new process`);
  }
  chosen = choice;
}

/** Whether this thread runs tfjs's stock kernels only. */
export function stockKernels(): boolean {
  return (chosen ?? resolveKernels()) === 'stock';
}

/** The wasm backend's memory for Fair Prune's passes over it, or null: another backend, or stock kernels. */
export function fastHeap(): WasmBackendInternals | null {
  return stockKernels() ? null : wasmInternals(tf.backend());
}

/** For the session log: which kernels ran. */
export function kernelsSentence(choice: KernelChoice): string {
  return choice === 'stock'
    ? "tfjs's stock kernels only (no Fair Prune kernels, heap training steps or fused Adam)"
    : "Fair Prune's kernels in front of tfjs's where they apply (--kernels stock: tfjs's only)";
}
