/**
 * The copy plan: which units of work there are and in which order. A unit is a whole table,
 * or one range of a big table, so one huge table can keep every job busy. Ranges are TID
 * ranges where the server scans them directly (PostgreSQL 14+), key ranges on an older
 * server, and a table with neither is copied whole. The largest work starts first, so the
 * last job to finish is a small one.
 */
export type SplitBy =
  | { readonly kind: 'pages'; readonly pages: number }
  | { readonly kind: 'key'; readonly column: string; readonly boundaries: readonly string[] }
  | { readonly kind: 'none' };

export interface TableToCopy {
  /** "schema"."name", ready for SQL. */
  readonly qname: string;
  /** Heap and TOAST bytes: what the copy has to move. */
  readonly bytes: number;
  readonly splitBy: SplitBy;
}

export interface CopyUnit {
  readonly table: string;
  /** Stable name of the unit within its table: "whole", "pages 0-12799", "key 3 of 8". */
  readonly unit: string;
  /** WHERE clause selecting the unit's rows, or null for the whole table. */
  readonly predicate: string | null;
  readonly estimatedBytes: number;
  /** Only a whole-table unit may TRUNCATE and COPY FREEZE. */
  readonly whole: boolean;
  /**
   * The user's rows of an extension's configuration table (SourceTable.extensionRows): they
   * replace those rows on the target (deleted by the same filter first), never the table.
   */
  readonly rowFilter?: string;
}

/** The one unit of an extension's configuration table. */
export const EXTENSION_ROWS_UNIT = 'extension rows';

export function extensionRowsUnit(table: string, filter: string, bytes: number): CopyUnit {
  return { table, unit: EXTENSION_ROWS_UNIT, predicate: null, estimatedBytes: bytes, whole: false, rowFilter: filter };
}

/** At most this many ranges per table: past it, per-unit overhead outweighs balance. */
export const MAX_PARTS = 256;

/** How many ranges a table of `bytes` gets when tables above `threshold` are split. */
export function partsFor(bytes: number, threshold: number): number {
  if (threshold <= 0 || bytes <= threshold) return 1;
  return Math.min(MAX_PARTS, Math.ceil(bytes / threshold));
}

export function planUnits(tables: readonly TableToCopy[], splitThreshold: number): CopyUnit[] {
  const units = tables.flatMap((t) => unitsOf(t, splitThreshold));
  // Largest first; ties by table and unit name so the plan is the same on every run.
  return units.sort((a, b) => b.estimatedBytes - a.estimatedBytes || a.table.localeCompare(b.table) || a.unit.localeCompare(b.unit));
}

function unitsOf(t: TableToCopy, threshold: number): CopyUnit[] {
  const wanted = partsFor(t.bytes, threshold);
  const whole: CopyUnit = { table: t.qname, unit: 'whole', predicate: null, estimatedBytes: t.bytes, whole: true };
  if (wanted === 1 || t.splitBy.kind === 'none') return [whole];
  if (t.splitBy.kind === 'pages') {
    const pages = Math.max(1, t.splitBy.pages);
    const parts = Math.min(wanted, pages);
    if (parts === 1) return [whole];
    const step = Math.ceil(pages / parts);
    const units: CopyUnit[] = [];
    for (let start = 0; start < pages; start += step) {
      const end = start + step;
      const isLast = end >= pages;
      // The last range is open-ended: a table that grew since planning is still covered.
      const predicate = `${start === 0 ? '' : `ctid >= '(${start},0)'::tid`}${start !== 0 && !isLast ? ' AND ' : ''}${isLast ? '' : `ctid < '(${end},0)'::tid`}`;
      units.push({
        table: t.qname,
        unit: isLast ? `pages ${start}-` : `pages ${start}-${end - 1}`,
        predicate: predicate === '' ? null : predicate,
        estimatedBytes: (t.bytes * (Math.min(end, pages) - start)) / pages,
        whole: false,
      });
      if (isLast) break;
    }
    return units;
  }
  const bounds = [...new Set(t.splitBy.boundaries)];
  if (bounds.length === 0) return [whole];
  const column = t.splitBy.column;
  const parts = bounds.length + 1;
  return Array.from({ length: parts }, (_, i) => {
    const lower = i === 0 ? '' : `${column} >= ${bounds[i - 1]}`;
    const upper = i === parts - 1 ? '' : `${column} < ${bounds[i]}`;
    return {
      table: t.qname,
      unit: `key ${i + 1} of ${parts}`,
      predicate: [lower, upper].filter((p) => p !== '').join(' AND '),
      estimatedBytes: t.bytes / parts,
      whole: false,
    };
  });
}

/** One bound: ctid against a page, or the key column (as format('%I') writes it) against an integer. */
const RANGE_PART = /^(ctid|"(?:[^"]|"")+"|[a-z_][a-z0-9_$]*) (>=|<) (?:'\((\d+),0\)'::tid|(-?\d+))$/;

/**
 * A range read back from the target's state, before it runs as SQL on the source: only the
 * two shapes planUnits writes (TID bounds, or integer bounds on the table's own key column)
 * are accepted, rebuilt from their numbers; anything else is refused. Whoever can write to the
 * target's pgferry schema must not be able to run SQL on the source.
 */
export function checkedPredicate(stored: string | null, intKey: string | undefined): string | null {
  if (stored === null) return null;
  const parts = stored.split(' AND ');
  if (parts.length > 2) return refuse(stored);
  const rebuilt = parts.map((part) => {
    const match = RANGE_PART.exec(part);
    if (!match) return refuse(stored);
    const [, column, operator, page, value] = match;
    if (column === 'ctid' && page !== undefined) return `ctid ${operator} '(${Number(page)},0)'::tid`;
    if (column !== 'ctid' && value !== undefined && column === intKey) return `${column} ${operator} ${BigInt(value)}`;
    return refuse(stored);
  });
  const predicate = rebuilt.join(' AND ');
  return predicate === stored ? predicate : refuse(stored);
}

function refuse(stored: string): never {
  throw new Error(`the stored copy plan holds a range pgferry never writes: ${JSON.stringify(stored.slice(0, 200))}`);
}
