/**
 * Fine-tuning objectives that use the subgroups the user named (`--group`), beside the group-blind
 * losses of losses.ts. Each is cross-entropy on the labels with per-sample weights; what differs is
 * where the weights come from:
 *
 * - `group-balanced`: fixed weights, the inverse of the sample's group's training count, normalised to
 *   a mean of 1 over the training rows, so every group counts equally (intersectional groups when
 *   several `--group` columns are given). Same steps as `ce`; it duplicates no row of the data: the
 *   balanced batches below draw each group equally often, which is what the weights ask for.
 * - `group-dro`: Group DRO (Sagawa et al., "Distributionally Robust Neural Networks for Group Shifts",
 *   ICLR 2020; their `LossComputer`): one weight q_g per group, starting uniform; each step raises the
 *   weight of every group seen in the batch by exponentiated gradient on its mean loss,
 *   q_g ← q_g · exp(η · L_g), renormalises, and descends on Σ_g q_g · L_g — the worst group's loss,
 *   softly.
 * - `ceag`: constrained excess accuracy gaps (Hashemizadeh et al., "Balancing Act: Constraining
 *   Disparate Impact in Sparse Models", ICLR 2024). For each group g, the constraint
 *   ψ_g = [A_g(dense) − A_g] − [A(dense) − A] ≤ ε: no group's accuracy drop may exceed the overall drop
 *   by more than ε. The model descends on the Lagrangian L + Σ_g λ_g · (L_g − L) (the proxy constraint:
 *   the group's cross-entropy stands in for its accuracy, as in the authors' code; the dense model's
 *   losses are constants and drop out of the gradient), and the multipliers ascend on the measured,
 *   non-differentiable gaps, λ_g ← max(0, λ_g + η_λ · (ψ_g − ε)), with each group's accuracy taken over
 *   its last few hundred training samples (the authors' per-group buffer) and the dense model's
 *   accuracies over the training rows, computed once. A satisfied constraint's multiplier falls to 0.
 *
 * All three train on group-balanced batches: each epoch takes as many rows as `ce` does, every group
 * filling an equal share of them (`groupBalancedOrder`). Weighting alone, with a rare group's few
 * samples a batch carrying large weights, did not lift a rare group that is also harder; balanced
 * batches did (docs/performance.md has the measurement).
 *
 * Pure code, no TensorFlow.js: the training loop hands each step's per-sample cross-entropies and
 * whether the model got each sample right to `step`, and scales each sample's loss by what it returns.
 */
import type { GroupObjectiveRecord, LossName } from '../protocol/results';
import { GROUP_OBJECTIVES } from '../protocol/results';
import type { Rng } from './rng';

export { GROUP_OBJECTIVES };

export function isGroupObjective(loss: LossName): boolean {
  return GROUP_OBJECTIVES.includes(loss);
}

/** The subgroups as the objectives see them: every row's group, the names, and the training rows. */
export interface GroupContext {
  groupIds: ArrayLike<number>;
  groupNames: readonly string[];
  trainRows: ArrayLike<number>;
}

/**
 * A per-step reweighting of the batch. `step` is called once per optimizer step with the batch's rows,
 * each sample's unweighted cross-entropy and whether the model predicted it right; it returns each
 * sample's weight multiplier (batch order) for this step's loss mean_i w_i · CE_i, and advances the
 * objective's state (group weights, multipliers).
 */
export interface BatchReweighting {
  step(rows: ArrayLike<number>, ce: Float64Array, correct: Uint8Array): Float64Array;
  /** What the objective learned, for results.json. */
  record(): GroupObjectiveRecord;
}

function trainCounts(ctx: GroupContext): Float64Array {
  const n = new Float64Array(ctx.groupNames.length);
  for (let i = 0; i < ctx.trainRows.length; i++) n[ctx.groupIds[ctx.trainRows[i]]]++;
  return n;
}

/**
 * `group-balanced` weights for every row: N / (G · n_g), with N training rows and G non-empty groups,
 * so the mean over the training rows is 1 and each group's weights sum to N / G. Rows of a group with
 * no training rows (validation and test only) get 1.
 */
