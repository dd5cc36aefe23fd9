/**
 * Indexes pgferry makes for a cut-over's check of changed rows, and removes after it: without a
 * key or an index, counting a keyless table's changed row images reads the table through, on
 * each side, inside the write freeze, in proportion to its size (a pgbench_history growing at
 * 800 rows/s added a few milliseconds to the freeze every round). An index on one of its typed
 * columns turns that read into a look-up of the images' values (check-changes.ts narrows by it).
 *
 * Made with CREATE INDEX CONCURRENTLY before the full verify (which holds snapshots an index
 * build would wait for), on each side that lacks a usable index, with the schema-change capture
 * suspended in the session so neither stream carries it. Named `pgferry_narrow_…` after the
 * table, so a rerun finds its own and `cleanup` finds what a killed cut-over left. Dropped
 * CONCURRENTLY when the cut-over ends, whichever way.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { OWN_INDEX_PREFIX } from '../catalog/index.js';
import { connect, type ConnectionSpec } from '../config/index.js';
import { withCaptureSuspended } from '../ddl/index.js';
import { messageOf, type Side } from '../errors.js';
import type { Logger } from '../log/index.js';
import { closeClient, openAll, quoteIdent } from '../plumbing/index.js';
import type { ChangeChecker, TableToVerify } from '../verify/index.js';
import { writableSession } from './read-only.js';

/** One index made on one side. */
export interface NarrowingIndex {
  readonly side: Side;
  readonly table: string;
  /** The index's own name (narrowingIndexName). */
  readonly name: string;
  /** Quoted "schema"."name" of the index. */
  readonly sql: string;
  readonly column: string;
}

/**
 * The index's name for a table (by its display name, schema.table): within PostgreSQL's 63 bytes
 * whatever the table's name; the same table gets the same name on both sides and in every cut-over.
 */
export function narrowingIndexName(table: string): string {
  return `${OWN_INDEX_PREFIX}${createHash('sha256').update(table).digest('hex').slice(0, 24)}`;
}

function narrowingIndexOf(side: Side, table: TableToVerify, column: string): NarrowingIndex {
  const name = narrowingIndexName(table.name);
  return { side, table: table.name, name, sql: `${quoteIdent(table.schema)}.${quoteIdent(name)}`, column };
}

/**
 * The column to index a keyless table by: among its typed columns (the check narrows those by a
 * constant list, which an index answers value by value), the one with the most distinct values
 * by the source's statistics; without statistics, the first. Null when it has no typed column.
 */
export async function chooseNarrowingColumn(source: pg.Client, table: TableToVerify): Promise<string | null> {
  const typed = table.columns.filter((c) => c.hashed !== null);
  if (typed.length === 0) return null;
  const { rows } = await source.query<{ column: string; distinct: number }>(
    `SELECT s.attname AS column,
            (CASE WHEN s.n_distinct < 0 THEN -s.n_distinct * greatest(c.reltuples, 0) ELSE s.n_distinct END)::float8 AS distinct
       FROM pg_catalog.pg_stats s
       JOIN pg_catalog.pg_namespace n ON n.nspname = s.schemaname
       JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename
      WHERE s.schemaname = $1 AND s.tablename = $2 AND s.attname = ANY($3::text[]) AND NOT s.inherited`,
    [table.schema, table.table, typed.map((c) => c.name)],
  );
  const distinct = new Map(rows.map((r) => [r.column, Number(r.distinct)]));
  const ranked = [...typed].sort((a, b) => (distinct.get(b.name) ?? 0) - (distinct.get(a.name) ?? 0));
  return ranked[0]!.name;
}

/**
 * Makes the index on this side (an invalid one a killed build left is dropped first). Returns it,
 * or null when it could not be made (a transaction using the table longer than WAIT_FOR_USERS, a
 * role that does not own it): the check then reads that table through there, and the warning says why.
 */
