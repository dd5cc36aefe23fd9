import type pg from 'pg';
import { quoteIdent } from '../catalog/index.js';

/**
 * `--freeze read-only`: the database's own `default_transaction_read_only` turned on, so every
 * session that starts from now on can only read. Sessions already open keep the setting they
 * started with: the drain ends them.
 */
export async function previousReadOnly(source: pg.Client): Promise<string | null> {
  const { rows } = await source.query<{ value: string | null }>(
    `SELECT (SELECT substr(c, length('default_transaction_read_only=') + 1) FROM unnest(s.setconfig) AS c
              WHERE c LIKE 'default\\_transaction\\_read\\_only=%') AS value
       FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
      WHERE d.datname = current_database() AND s.setrole = 0`,
  );
  return rows[0]?.value ?? null;
}

export async function freezeReadOnly(source: pg.Client, database: string): Promise<void> {
  await source.query(`ALTER DATABASE ${quoteIdent(database)} SET default_transaction_read_only = on`);
}

/** Puts back exactly what the database said before: its own value, or none. */
export async function liftReadOnly(source: pg.Client, database: string, previous: string | null): Promise<void> {
  if (previous === null) await source.query(`ALTER DATABASE ${quoteIdent(database)} RESET default_transaction_read_only`);
  else await source.query(`ALTER DATABASE ${quoteIdent(database)} SET default_transaction_read_only = ${quoteLiteral(previous)}`);
}

/**
 * A frozen source opens new sessions read-only; this one must lift the freeze and drop the
 * slot and publication, so it takes its own read-write default.
 */
export async function writableSession(source: pg.Client): Promise<void> {
  await source.query('SET default_transaction_read_only = off');
}

function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
