import { displayName, listTables, type Scope } from '../catalog/index.js';
import { typedHashOf, type TypedHash } from './hash-sql.js';
import type { SideSession } from './session.js';
import { quoteIdent, quoteQualified } from '../plumbing/index.js';

export interface VerifyColumn {
  /** As in the catalog; the name used in reports. */
  readonly name: string;
  /** Quoted for SQL. */
  readonly sql: string;
  /** format_type on the source, to cast key bounds sent as text. */
  readonly type: string;
  /**
   * How the row hash takes this column when not by its text output (see hash-sql.ts): from the
   * source's type, and null after all when the target's column is of another type.
   */
  readonly hashed: TypedHash | null;
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
export async function readTablesToVerify(
  source: SideSession,
  scope: Scope,
): Promise<{ tables: TableToVerify[]; all: Array<{ schema: string; name: string }> }> {
  const listed = await listTables(source.client, scope);
  const plain = listed.filter((t) => t.kind === 'table');
  if (plain.length === 0) return { tables: [], all: listed };
  const rows = await source.query(
    'reading the columns and keys of the tables',
    `SELECT a.attrelid::text AS relid, a.attname AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
            a.atttypid::text AS type_oid, a.atttypmod::text AS typmod,
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
    list.push({
      name: r.name!,
      sql: quoteIdent(r.name!),
      type: r.type!,
      hashed: typedHashOf(Number(r.type_oid), Number(r.typmod)),
      keyPosition: r.key_position === null ? null : Number(r.key_position),
    });
    columns.set(r.relid!, list);
  }
  const tables = plain.map((t) => {
    const cols = columns.get(String(t.oid)) ?? [];
    const key = cols.filter((c) => c.keyPosition !== null).sort((a, b) => a.keyPosition! - b.keyPosition!);
    const strip = ({ name, sql, type, hashed }: VerifyColumn) => ({ name, sql, type, hashed });
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

/**
 * The tables with each column's typed hash kept only where the target's column has the same
 * type (by oid: the typed types are built in, with the same oids everywhere), and for char(n)
 * the same n. Both sides must hash a column the same way, and a value of another type may print
 * alike yet hash apart; char(4) and char(6) hash 'ab' alike but print it apart.
 */
export async function matchTargetTypes(target: SideSession, tables: readonly TableToVerify[]): Promise<TableToVerify[]> {
  const typed = tables.filter((t) => t.columns.some((c) => c.hashed !== null));
  if (typed.length === 0) return [...tables];
  const rows = await target.query(
    'reading the column types of the tables',
    `SELECT w.i::text AS i, a.attname AS name, a.atttypid::text AS type_oid, a.atttypmod::text AS typmod,
            pg_catalog.format_type(a.atttypid, a.atttypmod) AS type
       FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) WITH ORDINALITY AS w(s, t, i)
       JOIN pg_catalog.pg_namespace n ON n.nspname = w.s
       JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = w.t
       JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped`,
    [typed.map((t) => t.schema), typed.map((t) => t.table)],
  );
  const onTarget = new Map<string, { hashed: TypedHash | null; type: string }>();
  for (const r of rows)
    onTarget.set(`${Number(r.i) - 1}\u0000${r.name}`, { hashed: typedHashOf(Number(r.type_oid), Number(r.typmod)), type: r.type! });
  const index = new Map(typed.map((t, i) => [t, i]));
  return tables.map((t) => {
    const i = index.get(t);
    if (i === undefined) return t;
    const sameHash = (c: VerifyColumn) => {
      const there = onTarget.get(`${i}\u0000${c.name}`);
      return there !== undefined && there.hashed === c.hashed && (c.hashed !== 'bpchar' || there.type === c.type);
    };
    const keep = (c: VerifyColumn): VerifyColumn => (c.hashed !== null && !sameHash(c) ? { ...c, hashed: null } : c);
    return { ...t, columns: t.columns.map(keep), key: t.key.map(keep) };
  });
}
