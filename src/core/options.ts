/**
 * Parsing of the options a user types (command line, editor input boxes). No TensorFlow.js here:
 * the extension host validates input with these without loading the engine.
 */
import type { LossName } from '../protocol/results';
import { UserError } from './errors';

export function parseSparsities(text: string, option = '--sparsity'): number[] {
  const values = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const pct = s.endsWith('%');
      const v = Number(pct ? s.slice(0, -1) : s) / (pct ? 100 : 1);
      if (!Number.isFinite(v) || v <= 0 || v >= 1) {
        throw new UserError(`'${s}' is not a sparsity between 0 and 1 (exclusive).`, {
          field: option,
          fix: 'give fractions of weights to remove, e.g. --sparsity 0.5,0.8,0.9 (or 50%,80%,90%).',
        });
      }
      return v;
    });
  if (!values.length) throw new UserError('no sparsity given.', { field: option, fix: 'e.g. --sparsity 0.5,0.8,0.9' });
  return [...new Set(values)].sort((a, b) => a - b);
}

export function parseLossNames(text: string, option = '--loss'): LossName[] {
  const names = text
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const known: Record<string, LossName> = {
    ce: 'ce',
    'cross-entropy': 'ce',
    kd: 'kd',
    distillation: 'kd',
    pw: 'pw',
    'pw-weight-only': 'pw-weight-only',
    'pw-weights-only': 'pw-weight-only',
    'pw-correction-only': 'pw-correction-only',
    'group-balanced': 'group-balanced',
    balanced: 'group-balanced',
    'group-dro': 'group-dro',
    dro: 'group-dro',
    ceag: 'ceag',
  };
  const out: LossName[] = [];
  for (const n of names) {
    const l = known[n];
    if (!l) {
      throw new UserError(`unknown loss '${n}'.`, {
        field: option,
        fix: 'use ce, kd, pw, pw-weight-only, pw-correction-only, group-balanced, group-dro or ceag, comma-separated.',
      });
    }
    if (!out.includes(l)) out.push(l);
  }
  if (!out.length) throw new UserError('no loss given.', { field: option, fix: 'e.g. --loss ce,pw' });
  return out;
}