export async function makeNarrowingIndex(
  client: pg.Client,
  index: NarrowingIndex,
  table: TableToVerify,
  log: Logger,
): Promise<NarrowingIndex | null> {
  const { side, name, sql, column } = index;
  try {
    await withCaptureSuspended(client, async () => {
      const { rows } = await client.query<{ valid: boolean }>(
        `SELECT i.indisvalid AS valid FROM pg_catalog.pg_index i
           JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = $2`,
        [table.schema, name],
      );
      if (rows[0]?.valid === true) return;
      if (rows[0]) await client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${sql}`);
      await client.query(`CREATE INDEX CONCURRENTLY ${quoteIdent(name)} ON ${table.sql} (${quoteIdent(column)})`);
    });
    return index;
  } catch (error) {
    log.warn(
      { side, table: table.name, column, error: messageOf(error) },
      `could not index ${table.name} on the ${side} for the check inside the freeze: it reads that table through there`,
    );
    // What the build left (an invalid index) is dropped with the rest when the cut-over ends.
    return null;
  }
}

/** Drops the indexes named, or, without names, every `pgferry_narrow_…` index in the database. Returns what it dropped. */
export async function dropNarrowingIndexes(client: pg.Client, only?: readonly NarrowingIndex[]): Promise<string[]> {
  const names =
    only?.map((i) => i.sql) ??
    (
      await client.query<{ sql: string }>(
        `SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS sql
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'i' AND pg_catalog.left(c.relname, pg_catalog.length($1)) = $1`,
        [OWN_INDEX_PREFIX],
      )
    ).rows.map((r) => r.sql);
  const dropped: string[] = [];
  await withCaptureSuspended(client, async () => {
    for (const sql of names) {
      await client.query(`DROP INDEX CONCURRENTLY IF EXISTS ${sql}`);
      dropped.push(sql);
    }
  });
  return dropped;
}

/**
 * The indexes one cut-over made for its check: made before the full verify, dropped when the
 * cut-over ends (success or failure), each on a session of its own side (the source's made
 * writable: it may be frozen by then).
 */
export class CheckIndexes {
  private constructor(
    private readonly source: ConnectionSpec,
    private readonly target: ConnectionSpec,
    /** Made and valid: the check reads through them. */
    readonly made: readonly NarrowingIndex[],
    /** Every one begun, made or not: a build or a drop given up on leaves an invalid one, dropped with the rest. */
    private readonly begun: readonly NarrowingIndex[],
    private readonly log: Logger,
  ) {}

  static async make(source: ConnectionSpec, target: ConnectionSpec, checker: ChangeChecker, log: Logger): Promise<CheckIndexes> {
    const lacking = checker.unindexedKeyless();
    if (lacking.source.length + lacking.target.length === 0) return new CheckIndexes(source, target, [], [], log);
    const made: NarrowingIndex[] = [];
    const begun: NarrowingIndex[] = [];
    await onBothSides(source, target, async (sides) => {
      const tables = new Map([...lacking.source, ...lacking.target].map((t) => [t.name, t]));
      for (const table of tables.values()) {
        const column = await chooseNarrowingColumn(sides.source, table);
        if (column === null) continue;
        log.info(
          { table: table.name, column },
          `indexing ${table.name} (${column}) for the check inside the freeze; dropped after the cut-over`,
        );
        const sidesLacking = (['source', 'target'] as const).filter((side) => lacking[side].includes(table));
        const results = await Promise.all(
          sidesLacking.map((side) => {
            const index = narrowingIndexOf(side, table, column);
            begun.push(index);
            return makeNarrowingIndex(sides[side], index, table, log);
          }),
        );
        for (const index of results) if (index) made.push(index);
      }
    });
    if (made.length > 0) await checker.readIndexesAgain();
    return new CheckIndexes(source, target, made, begun, log);
  }

  /** Never throws: what cannot be dropped is named, and `pgferry cleanup` drops it. */
  async drop(): Promise<void> {
    if (this.begun.length === 0) return;
    await onBothSides(this.source, this.target, async (sides) => {
      await Promise.all(
        (['source', 'target'] as const).map((side) =>
          dropNarrowingIndexes(
            sides[side],
            this.begun.filter((i) => i.side === side),
          ),
        ),
      );
    }).catch((error: unknown) =>
      this.log.warn(
        { indexes: this.begun.map((i) => `${i.side}: ${i.sql}`), error: messageOf(error) },
        'could not drop the indexes made for the check: pgferry cleanup drops them',
      ),
    );
  }
}

/**
 * How long building or dropping an index waits for the transactions already using its table
 * (CONCURRENTLY waits for each to end): an application's long or idle transaction must not hold
 * the cut-over; past this the table is read through instead, as without the index.
 */
const WAIT_FOR_USERS = '3s';

/**
 * A session on each side for the length of `work`, waiting at most WAIT_FOR_USERS on a lock; the
 * source's writable (a frozen source refuses DDL otherwise).
 */
async function onBothSides(
  source: ConnectionSpec,
  target: ConnectionSpec,
  work: (sides: { readonly source: pg.Client; readonly target: pg.Client }) => Promise<void>,
): Promise<void> {
  const [s, t] = await openAll([connect(source), connect(target)], (c) => closeClient(c.client));
  try {
    await writableSession(s!.client);
    for (const { client } of [s!, t!]) await client.query(`SELECT pg_catalog.set_config('lock_timeout', $1, false)`, [WAIT_FOR_USERS]);
    await work({ source: s!.client, target: t!.client });
  } finally {
    await Promise.all([closeClient(s!.client), closeClient(t!.client)]);
  }
}
