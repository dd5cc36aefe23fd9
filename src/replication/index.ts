export { parseLsn, formatLsn, postgresTimeToDate, dateToPostgresTime } from './lsn.js';
export type { Lsn } from './lsn.js';
export { decodePgoutput, UNCHANGED, DecodeError } from './pgoutput.js';
export type { PgoutputMessage, RelationMessage, RelationColumn, Tuple, ColumnValue, DecodeOptions } from './pgoutput.js';
export { ReplicationSession, DECODING_SETTINGS } from './session.js';
export type { CreatedSlot, StreamReceiver, StreamPosition } from './session.js';
export { TransactionAssembler } from './transactions.js';
export { removeAbandonedSpools } from './spool.js';
export type { SourceTransaction, AssemblerOptions } from './transactions.js';
