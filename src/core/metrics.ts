/**
 * Fairness metrics: every metric of the metric table (src/core/metric-table.ts) overall and per
 * subgroup — accuracy, AUROC, accuracy per class and, for binary tasks, the true-positive,
 * false-positive and selection rates — and the between-group figures the table lists (worst-group
 * accuracy, largest gap, and for binary tasks Fairlearn's demographic-parity, equal-opportunity and
 * equalized-odds differences); for a pruned model against its dense parent, the paired changes of
 * those figures, the accuracy changes, the excess accuracy gap ψ_g (Hooker et al., "What do
 * compressed deep neural networks forget?") and the pruning-identified exemplars. Every number comes
 * with a seeded percentile-bootstrap interval; the resampling is in bootstrap.ts.
 *
 * Rates are computed from per-group confusion counts (label × predicted class), in the full sample
 * and in each resample: a rate of the table is the sum of the cells its predicates select over the
 * cells of its denominator, so adding a rate to the table needs no code here.
 *
 * Bootstrap design:
 * - Stratified: each resample draws, with replacement, exactly n_g samples from within each group g,
 *   so group sizes are fixed and every non-empty group appears in every resample.
 * - Paired (in `compare`): the dense and the pruned model are scored on the same resampled indices,
 *   so the interval of a change reflects only the samples where the two models disagree (it is
 *   exactly [0, 0] when their predictions are identical).
 * - `value` is always the point estimate on the full sample, never the bootstrap mean. The interval
 *   is the percentile interval (linear interpolation between order statistics), widened where needed
 *   so that it contains `value`: for min/max statistics (worst group, largest gap) the bootstrap
 *   distribution is biased (a min of noisy copies sits below the sample min), and a percentile
 *   interval can then miss the point estimate; a displayed interval that excludes its own point
 *   would only confuse.
 * - A between-group figure covers the groups that are non-empty and where its rate is defined on the
 *   full sample (the true-positive rate needs a positive sample). A resample in which one of those
 *   groups has no sample in the rate's denominator leaves the figure undefined there, and the
 *   interval is taken over the other resamples. Undefined on the full sample: null in results.json.
 * - Worst-group accuracy's interval is that of the statistic "lowest group accuracy" (recomputed in
 *   each resample, whichever group is lowest there), not of the one group that is lowest in the
 *   full sample; `worstGroupChange` in `compare` is the same statistic per model.
 * - AUROC under the bootstrap uses a rank trick instead of re-sorting: the scores are sorted once
 *   (per class, overall and per group), and a resample is a vector of multiplicities w_i, so the
 *   weighted Mann–Whitney count is one O(n) pass over the fixed order:
 *   Σ over tie blocks of P_block · (N_below + N_block / 2), divided by P · N. This is exact (it equals
 *   the AUROC of the resample with its duplicates materialised), and costs one pass per class, so
 *   all resamples are used for AUROC too, up to a work budget on large multiclass sets
 *   (see MAX_AUROC_RESAMPLES).
 *
 * Empty groups (0 samples in the split): still listed, with n = 0, `accuracy` = {value 0, low 0,
 * high 1} (nothing is known: the interval spans every possible accuracy; JSON has no NaN), `auroc`
 * null and a warning. They are left out of the overall worst-group and largest-gap figures, and in
 * `compare` their changes and ψ are {0, 0, 0}. Consumers must check `n === 0` before plotting.
 */
import type { ClassAccuracy, Comparison, Estimate, Evaluation, GroupMetrics, SplitName } from '../protocol/results';
import { groupMembers, interval, intervalOrNull, StratifiedResampler } from './bootstrap';
import { UserError } from './errors';
import { RUN_DEFAULTS } from '../protocol/defaults';
import type { BetweenGroupsMetric, ClassRateMetric, RateMetric } from '../shared/metric-table';
import { metricDef, metricsOf, taskOf } from '../shared/metric-table';

export { interval } from './bootstrap';

export interface Predictions {
  /** n × K row-major class probabilities. K = 1 is read as a sigmoid output: P(class 1). */
  probs: Float32Array;
  numClasses: number;
}

export interface EvaluationInput {
  /** Class index of each sample, 0 … K−1 (binary: 1 is the positive class). */
  labels: Int32Array;
  /** Group index of each sample into `groupNames`. */
  groupIds: Int32Array;
  groupNames: string[];
  /** 1-based CSV data-row numbers (header excluded), for exemplars and error messages. */
  rows: Int32Array;
  /** Class names in output-index order, for exemplar labels. */
  classNames: string[];
  split: SplitName;
}

