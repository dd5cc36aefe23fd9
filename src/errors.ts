/**
 * Every failure pgferry reports to a user is a PgferryError: a one-line message that says
 * what went wrong and where (which side, which table, which statement), and a fix that says
 * what to do about it. The CLI maps `kind` to the exit code; nothing else inspects it.
 */
export type Side = 'source' | 'target';

export type ErrorKind =
  /** The user asked for something malformed or impossible: exit 2. */
  | 'usage'
  /** A server could not be reached, authenticated against or queried: exit 1. */
  | 'connection'
  | 'query';

export interface ErrorContext {
  side?: Side;
  fix?: string;
  cause?: unknown;
  /** What helps a developer but may hold row values (personal data): printed with --debug only. */
  detail?: string;
}

export class PgferryError extends Error {
  readonly kind: ErrorKind;
  readonly side: Side | undefined;
  readonly fix: string | undefined;
  readonly detail: string | undefined;

  constructor(kind: ErrorKind, message: string, context: ErrorContext = {}) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = 'PgferryError';
    this.kind = kind;
    this.side = context.side;
    this.fix = context.fix;
    this.detail = context.detail;
  }
}

export function usageError(message: string, fix?: string): PgferryError {
  return new PgferryError('usage', message, { fix });
}

/** The text of anything thrown, for wrapping foreign errors into ours. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
