/**
 * Where the extension host's event loop stalled during a session, and what it was doing then.
 *
 * `monitorEventLoopDelay` gives the distribution (p99, max) but not *when* or *why*. This watch keeps
 * a timer every `intervalMs`; a tick that comes more than `thresholdMs` late is a stall, recorded with
 * its time from the start and the last thing the host marked before it (an engine event it handled, the
 * engine starting…). The host also times its own handlers (`timed`), so a stall can be told apart as
 * ours or somebody else's (VS Code itself, another extension in the same host). Free of `vscode`, so it
 * is tested on its own.
 */
import * as fs from 'fs';
import { PerformanceObserver } from 'perf_hooks';

export interface Stall {
  /** Milliseconds from `start()` to the stall's beginning. */
  atMs: number;
  /** How much later than due the timer ran (the stall's length, less the timer's own interval). */
  ms: number;
  /** The last mark before the stall began. */
  after: string;
  /** Time the event-loop thread ran during the stall (Linux): near `ms` when it was busy (our code,
   *  VS Code's, another extension's, garbage collection). */
  cpuMs?: number;
  /** Time it was ready to run but waited for a core (Linux): the machine's other processes had them.
   *  What is neither running nor waiting, it was blocked (a synchronous call, a lock), or the virtual
   *  machine itself was not running. */
  waitMs?: number;
  /** Time of the stall that the thread neither ran nor waited for a core (Linux): a synchronous call or
   *  a lock held it, or the (virtual) machine itself paused. */
  blockedMs?: number;
  /** Garbage-collection pauses of this thread that ended during the stall. */
  gcMs?: number;
}

export interface HandlerTime {
  what: string;
  ms: number;
  atMs: number;
}

/** Time the calling thread spent on a CPU and waiting for one (runnable, not running), in ms. */
export interface ThreadTimes {
  runMs: number;
  waitMs: number;
}

/** Whether /proc/thread-self/schedstat can be read here (decided on the first try: read every tick otherwise). */
let schedstat: boolean | undefined;

/** The calling thread's times from /proc/thread-self/schedstat (Linux, nanoseconds); undefined elsewhere. */
export function threadTimes(): ThreadTimes | undefined {
  if (schedstat === false) return undefined;
  try {
    const [run, wait] = fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').map(Number);
    schedstat = Number.isFinite(run) && Number.isFinite(wait);
    return schedstat ? { runMs: run / 1e6, waitMs: wait / 1e6 } : undefined;
  } catch {
    schedstat = false;
    return undefined;
  }
}

export class StallWatch {
  private timer?: NodeJS.Timeout;
  private lastTimes?: ThreadTimes;
  private gcObserver?: PerformanceObserver;
  /** GC pauses as [end time, duration], oldest first; trimmed to the last few seconds. */
  private readonly gcPauses: [number, number][] = [];
  private startedAt = 0;
  private lastTick = 0;
  private lastMark = 'start';
  private readonly stalls: Stall[] = [];
  private readonly handlers: HandlerTime[] = [];

  constructor(
    readonly thresholdMs = 30,
    readonly intervalMs = 10,
    private readonly now: () => number = () => performance.now(),
    /** How many of the longest stalls and slowest handlers are kept. */
    readonly keep = 5,
    private readonly times: () => ThreadTimes | undefined = threadTimes,
  ) {}

  start(): void {
    this.startedAt = this.lastTick = this.now();
    this.lastTimes = this.times();
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref?.();
    try {
      this.gcObserver = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) this.gcPause(e.startTime + e.duration, e.duration);
      });
      this.gcObserver.observe({ entryTypes: ['gc'] });
    } catch {
      this.gcObserver = undefined; // no GC entries here: stalls are reported without them
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.gcObserver?.disconnect();
    this.gcObserver = undefined;
    this.tick();
  }

  /** A garbage-collection pause that ended at `endMs` (the clock's time). Called by the GC observer (and tests). */
  gcPause(endMs: number, ms: number): void {
    this.gcPauses.push([endMs, ms]);
    while (this.gcPauses.length && this.gcPauses[0][0] < endMs - 5000) this.gcPauses.shift();
  }

  /** What the host is about to do (or just did): the label of a stall that follows. */
  mark(what: string): void {
    this.lastMark = what;
  }

  /** Runs `fn`, marks it, and keeps its duration if it is among the slowest. */
  timed<T>(what: string, fn: () => T): T {
    this.mark(what);
    const t0 = this.now();
    try {
      return fn();
    } finally {
      const ms = this.now() - t0;
      keepLargest(this.handlers, { what, ms, atMs: t0 - this.startedAt }, this.keep, (h) => h.ms);
    }
  }

  /** A tick: a late one is a stall. Called by the timer (and by tests with a fake clock). */
  tick(): void {
    const t = this.now();
    const times = this.times();
    const late = t - this.lastTick - this.intervalMs;
    if (late > this.thresholdMs) {
      const stall: Stall = { atMs: this.lastTick + this.intervalMs - this.startedAt, ms: late, after: this.lastMark };
      if (times && this.lastTimes) {
        stall.cpuMs = times.runMs - this.lastTimes.runMs;
        stall.waitMs = times.waitMs - this.lastTimes.waitMs;
        // (the timer's own interval is sleep by design, not part of the stall)
        stall.blockedMs = Math.max(0, late - stall.cpuMs - stall.waitMs);
      }
      if (this.gcObserver || this.gcPauses.length) {
        stall.gcMs = this.gcPauses.filter(([end]) => end > this.lastTick && end <= t).reduce((a, [, ms]) => a + ms, 0);
      }
      keepLargest(this.stalls, stall, this.keep, (s) => s.ms);
    }
    this.lastTick = t;
    this.lastTimes = times;
  }

  /** The longest stalls, longest first. */
  longestStalls(): Stall[] {
    return [...this.stalls];
  }

  /** Our slowest handlers, slowest first. */
  slowestHandlers(): HandlerTime[] {
    return [...this.handlers];
  }

  /** One line for the log: "stalls over 30 ms: 264 ms at 0.2 s (after engine start), …; slowest handlers: …". */
  summary(): string {
    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    const stalls = this.stalls.length
      ? this.stalls.map((x) => `${x.ms.toFixed(0)} ms at ${s(x.atMs)} (after ${x.after}${describeCause(x)})`).join(', ')
      : 'none';
    const handlers = this.handlers.length
      ? this.handlers.map((h) => `${h.what} ${h.ms.toFixed(1)} ms`).join(', ')
      : 'none';
    return `event-loop stalls over ${this.thresholdMs} ms: ${stalls}; Fair Prune's slowest handlers: ${handlers}`;
  }
}

/** "; ran 40 ms, waited 5 ms for a core, 30 ms in GC" for a stall, or '' when nothing is known. */
function describeCause(x: Stall): string {
  const parts: string[] = [];
  if (x.cpuMs !== undefined) parts.push(`ran ${x.cpuMs.toFixed(0)} ms`);
  if (x.waitMs !== undefined) parts.push(`waited ${x.waitMs.toFixed(0)} ms for a core`);
  if (x.blockedMs !== undefined && x.blockedMs >= 5)
    parts.push(`${x.blockedMs.toFixed(0)} ms neither (blocked, or the machine paused)`);
  if (x.gcMs) parts.push(`${x.gcMs.toFixed(0)} ms in GC`);
  return parts.length ? `; ${parts.join(', ')}` : '';
}

function keepLargest<T>(list: T[], item: T, keep: number, size: (t: T) => number): void {
  list.push(item);
  list.sort((a, b) => size(b) - size(a));
  if (list.length > keep) list.length = keep;
}
