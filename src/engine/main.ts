/**
 * The engine process. The VS Code host forks this file (`child_process.fork`), sends one
 * `{type: 'run'}` command and may send `{type: 'cancel'}`; the engine streams every event back
 * and exits when the session ends. Training never runs on the editor's thread, a crash or an
 * out-of-memory ends only this process, and killing it always stops the work.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { EngineCommand, EngineEvent, EngineMessage, RunRequest } from '../protocol/engine';
import { runSession } from '../core/session';
import { CancelledError, UserError } from '../core/errors';
import { cleanStaleSessionTemps } from '../core/atomic';
import { prepareDemo } from '../core/demo/prepare';
import { EDITOR_DEMO } from '../core/demo/plan';

function send(message: EngineMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, undefined, () => resolve());
  });
}

if (!process.send) {
  console.error(
    'the Fair Prune engine runs as a child process of the editor; use the `fairprune` command line instead.',
  );
  process.exit(2);
}

// Training yields the CPU to the editor: the engine (and the sweep's worker threads, which inherit
// it) runs at the lowest priority, so typing and the extension host stay responsive while every core
// trains. Where nothing else wants the CPU, the engine runs as fast as before. On Linux with
// autogroup scheduling, priorities count only inside a session's group: the host starts the engine in
// a session of its own (`detached`), and its group is given the lowest weight too.
try {
  os.setPriority(os.constants.priority.PRIORITY_LOW);
} catch {
  // not permitted here (some containers): run at normal priority
}
lowerOwnSchedulingGroup();

/**
 * Gives this process's autogroup (Linux) the lowest weight, when the group is this process's alone (it
 * leads its own session). Measured in the end-to-end suite on 2 cores before this: the extension host
 * waited up to 170 ms for a core while the engine (nice 10, in the host's own group) trained.
 */
function lowerOwnSchedulingGroup(): void {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    const session = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
    if (session !== process.pid) return; // a group shared with the parent: leave it alone
    fs.writeFileSync('/proc/self/autogroup', '19');
  } catch {
    // not Linux, no autogroup, or not permitted: the process priority above still applies
  }
}

const controller = new AbortController();
let started = false;

/** The request to run: as sent, or for "Try the Demo" once the demo's data set and dense model are in place. */
async function prepare(
  command: Extract<EngineCommand, { type: 'run' }>,
  emit: (e: EngineEvent) => void,
): Promise<RunRequest> {
  const { request, demo } = command;
  if (!demo) return request;
  const log = (message: string) => emit({ type: 'log', level: 'info', message });
  const dataDir = path.dirname(request.data.csvPath);
  const modelDir = path.dirname(request.modelPath);
  const made = await prepareDemo(
    { dataDir, modelDir, plan: EDITOR_DEMO, backend: request.backend },
    { log, signal: controller.signal },
  );
  return {
    ...request,
    modelPath: made.modelPath,
    data: { ...request.data, csvPath: made.csvPath, label: made.label, groups: made.groups },
  };
}

process.on('message', (raw: EngineCommand) => {
  if (raw.type === 'cancel') {
    controller.abort();
    return;
  }
  if (raw.type === 'run' && !started) {
    started = true;
    cleanStaleSessionTemps(raw.request.outDir);
    const emit = (event: EngineEvent) => void send({ type: 'event', event });
    prepare(raw, emit)
      .then((request) => runSession(request, { signal: controller.signal, emit }))
      .then(() => 0)
      .catch(async (e) => {
        if (e instanceof CancelledError) return 0;
        await send({ type: 'fatal', message: e instanceof UserError ? e.message : String((e as Error).stack ?? e) });
        return 1;
      })
      .then((code) => process.exit(code));
  }
});
// SIGTERM (the host or the system ending the engine) cancels like the Cancel button: the session is
// marked cancelled and keeps its finished points.
process.once('SIGTERM', () => controller.abort());
// The host going away ends the engine too.
process.on('disconnect', () => process.exit(0));
