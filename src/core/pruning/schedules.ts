/**
 * When to prune during fine-tuning. Each is a `PruningSchedule`, so it drives unstructured and
 * structured methods alike without touching the training loop. Defaults: src/protocol/defaults.ts.
 *
 *  - one-shot: everything before the first step.
 *  - gradual (Zhu & Gupta 2017): sparsity rises from `initial` to the target with polynomial decay,
 *    s_t = s_f + (s_i − s_f)·(1 − (t − t_b)/(t_e − t_b))^power, recomputed every `frequency` steps
 *    between `begin` and `end` (fractions of the fine-tuning steps), held at the target after `end`.
 *  - iterative: `rounds` equal increments of the target, one every `every` steps from step 0, the
 *    model fine-tuned in between (round j of R prunes to j/R of the target: with a per-layer
 *    target, every round removes the same number of filters from each layer).
 */
import type { ScheduleSpec } from '../../protocol/results';
import { RUN_DEFAULTS as D } from '../../protocol/defaults';
import { UserError } from '../errors';

export interface PruningSchedule {
  readonly name: string;
  /** Target sparsity at optimizer step `step` of `totalSteps` (0 = before training). */
  sparsityAt(step: number, totalSteps: number, finalSparsity: number): number;
  /** Whether masks are recomputed before this step. */
  updatesAt(step: number, totalSteps: number): boolean;
}

/** Prune once before fine-tuning and hold the masks. */
export const oneShot: PruningSchedule = {
  name: 'one-shot',
  sparsityAt: (_step, _total, finalSparsity) => finalSparsity,
  updatesAt: (step) => step === 0,
};

export interface GradualParams {
  /** Fraction of the fine-tuning steps at which pruning starts (0–1). */
  begin: number;
  /** Fraction of the fine-tuning steps at which the target is reached (0–1, > begin). */
  end: number;
  /** Steps between mask updates. */
  frequency: number;
  power: number;
  /** Sparsity at `begin` (default 0). */
  initial?: number;
}

function stepOf(fraction: number, totalSteps: number): number {
  return Math.max(0, Math.min(totalSteps - 1, Math.round(fraction * totalSteps)));
}

export function gradualSchedule(p: GradualParams): PruningSchedule {
  const initial = p.initial ?? 0;
  const bounds = (total: number) => {
    const b = stepOf(p.begin, total);
    return { b, e: Math.max(b, stepOf(p.end, total)) };
  };
  return {
    name: 'gradual',
    sparsityAt(step, totalSteps, finalSparsity) {
      if (totalSteps <= 0) return finalSparsity;
      const { b, e } = bounds(totalSteps);
      if (step >= e) return finalSparsity;
      if (step < b) return initial;
      const frac = (step - b) / (e - b);
      return finalSparsity + (initial - finalSparsity) * Math.pow(1 - frac, p.power);
    },
    updatesAt(step, totalSteps) {
      if (totalSteps <= 0) return step === 0;
      const { b, e } = bounds(totalSteps);
      return step === e || (step >= b && step < e && (step - b) % Math.max(1, Math.round(p.frequency)) === 0);
    },
  };
}

export interface IterativeParams {
  /** Steps of fine-tuning between pruning rounds. */
  every: number;
  /** Number of rounds to reach the target. */
  rounds: number;
}

export function iterativeSchedule(p: IterativeParams): PruningSchedule {
  const every = Math.max(1, Math.round(p.every));
  const rounds = Math.max(1, Math.round(p.rounds));
  return {
    name: 'iterative',
    sparsityAt(step, totalSteps, finalSparsity) {
      if (totalSteps <= 0) return finalSparsity;
      const round = Math.min(rounds, Math.floor(step / every) + 1);
      return round === rounds ? finalSparsity : (finalSparsity * round) / rounds;
    },
    updatesAt(step, totalSteps) {
      if (totalSteps <= 0) return step === 0;
      return step % every === 0 && step / every < rounds;
    },
  };
}

export const SCHEDULE_NAMES = ['one-shot', 'gradual', 'iterative'] as const;

/** Fills a user's schedule choice with its defaults and checks it; throws a UserError naming the option. */
export function normalizeSchedule(spec: Partial<Omit<ScheduleSpec, 'name'>> & { name: string }): ScheduleSpec {
  const bad = (field: string, what: string, fix: string) => new UserError(what, { field, fix });
  switch (spec.name) {
    case 'one-shot':
      return { name: 'one-shot' };
    case 'gradual': {
      const s: ScheduleSpec = {
        name: 'gradual',
        begin: spec.begin ?? D.scheduleBegin,
        end: spec.end ?? D.scheduleEnd,
        frequency: spec.frequency ?? D.scheduleEvery,
        power: spec.power ?? D.schedulePower,
      };
      if (!(s.begin! >= 0 && s.begin! < 1))
        throw bad(
          '--schedule-begin',
          `'${s.begin}' is not a fraction of the fine-tuning steps in [0, 1).`,
          `e.g. --schedule-begin ${D.scheduleBegin}`,
        );
      if (!(s.end! > s.begin! && s.end! <= 1))
        throw bad(
          '--schedule-end',
          `'${s.end}' must be after --schedule-begin (${s.begin}) and at most 1.`,
          `e.g. --schedule-end ${D.scheduleEnd}`,
        );
      if (!(Number.isInteger(s.frequency) && s.frequency! >= 1))
        throw bad(
          '--schedule-every',
          `'${s.frequency}' is not a whole number of steps ≥ 1.`,
          `e.g. --schedule-every ${D.scheduleEvery}`,
        );
      if (!(s.power! > 0))
        throw bad(
          '--schedule-power',
          `'${s.power}' is not a positive exponent.`,
          `e.g. --schedule-power ${D.schedulePower}`,
        );
      return s;
    }
    case 'iterative': {
      const s: ScheduleSpec = {
        name: 'iterative',
        frequency: spec.frequency ?? D.iterativeEvery,
        rounds: spec.rounds ?? D.scheduleRounds,
      };
      if (!(Number.isInteger(s.frequency) && s.frequency! >= 1))
        throw bad(
          '--schedule-every',
          `'${s.frequency}' is not a whole number of steps ≥ 1.`,
          `e.g. --schedule-every ${D.iterativeEvery}`,
        );
      if (!(Number.isInteger(s.rounds) && s.rounds! >= 1))
        throw bad(
          '--schedule-rounds',
          `'${s.rounds}' is not a whole number of rounds ≥ 1.`,
          `e.g. --schedule-rounds ${D.scheduleRounds}`,
        );
      return s;
    }
    default:
      throw bad('--schedule', `unknown schedule '${spec.name}'.`, `use one of ${SCHEDULE_NAMES.join(', ')}.`);
  }
}

/** The schedule a user asked for, checked and with its defaults filled in (a UserError names a bad option). */
export function scheduleByName(spec: Partial<Omit<ScheduleSpec, 'name'>> & { name: string }): PruningSchedule {
  const s = normalizeSchedule(spec);
  switch (s.name) {
    case 'one-shot':
      return oneShot;
    case 'gradual':
      return gradualSchedule({ begin: s.begin!, end: s.end!, frequency: s.frequency!, power: s.power! });
    case 'iterative':
      return iterativeSchedule({ every: s.frequency!, rounds: s.rounds! });
  }
}
