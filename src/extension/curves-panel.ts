/**
 * "Fair Prune: Show Fairness Curves": the editor panel where the developer decides which pruned
 * point to ship. Sparsity (or FLOPs reduction) against each subgroup's accuracy per loss, live while
 * a session runs; a table of every point with the gate's verdict; the selected point's detail and
 * Commit (through commitCommand, so the gate and the override prompt are the same everywhere); the
 * pruning-identified exemplars of image data; PNG and CSV export.
 *
 * Locked down: CSP `default-src 'none'`, nonce'd script and style inside the page (VS Code Elements'
 * styles take the same nonce), no `localResourceRoots` (it loads no file). Exemplar images are read
 * here and sent as `data:` URIs (only image files the CSV's image column names for the exemplar
 * rows, up to 2 MiB each). A point's model.json and weights, the data file and the images are read only inside the session or the
 * workspace folder, their sizes checked first. Survives reloads: the webview keeps its `CurvesState`
 * with setState, and the serializer hands it back to `restore`.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import type { EngineEvent } from '../protocol/engine';
import type { CurvesState, CurvesToHost, ExemplarImage, HostToCurves, SessionView } from '../protocol/webview';
import { readSession } from '../core/session-store';
import { readModelJson, readSavedWeights } from '../core/model-files';
import { staysInside } from '../core/results-check';
import { readCsvFile } from '../core/data/csv';
import { writeFileAtomic } from '../core/atomic';
import { DEFAULT_CURVES_STATE, flopsReduction, macProfile, sanitizeState, weightZeroCounts } from '../ui/curves-model';
import type { WeightsManifest } from '../ui/curves-model';
import { describeProgress } from '../ui/progress-text';
import { newNonce, pageAssets, webviewCsp, webviewPage } from '../ui/webview-assets';
import { commitCommand } from './commit';
import { sessionViewOf } from './config';

const IMAGE_TYPES: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
};
const MAX_IMAGE_BYTES = 2 * 1024 * 1024;
/** The weight bytes of a point's model the panel reads to count its zeros (a Fair Prune model is far smaller). */
const MAX_POINT_WEIGHT_BYTES = 2 ** 30;
/** The data file the panel reads for exemplar images. */
const MAX_CSV_BYTES = 512 * 2 ** 20;
const MAX_IMAGES_PER_GROUP = 24;
/** How long the page's script may take to say `ready` before the page is loaded again (see watchReady). */
const READY_TIMEOUT_MS = 10_000;
const MAX_RELOADS = 2;

