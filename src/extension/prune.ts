/**
 * "Fair Prune: Prune with Fairness Check…": the pickers (model, data set, label, subgroups,
 * sparsities, losses — prefilled from settings and the last run on that model) and the runner that
 * streams a session from the engine process into a progress notification, the status bar, the
 * output channel and the views.
 */
import * as fs from 'fs';
import * as path from 'path';
import { monitorEventLoopDelay } from 'perf_hooks';
import * as vscode from 'vscode';
import type { DemoSetup, EngineEvent, RunRequest } from '../protocol/engine';
import type { LossName } from '../protocol/results';
import { LOSS_LABELS, LOSS_NAMES } from '../protocol/results';
import { readCsvHeader } from '../core/data/csv';
import type { CsvHeader } from '../core/data/csv';
import { parseSparsities } from '../core/options';
import { UserError } from '../core/errors';
import { checkPoint } from '../shared/gate';
import { pct } from '../core/report';
import { describeProgress } from '../ui/progress-text';
import { StallWatch } from '../ui/stall-watch';
import { EngineRun } from './engine-host';
import type { EngineOutcome } from './engine-host';
import { outDirFor, policy, settings } from './config';

// Case-insensitive like the explorer menu's when-clause (VS Code globs take character ranges).
const MODEL_GLOB = '**/{model.json,*.[hH]5,*.[hH][dD][fF]5,*.[kK][eE][rR][aA][sS]}';
const EXCLUDE = '**/{node_modules,.fairprune,.git}/**';

interface LastRun {
  dataPath: string;
  label: string;
  groups: string[];
  sparsities: number[];
  losses: LossName[];
}

export function isModelFile(uri: vscode.Uri): boolean {
  return /(^|[\\/])model\.json$|\.(h5|hdf5|keras)$/i.test(uri.fsPath);
}

async function pickFile(
  title: string,
  glob: string,
  preferred: string | undefined,
  filters: Record<string, string[]>,
): Promise<string | undefined> {
  const found = await vscode.workspace.findFiles(glob, EXCLUDE, 500);
  const paths = found
    .map((u) => u.fsPath)
    .sort((a, b) => (a === preferred ? -1 : b === preferred ? 1 : a.localeCompare(b)));
  const browse = '$(folder-opened) Browse…';
  const items: vscode.QuickPickItem[] = [
    ...paths.map((p) => ({
      label: path.basename(p) === 'model.json' ? path.basename(path.dirname(p)) + '/model.json' : path.basename(p),
      description: vscode.workspace.asRelativePath(path.dirname(p)),
      detail: p === preferred ? 'used last time' : undefined,
      path: p,
    })),
    { label: browse },
  ];
  const picked = await vscode.window.showQuickPick(items, {
    title,
    placeHolder: paths.length ? 'Pick a file from the workspace' : 'No file found in the workspace: browse',
    matchOnDescription: true,
    ignoreFocusOut: true,
  });
  if (!picked) return undefined;
  if (picked.label === browse) {
    const uris = await vscode.window.showOpenDialog({ title, canSelectMany: false, filters });
    return uris?.[0]?.fsPath;
  }
  return (picked as { path?: string }).path;
}

function describeColumn(header: CsvHeader, name: string): string {
  const s = header.summaries.find((c) => c.name === name);
  if (!s) return '';
  if (s.values) {
    const entries = Object.entries(s.values).sort((a, b) => b[1] - a[1]);
    return `${entries.length} value${entries.length === 1 ? '' : 's'}: ${entries
      .slice(0, 6)
      .map(([v, n]) => `${v} ${n}`)
      .join(', ')}${entries.length > 6 ? ', …' : ''}`;
  }
  return s.images
    ? 'image paths'
    : s.numeric
      ? `numbers, ${s.distinct > 20 ? 'more than 20' : s.distinct} distinct`
      : `text, ${s.distinct > 20 ? 'more than 20' : s.distinct} distinct`;
}

/** What a session takes from the `fairPrune.*` settings (the method, training, the bootstrap, where it runs). */
export function sessionSettings(s = settings()) {
  const {
    method,
    epochs,
    batchSize,
    learningRate,
    patience,
    seed,
    seeds,
    minWeight,
    gamma,
    droEta,
    ceagTolerance,
    bootstrapResamples,
    backend,
    workers,
  } = s;
  return {
    method,
    epochs,
    batchSize,
    learningRate,
    patience,
    seed,
    seeds,
    minWeight,
    gamma,
    droEta,
    ceagTolerance,
    bootstrapResamples,
    backend,
    workers,
  };
}

