/**
 * Key ranges: the unit a keyed table is hashed in. A range is [lo, hi) in the key's order,
 * either end open; a plan's ranges cover every possible key, so a row the target has and the
 * source doesn't still falls into one of them. Bounds come from the source (or from the side
 * holding more rows of a range being split) and the very same bounds are sent to both sides.
 */

/** A key's column values as the server's text output, in key order. */
export type KeyValues = readonly string[];

export interface KeyRange {
  /** Inclusive; null: from the start. */
  readonly lo: KeyValues | null;
  /** Exclusive; null: to the end. */
  readonly hi: KeyValues | null;
}

export const WHOLE: KeyRange = { lo: null, hi: null };

/** Most ranges a table is first split into, however big it is. */
export const MAX_INITIAL_RANGES = 256;
/** Sampled keys per planned range: enough for ranges of even size, few enough to read fast. */
export const SAMPLES_PER_RANGE = 100;

/**
 * How many ranges a table starts as. A table hashed whole is one sequential scan the server
 * may run in parallel, the cheapest way to say "identical"; only big tables are cut up, so a
 * difference is first narrowed to a range of about `rowsPerRange` rows.
 */
export function initialRangeCount(estimatedRows: number, rowsPerRange: number): number {
  if (!(estimatedRows > rowsPerRange)) return 1;
  return Math.min(MAX_INITIAL_RANGES, Math.ceil(estimatedRows / rowsPerRange));
}

/** TABLESAMPLE SYSTEM percentage that yields about SAMPLES_PER_RANGE keys per range. */
export function samplePercent(estimatedRows: number, ranges: number): number {
  if (estimatedRows <= 0) return 100;
  const percent = (100 * ranges * SAMPLES_PER_RANGE) / estimatedRows;
  return Math.min(100, Math.max(0.0001, percent));
}

/**
 * Cuts keys sorted in the key's order into `parts` groups and returns the first key of each
 * group after the first: the inner bounds. Repeated keys (a multi-column key sampled on its
 * first column, say) would make empty ranges, so a bound equal to the previous one is dropped.
 */
export function pickBounds(sortedKeys: readonly KeyValues[], parts: number): KeyValues[] {
  if (parts <= 1 || sortedKeys.length === 0) return [];
  const bounds: KeyValues[] = [];
  const step = sortedKeys.length / parts;
  for (let i = 1; i < parts; i++) {
    const key = sortedKeys[Math.floor(i * step)];
    if (key === undefined) break;
    const previous = bounds[bounds.length - 1];
    if (previous !== undefined && sameKey(previous, key)) continue;
    bounds.push(key);
  }
  return bounds;
}

/** [lo, b1), [b1, b2), …, [bn, hi): the ranges `bounds` cut `range` into. */
export function splitRange(range: KeyRange, bounds: readonly KeyValues[]): KeyRange[] {
  if (bounds.length === 0) return [range];
  const ranges: KeyRange[] = [];
  let lo = range.lo;
  for (const bound of bounds) {
    ranges.push({ lo, hi: bound });
    lo = bound;
  }
  ranges.push({ lo, hi: range.hi });
  return ranges;
}

/** Every n-th row of a range is a bound when a range of `rows` rows is split into `fanout` parts. */
export function splitStep(rows: number, fanout: number): number {
  return Math.max(1, Math.ceil(rows / fanout));
}

export function sameKey(a: KeyValues, b: KeyValues): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** The SQL type a key column's bound is cast to, and how the column is written. */
export interface KeyColumnSql {
  readonly sql: string;
  readonly type: string;
}

/**
 * The WHERE clause selecting `range`, with its bounds as parameters from `$firstParam` on.
 * A row comparison, (a, b) >= ($1, $2), which a btree index on (a, b) answers directly.
 */
export function rangePredicate(key: readonly KeyColumnSql[], range: KeyRange, firstParam = 1): { sql: string; values: string[] } {
  const parts: string[] = [];
  const values: string[] = [];
  const columns = key.length === 1 ? key[0]!.sql : `(${key.map((k) => k.sql).join(', ')})`;
  const tuple = () => {
    const params = key.map((k) => `$${firstParam + values.length + key.indexOf(k)}::${k.type}`);
    return key.length === 1 ? params[0]! : `(${params.join(', ')})`;
  };
  if (range.lo) {
    parts.push(`${columns} >= ${tuple()}`);
    values.push(...range.lo);
  }
  if (range.hi) {
    parts.push(`${columns} < ${tuple()}`);
    values.push(...range.hi);
  }
  return { sql: parts.length === 0 ? 'true' : parts.join(' AND '), values };
}

/** For logs and errors: [1, 500) */
export function describeRange(range: KeyRange): string {
  const show = (k: KeyValues | null) => (k === null ? '' : k.length === 1 ? k[0]! : `(${k.join(', ')})`);
  return `[${show(range.lo)}, ${show(range.hi)})`;
}
