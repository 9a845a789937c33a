/**
 * One line that says where a running session is, and how much of it is done: the same words in the
 * progress notification, the status bar's tooltip and the curves panel.
 */
import type { EngineEvent } from '../protocol/engine';
import { pct } from '../core/report';

type Progress = Extract<EngineEvent, { type: 'progress' }>;

export interface ProgressText {
  text: string;
  /** Share of the session done, 0…1. */
  fraction: number;
  /** Short form for the status bar, e.g. "3/8", or "3+4/8" while points 3 and 4 run at once. */
  short: string;
}

export function describeProgress(e: Progress): ProgressText {
  const running = e.running && e.running.length > 1 ? e.running : null;
  const legacy = e.points ? (e.point - 1 + (e.step && e.steps ? e.step / e.steps : 0)) / e.points : 0;
  const fraction = Math.max(0, Math.min(1, e.fraction ?? legacy));
  const left = e.secondsLeft !== undefined ? ` · ~${Math.ceil(e.secondsLeft)} s left` : '';
  const short = `${running ? running.join('+') : e.point}/${e.points}`;
  let text: string;
  if (e.phase === 'dense') text = 'measuring the dense model';
  else if (e.phase === 'loading') text = 'loading the model and data';
  else if (running)
    text = `points ${running.join(', ')} of ${e.points} (${running.length} at a time): ${pct(fraction, 0)} of the sweep done${left}`;
  else if (e.phase === 'finetune')
    text = `point ${e.point}/${e.points}: ${pct(e.targetSparsity ?? 0, 0)} ${e.loss}, epoch ${e.epoch}/${e.epochs}${left}`;
  else text = `point ${e.point}/${e.points}: ${e.phase}`;
  return { text, fraction, short };
}