/** Asks everything a session needs; undefined when the user backs out. */
export async function askRunRequest(
  context: vscode.ExtensionContext,
  modelArg?: vscode.Uri,
): Promise<RunRequest | undefined> {
  const active = vscode.window.activeTextEditor?.document.uri;
  const modelPath =
    modelArg && isModelFile(modelArg)
      ? modelArg.fsPath
      : active && isModelFile(active)
        ? active.fsPath
        : await pickFile('Fair Prune (1/6): the model to prune', MODEL_GLOB, undefined, {
            Models: ['json', 'h5', 'hdf5', 'keras'],
          });
  if (!modelPath) return undefined;
  const key = `fairPrune.lastRun:${modelPath}`;
  const last = context.workspaceState.get<LastRun>(key);
  const s = settings();

  const dataPath = await pickFile(
    `Fair Prune (2/6): the data set for ${path.basename(path.dirname(modelPath))}`,
    '**/*.csv',
    last?.dataPath,
    { CSV: ['csv'] },
  );
  if (!dataPath) return undefined;
  let header: CsvHeader;
  try {
    header = readCsvHeader(dataPath);
  } catch (e) {
    throw e instanceof UserError
      ? e
      : new UserError(`cannot read it: ${(e as Error).message}`, {
          file: dataPath,
          fix: 'pick a readable CSV file with a header row.',
        });
  }
  const columns = header.columns.filter((c) => c !== '');
  // A large file is summarised from its first megabytes: say so, rather than show partial counts as totals.
  const countsNote = header.complete ? '' : ` (counts from the first ${header.rowsRead.toLocaleString('en')} rows)`;

  const labelPick = await vscode.window.showQuickPick(
    columns.map((c) => ({ label: c, description: describeColumn(header, c), picked: c === last?.label })),
    {
      title: 'Fair Prune (3/6): the label column (what the model predicts)',
      placeHolder: (last?.label ? `last time: ${last.label}` : 'Pick the column with the true class') + countsNote,
      ignoreFocusOut: true,
      matchOnDescription: true,
    },
  );
  if (!labelPick) return undefined;
  const label = labelPick.label;

  const groupItems = columns
    .filter((c) => c !== label)
    .map((c) => ({ label: c, description: describeColumn(header, c), picked: last?.groups.includes(c) ?? false }));
  const groupPicks = await vscode.window.showQuickPick(groupItems, {
    title: 'Fair Prune (4/6): subgroup columns (several give intersectional groups)',
    placeHolder: `Pick the demographic column(s) whose groups must not be hurt more than others${countsNote}`,
    canPickMany: true,
    ignoreFocusOut: true,
    matchOnDescription: true,
  });
  if (!groupPicks || groupPicks.length === 0) return undefined;

  const sparsityText = await vscode.window.showInputBox({
    title: 'Fair Prune (5/6): target sparsities',
    prompt: 'Fractions of weights to remove, comma-separated (0.8 or 80%)',
    value: (last?.sparsities ?? s.sparsities).join(', '),
    ignoreFocusOut: true,
    validateInput: (v) => {
      try {
        parseSparsities(v);
        return undefined;
      } catch (e) {
        return (e as Error).message.replace(/^'--sparsity': /, '');
      }
    },
  });
  if (sparsityText === undefined) return undefined;

  const lastLosses = last?.losses ?? s.losses;
  const lossPicks = await vscode.window.showQuickPick(
    LOSS_NAMES.map((l) => ({ label: l, description: LOSS_LABELS[l], picked: lastLosses.includes(l) })),
    { title: 'Fair Prune (6/6): fine-tuning losses to compare', canPickMany: true, ignoreFocusOut: true },
  );
  if (!lossPicks || lossPicks.length === 0) return undefined;

  const request: RunRequest = {
    modelPath,
    data: { csvPath: dataPath, label, groups: groupPicks.map((g) => g.label) },
    sparsities: parseSparsities(sparsityText),
    losses: lossPicks.map((l) => l.label as LossName),
    ...sessionSettings(s),
    outDir: outDirFor(vscode.Uri.file(modelPath)) ?? path.join(path.dirname(modelPath), '.fairprune'),
  };
  await context.workspaceState.update(key, {
    dataPath,
    label,
    groups: request.data.groups,
    sparsities: request.sparsities,
    losses: request.losses,
  } satisfies LastRun);
  return request;
}

const LOOP_RESOLUTION_MS = 10;
const PROGRESS_UI_MS = 250;

/** The histogram's values include its sampling interval: the delay is what comes on top of it. */
export function eventLoopSummary(h: { percentile(p: number): number; max: number; count: number }): string {
  const ms = (ns: number) => Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS).toFixed(1);
  return `extension host event-loop delay during the session: p50 ${ms(h.percentile(50))} ms, p99 ${ms(h.percentile(99))} ms, max ${ms(h.max)} ms (${h.count} samples every ${LOOP_RESOLUTION_MS} ms)`;
}

