/**
 * Errors a user can act on: every one names the file, the field (column, row, layer, option) and
 * the fix. The command line prints `message` as it is; the extension shows it in a notification.
 */
export interface UserErrorDetails {
  /** The file at fault, as the user gave it. */
  file?: string;
  /** The column, option, layer or JSON field at fault. */
  field?: string;
  /** 1-based data row (header excluded) where the problem was found. */
  row?: number;
  /** What to do about it. */
  fix?: string;
}

export class UserError extends Error {
  readonly file?: string;
  readonly field?: string;
  readonly row?: number;
  readonly fix?: string;

  constructor(problem: string, details: UserErrorDetails = {}) {
    super(UserError.compose(problem, details));
    this.name = 'UserError';
    this.file = details.file;
    this.field = details.field;
    this.row = details.row;
    this.fix = details.fix;
  }

  private static compose(problem: string, d: UserErrorDetails): string {
    const where: string[] = [];
    if (d.file) where.push(d.file);
    if (d.row !== undefined) where.push(`row ${d.row}`);
    if (d.field) where.push(`'${d.field}'`);
    const head = where.length ? `${where.join(', ')}: ` : '';
    return `${head}${problem}${d.fix ? ` Fix: ${d.fix}` : ''}`;
  }
}

/** Thrown when the user (or the host) cancels a running session. */
export class CancelledError extends Error {
  constructor() {
    super('cancelled');
    this.name = 'CancelledError';
  }
}

export function throwIfCancelled(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError();
}

/** An error as plain data, to cross a worker-thread boundary (a thrown class instance arrives as a bare Error). */
export interface PlainError {
  kind: 'user' | 'cancelled' | 'other';
  message: string;
  stack?: string;
  details?: UserErrorDetails;
}

export function toPlainError(e: unknown): PlainError {
  if (e instanceof CancelledError) return { kind: 'cancelled', message: e.message };
  if (e instanceof UserError)
    return { kind: 'user', message: e.message, details: { file: e.file, field: e.field, row: e.row, fix: e.fix } };
  return e instanceof Error
    ? { kind: 'other', message: e.message, stack: e.stack }
    : { kind: 'other', message: String(e) };
}

/** The error `toPlainError` described, as the same class with the same message. */
export function fromPlainError(p: PlainError): Error {
  if (p.kind === 'cancelled') return new CancelledError();
  if (p.kind === 'user') {
    const e = Object.create(UserError.prototype) as UserError;
    Object.assign(e, { name: 'UserError', message: p.message, ...p.details });
    Object.defineProperty(e, 'stack', { value: `UserError: ${p.message}`, writable: true, configurable: true });
    return e;
  }
  const e = new Error(p.message);
  if (p.stack) e.stack = p.stack;
  return e;
}