/** The rows `rows` of a data set (its labels, groups and CSV row numbers) as the metrics take them. */
export function evaluationInputOf(
  d: {
    labels: ArrayLike<number>;
    groupIds: ArrayLike<number>;
    groupNames: string[];
    rowNumbers: ArrayLike<number>;
    record: { label: { classes: string[] } };
  },
  rows: Int32Array,
  split: SplitName,
): EvaluationInput {
  return {
    labels: Int32Array.from(rows, (r) => d.labels[r]),
    groupIds: Int32Array.from(rows, (r) => d.groupIds[r]),
    groupNames: d.groupNames,
    rows: Int32Array.from(rows, (r) => d.rowNumbers[r]),
    classNames: d.record.label.classes,
    split,
  };
}

export interface BootstrapOptions {
  /** Number of bootstrap resamples (default 1000); 0 gives point estimates with zero-width intervals. */
  resamples: number;
  /** Two-sided confidence level of the intervals (default 0.95). */
  confidence: number;
  seed: number;
}

export const DEFAULT_BOOTSTRAP: BootstrapOptions = {
  resamples: RUN_DEFAULTS.bootstrap,
  confidence: RUN_DEFAULTS.confidence,
  seed: 0,
};

/** Groups smaller than this get a warning that their interval is wide. */
export const SMALL_GROUP = 30;
/** Exemplars listed per group (all are counted). */
export const MAX_EXEMPLARS_PER_GROUP = 50;
/**
 * AUROC intervals use the first min(resamples, MAX_AUROC_RESAMPLES, budget) resamples (the same
 * indices as the accuracy intervals), where the budget keeps 2 · n · (score sets) · resamples under
 * AUROC_WORK_BUDGET weighted steps (one pass over the overall order and one over the group orders
 * per score set; a score set is one class for multiclass, one for binary). Measured on this 2-core
 * machine (Node 20), whole `evaluate`, B = 1000: n = 20,000 binary 0.48 s (all 1000 resamples for
 * AUROC); n = 10,000 with 10 classes 0.73 s (1000); n = 20,000 with 10 classes 1.2 s (AUROC on 500).
 * `compare` (accuracy-type only): about 0.2 s for n = 20,000.
 */
export const MAX_AUROC_RESAMPLES = 1000;
const AUROC_WORK_BUDGET = 2e8;
/** The budget never cuts AUROC below this many resamples (fewer make the 2.5% tails meaningless). */
const MIN_AUROC_RESAMPLES = 200;

/**
 * Class of sample i of row-major probabilities of width K: the argmax, the lowest index winning ties;
 * K = 1 (binary, p(y=1)): 1 when p > 0.5, so p = 0.5 exactly is class 0 (as `torch.round` rounds it).
 * The one rule for every prediction: metrics, the PW loss's "dense model was right", training accuracy.
 */
export function predictedClass(p: ArrayLike<number>, K: number, i: number): number {
  if (K === 1) return p[i] > 0.5 ? 1 : 0;
  const base = i * K;
  let best = 0;
  let bestP = p[base];
  for (let k = 1; k < K; k++) {
    const v = p[base + k];
    if (v > bestP) {
      bestP = v;
      best = k;
    }
  }
  return best;
}

/** `predictedClass` of every sample. */
export function predictedClasses(pred: Predictions): Int32Array {
  const K = pred.numClasses;
  if (!Number.isInteger(K) || K < 1)
    throw new Error(`predictedClasses: numClasses must be a positive integer, got ${K}`);
  const n = Math.floor(pred.probs.length / K);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = predictedClass(pred.probs, K, i);
  return out;
}

/**
 * Exact AUROC (Mann–Whitney U / (P·N)): the probability that a random positive scores above a random
 * negative, ties counted 1/2. Null when there are no positives or no negatives. O(n log n).
 */
export function auroc(scores: ArrayLike<number>, positives: ArrayLike<boolean>): number | null {
  const n = scores.length;
  if (positives.length !== n) throw new Error(`auroc: ${n} scores but ${positives.length} labels`);
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => scores[a] - scores[b]);
  const isPos = new Uint8Array(n);
  for (let i = 0; i < n; i++) isPos[i] = positives[i] ? 1 : 0;
  const r = weightedAuc(
    order,
    orderCodes(
      order,
      tieFlags(order, (i) => scores[i]),
      isPos,
    ),
    null,
  );
  return Number.isNaN(r) ? null : r;
}

// ---------------------------------------------------------------------------------------------
// Evaluation

