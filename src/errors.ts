/**
 * Every failure pgferry reports to a user is a PgferryError: a one-line message that says
 * what went wrong and where (which side, which table, which statement), and a fix that says
 * what to do about it, and a stable `code` (below) that callers branch on and the CLI maps to
 * its exit status.
 */
export type Side = 'source' | 'target';

export type ErrorKind =
  /** The user asked for something malformed or impossible: exit 2. */
  | 'usage'
  /** A server could not be reached, authenticated against or queried: exit 1. */
  | 'connection'
  | 'query';

/**
 * The stable codes of pgferry's failures, for a caller to branch on (a library user, the CLI's
 * exit status, sync's retry). The three generic codes say only which kind of failure it was;
 * the others name an outcome someone can act on. Each code has one kind, so a code decides the
 * exit status. Codes are part of the public API: add, never rename.
 */
export const ERROR_CODES = {
  /** Malformed or impossible input: a flag, a connection parameter, a file, a pattern. */
  usage: 'usage',
  /** A server could not be reached or authenticated against. */
  connection: 'connection',
  /** A statement on one side failed. */
  query: 'query',
  /** A peer stopped answering or closed the connection mid-run; a retry can cure it. */
  'connection-lost': 'connection',
  /** The target holds a clone, rows or another migration's state that this command would overwrite. */
  'target-not-empty': 'usage',
  /** The target follows another migration, or this one is over. */
  'wrong-migration': 'usage',
  /** The cut-over needs a pgferry sync streaming into the target, and none is. */
  'not-syncing': 'usage',
  /** The replication slot is another process's or another migration's, or ahead of the target. */
  'slot-taken': 'usage',
  /** The chosen freeze would leave the source writable. */
  'freeze-would-not-hold': 'usage',
  /** pgferry's state on the target was changed by hand and can't be trusted. */
  'state-tampered': 'usage',
  /** Writes the target lacks were committed on the source after the cut-over. */
  'late-writes': 'usage',
  /** A signal stopped the command before it finished. */
  interrupted: 'usage',
  /** The target's schema lacks or contradicts what the source needs. */
  'schema-conflict': 'query',
  /** Copying a table (or a range of one) failed. */
  'copy-failed': 'query',
  /** A schema change on the source that sync may not or cannot carry to the target (--ddl stop, or no way to rebuild it). */
  'schema-change': 'usage',
  /** The target refused a schema change of the stream. */
  'schema-change-failed': 'query',
  /** The target refused a change of the stream, even in exact source order. */
  'change-rejected': 'query',
  /** The replication stream held something pgferry cannot decode, or the walsender could not send. */
  'stream-undecodable': 'query',
  /** Sync did not come within the allowed lag in time. */
  'lag-timeout': 'query',
  /** Sessions open before the freeze did not end in time. */
  'drain-timeout': 'query',
  /** Sync did not apply the fence in time. */
  'fence-timeout': 'query',
  /** The target differs from the source at the fence. */
  'target-differs': 'query',
  /** The slot holds more WAL than --max-retained-wal while apply is stuck. */
  'wal-limit': 'query',
  /** The migration's replication slot is gone or can no longer serve (dropped, invalidated). */
  'slot-lost': 'query',
  /** The slot has confirmed a position past what the target applied: changes in between are lost to it. */
  'slot-ahead': 'query',
  /** Creating the replication slot waits on a transaction that does not end. */
  'slot-blocked': 'query',
  /** The way back (a slot on the cut-over's target) cannot be prepared, or cleanup would remove one still kept. */
  'way-back': 'usage',
  /** PgBouncer's console or configuration file refused what the cut-over needs (it is left pointing at the source, resumed). */
  pgbouncer: 'usage',
  /** Clients waited in PgBouncer's pause as long as --max-pause allows: the cut-over was undone. */
  'pause-limit': 'query',
  /** pg_basebackup failed, stalled or was stopped (physical mode). */
  'base-backup-failed': 'query',
  /** The standby did not start, stream or catch up (physical mode). */
  standby: 'query',
  /** The standby was not promoted, or does not accept writes after promotion (physical mode). */
  'promote-failed': 'query',
  /** The cut-over is done but recording or reporting it failed. */
  'cutover-unfinished': 'query',
} as const satisfies Record<string, ErrorKind>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorContext {
  side?: Side;
  fix?: string;
  cause?: unknown;
  /** What helps a developer but may hold row values (personal data): printed with --debug only. */
  detail?: string;
}

export class PgferryError extends Error {
  /** What failed, stably, for a caller to branch on. */
  readonly code: ErrorCode;
  /** Which kind of failure the code is: decides the exit status. */
  readonly kind: ErrorKind;
  readonly side: Side | undefined;
  readonly fix: string | undefined;
  readonly detail: string | undefined;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = 'PgferryError';
    this.code = code;
    this.kind = ERROR_CODES[code];
    this.side = context.side;
    this.fix = context.fix;
    this.detail = context.detail;
  }
}

export function usageError(message: string, fix?: string, code: ErrorCode = 'usage'): PgferryError {
  return new PgferryError(code, message, { fix });
}

/** Anything thrown, as an Error (a thrown string or object is wrapped, an Error kept as it is). */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** The text of anything thrown, for wrapping foreign errors into ours. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
