import { diffMultisets, type HashCount } from './differences.js';
import { rowHashSql, type HashFunction } from './hash-sql.js';
import { both, type Lane, type SideSession, type TextRow } from './session.js';
import type { TableToVerify } from './tables.js';

/**
 * Rows per hash bucket aimed at when a keyless table differs: its rows are grouped by the low
 * bits of their hash, and only the buckets that differ are read hash by hash.
 */
const ROWS_PER_BUCKET = 256;
const MAX_BUCKET_BITS = 16;

export interface KeylessOutcome {
  readonly sourceRows: number;
  readonly targetRows: number;
  /** Row hashes held a different number of times; at most maxDifferences copies' worth. */
  readonly differing: HashCount[];
  readonly truncated: boolean;
}

const hashOf = (table: TableToVerify, fn: HashFunction) => rowHashSql(table.columns, fn);

/**
 * A keyless table is a multiset of rows: two sides are equal when every row hash occurs as
 * often on one as on the other. Whole-table count and sum first (one scan each), then, only
 * when they differ, per-bucket counts and sums, then per-hash counts in the differing buckets.
 */
export async function compareKeyless(
  lane: Lane,
  table: TableToVerify,
  hash: HashFunction,
  maxDifferences: number,
): Promise<KeylessOutcome> {
  const h = hashOf(table, hash);
  const [s, t] = await both(lane, async (side) => {
    const [row] = await side.arrays(`hashing ${table.name}`, `SELECT count(*), coalesce(sum(${h}), 0) FROM ONLY ${table.sql}`);
    return { rows: Number(row![0]), sum: row![1]! };
  });
  if (s.rows === t.rows && s.sum === t.sum) return { sourceRows: s.rows, targetRows: t.rows, differing: [], truncated: false };

  const bits = bucketBits(Math.max(s.rows, t.rows));
  const mask = (1 << bits) - 1;
  let buckets: number[] | null = null;
  if (bits > 0) {
    const [sb, tb] = await both(lane, async (side) => {
      const rows = await side.arrays(
        `hashing ${table.name} by bucket`,
        `SELECT (h & ${mask})::int, count(*), sum(h) FROM (SELECT ${h} AS h FROM ONLY ${table.sql}) x GROUP BY 1`,
      );
      return new Map(rows.map((r) => [Number(r[0]), `${r[1]}/${r[2]}`]));
    });
    buckets = [...new Set([...sb.keys(), ...tb.keys()])].filter((b) => sb.get(b) !== tb.get(b));
  }
  // The differing buckets are read a few at a time, and no more once enough rows are named:
  // a big table that differs everywhere would otherwise bring every row's hash into memory.
  const reads = buckets === null ? [null] : chunks(buckets, BUCKETS_PER_READ).map((some) => ({ mask, buckets: some }));
  const kept: HashCount[] = [];
  let copies = 0;
  let truncated = false;
  for (const [index, only] of reads.entries()) {
    const [sc, tc] = await both(lane, (side) => hashCounts(side, table, hash, only));
    const differing = diffMultisets(sc, tc);
    for (const d of differing) {
      if (copies >= maxDifferences) break;
      kept.push(d);
      copies += Math.abs(d.source - d.target);
    }
    if (copies >= maxDifferences) {
      truncated = copies > maxDifferences || kept.length < differing.length || index < reads.length - 1;
      break;
    }
  }
  return { sourceRows: s.rows, targetRows: t.rows, differing: kept, truncated };
}

/** Differing buckets read per query: about this many times ROWS_PER_BUCKET hashes per side. */
const BUCKETS_PER_READ = 32;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function bucketBits(rows: number): number {
  if (rows <= 4 * ROWS_PER_BUCKET) return 0;
  return Math.min(MAX_BUCKET_BITS, Math.ceil(Math.log2(rows / ROWS_PER_BUCKET)));
}

/** How many copies of each row hash one side holds, in the given buckets or for the given hashes. */
export async function hashCounts(
  side: SideSession,
  table: TableToVerify,
  hash: HashFunction,
  only: { mask: number; buckets: number[] } | { hashes: string[] } | null,
): Promise<Map<string, number>> {
  const filter = only === null ? 'true' : 'hashes' in only ? `h = ANY ($1::bigint[])` : `(h & ${only.mask})::int = ANY ($1::int[])`;
  const values = only === null ? [] : ['hashes' in only ? only.hashes : only.buckets];
  const rows = await side.arrays(
    `counting the rows of ${table.name} by hash`,
    `SELECT h, count(*) FROM (SELECT ${hashOf(table, hash)} AS h FROM ONLY ${table.sql}) x WHERE ${filter} GROUP BY h`,
    values,
  );
  return new Map(rows.map((r) => [r[0]!, Number(r[1])]));
}

/** One row's column values for each of these hashes, to name the rows of a keyless table. */
export async function rowsByHash(
  side: SideSession,
  table: TableToVerify,
  hash: HashFunction,
  hashes: readonly string[],
): Promise<Map<string, TextRow>> {
  if (hashes.length === 0) return new Map();
  const rows = await side.arrays(
    `reading rows of ${table.name} by hash`,
    // The hash's alias can't clash with a user column: no sane table has a column of that name.
    `SELECT DISTINCT ON ("pgferry: h") * FROM (SELECT ${[`${hashOf(table, hash)} AS "pgferry: h"`, ...table.columns.map((c) => c.sql)].join(', ')} FROM ONLY ${table.sql}) x
      WHERE "pgferry: h" = ANY ($1::bigint[])`,
    [hashes],
  );
  return new Map(
    rows.map((r) => {
      const values: TextRow = {};
      table.columns.forEach((c, i) => (values[c.name] = r[1 + i] ?? null));
      return [r[0]!, values];
    }),
  );
}
