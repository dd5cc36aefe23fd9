import pg from 'pg';

/**
 * The SQLSTATEs pgferry acts on, by name (PostgreSQL's errcodes.txt). A code is read from an
 * error through `sqlState` alone, never by casting.
 */
export const SQLSTATE = {
  invalidAuthorizationSpecification: '28000',
  characterNotInRepertoire: '22021',
  dependentObjectsStillExist: '2BP01',
  insufficientPrivilege: '42501',
  undefinedObject: '42704',
  undefinedTable: '42P01',
  undefinedColumn: '42703',
  objectInUse: '55006',
  lockNotAvailable: '55P03',
  deadlockDetected: '40P01',
  adminShutdown: '57P01',
  crashShutdown: '57P02',
  cannotConnectNow: '57P03',
  idleSessionTimeout: '57P05',
  tooManyConnections: '53300',
  configurationLimitExceeded: '53400',
  queryCanceled: '57014',
} as const;

/** The class of integrity constraint violations: a replay in exact source order may resolve them. */
export function isIntegrityViolation(code: string | undefined): boolean {
  return code !== undefined && code.startsWith('23');
}

/** The class of connection exceptions. */
export function isConnectionException(code: string | undefined): boolean {
  return code !== undefined && code.startsWith('08');
}

/**
 * The SQLSTATE of the server error behind `error` (pgferry wraps server errors as causes), or
 * undefined when none is: a socket error, pgferry's own.
 */
export function sqlState(error: unknown): string | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    if (current instanceof pg.DatabaseError && typeof current.code === 'string') return current.code;
  }
  return undefined;
}

/** The code of the Node.js system error behind `error` (ECONNRESET, ETIMEDOUT, …), if any. */
export function systemErrorCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    if (current instanceof pg.DatabaseError) return undefined;
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  }
  return undefined;
}

/**
 * Whether the session behind `error` is over: a reconnect is the only way on. node-postgres
 * raises plain Errors without a code when a connection ends ("Connection terminated
 * unexpectedly" when the socket closes under it, "Connection terminated" for queries cut off
 * by end() or a destroyed socket, "Client was closed and is not queryable" and "Client has
 * encountered a connection error and is not queryable" for queries sent after). Those texts
 * are pg's; pgferry's own ends of a connection are PgferryErrors coded 'connection-lost'. A
 * server error sent as FATAL ends the session too ("terminating connection due to …": an
 * administrator, a timeout, a recovery conflict).
 */
export function isConnectionEnded(error: unknown): boolean {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    if (current instanceof pg.DatabaseError) return current.severity === 'FATAL';
    const { message } = current;
    if (PG_CONNECTION_ENDED.some((pattern) => pattern.test(message))) return true;
  }
  return false;
}

/** node-postgres's messages for a connection that ended (pg/lib/client.js). */
const PG_CONNECTION_ENDED: readonly RegExp[] = [
  /^Connection terminated\b/,
  /^Client (was closed|has encountered a connection error) and is not queryable$/,
];

/** The server's DETAIL line of the error behind `error`, if it sent one. */
export function serverDetail(error: unknown): string | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) {
    if (current instanceof pg.DatabaseError) return current.detail;
  }
  return undefined;
}
