/**
 * Plumbing every room needs, written once: waiting and repeating with deadlines, opening and
 * closing sessions, knowing pgferry's own sessions on a server and ending those it lost,
 * transactions, quoting, reading error codes, pinned value settings. A room that finds itself
 * writing one of these by hand should add it here instead.
 */
export { sleep, pollUntil, withDeadline, DeadlineExceeded, repeatEvery } from './time.js';
export type { PollOptions, Repetition } from './time.js';
export { closeClient, destroyClient, openAll } from './sessions.js';
export { OWN_RUN, openingSession, sessionName, sessionMarkIn, sessionNumberIn, isLostOwnSession } from './own-sessions.js';
export type { OwnSession, SessionMark } from './own-sessions.js';
export { endLostOwnSessions, endSessions, isLostOwn, lockHolders, describeSession } from './server-sessions.js';
export type { ServerSession, SessionsEnded } from './server-sessions.js';
export { TEXT_VALUE_SETTINGS, setConfigSql } from './value-settings.js';
export {
  SQLSTATE,
  sqlState,
  systemErrorCode,
  serverDetail,
  isIntegrityViolation,
  isConnectionException,
  isConnectionEnded,
} from './error-codes.js';
export { inTransaction, inOneRoundTrip } from './transactions.js';
export { oneLine } from './sql-text.js';
export { allBranches, DEFAULT_JOBS, Permits } from './parallelism.js';
export { quoteIdent, quoteLiteral, quoteQualified } from './quote.js';
export { BACKEND, SocketLoan } from './socket-loan.js';
export type { PgConnection } from './socket-loan.js';
export type { TransactionOptions } from './transactions.js';
