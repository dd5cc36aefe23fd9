import type pg from 'pg';
import { messageOf } from '../errors.js';
import { formatLsn, parseLsn, PGOUTPUT, PGOUTPUT_OFFSET, type Lsn } from '../replication/index.js';
import { flushSourceWal } from './fence.js';
import { DeadlineExceeded, pollUntil, sleep, sqlState, SQLSTATE } from '../plumbing/index.js';

/**
 * Writes the source committed that sync never applied: every transaction with changes to a
 * published table whose commit ends past sync's final applied position.
 *
 * A read-only freeze is a default, and a session may set it off for itself (or open
 * `BEGIN READ WRITE`); with `--freeze none` the operator's word is all there is. What such a
 * session commits after sync stopped would be on the source only, and nothing else would ever
 * say so. The slot still holds it: sync has let go of the slot, so the slot is read without
 * being consumed (pg_logical_slot_peek_binary_changes), and nothing of it moves.
 */
export interface LateWrites {
  readonly transactions: number;
  /** Changes per table: rows inserted, updated or deleted, and TRUNCATEs. */
  readonly tables: ReadonlyMap<string, number>;
}

/** How long to wait for the walsender of the stopped sync to let go of the slot. */
const SLOT_RELEASE_TIMEOUT_MS = 10_000;

/**
 * Counted inside PostgreSQL, so only a line per table comes back however much the slot holds.
 * Each row of the peek is one pgoutput message (replication/pgoutput.ts gives the grammar): its
 * first byte says which. A commit row's position is the end of its commit record, and sync's
 * applied position is always at a record boundary it reached, so a transaction is late exactly
 * when its commit ends past it. Its changes are inserts, updates and deletes, whose 4 bytes
 * from PGOUTPUT_OFFSET.changeRelation are the table's oid, and truncates, named by their first
 * table (4 bytes from PGOUTPUT_OFFSET.truncateFirstRelation); protocol 1 streams nothing, so no
 * xid comes before them. The constants are interpolated as numbers: the SQL holds no input.
 * Our own flush transaction holds only a logical message, which protocol 1 doesn't send.
 */
const LATE_WRITES_SQL = `
  WITH message AS (
    -- xid has no ordering or hashing of its own: its text stands in for DISTINCT and the join.
    SELECT lsn, xid::text AS xid, pg_catalog.get_byte(data, 0) AS tag, data
      FROM pg_catalog.pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)
  ), late AS (
    SELECT DISTINCT xid FROM message WHERE tag = ${PGOUTPUT.commit} AND lsn > $3::pg_lsn
  ), change AS (
    -- Bitwise operators share one precedence in PostgreSQL: every shift in parentheses.
    SELECT m.xid, ((pg_catalog.get_byte(m.data, o)::bigint << 24) | (pg_catalog.get_byte(m.data, o + 1) << 16)
                   | (pg_catalog.get_byte(m.data, o + 2) << 8) | pg_catalog.get_byte(m.data, o + 3))::oid AS relid
      FROM message m JOIN late USING (xid)
      CROSS JOIN LATERAL (SELECT CASE WHEN m.tag = ${PGOUTPUT.truncate} THEN ${PGOUTPUT_OFFSET.truncateFirstRelation} ELSE ${PGOUTPUT_OFFSET.changeRelation} END AS o) offset_of
     WHERE m.tag IN (${PGOUTPUT.insert}, ${PGOUTPUT.update}, ${PGOUTPUT.delete}, ${PGOUTPUT.truncate})
  )
  SELECT (SELECT count(DISTINCT xid) FROM change)::int AS transactions,
         (SELECT pg_catalog.json_object_agg(name, n)
            FROM (SELECT coalesce((SELECT pg_catalog.format('%I.%I', ns.nspname, c.relname)
                                     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace
                                    WHERE c.oid = change.relid), 'table ' || change.relid) AS name,
                         count(*)::int AS n
                    FROM change GROUP BY 1) per_table) AS tables`;

