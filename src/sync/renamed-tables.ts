import type pg from 'pg';
import { renamePlannedTable, storedPlan } from '../state/index.js';

/**
 * A table deferred because it was renamed on the source since the copy's plan: once the stream
 * has renamed it on the target too, the plan copies it under its new name.
 */
export async function followRenamedTables(source: pg.Client, target: pg.Client, deferred: readonly string[]): Promise<void> {
  const plan = await storedPlan(target);
  const oids = [...new Set(plan.filter((u) => deferred.includes(u.table) && u.oid !== null).map((u) => u.oid!))];
  if (oids.length === 0) return;
  const { rows } = await source.query<{ oid: string; table: string }>(
    `SELECT c.oid::int8::text AS oid, format('%I.%I', n.nspname, c.relname) AS table
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY ($1::oid[])`,
    [oids],
  );
  for (const row of rows) {
    const before = plan.find((u) => u.oid === Number(row.oid))!.table;
    if (before === row.table) continue;
    const onTarget = await target.query(`SELECT 1 FROM pg_class WHERE oid = pg_catalog.to_regclass($1)`, [row.table]);
    if (onTarget.rowCount !== 0) await renamePlannedTable(target, Number(row.oid), row.table);
  }
}
