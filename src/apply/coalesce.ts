import { UNCHANGED, type ColumnValue, type Tuple } from '../replication/index.js';
import { OrderedApplySignal, type RowChange } from './changes.js';
import type { TargetTable } from './target-tables.js';

/**
 * The net effect of many changes to one keyed row: whether the row was there before the
 * batch (its first change was an UPDATE or DELETE) and what is left of it after.
 * A value of UNCHANGED means "keep what the target has" (an unchanged TOASTed column).
 */
interface KeyedState {
  readonly before: 'present' | 'absent';
  /** The key's values, in the order of the identity's columns. */
  readonly key: Tuple;
  after: 'deleted' | Tuple;
}

/** Rows changed in one table by part of a batch, reduced to as few set-based statements as possible. */
export interface TableWork {
  readonly table: TargetTable;
  /** Keyed tables: key values of rows that were there and are gone. */
  readonly deletes: Tuple[];
  /** Keyed tables: rows that were there and changed, grouped by which columns they set. */
  readonly updates: Map<string, Tuple[]>;
  /** Rows that were not there before (keyed), or inserts in order (keyless, see `ordered`). */
  readonly inserts: Tuple[];
  /** Keyless tables: every change in source order (inserts are grouped when written). */
  readonly ordered: RowChange[];
}

function keyValues(table: TargetTable, row: Tuple): Tuple {
  return table.identity.kind === 'key' ? table.identity.columns.map((i) => row[i]!) : [];
}

/**
 * One string per key, for the map of states: each part preceded by its length, so no value,
 * whatever characters it holds, can make two different keys print the same. NULL (a unique
 * key may hold it) is a part of its own.
 */
function keyText(table: TargetTable, row: Tuple): string {
  if (table.identity.kind !== 'key') return '';
  let text = '';
  for (const index of table.identity.columns) {
    const value = row[index]!;
    if (value === UNCHANGED) throw new OrderedApplySignal(`a key column of ${table.display} was sent as unchanged`);
    text += value === null ? 'N' : `${value.length}:${value}`;
  }
  return text;
}

/** The columns an update writes: the ones not marked UNCHANGED. */
export function setMask(row: Tuple): string {
  if (!row.includes(UNCHANGED)) return '1'.repeat(row.length);
  let mask = '';
  for (const value of row) mask += value === UNCHANGED ? '0' : '1';
  return mask;
}

function fillUnchanged(newRow: Tuple, from: Tuple | undefined): Tuple {
  if (!from || !newRow.includes(UNCHANGED)) return newRow;
  return newRow.map((value, i): ColumnValue => (value === UNCHANGED ? from[i]! : value));
}

/**
 * Collects the row changes of a batch, table by table. Keyed tables keep one state per key,
 * so a row updated a thousand times in a batch is written once; tables identified by the
 * whole row (REPLICA IDENTITY FULL) keep their changes in order.
 */
export class Coalescer {
  private readonly keyed = new Map<number, Map<string, KeyedState>>();
  private readonly keyless = new Map<number, RowChange[]>();
  private readonly tables = new Map<number, TargetTable>();
  /** Changes taken in since the last drain. */
  size = 0;

  add(change: RowChange): void {
    const table = change.table;
    this.size++;
    this.tables.set(table.relationId, table);
    if (table.identity.kind !== 'key') {
      if (change.kind !== 'insert' && table.identity.kind === 'none') {
        throw new OrderedApplySignal(`${change.kind} on ${table.display}, which has no replica identity`);
      }
      let list = this.keyless.get(table.relationId);
      if (!list) this.keyless.set(table.relationId, (list = []));
      list.push(change);
      return;
    }
    let states = this.keyed.get(table.relationId);
    if (!states) this.keyed.set(table.relationId, (states = new Map()));
    switch (change.kind) {
      case 'insert': {
        const key = keyText(table, change.newRow);
        const state = states.get(key);
        if (state) state.after = change.newRow;
        else states.set(key, { before: 'absent', key: keyValues(table, change.newRow), after: change.newRow });
        return;
      }
      case 'delete': {
        const key = keyText(table, change.oldRow);
        const state = states.get(key);
        if (state) state.after = 'deleted';
        else states.set(key, { before: 'present', key: keyValues(table, change.oldRow), after: 'deleted' });
        return;
      }
      case 'update': {
        const newKey = keyText(table, change.newRow);
        const oldKey = change.oldRow ? keyText(table, change.oldRow) : newKey;
        const old = states.get(oldKey);
        const merged = fillUnchanged(change.newRow, old && old.after !== 'deleted' ? old.after : undefined);
        if (oldKey === newKey) {
          if (old) old.after = merged;
          else states.set(newKey, { before: 'present', key: keyValues(table, change.newRow), after: merged });
          return;
        }
        // The key changed: the old row goes, a row with the new key takes its values. Values
        // left unchanged would have to come from the target's old row: that needs the exact order.
        if (merged.includes(UNCHANGED))
          throw new OrderedApplySignal(`a key change in ${table.display} kept TOASTed values the batch does not hold`);
        if (old) old.after = 'deleted';
        else states.set(oldKey, { before: 'present', key: keyValues(table, change.oldRow!), after: 'deleted' });
        const target = states.get(newKey);
        if (target) target.after = merged;
        else states.set(newKey, { before: 'absent', key: keyValues(table, change.newRow), after: merged });
        return;
      }
    }
  }

  /** Whether changes of this relation are waiting to be written. */
  holds(relationId: number): boolean {
    return this.tables.has(relationId);
  }

  /** The work collected so far, table by table; the coalescer starts empty again. */
  drain(): TableWork[] {
    const work: TableWork[] = [];
    for (const [relationId, states] of this.keyed) {
      const table = this.tables.get(relationId)!;
      const item: TableWork = { table, deletes: [], updates: new Map(), inserts: [], ordered: [] };
      for (const state of states.values()) {
        if (state.after === 'deleted') {
          if (state.before === 'present') item.deletes.push(state.key);
          continue;
        }
        if (state.before === 'absent') {
          if (state.after.includes(UNCHANGED)) throw new OrderedApplySignal(`a new row of ${table.display} has unchanged TOASTed values`);
          item.inserts.push(state.after);
          continue;
        }
        const mask = setMask(state.after);
        let group = item.updates.get(mask);
        if (!group) item.updates.set(mask, (group = []));
        group.push(state.after);
      }
      work.push(item);
    }
    for (const [relationId, ordered] of this.keyless) {
      work.push({ table: this.tables.get(relationId)!, deletes: [], updates: new Map(), inserts: [], ordered });
    }
    this.keyed.clear();
    this.keyless.clear();
    this.tables.clear();
    this.size = 0;
    return work;
  }
}
