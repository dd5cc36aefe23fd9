import type pg from 'pg';
import { REPLICATION_EXTENSIONS_SQL, SYSTEM_SCHEMA_SQL, serverMajor, type QualifiedName, type Scope } from '../catalog/index.js';
import type { SplitBy } from './plan.js';

export interface CopyColumn {
  /** Quoted name. */
  readonly name: string;
  readonly type: string;
  /** Binary COPY carries this type's values without OIDs of user types (arrays and composites of those do). */
  readonly binarySafe: boolean;
}

export interface SourceTable extends QualifiedName {
  /** The source's OID: a table renamed since the plan is still recognised by it. */
  readonly oid: number;
  readonly qname: string;
  readonly bytes: number;
  readonly pages: number;
  readonly columns: readonly CopyColumn[];
  /** A single-column integer primary key, for key ranges on servers without TID range scans. */
  readonly intKey: string | undefined;
  /**
   * An extension's configuration table (pg_extension_config_dump): CREATE EXTENSION on the
   * target makes it with the rows the extension ships; only the rows this filter selects (the
   * source's extcondition, a WHERE clause, or '' for every row) are the user's, and copied.
   */
  readonly extensionRows?: { readonly extension: string; readonly filter: string };
}

/**
 * The OID alias types (regproc, regprocedure, regoper, regoperator, regclass, regtype,
 * regconfig, regdictionary, regnamespace, regrole, regcollation): in binary they are the
 * source's OIDs, which name other objects or none on the target; in text they are names
 * (qualified, under the copy sessions' empty search_path), which the target resolves again.
 */
const OID_ALIAS_TYPES = '24, 2202, 2203, 2204, 2205, 2206, 3734, 3769, 4089, 4096, 4191';

/** Tables with rows to copy (plain tables and partitions; partitioned parents hold none). */
export async function readSourceTables(client: pg.Client, scope: Scope): Promise<SourceTable[]> {
  const generated = (await serverMajor(client)) >= 12 ? `a.attgenerated = ''` : 'true';
  const { rows } = await client.query<{
    oid: number;
    schema: string;
    name: string;
    qname: string;
    bytes: string;
    pages: string;
    int_key: string | null;
  }>(`
    SELECT c.oid, n.nspname AS schema, c.relname AS name, format('%I.%I', n.nspname, c.relname) AS qname,
           pg_table_size(c.oid)::text AS bytes,
           (pg_relation_size(c.oid) / current_setting('block_size')::int)::text AS pages,
           (SELECT format('%I', a.attname) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
             WHERE i.indrelid = c.oid AND i.indisprimary AND i.indnatts = 1 AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)) AS int_key
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND ${SYSTEM_SCHEMA_SQL}
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`);
  const tables = rows.filter((r) => scope.includes(r));
  if (tables.length === 0) return [];
  const columns = await client.query<{ relid: number; name: string; type: string; binary_safe: boolean }>(
    `SELECT a.attrelid AS relid, format('%I', a.attname) AS name, format_type(a.atttypid, a.atttypmod) AS type,
            CASE WHEN bt.typsend = 0 OR bt.typtype = 'c' OR bt.oid IN (${OID_ALIAS_TYPES}) THEN false
                 WHEN bt.typcategory = 'A' AND bt.typelem <> 0 AND (et.oid >= 16384 OR et.typtype = 'c' OR et.oid IN (${OID_ALIAS_TYPES})) THEN false
                 ELSE true END AS binary_safe
       FROM pg_attribute a
       JOIN pg_type t ON t.oid = a.atttypid
       JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
       LEFT JOIN pg_type et ON et.oid = bt.typelem
      WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped AND ${generated}
      ORDER BY a.attrelid, a.attnum`,
    [tables.map((t) => t.oid)],
  );
  const byTable = new Map<number, CopyColumn[]>();
  for (const c of columns.rows) {
    const list = byTable.get(c.relid) ?? [];
    list.push({ name: c.name, type: c.type, binarySafe: c.binary_safe });
    byTable.set(c.relid, list);
  }
  return tables.map((t) => ({
    oid: t.oid,
    schema: t.schema,
    name: t.name,
    qname: t.qname,
    bytes: Number(t.bytes),
    pages: Number(t.pages),
    columns: byTable.get(t.oid) ?? [],
    intKey: t.int_key ?? undefined,
  }));
}

/**
 * The configuration tables of the source's extensions, in scope: the rows users add to them
 * (PostGIS's spatial_ref_sys SRIDs, pg_partman's part_config, pg_cron's jobs) are user data that
 * pg_dump carries and CREATE EXTENSION does not. The filter is the source's own catalog text,
 * as pg_dump uses it.
 */
