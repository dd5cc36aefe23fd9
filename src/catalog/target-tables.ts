import type pg from 'pg';
import { SYSTEM_SCHEMA_SQL, type QualifiedName } from './scope.js';
import { quoteQualified } from '../plumbing/index.js';

/**
 * Which of `tables` already exist on the target and hold rows, and which exist but the
 * session may not read: check reports both, clone refuses to copy over either.
 */
export async function tablesOnTarget(
  client: pg.Client,
  sourceTables: readonly QualifiedName[],
): Promise<{ nonEmptyTables: QualifiedName[]; unreadableTables: QualifiedName[] }> {
  const { rows } = await client.query<{ schema: string; name: string; readable: boolean }>(`
    SELECT n.nspname AS schema, c.relname AS name,
           has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT') AS readable
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND ${SYSTEM_SCHEMA_SQL}`);
  const onTarget = new Map(rows.map((r) => [`${r.schema}\u0000${r.name}`, r.readable]));
  const nonEmptyTables: QualifiedName[] = [];
  const unreadableTables: QualifiedName[] = [];
  for (const table of sourceTables) {
    const readable = onTarget.get(`${table.schema}\u0000${table.name}`);
    if (readable === undefined) continue;
    if (!readable) {
      unreadableTables.push(table);
      continue;
    }
    // ONLY: inheritance children and partitions are in the list themselves.
    const result = await client.query(`SELECT 1 FROM ONLY ${quoteQualified(table)} LIMIT 1`);
    if (result.rowCount !== null && result.rowCount > 0) nonEmptyTables.push(table);
  }
  return { nonEmptyTables, unreadableTables };
}
