/**
 * The engine process. The VS Code host forks this file (`child_process.fork`), sends one
 * `{type: 'run'}` command and may send `{type: 'cancel'}`; the engine streams every event back
 * and exits when the session ends. Training never runs on the editor's thread, a crash or an
 * out-of-memory ends only this process, and killing it always stops the work.
 */
import * as os from 'os';
import type { EngineCommand, EngineMessage } from '../protocol/engine';
import { runSession } from '../core/session';
import { CancelledError, UserError } from '../core/errors';

function send(message: EngineMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(message, undefined, undefined, () => resolve());
  });
}

if (!process.send) {
  console.error('the Fair Prune engine runs as a child process of the editor; use the `fairprune` command line instead.');
  process.exit(2);
}

// Training yields the CPU to the editor: the engine (and the sweep's worker threads, which inherit
// it) runs below normal priority, so typing and the extension host stay responsive while every core
// trains. Where nothing else wants the CPU, the engine runs as fast as before.
try {
  os.setPriority(os.constants.priority.PRIORITY_BELOW_NORMAL);
} catch {
  // not permitted here (some containers): run at normal priority
}

const controller = new AbortController();
let started = false;

process.on('message', (raw: EngineCommand) => {
  if (raw.type === 'cancel') {
    controller.abort();
    return;
  }
  if (raw.type === 'run' && !started) {
    started = true;
    runSession(raw.request, { signal: controller.signal, emit: (event) => void send({ type: 'event', event }) })
      .then(() => 0)
      .catch(async (e) => {
        if (e instanceof CancelledError) return 0;
        await send({ type: 'fatal', message: e instanceof UserError ? e.message : String((e as Error).stack ?? e) });
        return 1;
      })
      .then((code) => process.exit(code));
  }
});
// The host going away ends the engine too.
process.on('disconnect', () => process.exit(0));
