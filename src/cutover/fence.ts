import type pg from 'pg';
import { FENCE_PREFIX } from '../sync/index.js';
import { parseLsn, type Lsn } from '../replication/index.js';

/**
 * With writes frozen, a transactional logical message marks the end of the source's history:
 * every commit before it is before the freeze. Sync records the message's position on the
 * target in the same transaction as the batch that holds it, so once the target shows it,
 * everything before it is applied. `READ WRITE` because this session may sit under the freeze.
 */
export interface Fence {
  /** The source's insert position just before the message: any fence sync records at or past it is this one. */
  readonly after: Lsn;
  /** Where the server put the message. */
  readonly lsn: Lsn;
}

export async function emitFence(source: pg.Client, cutoverId: number): Promise<Fence> {
  await source.query('BEGIN READ WRITE');
  try {
    // Logical decoding sends only flushed WAL. Under synchronous_commit = off (a server or role
    // default) the fence's commit would wait for the WAL writer; on, it is flushed, with every
    // commit before it, before this returns.
    await source.query('SET LOCAL synchronous_commit = on');
    const { rows } = await source.query<{ after: string; lsn: string }>(
      `SELECT pg_current_wal_insert_lsn()::text AS after, pg_logical_emit_message(true, $1, $2)::text AS lsn`,
      [FENCE_PREFIX, `cutover ${cutoverId}`],
    );
    await source.query('COMMIT');
    return { after: parseLsn(rows[0]!.after), lsn: parseLsn(rows[0]!.lsn) };
  } catch (error) {
    await source.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * Flushes the source's WAL through everything committed so far: a transaction holding only a
 * logical message, committed with synchronous_commit on. A commit made with it off is on the
 * client's screen before it is in flushed WAL, and logical decoding reads flushed WAL only.
 */
export async function flushSourceWal(source: pg.Client): Promise<void> {
  await source.query('BEGIN READ WRITE');
  try {
    await source.query('SET LOCAL synchronous_commit = on');
    await source.query(`SELECT pg_logical_emit_message(true, 'pgferry.flush', '')`);
    await source.query('COMMIT');
  } catch (error) {
    await source.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
