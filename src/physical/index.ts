/**
 * Physical mode, for a move to the same major version: pg_basebackup through a physical slot,
 * a standby streaming from the source, and a cut-over that freezes the whole source server,
 * waits for the standby to replay its last WAL, and promotes it. PostgreSQL's own tools do the
 * copying; this room checks, orchestrates and measures.
 */
export { runPhysicalCheck } from './check.js';
export type { PhysicalCheckOptions } from './check.js';
export { syncPhysical } from './sync.js';
export type { PhysicalSyncOptions, PhysicalSyncSummary } from './sync.js';
export { cutoverPhysical } from './cutover.js';
export type { PhysicalCutoverOptions, PhysicalCutoverReport, PhysicalCutoverStep } from './cutover.js';
export { cleanupPhysical } from './cleanup.js';
export type { PhysicalCleanupOptions, PhysicalCleanupReport } from './cleanup.js';
export { physicalStatus } from './status.js';
export type { PhysicalStatus } from './status.js';
export { checkedMigrationName } from './slot.js';
export { describeOrigin } from './carried-settings.js';
export type { CarriedSetting } from './carried-settings.js';
export type { SettingOrigin } from './source-settings.js';
