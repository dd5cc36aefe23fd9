import { UNCHANGED, type Tuple } from '../replication/index.js';
import type { ChangedRow } from '../state/index.js';
import type { RowChange } from './changes.js';
import type { TargetTable } from './target-tables.js';

/**
 * Whether the apply records the rows it writes, and for which cut-over's request. Sync's poll
 * switches it (sync/streaming.ts); each batch reads it once, when it begins, so a batch
 * records all of its rows or none.
 */
export class ChangeRecording {
  private request: { readonly id: string; acknowledged: boolean } | undefined;

  /** Record for request `id` from the next batch on; `acknowledged`: its starting position is already written. */
  follow(id: string, acknowledged: boolean): void {
    if (this.request?.id === id) return;
    this.request = { id, acknowledged };
  }

  stop(): void {
    this.request = undefined;
  }

  /** The request the next batch records for, if any. */
  get current(): { readonly id: string; readonly acknowledged: boolean } | undefined {
    return this.request === undefined ? undefined : { ...this.request };
  }

  /** A batch wrote the starting position for `id` and committed. */
  acknowledged(id: string): void {
    if (this.request?.id === id) this.request.acknowledged = true;
  }
}

/**
 * The rows one batch changed, as a cut-over compares them (state/recording.ts): keys of keyed
 * tables (old and new key of an update that moves a row), whole tables where no key names the
 * rows, and everything after a schema change. Each once, however often the batch changed it.
 */
export class ChangedRows {
  private readonly rows = new Map<string, ChangedRow>();
  /** Per table, the key columns' names (the stream's replica identity). */
  private readonly keyNames = new Map<number, string[]>();

  constructor(private readonly columnNames: (table: TargetTable) => readonly string[]) {}

  change(change: RowChange): void {
    const { table } = change;
    if (table.identity.kind !== 'key') {
      // No key: the rows are named by their whole image, before and after (REPLICA IDENTITY FULL sends both).
      const old = change.kind === 'insert' ? undefined : change.oldRow;
      if (change.kind !== 'delete') this.image(table, change.newRow, old);
      if (old !== undefined) this.image(table, old, undefined);
      return;
    }
    if (change.kind !== 'delete') this.key(table, change.newRow);
    if (change.kind !== 'insert' && change.oldRow !== undefined) this.key(table, change.oldRow);
  }

  /** A whole row as the stream sent it; a value left out (unchanged TOAST) is the old image's, else the table is compared whole. */
  private image(table: TargetTable, row: Tuple, old: Tuple | undefined): void {
    const values: Array<string | null> = [];
    for (const [i, value] of row.entries()) {
      const known = value === UNCHANGED ? old?.[i] : value;
      if (known === undefined || known === UNCHANGED) return this.table(table.display, 'a row was sent without all its values');
      values.push(known);
    }
    this.rows.set(`row\u0000${table.display}\u0000${JSON.stringify(values)}`, {
      table: table.display,
      kind: 'row',
      columns: this.columnNames(table),
      key: values,
    });
  }

  table(display: string, reason: string): void {
    this.rows.set(`table\u0000${display}`, { table: display, kind: 'table', reason });
  }

  everything(reason: string): void {
    this.rows.set('everything', { kind: 'everything', reason });
  }

  private key(table: TargetTable, row: Tuple): void {
    if (table.identity.kind !== 'key') return;
    const key: Array<string | null> = [];
    for (const index of table.identity.columns) {
      const value = row[index];
      // A key value not sent names no row: the table is compared whole.
      if (value === undefined || value === UNCHANGED) return this.table(table.display, 'a key value was not sent');
      key.push(value);
    }
    let names = this.keyNames.get(table.relationId);
    if (!names) {
      const all = this.columnNames(table);
      names = table.identity.columns.map((i) => all[i]!);
      this.keyNames.set(table.relationId, names);
    }
    this.rows.set(`key\u0000${table.display}\u0000${JSON.stringify(key)}`, { table: table.display, kind: 'key', columns: names, key });
  }

  get size(): number {
    return this.rows.size;
  }

  list(): ChangedRow[] {
    return [...this.rows.values()];
  }
}
