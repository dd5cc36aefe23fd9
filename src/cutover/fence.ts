import type pg from 'pg';
import { FENCE_PREFIX } from '../sync/index.js';
import { parseLsn, type Lsn } from '../replication/index.js';
import { inOneRoundTrip, quoteLiteral } from '../plumbing/index.js';

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
  const { rows } = await emitFlushedMessage<{ after: string; lsn: string }>(
    source,
    `SELECT pg_current_wal_insert_lsn()::text AS after, pg_logical_emit_message(true, ${quoteLiteral(FENCE_PREFIX)}, ${quoteLiteral(`cutover ${cutoverId}`)})::text AS lsn`,
  );
  return { after: parseLsn(rows[0]!.after), lsn: parseLsn(rows[0]!.lsn) };
}

/**
 * Flushes the source's WAL through everything committed so far: a transaction holding only a
 * logical message, committed with synchronous_commit on. A commit made with it off is on the
 * client's screen before it is in flushed WAL, and logical decoding reads flushed WAL only.
 */
export async function flushSourceWal(source: pg.Client): Promise<void> {
  await emitFlushedMessage(source, `SELECT pg_logical_emit_message(true, 'pgferry.flush', '')`);
}

/**
 * Runs `sql` (which emits a transactional logical message) in its own `READ WRITE`
 * transaction, as this session may sit under the freeze, committed with synchronous_commit on:
 * logical decoding sends only flushed WAL, and under synchronous_commit = off (a server or role
 * default) the commit would wait for the WAL writer. On, it is flushed, with every commit before
 * it, before this returns. One round trip: the freeze waits on it.
 */
async function emitFlushedMessage<R extends pg.QueryResultRow>(source: pg.Client, sql: string): Promise<pg.QueryResult<R>> {
  return inOneRoundTrip<R>(source, sql, { mode: 'READ WRITE', local: { synchronous_commit: 'on' } });
}
