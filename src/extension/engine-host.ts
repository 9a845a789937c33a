/**
 * Runs pruning sessions in the engine's own child process — never on the extension host's thread —
 * and owns their lifetime: one session per model, cancel within 2 seconds (a polite request, then a
 * kill), and a clear outcome when the engine dies, with the session marked failed and its finished
 * points kept.
 */
import { fork } from 'child_process';
import type { ChildProcess } from 'child_process';
import * as path from 'path';
import type { DemoSetup, EngineCommand, EngineEvent, EngineMessage, RunRequest } from '../protocol/engine';
import type { SessionStatus } from '../protocol/results';
import { markSessionEnded } from '../core/session-store';

export interface EngineOutcome {
  status: Exclude<SessionStatus, 'running'>;
  sessionDir?: string;
  resultsPath?: string;
  error?: string;
}

export interface EngineOptions {
  /** dist/engine.js of this extension. */
  enginePath: string;
  /** A module preloaded with --require (the native-backend resolver), if any. */
  preload?: string;
  env?: Record<string, string>;
  /** "Try the Demo": the engine first writes the demo's data set and model where the request says. */
  demo?: DemoSetup;
  onEvent: (event: EngineEvent) => void;
  onStderr?: (text: string) => void;
}

const CANCEL_GRACE_MS = 1500;

export class EngineRun {
  readonly done: Promise<EngineOutcome>;
  sessionDir?: string;
  private readonly child: ChildProcess;
  private finished?: Extract<EngineEvent, { type: 'finished' }>;
  private fatal?: string;
  private cancelRequested = false;
  private killTimer?: NodeJS.Timeout;

  constructor(
    readonly request: RunRequest,
    private readonly options: EngineOptions,
  ) {
    this.child = fork(options.enginePath, [], {
      // The demo's model folder does not exist yet when the engine starts.
      cwd: options.demo?.folder ?? path.dirname(request.modelPath),
      // A session of its own, so that on Linux it gets its own scheduling group, which the engine gives
      // the lowest weight (src/engine/main.ts). Not on Windows, where it would open a console window.
      detached: process.platform !== 'win32',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      execArgv: options.preload ? ['--require', options.preload] : [],
      env: { ...process.env, ...options.env, ELECTRON_RUN_AS_NODE: '1' },
    });
    this.child.stdout?.on('data', (d: Buffer) => options.onStderr?.(d.toString()));
    this.child.stderr?.on('data', (d: Buffer) => options.onStderr?.(d.toString()));
    this.child.on('message', (m: EngineMessage) => this.onMessage(m));
    this.done = new Promise((resolve) => {
      this.child.on('error', (e) => {
        this.fatal ??= `the engine process could not run: ${e.message}`;
      });
      this.child.on('exit', (code, signal) => {
        if (this.killTimer) clearTimeout(this.killTimer);
        resolve(this.outcome(code, signal));
      });
    });
    this.send({ type: 'run', request, demo: options.demo });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Ask the engine to stop between two steps; kill it if it has not within the grace time. */
  cancel(): void {
    if (this.cancelRequested) return;
    this.cancelRequested = true;
    this.send({ type: 'cancel' });
    this.killTimer = setTimeout(() => this.child.kill('SIGKILL'), CANCEL_GRACE_MS);
  }

  /** Stop now (deactivation: the window closes or reloads). The session is marked ended here and
   *  now, synchronously, because the extension host may be gone before the exit event arrives. */
  kill(): void {
    this.cancelRequested = true;
    this.child.kill('SIGKILL');
    if (this.sessionDir && !this.finished) {
      markSessionEnded(
        this.sessionDir,
        'cancelled',
        'stopped because the VS Code window closed or reloaded while it ran; its finished points are kept',
      );
    }
  }

  private send(command: EngineCommand): void {
    if (this.child.connected) this.child.send(command);
  }

  private onMessage(m: EngineMessage): void {
    if (m.type === 'fatal') {
      this.fatal = m.message;
      return;
    }
    const e = m.event;
    if (e.type === 'started') this.sessionDir = e.sessionDir;
    if (e.type === 'finished') this.finished = e;
    this.options.onEvent(e);
  }

  private outcome(code: number | null, signal: NodeJS.Signals | null): EngineOutcome {
    if (this.finished) {
      return {
        status: this.finished.status === 'running' ? 'failed' : this.finished.status,
        sessionDir: this.sessionDir,
        resultsPath: this.finished.resultsPath,
        error: this.finished.error,
      };
    }
    // The engine ended without finishing its session: cancelled by us, or it died.
    const status = this.cancelRequested ? 'cancelled' : 'failed';
    const how = signal ? `was killed (${signal})` : `exited with code ${code}`;
    const error =
      this.fatal ??
      (this.cancelRequested
        ? undefined
        : `the engine process ${how}${signal === 'SIGKILL' || code === 134 ? ' — out of memory, or killed from outside' : ''}`);
    if (this.sessionDir) markSessionEnded(this.sessionDir, status, error);
    return {
      status,
      sessionDir: this.sessionDir,
      error,
      resultsPath: this.sessionDir ? path.join(this.sessionDir, 'results.json') : undefined,
    };
  }
}
