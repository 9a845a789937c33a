/**
 * Committing a pruned model into the workspace: the model, a machine-readable `fairness.json` and a
 * readable `FAIRNESS.md`, written as one folder beside the dense model in one atomic step — never
 * over it. A point that fails the fairness gate is refused, unless the developer overrides with a
 * reason, which both files record.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { PrunedPoint, SessionResults } from '../protocol/results';
import { LOSS_LABELS } from '../protocol/results';
import { checkPoint } from '../shared/gate';
import type { FairnessPolicy, GateVerdict } from '../shared/gate';
import { UserError } from './errors';
import { sha256, writeFolderAtomic } from './atomic';
import { pct, signedPts, withInterval } from './report';
import { ENGINE_VERSION } from './version';
import { hashMismatch, readRegularFiles } from './file-hashes';
import { mdCode, mdText } from '../shared/markdown';
import { staysInside } from './results-check';

export const FAIRNESS_SCHEMA_VERSION = 1 as const;
/** The dense model's class probabilities on the test rows (test rows × classes, float32 little-endian),
 *  which the session writes and a commit carries beside the pruned model: the reference `fairprune
 *  check` compares the committed model against. */
export const DENSE_REFERENCE_FILE = 'dense-reference.f32';

export interface CommitRequest {
  sessionDir: string;
  results: SessionResults;
  pointId: string;
  policy: FairnessPolicy;
  /** Commit a failing point anyway; the reason is recorded. */
  override?: { reason: string };
  /** Default: a new folder beside the dense model's, named after it and the point. */
  targetDir?: string;
  /** The workspace folder: the target must lie inside it (a results.json names the dense model's path). */
  workspaceRoot?: string;
}

export interface FairnessRecord {
  schemaVersion: typeof FAIRNESS_SCHEMA_VERSION;
  committedAt: string;
  decision: 'passed' | 'overridden';
  override: { reason: string } | null;
  verdict: GateVerdict;
  point: Pick<
    PrunedPoint,
    | 'id'
    | 'targetSparsity'
    | 'achievedSparsity'
    | 'loss'
    | 'method'
    | 'size'
    | 'training'
    | 'evaluation'
    | 'comparison'
    | 'schedule'
    | 'cost'
    | 'latency'
    | 'structure'
  >;
  dense: SessionResults['dense'];
  engine: SessionResults['engine'] & { committedBy: string };
  /** sha256 of the CSV, the dense model, the pruned weights.bin, and of every committed file but
   *  fairness.json and FAIRNESS.md (`files`, by path in the folder): what `fairprune check` verifies. */
  hashes: { denseModel: string; data: string; prunedWeights: string; files?: Record<string, string> };
  /** How the numbers were measured, so `fairprune check` measures the same way: the bootstrap, and
   *  the dense model's test probabilities it compares against (a file committed beside the model). */
  measurement?: {
    seed: number;
    bootstrapResamples: number;
    confidence: number;
    denseReference: { file: string; numClasses: number } | null;
  };
  session: { id: string; dir: string };
  model: { dense: string; task: SessionResults['model']['task']; inputShape: number[] };
  data: Pick<
    SessionResults['data'],
    'path' | 'rows' | 'label' | 'groupColumns' | 'groups' | 'features' | 'imageColumn' | 'pixelScale' | 'preprocessing'
  > & {
    /** With the assignment (one character per data row), so `fairprune check` finds the same test rows. */
    split: SessionResults['data']['split'];
  };
}

/** Thrown when a point fails the gate and no override was given; names each failed rule. */
export class GateRefusedError extends UserError {
  constructor(
    readonly verdict: GateVerdict,
    pointId: string,
  ) {
    super(`point ${pointId} ${verdict.summary}.`, {
      field: pointId,
      fix: 'pick a point that passes, relax the policy in the fairPrune.gate settings, or override with a reason.',
    });
    this.name = 'GateRefusedError';
  }
}

