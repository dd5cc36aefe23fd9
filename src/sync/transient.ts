import { PgferryError } from '../errors.js';
import { isConnectionEnded, isConnectionException, SQLSTATE, sqlState, systemErrorCode } from '../plumbing/index.js';

/**
 * Failures a reconnect can cure: a lost connection, a server restarting or out of connection
 * slots, a slot still held by our previous session, a lock the apply waited on too long.
 */
const TRANSIENT_CODES = new Set<string>([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  SQLSTATE.adminShutdown,
  SQLSTATE.crashShutdown,
  SQLSTATE.cannotConnectNow,
  SQLSTATE.idleSessionTimeout,
  SQLSTATE.tooManyConnections,
  SQLSTATE.objectInUse,
  SQLSTATE.lockNotAvailable,
]);

/**
 * Whether sync's retry loop reconnects after `error`, decided by its type and code alone:
 * pgferry's connection-kind errors (a peer lost, silent or too slow to stop), the codes above
 * and the connection-exception class, and a session that ended (pg's code-less errors, a
 * server's FATAL).
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof PgferryError && error.kind === 'connection') return true;
  const code = sqlState(error) ?? systemErrorCode(error);
  if (code !== undefined && (TRANSIENT_CODES.has(code) || isConnectionException(code))) return true;
  return isConnectionEnded(error);
}
