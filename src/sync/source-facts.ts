import type pg from 'pg';
import { serverMajor } from '../catalog/index.js';
import { PgferryError } from '../errors.js';
import { parseLsn, type Lsn } from '../replication/index.js';
import { recordSourceSystem, type SyncState } from '../state/index.js';
import { readSlot, slotGoneError, type SlotInfo } from './source-setup.js';

export interface SourceFacts {
  readonly major: number;
  readonly systemId: string;
  readonly slot: SlotInfo;
  /** The source session's pid, recorded so a cut-over's drain spares it. */
  readonly pid: number;
  /** The source's insert position now, when the run needs a goal to catch up to. */
  readonly goal: Lsn | undefined;
  /** The migration's schema-change capture is installed and enabled on the source. */
  readonly capturesSchemaChanges: boolean;
}

/** What a run needs from the source before streaming: its major, a usable slot, its pid, a goal. */
export async function readSourceFacts(
  source: pg.Client,
  slotName: string,
  wantGoal: boolean,
  captureTrigger: string,
): Promise<SourceFacts> {
  const major = await serverMajor(source);
  const slot = await readSlot(source, slotName, major);
  if (!slot.exists || slot.lost) throw slotGoneError(slotName, slot);
  // The insert position, not the write position: a commit made with synchronous_commit = off
  // may not be written yet, and it is committed all the same.
  const { rows } = await source.query<{ pid: number; lsn: string; system: string; captures: boolean }>(
    `SELECT pg_backend_pid() AS pid, pg_current_wal_insert_lsn()::text AS lsn, (SELECT system_identifier::text FROM pg_control_system()) AS system,
            EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = $1 AND evtenabled <> 'D') AS captures`,
    [captureTrigger],
  );
  const row = rows[0]!;
  return {
    major,
    systemId: row.system,
    slot,
    pid: row.pid,
    goal: wantGoal ? parseLsn(row.lsn) : undefined,
    capturesSchemaChanges: row.captures,
  };
}

/** The stream continues only from the server the target was cloned from (or a physical copy of it). */
export async function ensureSameSource(target: pg.Client, state: SyncState, sourceSystemId: string): Promise<void> {
  if (state.sourceSystemId === null) {
    await recordSourceSystem(target, sourceSystemId);
    return;
  }
  if (state.sourceSystemId !== sourceSystemId) {
    throw new PgferryError(
      'wrong-migration',
      `source: this server (system identifier ${sourceSystemId}) is not the one migration "${state.name}" copied from (${state.sourceSystemId}): its slot of the same name holds another history`,
      {
        side: 'source',
        fix: 'point --source at the server the migration started from, or run pgferry sync --drop-existing to start a new migration from this one',
      },
    );
  }
}
