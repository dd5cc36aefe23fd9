import type pg from 'pg';
import { quoteIdent } from '../plumbing/index.js';
import { notOwnIndexSql, SYSTEM_SCHEMA_SQL, type QualifiedName, type Scope } from './scope.js';

export type TableKind = 'table' | 'partitioned table' | 'materialized view' | 'foreign table';
export type ReplicaIdentity = 'default' | 'full' | 'index' | 'nothing';

/** One relation holding (or routing) user rows on the source, with what the pipeline needs to plan for it. */
export interface TableInfo extends QualifiedName {
  readonly oid: number;
  readonly kind: TableKind;
  readonly unlogged: boolean;
  readonly isPartition: boolean;
  readonly replicaIdentity: ReplicaIdentity;
  readonly hasPrimaryKey: boolean;
  /** The index named by REPLICA IDENTITY USING INDEX still exists and is valid. */
  readonly hasIdentityIndex: boolean;
  /** The current role can read it (SELECT on the table and USAGE on its schema). */
  readonly readable: boolean;
  /** The current role owns it or is a member of its owner (needed to publish it). */
  readonly owned: boolean;
  readonly owner: string;
  /**
   * Row-level security would hide rows of it from the current role: it is enabled, the role
   * neither bypasses it (superuser, BYPASSRLS) nor owns the table, or the owner is forced
   * under it too (FORCE ROW LEVEL SECURITY).
   */
  readonly rowSecurityHidesRows: boolean;
  /** Row-level security is enabled on it (the schema copy enables it on the target too). */
  readonly rowSecurity: boolean;
  readonly bytes: number;
  readonly estimatedRows: number;
  /**
   * An index of its own (not one a cut-over made for its check) answers a lookup of rows by the
   * values of its first column (LOOKUP_INDEX_SQL): what the cut-over's check of a keyless table's
   * changed rows narrows by; without one, the cut-over builds one for it.
   */
  readonly hasLookupIndex: boolean;
}

/**
 * An index `i` (its access method `am`, first operator class `oc`, first column `a`) that answers
 * `column = ANY (values)` for its first column: valid, not partial, btree or hash, led by a plain
 * column under its type's default operator class and its own collation. Written once: check's
 * findings and the cut-over's check (verify/keyless-indexes.ts) must agree on it.
 */
export const LOOKUP_INDEX_SQL = `i.indisvalid AND i.indisready AND i.indpred IS NULL AND i.indkey[0] > 0
        AND am.amname IN ('btree', 'hash') AND oc.opcdefault AND i.indcollation[0] = a.attcollation`;

const KINDS: Record<string, TableKind> = { r: 'table', p: 'partitioned table', m: 'materialized view', f: 'foreign table' };
const IDENTITIES: Record<string, ReplicaIdentity> = { d: 'default', f: 'full', i: 'index', n: 'nothing' };

/**
 * Every table, partitioned table, materialized view and foreign table outside the system
 * schemas, minus those an extension creates (CREATE EXTENSION makes them on the target).
 */
export async function listTables(client: pg.Client, scope: Scope): Promise<TableInfo[]> {
  const { rows } = await client.query<{
    oid: number;
    schema: string;
    name: string;
    relkind: string;
    relpersistence: string;
    relreplident: string;
    relispartition: boolean;
    has_primary_key: boolean;
    has_identity_index: boolean;
    readable: boolean;
    owned: boolean;
    owner: string;
    hidden_by_rls: boolean;
    relrowsecurity: boolean;
    bytes: string;
    estimated_rows: number;
    has_lookup_index: boolean;
  }>(`
    SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind,
           c.relpersistence::text AS relpersistence, c.relreplident::text AS relreplident, c.relispartition,
           -- A deferrable key can't identify rows for logical replication; PostgreSQL ignores it.
           EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary AND i.indimmediate AND i.indisvalid) AS has_primary_key,
           EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident AND i.indisvalid) AS has_identity_index,
           has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT') AS readable,
           pg_has_role(c.relowner, 'USAGE') AS owned, pg_get_userbyid(c.relowner) AS owner,
           c.relrowsecurity,
           c.relrowsecurity AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user)
             AND (c.relforcerowsecurity OR NOT pg_has_role(c.relowner, 'USAGE')) AS hidden_by_rls,
           CASE WHEN c.relkind IN ('r', 'm') THEN pg_total_relation_size(c.oid) ELSE 0 END::text AS bytes,
           GREATEST(c.reltuples, 0)::float8 AS estimated_rows,
           EXISTS (SELECT 1 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
                     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] JOIN pg_opclass oc ON oc.oid = i.indclass[0]
                    WHERE i.indrelid = c.oid AND ${notOwnIndexSql('ic.relname')} AND ${LOOKUP_INDEX_SQL}) AS has_lookup_index
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'm', 'f')
       AND ${SYSTEM_SCHEMA_SQL}
       AND NOT EXISTS (SELECT 1 FROM pg_depend d
                        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
     ORDER BY n.nspname, c.relname`);
  return rows
    .map((r) => ({
      oid: r.oid,
      schema: r.schema,
      name: r.name,
      kind: KINDS[r.relkind]!,
      unlogged: r.relpersistence === 'u',
      isPartition: r.relispartition,
      replicaIdentity: IDENTITIES[r.relreplident]!,
      hasPrimaryKey: r.has_primary_key,
      hasIdentityIndex: r.has_identity_index,
      readable: r.readable,
      owned: r.owned,
      owner: r.owner,
      rowSecurityHidesRows: r.hidden_by_rls,
      rowSecurity: r.relrowsecurity,
      bytes: Number(r.bytes),
      estimatedRows: r.estimated_rows,
      hasLookupIndex: r.has_lookup_index,
    }))
    .filter((t) => scope.includes(t));
}

/** schema.name as people write it, quoting only where SQL would need it. */
export function displayName(table: QualifiedName): string {
  const show = (part: string) => (/^[a-z_][a-z0-9_$]*$/.test(part) ? part : quoteIdent(part));
  return `${show(table.schema)}.${show(table.name)}`;
}