export async function lateWrites(source: pg.Client, slot: string, publication: string, applied: Lsn): Promise<LateWrites> {
  // What a client saw commit may not be flushed yet, and the slot shows flushed WAL only.
  await flushSourceWal(source);
  const deadline = Date.now() + SLOT_RELEASE_TIMEOUT_MS;
  for (;;) {
    try {
      const { rows } = await source.query<{ transactions: number; tables: Record<string, number> | null }>(LATE_WRITES_SQL, [
        slot,
        publication,
        formatLsn(applied),
      ]);
      return { transactions: rows[0]?.transactions ?? 0, tables: new Map(Object.entries(rows[0]?.tables ?? {})) };
    } catch (error) {
      if (sqlState(error) !== SQLSTATE.objectInUse || Date.now() > deadline) {
        throw new Error(`source: reading slot ${slot} for writes after sync's position ${formatLsn(applied)} failed: ${messageOf(error)}`, {
          cause: error,
        });
      }
      await sleep(5);
    }
  }
}

/**
 * Lets the late-writes read inside the freeze start near the freeze instead of up to 15 s before
 * it. A peek decodes the slot from its restart position, which PostgreSQL moves only at a
 * running-transactions record (the background writer writes one every 15 s), and then only to
 * the record before it (where a snapshot was saved, so decoding can begin there), once sync has
 * confirmed past the one that proposed it; the slot takes no new proposal while one waits. Under
 * steady writes the read thus decoded up to 15–30 s of WAL with writes frozen (60–100 ms at
 * pgbench's full speed on 2 cores). So two are written (pg_log_standby_snapshot, PostgreSQL 16+):
 * the first before the last passes over the changes, the second once sync has confirmed past the
 * first, before the catch-up; sync's last acknowledgement when it stops then makes the first the
 * slot's restart position, a few seconds before the freeze (with --verify changes, whose passes
 * over the changes leave sync the time to confirm the first). Nothing the read finds changes: PostgreSQL decodes every
 * transaction committed past the confirmed position from any restart position it keeps. Best
 * effort: before 16, or without the privilege (a superuser's by default), nothing is written.
 */
export class RestartPoint {
  private constructor(
    private readonly source: pg.Client,
    private readonly slot: string,
    private readonly first: Lsn,
  ) {}

  /** Writes the first record; undefined where the server or the role cannot. */
  static async mark(source: pg.Client, slot: string): Promise<RestartPoint | undefined> {
    const { rows } = await source.query<{ may: boolean }>(
      // By oid, so a server without the function answers NULL rather than an error.
      `SELECT coalesce(has_function_privilege(to_regprocedure('pg_catalog.pg_log_standby_snapshot()'), 'EXECUTE'), false) AS may`,
    );
    if (rows[0]?.may !== true) return undefined;
    return new RestartPoint(source, slot, await logRunningTransactions(source));
  }

  /**
   * Writes the second record once sync has confirmed past the first (it confirms every second or
   * so), within `withinMs`; false if it had not by then (the read starts further back).
   */
  async propose(withinMs: number): Promise<boolean> {
    try {
      await pollUntil(
        async () => {
          const { rows } = await this.source.query<{ past: boolean | null }>(
            `SELECT confirmed_flush_lsn >= $2::pg_lsn AS past FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`,
            [this.slot, formatLsn(this.first)],
          );
          return rows[0]?.past === true;
        },
        { timeoutMs: withinMs, everyMs: 50, what: 'sync to confirm the restart mark' },
      );
    } catch (error) {
      if (error instanceof DeadlineExceeded) return false;
      throw error;
    }
    await logRunningTransactions(this.source);
    return true;
  }
}

async function logRunningTransactions(source: pg.Client): Promise<Lsn> {
  const { rows } = await source.query<{ lsn: string }>('SELECT pg_catalog.pg_log_standby_snapshot()::text AS lsn');
  return parseLsn(rows[0]!.lsn);
}

export function describeLateWrites(late: LateWrites): string {
  const tables = [...late.tables].sort((a, b) => b[1] - a[1]);
  const shown = tables.slice(0, 5).map(([name, changes]) => `${name} (${changes} ${changes === 1 ? 'change' : 'changes'})`);
  return `${late.transactions} ${late.transactions === 1 ? 'transaction' : 'transactions'} changing ${shown.join(', ')}${tables.length > 5 ? ` and ${tables.length - 5} more tables` : ''}`;
}
