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