export function groupBalancedWeights(ctx: GroupContext): { weights: Float64Array; record: GroupObjectiveRecord } {
  const counts = trainCounts(ctx);
  const present = counts.reduce((a, c) => a + (c > 0 ? 1 : 0), 0);
  const N = ctx.trainRows.length;
  const perGroup = Array.from(counts, (c) => (c > 0 ? N / (present * c) : 1));
  const weights = new Float64Array(ctx.groupIds.length);
  for (let r = 0; r < weights.length; r++) weights[r] = perGroup[ctx.groupIds[r]];
  return {
    weights,
    record: {
      objective: 'group-balanced',
      sampling: 'group-balanced',
      groups: ctx.groupNames.map((group, g) => ({ group, trainingRows: counts[g], weight: perGroup[g] })),
    },
  };
}

/**
 * Group-balanced epochs: of the N rows an epoch takes, every group that has training rows fills N / G
 * (the remainder going to groups drawn at random), and the whole order is shuffled. Each group's rows
 * are dealt from its own shuffled deck, reshuffled when it runs out, across epochs: a rare group's rows
 * recur within an epoch, a common group's rows each come up once before any comes up again. In
 * expectation it is the objective of weighting each sample by N / (G · n_g), with far less variance: a
 * batch holds about B / G samples of every group instead of a few heavily weighted ones. N rows an
 * epoch, so the same number of steps as `ce`. Returns the next epoch's order on each call.
 */
export function groupBalancedOrder(ctx: GroupContext): (rng: Rng) => Int32Array {
  const G = ctx.groupNames.length;
  const rowsOf: number[][] = Array.from({ length: G }, () => []);
  for (let i = 0; i < ctx.trainRows.length; i++) rowsOf[ctx.groupIds[ctx.trainRows[i]]].push(ctx.trainRows[i]);
  const present = rowsOf.map((rows, g) => (rows.length ? g : -1)).filter((g) => g >= 0);
  const decks = rowsOf.map((rows) => Int32Array.from(rows));
  const dealt = rowsOf.map((rows) => rows.length); // all dealt: shuffle before the first deal
  const N = ctx.trainRows.length;
  return (rng) => {
    const order = new Int32Array(N);
    if (!present.length) return order;
    const base = Math.floor(N / present.length);
    const extra = new Set(rng.shuffle(present.slice()).slice(0, N - base * present.length));
    let at = 0;
    for (const g of present) {
      for (let want = base + (extra.has(g) ? 1 : 0); want > 0;) {
        if (dealt[g] === decks[g].length) {
          rng.shuffle(decks[g]);
          dealt[g] = 0;
        }
        const take = Math.min(decks[g].length - dealt[g], want);
        order.set(decks[g].subarray(dealt[g], dealt[g] + take), at);
        dealt[g] += take;
        at += take;
        want -= take;
      }
    }
    return rng.shuffle(order);
  };
}

/**
 * How a group-aware objective trains: every one of them draws group-balanced batches
 * (`groupBalancedOrder`), as Group DRO's authors train it (Sagawa et al.'s `--reweight_groups`, WILDS's
 * `uniform_over_groups`); `group-balanced`'s weights N / (G · n_g) are what that sampling already does, so
 * its training rows weigh 1 (its validation rows and Taylor scores keep the weights); Group DRO and CEAG
 * work on per-group mean losses, which the sampling leaves unbiased. Null for the other losses.
 */
export function groupBalancedTraining(
  loss: LossName,
  ctx: GroupContext,
  weights: ArrayLike<number>,
): { epochOrder: (rng: Rng) => Int32Array; trainWeights: Float32Array } | null {
  if (!isGroupObjective(loss)) return null;
  const trainWeights = Float32Array.from(weights);
  if (loss === 'group-balanced') for (let i = 0; i < ctx.trainRows.length; i++) trainWeights[ctx.trainRows[i]] = 1;
  return { epochOrder: groupBalancedOrder(ctx), trainWeights };
}

/** Sums and counts of the batch's per-sample values by group. */
function byGroup(rows: ArrayLike<number>, values: ArrayLike<number>, groupIds: ArrayLike<number>, G: number) {
  const sum = new Float64Array(G);
  const n = new Float64Array(G);
  for (let i = 0; i < rows.length; i++) {
    const g = groupIds[rows[i]];
    sum[g] += values[i];
    n[g]++;
  }
  return { sum, n };
}

