/**
 * The queries a keyed table is compared with, each run on one side. Every one reads the table
 * with ONLY: partitions and inheritance children are compared as tables of their own.
 */
import type { KeyedRow } from './differences.js';
import { rowHashSql, type HashFunction } from './hash-sql.js';
import { rangePredicate, describeRange, type KeyRange, type KeyValues } from './ranges.js';
import type { SideSession, TextRow } from './session.js';
import type { TableToVerify } from './tables.js';

export interface Fingerprint {
  readonly rows: number;
  /** sum of the row hashes, as numeric text; '0' for no rows. */
  readonly sum: string;
}

export function sameFingerprint(a: Fingerprint, b: Fingerprint): boolean {
  return a.rows === b.rows && a.sum === b.sum;
}

const keyList = (table: TableToVerify) => table.key.map((k) => k.sql).join(', ');

/** count(*) and sum(row hash) of one range, computed by the server. */
export async function fingerprint(side: SideSession, table: TableToVerify, fn: HashFunction, range: KeyRange): Promise<Fingerprint> {
  const where = rangePredicate(table.key, range);
  const [row] = await side.arrays(
    `hashing ${table.name} ${describeRange(range)}`,
    `SELECT count(*), coalesce(sum(${rowHashSql(table.columns, fn)}), 0) FROM ONLY ${table.sql} WHERE ${where.sql}`,
    where.values,
  );
  return { rows: Number(row![0]), sum: row![1]! };
}

/** Keys from a sample of the table's pages, in key order, to plan the first ranges. */
export async function sampleKeys(side: SideSession, table: TableToVerify, percent: number): Promise<KeyValues[]> {
  const rows = await side.arrays(
    `sampling the keys of ${table.name}`,
    `SELECT ${keyList(table)} FROM ONLY ${table.sql} TABLESAMPLE SYSTEM (${percent.toFixed(6)}) ORDER BY ${keyList(table)}`,
  );
  return rows.map(asKey);
}

/** Every `step`-th key of a range after its first, in key order: where to cut it. */
export async function rangeBounds(side: SideSession, table: TableToVerify, range: KeyRange, step: number): Promise<KeyValues[]> {
  const where = rangePredicate(table.key, range);
  const n = where.values.length + 1;
  const rows = await side.arrays(
    `splitting ${table.name} ${describeRange(range)}`,
    `SELECT ${table.key.map((_, i) => `k${i}`).join(', ')}
       FROM (SELECT ${table.key.map((k, i) => `${k.sql} AS k${i}`).join(', ')}, row_number() OVER (ORDER BY ${keyList(table)}) AS rn
               FROM ONLY ${table.sql} WHERE ${where.sql}) s
      WHERE rn % $${n} = 1 AND rn > 1 ORDER BY rn`,
    [...where.values, step],
  );
  return rows.map(asKey);
}

/** Key and row hash of every row in a (small) range. */
export async function rowsOfRange(side: SideSession, table: TableToVerify, fn: HashFunction, range: KeyRange): Promise<KeyedRow[]> {
  const where = rangePredicate(table.key, range);
  const rows = await side.arrays(
    `reading the rows of ${table.name} ${describeRange(range)}`,
    `SELECT ${rowHashSql(table.columns, fn)}, ${keyList(table)} FROM ONLY ${table.sql} WHERE ${where.sql}`,
    where.values,
  );
  return rows.map((r) => ({ hash: r[0]!, key: asKey(r.slice(1)) }));
}

export interface FetchedRow extends KeyedRow {
  /** Every column's text output by column name. */
  readonly values: TextRow;
}

/** Keys sent per query: far below the 65535 parameters a statement may carry. */
const KEYS_PER_QUERY = 500;

/** The rows with these keys, with their hashes and column values; keys not there are absent. */
export async function rowsByKey(
  side: SideSession,
  table: TableToVerify,
  fn: HashFunction,
  keys: readonly KeyValues[],
): Promise<Map<string, FetchedRow>> {
  const found = new Map<string, FetchedRow>();
  const width = table.key.length;
  const columns = table.key.length === 1 ? table.key[0]!.sql : `(${keyList(table)})`;
  for (let start = 0; start < keys.length; start += KEYS_PER_QUERY) {
    const batch = keys.slice(start, start + KEYS_PER_QUERY);
    const tuples = batch.map((_, i) => `(${table.key.map((k, j) => `$${i * width + j + 1}::${k.type}`).join(', ')})`);
    const rows = await side.arrays(
      `reading ${batch.length} rows of ${table.name} by key`,
      `SELECT ${rowHashSql(table.columns, fn)}, ${keyList(table)}, ${table.columns.map((c) => c.sql).join(', ')}
         FROM ONLY ${table.sql} WHERE ${columns} IN (VALUES ${tuples.join(', ')})`,
      batch.flat(),
    );
    for (const r of rows) {
      const key = asKey(r.slice(1, 1 + width));
      const values: TextRow = {};
      table.columns.forEach((c, i) => (values[c.name] = r[1 + width + i] ?? null));
      found.set(JSON.stringify(key), { hash: r[0]!, key, values });
    }
  }
  return found;
}

function asKey(values: ReadonlyArray<string | null>): KeyValues {
  // Key columns are NOT NULL (a primary key or a replica identity index).
  return values.map((v) => v ?? '');
}
