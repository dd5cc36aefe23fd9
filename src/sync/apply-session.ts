import type pg from 'pg';
import { PgferryError, messageOf } from '../errors.js';
import { sleep } from '../plumbing/index.js';
import { DECODING_SETTINGS, parseLsn, type ReplicationSession } from '../replication/index.js';
import { flushStateWrites, readSyncState, type SyncState } from '../state/index.js';
import type { ChangeStream } from './change-stream.js';

/**
 * Settings of the target session that applies changes: the walsender's output settings, so
 * the text values parse as they were printed. Every keyed statement joins a batch of keys to
 * the table's key index: a nested loop over that index. Given a big batch, the planner would
 * rather hash the batch and scan the whole table, many times slower on a big table. A lock
 * held on the target holds the apply at most a minute; then the batch is tried again.
 */
const APPLY_SETTINGS: Readonly<Record<string, string>> = {
  ...DECODING_SETTINGS,
  // NULL elements of the text arrays the set-based statements take must read as NULL.
  array_nulls: 'on',
  synchronous_commit: 'off',
  enable_hashjoin: 'off',
  enable_mergejoin: 'off',
  lock_timeout: '60s',
  // A policy must never make an UPDATE or DELETE match nothing: a role subject to one errors.
  row_security: 'off',
};

/** The apply session's settings and replica role; then the sync state it continues from, and the session's pid. */
export async function prepareApplySession(target: pg.Client): Promise<{ state: SyncState | undefined; pid: number }> {
  const settings = Object.entries(APPLY_SETTINGS);
  const { rows } = await target.query<{ pid: number }>(
    `SELECT pg_backend_pid() AS pid, ${settings.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, false)`).join(', ')}`,
    settings.flat(),
  );
  await enableReplicaRole(target);
  return { state: await readSyncState(target), pid: rows[0]!.pid };
}

/** Applying runs with triggers and foreign keys off, as the source already enforced them. */
async function enableReplicaRole(target: pg.Client): Promise<void> {
  try {
    await target.query(`SET session_replication_role = replica`);
  } catch (error) {
    throw new PgferryError('query', `target: cannot SET session_replication_role = replica: ${messageOf(error)}`, {
      side: 'target',
      fix: 'connect to the target as a superuser, or on PostgreSQL 15+ run GRANT SET ON PARAMETER session_replication_role TO <role>',
      cause: error,
    });
  }
}

/** Makes the target flush the last batch, acknowledges it, and ends the stream. */
export async function finishCleanly(stream: ChangeStream, target: pg.Client, session: ReplicationSession): Promise<void> {
  const last = stream.lastTargetLsn;
  // Batches commit with synchronous_commit off; one synchronous commit flushes the WAL up to
  // it, and so every batch before it, at once instead of after the WAL writer's next rounds.
  await flushStateWrites(target);
  const deadline = Date.now() + 5000;
  for (;;) {
    const { rows } = await target.query<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn');
    const flushed = parseLsn(rows[0]!.lsn);
    stream.flushedUpTo(flushed);
    if (last === undefined || flushed >= last || Date.now() > deadline) break;
    await sleep(50);
  }
  await session.close();
}