export class CurvesPanel implements vscode.Disposable {
  static readonly viewType = 'fairPrune.curves';
  private panel?: vscode.WebviewPanel;
  private ready = false;
  private state: CurvesState = { ...DEFAULT_CURVES_STATE };
  private readonly panelDisposables: vscode.Disposable[] = [];
  private readonly disposables: vscode.Disposable[] = [];
  private lastProgress = 0;
  private readyTimer?: NodeJS.Timeout;
  private reloads = 0;
  private readonly flopsCache = new Map<
    string,
    { mtime: number; flops: Record<string, number> | null; note: string }
  >();
  private csvCache?: { file: string; mtime: number; rows: string[][]; columns: string[] };

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly output: vscode.OutputChannel,
    /** The session to open when the command is given none (the report view's, else the newest). */
    private readonly fallbackSession: () => string | undefined,
  ) {
    // sessions run from the command line (or another window) update the panel too
    const watcher = vscode.workspace.createFileSystemWatcher('**/sessions/*/results.json');
    const changed = (uri: vscode.Uri) => {
      if (this.state.sessionDir && path.resolve(path.dirname(uri.fsPath)) === path.resolve(this.state.sessionDir))
        this.refreshSoon();
    };
    this.disposables.push(watcher, watcher.onDidChange(changed), watcher.onDidCreate(changed));
  }

  private pending?: NodeJS.Timeout;
  private refreshSoon(): void {
    if (this.pending) clearTimeout(this.pending);
    this.pending = setTimeout(() => this.sendSession(), 250);
  }

  get currentSession(): string | undefined {
    return this.panel ? (this.state.sessionDir ?? undefined) : undefined;
  }

  /** Opens (or reveals) the panel on a session. */
  show(sessionDir?: string, opts: { preserveFocus?: boolean } = {}): void {
    const dir = sessionDir ?? this.state.sessionDir ?? this.fallbackSession() ?? null;
    if (dir !== this.state.sessionDir) this.state = { ...this.state, sessionDir: dir, selected: null };
    const preserveFocus = opts.preserveFocus ?? false;
    if (this.panel) {
      this.panel.reveal(undefined, preserveFocus);
      this.sendSession();
      return;
    }
    const panel = vscode.window.createWebviewPanel(
      CurvesPanel.viewType,
      'Fairness Curves',
      { viewColumn: vscode.ViewColumn.Active, preserveFocus },
      this.options(),
    );
    this.attach(panel);
  }

  /** The serializer's half: a panel VS Code restored after a reload, with the state the webview kept. */
  restore(panel: vscode.WebviewPanel, state: unknown): void {
    this.panel?.dispose();
    this.state = sanitizeState(state);
    if (!this.state.sessionDir) this.state.sessionDir = this.fallbackSession() ?? null;
    panel.webview.options = this.options();
    this.attach(panel);
  }

  /** Engine events of a running session: the panel follows the running session and draws its points as they land. */
  onEngineEvent(e: EngineEvent, sessionDir: string | undefined): void {
    if (!this.panel || !sessionDir) return;
    if (e.type === 'started') {
      this.state = { ...this.state, sessionDir, selected: null };
      this.post({ type: 'progress', sessionDir, text: 'loading the model and data', fraction: 0 });
      return;
    }
    if (sessionDir !== this.state.sessionDir) return;
    if (e.type === 'progress') {
      if (Date.now() - this.lastProgress < 500 && e.phase === 'finetune') return;
      this.lastProgress = Date.now();
      const { text, fraction } = describeProgress(e);
      this.post({ type: 'progress', sessionDir, text, fraction });
    }
    if (e.type === 'dense' || e.type === 'point' || e.type === 'finished') this.sendSession();
  }

  /** Re-send the shown session (results.json changed, settings changed, trust granted). */
  refresh(sessionDir?: string): void {
    if (!sessionDir || sessionDir === this.state.sessionDir) this.sendSession();
  }

  private options(): vscode.WebviewPanelOptions & vscode.WebviewOptions {
    return {
      enableScripts: true,
      retainContextWhenHidden: false,
      enableFindWidget: true,
      // The page carries its script and styles, and images come as data: URIs: it loads no file.
      localResourceRoots: [],
    };
  }

  private attach(panel: vscode.WebviewPanel): void {
    this.panel = panel;
    this.ready = false;
    panel.iconPath = vscode.Uri.joinPath(this.extensionUri, 'media', 'fair-prune.svg');
    this.panelDisposables.push(
      panel.webview.onDidReceiveMessage((m: CurvesToHost) => void this.onMessage(m).catch((e: Error) => this.fail(e))),
      panel.onDidDispose(() => {
        this.panel = undefined;
        this.ready = false;
        clearTimeout(this.readyTimer);
        this.panelDisposables.splice(0).forEach((d) => d.dispose());
      }),
    );
    panel.webview.html = this.html(panel.webview);
    this.reloads = 0;
    this.watchReady(panel);
  }

  /**
   * The page's script posts `ready` as soon as it runs, and it runs as soon as the page is parsed: it is
   * inline (see `html`). Should it still not say `ready` within READY_TIMEOUT_MS while visible, the page is
   * loaded again, twice at most, and the output says so (the e2e tests fail on that line: it must not be
   * what makes the panel work). A hidden panel's page may not load until it is shown: it is not counted.
   */
  private watchReady(panel: vscode.WebviewPanel): void {
    clearTimeout(this.readyTimer);
    this.readyTimer = setTimeout(() => {
      if (this.panel !== panel || this.ready) return;
      if (!panel.visible) return this.watchReady(panel);
      if (this.reloads >= MAX_RELOADS) {
        this.output.appendLine(
          `The Fairness Curves page did not start after ${MAX_RELOADS + 1} tries: close the panel and open it again ("Fair Prune: Show Fairness Curves").`,
        );
        return;
      }
      this.reloads++;
      this.output.appendLine(
        `The Fairness Curves page had not started after ${READY_TIMEOUT_MS / 1000} s: loading it again.`,
      );
      panel.webview.html = this.html(panel.webview);
      this.watchReady(panel);
    }, READY_TIMEOUT_MS);
  }

  /** The page, with its script and stylesheet inline and nonce'd (see src/ui/webview-assets.ts for why inline). */
  private html(webview: vscode.Webview): string {
    const nonce = newNonce();
    const { script, style } = pageAssets(this.extensionUri.fsPath, 'curves');
    const csp = webviewCsp(nonce, webview.cspSource, { images: true });
    const body = '<main id="app" aria-busy="true"><p class="empty">Loading the fairness curves…</p></main>';
    return webviewPage({ title: 'Fairness Curves', nonce, csp, style, body, script });
  }

  private post(m: HostToCurves): void {
    if (this.panel && this.ready) void this.panel.webview.postMessage(m);
  }

  private sendSession(): void {
    if (!this.panel || !this.ready) return;
    const dir = this.state.sessionDir;
    const view = sessionViewOf(dir ?? undefined);
    if (!view) {
      this.post({
        type: 'empty',
        message: dir
          ? `No results yet in ${dir}: the session is starting, or its folder was moved or deleted.`
          : 'No pruning session in this workspace yet. Run "Fair Prune: Prune with Fairness Check…" on a model.',
      });
      this.panel.title = 'Fairness Curves';
      return;
    }
    const { flops, note } = this.flops(view);
    this.panel.title = `Fairness Curves · ${path.basename(path.dirname(view.results.model.path))}`;
    this.post({ type: 'session', view, flops, flopsNote: note });
  }

  /** FLOPs reduction of every point: the dense topology's multiply-adds per kernel weight × each saved kernel's zeros. */
  private flops(view: SessionView): { flops: Record<string, number> | null; note: string } {
    const resultsFile = path.join(view.sessionDir, 'results.json');
    const mtime = fs.statSync(resultsFile, { throwIfNoEntry: false })?.mtimeMs ?? 0;
    const cached = this.flopsCache.get(view.sessionDir);
    if (cached && cached.mtime === mtime) return cached;
    let result: { flops: Record<string, number> | null; note: string };
    try {
      result = computeFlops(view);
    } catch (e) {
      result = { flops: null, note: `FLOPs could not be estimated: ${(e as Error).message}` };
    }
    this.flopsCache.set(view.sessionDir, { mtime, ...result });
    return result;
  }

  private async onMessage(m: CurvesToHost): Promise<void> {
    switch (m.type) {
      case 'ready': {
        this.ready = true;
        if (m.state) {
          const restored = sanitizeState(m.state);
          // the host's choice of session (a command's argument, a new run) wins over the webview's memory
          this.state = {
            ...restored,
            sessionDir: this.state.sessionDir ?? restored.sessionDir,
            selected: this.state.sessionDir && this.state.sessionDir !== restored.sessionDir ? null : restored.selected,
          };
        }
        this.sendSession();
        return;
      }
      case 'state':
        this.state = sanitizeState(m.state);
        return;
      case 'commit':
        await commitCommand(m.sessionDir, m.pointId, this.output);
        return;
      case 'exemplars':
        this.post(this.exemplars(m.sessionDir, m.pointId));
        return;
      case 'exportPng': {
        const match = /^data:image\/png;base64,(.+)$/.exec(m.dataUrl);
        if (!match) throw new Error('the chart did not render as PNG');
        await this.save(m.fileName, { 'PNG image': ['png'] }, Buffer.from(match[1], 'base64'));
        return;
      }
      case 'exportCsv':
        await this.save(m.fileName, { CSV: ['csv'] }, m.text);
        return;
    }
  }

  private async save(fileName: string, filters: Record<string, string[]>, data: string | Uint8Array): Promise<void> {
    const base = this.state.sessionDir ?? vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const target = await vscode.window.showSaveDialog({
      defaultUri: base ? vscode.Uri.file(path.join(base, path.basename(fileName))) : undefined,
      filters,
      title: `Fair Prune: save ${path.basename(fileName)}`,
    });
    if (!target) return;
    if (target.scheme === 'file') writeFileAtomic(target.fsPath, data);
    else await vscode.workspace.fs.writeFile(target, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    this.output.appendLine(`saved ${target.fsPath}`);
    void vscode.window.showInformationMessage(`Fair Prune: saved ${vscode.workspace.asRelativePath(target)}.`);
  }

  /** The exemplars of a point with their images (image data) read from the CSV's image column. */
  private exemplars(sessionDir: string, pointId: string): HostToCurves {
    const session = readSession(sessionDir);
    const point = session?.results.points.find((p) => p.id === pointId);
    if (!session || !point)
      return {
        type: 'exemplars',
        sessionDir,
        pointId,
        images: [],
        note: `Session ${sessionDir} has no point ${pointId}.`,
      };
    const data = session.results.data;
    const images: ExemplarImage[] = [];
    let note = '';
    let column = -1;
    let rows: string[][] = [];
    // The data file and its images are named by results.json and the CSV: read only inside the
    // session's workspace folder, sizes checked first.
    const root = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(sessionDir))?.uri.fsPath;
    const inWorkspace = (file: string) =>
      root !== undefined && staysInside(root, path.relative(root, path.resolve(file)));
    if (data.imageColumn && !inWorkspace(data.path))
      note = `${data.path} lies outside the workspace folder: images are not shown.`;
    else if (data.imageColumn) {
      try {
        const table = this.csv(data.path);
        column = table.columns.indexOf(data.imageColumn);
        rows = table.rows;
        if (column < 0) note = `${data.path} has no column "${data.imageColumn}" any more: images cannot be shown.`;
      } catch (e) {
        note = `${data.path} cannot be read (${(e as Error).message}): images cannot be shown.`;
      }
    } else note = 'Tabular data: the exemplars are listed by CSV row.';
    for (const g of point.comparison.exemplars.byGroup) {
      for (const s of g.samples.slice(0, MAX_IMAGES_PER_GROUP)) {
        const img: ExemplarImage = {
          group: g.group,
          row: s.row,
          label: s.label,
          dense: s.dense,
          pruned: s.pruned,
          src: null,
        };
        if (column >= 0) {
          const value = rows[s.row - 1]?.[column];
          if (value === undefined) img.problem = `row ${s.row} is not in ${path.basename(data.path)} any more`;
          else {
            const file = path.resolve(path.dirname(path.resolve(data.path)), value);
            const type = IMAGE_TYPES[path.extname(file).toLowerCase()];
            const stat = fs.statSync(file, { throwIfNoEntry: false });
            if (!type) img.problem = `${value} is not a PNG, JPEG, WebP or GIF file`;
            else if (!inWorkspace(file)) img.problem = `${value} lies outside the workspace folder`;
            else if (!stat?.isFile()) img.problem = `${value} does not exist`;
            else if (stat.size > MAX_IMAGE_BYTES) img.problem = `${value} is larger than 2 MiB`;
            else img.src = `data:${type};base64,${fs.readFileSync(file).toString('base64')}`;
          }
        }
        images.push(img);
      }
    }
    return { type: 'exemplars', sessionDir, pointId, images, note };
  }

  private csv(file: string): { rows: string[][]; columns: string[] } {
    const stat = fs.statSync(file);
    if (!stat.isFile()) throw new Error('it is not a regular file');
    if (stat.size > MAX_CSV_BYTES)
      throw new Error(
        `it is ${stat.size.toLocaleString('en')} bytes, more than the ${MAX_CSV_BYTES.toLocaleString('en')} read to show images`,
      );
    const mtime = stat.mtimeMs;
    if (this.csvCache?.file === file && this.csvCache.mtime === mtime) return this.csvCache;
    const { table } = readCsvFile(file);
    this.csvCache = { file, mtime, rows: table.rows, columns: table.columns };
    return this.csvCache;
  }

  private fail(e: Error): void {
    this.output.appendLine(`curves panel: ${e.stack ?? e.message}`);
    void vscode.window.showErrorMessage(`Fair Prune: ${e.message}`);
  }

  dispose(): void {
    if (this.pending) clearTimeout(this.pending);
    clearTimeout(this.readyTimer);
    this.panel?.dispose();
    this.panelDisposables.splice(0).forEach((d) => d.dispose());
    this.disposables.splice(0).forEach((d) => d.dispose());
  }
}