export function defaultCommitDir(results: SessionResults, point: PrunedPoint): string {
  const modelPath = results.model.path;
  const base = path.basename(modelPath) === 'model.json' ? path.dirname(modelPath) : modelPath.replace(/\.[^.]+$/, '');
  let dir = `${base}.pruned-${point.id}`;
  for (let i = 2; fs.existsSync(dir); i++) dir = `${base}.pruned-${point.id}-${i}`;
  return dir;
}

/** Refuses a commit folder outside the workspace folder (a results.json names the dense model's path). */
export function assertInsideWorkspace(dir: string, workspaceRoot: string | undefined, resultsFile: string): void {
  if (workspaceRoot && !staysInside(workspaceRoot, path.relative(workspaceRoot, path.resolve(dir)))) {
    throw new UserError(`the commit would write '${dir}', outside the workspace folder ${workspaceRoot}.`, {
      file: resultsFile,
      field: 'model.path',
      fix: 'commit only sessions of models inside this workspace; this results.json names a model elsewhere.',
    });
  }
}

export function commitPoint(req: CommitRequest): {
  dir: string;
  files: string[];
  verdict: GateVerdict;
  record: FairnessRecord;
} {
  const { results } = req;
  const resultsFile = path.join(req.sessionDir, 'results.json');
  const { point, verdict } = gatedPoint(req);
  const { files, fileHashes, hasReference } = evaluatedFiles(req, point);
  const record: FairnessRecord = {
    schemaVersion: FAIRNESS_SCHEMA_VERSION,
    committedAt: new Date().toISOString(),
    decision: verdict.passed ? 'passed' : 'overridden',
    override: verdict.passed ? null : { reason: req.override!.reason.trim() },
    verdict,
    point: {
      id: point.id,
      targetSparsity: point.targetSparsity,
      achievedSparsity: point.achievedSparsity,
      loss: point.loss,
      method: point.method,
      size: point.size,
      training: point.training,
      evaluation: point.evaluation,
      comparison: point.comparison,
      schedule: point.schedule ?? 'one-shot',
      ...(point.cost ? { cost: point.cost } : {}),
      ...(point.latency ? { latency: point.latency } : {}),
      ...(point.structure ? { structure: point.structure } : {}),
    },
    dense: results.dense,
    engine: { ...results.engine, committedBy: ENGINE_VERSION },
    hashes: {
      denseModel: results.model.sha256,
      data: results.data.sha256,
      prunedWeights: files['weights.bin'] ? sha256(files['weights.bin'] as Uint8Array) : '',
      files: fileHashes,
    },
    measurement: {
      seed: results.config.seed,
      bootstrapResamples: results.config.bootstrap.resamples,
      confidence: results.config.bootstrap.confidence,
      denseReference: hasReference
        ? { file: DENSE_REFERENCE_FILE, numClasses: Math.max(2, results.data.label.classes.length) }
        : null,
    },
    session: { id: results.sessionId, dir: req.sessionDir },
    model: { dense: results.model.path, task: results.model.task, inputShape: results.model.inputShape },
    data: {
      path: results.data.path,
      rows: results.data.rows,
      label: results.data.label,
      groupColumns: results.data.groupColumns,
      groups: results.data.groups,
      features: results.data.features,
      imageColumn: results.data.imageColumn,
      pixelScale: results.data.pixelScale,
      preprocessing: results.data.preprocessing,
      split: results.data.split,
    },
  };
  files['fairness.json'] = JSON.stringify(record, null, 1);
  files['FAIRNESS.md'] = renderFairnessMarkdown(record);
  const dir = req.targetDir ?? defaultCommitDir(results, point);
  assertInsideWorkspace(dir, req.workspaceRoot, resultsFile);
  writeFolderAtomic(dir, files);
  return { dir, files: Object.keys(files).sort(), verdict, record };
}

