/**
 * Per-layer sensitivity (after NNI's sensitivity analysis): each layer alone is pruned to a few
 * levels with no fine-tuning, and accuracy and worst-group accuracy are measured (on validation
 * rows, so that the allocation it feeds never looks at the test split). `allocationFromScan` turns
 * it into per-layer shares for the sweep: each layer gets the largest scanned level at which its
 * worst-group accuracy stays within `tolerance` of the dense model's (a layer that loses more even at
 * the smallest level gets 0, i.e. is left alone); the sweep then scales all shares together until the
 * model-wide target is reached (`selectChannels` with `allocation`).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { SensitivityRow, Task } from '../../protocol/results';
import { predictProbabilities } from '../train';
import { predictedClass } from '../metrics';
import type { ChannelGroup, ModelGraph } from './graph';
import { buildMasks } from './pruner';

export interface ScanData {
  x: tf.Tensor;
  indices: Int32Array;
  labels: Int32Array;
  groupIds: Int32Array;
  numGroups: number;
  task: Task;
}

/** Accuracy and worst-group accuracy of a logit model on the scan rows. */
export function groupAccuracy(model: tfl.LayersModel, d: ScanData): { accuracy: number; worstGroupAccuracy: number } {
  const probs = predictProbabilities(model, d.task, d.x, d.indices);
  const width = probs.length / d.indices.length;
  const right = new Float64Array(d.numGroups);
  const count = new Float64Array(d.numGroups);
  let total = 0;
  d.indices.forEach((r, i) => {
    const ok = predictedClass(probs, width, i) === d.labels[r] ? 1 : 0;
    total += ok;
    right[d.groupIds[r]] += ok;
    count[d.groupIds[r]]++;
  });
  let worst = Infinity;
  for (let g = 0; g < d.numGroups; g++) if (count[g] > 0) worst = Math.min(worst, right[g] / count[g]);
  return { accuracy: total / Math.max(1, d.indices.length), worstGroupAccuracy: Number.isFinite(worst) ? worst : NaN };
}

/**
 * Prunes each group alone to each level (fraction of its channels, lowest `scores` first), measures,
 * and restores the weights. `scores` come from the structured criterion, in `groups` order.
 */
export function sensitivityScan(
  model: tfl.LayersModel,
  graph: ModelGraph,
  groups: ChannelGroup[],
  scores: Float64Array[],
  levels: number[],
  data: ScanData,
): SensitivityRow[] {
  const rows: SensitivityRow[] = [];
  groups.forEach((g, gi) => {
    const byScore = Array.from(scores[gi], (_, i) => i).sort((a, b) => scores[gi][a] - scores[gi][b] || a - b);
    for (const level of levels) {
      const n = Math.min(g.channels - 1, Math.round(level * g.channels));
      const masks = buildMasks(model, [g], new Map([[g.producer, byScore.slice(0, n)]]));
      const saved = [...masks.values()].map(({ variable }) => tf.keep(tf.clone(variable)));
      tf.tidy(() => {
        for (const { variable, mask } of masks.values()) variable.assign(tf.mul(variable, mask));
      });
      const m = groupAccuracy(model, data);
      [...masks.values()].forEach(({ variable, mask }, i) => {
        variable.assign(saved[i]);
        saved[i].dispose();
        mask.dispose();
      });
      rows.push({ layer: g.producer, level, ...m });
    }
  });
  return rows;
}

/** layer → largest scanned level whose worst-group accuracy is within `tolerance` of dense (0 if none). */
export function allocationFromScan(
  rows: SensitivityRow[],
  dense: { worstGroupAccuracy: number },
  tolerance: number,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of rows) {
    if (!out.has(r.layer)) out.set(r.layer, 0);
    if (dense.worstGroupAccuracy - r.worstGroupAccuracy <= tolerance)
      out.set(r.layer, Math.max(out.get(r.layer)!, r.level));
  }
  return out;
}