export function evaluate(pred: Predictions, input: EvaluationInput, opts: BootstrapOptions): Evaluation {
  const n = checkInput(pred, input, 'predictions');
  checkBootstrap(opts);
  const G = input.groupNames.length;
  const members = groupMembers(input.groupIds, G);
  const nonEmpty = nonEmptyGroups(members);
  const task = taskOf(pred.numClasses);
  const C = Math.max(pred.numClasses, 2);

  // ---- point estimates: every rate of the table per group and overall, then the between-group figures
  const set = new RateSet([...metricsOf('rate', task), ...metricsOf('class-rate', task)], C, G);
  const kind = set.kinds(predictedClasses(pred), input.labels, C);
  const S = set.size;
  const width = G + 1;
  const counts = new Int32Array(G * S);
  for (let i = 0; i < n; i++) counts[input.groupIds[i] * S + kind[i]]++;
  const point = new Float64Array(set.rates.length * width);
  set.compute(counts, point);
  const sampleCounts = counts.slice();
  const between = compileBetween(metricsOf('between-groups', task), set, (q) => !Number.isNaN(point[q]), nonEmpty);
  const betweenPoint = between.map((b) => betweenValue(b, point, width));
  const acc = set.index('accuracy');
  const worstAt = between.findIndex((b) => b.def.name === 'worst_group_accuracy');
  const gapAt = between.findIndex((b) => b.def.name === 'largest_gap');
  const worstPoint = betweenPoint[worstAt];
  const worstGroupIndex = nonEmpty.find((g) => point[acc * width + g] === worstPoint) as number;

  const aucSets = buildAucSets(pred, input.labels, members);
  const aucAllPoint = aucSets.overall(null);
  const aucGroupPoint = members.map((_, g) => aucSets.group(g, null));

  // ---- bootstrap
  const B = opts.resamples;
  const needAuc = !Number.isNaN(aucAllPoint) || aucGroupPoint.some((v) => !Number.isNaN(v));
  const aucB = needAuc ? aurocResamples(B, n, aucSets.classes) : 0;
  const rateBoot = Array.from({ length: point.length }, () => new Float64Array(B));
  const betweenBoot = between.map(() => new Float64Array(B));
  const aucBoot = new Float64Array(aucB);
  const aucGroupBoot = members.map(() => new Float64Array(aucB));
  const weights = new Int32Array(needAuc ? n : 0);
  const resampler = new StratifiedResampler(members, opts.seed);
  const vals = new Float64Array(point.length);
  for (let b = 0; b < B; b++) {
    const drawn = resampler.next();
    const withWeights = b < aucB;
    if (withWeights) weights.fill(0);
    counts.fill(0);
    for (let g = 0; g < G; g++) {
      const d = drawn[g];
      const base = g * S;
      for (let j = 0; j < d.length; j++) counts[base + kind[d[j]]]++;
      if (withWeights) for (let j = 0; j < d.length; j++) weights[d[j]]++;
    }
    set.compute(counts, vals);
    for (let q = 0; q < vals.length; q++) rateBoot[q][b] = vals[q];
    for (let i = 0; i < between.length; i++) betweenBoot[i][b] = betweenValue(between[i], vals, width);
    if (withWeights) {
      aucBoot[b] = Number.isNaN(aucAllPoint) ? NaN : aucSets.overall(weights);
      for (let g = 0; g < G; g++) aucGroupBoot[g][b] = Number.isNaN(aucGroupPoint[g]) ? NaN : aucSets.group(g, weights);
    }
  }

  const conf = opts.confidence;
  const rate = (r: number, g: number) => intervalOrNull(point[r * width + g], rateBoot[r * width + g], conf);
  /** The table's rates stored in the `rates` maps (not accuracy, which has its schema-1 field). */
  const ratesAt = (g: number) => {
    const defs = metricsOf('rate', task).filter((m) => !m.schemaV1);
    return defs.length ? { rates: Object.fromEntries(defs.map((m) => [m.name, rate(set.index(m.name), g)])) } : {};
  };
  const className = (k: number) => input.classNames[k] ?? String(k);
  /** Samples of the class of per-class rate r in group g (g = G: all groups). */
  const classSamples = (r: number, g: number) => {
    let total = 0;
    for (let h = g === G ? 0 : g; h < (g === G ? G : g + 1); h++) total += set.sum(sampleCounts, r, h, 'den');
    return total;
  };
  const classAt = (g: number): ClassAccuracy[] =>
    set.rates.flatMap((r, ri) =>
      r.def.name === 'class_accuracy' ? [{ class: className(r.k), n: classSamples(ri, g), accuracy: rate(ri, g) }] : [],
    );

  const groups: GroupMetrics[] = input.groupNames.map((name, g) => {
    const ng = members[g].length;
    const gm: GroupMetrics = {
      group: name,
      n: ng,
      accuracy: ng ? interval(point[acc * width + g], rateBoot[acc * width + g], conf) : { value: 0, low: 0, high: 1 },
      auroc: Number.isNaN(aucGroupPoint[g]) ? null : interval(aucGroupPoint[g], aucGroupBoot[g], conf),
    };
    const warning = smallGroupWarning(ng, input.split);
    if (warning) gm.warning = warning;
    return { ...gm, ...ratesAt(g), classAccuracy: classAt(g) };
  });

  const fairness = fairnessIntervals(between, betweenPoint, betweenBoot, conf);
  return {
    split: input.split,
    n,
    accuracy: interval(point[acc * width + G], rateBoot[acc * width + G], conf),
    auroc: Number.isNaN(aucAllPoint) ? null : interval(aucAllPoint, aucBoot, conf),
    groups,
    worstGroup: {
      group: input.groupNames[worstGroupIndex],
      accuracy: interval(worstPoint, betweenBoot[worstAt], conf),
    },
    largestGap: interval(betweenPoint[gapAt], betweenBoot[gapAt], conf),
    ...ratesAt(G),
    ...(fairness ? { fairness } : {}),
    classAccuracy: classAt(G),
  };
}

