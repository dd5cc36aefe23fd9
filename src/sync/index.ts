export { sync } from './run.js';
export { FENCE_PREFIX } from './streaming.js';
export type { SyncOptions, SyncSummary, StopCause } from './options.js';
export { migrationNames, defaultMigrationName, protocolFor, readSlot } from './source-setup.js';
export type { MigrationNames, StreamProtocol } from './source-setup.js';
