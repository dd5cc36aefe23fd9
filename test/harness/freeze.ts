import type { Cluster } from './cluster.js';
import { errorCode } from './errors.js';
import { isDisconnect } from './load.js';

/**
 * A write from a new session, as the application's next connection would make it: refused by a
 * read-only freeze (SQLSTATE 25006), accepted once it is lifted. The probe row is removed again.
 */
export async function newSessionCanWrite(cluster: Cluster, db: string, table: string, column = 'payload'): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    try {
      await cluster.sql(db, `INSERT INTO ${table} (${column}) VALUES ('probe')`);
      await cluster.sql(db, `DELETE FROM ${table} WHERE ${column} = 'probe'`);
      return true;
    } catch (error) {
      if (errorCode(error) === '25006') return false;
      // A probe that connected just before the freeze is one of the sessions its drain ends (the
      // cut-over reaches it within milliseconds of the catch-up now): ask again from a new session.
      if (isDisconnect(error) && attempt < 3) continue;
      throw error;
    }
  }
}

/** The database's own read-only default, as a read-only freeze sets it: looked at without writing. */
export async function readOnlyDefault(cluster: Cluster, db: string): Promise<boolean> {
  const { rows } = await cluster.sql(
    'postgres',
    `SELECT EXISTS (SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase CROSS JOIN unnest(s.setconfig) c
                     WHERE d.datname = $1 AND s.setrole = 0 AND c = 'default_transaction_read_only=on') AS frozen`,
    [db],
  );
  return (rows[0] as { frozen: boolean }).frozen;
}
