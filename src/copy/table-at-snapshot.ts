import type pg from 'pg';
import { quoteIdent, SQLSTATE, sqlState } from '../plumbing/index.js';
import type { SourceTable } from './source-tables.js';

/**
 * A table copied at its own snapshot, later than the plan was read (sync's per-table
 * snapshots), may have changed in between: dropped, renamed, columns added, dropped or
 * retyped. Its rows at the snapshot then fit neither the target's table (made from the plan)
 * nor the schema changes the stream replays before the snapshot's position. Such a table is
 * not copied now: the stream first brings the target's schema up to the source's, and the
 * table is copied after that at a fresh snapshot.
 */
export type TableAtSnapshot =
  | { readonly kind: 'same' }
  /** Dropped before the snapshot: nothing to copy; the stream replays the DROP. */
  | { readonly kind: 'gone' }
  | { readonly kind: 'changed'; readonly why: string };

/** What the copy knows of a table from its plan. */
export type PlannedTable = Pick<SourceTable, 'oid' | 'schema' | 'name' | 'qname' | 'columns'>;

/**
 * Inside the unit's transaction, at its snapshot: locks the table (no schema change until the
 * copy commits) and compares three views of it: the plan, the catalog at the snapshot, and the
 * catalog now (what the COPY will be parsed against).
 */
export async function checkTableAtSnapshot(source: pg.Client, table: PlannedTable): Promise<TableAtSnapshot> {
  const atSnapshot = await source.query<{
    schema: string;
    name: string;
    columns: Array<{ n: string; q: string; t: string; o: number; g: boolean }>;
  }>(
    `SELECT n.nspname AS schema, c.relname AS name,
            coalesce((SELECT json_agg(json_build_object('n', a.attname, 'q', format('%I', a.attname), 't', format_type(a.atttypid, a.atttypmod),
                                                        'o', a.atttypid, 'g', coalesce(to_jsonb(a) ->> 'attgenerated', '') <> '')
                                      ORDER BY a.attnum)
                        FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]') AS columns
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1`,
    [table.oid],
  );
  const then = atSnapshot.rows[0];
  if (!then) return { kind: 'gone' };
  if (then.schema !== table.schema || then.name !== table.name) return { kind: 'changed', why: `renamed to ${then.schema}.${then.name}` };
  const planned = table.columns.map((c) => `${c.name} ${c.type}`).join(', ');
  const copied = then.columns
    .filter((c) => !c.g)
    .map((c) => `${c.q} ${c.t}`)
    .join(', ');
  if (planned !== copied) return { kind: 'changed', why: `columns were (${planned}), at the snapshot (${copied})` };
  try {
    await source.query(`LOCK TABLE ONLY ${table.qname} IN ACCESS SHARE MODE NOWAIT`);
  } catch (error) {
    // Someone holds a stronger lock: a schema change under way. Copied later, after it.
    if (sqlState(error) === SQLSTATE.lockNotAvailable) return { kind: 'changed', why: 'a schema change holds its lock' };
    if (sqlState(error) === SQLSTATE.undefinedTable) return { kind: 'changed', why: 'dropped or renamed after the snapshot' };
    throw error;
  }
  // The name may now be another table's, and the columns the COPY is parsed against are the current ones.
  const current = await source.query<{ oid: number }>(`SELECT $1::regclass::oid AS oid`, [table.qname]);
  if (current.rows[0]?.oid !== table.oid) return { kind: 'changed', why: 'its name is another table’s now' };
  const now = await currentColumns(source, table.qname);
  if (now === undefined) return { kind: 'changed', why: 'its columns changed after the snapshot' };
  const currentShape = now.map((c) => `${quoteIdent(c.name)}:${c.type}`).join(', ');
  const snapshotShape = then.columns.map((c) => `${quoteIdent(c.n)}:${c.o}`).join(', ');
  if (currentShape !== snapshotShape) return { kind: 'changed', why: 'its columns changed after the snapshot' };
  return { kind: 'same' };
}

/**
 * The table's columns as the server's catalog holds them now, not at the transaction's
 * snapshot: once the table is locked, the parser's view of it (the relation cache) is current,
 * while a query of pg_attribute still reads the snapshot. A `SELECT *` names the current
 * columns; their declared types come from `pg_typeof` of each column of a typed NULL row,
 * which the parser also resolves from the cache. (A result's RowDescription would not do for
 * the types: it reports a domain column as the domain's base type.) Undefined when a column
 * went between the two reads.
 */
async function currentColumns(source: pg.Client, qname: string): Promise<Array<{ name: string; type: number }> | undefined> {
  const names = (await source.query(`SELECT * FROM ONLY ${qname} LIMIT 0`)).fields.map((f) => f.name);
  if (names.length === 0) return [];
  const types = names.map((n, i) => `pg_typeof((NULL::${qname}).${quoteIdent(n)})::oid AS c${i}`).join(', ');
  try {
    const { rows } = await source.query<Record<string, number>>(`SELECT ${types}`);
    return names.map((name, i) => ({ name, type: Number(rows[0]![`c${i}`]) }));
  } catch (error) {
    if (sqlState(error) === SQLSTATE.undefinedColumn) return undefined;
    throw error;
  }
}