/** The point to commit and the gate's verdict on it; a failed gate needs an override with a reason. */
function gatedPoint(req: CommitRequest): { point: PrunedPoint; verdict: GateVerdict } {
  const { results } = req;
  const point = results.points.find((p) => p.id === req.pointId);
  if (!point) {
    throw new UserError(`session ${results.sessionId} has no point '${req.pointId}'.`, {
      file: path.join(req.sessionDir, 'results.json'),
      field: 'points',
      fix: `pick one of ${results.points.map((p) => p.id).join(', ') || '(none finished)'}.`,
    });
  }
  const verdict = checkPoint(point, req.policy);
  if (!verdict.passed) {
    if (!req.override) throw new GateRefusedError(verdict, point.id);
    if (!req.override.reason.trim()) {
      throw new UserError('an override needs a reason, which is recorded with the model.', {
        field: 'override reason',
        fix: 'say why this point may ship despite failing the gate.',
      });
    }
  }
  return { point, verdict };
}

/**
 * Everything the point saved (model.json + weights, the Keras file, the preprocessing, a shrunk/
 * model) with their sha256, plus the dense reference predictions when the session wrote them.
 */
function evaluatedFiles(
  req: CommitRequest,
  point: PrunedPoint,
): { files: Record<string, string | Uint8Array>; fileHashes: Record<string, string>; hasReference: boolean } {
  const resultsFile = path.join(req.sessionDir, 'results.json');
  if (!staysInside(req.sessionDir, point.modelDir)) {
    throw new UserError(`the point's model folder '${point.modelDir}' lies outside the session folder.`, {
      file: resultsFile,
      field: `${point.id}.modelDir`,
      fix: 'run the session again; this results.json was not written by Fair Prune.',
    });
  }
  const source = path.join(req.sessionDir, point.modelDir);
  if (!fs.existsSync(path.join(source, 'model.json'))) {
    throw new UserError('the pruned model of this point is missing.', {
      file: source,
      field: point.id,
      fix: 'run the session again; its folder was moved or deleted.',
    });
  }
  // Regular files only, and (when the session recorded them) exactly the bytes that were evaluated.
  const files: Record<string, string | Uint8Array> = readRegularFiles(source);
  const changed = point.files ? hashMismatch(files as Record<string, Uint8Array>, point.files) : undefined;
  if (changed) {
    throw new UserError(`the pruned model of ${point.id} is not the one that was evaluated: ${changed}.`, {
      file: source,
      field: `${point.id}.files`,
      fix: "run the session again; the gate's verdict holds only for the weights it measured.",
    });
  }
  const fileHashes = Object.fromEntries(
    Object.keys(files)
      .sort()
      .map((f) => [f, sha256(files[f] as Uint8Array)]),
  );
  const reference = path.join(req.sessionDir, DENSE_REFERENCE_FILE);
  const hasReference = fs.existsSync(reference);
  if (hasReference) {
    files[DENSE_REFERENCE_FILE] = fs.readFileSync(reference);
    fileHashes[DENSE_REFERENCE_FILE] = sha256(files[DENSE_REFERENCE_FILE] as Uint8Array);
  }
  return { files, fileHashes, hasReference };
}