/** Group DRO's online group weights (see the file's comment). */
export class GroupDro implements BatchReweighting {
  /** q_g: sums to 1 over the groups that have training rows. */
  readonly q: Float64Array;
  private readonly counts: Float64Array;
  private steps = 0;

  constructor(
    private readonly ctx: GroupContext,
    readonly eta: number,
  ) {
    if (!(eta >= 0) || !Number.isFinite(eta))
      throw new Error(`group-dro: the step size must be a finite number ≥ 0, got ${eta}`);
    this.counts = trainCounts(ctx);
    const present = this.counts.reduce((a, c) => a + (c > 0 ? 1 : 0), 0);
    this.q = Float64Array.from(this.counts, (c) => (c > 0 ? 1 / present : 0));
  }

  step(rows: ArrayLike<number>, ce: Float64Array, _correct?: Uint8Array): Float64Array {
    const G = this.q.length;
    const { sum, n } = byGroup(rows, ce, this.ctx.groupIds, G);
    // Exponentiated gradient on the groups seen in this batch (a group not seen has loss 0: factor 1).
    let total = 0;
    for (let g = 0; g < G; g++) {
      if (n[g] > 0) this.q[g] *= Math.exp(this.eta * (sum[g] / n[g]));
      total += this.q[g];
    }
    for (let g = 0; g < G; g++) this.q[g] /= total;
    this.steps++;
    // Σ_g q_g · L_g as mean_i w_i · CE_i: w_i = B · q_g / n_g for a sample of group g.
    const B = rows.length;
    const w = new Float64Array(B);
    for (let i = 0; i < B; i++) {
      const g = this.ctx.groupIds[rows[i]];
      w[i] = (B * this.q[g]) / n[g];
    }
    return w;
  }

  record(): GroupObjectiveRecord {
    return {
      objective: 'group-dro',
      sampling: 'group-balanced',
      stepSize: this.eta,
      steps: this.steps,
      groups: this.ctx.groupNames.map((group, g) => ({ group, trainingRows: this.counts[g], weight: this.q[g] })),
    };
  }
}

/** How many recent training samples of each group CEAG's accuracy estimate looks at. */
export const CEAG_BUFFER = 256;

/** CEAG's Lagrange multipliers (see the file's comment). */
export class Ceag implements BatchReweighting {
  readonly multipliers: Float64Array;
  private readonly counts: Float64Array;
  /** Per group, a ring of the last CEAG_BUFFER right (1) / wrong (0) predictions. */
  private readonly rings: Uint8Array[];
  private readonly filled: Int32Array;
  private readonly next: Int32Array;
  private readonly lastGap: Float64Array;
  private steps = 0;

  /**
   * `denseCorrect[r]`: whether the dense model got row r right; the dense accuracies are taken over the
   * training rows, overall and per group.
   */
  constructor(
    private readonly ctx: GroupContext,
    denseCorrect: ArrayLike<number>,
    readonly tolerance: number,
    readonly dualLearningRate: number,
  ) {
    if (!(tolerance >= 0) || !Number.isFinite(tolerance))
      throw new Error(`ceag: the tolerance must be a finite number ≥ 0, got ${tolerance}`);
    if (!(dualLearningRate > 0) || !Number.isFinite(dualLearningRate))
      throw new Error(`ceag: the dual step size must be a finite number > 0, got ${dualLearningRate}`);
    const G = ctx.groupNames.length;
    this.counts = trainCounts(ctx);
    this.multipliers = new Float64Array(G);
    this.rings = Array.from({ length: G }, () => new Uint8Array(CEAG_BUFFER));
    this.filled = new Int32Array(G);
    this.next = new Int32Array(G);
    this.lastGap = new Float64Array(G).fill(NaN);
    const right = new Float64Array(G);
    let all = 0;
    for (let i = 0; i < ctx.trainRows.length; i++) {
      const r = ctx.trainRows[i];
      right[ctx.groupIds[r]] += denseCorrect[r] ? 1 : 0;
      all += denseCorrect[r] ? 1 : 0;
    }
    this.denseGroupAccuracy = Float64Array.from(right, (x, g) => (this.counts[g] ? x / this.counts[g] : NaN));
    this.denseAccuracy = ctx.trainRows.length ? all / ctx.trainRows.length : NaN;
  }

