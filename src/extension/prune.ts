/**
 * "Fair Prune: Prune with Fairness Check…": the pickers (model, data set, label, subgroups,
 * sparsities, losses — prefilled from settings and the last run on that model) and the runner that
 * streams a session from the engine process into the Sessions view, the status bar, the
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
import { SessionProgress } from '../ui/session-progress';
import type { RunningItemView } from '../ui/session-progress';
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

/** The histogram's values include its sampling interval: the delay is what comes on top of it. */
export function eventLoopSummary(h: { percentile(p: number): number; max: number; count: number }): string {
  const ms = (ns: number) => Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS).toFixed(1);
  return `extension host event-loop delay during the session: p50 ${ms(h.percentile(50))} ms, p99 ${ms(h.percentile(99))} ms, max ${ms(h.max)} ms (${h.count} samples every ${LOOP_RESOLUTION_MS} ms)`;
}

export interface RunningSession {
  modelPath: string;
  /** Known once the engine has started the session. */
  sessionDir?: string;
  view: RunningItemView;
}

export interface RunnerHooks {
  output: vscode.OutputChannel;
  enginePath: string;
  nativeEnv: () => { preload?: string; env?: Record<string, string> };
  onEvent: (event: EngineEvent, run: EngineRun) => void;
  onEnded: (outcome: EngineOutcome) => void;
}

interface ViewBar {
  report: (step: { increment: number }) => void;
  /** Ends the bar before the session ends (a new one takes its place). */
  end: () => void;
  /** Settles once the bar has ended. */
  finished: Thenable<void>;
}

/** Runs sessions, one per model at a time; a second request for a busy model queues or replaces. */
export class SessionRunner implements vscode.Disposable {
  private readonly runs = new Map<string, { run: EngineRun; shown: SessionProgress }>();
  private readonly queued = new Map<string, { request: RunRequest; demo?: DemoSetup }[]>();
  private readonly status: vscode.StatusBarItem;
  /** Each running session's progress bar over the Sessions view: its report, and what ends it early. */
  private readonly viewBars = new Map<string, ViewBar>();
  private readonly changed = new vscode.EventEmitter<string | undefined>();
  /** A running session's progress changed (its model path), or one started or ended (undefined). */
  readonly onDidChange = this.changed.event;

  constructor(private readonly hooks: RunnerHooks) {
    this.status = vscode.window.createStatusBarItem('fairPrune.status', vscode.StatusBarAlignment.Left, 50);
    this.status.name = 'Fair Prune';
    // Shown whichever side bar is open: a click brings the Sessions view, with the running item and its Cancel.
    this.status.command = 'fairPrune.sessions.focus';
  }

  get running(): EngineRun[] {
    return [...this.runs.values()].map((r) => r.run);
  }

  /** The running sessions as the Sessions view shows them, by model path. */
  runningViews(): RunningSession[] {
    return [...this.runs.entries()].map(([modelPath, r]) => ({
      modelPath,
      sessionDir: r.run.sessionDir,
      view: r.shown.view(),
    }));
  }

  /** Starts a session; with `demo`, the engine first writes the demo's data set and model (Try the Demo). */
  async start(request: RunRequest, demo?: DemoSetup): Promise<void> {
    const busy = this.runs.get(request.modelPath)?.run;
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
      this.cancel(request.modelPath);
      await busy.done;
    }
    await this.run(request, demo);
  }

  /**
   * The Sessions view's progress bar runs with the session (on the activity bar's Fair Prune icon while the
   * side bar shows another view); the running item and the status bar say what it is doing. VS Code draws
   * the bar over the view only when the view existed as the progress began, so it begins again, at the
   * share done so far, whenever the view is shown (`viewShown`).
   */
  private showViewBar(modelPath: string): void {
    const r = this.runs.get(modelPath);
    if (!r) return;
    const old = this.viewBars.get(modelPath);
    old?.end();
    let end = () => {};
    const ended = new Promise<void>((resolve) => (end = resolve));
    const bar: ViewBar = { report: () => {}, end, finished: Promise.resolve() };
    // The new bar begins once the old one has ended, so that its end does not stop the new one.
    bar.finished = (old?.finished ?? Promise.resolve()).then(() =>
      vscode.window.withProgress({ location: { viewId: 'fairPrune.sessions' } }, (progress) => {
        bar.report = (step) => progress.report(step);
        if (r.shown.done > 0) progress.report({ increment: r.shown.done * 100 });
        return Promise.race([r.run.done.then(() => undefined), ended]);
      }),
    );
    this.viewBars.set(modelPath, bar);
  }

  /** The Sessions view became visible: its progress bars start again, over it. */
  viewShown(): void {
    for (const modelPath of this.runs.keys()) this.showViewBar(modelPath);
  }

  /** `fairPrune.sessionRunning` is true while a session runs: Cancel shows (and its keybinding works) only then. */
  private setRunningContext(): void {
    void vscode.commands.executeCommand('setContext', 'fairPrune.sessionRunning', this.runs.size > 0);
  }

  /** Cancels the session on `modelPath`, or every running one. */
  cancel(modelPath?: string): boolean {
    const targets = [...this.runs.entries()].filter(([m]) => modelPath === undefined || m === modelPath);
    for (const [m, { run, shown }] of targets) {
      this.hooks.output.appendLine(`cancel requested for ${m}`);
      shown.cancel();
      run.cancel();
      this.changed.fire(m);
    }
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
    const shown = new SessionProgress(name);
    const draw = () => {
      const v = shown.view();
      this.status.text = v.statusText;
      this.status.tooltip = v.statusTooltip;
      this.status.show();
      this.changed.fire(request.modelPath);
    };
    let lastLog = 0;
    let run: EngineRun;
    try {
      run = stalls.timed(
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
                // Redrawn at most PROGRESS_UI_MS apart while fine-tuning, so the editor is not kept busy.
                const step = shown.onEvent(e);
                if (step) {
                  // The bar stays indeterminate until a share of the sweep is done (loading, the dense model).
                  if (step.increment > 0)
                    this.viewBars.get(request.modelPath)?.report({ increment: step.increment * 100 });
                  draw();
                }
                if (step && e.type === 'progress' && e.phase === 'finetune' && Date.now() - lastLog > 5000) {
                  lastLog = Date.now();
                  // With points running at once, the loss and speed are those of the point that reported.
                  const of =
                    (e.running?.length ?? 0) > 1
                      ? ` (point ${e.point}: ${pct(e.targetSparsity ?? 0, 0)} ${e.loss}, epoch ${e.epoch}/${e.epochs})`
                      : '';
                  out.appendLine(
                    `  ${shown.doing}, loss ${e.trainLoss?.toFixed(4)}, ${Math.round(e.samplesPerSecond ?? 0)} samples/s${of}`,
                  );
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
    } catch (e) {
      // The engine could not even start: the timers end here (otherwise they end with the session).
      loop.disable();
      stalls.stop();
      throw e;
    }
    this.runs.set(request.modelPath, { run, shown });
    this.setRunningContext();
    draw();
    this.showViewBar(request.modelPath);
    const outcome = await run.done;
    this.runs.delete(request.modelPath);
    this.viewBars.delete(request.modelPath);
    this.setRunningContext();
    this.changed.fire(undefined);
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
    for (const r of this.runs.values()) r.run.kill();
    this.status.dispose();
    this.changed.dispose();
  }
}
