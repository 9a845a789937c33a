/**
 * Structured and gradual pruning: what the session uses of it. See docs/structured-pruning.md.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { CostRecord, LatencyRecord, ModelSize, PruningTarget, StructureRecord } from '../../protocol/results';
import { RUN_DEFAULTS } from '../../protocol/defaults';
import { UserError } from '../errors';
import { modelSize } from '../model-io';
import { countCost } from './flops';
import { compareLatency } from './latency';
import type { StructuredPruning } from './pruner';
import { maxOutputDifference, modelFiles, shrinkModel, shrinkTopology } from './shrink';
import { resolveSkipLayers } from './graph';

export * from './graph';
export * from './flops';
export * from './criteria';
export * from './pruner';
export * from './shrink';
export * from './latency';
export * from './sensitivity';

export const DEFAULT_TARGET: PruningTarget = { metric: RUN_DEFAULTS.target, scope: RUN_DEFAULTS.scope };
/** Structured methods leave the first and last prunable layers alone unless told otherwise. */
export const DEFAULT_STRUCTURED_SKIP = ['first', 'last'];

/** Resolves `first`/`last`/names against the model's prunable layers; a name it lacks is a UserError. */
export function skipSet(spec: string[], prunableLayers: string[], modelPath: string): Set<string> {
  const set = resolveSkipLayers(spec, prunableLayers);
  for (const name of set) {
    if (!prunableLayers.includes(name)) {
      throw new UserError(`layer '${name}' is not a prunable layer of this model.`, {
        file: modelPath,
        field: '--skip-layers',
        fix: `name prunable layers (${prunableLayers.join(', ')}), or first, last, none.`,
      });
    }
  }
  return set;
}

export interface StructuredOutcome {
  structure: StructureRecord;
  /** The shrunk model (caller disposes), or null when nothing was removed. */
  shrunk: tfl.LayersModel | null;
  /** Files of the shrunk model with the user's own topology, to save under `shrunk/`. */
  files: Record<string, string | Uint8Array> | null;
  size: ModelSize | null;
}

/**
 * After fine-tuning: rebuilds the smaller model, checks it against the masked one on `xCheck`, and
 * prepares its files under `userJson` (the user's model.json, output activation included).
 */
export async function finishStructured(
  student: tfl.LayersModel,
  pruning: StructuredPruning,
  userJson: Record<string, unknown>,
  xCheck: tf.Tensor,
  skipped: string[],
): Promise<StructuredOutcome> {
  const removed = pruning.removed();
  const res = await shrinkModel(student, pruning.graph, removed);
  const notes = res.maskedOnly.map((m) => `${m.layer}: masked, not removed — ${m.note}.`);
  const structure: StructureRecord = {
    target: pruning.opts.target,
    reached: pruning.reached,
    layers: pruning.graph.groups.map((g) => {
      const n = removed.get(g.producer)?.length ?? 0;
      return {
        layer: g.producer,
        className: g.className,
        channels: g.channels,
        kept: g.channels - n,
        removed: n > 0 && g.shrinkable,
        ...(g.note ? { note: g.note } : {}),
      };
    }),
    skipped,
    modelDir: null,
    size: null,
    maxOutputDifference: null,
    notes,
  };
  if (pruning.reached + 1e-9 < pruning.opts.finalSparsity) {
    notes.push(
      `the target of ${(pruning.opts.finalSparsity * 100).toFixed(0)}% ${pruning.opts.target.metric} ` +
        'could not be reached with the layers that may be pruned; ' +
        `reached ${(pruning.reached * 100).toFixed(1)}%.`,
    );
  }
  if (!res.kept.size) {
    res.model.dispose();
    return { structure, shrunk: null, files: null, size: null };
  }
  structure.maxOutputDifference = maxOutputDifference(student, res.model, xCheck);
  const { weightData: _w, ...size } = modelSize(res.model);
  structure.size = size;
  let files: Record<string, string | Uint8Array> | null = null;
  try {
    files = await modelFiles(res.model, shrinkTopology(userJson, res.kept));
  } catch (e) {
    notes.push(`the shrunk model could not be written with the original topology (${(e as Error).message}).`);
  }
  return { structure, shrunk: res.model, files, size };
}

/** Parameters and FLOPs before/after, and latency of dense vs the model as it would run. */
export function measureCostAndLatency(
  dense: tfl.LayersModel,
  runs: tfl.LayersModel,
  denseParameters: number,
  runsParameters: number,
  xBatch: tf.Tensor,
  structured: boolean,
  shrunk: boolean,
): { cost: CostRecord; latency: LatencyRecord } {
  const flopsBefore = countCost(dense).flops;
  const flopsAfter = countCost(runs).flops;
  const latency = compareLatency(
    dense,
    runs,
    xBatch,
    { flopsBefore, flopsAfter, structured, shrunk },
    { warmup: 2, runs: 5 },
  );
  return {
    cost: { parametersBefore: denseParameters, parametersAfter: runsParameters, flopsBefore, flopsAfter },
    latency,
  };
}
