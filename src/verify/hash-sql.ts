import type { Lane } from './session.js';

/**
 * How a row becomes one 64-bit number, inside PostgreSQL.
 *
 * What is compared is each value's text output under the pinned settings: two rows hash alike
 * when every column prints alike, in the source's column order, NULL apart from any value.
 *
 * - 'typed' (the usual): a column of a type in TYPED_HASHES, whose stored values are equal
 *   exactly when their text outputs are, is hashed from the stored value by the type's own
 *   64-bit hash function, seeded with the column's position; a NULL there is a constant of that
 *   position. Producing text output is most of what verify costs, and these skip it. Every
 *   other column goes into `ROW(…)::text` as in 'hashtext', and the parts are XORed (the
 *   position seeds keep it order-sensitive: the same values in two columns hash differently).
 *   Used when both servers give the same typed hashes for a set of probe rows.
 * - 'hashtext': hashtextextended(ROW(c1, c2, …)::text COLLATE "C", 0), the server's 64-bit
 *   Jenkins hash of the row's text (NULL written as nothing, an empty string as ""). Its value
 *   depends on the server's build (byte order), so it is used only when both servers give the
 *   same hashes for a set of probe strings.
 * - 'md5': the first 64 bits of md5(row text), the same on every server; the fallback, and
 *   what a PostgreSQL 10 side gets (it has no extended hash functions).
 *
 * A range's fingerprint is count(*) and sum(hash) as numeric (no overflow, and sum is
 * order-independent and counts duplicates, which bit_xor, absent before 14 anyway, would
 * cancel). A change goes unseen only if the 64-bit sums of two different multisets collide:
 * about 2^-64 for data nobody crafted against this hash. Neither hash resists an adversary;
 * verify guards against lost and mangled rows, not against someone forging them.
 */
export type HashFunction = 'typed' | 'hashtext' | 'md5';

/**
 * Types hashed from the stored value in 'typed' mode, by type oid (built-in oids are the same on
 * every server). Each is here because equal stored values and equal text output are the same
 * thing for it, and its hash function (a) exists with this signature on 13 through 18, (b) is
 * what hash partitioning and pg_upgrade rely on staying put, and (c) is injective up to 2^-64:
 *
 * - int2, int4, oid, bool (as int4): hash_uint32_extended of the 32-bit value.
 * - int8: hashint8extended folds the high half into the low one (so that 1::int8 hashes as
 *   1::int4), which makes 1 and 4294967296 hash alike; the high half is hashed again under
 *   another seed so that no fold goes unseen.
 * - uuid: uuid_hash_extended, all 16 bytes.
 * - text, varchar: hashtextextended under COLLATE "C", which hashes the bytes (a
 *   nondeterministic column collation is overridden: "C" is deterministic); text output is
 *   those bytes.
 * - char(n): hashbpcharextended under COLLATE "C" hashes the bytes without trailing blanks. A
 *   char(n) value is stored padded to n characters, so its text output is the unpadded bytes
 *   plus the blanks up to n: with the same n on both sides, equal hashes mean equal output.
 *   Only for a declared n (a bare bpchar keeps its blanks as given) and only where the
 *   target's column has the same n (see matchTargetTypes).
 *
 * Left as text, on purpose: numeric (1.0 = 1.00, printed apart), float4/float8 (-0 = 0),
 * bpchar without n (its hash drops trailing blanks it prints), timestamp/timestamptz (their hash is hashint8's
 * fold, without a cheap way to reach the high half), date and bytea (no extended hash callable
 * from SQL on their type), enums (their hash is of the label's oid, which differs between
 * databases), domains, arrays, composites, jsonb and everything else.
 */
export const TYPED_HASHES = {
  21: 'int2',
  23: 'int4',
  20: 'int8',
  26: 'oid',
  16: 'bool',
  2950: 'uuid',
  25: 'text',
  1043: 'text',
  1042: 'bpchar',
} as const satisfies Record<number, string>;

