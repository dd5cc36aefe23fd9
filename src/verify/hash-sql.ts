import type { Lane } from './session.js';

/**
 * How a row becomes one 64-bit number, inside PostgreSQL.
 *
 * The row's text is `ROW(c1, c2, …)::text`: each column through its type's output function
 * under the pinned settings, in the source's column order, NULL written as nothing and an
 * empty string as "" (so the two never compare equal). That text is hashed to a bigint:
 *
 * - 'hashtext': hashtextextended(text COLLATE "C", 0), the server's 64-bit Jenkins hash of
 *   the bytes. Twice as fast as md5 here, which matters because hashing is most of verify's
 *   time. Its value depends on the server's build (byte order), so it is used only when both
 *   servers give the same hashes for a set of probe strings.
 * - 'md5': the first 64 bits of md5(text), the same on every server; the fallback.
 *
 * A range's fingerprint is count(*) and sum(hash) as numeric (no overflow, and sum is
 * order-independent and counts duplicates, which bit_xor, absent before 14 anyway, would
 * cancel). A change goes unseen only if the 64-bit sums of two different multisets collide:
 * about 2^-64 for data nobody crafted against this hash. Neither hash resists an adversary;
 * verify guards against lost and mangled rows, not against someone forging them.
 */
export type HashFunction = 'hashtext' | 'md5';

export function rowTextSql(quotedColumns: readonly string[]): string {
  return `ROW(${quotedColumns.join(', ')})::text`;
}

export function rowHashSql(quotedColumns: readonly string[], fn: HashFunction): string {
  const text = rowTextSql(quotedColumns);
  return fn === 'hashtext'
    ? `pg_catalog.hashtextextended(${text} COLLATE "C", 0)`
    : `('x' || pg_catalog.substr(pg_catalog.md5(${text}), 1, 16))::bit(64)::bigint`;
}

/** Strings of many lengths and bytes: Jenkins hashing reads in 12-byte blocks with a tail. */
const PROBES = [
  '',
  'a',
  'pgferry',
  '(1,"",)',
  'ünïcödé ✓ 漢字',
  ...Array.from({ length: 40 }, (_, i) => 'x'.repeat(i) + String(i * 7919)),
  'a'.repeat(1000),
];

/** 'hashtext' when both servers hash every probe alike, else the portable 'md5'. */
export async function chooseHashFunction(lane: Lane): Promise<HashFunction> {
  const ask = async (side: Lane['source']) =>
    (
      await side.query(
        'probing hashtextextended',
        `SELECT pg_catalog.string_agg(pg_catalog.hashtextextended(p COLLATE "C", 0)::text, ',' ORDER BY o) AS h
           FROM pg_catalog.unnest($1::text[]) WITH ORDINALITY AS u(p, o)`,
        [PROBES],
      )
    )[0]?.h;
  const [s, t] = await Promise.all([ask(lane.source), ask(lane.target)]);
  return s !== undefined && s === t ? 'hashtext' : 'md5';
}
