export { BatchApplier } from './batch.js';
export { ChangeRejected } from './errors.js';
export type { BatchOptions, BatchResult } from './batch.js';
export { TargetTables } from './target-tables.js';
export type { TargetTable, RowIdentity } from './target-tables.js';
export { Coalescer } from './coalesce.js';
export type { TableWork } from './coalesce.js';
export type { RowChange, ChangeOrigin } from './changes.js';
export type { SchemaChangeSink, SchemaChangeReader } from './schema-changes.js';
