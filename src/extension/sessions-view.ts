/**
 * The "Sessions" tree in the Fair Prune side bar: a running session at the top (what it is doing, and
 * its Cancel), then models → their sessions → each sparsity point, with the fairness gate's verdict as
 * the point's icon. Reads results.json files; re-reads when they change on disk.
 */
import * as path from 'path';
import * as vscode from 'vscode';
import type { PrunedPoint } from '../protocol/results';
import { listSessions, refusedSessions } from '../core/session-store';
import type { StoredSession } from '../core/session-store';
import { checkPoint, recommendPoint } from '../shared/gate';
import { pct, signedPts } from '../core/report';
import type { RunningSession } from './prune';
import { allOutDirs, policy } from './config';

export type Node =
  | { kind: 'running'; modelPath: string }
  | { kind: 'model'; modelPath: string; sessions: StoredSession[] }
  | { kind: 'session'; session: StoredSession }
  | { kind: 'point'; session: StoredSession; point: PrunedPoint }
  | { kind: 'refused'; dir: string; problem: string };

export class SessionsView implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly watcher: vscode.FileSystemWatcher;
  private pending?: NodeJS.Timeout;
  /** One node per running session, kept so that a progress update redraws that item alone. */
  private readonly runningNodes = new Map<string, Node & { kind: 'running' }>();

  /** `running` lists the sessions running now (SessionRunner.runningViews). */
  constructor(private readonly running: () => RunningSession[] = () => []) {
    this.watcher = vscode.workspace.createFileSystemWatcher('**/sessions/*/results.json');
    const refresh = () => this.refreshSoon();
    this.watcher.onDidChange(refresh);
    this.watcher.onDidCreate(refresh);
    this.watcher.onDidDelete(refresh);
  }

  refreshSoon(): void {
    if (this.pending) clearTimeout(this.pending);
    this.pending = setTimeout(() => this.changed.fire(undefined), 200);
  }

  refresh(): void {
    this.changed.fire(undefined);
  }

  /** A running session's progress changed (its model path), or one started or ended (undefined). */
  runningChanged(modelPath: string | undefined): void {
    const node = modelPath === undefined ? undefined : this.runningNodes.get(modelPath);
    if (node) this.changed.fire(node);
    else this.refresh();
  }

  private runningNodesNow(): Node[] {
    const now = new Set(this.running().map((r) => r.modelPath));
    for (const m of [...this.runningNodes.keys()]) if (!now.has(m)) this.runningNodes.delete(m);
    return [...now].map((modelPath) => {
      let node = this.runningNodes.get(modelPath);
      if (!node) this.runningNodes.set(modelPath, (node = { kind: 'running', modelPath }));
      return node;
    });
  }

  sessions(): StoredSession[] {
    return allOutDirs().flatMap((d) => listSessions(d));
  }

  getChildren(node?: Node): Node[] {
    if (!node) {
      const byModel = new Map<string, StoredSession[]>();
      for (const s of this.sessions()) {
        const list = byModel.get(s.results.model.path) ?? [];
        list.push(s);
        byModel.set(s.results.model.path, list);
      }
      const models: Node[] = [...byModel.entries()].map(([modelPath, sessions]) => ({
        kind: 'model',
        modelPath,
        sessions,
      }));
      // A results.json that fails its schema or path checks is shown as an error, never acted on.
      const refused: Node[] = allOutDirs()
        .flatMap((d) => refusedSessions(d))
        .map((r) => ({ kind: 'refused', ...r }));
      return [...this.runningNodesNow(), ...models, ...refused];
    }
    if (node.kind === 'model') return node.sessions.map((session) => ({ kind: 'session', session }));
    if (node.kind === 'session')
      return node.session.results.points.map((point) => ({ kind: 'point', session: node.session, point }));
    return [];
  }

  getTreeItem(node: Node): vscode.TreeItem {
    if (node.kind === 'running') {
      const now = this.running().find((r) => r.modelPath === node.modelPath);
      const view = now?.view;
      const item = new vscode.TreeItem(view?.label ?? relative(node.modelPath), vscode.TreeItemCollapsibleState.None);
      item.id = `running:${node.modelPath}`;
      item.iconPath = new vscode.ThemeIcon('sync~spin');
      item.description = view?.description ?? 'ended';
      item.tooltip = view?.tooltip;
      item.contextValue = view?.contextValue;
      item.command = {
        command: 'fairPrune.showCurves',
        title: 'Show Fairness Curves',
        arguments: now?.sessionDir ? [now.sessionDir] : [],
      };
      return item;
    }
    if (node.kind === 'refused') {
      const item = new vscode.TreeItem(
        `${path.basename(node.dir)} · results.json refused`,
        vscode.TreeItemCollapsibleState.None,
      );
      item.iconPath = new vscode.ThemeIcon('error', new vscode.ThemeColor('errorForeground'));
      item.description = node.problem.replace(/^.*results\.json: /, '');
      item.tooltip = `${node.problem}\nFair Prune does not act on this file. Run the session again, or delete its folder.`;
      item.contextValue = 'fairPrune.refusedSession';
      return item;
    }
    if (node.kind === 'model') {
      const item = new vscode.TreeItem(relative(node.modelPath), vscode.TreeItemCollapsibleState.Expanded);
      item.iconPath = new vscode.ThemeIcon('symbol-structure');
      item.resourceUri = vscode.Uri.file(node.modelPath);
      item.description = `${node.sessions.length} session${node.sessions.length === 1 ? '' : 's'}`;
      item.contextValue = 'fairPrune.model';
      return item;
    }
    if (node.kind === 'session') {
      const r = node.session.results;
      const item = new vscode.TreeItem(
        `${r.createdAt.slice(0, 16).replace('T', ' ')} · ${r.data.groupColumns.join(' × ')}`,
        vscode.TreeItemCollapsibleState.Collapsed,
      );
      item.id = node.session.dir;
      item.description = `${r.status === 'completed' ? '' : `${r.status} · `}${r.points.length} point${r.points.length === 1 ? '' : 's'} · ${path.basename(r.data.path)}`;
      item.iconPath = new vscode.ThemeIcon(
        r.status === 'running'
          ? 'sync~spin'
          : r.status === 'failed'
            ? 'error'
            : r.status === 'cancelled'
              ? 'circle-slash'
              : 'history',
      );
      item.tooltip = `${r.sessionId}\n${r.status}${r.error ? `: ${r.error}` : ''}\nbackend ${r.engine.backend.name}`;
      item.contextValue = 'fairPrune.session';
      item.command = { command: 'fairPrune.showSession', title: 'Show Fairness Report', arguments: [node.session.dir] };
      return item;
    }
    const p = node.point;
    const verdict = checkPoint(p, policy());
    const recommended = recommendPoint(node.session.results, policy()).pointId === p.id;
    const item = new vscode.TreeItem(`${pct(p.targetSparsity, 0)} · ${p.loss}`, vscode.TreeItemCollapsibleState.None);
    item.id = `${node.session.dir}#${p.id}`;
    item.description = `${recommended ? '★ recommended · ' : ''}worst ${pct(p.evaluation.worstGroup.accuracy.value)} (${signedPts(p.comparison.worstGroupChange.value)}) · gap ${pct(p.evaluation.largestGap.value)}`;
    item.iconPath = verdict.passed
      ? new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed'))
      : new vscode.ThemeIcon('error', new vscode.ThemeColor('testing.iconFailed'));
    item.tooltip = new vscode.MarkdownString(
      `${recommended ? '★ **Recommended**: the sparsest point that passes the gate.\n\n' : ''}**${verdict.passed ? 'Passes' : 'Fails'} the fairness gate**\n\n${verdict.rules.map((r) => `- ${r.passed ? '✓' : '✗'} ${r.message}`).join('\n')}`,
    );
    item.contextValue = verdict.passed ? 'fairPrune.point.pass' : 'fairPrune.point.fail';
    item.command = {
      command: 'fairPrune.showSession',
      title: 'Show Fairness Report',
      arguments: [node.session.dir, p.id],
    };
    return item;
  }

  dispose(): void {
    this.watcher.dispose();
    this.changed.dispose();
  }
}

function relative(p: string): string {
  const rel = vscode.workspace.asRelativePath(p, false);
  return rel === p ? path.basename(path.dirname(p)) + '/' + path.basename(p) : rel;
}
