/**
 * Plumbing every room needs, written once: waiting with deadlines. (Issue 15 moves sessions,
 * transactions, quoting and error codes here too.)
 */
export { sleep, pollUntil, withDeadline, DeadlineExceeded, repeatEvery } from './time.js';
export type { PollOptions, Repetition } from './time.js';
export { closeClient, destroyClient, openAll } from './sessions.js';
export { TEXT_VALUE_SETTINGS, setConfigSql } from './value-settings.js';
export { SQLSTATE, sqlState, systemErrorCode, serverDetail, isIntegrityViolation, isConnectionException, isConnectionEnded } from './error-codes.js';
export { inTransaction } from './transactions.js';
export { quoteIdent, quoteLiteral, quoteQualified } from './quote.js';
export type { TransactionOptions } from './transactions.js';
