import type pg from 'pg';

/** The state tables pgferry creates in its schema on the target, each by the step that needs it. */
export type StateTable = 'clone' | 'copy_units' | 'sync' | 'sync_tables' | 'cutover';

/** Whether a state table exists yet: readers answer "nothing recorded" before its step first ran. */
export async function stateTableExists(client: pg.Client, table: StateTable): Promise<boolean> {
  const { rows } = await client.query<{ present: boolean }>(`SELECT pg_catalog.to_regclass($1) IS NOT NULL AS present`, [
    `pgferry.${table}`,
  ]);
  return rows[0]?.present === true;
}
