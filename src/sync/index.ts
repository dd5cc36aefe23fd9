export { sync } from './run.js';
export { FENCE_PREFIX } from './streaming.js';
export type { SyncOptions, SyncSummary, StopCause } from './options.js';
export { migrationNames, defaultMigrationName, protocolFor, readSlot, systemIdentifier } from './source-setup.js';
export type { MigrationNames, StreamProtocol, SlotInfo } from './source-setup.js';
export { publishScope, republishScope } from './publish.js';
export type { CaptureMode } from './schema-capture.js';
export { createSlotBySql } from './slot-creation.js';
export type { MeasurementSink } from './monitor.js';