  readonly denseGroupAccuracy: Float64Array;
  readonly denseAccuracy: number;

  step(rows: ArrayLike<number>, ce: Float64Array, correct: Uint8Array): Float64Array {
    const G = this.multipliers.length;
    const B = rows.length;
    const { n } = byGroup(rows, ce, this.ctx.groupIds, G);
    // The model's gradient, with this step's multipliers: L + Σ_{g in batch} λ_g (L_g − L), where L_g is
    // the group's mean loss in the batch and L = Σ_g π_g L_g weighs them by their share π_g of the
    // training rows (renormalised over the groups in the batch), so the objective does not depend on how
    // the batch was drawn. As mean_i w_i · CE_i: w_i = B · (π_g · (1 − Λ) + λ_g) / n_g, Λ = Σ_g λ_g over
    // the groups in the batch; with batches in the data's own mix (n_g = B · π_g) that is 1 − Λ + λ_g · B / n_g.
    let lambdaSum = 0;
    let shareSum = 0;
    for (let g = 0; g < G; g++) {
      if (n[g] === 0) continue;
      lambdaSum += this.multipliers[g];
      shareSum += this.counts[g];
    }
    const w = new Float64Array(B);
    for (let i = 0; i < B; i++) {
      const g = this.ctx.groupIds[rows[i]];
      w[i] = (B * ((this.counts[g] / shareSum) * (1 - lambdaSum) + this.multipliers[g])) / n[g];
    }
    // The multipliers' ascent on the measured gaps, from each group's recent accuracy.
    for (let i = 0; i < B; i++) {
      const g = this.ctx.groupIds[rows[i]];
      this.rings[g][this.next[g]] = correct[i];
      this.next[g] = (this.next[g] + 1) % CEAG_BUFFER;
      if (this.filled[g] < CEAG_BUFFER) this.filled[g]++;
    }
    // Overall accuracy: the groups' recent accuracies weighted by their training counts (the buffers
    // hold up to CEAG_BUFFER samples of every group, so a plain mean over them would overweight rare groups).
    let weighted = 0;
    let weight = 0;
    const acc = new Float64Array(G).fill(NaN);
    for (let g = 0; g < G; g++) {
      if (!this.filled[g]) continue;
      let s = 0;
      for (let k = 0; k < this.filled[g]; k++) s += this.rings[g][k];
      acc[g] = s / this.filled[g];
      weighted += acc[g] * this.counts[g];
      weight += this.counts[g];
    }
    const overallDrop = this.denseAccuracy - weighted / weight;
    for (let g = 0; g < G; g++) {
      if (n[g] === 0) continue; // indexed constraints: only the groups observed in this batch
      const gap = this.denseGroupAccuracy[g] - acc[g] - overallDrop;
      this.lastGap[g] = gap;
      this.multipliers[g] = Math.max(0, this.multipliers[g] + this.dualLearningRate * (gap - this.tolerance));
    }
    this.steps++;
    return w;
  }

  record(): GroupObjectiveRecord {
    return {
      objective: 'ceag',
      sampling: 'group-balanced',
      tolerance: this.tolerance,
      stepSize: this.dualLearningRate,
      steps: this.steps,
      groups: this.ctx.groupNames.map((group, g) => ({
        group,
        trainingRows: this.counts[g],
        multiplier: this.multipliers[g],
        ...(Number.isFinite(this.lastGap[g]) ? { excessGap: this.lastGap[g] } : {}),
      })),
    };
  }
}

export interface ObjectiveSettings {
  droEta: number;
  ceagTolerance: number;
  ceagDualLearningRate: number;
}

/**
 * The per-step reweighting of a group-aware loss (null for the others, and for `group-balanced`, whose
 * weights are fixed). `denseCorrect(r)` tells whether the dense model got row r right (CEAG's reference).
 */
export function batchReweightingFor(
  loss: LossName,
  ctx: GroupContext,
  settings: ObjectiveSettings,
  denseCorrect: () => ArrayLike<number>,
): BatchReweighting | null {
  if (loss === 'group-dro') return new GroupDro(ctx, settings.droEta);
  if (loss === 'ceag') return new Ceag(ctx, denseCorrect(), settings.ceagTolerance, settings.ceagDualLearningRate);
  return null;
}