export interface RunnerHooks {
  output: vscode.OutputChannel;
  enginePath: string;
  nativeEnv: () => { preload?: string; env?: Record<string, string> };
  onEvent: (event: EngineEvent, run: EngineRun) => void;
  onEnded: (outcome: EngineOutcome) => void;
}

/** Runs sessions, one per model at a time; a second request for a busy model queues or replaces. */
export class SessionRunner implements vscode.Disposable {
  private readonly runs = new Map<string, EngineRun>();
  private readonly queued = new Map<string, { request: RunRequest; demo?: DemoSetup }[]>();
  private readonly status: vscode.StatusBarItem;

  constructor(private readonly hooks: RunnerHooks) {
    this.status = vscode.window.createStatusBarItem('fairPrune.status', vscode.StatusBarAlignment.Left, 50);
    this.status.name = 'Fair Prune';
    this.status.command = 'fairPrune.showLog';
  }

  get running(): EngineRun[] {
    return [...this.runs.values()];
  }

  /** Starts a session; with `demo`, the engine first writes the demo's data set and model (Try the Demo). */
  async start(request: RunRequest, demo?: DemoSetup): Promise<void> {
    const busy = this.runs.get(request.modelPath);
    if (busy) {
      const queue = 'Queue It';
      const replace = 'Cancel Running Session';
      const choice = await vscode.window.showWarningMessage(
        `A pruning session is already running for ${path.basename(path.dirname(request.modelPath))}/${path.basename(request.modelPath)}.`,
        {
          modal: true,
          detail:
            'Run the new session after it, or cancel the running one (its finished points are kept) and start the new one.',
        },
        queue,
        replace,
      );
      if (choice === queue) {
        this.queued.set(request.modelPath, [...(this.queued.get(request.modelPath) ?? []), { request, demo }]);
        this.hooks.output.appendLine(`queued a session for ${request.modelPath}`);
        return;
      }
      if (choice !== replace) return;
      busy.cancel();
      await busy.done;
    }
    await this.run(request, demo);
  }

  /** `fairPrune.sessionRunning` is true while a session runs: Cancel shows (and its keybinding works) only then. */
  private setRunningContext(): void {
    void vscode.commands.executeCommand('setContext', 'fairPrune.sessionRunning', this.runs.size > 0);
  }

  cancel(modelPath?: string): boolean {
    const targets = modelPath ? [this.runs.get(modelPath)].filter((r): r is EngineRun => Boolean(r)) : this.running;
    targets.forEach((r) => r.cancel());
    return targets.length > 0;
  }