/** Resamples that also draw AUROC: as many as the work budget allows, within the bounds. */
function aurocResamples(B: number, n: number, classes: number): number {
  const affordable = Math.floor(AUROC_WORK_BUDGET / (2 * n * classes));
  return Math.min(B, MAX_AUROC_RESAMPLES, Math.max(MIN_AUROC_RESAMPLES, affordable));
}

function smallGroupWarning(ng: number, split: string): string | undefined {
  if (ng === 0) return `no ${split} samples: the group is left out of the worst-group and largest-gap figures`;
  if (ng < SMALL_GROUP) return `only ${ng} ${split} samples: the interval is wide`;
  return undefined;
}

/** The between-group figures beyond schema 1's fields, by name (undefined when there are none). */
function fairnessIntervals(
  between: CompiledBetween[],
  point: ArrayLike<number>,
  boot: Float64Array[],
  conf: number,
): Record<string, Estimate | null> | undefined {
  const entries = between.flatMap((b, i) =>
    b.def.schemaV1 ? [] : [[b.def.name, intervalOrNull(point[i], boot[i], conf)] as const],
  );
  return entries.length ? Object.fromEntries(entries) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Comparison (paired)

export function compare(
  dense: Predictions,
  pruned: Predictions,
  input: EvaluationInput,
  opts: BootstrapOptions,
): Comparison {
  const n = checkPair(dense, pruned, input, opts);
  const G = input.groupNames.length;
  const members = groupMembers(input.groupIds, G);
  const nonEmpty = nonEmptyGroups(members);
  const predD = predictedClasses(dense);
  const predP = predictedClasses(pruned);
  const task = taskOf(dense.numClasses);
  const C = Math.max(dense.numClasses, 2);

  // The between-group figures of the table, and the rates they compare. Their paired change is
  // figure(pruned) − figure(dense) on the same (re)sample; the groups each one covers are those
  // where the rate is defined for both models on the full sample.
  const betweenDefs = metricsOf('between-groups', task);
  const set = new RateSet(
    [...new Set(betweenDefs.flatMap((b) => b.of))].map((name) => metricDef(name) as RateMetric),
    C,
    G,
  );
  const width = G + 1;
  const counts = new PairedCounts(set.size, G, set.kinds(predD, input.labels, C), set.kinds(predP, input.labels, C));
  counts.countAll(input.groupIds);
  const { dense: countsD, pruned: countsP } = counts;
  const valsD = new Float64Array(set.rates.length * width);
  const valsP = new Float64Array(set.rates.length * width);
  set.compute(countsD, valsD);
  set.compute(countsP, valsP);
  const between = compileBetween(betweenDefs, set, (q) => !Number.isNaN(valsD[q]) && !Number.isNaN(valsP[q]), nonEmpty);
  const betweenChange = () => between.map((b) => betweenValue(b, valsP, width) - betweenValue(b, valsD, width));

  // Correct predictions per group (accuracy's numerator), for the accuracy changes and ψ.
  const cd = new Float64Array(G);
  const cp = new Float64Array(G);
  const acc = set.index('accuracy');
  const correctCounts = () => {
    for (let g = 0; g < G; g++) {
      cd[g] = set.sum(countsD, acc, g, 'num');
      cp[g] = set.sum(countsP, acc, g, 'num');
    }
  };
  const stats = (cdG: Float64Array, cpG: Float64Array) => accuracyChanges(cdG, cpG, members, n);

  correctCounts();
  const point = stats(cd, cp);
  const betweenPoint = betweenChange();

  const B = opts.resamples;
  const accBoot = new Float64Array(B);
  const betweenBoot = between.map(() => new Float64Array(B));
  const changeBoot = members.map(() => new Float64Array(B));
  const psiBoot = members.map(() => new Float64Array(B));
  const resampler = new StratifiedResampler(members, opts.seed);
  for (let b = 0; b < B; b++) {
    counts.countDrawn(resampler.next());
    correctCounts();
    const s = stats(cd, cp);
    accBoot[b] = s.accuracyChange;
    for (let g = 0; g < G; g++) {
      changeBoot[g][b] = s.groupChange[g];
      psiBoot[g][b] = s.psi[g];
    }
    set.compute(countsD, valsD);
    set.compute(countsP, valsP);
    const ch = betweenChange();
    for (let i = 0; i < between.length; i++) betweenBoot[i][b] = ch[i];
  }

  const conf = opts.confidence;
  const zero = (): Estimate => ({ value: 0, low: 0, high: 0 });
  const change = (name: string) => {
    const i = between.findIndex((x) => x.def.name === name);
    return interval(betweenPoint[i], betweenBoot[i], conf);
  };
  const fairness = fairnessIntervals(between, betweenPoint, betweenBoot, conf);

  return {
    accuracyChange: interval(point.accuracyChange, accBoot, conf),
    worstGroupChange: change('worst_group_accuracy'),
    gapChange: change('largest_gap'),
    ...(fairness ? { fairnessChange: fairness } : {}),
    groups: input.groupNames.map((name, g) =>
      members[g].length
        ? {
            group: name,
            accuracyChange: interval(point.groupChange[g], changeBoot[g], conf),
            excessGap: interval(point.psi[g], psiBoot[g], conf),
          }
        : { group: name, accuracyChange: zero(), excessGap: zero() },
    ),
    exemplars: prunedExemplars(predD, predP, input, members),
  };
}

/**
 * The confusion counts per group of two models on the same (re)sample. Each sample's pair of kinds
 * (dense, pruned) is one joint kind: one count per draw, split per model after.
 */
class PairedCounts {
  /** Counts per group × kind of the dense model, then of the pruned one. */
  readonly dense: Int32Array;
  readonly pruned: Int32Array;
  private readonly joint: Int32Array;
  private readonly jointCounts: Int32Array;

  constructor(
    private readonly S: number,
    private readonly G: number,
    kindD: Int32Array,
    kindP: Int32Array,
  ) {
    this.joint = new Int32Array(kindD.length);
    for (let i = 0; i < kindD.length; i++) this.joint[i] = kindD[i] * S + kindP[i];
    this.jointCounts = new Int32Array(G * S * S);
    this.dense = new Int32Array(G * S);
    this.pruned = new Int32Array(G * S);
  }

  /** Counts every sample once. */
  countAll(groupIds: Int32Array): void {
    const SS = this.S * this.S;
    this.jointCounts.fill(0);
    for (let i = 0; i < this.joint.length; i++) this.jointCounts[groupIds[i] * SS + this.joint[i]]++;
    this.split();
  }

  /** Counts one stratified resample: the rows drawn in each group. */
  countDrawn(drawn: Int32Array[]): void {
    const SS = this.S * this.S;
    this.jointCounts.fill(0);
    for (let g = 0; g < this.G; g++) {
      const d = drawn[g];
      const base = g * SS;
      for (let j = 0; j < d.length; j++) this.jointCounts[base + this.joint[d[j]]]++;
    }
    this.split();
  }

  private split(): void {
    const { S, G, jointCounts, dense, pruned } = this;
    dense.fill(0);
    pruned.fill(0);
    for (let g = 0; g < G; g++) {
      for (let a = 0; a < S; a++) {
        for (let b = 0; b < S; b++) {
          const v = jointCounts[(g * S + a) * S + b];
          dense[g * S + a] += v;
          pruned[g * S + b] += v;
        }
      }
    }
  }
}

/** The checks `compare` makes first; returns the number of rows. */
function checkPair(dense: Predictions, pruned: Predictions, input: EvaluationInput, opts: BootstrapOptions): number {
  const n = checkInput(dense, input, 'dense predictions');
  checkInput(pruned, input, 'pruned predictions');
  if (dense.numClasses !== pruned.numClasses) {
    throw new UserError(
      `the dense model has ${dense.numClasses} outputs but the pruned model has ${pruned.numClasses}.`,
      {
        field: 'numClasses',
        fix: 'compare a pruned model with the dense model it was pruned from.',
      },
    );
  }
  checkBootstrap(opts);
  return n;
}

/**
 * From the correct predictions per group of each model: the overall accuracy change, each group's,
 * and each group's excess accuracy drop ψ (its drop minus the overall drop).
 */
function accuracyChanges(
  correctDense: Float64Array,
  correctPruned: Float64Array,
  members: Int32Array[],
  n: number,
): { accuracyChange: number; groupChange: Float64Array; psi: Float64Array } {
  const G = members.length;
  let sd = 0;
  let sp = 0;
  for (let g = 0; g < G; g++) {
    sd += correctDense[g];
    sp += correctPruned[g];
  }
  const overallDrop = (sd - sp) / n; // A(dense) − A(pruned)
  const groupChange = new Float64Array(G);
  const psi = new Float64Array(G);
  for (let g = 0; g < G; g++) {
    const ng = members[g].length;
    if (!ng) continue;
    groupChange[g] = (correctPruned[g] - correctDense[g]) / ng;
    psi[g] = (correctDense[g] - correctPruned[g]) / ng - overallDrop;
  }
  return { accuracyChange: (sp - sd) / n, groupChange, psi };
}

/** Pruning-identified exemplars: the rows whose prediction pruning changed, counted and sampled per group. */
function prunedExemplars(
  predD: Int32Array,
  predP: Int32Array,
  input: EvaluationInput,
  members: Int32Array[],
): Comparison['exemplars'] {
  const byGroup: Comparison['exemplars']['byGroup'] = input.groupNames.map((name) => ({
    group: name,
    count: 0,
    rate: 0,
    samples: [],
  }));
  let total = 0;
  const className = (k: number) => input.classNames[k] ?? String(k);
  for (let i = 0; i < predD.length; i++) {
    if (predD[i] === predP[i]) continue;
    total++;
    const e = byGroup[input.groupIds[i]];
    e.count++;
    if (e.samples.length < MAX_EXEMPLARS_PER_GROUP) {
      e.samples.push({
        row: input.rows[i],
        label: className(input.labels[i]),
        dense: className(predD[i]),
        pruned: className(predP[i]),
      });
    }
  }
  members.forEach((m, g) => (byGroup[g].rate = m.length ? byGroup[g].count / m.length : 0));
  return { total, byGroup };
}

// ---------------------------------------------------------------------------------------------
// The metric table's rates over confusion counts

/** One rate of the table, compiled to the sample kinds (see RateSet) of its numerator and denominator. */
interface CompiledRate {
  def: RateMetric | ClassRateMetric;
  /** The class of a per-class rate, else −1. */
  k: number;
  num: Int32Array;
  den: Int32Array;
}

/**
 * The table's rates over per-group counts of sample kinds. A sample's confusion cell is
 * label · C + predicted class; cells that every compiled rate treats alike (in the same numerators
 * and denominators) are one kind, so binary tasks have at most 4 kinds and accuracy alone 2, and the
 * bootstrap counts kinds: `counts[g · size + kind]`. A rate's value is the sum of its numerator kinds
 * over the sum of its denominator kinds: exactly the fraction its predicates give on the
 * (re)sampled rows, duplicates counted.
 */
class RateSet {
  readonly rates: CompiledRate[] = [];
  /** Kind of each confusion cell (label · C + predicted). */
  readonly kindOfCell: Int32Array;
  /** Number of kinds. */
  readonly size: number;

  constructor(
    defs: Array<RateMetric | ClassRateMetric>,
    C: number,
    readonly G: number,
  ) {
    const byCell: Array<{ def: RateMetric | ClassRateMetric; k: number; inNum: boolean[]; inDen: boolean[] }> = [];
    for (const def of defs) {
      const ks = def.kind === 'class-rate' ? Array.from({ length: C }, (_, k) => k) : [-1];
      for (const k of ks) {
        const inNum: boolean[] = [];
        const inDen: boolean[] = [];
        for (let y = 0; y < C; y++) {
          for (let p = 0; p < C; p++) {
            const among = def.among(y, p, k);
            inDen.push(among);
            inNum.push(among && def.counts(y, p, k));
          }
        }
        byCell.push({ def, k, inNum, inDen });
      }
    }
    // kinds: cells with the same membership in every numerator and denominator
    const kinds = new Map<string, number>();
    this.kindOfCell = new Int32Array(C * C);
    for (let c = 0; c < C * C; c++) {
      const signature = byCell.map((r) => `${r.inNum[c] ? 1 : 0}${r.inDen[c] ? 1 : 0}`).join('');
      if (!kinds.has(signature)) kinds.set(signature, kinds.size);
      this.kindOfCell[c] = kinds.get(signature)!;
    }
    this.size = kinds.size;
    for (const r of byCell) {
      const num = new Set<number>();
      const den = new Set<number>();
      for (let c = 0; c < C * C; c++) {
        if (r.inNum[c]) num.add(this.kindOfCell[c]);
        if (r.inDen[c]) den.add(this.kindOfCell[c]);
      }
      this.rates.push({ def: r.def, k: r.k, num: Int32Array.from(num), den: Int32Array.from(den) });
    }
  }

  /** Kind of each sample, from its predicted class and label. */
  kinds(predicted: Int32Array, labels: Int32Array, C: number): Int32Array {
    const out = new Int32Array(labels.length);
    for (let i = 0; i < labels.length; i++) out[i] = this.kindOfCell[labels[i] * C + predicted[i]];
    return out;
  }

  /** Position of a (non-per-class) rate by its table name. */
  index(name: string): number {
    const r = this.rates.findIndex((x) => x.def.name === name);
    if (r < 0) throw new Error(`metrics: rate '${name}' was not compiled`);
    return r;
  }

  /** Sum of the numerator (or denominator) kinds of rate r in group g's counts. */
  sum(counts: Int32Array, r: number, g: number, part: 'num' | 'den'): number {
    const cells = this.rates[r][part];
    let s = 0;
    for (let j = 0; j < cells.length; j++) s += counts[g * this.size + cells[j]];
    return s;
  }

  /** out[r · (G + 1) + g] = rate r of group g, and at g = G over all groups; NaN where the denominator is 0. */
  compute(counts: Int32Array, out: Float64Array): void {
    const { G, size } = this;
    const width = G + 1;
    for (let r = 0; r < this.rates.length; r++) {
      const { num, den } = this.rates[r];
      let tn = 0;
      let td = 0;
      for (let g = 0; g < G; g++) {
        const base = g * size;
        let a = 0;
        let d = 0;
        for (let j = 0; j < num.length; j++) a += counts[base + num[j]];
        for (let j = 0; j < den.length; j++) d += counts[base + den[j]];
        out[r * width + g] = d > 0 ? a / d : NaN;
        tn += a;
        td += d;
      }
      out[r * width + G] = td > 0 ? tn / td : NaN;
    }
  }
}

/** A between-group figure bound to a RateSet: the rates it compares, and for each the groups it covers. */
interface CompiledBetween {
  def: BetweenGroupsMetric;
  rates: number[];
  groups: number[][];
}

/**
 * The groups a figure covers are fixed by the full sample: non-empty, with the rate defined there
 * (`defined(q)` of the value position q). A resample where one of them is undefined (e.g. a small
 * group drew no positive sample) gives NaN, which the interval skips.
 */
function compileBetween(
  defs: BetweenGroupsMetric[],
  set: RateSet,
  defined: (q: number) => boolean,
  nonEmpty: number[],
): CompiledBetween[] {
  return defs.map((def) => {
    const rates = def.of.map((name) => set.index(name));
    return { def, rates, groups: rates.map((r) => nonEmpty.filter((g) => defined(r * (set.G + 1) + g))) };
  });
}

/** The figure on rate values laid out as in `RateSet.compute`; NaN when undefined. */
function betweenValue(b: CompiledBetween, vals: Float64Array, width: number): number {
  let out = NaN;
  for (let i = 0; i < b.rates.length; i++) {
    const gs = b.groups[i];
    if (!gs.length) return NaN;
    const base = b.rates[i] * width;
    let lo = Infinity;
    let hi = -Infinity;
    for (const g of gs) {
      const v = vals[base + g];
      if (Number.isNaN(v)) return NaN;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const f = b.def.aggregate === 'min' ? lo : hi - lo;
    out = i === 0 ? f : Math.max(out, f);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Internals

function checkBootstrap(opts: BootstrapOptions): void {
  if (!Number.isInteger(opts.resamples) || opts.resamples < 0) {
    throw new UserError(`the number of bootstrap resamples must be a whole number ≥ 0, got ${opts.resamples}.`, {
      field: 'bootstrapResamples',
      fix: 'use e.g. 1000 (0 turns the intervals off).',
    });
  }
  if (!(opts.confidence > 0 && opts.confidence < 1)) {
    throw new UserError(`the confidence level must lie strictly between 0 and 1, got ${opts.confidence}.`, {
      field: 'bootstrap.confidence',
      fix: 'use e.g. 0.95.',
    });
  }
  if (!Number.isFinite(opts.seed)) {
    throw new UserError(`the seed must be a number, got ${opts.seed}.`, {
      field: 'seed',
      fix: 'use a whole number such as 0.',
    });
  }
}

/** Validates shapes and values; returns n. */
function checkInput(pred: Predictions, input: EvaluationInput, what: string): number {
  const n = input.labels.length;
  const K = pred.numClasses;
  if (!Number.isInteger(K) || K < 1) throw new Error(`${what}: numClasses must be a positive integer, got ${K}`);
  if (input.groupIds.length !== n || input.rows.length !== n) {
    throw new Error(`metrics: ${n} labels but ${input.groupIds.length} group ids and ${input.rows.length} row numbers`);
  }
  if (pred.probs.length !== n * K) {
    throw new Error(`${what}: ${pred.probs.length} probabilities for ${n} samples × ${K} classes`);
  }
  if (input.groupNames.length === 0) throw new Error('metrics: no groups given');
  if (n === 0) {
    throw new UserError(`the ${input.split} split has no samples, so nothing can be measured.`, {
      field: input.split,
      fix: `give the ${input.split} split some rows (check the split column or the split fractions).`,
    });
  }
  const classes = Math.max(K, 2);
  const G = input.groupNames.length;
  for (let i = 0; i < n; i++) {
    const y = input.labels[i];
    if (y < 0 || y >= classes) {
      const name = input.classNames[y] !== undefined ? ` ('${input.classNames[y]}')` : '';
      throw new UserError(`the label has class index ${y}${name}, but the model has only ${classes} classes.`, {
        row: input.rows[i],
        field: 'label',
        fix:
          `check that the label column matches the model's output (${K} ` +
          `unit${K === 1 ? '' : 's'}), or map the classes with --classes.`,
      });
    }
    const g = input.groupIds[i];
    if (g < 0 || g >= G)
      throw new Error(`metrics: sample ${i} (row ${input.rows[i]}) has group id ${g}, but there are ${G} groups`);
  }
  const p = pred.probs;
  for (let j = 0; j < p.length; j++) {
    if (!Number.isFinite(p[j])) {
      const i = Math.floor(j / K);
      throw new UserError(`the ${what} contain ${p[j]} (output ${j % K}): the model's output is not a number.`, {
        row: input.rows[i],
        field: 'model output',
        fix:
          'these predictions were not checked on the reference backend: run again with --backend cpu; if it ' +
          'finishes, the engine of the other backend is at fault (please report it), else lower the learning rate ' +
          'or check the input data for huge values.',
      });
    }
  }
  return n;
}

function nonEmptyGroups(members: Int32Array[]): number[] {
  const out: number[] = [];
  members.forEach((m, g) => {
    if (m.length) out.push(g);
  });
  return out;
}

/** tie[i] = 1 when order[i] has the same score as order[i + 1]. */
function tieFlags(order: Int32Array, score: (i: number) => number): Uint8Array {
  const tie = new Uint8Array(order.length);
  for (let i = 0; i + 1 < order.length; i++) tie[i] = score(order[i]) === score(order[i + 1]) ? 1 : 0;
  return tie;
}

/** Per position of an order: bit 0 = the sample is a positive, bit 1 = it ties with the next position. */
function orderCodes(order: Int32Array, tie: Uint8Array, isPos: Uint8Array): Uint8Array {
  const code = new Uint8Array(order.length);
  for (let r = 0; r < order.length; r++) code[r] = isPos[order[r]] | (tie[r] << 1);
  return code;
}

/**
 * Weighted Mann–Whitney AUROC over a fixed ascending order: sample i counts w[i] times (w null: once).
 * `code` is `orderCodes(order, …)`. NaN when the weighted sample has no positives or no negatives.
 */
function weightedAuc(order: Int32Array, code: Uint8Array, w: Int32Array | null): number {
  let negBelow = 0;
  let acc = 0;
  let P = 0;
  let p = 0;
  let q = 0;
  const len = order.length;
  for (let r = 0; r < len; r++) {
    const c = code[r];
    const wi = w === null ? 1 : w[order[r]];
    if (c & 1) p += wi;
    else q += wi;
    if ((c & 2) === 0) {
      acc += p * (negBelow + q / 2);
      negBelow += q;
      P += p;
      p = 0;
      q = 0;
    }
  }
  const N = negBelow;
  return P > 0 && N > 0 ? acc / (P * N) : NaN;
}

interface AucSets {
  /** Number of one-vs-rest score sets (1 for binary). */
  classes: number;
  overall(w: Int32Array | null): number;
  group(g: number, w: Int32Array | null): number;
}

/**
 * Sorted orders for AUROC. Binary (K ≤ 2): the score is P(class 1), positives are label 1.
 * Multiclass: one order per class k (score P(k), positives label k); the AUROC is the macro mean
 * over the classes that have both positives and negatives in the (re)sample; NaN when none has.
 */
function buildAucSets(pred: Predictions, labels: Int32Array, members: Int32Array[]): AucSets {
  const K = pred.numClasses;
  const n = labels.length;
  const p = pred.probs;
  const sets: Array<{ all: Int32Array; allCode: Uint8Array; groups: Int32Array[]; groupCodes: Uint8Array[] }> = [];
  const scoreSets = K <= 2 ? [K === 1 ? 0 : 1] : Array.from({ length: K }, (_, k) => k);
  const groupIds = new Int32Array(n);
  members.forEach((m, g) => m.forEach((i) => (groupIds[i] = g)));
  for (const k of scoreSets) {
    const positiveClass = K === 1 ? 1 : k;
    const score = (i: number) => p[i * K + k];
    const all = new Int32Array(n);
    for (let i = 0; i < n; i++) all[i] = i;
    all.sort((a, b) => score(a) - score(b));
    const isPos = new Uint8Array(n);
    for (let i = 0; i < n; i++) isPos[i] = labels[i] === positiveClass ? 1 : 0;
    // per-group orders: the global order filtered by group (stays sorted)
    const groups = members.map((m) => new Int32Array(m.length));
    const fill = new Int32Array(members.length);
    for (let r = 0; r < n; r++) {
      const i = all[r];
      const g = groupIds[i];
      groups[g][fill[g]++] = i;
    }
    sets.push({
      all,
      allCode: orderCodes(all, tieFlags(all, score), isPos),
      groups,
      groupCodes: groups.map((o) => orderCodes(o, tieFlags(o, score), isPos)),
    });
  }
  const macro = (one: (s: (typeof sets)[number]) => number): number => {
    let sum = 0;
    let count = 0;
    for (const s of sets) {
      const v = one(s);
      if (!Number.isNaN(v)) {
        sum += v;
        count++;
      }
    }
    return count ? sum / count : NaN;
  };
  return {
    classes: sets.length,
    overall: (w) => macro((s) => weightedAuc(s.all, s.allCode, w)),
    group: (g, w) => macro((s) => weightedAuc(s.groups[g], s.groupCodes[g], w)),
  };
}
