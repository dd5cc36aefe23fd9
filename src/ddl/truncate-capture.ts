import type pg from 'pg';
import { inTransaction, quoteIdent } from '../plumbing/index.js';
import { captureNames, truncateTriggerStatement } from './capture.js';

/**
 * pgoutput carries TRUNCATE from PostgreSQL 11. On a 10 source a TRUNCATE would reach the
 * target as nothing at all, so pgferry puts it into the stream itself: an AFTER TRUNCATE
 * statement trigger on every published table writes a payload into the capture's queue table
 * (which 10 needs anyway, having no logical messages), at the truncate's place in its
 * transaction. The triggers are made before the slot, so every TRUNCATE after the copy's
 * snapshot is in the stream; a table that joins later gets its trigger from the event trigger.
 * Each table's trigger writes its own payload; the apply truncates it with CASCADE (see replay.ts).
 */

/** The payload one table's TRUNCATE writes: read by parseSchemaChange as event 'truncate'. */
const PAYLOAD_SQL = `pg_catalog.jsonb_build_object('v', 1, 'event', 'truncate', 'tag', 'TRUNCATE',
  'query', pg_catalog.current_query(), 'table', pg_catalog.format('%I.%I', tg_table_schema, tg_table_name))::text`;

/**
 * Makes the trigger function and a trigger on each published table that lacks one (a resumed
 * sync finds most already there). Returns the tables that had none: on a resume those lost
 * theirs while sync was away, and a TRUNCATE in that time was not carried.
 */
export async function coverTruncates(source: pg.Client, migration: string, publication: string): Promise<string[]> {
  const capture = captureNames(migration);
  const fn = `${quoteIdent(capture.schema)}.${quoteIdent(capture.truncateFunction)}`;
  const queue = `${quoteIdent(capture.schema)}.${quoteIdent(capture.queue)}`;
  return inTransaction(source, async () => {
    // pgferry's own CREATE TRIGGER must not reach the target as a schema change.
    await source.query(`SELECT pg_catalog.set_config('pgferry.capturing', 'on', true)`);
    await source.query(
      `CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
         AS $truncate$BEGIN INSERT INTO ${queue} (payload) VALUES (${PAYLOAD_SQL}); RETURN NULL; END$truncate$`,
    );
    await source.query(`REVOKE ALL ON FUNCTION ${fn}() FROM PUBLIC`);
    const { rows } = await source.query<{ name: string }>(
      `SELECT pg_catalog.format('%I.%I', t.schemaname, t.tablename) AS name
         FROM pg_publication_tables t
        WHERE t.pubname = $1 AND NOT (t.schemaname = $2 AND t.tablename = $3)
          AND NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgname = $4
                             AND g.tgrelid = pg_catalog.format('%I.%I', t.schemaname, t.tablename)::regclass)
        ORDER BY 1`,
      [publication, capture.schema, capture.queue, capture.truncateTrigger],
    );
    for (const { name } of rows) await source.query(truncateTriggerStatement(name, capture));
    return rows.map((r) => r.name);
  });
}
