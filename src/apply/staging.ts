import type pg from 'pg';
import type { TargetTable } from './target-tables.js';

/** The staging table's extra column: which statement of the batch a row is for. */
export const GROUP_COLUMN = '"pgferry.group"';

/**
 * Temporary tables on the apply session that take a batch's updated and deleted rows by COPY,
 * one per target table, typed like its columns. The set-based UPDATE and DELETE then join them
 * to the target: cheaper on both sides than text arrays through unnest (no array literals to
 * build, escape and parse). ON COMMIT DELETE ROWS empties them with each batch's commit.
 *
 * A table created inside a batch that then rolls back is gone, so it is known only once its
 * batch commits. Without the TEMPORARY privilege on the target database there are no staging
 * tables and the apply uses the unnest statements.
 */
export class StagingTables {
  private readonly committed = new Map<TargetTable, string>();
  private readonly created = new Map<TargetTable, string>();
  /**
   * Next free group number per staging table in the open transaction. A batch written in
   * several parts copies each part under new group numbers instead of emptying the table:
   * a TRUNCATE inside the transaction would make a new file each time.
   */
  private readonly nextGroup = new Map<string, number>();
  private counter = 0;
  private allowed: boolean | undefined;

  constructor(private readonly client: pg.Client) {}

  /**
   * The staging table of `table`, created on first use, and the first of `groups` group
   * numbers reserved for the caller; undefined without the privilege. Call inside the batch
   * transaction.
   */
  async for(table: TargetTable, groups: number): Promise<{ readonly name: string; readonly firstGroup: number } | undefined> {
    let name = this.committed.get(table) ?? this.created.get(table);
    if (name === undefined) {
      this.allowed ??= (
        await this.client.query<{ allowed: boolean }>(`SELECT has_database_privilege(current_database(), 'TEMPORARY') AS allowed`)
      ).rows[0]!.allowed;
      if (!this.allowed) return undefined;
      name = `pg_temp.pgferry_stage_${++this.counter}`;
      await this.client.query(
        `CREATE TEMPORARY TABLE ${name} ON COMMIT DELETE ROWS AS SELECT 0 AS ${GROUP_COLUMN}, ${table.columns.join(', ')} FROM ${table.qname} WITH NO DATA`,
      );
      this.created.set(table, name);
    }
    const firstGroup = this.nextGroup.get(name) ?? 0;
    this.nextGroup.set(name, firstGroup + groups);
    return { name, firstGroup };
  }

  /** The batch committed: the tables it created stay, and commit emptied every one. */
  afterCommit(): void {
    for (const [table, name] of this.created) this.committed.set(table, name);
    this.created.clear();
    this.nextGroup.clear();
  }

  /** The batch rolled back: the tables it created are gone, the others are empty again. */
  afterRollback(): void {
    this.created.clear();
    this.nextGroup.clear();
  }
}
