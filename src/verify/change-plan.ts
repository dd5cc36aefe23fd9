/**
 * Pure decisions of a check of changed rows (check-changes.ts): which tables are compared by
 * the keys sync recorded, and which whole. No SQL here: the unit tests drive it directly.
 */
import type { ChangedRow } from '../state/index.js';
import type { KeyValues } from './ranges.js';
import type { LeadingIndex } from './keyless-indexes.js';
import type { TableToVerify } from './tables.js';

/** How one table is checked. */
export type TablePlan =
  /** Only these rows: `columns` are the table's columns the keys are of, in the keys' order. */
  | { readonly kind: 'keys'; readonly table: TableToVerify; readonly columns: readonly number[]; readonly keys: readonly KeyValues[] }
  /**
   * A table no key names rows of: how many copies each side holds of each row image recorded
   * (`columns`: the table's columns the images are of, in their order; a value may be NULL).
   */
  | {
      readonly kind: 'images';
      readonly table: TableToVerify;
      readonly columns: readonly number[];
      readonly images: ReadonlyArray<ReadonlyArray<string | null>>;
    }
  /** Every row, for the reason given. */
  | { readonly kind: 'whole'; readonly table: TableToVerify; readonly reason: string }
  /** Recorded, but not among the tables in scope on the source: it cannot be checked. */
  | { readonly kind: 'unknown'; readonly name: string };

/**
 * One plan per changed table. A table is compared whole when sync marked it so (a TRUNCATE, no
 * key, a definition changed), when a schema change marked everything, or when its recorded
 * keys don't fit what the source's table has now (a key column gone, a NULL, keys recorded
 * under two definitions): comparing it whole is exact whatever happened to it.
 */
export function planChangeCheck(changed: readonly ChangedRow[], tables: readonly TableToVerify[]): TablePlan[] {
  const byName = new Map(tables.map((t) => [t.name, t]));
  if (changed.some((c) => c.kind === 'everything')) {
    const reason = changed.find((c) => c.kind === 'everything')!.reason;
    return tables.map((table) => ({ kind: 'whole', table, reason }));
  }
  const perTable = new Map<
    string,
    {
      whole: string | null;
      kind: 'key' | 'row' | null;
      columns: readonly string[] | null;
      mixed: boolean;
      keys: Map<string, KeyValues>;
      images: Map<string, ReadonlyArray<string | null>>;
    }
  >();
  for (const c of changed) {
    if (c.kind === 'everything') continue;
    let entry = perTable.get(c.table);
    if (!entry)
      perTable.set(c.table, (entry = { whole: null, kind: null, columns: null, mixed: false, keys: new Map(), images: new Map() }));
    if (c.kind === 'table') {
      entry.whole ??= c.reason;
      continue;
    }
    if (entry.columns !== null && (entry.kind !== c.kind || JSON.stringify(entry.columns) !== JSON.stringify(c.columns)))
      entry.mixed = true;
    entry.columns ??= c.columns;
    entry.kind ??= c.kind;
    if (c.kind === 'row') {
      entry.images.set(JSON.stringify(c.key), c.key);
      continue;
    }
    const key = c.key.flatMap((v) => (v === null ? [] : [v]));
    if (key.length < c.key.length) entry.whole ??= 'a recorded key holds NULL';
    else entry.keys.set(JSON.stringify(key), key);
  }
  const plans: TablePlan[] = [];
  for (const [name, entry] of [...perTable].sort((a, b) => a[0].localeCompare(b[0]))) {
    const table = byName.get(name);
    if (!table) {
      plans.push({ kind: 'unknown', name });
      continue;
    }
    if (entry.whole !== null) {
      plans.push({ kind: 'whole', table, reason: entry.whole });
      continue;
    }
    if (entry.mixed) {
      plans.push({ kind: 'whole', table, reason: 'keys were recorded under two definitions of the table' });
      continue;
    }
    const columns = (entry.columns ?? []).map((n) => table.columns.findIndex((c) => c.name === n));
    if (columns.some((i) => i < 0)) {
      plans.push({
        kind: 'whole',
        table,
        reason:
          entry.kind === 'row'
            ? 'a column of the recorded rows is not in the table'
            : 'a key column of the recorded keys is not in the table',
      });
      continue;
    }
    if (entry.kind === 'row') plans.push({ kind: 'images', table, columns, images: [...entry.images.values()] });
    else plans.push({ kind: 'keys', table, columns, keys: [...entry.keys.values()] });
  }
  return plans;
}

/** How many rows the plans name by key, and which tables they compare whole. */
export function describePlans(plans: readonly TablePlan[]): { keys: number; whole: Array<{ table: string; reason: string }> } {
  let keys = 0;
  const whole: Array<{ table: string; reason: string }> = [];
  for (const plan of plans) {
    if (plan.kind === 'keys') keys += plan.keys.length;
    if (plan.kind === 'images') keys += plan.images.length;
    if (plan.kind === 'whole') whole.push({ table: plan.table.name, reason: plan.reason });
  }
  return { keys, whole };
}

/** How one side counts a keyless table's changed rows: the columns it narrows by, and the index that makes that a lookup. */
export interface SideNarrowing {
  /** The table's columns (positions) whose values among the images' pick the rows counted. */
  readonly columns: readonly number[];
  /** The index of this side the narrowing reads through, or null: this side reads the table through. */
  readonly index: string | null;
}

/**
 * The image columns each side narrows a keyless table's rows by: every column its own index
 * leads with (an equality, and a row that prints as an image's value equals that value cast
 * back, so no row that matches is left out: only the hash decides), and, where the server hashes
 * a constant list of values (PostgreSQL 14 and later, `hashedLists`), every typed column (its
 * values are equal exactly when they print alike): a look-up in a hashed list per row is cheaper
 * than hashing the row. Older servers search such a list value by value, which costs rows × images:
 * there only an index narrows. Each side decides alone, so no side's narrowing depends on an
 * index only the other has (a join against the values, planned on a table whose size the
 * planner misjudges, was seen to cost seconds where a scan costs milliseconds).
 */
export function narrowImages(
  plan: Extract<TablePlan, { kind: 'images' }>,
  indexes: { readonly source: readonly LeadingIndex[] | undefined; readonly target: readonly LeadingIndex[] | undefined },
  hashedLists: { readonly source: boolean; readonly target: boolean },
): { readonly source: SideNarrowing; readonly target: SideNarrowing } {
  const names = new Set(plan.columns.map((i) => plan.table.columns[i]!.name));
  const side = (list: readonly LeadingIndex[] | undefined, hashed: boolean): SideNarrowing => {
    const usable = (list ?? []).filter((l) => names.has(l.column));
    const indexed = new Set(usable.map((l) => l.column));
    const columns = plan.columns.filter((i) => {
      const column = plan.table.columns[i]!;
      return indexed.has(column.name) || (hashed && column.hashed !== null);
    });
    return { columns, index: usable[0]?.index ?? null };
  };
  return { source: side(indexes.source, hashedLists.source), target: side(indexes.target, hashedLists.target) };
}
