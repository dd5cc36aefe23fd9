import { displayName, listTables, quoteIdent, quoteQualified, type Scope } from '../catalog/index.js';
import type { SideSession } from './session.js';

export interface VerifyColumn {
  /** As in the catalog; the name used in reports. */
  readonly name: string;
  /** Quoted for SQL. */
  readonly sql: string;
  /** format_type on the source, to cast key bounds sent as text. */
  readonly type: string;
}

/** A source table to compare, with what the comparison needs to know about it. */
export interface TableToVerify {
  readonly name: string;
  readonly schema: string;
  readonly table: string;
  /** Quoted "schema"."name". */
  readonly sql: string;
  readonly bytes: number;
  readonly estimatedRows: number;
  readonly readable: boolean;
  /** In the source's column order: the order row text is built in on both sides. */
  readonly columns: readonly VerifyColumn[];
  /** The primary key's columns, else the replica identity index's; empty for a keyless table. */
  readonly key: readonly VerifyColumn[];
}

/**
 * Plain tables and partitions in scope on the source (partitioned parents hold no rows of
 * their own; materialized views and foreign tables are not data pgferry moves row by row).
 */
export async function readTablesToVerify(source: SideSession, scope: Scope): Promise<{ tables: TableToVerify[]; all: Array<{ schema: string; name: string }> }> {
  const listed = await listTables(source.client, scope);
  const plain = listed.filter((t) => t.kind === 'table');
  if (plain.length === 0) return { tables: [], all: listed };
  const rows = await source.query(
    'reading the columns and keys of the tables',
    `SELECT a.attrelid::text AS relid, a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
            k.pos::text AS key_position
       FROM pg_catalog.pg_attribute a
       LEFT JOIN LATERAL (
              SELECT i.indkey FROM pg_catalog.pg_index i
               WHERE i.indrelid = a.attrelid AND (i.indisprimary OR i.indisreplident) AND i.indisvalid AND i.indexprs IS NULL
               ORDER BY i.indisprimary DESC LIMIT 1) i ON true
       LEFT JOIN LATERAL (
              SELECT o.pos FROM pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY AS o(att, pos) WHERE o.att = a.attnum) k ON true
      WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attrelid, a.attnum`,
    [plain.map((t) => t.oid)],
  );
  const columns = new Map<string, Array<VerifyColumn & { keyPosition: number | null }>>();
  for (const r of rows) {
    const list = columns.get(r.relid!) ?? [];
    list.push({ name: r.name!, sql: quoteIdent(r.name!), type: r.type!, keyPosition: r.key_position === null ? null : Number(r.key_position) });
    columns.set(r.relid!, list);
  }
  const tables = plain.map((t) => {
    const cols = columns.get(String(t.oid)) ?? [];
    const key = cols.filter((c) => c.keyPosition !== null).sort((a, b) => a.keyPosition! - b.keyPosition!);
    const strip = ({ name, sql, type }: VerifyColumn) => ({ name, sql, type });
    return {
      name: displayName(t),
      schema: t.schema,
      table: t.name,
      sql: quoteQualified(t),
      bytes: t.bytes,
      estimatedRows: t.estimatedRows,
      readable: t.readable,
      columns: cols.map(strip),
      key: key.map(strip),
    };
  });
  return { tables, all: listed };
}

/** Which of the source's tables exist on the target, as "schema.name" keys. */
export async function tableNamesOnTarget(target: SideSession, scope: Scope): Promise<Set<string>> {
  const listed = await listTables(target.client, scope);
  return new Set(listed.map((t) => `${t.schema}\u0000${t.name}`));
}

