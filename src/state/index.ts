import type pg from 'pg';

/**
 * pgferry's own state lives on the target, in the `pgferry` schema, so any machine can pick a
 * migration up where another left it (DESIGN decision 7). Each step records what it finished
 * in the same transaction as the work itself.
 */
export const STATE_SCHEMA = 'pgferry';

export { stateTableExists } from './exists.js';
export type { StateTable } from './exists.js';

export async function ensureStateSchema(client: pg.Client): Promise<void> {
  await client.query(`
    CREATE SCHEMA IF NOT EXISTS pgferry;
    COMMENT ON SCHEMA pgferry IS 'state of a pgferry migration into this database; pgferry cleanup removes it';
    CREATE TABLE IF NOT EXISTS pgferry.schema_objects (
      identity   text PRIMARY KEY,
      section    text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    );`);
}

export async function appliedSchemaObjects(client: pg.Client): Promise<Set<string>> {
  const { rows } = await client.query<{ identity: string }>('SELECT identity FROM pgferry.schema_objects');
  return new Set(rows.map((r) => r.identity));
}

export async function recordSchemaObject(client: pg.Client, identity: string, section: string): Promise<void> {
  await client.query(`INSERT INTO pgferry.schema_objects (identity, section) VALUES ($1, $2) ON CONFLICT (identity) DO NOTHING`, [
    identity,
    section,
  ]);
}

export {
  ensureCopyState,
  cloneState,
  startClone,
  storedPlan,
  markUnitDone,
  finishClone,
  halfDoneSplitTables,
  resetTableUnits,
} from './copy.js';
export type { CloneState, PlannedUnitRow, StoredUnit } from './copy.js';
export {
  ensureSyncState,
  readSyncState,
  startSyncState,
  recordSourceSystem,
  recordSyncProblem,
  startStreamingState,
  setSyncPhase,
  startStreamingRun,
  syncIsStreaming,
  readFenceProgress,
  readSyncPhase,
  appliedPast,
  flushStateWrites,
  HEARTBEAT_FRESH_SECONDS,
  requestSyncStop,
  withdrawSyncStop,
  readStopRequest,
  recordAppliedBatch,
  recordIdlePosition,
  recordHeartbeat,
  readSyncTables,
} from './sync.js';
export type { SyncState, SyncPhase, SyncIdentity, AppliedBatch, TableCounts, Heartbeat } from './sync.js';
export {
  ensureCutoverState,
  recordFreezeIntent,
  recordRevoked,
  recordUnfrozen,
  recordCutoverOutcome,
  freezesInPlace,
  lastCutover,
} from './cutover.js';
export type { CutoverRecord, FreezeMode, FreezeRecord, RevokedPrivilege } from './cutover.js';

/** Whether this database holds pgferry's state at all. */
export async function stateSchemaExists(client: pg.Client): Promise<boolean> {
  const { rows } = await client.query<{ present: boolean }>(`SELECT to_regnamespace('pgferry') IS NOT NULL AS present`);
  return rows[0]?.present === true;
}

/** Removes every trace of a migration's state from this database. */
export async function dropStateSchema(client: pg.Client): Promise<void> {
  await client.query('DROP SCHEMA IF EXISTS pgferry CASCADE');
}