  private async run(request: RunRequest, demo?: DemoSetup): Promise<void> {
    const out = this.hooks.output;
    const name = `${path.basename(path.dirname(request.modelPath))}/${path.basename(request.modelPath)}`;
    const { csvPath, label, groups } = request.data;
    out.appendLine(
      `\n▶ ${new Date().toLocaleTimeString()} pruning ${request.modelPath} with ${csvPath} ` +
        `(label ${label}, groups ${groups.join(' × ')}), ` +
        `sparsities ${request.sparsities.join(', ')}, losses ${request.losses.join(', ')}`,
    );
    const { preload, env } = this.hooks.nativeEnv();
    // How responsive the editor stayed: the extension host's event-loop delay while the session ran.
    const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    loop.enable();
    // …and when it stalled, after what, and how long our own handlers took.
    const stalls = new StallWatch();
    stalls.start();
    const cpuAtStart = process.cpuUsage();
    const startedAt = Date.now();
    await vscode.window
      .withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Fair Prune: ${name}`, cancellable: true },
        async (progress, token) => {
          let lastLog = 0;
          let lastFraction = 0;
          let lastUi = 0;
          const run = stalls.timed(
            'starting the engine process',
            () =>
              new EngineRun(request, {
                enginePath: this.hooks.enginePath,
                preload,
                env,
                demo,
                onStderr: (t) => out.append(t),
                onEvent: (e) =>
                  stalls.timed(`a ${e.type}${e.type === 'progress' ? ` (${e.phase})` : ''} event`, () => {
                    if (e.type === 'log') out.appendLine(`${e.level === 'warn' ? 'warning: ' : ''}${e.message}`);
                    // Before the session starts (the demo's data set and dense model being made) its steps are the progress.
                    if (e.type === 'log' && !run.sessionDir && !e.message.startsWith(' '))
                      progress.report({ message: e.message });
                    // Fine-tuning reports every step (hundreds a second on a small model): the notification
                    // and the status bar are redrawn at most PROGRESS_UI_MS apart, so the editor is not kept busy.
                    const throttled =
                      e.type === 'progress' && e.phase === 'finetune' && Date.now() - lastUi < PROGRESS_UI_MS;
                    if (e.type === 'progress' && !throttled) {
                      lastUi = Date.now();
                      const { text: what, fraction, short } = describeProgress(e);
                      progress.report({ message: what, increment: Math.max(0, (fraction - lastFraction) * 100) });
                      lastFraction = Math.max(lastFraction, fraction);
                      this.status.text = `$(sync~spin) Fair Prune ${short}`;
                      this.status.tooltip = `Fair Prune: ${name} — ${what}`;
                      this.status.show();
                      if (e.phase === 'finetune' && Date.now() - lastLog > 5000) {
                        lastLog = Date.now();
                        // With points running at once, the loss and speed are those of the point that reported.
                        const of =
                          (e.running?.length ?? 0) > 1
                            ? ` (point ${e.point}: ${pct(e.targetSparsity ?? 0, 0)} ${e.loss}, epoch ${e.epoch}/${e.epochs})`
                            : '';
                        out.appendLine(
                          `  ${what}, loss ${e.trainLoss?.toFixed(4)}, ${Math.round(e.samplesPerSecond ?? 0)} samples/s${of}`,
                        );
                      }
                    }
                    if (e.type === 'point') {
                      const v = checkPoint(e.point, policy());
                      out.appendLine(
                        `  ✓ ${e.point.id}: accuracy ${pct(e.point.evaluation.accuracy.value)}, worst group ${e.point.evaluation.worstGroup.group} ${pct(e.point.evaluation.worstGroup.accuracy.value)} — ${v.passed ? 'passes' : 'fails'} the fairness gate`,
                      );
                    }
                    this.hooks.onEvent(e, run);
                  }),
              }),
          );
          this.runs.set(request.modelPath, run);
          this.setRunningContext();
          // The Sessions view shows a progress bar while the session runs.
          void vscode.window.withProgress({ location: { viewId: 'fairPrune.sessions' } }, () => run.done);
          token.onCancellationRequested(() => {
            out.appendLine('cancel requested');
            run.cancel();
          });
          const outcome = await run.done;
          this.runs.delete(request.modelPath);
          this.setRunningContext();
          if (this.runs.size === 0) this.status.hide();
          out.appendLine(
            `■ session ${outcome.status}${outcome.error ? `: ${outcome.error}` : ''}${outcome.sessionDir ? ` (${outcome.sessionDir})` : ''}`,
          );
          loop.disable();
          stalls.stop();
          const cpu = process.cpuUsage(cpuAtStart);
          out.appendLine(
            `  ${eventLoopSummary(loop)}; the extension host used ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms of CPU in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`,
          );
          out.appendLine(`  ${stalls.summary()}`);
          this.hooks.onEnded(outcome);
          void this.announce(name, outcome);
        },
      )
      .then(undefined, (e: unknown) => {
        // The engine could not even start: the timers end here (otherwise they end with the session).
        loop.disable();
        stalls.stop();
        throw e;
      });
    const next = this.queued.get(request.modelPath)?.shift();
    if (next) await this.run(next.request, next.demo);
  }

  private async announce(name: string, o: EngineOutcome): Promise<void> {
    const show = 'Show Report';
    const log = 'Show Log';
    let pick: string | undefined;
    const points =
      o.resultsPath && fs.existsSync(o.resultsPath)
        ? (JSON.parse(fs.readFileSync(o.resultsPath, 'utf8')).points as unknown[]).length
        : 0;
    if (o.status === 'completed')
      pick = await vscode.window.showInformationMessage(
        `Fair Prune: ${name} — session finished with ${points} pruned point${points === 1 ? '' : 's'}.`,
        show,
      );
    else if (o.status === 'cancelled')
      pick = await vscode.window.showInformationMessage(
        `Fair Prune: ${name} — session cancelled; ${points} finished point${points === 1 ? ' is' : 's are'} kept.`,
        ...(points ? [show] : []),
      );
    else
      pick = await vscode.window.showErrorMessage(
        `Fair Prune: ${name} — session failed: ${o.error ?? 'unknown error'}${points ? ` (${points} finished point${points === 1 ? ' is' : 's are'} kept)` : ''}`,
        ...(o.sessionDir && points ? [show] : []),
        log,
      );
    if (pick === show && o.sessionDir) void vscode.commands.executeCommand('fairPrune.showSession', o.sessionDir);
    if (pick === log) this.hooks.output.show(true);
  }

  dispose(): void {
    for (const r of this.runs.values()) r.kill();
    this.status.dispose();
  }
}
