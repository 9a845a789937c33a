/**
 * What the editor shows of one running session: the Sessions view's "running" item (its description says
 * what the session is doing, with the same words as the curves panel), the view's progress bar and the
 * status bar entry. Pure: fed the engine's events and a clock, it says what to draw and when, so the
 * throttling and the words are tested without an editor.
 */
import type { EngineEvent } from '../protocol/engine';
import { describeProgress } from './progress-text';

/** Fine-tuning reports every step (hundreds a second on a small model): redraw at most this often. */
export const PROGRESS_UI_MS = 250;

export interface RunningItemView {
  label: string;
  description: string;
  tooltip: string;
  /** `fairPrune.running` offers Cancel; `fairPrune.running.cancelling` no longer does. */
  contextValue: 'fairPrune.running' | 'fairPrune.running.cancelling';
  statusText: string;
  statusTooltip: string;
}

export class SessionProgress {
  private text = 'starting the engine';
  private short = '';
  private fraction = 0;
  private lastDraw = Number.NEGATIVE_INFINITY;
  private started = false;
  private cancelling = false;

  /** `name` is the model as the user knows it, e.g. "model/model.json". */
  constructor(
    readonly name: string,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Takes one engine event. Returns undefined when nothing shown changes (or a fine-tuning step came too
   * soon after the last redraw); otherwise the share of the session newly done, 0…1, for the progress bar.
   */
  onEvent(e: EngineEvent): { increment: number } | undefined {
    if (e.type === 'started') {
      this.started = true;
      return undefined;
    }
    // Before the session starts (Try the Demo writing its data set and training its dense model), the
    // engine's top-level log lines are the steps; indented lines are details.
    if (e.type === 'log' && !this.started && !e.message.startsWith(' ')) {
      this.text = e.message;
      this.lastDraw = this.now();
      return { increment: 0 };
    }
    if (e.type !== 'progress') return undefined;
    if (e.phase === 'finetune' && this.now() - this.lastDraw < PROGRESS_UI_MS) return undefined;
    this.lastDraw = this.now();
    const p = describeProgress(e);
    this.text = p.text;
    this.short = p.short;
    const increment = Math.max(0, p.fraction - this.fraction);
    this.fraction = Math.max(this.fraction, p.fraction);
    return { increment };
  }

  /** The user asked to cancel: the item says so and offers Cancel no more. */
  cancel(): void {
    this.cancelling = true;
  }

  /** Share of the session done, 0…1, as far as it has been drawn. */
  get done(): number {
    return this.fraction;
  }

  get doing(): string {
    return this.cancelling ? 'cancelling: finished points are kept' : this.text;
  }

  view(): RunningItemView {
    const doing = this.doing;
    return {
      label: `Running: ${this.name}`,
      description: doing,
      tooltip: `Fair Prune is pruning ${this.name}: ${doing}.\n${
        this.cancelling
          ? 'The engine stops at its next training step.'
          : 'Cancel stops it; the points that have finished are kept.'
      }`,
      contextValue: this.cancelling ? 'fairPrune.running.cancelling' : 'fairPrune.running',
      statusText: `$(sync~spin) Fair Prune${this.short ? ` ${this.short}` : ''}`,
      statusTooltip: `Fair Prune: ${this.name} — ${doing}\nClick to show it in the Sessions view, where it can be cancelled.`,
    };
  }
}
