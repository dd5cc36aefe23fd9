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
