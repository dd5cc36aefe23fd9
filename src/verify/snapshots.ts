import { parseLsn, type Lsn } from '../replication/index.js';
import { both, type Lane, type SideSession } from './session.js';

/** Read at the start of the source's transaction, so it is at or past every commit its snapshot sees. */
const POSITION_SQL = `SELECT (CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()
                                   ELSE pg_catalog.pg_current_wal_insert_lsn() END)::text`;

/**
 * Runs `work` with each side in one REPEATABLE READ, READ ONLY transaction, so everything it
 * reads comes from one snapshot per side, both taken at about the same moment. Returns what
 * it returned and the source's WAL position at its snapshot (a recheck under sync waits for the
 * target to pass it). On failure both transactions are rolled back and the error is thrown.
 */
export async function inSnapshots<T>(lane: Lane, what: string, work: () => Promise<T>): Promise<{ position: Lsn | null; result: T }> {
  try {
    await both(lane, (side) => side.query(`starting a snapshot for ${what}`, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY'));
    const [position] = await Promise.all([
      sourcePosition(lane.source),
      // The target's snapshot starts with its first query, taken here alongside the source's.
      lane.target.arrays('starting the snapshot', 'SELECT 1'),
    ]);
    const result = await work();
    await both(lane, (side) => side.query('ending the snapshot', 'COMMIT'));
    return { position, result };
  } catch (error) {
    await Promise.all([rollback(lane.source), rollback(lane.target)]);
    throw error;
  }
}

/**
 * The source's WAL position now: at or past every commit a statement before it (or, first in a
 * transaction, its snapshot) saw.
 */
export async function sourcePosition(source: SideSession): Promise<Lsn | null> {
  const rows = await source.arrays('reading the WAL position', POSITION_SQL);
  return lsnOrNull(rows[0]?.[0] ?? null);
}

/** A standby that has replayed nothing yet has no position: NULL. */
function lsnOrNull(text: string | null): Lsn | null {
  return text === null ? null : parseLsn(text);
}

async function rollback(side: SideSession): Promise<void> {
  await side.client.query('ROLLBACK').catch(() => undefined);
}
