import type { Lsn } from '../replication/index.js';

/**
 * A table copied at a snapshot of its own already holds every change of the transactions that
 * committed before that snapshot's position; the stream applies its changes only from there
 * on. A transaction is in a snapshot exactly when its commit record starts before the
 * snapshot's position (the slot that made the snapshot decodes from there), so a change
 * counts when its transaction's commit LSN is at or past the table's position. Tables not
 * listed (made on the source after the copy's plan) count from the start.
 */
export class CopyPositions {
  /** Past the highest position, every change counts: the check is one comparison. */
  private readonly until: Lsn;

  private readonly byRelation: ReadonlyMap<number, Lsn>;
  private readonly byName: ReadonlyMap<string, Lsn>;

  constructor(tables: ReadonlyArray<{ readonly oid: number; readonly table: string; readonly position: Lsn }>) {
    this.byRelation = new Map(tables.map((t) => [t.oid, t.position]));
    this.byName = new Map(tables.map((t) => [t.table, t.position]));
    let highest = 0n;
    for (const { position } of tables) if (position > highest) highest = position;
    this.until = highest;
  }

  /** Whether a change of relation `relationId` in the transaction committed at `commitLsn` is applied. */
  counts(relationId: number, commitLsn: Lsn): boolean {
    if (commitLsn >= this.until) return true;
    const position = this.byRelation.get(relationId);
    return position === undefined || commitLsn >= position;
  }

  /** The same, for a table named as format('%I.%I') writes it (a PostgreSQL 10 source's TRUNCATE payloads). */
  countsTable(table: string, commitLsn: Lsn): boolean {
    if (commitLsn >= this.until) return true;
    const position = this.byName.get(table);
    return position === undefined || commitLsn >= position;
  }

  /** The stream's position from which the target is consistent as one database: past every table's own. */
  get consistentFrom(): Lsn {
    return this.until;
  }

  static readonly none = new CopyPositions([]);
}
