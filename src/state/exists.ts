import type pg from 'pg';

/** The state tables pgferry creates in its schema on the target, each by the step that needs it. */
export type StateTable = 'clone' | 'copy_units' | 'copy_snapshots' | 'sync' | 'sync_tables' | 'cutover' | 'changed_rows';

/** Whether a state table exists yet: readers answer "nothing recorded" before its step first ran. */
export async function stateTableExists(client: pg.Client, table: StateTable): Promise<boolean> {
  const { rows } = await client.query<{ present: boolean }>(`SELECT pg_catalog.to_regclass($1) IS NOT NULL AS present`, [
    `pgferry.${table}`,
  ]);
  return rows[0]?.present === true;
}

/**
 * Columns later pgferry versions added to a state table: `add` gives a state made by an earlier
 * version its missing ones (run by the writers), `selectList` reads them as NULL where they are
 * still missing (for read-only readers: status, cleanup, a cut-over reading an older state).
 */
export class LaterColumns {
  constructor(
    private readonly table: StateTable,
    private readonly columns: ReadonlyArray<readonly [name: string, type: string]>,
  ) {}

  /** `ALTER TABLE … ADD COLUMN IF NOT EXISTS` for each, as one script. */
  get add(): string {
    return this.columns.map(([name, type]) => `ALTER TABLE pgferry.${this.table} ADD COLUMN IF NOT EXISTS ${name} ${type};`).join('\n    ');
  }

  /** The columns as a select list: present ones by name, missing ones as typed NULLs of that name. */
  async selectList(client: pg.Client): Promise<string> {
    const { rows } = await client.query<{ name: string }>(
      `SELECT attname::text AS name FROM pg_attribute WHERE attrelid = $1::regclass AND attname = ANY ($2) AND NOT attisdropped`,
      [`pgferry.${this.table}`, this.columns.map(([name]) => name)],
    );
    const have = new Set(rows.map((r) => r.name));
    return this.columns.map(([name, type]) => (have.has(name) ? name : `NULL::${type} AS ${name}`)).join(', ');
  }
}
