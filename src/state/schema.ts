import type pg from 'pg';

/**
 * The `pgferry` schema itself: created by the first step that records anything, removed by
 * cleanup, and the schema copy's record of the objects it already created (so a rerun skips them).
 */
export async function ensureStateSchema(client: pg.Client): Promise<void> {
  await client.query(`
    CREATE SCHEMA IF NOT EXISTS pgferry;
    COMMENT ON SCHEMA pgferry IS 'state of a pgferry migration into this database; pgferry cleanup removes it';
    CREATE TABLE IF NOT EXISTS pgferry.schema_objects (
      identity   text PRIMARY KEY,
      section    text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    );`);
}

export async function appliedSchemaObjects(client: pg.Client): Promise<Set<string>> {
  const { rows } = await client.query<{ identity: string }>('SELECT identity FROM pgferry.schema_objects');
  return new Set(rows.map((r) => r.identity));
}

export async function recordSchemaObject(client: pg.Client, identity: string, section: string): Promise<void> {
  await client.query(`INSERT INTO pgferry.schema_objects (identity, section) VALUES ($1, $2) ON CONFLICT (identity) DO NOTHING`, [
    identity,
    section,
  ]);
}

/** Whether this database holds pgferry's state at all. */
export async function stateSchemaExists(client: pg.Client): Promise<boolean> {
  const { rows } = await client.query<{ present: boolean }>(`SELECT to_regnamespace('pgferry') IS NOT NULL AS present`);
  return rows[0]?.present === true;
}

/** Removes every trace of a migration's state from this database. */
export async function dropStateSchema(client: pg.Client): Promise<void> {
  await client.query('DROP SCHEMA IF EXISTS pgferry CASCADE');
}

/**
 * Whether this database's `pgferry` schema records nothing: no migration state, no clone, no
 * cut-over; what a cut-over killed while it prepared the way back leaves on the old primary.
 */
export async function stateSchemaIsEmpty(client: pg.Client): Promise<boolean> {
  if (!(await stateSchemaExists(client))) return false;
  const { rows } = await client.query<{ empty: boolean }>(
    `SELECT NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = 'pgferry' AND c.relkind = 'r' AND c.relname NOT IN ('sync', 'sync_tables', 'changed_rows'))
            AND (to_regclass('pgferry.sync') IS NULL OR NOT EXISTS (SELECT 1 FROM pgferry.sync)) AS empty`,
  );
  return rows[0]?.empty === true;
}