export type TypedHash = (typeof TYPED_HASHES)[keyof typeof TYPED_HASHES];

const BPCHAR = 1042;

/**
 * How one column of a source type is hashed, or null for its text output. `typmod` is the
 * column's atttypmod: for char(n) it is n + 4, and -1 for a bare bpchar, whose values keep the
 * trailing blanks they were given and so need the text.
 */
export function typedHashOf(typeOid: number, typmod: number): TypedHash | null {
  if (typeOid === BPCHAR && typmod < 5) return null;
  return (TYPED_HASHES as Record<number, TypedHash>)[typeOid] ?? null;
}

/** What rowHashSql needs of a column: its quoted name and, when hashed from its value, how. */
export interface HashColumn {
  readonly sql: string;
  /** Null: by text output. Set only when source and target hold the column in the same type. */
  readonly hashed: TypedHash | null;
}

/** The hash of column `position` (1-based) from its value; NULL for a NULL. */
export function typedColumnSql(column: string, hashed: TypedHash, position: number): string {
  switch (hashed) {
    case 'int2':
      return `pg_catalog.hashint2extended(${column}, ${position})`;
    case 'int4':
      return `pg_catalog.hashint4extended(${column}, ${position})`;
    case 'oid':
      return `pg_catalog.hashoidextended(${column}, ${position})`;
    case 'bool':
      return `pg_catalog.hashint4extended(${column}::pg_catalog.int4, ${position})`;
    case 'int8':
      return `(pg_catalog.hashint8extended(${column}, ${position}) # pg_catalog.hashint4extended((${column} >> 32)::pg_catalog.int4, ${-position}))`;
    case 'uuid':
      return `pg_catalog.uuid_hash_extended(${column}, ${position})`;
    case 'text':
      return `pg_catalog.hashtextextended(${column} COLLATE "C", ${position})`;
    case 'bpchar':
      return `pg_catalog.hashbpcharextended(${column} COLLATE "C", ${position})`;
  }
}

/** What a NULL in column `position` hashes to: a fixed odd multiple of the golden ratio, per position. */
export function nullHash(position: number): string {
  return BigInt.asIntN(64, 0x9e3779b97f4a7c15n * BigInt(2 * position + 1)).toString();
}

export function rowTextSql(quotedColumns: readonly string[]): string {
  return `ROW(${quotedColumns.join(', ')})::text`;
}

