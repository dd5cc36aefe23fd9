export { parseLsn, formatLsn, postgresTimeToDate } from './lsn.js';
export type { Lsn } from './lsn.js';
export { decodePgoutput, UNCHANGED, DecodeError, PGOUTPUT, PGOUTPUT_OFFSET } from './pgoutput.js';
export type {
  PgoutputMessage,
  BeginMessage,
  CommitMessage,
  OriginMessage,
  RelationMessage,
  TypeMessage,
  InsertMessage,
  UpdateMessage,
  DeleteMessage,
  TruncateMessage,
  LogicalMessage,
  StreamStartMessage,
  StreamStopMessage,
  StreamCommitMessage,
  StreamAbortMessage,
  RelationColumn,
  Tuple,
  ColumnValue,
  DecodeOptions,
} from './pgoutput.js';
export { ReplicationSession, DECODING_SETTINGS } from './session.js';
export type { CreatedSlot, SlotKind, StreamReceiver, StreamPosition, StreamTiming } from './session.js';
export { TransactionAssembler, SCHEMA_CHANGE_PREFIX } from './transactions.js';
export { removeAbandonedSpools } from './spool.js';
export type { SourceTransaction, AssemblerOptions } from './transactions.js';
export { evaluateInbound } from './liveness.js';
export type { InboundTimings, InboundVerdict } from './liveness.js';
