/**
 * verify: proves the target equals the source, table by table, by content hashed inside
 * PostgreSQL, and names the rows that differ. Cut-over calls it in 'counts' mode.
 */
export { verify } from './run.js';
export { sequenceDiffers } from './sequences.js';
export { describeSchemaDifference, SCHEMA_DIFFERENCE_WORDS } from './schema-diff.js';
export type {
  VerifyOptions,
  VerifyReport,
  VerifyMode,
  TableResult,
  TableStatus,
  SequenceResult,
  SequenceStatus,
  SequenceSetAt,
  SchemaDifference,
  Difference,
  DifferenceKind,
  RowKey,
} from './types.js';
export { ChangeChecker, imageCountQuery, mergeChangeReports } from './check-changes.js';
export { narrowImages } from './change-plan.js';
export { leadingIndexes } from './keyless-indexes.js';
export type { TableToVerify } from './tables.js';
export type { ChangeCheckOptions, ChangeCheckReport, KeylessRead } from './check-changes.js';
export { planChangeCheck } from './change-plan.js';
export type { TablePlan } from './change-plan.js';