export async function readExtensionConfigTables(client: pg.Client, scope: Scope): Promise<SourceTable[]> {
  const { rows } = await client.query<{
    oid: number;
    extension: string;
    schema: string;
    name: string;
    qname: string;
    bytes: string;
    pages: string;
    filter: string;
  }>(`
    SELECT c.oid, e.extname AS extension, n.nspname AS schema, c.relname AS name, format('%I.%I', n.nspname, c.relname) AS qname,
           pg_table_size(c.oid)::text AS bytes, (pg_relation_size(c.oid) / current_setting('block_size')::int)::text AS pages,
           coalesce(x.condition, '') AS filter
      FROM pg_extension e
     CROSS JOIN LATERAL unnest(e.extconfig, e.extcondition) AS x(relid, condition)
      JOIN pg_class c ON c.oid = x.relid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND e.extname NOT IN (${REPLICATION_EXTENSIONS_SQL})
     ORDER BY 4`);
  const tables = rows.filter((r) => scope.includes(r));
  if (tables.length === 0) return [];
  const generated = (await serverMajor(client)) >= 12 ? `a.attgenerated = ''` : 'true';
  const columns = await client.query<{ qname: string; name: string; type: string }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS qname, format('%I', a.attname) AS name, format_type(a.atttypid, a.atttypmod) AS type
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE format('%I.%I', n.nspname, c.relname) = ANY ($1) AND a.attnum > 0 AND NOT a.attisdropped AND ${generated}
      ORDER BY a.attrelid, a.attnum`,
    [tables.map((t) => t.qname)],
  );
  return tables.map((t) => ({
    oid: t.oid,
    schema: t.schema,
    name: t.name,
    qname: t.qname,
    bytes: Number(t.bytes),
    pages: Number(t.pages),
    // Text COPY: the rows are few, and their types are the extension's own.
    columns: columns.rows.filter((c) => c.qname === t.qname).map((c) => ({ name: c.name, type: c.type, binarySafe: false })),
    intKey: undefined,
    extensionRows: { extension: t.extension, filter: t.filter },
  }));
}

/** Every partition with its partitioned parent (sub-partitions included, one level per row). */
export async function readPartitionParents(client: pg.Client): Promise<Array<{ child: QualifiedName; parent: QualifiedName }>> {
  const { rows } = await client.query<{ cs: string; cn: string; ps: string; pn: string }>(`
    SELECT cn.nspname AS cs, c.relname AS cn, pn.nspname AS ps, p.relname AS pn
      FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
      JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
     WHERE p.relkind = 'p'`);
  return rows.map((r) => ({ child: { schema: r.cs, name: r.cn }, parent: { schema: r.ps, name: r.pn } }));
}

/** How a table can be split on this server: TID ranges on 14+, else ranges of its integer key. */
export async function splitFor(client: pg.Client, table: SourceTable, parts: number, major: number, keyRanges = false): Promise<SplitBy> {
  if (parts <= 1) return { kind: 'none' };
  if (keyRanges && table.intKey) return keyQuantileRanges(client, table, table.intKey, parts);
  if (major >= 14) return { kind: 'pages', pages: table.pages };
  if (!table.intKey) return { kind: 'none' };
  return keyQuantileRanges(client, table, table.intKey, parts);
}

/** Pages a key split reads to place its boundaries: a few MB, whatever the table's size. */
const SAMPLE_PAGES = 1000;

/**
 * Key ranges holding about equal numbers of rows: the boundaries are quantiles of the key in a
 * sample of the table's pages (TABLESAMPLE SYSTEM, so a few MB read whatever its size, and the
 * whole table when it is small). Equal widths between the lowest and highest key would not do:
 * keys are often skewed (a block of ids moved far up, a sequence that jumped, time-based ids),
 * and one range would hold nearly every row. The first and last ranges are open, so a key the
 * sample missed still falls in one. A copy a stream completes splits by key where it can
 * because a row stays in its key range whatever page an update moves it to, so a resumed copy
 * keeps the ranges it finished (copy-positions.ts).
 */
async function keyQuantileRanges(client: pg.Client, table: SourceTable, key: string, parts: number): Promise<SplitBy> {
  const percent = table.pages <= SAMPLE_PAGES ? 100 : (100 * SAMPLE_PAGES) / table.pages;
  const fractions = Array.from({ length: parts - 1 }, (_, i) => (i + 1) / parts);
  const { rows } = await client.query<{ bounds: string[] | null }>(
    `SELECT (percentile_disc($1::float8[]) WITHIN GROUP (ORDER BY ${key}))::text[] AS bounds
       FROM ONLY ${table.qname} TABLESAMPLE SYSTEM ($2)`,
    [fractions, percent],
  );
  const bounds = [...new Set((rows[0]?.bounds ?? []).filter((b): b is string => b !== null))];
  return bounds.length === 0 ? { kind: 'none' } : { kind: 'key', column: key, boundaries: bounds };
}

/**
 * The target's tables among `qnames` with their column types, to choose binary COPY only where
 * both sides agree. A table without columns (they can hold rows) is there with none.
 */
export async function readTargetColumns(client: pg.Client, qnames: readonly string[]): Promise<Map<string, Map<string, string>>> {
  const { rows } = await client.query<{ qname: string; name: string | null; type: string | null }>(
    `SELECT format('%I.%I', n.nspname, c.relname) AS qname, CASE WHEN a.attname IS NOT NULL THEN format('%I', a.attname) END AS name,
            format_type(a.atttypid, a.atttypmod) AS type
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE format('%I.%I', n.nspname, c.relname) = ANY($1)`,
    [qnames],
  );
  const byTable = new Map<string, Map<string, string>>();
  for (const r of rows) {
    const columns = byTable.get(r.qname) ?? new Map<string, string>();
    if (r.name !== null && r.type !== null) columns.set(r.name, r.type);
    byTable.set(r.qname, columns);
  }
  return byTable;
}