/**
 * Zeros of every float32 weight in a saved tfjs-layers model folder, by weight name. The folder is named
 * by a results.json (inside its session folder); model.json and the weight files are read as the
 * loader reads them: sizes checked before reading, weight paths inside the folder.
 */
export function kernelStats(modelDir: string): Record<string, { size: number; zeros: number }> {
  const { manifest, groups } = readSavedWeights(path.join(modelDir, 'model.json'), MAX_POINT_WEIGHT_BYTES);
  // each group's bytes, already read and checked, stand for its files
  return weightZeroCounts(
    manifest.map((g, i) => ({ ...g, paths: [String(i)] })) as WeightsManifest,
    (i) => groups[Number(i)],
  );
}

function computeFlops(view: SessionView): { flops: Record<string, number> | null; note: string } {
  const first = view.results.points[0];
  if (!first) return { flops: null, note: 'No point yet.' };
  const topology = readModelJson(path.join(view.sessionDir, first.modelDir, 'model.json')).modelTopology;
  const profile = macProfile(topology);
  if ('problem' in profile) return { flops: null, note: `FLOPs reduction is not available: ${profile.problem}.` };
  const flops: Record<string, number> = {};
  for (const p of view.results.points) {
    const f = flopsReduction(profile, kernelStats(path.join(view.sessionDir, p.modelDir)));
    if (f !== undefined) flops[p.id] = f;
  }
  return {
    flops,
    note: 'FLOPs reduction: multiply-adds of the Dense and Conv kernels removed by zero weights, per sample (an estimate of what sparse kernels could skip; tfjs itself runs dense kernels).',
  };
}
