import type pg from 'pg';
import { quoteIdent, quoteLiteral } from '../plumbing/index.js';

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

/**
 * What would write through a read-only freeze, found before freezing: a role-level setting
 * (ALTER ROLE … [IN DATABASE …] SET default_transaction_read_only = off) overrides the
 * database's, so that role's new sessions open writable; and logical replication workers
 * applying a subscription into this database are not client sessions, so the drain leaves them.
 */
export async function readOnlyEscapes(source: pg.Client): Promise<string[]> {
  const { rows } = await source.query<{ escape: string }>(
    `SELECT format('role %I sets default_transaction_read_only = %s%s (fix: ALTER ROLE %I%s RESET default_transaction_read_only)',
                   r.rolname, substr(c, length('default_transaction_read_only=') + 1),
                   CASE WHEN s.setdatabase = 0 THEN '' ELSE ' in this database' END,
                   r.rolname, CASE WHEN s.setdatabase = 0 THEN '' ELSE format(' IN DATABASE %I', current_database()) END) AS escape
       FROM pg_db_role_setting s
       JOIN pg_roles r ON r.oid = s.setrole
       CROSS JOIN LATERAL unnest(s.setconfig) AS c
      WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
        AND c LIKE 'default\\_transaction\\_read\\_only=%'
        AND lower(substr(c, length('default_transaction_read_only=') + 1)) IN ('off', 'false', 'no', '0', 'of', 'f', 'n')
     UNION ALL
     SELECT format('a logical replication worker (pid %s) applies a subscription into this database (fix: ALTER SUBSCRIPTION … DISABLE for the cut-over)', pid)
       FROM pg_stat_activity
      WHERE datname = current_database() AND backend_type LIKE 'logical replication%worker'`,
  );
  return rows.map((r) => r.escape);
}