export function rowHashSql(columns: readonly HashColumn[], fn: HashFunction): string {
  if (fn === 'md5') return `('x' || pg_catalog.substr(pg_catalog.md5(${rowTextSql(columns.map((c) => c.sql))}), 1, 16))::bit(64)::bigint`;
  const textHash = (cs: readonly HashColumn[]) => `pg_catalog.hashtextextended(${rowTextSql(cs.map((c) => c.sql))} COLLATE "C", 0)`;
  if (fn === 'hashtext') return textHash(columns);
  const asText = columns.filter((c) => c.hashed === null);
  // A table without columns still has rows, all alike: each hashes as the text of ROW(), "()".
  const parts = asText.length > 0 || columns.length === 0 ? [textHash(asText)] : [];
  columns.forEach((c, i) => {
    if (c.hashed !== null) parts.push(`coalesce(${typedColumnSql(c.sql, c.hashed, i + 1)}, ${nullHash(i + 1)}::pg_catalog.int8)`);
  });
  return parts.length === 1 ? parts[0]! : `(${parts.join(' # ')})`;
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

/** Probe rows for 'typed': every typed hash, extremes, NULLs, and a column left as text. */
const PROBE_COLUMNS: ReadonlyArray<{ name: string; type: string; hashed: TypedHash | null }> = [
  { name: 'i2', type: 'int2', hashed: 'int2' },
  { name: 'i4', type: 'int4', hashed: 'int4' },
  { name: 'i8', type: 'int8', hashed: 'int8' },
  { name: 'id', type: 'oid', hashed: 'oid' },
  { name: 'b', type: 'bool', hashed: 'bool' },
  { name: 'u', type: 'uuid', hashed: 'uuid' },
  { name: 't', type: 'text', hashed: 'text' },
  { name: 'v', type: 'varchar', hashed: 'text' },
  { name: 'c', type: 'bpchar(5)', hashed: 'bpchar' },
  { name: 'n', type: 'numeric', hashed: null },
];

const PROBE_ROWS = [
  [`0`, `0`, `0`, `0`, `false`, `'00000000-0000-0000-0000-000000000000'`, `''`, `''`, `''`, `0`],
  [
    `-32768`,
    `-2147483648`,
    `-9223372036854775808`,
    `4294967295`,
    `true`,
    `'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'`,
    `'ünïcödé ✓ 漢字'`,
    `'x'`,
    `'ü ✓漢'`,
    `1.00`,
  ],
  [
    `32767`,
    `2147483647`,
    `9223372036854775807`,
    `1`,
    `NULL`,
    `'ffffffff-ffff-ffff-ffff-ffffffffffff'`,
    `repeat('pgferry', 300)`,
    `'(1,"",)'`,
    `' a  '`,
    `NULL`,
  ],
  [`NULL`, `NULL`, `4294967296`, `NULL`, `NULL`, `NULL`, `NULL`, `NULL`, `NULL`, `NULL`],
  ...Array.from({ length: 24 }, (_, i) => [
    String(i * 977 - 9000),
    String(i * 7919 * 1009),
    `${i * 7919}::int8 * 1000003 * 1000003`,
    String(i * 65537),
    i % 2 ? 'true' : 'false',
    `'${(i * 2654435761).toString(16).padStart(8, '0').slice(-8)}-0000-4000-8000-${String(i).padStart(12, '0')}'`,
    `repeat('x', ${i}) || ${i}`,
    `'${i}'`,
    `'c' || ${i}`,
    `${i} / 7.0`,
  ]),
];

const probeSql = (fn: HashFunction) => {
  const values = PROBE_ROWS.map((row, o) => `(${o}, ${row.map((v, i) => `(${v})::pg_catalog.${PROBE_COLUMNS[i]!.type}`).join(', ')})`);
  const hash = rowHashSql(
    PROBE_COLUMNS.map((c) => ({ sql: c.name, hashed: c.hashed })),
    fn,
  );
  return `SELECT pg_catalog.string_agg((${hash})::text, ',' ORDER BY ord) AS h FROM (VALUES ${values.join(', ')}) AS p(ord, ${PROBE_COLUMNS.map((c) => c.name).join(', ')})`;
};

/** The SQL of the typed probe, for tests. */
export const TYPED_PROBE_SQL = probeSql('typed');

/**
 * 'typed' when both servers hash every probe row alike that way, else 'hashtext' when they
 * hash every probe string alike, else the portable 'md5'.
 */
export async function chooseHashFunction(lane: Lane): Promise<HashFunction> {
  // The extended (64-bit, seeded) hash functions arrived in PostgreSQL 11; a 10 source gets md5.
  const hasExtendedHashes = async (side: Lane['source']) =>
    (
      await side.query(
        'looking for the extended hash functions',
        `SELECT pg_catalog.to_regproc('pg_catalog.hashtextextended') IS NOT NULL AS ok`,
      )
    )[0]?.ok === 't';
  const [sourceHas, targetHas] = await Promise.all([hasExtendedHashes(lane.source), hasExtendedHashes(lane.target)]);
  if (!sourceHas || !targetHas) return 'md5';
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
  if (s === undefined || s !== t) return 'md5';
  const typed = async (side: Lane['source']) => (await side.query('probing the typed row hash', TYPED_PROBE_SQL))[0]?.h;
  const [ts, tt] = await Promise.all([typed(lane.source), typed(lane.target)]);
  return ts !== undefined && ts !== null && ts === tt ? 'typed' : 'hashtext';
}