export function renderFairnessMarkdown(r: FairnessRecord): string {
  const p = r.point;
  const lines: string[] = [];
  lines.push(`# Fairness check: ${mdText(p.id)}`, '');
  const judged =
    r.verdict.policy.judgeOn === 'interval' ? 'judged on 95% bootstrap intervals' : 'judged on point estimates';
  lines.push(
    r.decision === 'passed'
      ? `**Passed** the fairness gate (${judged}).`
      : '**Failed** the fairness gate and was committed by **override**. ' +
          `Reason given: “${mdText(r.override!.reason)}”.`,
    '',
  );
  const schedule = p.schedule ?? 'one-shot';
  const target = p.structure
    ? `${pct(p.structure.reached)} ` +
      `fewer ${p.structure.target.metric === 'flops' ? 'multiply-adds (FLOPs)' : 'weights'} ` +
      'by removing whole filters and units ' +
      `(${p.method}, ${schedule}, ${p.structure.target.scope === 'global' ? 'ranked globally' : 'per layer'})`
    : `${pct(p.achievedSparsity)} of its prunable weights removed (${p.method}, ${schedule})`;
  lines.push(
    `Pruned from ${mdCode(r.model.dense)}: ${target}, ` +
      `fine-tuned with ${p.loss} ` +
      `(${LOSS_LABELS[p.loss]}). ${p.size.nonZeroParameters.toLocaleString('en')} ` +
      'non-zero parameters; weights gzip ' +
      `to ${(p.size.gzipBytes / 1024).toFixed(1)} KiB.`,
  );
  if (p.cost)
    lines.push(
      `Parameters ${p.cost.parametersBefore.toLocaleString('en')} ` +
        `→ ${p.cost.parametersAfter.toLocaleString('en')}; ` +
        `FLOPs per sample ${p.cost.flopsBefore.toLocaleString('en')} ` +
        `→ ${p.cost.flopsAfter.toLocaleString('en')}.`,
    );
  if (p.latency) lines.push(p.latency.sentence);
  lines.push('');
  lines.push('## Policy', '', '| rule | limit | judged value | estimate | result |', '| --- | --- | --- | --- | --- |');
  for (const rule of r.verdict.rules) {
    const fmt = rule.id === 'min-accuracy' ? (x: number) => pct(x) : (x: number) => `${(x * 100).toFixed(1)} pts`;
    lines.push(
      `| ${mdText(rule.description)} | ${fmt(rule.limit)} ` +
        `| ${fmt(rule.observed)} | ${fmt(rule.estimate)} ` +
        `| ${rule.passed ? 'pass' : `**fail**: ${mdText(rule.message)}`} |`,
    );
  }
  lines.push(
    '',
    `## Accuracy by group (test split, ${r.data.split.counts.test} samples)`,
    '',
    '| group | test samples | dense | pruned | change [95% CI] | ψ [95% CI] |',
    '| --- | --- | --- | --- | --- | --- |',
  );
  lines.push(
    `| **all** | ${p.evaluation.n} | ${pct(r.dense.accuracy.value)} ` +
      `| ${withInterval(p.evaluation.accuracy)} ` +
      `| ${withInterval(p.comparison.accuracyChange, (x) => signedPts(x))} | |`,
  );
  for (const g of p.comparison.groups) {
    const d = r.dense.groups.find((x) => x.group === g.group);
    const e = p.evaluation.groups.find((x) => x.group === g.group);
    lines.push(
      `| ${mdText(g.group)} | ${e?.n ?? '–'} ` +
        `| ${d ? pct(d.accuracy.value) : '–'} ` +
        `| ${e ? withInterval(e.accuracy) : '–'} ` +
        `| ${withInterval(g.accuracyChange, (x) => signedPts(x))} ` +
        `| ${withInterval(g.excessGap, (x) => signedPts(x))} |`,
    );
  }
  lines.push(
    '',
    'Worst group: ' +
      `dense ${mdText(r.dense.worstGroup.group)} ${pct(r.dense.worstGroup.accuracy.value)}, ` +
      `pruned ${mdText(p.evaluation.worstGroup.group)} ${pct(p.evaluation.worstGroup.accuracy.value)}. ` +
      `Largest gap: dense ${pct(r.dense.largestGap.value)}, ` +
      `pruned ${pct(p.evaluation.largestGap.value)}.`,
    '',
  );
  lines.push('## Provenance', '');
  lines.push(
    `- Data: ${mdCode(r.data.path)} (${r.data.rows} rows), ` +
      `label ${mdCode(r.data.label.column)} ` +
      `(${mdText(r.data.label.classes.join(', '))}), ` +
      `groups by ${mdText(r.data.groupColumns.join(' × '))}`,
  );
  lines.push(
    `- Dense model sha256 \`${r.hashes.denseModel}\`; ` +
      `data sha256 \`${r.hashes.data}\`; pruned weights sha256 ` +
      `\`${r.hashes.prunedWeights}\``,
  );
  lines.push(
    `- Session ${r.session.id}; engine ${r.engine.version} ` +
      `on ${r.engine.backend.name} (tfjs ${r.engine.backend.tfjsVersion}), ` +
      `Node ${r.engine.node}; committed ${r.committedAt}`,
  );
  return lines.join('\n') + '\n';
}
