import { LOOKUP_INDEX_SQL } from '../catalog/index.js';
import type { SideSession } from './session.js';
import type { TableToVerify } from './tables.js';

/** An index whose first column can narrow a keyless table's rows to those with given values in it. */
export interface LeadingIndex {
  readonly index: string;
  /** The column it leads with, by name. */
  readonly column: string;
}

/**
 * The indexes of each keyless table (by its display name) that a lookup of rows by their values
 * can use (catalog's LOOKUP_INDEX_SQL: valid, not partial, btree or hash, led by a plain column
 * under its type's default operator class and its own collation), so `column = ANY (values)` is
 * answered from the index. A
 * keyless table often has one that is not unique; without any, a lookup by value reads the table.
 */
export async function leadingIndexes(side: SideSession, tables: readonly TableToVerify[]): Promise<Map<string, LeadingIndex[]>> {
  const keyless = tables.filter((t) => t.key.length === 0);
  const out = new Map<string, LeadingIndex[]>();
  if (keyless.length === 0) return out;
  const rows = await side.query(
    'reading the indexes of the tables without a key',
    `SELECT u.s AS schema, u.t AS table, a.attname AS column, ic.relname AS index
       FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.text[]), pg_catalog.unnest($2::pg_catalog.text[])) AS u(s, t)
       JOIN pg_catalog.pg_namespace n ON n.nspname = u.s
       JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = u.t
       JOIN pg_catalog.pg_index i ON i.indrelid = c.oid
       JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
       JOIN pg_catalog.pg_am am ON am.oid = ic.relam
       JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
       JOIN pg_catalog.pg_opclass oc ON oc.oid = i.indclass[0]
      WHERE ${LOOKUP_INDEX_SQL}
      ORDER BY u.s, u.t, i.indisunique DESC, ic.relname`,
    [keyless.map((t) => t.schema), keyless.map((t) => t.table)],
  );
  const byName = new Map(keyless.map((t) => [`${t.schema}\u0000${t.table}`, t.name]));
  for (const r of rows) {
    const name = byName.get(`${r.schema}\u0000${r.table}`);
    if (name === undefined) continue;
    const list = out.get(name) ?? [];
    list.push({ index: r.index!, column: r.column! });
    out.set(name, list);
  }
  return out;
}
