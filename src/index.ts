/**
 * pgferry as a library: the same steps the command line runs, as typed functions.
 */
export { runCheck, evaluate } from './check/index.js';
export type { CheckOptions, CheckReport, Finding, Severity } from './check/index.js';
export { resolveConnection, connect, withConnection, describeConnection, scrubSecrets } from './config/index.js';
export type { ConnectionSpec, Connection, SslMode } from './config/index.js';
export { Scope, EVERYTHING } from './catalog/index.js';
export type { ScopeFilter, TableInfo, ServerInfo } from './catalog/index.js';
export { PgferryError, ERROR_CODES } from './errors.js';
export type { ErrorCode, ErrorKind, Side } from './errors.js';
export { ChangeRejected } from './apply/index.js';
export { DecodeError } from './replication/index.js';
export { createLogger } from './log/index.js';
export { clone, LogProgress, TerminalProgress } from './copy/index.js';
export type { CloneOptions, CloneSummary, CopyProgress } from './copy/index.js';
export { sync } from './sync/index.js';
export type { SyncOptions, SyncSummary } from './sync/index.js';
export { cutover, cutoverDatabases, cleanup } from './cutover/index.js';
export type {
  CutoverOptions,
  CutoverReport,
  CleanupOptions,
  CleanupReport,
  InstanceCutoverOptions,
  InstanceCutoverReport,
  DatabaseCutoverReport,
} from './cutover/index.js';
export { runPhysicalCheck, syncPhysical, cutoverPhysical, cleanupPhysical, physicalStatus } from './physical/index.js';
export type {
  PhysicalCheckOptions,
  PhysicalSyncOptions,
  PhysicalSyncSummary,
  PhysicalCutoverOptions,
  PhysicalCutoverReport,
  PhysicalCleanupOptions,
  PhysicalCleanupReport,
  PhysicalStatus,
  CarriedSetting,
  SettingOrigin,
} from './physical/index.js';
export { migrate } from './migrate/index.js';
export type { MigrateOptions, MigrateReport } from './migrate/index.js';
export { verify } from './verify/index.js';
export type { VerifyOptions, VerifyReport, VerifyMode, TableResult, SequenceResult, SchemaDifference, Difference } from './verify/index.js';
export { MigrationMetrics, StatusServer, parseListen, readStatusReport, MeteredProgress } from './observe/index.js';
export type { StatusJson, ListenAddress } from './observe/index.js';
export type { Logger } from './log/index.js';
export { carryGlobals } from './instance/index.js';
export type { CarryGlobalsOptions, GlobalsReport } from './instance/index.js';
