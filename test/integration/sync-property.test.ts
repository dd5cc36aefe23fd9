/**
 * A property test of the change stream as a whole, against real servers (13 → 17 and 17 → 18):
 * whatever committed on the source, in whatever order, under whatever memory limit and batch
 * size, and however often sync is killed, `pgferry sync` leaves the target equal to the source.
 *
 * Each fast-check run makes a fresh database with a fixed small schema: kv (text primary key),
 * pair (composite key), ident (a GENERATED ALWAYS identity column that is not the key), bag (no
 * key, REPLICA IDENTITY FULL, duplicate rows, some with a TOASTed value), docs (TOASTed values of
 * 2–6 KB of md5 hex, which pglz cannot shrink, often left unchanged by updates) and, in some
 * runs, part (partitioned by list, rows moving between partitions). A first
 * `sync --until-caught-up` clones it. Then 2–4 source sessions commit a generated workload, with
 * synchronous_commit = on: in each round some sessions open a transaction each, run their
 * statements interleaved, and commit (or roll back) in a generated order; one transaction in
 * four is big (thousands of rows, or hundreds of TOASTed ones, by generate_series); TRUNCATE
 * runs in a round of its own. Meanwhile, or once the workload is committed, `pgferry sync` runs
 * with a generated --memory-limit (1MB to 64MB) and --batch-changes, is SIGKILLed 0–3 times at
 * generated moments, and may last be stopped with SIGTERM (which must exit 0). A final
 * `sync --until-caught-up` must exit 0 and leave the target equal to the source by content; after
 * each kill and at the end, the slot's confirmed_flush_lsn is at or before the target's
 * applied_lsn.
 *
 * Each session also changes the shape of its own table own_<n> (columns added and dropped, in
 * DO blocks too, an index), and session 1 makes and drops tables, filled in the same statement
 * string; after the final sync the target's schema must equal the source's (schema-fingerprint.ts).
 *
 * Sessions never touch each other's rows (keys, ids and keyless values are per session), so no
 * session waits for another's lock, and each statement succeeds whatever the state: key swaps go
 * through a temporary key that each swap frees again, a key moves only into a key deleted just
 * before, inserts are upserts, and keyless rows are picked by ctid.
 *
 * Environment:
 *   PGFERRY_PROPERTY_RUNS=n     runs per pair, and the bigger workloads of the long version
 *                               (default: 3 runs of small workloads, for CI)
 *   PGFERRY_PROPERTY_SEED=s     replays a seed (both pairs use it); with PGFERRY_PROPERTY_PATH=p,
 *                               only the run at that fast-check path
 *   PGFERRY_PROPERTY_PAIR=13-17 runs one pair only
 *   PGFERRY_PROPERTY_SHRINK=1   lets fast-check shrink a failure (each try is a full run, and
 *                               the kill moments make a try only likely to fail again)
 *   PGFERRY_PROPERTY_WITHOUT=k1,k2  leaves out kinds of statement (e.g. ident-default), or
 *                               'savepoint', 'truncate', or 'spill' (memory limits of 64MB only)
 * The workload sizes depend on whether PGFERRY_PROPERTY_RUNS is set, and the generators on
 * PGFERRY_PROPERTY_WITHOUT: replay a seed with both as in the failing run. A failure prints the
 * command that replays it, and writes the workload as SQL to a file under the temp directory.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import pg from 'pg';
import {
  compareTables,
  runPgferry,
  spawnPgferry,
  startClusters,
  type Cluster,
  type PgferryProcess,
  type TableComparison,
} from '../harness/index.js';
import { diffFingerprints, readFingerprint } from './schema-fingerprint.js';

const PAIRS = [
  [10, 18],
  [13, 17],
  [17, 18],
] as const;

const LONG = process.env.PGFERRY_PROPERTY_RUNS !== undefined && process.env.PGFERRY_PROPERTY_RUNS !== '';
const RUNS = LONG ? wholeNumber('PGFERRY_PROPERTY_RUNS', process.env.PGFERRY_PROPERTY_RUNS!) : 3;
const SEED = process.env.PGFERRY_PROPERTY_SEED
  ? wholeNumber('PGFERRY_PROPERTY_SEED', process.env.PGFERRY_PROPERTY_SEED)
  : (Math.random() * 2 ** 31) | 0;
const PATH = process.env.PGFERRY_PROPERTY_PATH || undefined;
const ONLY_PAIR = process.env.PGFERRY_PROPERTY_PAIR || undefined;
const SHRINK = process.env.PGFERRY_PROPERTY_SHRINK === '1';
const WITHOUT = new Set(
  (process.env.PGFERRY_PROPERTY_WITHOUT ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== ''),
);

/** Workload sizes: small for CI, bigger for the long version. */
const SIZE = LONG
  ? {
      rounds: { min: 3, max: 14 },
      statements: 7,
      keys: 16,
      bulkRows: { min: 1000, max: 20_000 },
      bulkDocs: { min: 100, max: 600 },
      killAfterMs: { min: 150, max: 5000 },
    }
  : {
      rounds: { min: 2, max: 5 },
      statements: 4,
      keys: 10,
      bulkRows: { min: 2000, max: 10_000 },
      bulkDocs: { min: 100, max: 300 },
      killAfterMs: { min: 150, max: 2500 },
    };

/** Sessions the initial rows are made for: the most a run uses. */
const MAX_SESSIONS = 4;
const SYNC_TIMEOUT_MS = 180_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function wholeNumber(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n)) throw new Error(`${name}=${text} is not a whole number`);
  return n;
}

// ---------------------------------------------------------------------------------------------
// SQL text

/** A string literal (standard_conforming_strings is on: only quotes are doubled), or NULL. */
function lit(value: string | null): string {
  return value === null ? 'NULL' : `'${value.replace(/'/g, "''")}'`;
}

/** Text of pieces × 32 characters of md5 hex: over the TOAST threshold and not compressible. */
function bigText(seedSql: string, pieces: number): string {
  return `(SELECT string_agg(md5(i::text || '-' || ${seedSql}), '') FROM generate_series(1, ${pieces}) i)`;
}

/** Per-session key spaces: no two sessions ever touch the same row. */
const kvKey = (s: number, i: number | string) => lit(`s${s}-${i}`);
const kvTmp = (s: number) => kvKey(s, 'tmp');
const kvBulkPrefix = (s: number) => `s${s}-b`;
const pairB = (s: number, which: number) => lit(`s${s}${which === 0 ? 'x' : 'y'}`);
const identKey = (s: number, i: number) => s * 1000 + i;
const bagX = (s: number, i: number) => s * 100 + i;
const docId = (s: number, i: number) => s * 100_000 + i;
const docBulkBase = (s: number) => s * 100_000 + 1000;
const partId = (s: number, i: number) => s * 1000 + i;
const REGIONS = ['eu', 'us', 'apac', 'mars'] as const;

function schemaSql(partitioned: boolean): string {
  const sessions = `generate_series(1, ${MAX_SESSIONS}) s`;
  const keys = `generate_series(0, ${SIZE.keys - 1}) i`;
  const tables = `
    CREATE TABLE kv (k text PRIMARY KEY, v text, n int NOT NULL);
    CREATE TABLE pair (a int, b text, v int, note text, PRIMARY KEY (a, b));
    CREATE TABLE ident (k int PRIMARY KEY, seq bigint GENERATED ALWAYS AS IDENTITY, v text);
    CREATE TABLE bag (x int, y text, blob text);
    ALTER TABLE bag REPLICA IDENTITY FULL;
    CREATE TABLE docs (id int PRIMARY KEY, title text NOT NULL, n int NOT NULL, body text NOT NULL);
    INSERT INTO kv SELECT 's' || s || '-' || i, 'initial ' || s || '/' || i, i FROM ${sessions}, ${keys};
    INSERT INTO pair SELECT i, 's' || s || 'x', i, NULL FROM ${sessions}, ${keys};
    INSERT INTO ident (k, v) SELECT s * 1000 + i, 'initial' FROM ${sessions}, ${keys};
    INSERT INTO bag SELECT s * 100 + i % 3, CASE WHEN i % 4 = 0 THEN NULL ELSE 'dup' END, CASE WHEN i % 2 = 0 THEN ${bigText('s::text', 80)} END
      FROM ${sessions}, generate_series(0, 7) i;
    INSERT INTO docs SELECT s * 100000 + i, 'doc ' || i, 0, ${bigText("s || '/' || i", 100)} FROM ${sessions}, generate_series(0, 3) i;
    ${Array.from({ length: MAX_SESSIONS }, (_, i) => `CREATE TABLE own_${i + 1} (id int PRIMARY KEY, v text); INSERT INTO own_${i + 1} SELECT g, 'initial' FROM generate_series(0, 3) g;`).join('\n    ')}`;
  const parts = `
    CREATE TABLE part (id int NOT NULL, region text NOT NULL, v int, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
    CREATE TABLE part_eu PARTITION OF part FOR VALUES IN ('eu');
    CREATE TABLE part_us PARTITION OF part FOR VALUES IN ('us');
    CREATE TABLE part_other PARTITION OF part DEFAULT;
    INSERT INTO part SELECT s * 1000 + i, (ARRAY['eu', 'us', 'apac'])[i % 3 + 1], i FROM ${sessions}, ${keys};`;
  return partitioned ? tables + parts : tables;
}

// ---------------------------------------------------------------------------------------------
// The workload: plain data (SQL text), so a counterexample prints as the statements it ran

interface Statement {
  readonly kind: string;
  readonly sql: string;
}

interface Transaction {
  readonly session: number;
  readonly statements: readonly Statement[];
  readonly end: 'COMMIT' | 'ROLLBACK';
}

/** Transactions open at once, one per session, their statements interleaved, ended in `endOrder`. */
interface Round {
  readonly transactions: readonly Transaction[];
  /** Indexes into `transactions`. */
  readonly endOrder: readonly number[];
}

interface Workload {
  readonly partitioned: boolean;
  readonly sessions: number;
  readonly rounds: readonly Round[];
}

const st = (kind: string, sql: string): Statement => ({ kind, sql });
const key = () => fc.nat({ max: SIZE.keys - 1 });
const keys = (n: number) => fc.uniqueArray(key(), { minLength: n, maxLength: n });
const small = () => fc.integer({ min: -1000, max: 1000 });
/** Short text with the characters quoting and COPY escaping care about. */
const text = () =>
  fc.string({
    unit: fc.constantFrom('a', 'b', 'Z', '0', ' ', "'", "''", '"', '\\', '\t', '\n', ',', '(', ')', 'é', '€', '😀'),
    maxLength: 12,
  });
const nullableText = () => fc.option(text(), { nil: null, freq: 5 });
const pieces = () => fc.integer({ min: 70, max: 180 });
const seedText = () => fc.nat({ max: 999_999 }).map(String);

// kv: text primary key --------------------------------------------------------------------------

function kvUpsert(s: number) {
  return fc
    .tuple(key(), nullableText(), small())
    .map(([i, v, n]) =>
      st(
        'kv-upsert',
        `INSERT INTO kv VALUES (${kvKey(s, i)}, ${lit(v)}, ${n}) ON CONFLICT (k) DO UPDATE SET v = excluded.v, n = excluded.n`,
      ),
    );
}

function kvUpdate(s: number) {
  return fc
    .tuple(key(), nullableText(), small())
    .map(([i, v, d]) => st('kv-update', `UPDATE kv SET v = ${lit(v)}, n = n + ${d} WHERE k = ${kvKey(s, i)}`));
}

/** Two rows swap keys through the session's temporary key, which the swap leaves free. */
function kvSwap(s: number) {
  return keys(2).map(([a, b]) =>
    st(
      'kv-swap',
      `UPDATE kv SET k = ${kvTmp(s)} WHERE k = ${kvKey(s, a!)}; UPDATE kv SET k = ${kvKey(s, a!)} WHERE k = ${kvKey(s, b!)}; UPDATE kv SET k = ${kvKey(s, b!)} WHERE k = ${kvTmp(s)}`,
    ),
  );
}

/** A → B, B → C, C → A through the temporary key. */
function kvRotate(s: number) {
  return keys(3).map(([a, b, c]) =>
    st(
      'kv-rotate',
      `UPDATE kv SET k = ${kvTmp(s)} WHERE k = ${kvKey(s, c!)}; UPDATE kv SET k = ${kvKey(s, c!)} WHERE k = ${kvKey(s, b!)}; ` +
        `UPDATE kv SET k = ${kvKey(s, b!)} WHERE k = ${kvKey(s, a!)}; UPDATE kv SET k = ${kvKey(s, a!)} WHERE k = ${kvTmp(s)}`,
    ),
  );
}

/** A chain into a freed key: C deleted, B → C, A → B. */
function kvShift(s: number) {
  return keys(3).map(([a, b, c]) =>
    st(
      'kv-shift',
      `DELETE FROM kv WHERE k = ${kvKey(s, c!)}; UPDATE kv SET k = ${kvKey(s, c!)} WHERE k = ${kvKey(s, b!)}; UPDATE kv SET k = ${kvKey(s, b!)} WHERE k = ${kvKey(s, a!)}`,
    ),
  );
}

/** One row moves twice, A → B → C, changed on the way. */
function kvMoveTwice(s: number) {
  return fc
    .tuple(keys(3), nullableText())
    .map(([[a, b, c], v]) =>
      st(
        'kv-move-twice',
        `DELETE FROM kv WHERE k IN (${kvKey(s, b!)}, ${kvKey(s, c!)}); UPDATE kv SET k = ${kvKey(s, b!)} WHERE k = ${kvKey(s, a!)}; ` +
          `UPDATE kv SET k = ${kvKey(s, c!)}, v = ${lit(v)} WHERE k = ${kvKey(s, b!)}`,
      ),
    );
}

function kvDelete(s: number) {
  return key().map((i) => st('kv-delete', `DELETE FROM kv WHERE k = ${kvKey(s, i)}`));
}

function kvReinsert(s: number) {
  return fc
    .tuple(key(), nullableText(), small())
    .map(([i, v, n]) =>
      st('kv-reinsert', `DELETE FROM kv WHERE k = ${kvKey(s, i)}; INSERT INTO kv VALUES (${kvKey(s, i)}, ${lit(v)}, ${n})`),
    );
}

function kvBulkInsert(s: number) {
  return fc
    .tuple(fc.integer(SIZE.bulkRows), seedText())
    .map(([rows, seed]) =>
      st(
        'kv-bulk-insert',
        `INSERT INTO kv SELECT ${lit(kvBulkPrefix(s))} || g, md5(g::text || ${lit(seed)}), g FROM generate_series(1, ${rows}) g ` +
          `ON CONFLICT (k) DO UPDATE SET v = excluded.v, n = kv.n + 1`,
      ),
    );
}

function kvBulkUpdate(s: number) {
  return fc
    .tuple(fc.integer({ min: 1, max: 3 }), fc.nat({ max: 2 }))
    .map(([m, r]) =>
      st(
        'kv-bulk-update',
        `UPDATE kv SET n = n + 1, v = md5(coalesce(v, '')) WHERE k LIKE ${lit(`${kvBulkPrefix(s)}%`)} AND n % ${m} = ${r % m}`,
      ),
    );
}

function kvBulkDelete(s: number) {
  return fc
    .tuple(fc.integer({ min: 1, max: 4 }), fc.nat({ max: 3 }))
    .map(([m, r]) => st('kv-bulk-delete', `DELETE FROM kv WHERE k LIKE ${lit(`${kvBulkPrefix(s)}%`)} AND n % ${m} = ${r % m}`));
}

// pair: composite key (a int, b text) ------------------------------------------------------------

function pairUpsert(s: number) {
  return fc
    .tuple(key(), fc.nat({ max: 1 }), small(), nullableText())
    .map(([a, b, v, note]) =>
      st(
        'pair-upsert',
        `INSERT INTO pair VALUES (${a}, ${pairB(s, b)}, ${v}, ${lit(note)}) ON CONFLICT (a, b) DO UPDATE SET v = excluded.v, note = excluded.note`,
      ),
    );
}

function pairUpdate(s: number) {
  return fc
    .tuple(key(), fc.nat({ max: 1 }), small(), nullableText())
    .map(([a, b, d, note]) =>
      st('pair-update', `UPDATE pair SET v = v + ${d}, note = ${lit(note)} WHERE a <= ${a} AND b = ${pairB(s, b)}`),
    );
}

/** Two rows swap the integer part of their keys through a = -1, which the swap leaves free. */
function pairSwap(s: number) {
  return fc
    .tuple(keys(2), fc.nat({ max: 1 }))
    .map(([[a1, a2], b]) =>
      st(
        'pair-swap',
        `UPDATE pair SET a = -1 WHERE a = ${a1} AND b = ${pairB(s, b)}; UPDATE pair SET a = ${a1} WHERE a = ${a2} AND b = ${pairB(s, b)}; ` +
          `UPDATE pair SET a = ${a2} WHERE a = -1 AND b = ${pairB(s, b)}`,
      ),
    );
}

/** The text part of one key changes. */
function pairMoveOne(s: number) {
  return fc
    .tuple(key(), fc.nat({ max: 1 }))
    .map(([a, from]) =>
      st(
        'pair-move-one',
        `DELETE FROM pair WHERE a = ${a} AND b = ${pairB(s, 1 - from)}; UPDATE pair SET b = ${pairB(s, 1 - from)} WHERE a = ${a} AND b = ${pairB(s, from)}`,
      ),
    );
}

/** Every row of one b moves to the other: a multi-row key change into freed keys. */
function pairMoveAll(s: number) {
  return fc
    .nat({ max: 1 })
    .map((from) =>
      st(
        'pair-move-all',
        `DELETE FROM pair WHERE b = ${pairB(s, 1 - from)}; UPDATE pair SET b = ${pairB(s, 1 - from)}, v = v + 1 WHERE b = ${pairB(s, from)}`,
      ),
    );
}

function pairDelete(s: number) {
  return fc.tuple(key(), fc.nat({ max: 1 })).map(([a, b]) => st('pair-delete', `DELETE FROM pair WHERE a = ${a} AND b = ${pairB(s, b)}`));
}

// ident: GENERATED ALWAYS AS IDENTITY column that is not the key -----------------------------------

function identUpsert(s: number) {
  return fc
    .tuple(key(), nullableText())
    .map(([i, v]) =>
      st('ident-upsert', `INSERT INTO ident (k, v) VALUES (${identKey(s, i)}, ${lit(v)}) ON CONFLICT (k) DO UPDATE SET v = excluded.v`),
    );
}

function identUpdate(s: number) {
  return fc.tuple(key(), nullableText()).map(([i, v]) => st('ident-update', `UPDATE ident SET v = ${lit(v)} WHERE k = ${identKey(s, i)}`));
}

/** The identity column itself changes: SET … = DEFAULT is the only update the source allows. */
function identDefault(s: number) {
  return fc
    .tuple(key(), fc.boolean(), nullableText())
    .map(([i, alsoV, v]) =>
      st('ident-default', `UPDATE ident SET seq = DEFAULT${alsoV ? `, v = ${lit(v)}` : ''} WHERE k = ${identKey(s, i)}`),
    );
}

function identReinsert(s: number) {
  return fc
    .tuple(key(), nullableText())
    .map(([i, v]) =>
      st('ident-reinsert', `DELETE FROM ident WHERE k = ${identKey(s, i)}; INSERT INTO ident (k, v) VALUES (${identKey(s, i)}, ${lit(v)})`),
    );
}

function identMove(s: number) {
  return keys(2).map(([a, b]) =>
    st(
      'ident-move',
      `DELETE FROM ident WHERE k = ${identKey(s, b!)}; UPDATE ident SET k = ${identKey(s, b!)} WHERE k = ${identKey(s, a!)}`,
    ),
  );
}

function identDelete(s: number) {
  return key().map((i) => st('ident-delete', `DELETE FROM ident WHERE k = ${identKey(s, i)}`));
}

// bag: no key, REPLICA IDENTITY FULL, duplicate rows ---------------------------------------------

const bagValue = () => fc.nat({ max: 3 });

/** Identical rows, sometimes with a TOASTed value (computed once for all the copies). */
function bagInsert(s: number) {
  const blob = fc.option(fc.tuple(seedText(), pieces()), { nil: null, freq: 2 });
  return fc
    .tuple(bagValue(), fc.option(fc.constantFrom('dup', 'other', "it's"), { nil: null }), blob, fc.integer({ min: 1, max: 3 }))
    .map(([x, y, b, copies]) =>
      st(
        'bag-insert',
        `INSERT INTO bag SELECT ${bagX(s, x)}, ${lit(y)}, ${b === null ? 'NULL' : bigText(lit(b[0]), b[1])} FROM generate_series(1, ${copies})`,
      ),
    );
}

/** One row among its duplicates changes; its TOASTed value, if any, is left unchanged. */
function bagUpdateOne(s: number) {
  return fc
    .tuple(bagValue(), nullableText())
    .map(([x, y]) =>
      st('bag-update-one', `UPDATE bag SET y = ${lit(y)} WHERE ctid = (SELECT ctid FROM bag WHERE x = ${bagX(s, x)} LIMIT 1)`),
    );
}

function bagUpdateAll(s: number) {
  return fc.tuple(bagValue(), nullableText()).map(([x, y]) => st('bag-update-all', `UPDATE bag SET y = ${lit(y)} WHERE x = ${bagX(s, x)}`));
}

function bagRewriteOne(s: number) {
  return fc
    .tuple(bagValue(), seedText(), pieces())
    .map(([x, seed, n]) =>
      st(
        'bag-rewrite-one',
        `UPDATE bag SET blob = ${bigText(lit(seed), n)} WHERE ctid = (SELECT ctid FROM bag WHERE x = ${bagX(s, x)} LIMIT 1)`,
      ),
    );
}

function bagMoveOne(s: number) {
  return fc
    .tuple(bagValue(), bagValue())
    .map(([from, to]) =>
      st('bag-move-one', `UPDATE bag SET x = ${bagX(s, to)} WHERE ctid = (SELECT ctid FROM bag WHERE x = ${bagX(s, from)} LIMIT 1)`),
    );
}

function bagDeleteOne(s: number) {
  return bagValue().map((x) => st('bag-delete-one', `DELETE FROM bag WHERE ctid = (SELECT ctid FROM bag WHERE x = ${bagX(s, x)} LIMIT 1)`));
}

function bagDeleteAll(s: number) {
  return bagValue().map((x) => st('bag-delete-all', `DELETE FROM bag WHERE x = ${bagX(s, x)}`));
}

// docs: TOASTed values, often left unchanged ------------------------------------------------------

function docsUpsert(s: number) {
  return fc.tuple(key(), text(), seedText(), pieces()).map(([i, title, seed, n]) =>
    st(
      'docs-upsert',
      // On conflict only the title changes: the body stays as it is, TOASTed and unchanged.
      `INSERT INTO docs VALUES (${docId(s, i)}, ${lit(title)}, 0, ${bigText(lit(seed), n)}) ON CONFLICT (id) DO UPDATE SET title = excluded.title, n = docs.n + 1`,
    ),
  );
}

function docsRetitle(s: number) {
  return fc
    .tuple(key(), text())
    .map(([i, title]) => st('docs-retitle', `UPDATE docs SET title = ${lit(title)}, n = n + 1 WHERE id = ${docId(s, i)}`));
}

function docsRewrite(s: number) {
  return fc
    .tuple(key(), seedText(), pieces())
    .map(([i, seed, n]) => st('docs-rewrite', `UPDATE docs SET body = ${bigText(lit(seed), n)} WHERE id = ${docId(s, i)}`));
}

/** A key change that leaves the TOASTed body unchanged, sometimes retitled after the move. */
function docsMove(s: number) {
  return fc
    .tuple(keys(2), fc.option(text(), { nil: null }))
    .map(([[a, b], title]) =>
      st(
        'docs-move',
        `DELETE FROM docs WHERE id = ${docId(s, b!)}; UPDATE docs SET id = ${docId(s, b!)} WHERE id = ${docId(s, a!)}` +
          (title === null ? '' : `; UPDATE docs SET title = ${lit(title)} WHERE id = ${docId(s, b!)}`),
      ),
    );
}

function docsDelete(s: number) {
  return key().map((i) => st('docs-delete', `DELETE FROM docs WHERE id = ${docId(s, i)}`));
}

function docsBulk(s: number) {
  return fc
    .tuple(fc.integer(SIZE.bulkDocs), seedText())
    .map(([rows, seed]) =>
      st(
        'docs-bulk',
        `INSERT INTO docs SELECT ${docBulkBase(s)} + g, 'bulk ' || g, g, ${bigText(`g || ${lit(seed)}`, 80)} FROM generate_series(1, ${rows}) g ` +
          `ON CONFLICT (id) DO UPDATE SET n = docs.n + 1`,
      ),
    );
}

/** Many TOASTed rows updated, their bodies left unchanged. */
function docsBulkRetitle(s: number) {
  return fc
    .tuple(fc.integer({ min: 1, max: 3 }), fc.nat({ max: 2 }))
    .map(([m, r]) =>
      st(
        'docs-bulk-retitle',
        `UPDATE docs SET title = title || '+', n = n + 1 WHERE id >= ${docId(s, 0)} AND id < ${docId(s + 1, 0)} AND n % ${m} = ${r % m}`,
      ),
    );
}

// part: partitioned, rows moving between partitions -----------------------------------------------

const region = () => fc.constantFrom(...REGIONS);

function partUpsert(s: number) {
  return fc
    .tuple(key(), region(), small())
    .map(([i, r, v]) =>
      st('part-upsert', `INSERT INTO part VALUES (${partId(s, i)}, ${lit(r)}, ${v}) ON CONFLICT (id, region) DO UPDATE SET v = excluded.v`),
    );
}

function partMove(s: number) {
  return fc
    .tuple(key(), fc.uniqueArray(region(), { minLength: 2, maxLength: 2 }))
    .map(([i, [from, to]]) =>
      st(
        'part-move',
        `DELETE FROM part WHERE id = ${partId(s, i)} AND region = ${lit(to!)}; UPDATE part SET region = ${lit(to!)}, v = v + 1 WHERE id = ${partId(s, i)} AND region = ${lit(from!)}`,
      ),
    );
}

function partUpdate(s: number) {
  return fc.tuple(key(), small()).map(([i, v]) => st('part-update', `UPDATE part SET v = ${v} WHERE id = ${partId(s, i)}`));
}

function partDelete(s: number) {
  return key().map((i) => st('part-delete', `DELETE FROM part WHERE id = ${partId(s, i)}`));
}

// own_<session>: schema changes while rows change around them (issue 16) ------------------------------
// Each session changes only its own table's shape, so no session waits for another's lock; every
// statement succeeds whatever ran before (IF [NOT] EXISTS), committed or rolled back.

const column = () => fc.nat({ max: 3 }).map((j) => `c${j}`);

function ownUpsert(s: number) {
  return fc
    .tuple(key(), nullableText())
    .map(([i, v]) =>
      st('own-upsert', `INSERT INTO own_${s} (id, v) VALUES (${i}, ${lit(v)}) ON CONFLICT (id) DO UPDATE SET v = excluded.v`),
    );
}

function ownDelete(s: number) {
  return key().map((i) => st('own-delete', `DELETE FROM own_${s} WHERE id = ${i}`));
}

function ddlAddColumn(s: number) {
  return fc
    .tuple(column(), fc.constantFrom('int DEFAULT 7', "text DEFAULT 'd'", 'numeric(6,2)', 'bigint'))
    .map(([c, type]) => st('ddl-add-column', `ALTER TABLE own_${s} ADD COLUMN IF NOT EXISTS ${c} ${type}`));
}

function ddlDropColumn(s: number) {
  return column().map((c) => st('ddl-drop-column', `ALTER TABLE own_${s} DROP COLUMN IF EXISTS ${c}`));
}

/** Fills a column that may not exist: by the catalog, in a DO block (its UPDATE streams as rows). */
function ownFill(s: number) {
  return fc
    .tuple(column(), fc.nat({ max: 1 }))
    .map(([c, r]) =>
      st(
        'own-fill',
        `DO $$BEGIN IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'own_${s}'::regclass AND attname = '${c}' AND NOT attisdropped) ` +
          `THEN EXECUTE 'UPDATE own_${s} SET ${c} = NULL WHERE id % 2 = ${r}'; END IF; END$$`,
      ),
    );
}

/** DDL inside a DO block: rebuilt on the target from what the capture read. */
function ddlInDo(s: number) {
  return fc
    .tuple(column(), fc.boolean())
    .map(([c, add]) =>
      st(
        'ddl-in-do',
        `DO $$BEGIN ALTER TABLE own_${s} ${add ? `ADD COLUMN IF NOT EXISTS ${c} int DEFAULT 3` : `DROP COLUMN IF EXISTS ${c}`}; END$$`,
      ),
    );
}

function ddlIndex(s: number) {
  return fc
    .boolean()
    .map((make) => st('ddl-index', make ? `CREATE INDEX IF NOT EXISTS own_${s}_v ON own_${s} (v)` : `DROP INDEX IF EXISTS own_${s}_v`));
}

/**
 * A table made and filled in one statement string, or dropped. Session 1 only: a new table joins
 * the publication, and that takes a lock another session's open transaction making one would wait for.
 */
function ddlNewTable() {
  return fc
    .tuple(fc.nat({ max: 1 }), key(), nullableText(), fc.nat({ max: 3 }))
    .map(([t, i, v, drop]) =>
      drop === 0
        ? st('ddl-drop-table', `DROP TABLE IF EXISTS own_new_${t}`)
        : st(
            'ddl-new-table',
            `CREATE TABLE IF NOT EXISTS own_new_${t} (id int PRIMARY KEY, v text); INSERT INTO own_new_${t} VALUES (${i}, ${lit(v)}) ON CONFLICT (id) DO UPDATE SET v = excluded.v`,
          ),
    );
}

// statements, transactions, rounds ------------------------------------------------------------------

type Weighted = { readonly weight: number; readonly arbitrary: fc.Arbitrary<Statement> };

type Kind = [name: string, weight: number, make: (s: number) => fc.Arbitrary<Statement>];

/** Statements of thousands of rows, or hundreds of TOASTed ones. */
const BULK_KINDS: readonly Kind[] = [
  ['kv-bulk-insert', 2, kvBulkInsert],
  ['kv-bulk-update', 1, kvBulkUpdate],
  ['kv-bulk-delete', 1, kvBulkDelete],
  ['docs-bulk', 1, docsBulk],
  ['docs-bulk-retitle', 1, docsBulkRetitle],
];

/** Every other kind of statement a session runs in any round, by weight. */
const SMALL_KINDS: readonly Kind[] = [
  ['kv-upsert', 3, kvUpsert],
  ['kv-update', 3, kvUpdate],
  ['kv-swap', 2, kvSwap],
  ['kv-rotate', 1, kvRotate],
  ['kv-shift', 2, kvShift],
  ['kv-move-twice', 1, kvMoveTwice],
  ['kv-delete', 2, kvDelete],
  ['kv-reinsert', 2, kvReinsert],
  ['pair-upsert', 2, pairUpsert],
  ['pair-update', 2, pairUpdate],
  ['pair-swap', 2, pairSwap],
  ['pair-move-one', 1, pairMoveOne],
  ['pair-move-all', 1, pairMoveAll],
  ['pair-delete', 1, pairDelete],
  ['ident-upsert', 2, identUpsert],
  ['ident-update', 2, identUpdate],
  ['ident-default', 1, identDefault],
  ['ident-reinsert', 1, identReinsert],
  ['ident-move', 1, identMove],
  ['ident-delete', 1, identDelete],
  ['bag-insert', 2, bagInsert],
  ['bag-update-one', 2, bagUpdateOne],
  ['bag-update-all', 1, bagUpdateAll],
  ['bag-rewrite-one', 1, bagRewriteOne],
  ['bag-move-one', 1, bagMoveOne],
  ['bag-delete-one', 2, bagDeleteOne],
  ['bag-delete-all', 1, bagDeleteAll],
  ['docs-upsert', 2, docsUpsert],
  ['docs-retitle', 2, docsRetitle],
  ['docs-rewrite', 1, docsRewrite],
  ['docs-move', 2, docsMove],
  ['docs-delete', 1, docsDelete],
];

/** Schema changes of a session's own table, and rows around them. */
const SCHEMA_KINDS: readonly Kind[] = [
  ['own-upsert', 4, ownUpsert],
  ['own-delete', 1, ownDelete],
  ['own-fill', 2, ownFill],
  ['ddl-add-column', 3, ddlAddColumn],
  ['ddl-drop-column', 2, ddlDropColumn],
  ['ddl-in-do', 2, ddlInDo],
  ['ddl-index', 2, ddlIndex],
  ['ddl-new-table', 3, (s) => (s === 1 ? ddlNewTable() : ownUpsert(s))],
];

/** Kinds on the partitioned table, when the run has it. */
const PART_KINDS: readonly Kind[] = [
  ['part-upsert', 2, partUpsert],
  ['part-move', 2, partMove],
  ['part-update', 1, partUpdate],
  ['part-delete', 1, partDelete],
];

/** What PGFERRY_PROPERTY_WITHOUT may name: a misspelt name must not pass silently. */
const KNOWN_WITHOUT = new Set(
  [...BULK_KINDS, ...SMALL_KINDS, ...SCHEMA_KINDS, ...PART_KINDS]
    .map(([name]) => name)
    .concat(['savepoint', 'truncate', 'spill', 'ddl-drop-table']),
);
const UNKNOWN_WITHOUT = [...WITHOUT].filter((name) => !KNOWN_WITHOUT.has(name));
if (UNKNOWN_WITHOUT.length > 0)
  throw new Error(`PGFERRY_PROPERTY_WITHOUT names ${UNKNOWN_WITHOUT.join(', ')}: known are ${[...KNOWN_WITHOUT].join(', ')}`);

/** Kinds of statement minus those PGFERRY_PROPERTY_WITHOUT names, as a weighted choice; undefined if none is left. */
function choice(s: number, kinds: readonly Kind[]): fc.Arbitrary<Statement> | undefined {
  const chosen: Weighted[] = kinds.filter(([kind]) => !WITHOUT.has(kind)).map(([, weight, make]) => ({ weight, arbitrary: make(s) }));
  return chosen.length === 0 ? undefined : fc.oneof(...chosen);
}

/** Any kind of statement but TRUNCATE. */
function plainStatement(s: number, partitioned: boolean): fc.Arbitrary<Statement> {
  const any = choice(s, [...BULK_KINDS, ...SMALL_KINDS, ...SCHEMA_KINDS, ...(partitioned ? PART_KINDS : [])]);
  if (!any) throw new Error('PGFERRY_PROPERTY_WITHOUT leaves no kind of statement');
  return any;
}

/** `list` with `item` put in at a generated place. */
function insertAt<T>(list: readonly T[], item: T, at: number): T[] {
  const i = at % (list.length + 1);
  return [...list.slice(0, i), item, ...list.slice(i)];
}

/** A statement, sometimes inside a savepoint that is then rolled back or released. */
function statement(s: number, partitioned: boolean): fc.Arbitrary<Statement> {
  const plain = plainStatement(s, partitioned);
  if (WITHOUT.has('savepoint')) return plain;
  const inSavepoint = fc
    .tuple(plain, fc.boolean())
    .map(([inner, undo]) =>
      st(
        `savepoint-${undo ? 'rolled-back' : 'released'}(${inner.kind})`,
        `SAVEPOINT sp; ${inner.sql}; ${undo ? 'ROLLBACK TO SAVEPOINT sp' : 'RELEASE SAVEPOINT sp'}`,
      ),
    );
  return fc.oneof({ weight: 9, arbitrary: plain }, { weight: 1, arbitrary: inSavepoint });
}

function transactionEnd(): fc.Arbitrary<'COMMIT' | 'ROLLBACK'> {
  return fc.oneof({ weight: 9, arbitrary: fc.constant('COMMIT' as const) }, { weight: 1, arbitrary: fc.constant('ROLLBACK' as const) });
}

/** A transaction; one in four is big: a bulk statement among the others. */
function transaction(s: number, partitioned: boolean): fc.Arbitrary<Transaction> {
  const plain = fc.array(statement(s, partitioned), { minLength: 1, maxLength: SIZE.statements });
  const bulk = choice(s, BULK_KINDS);
  const big = bulk && fc.tuple(plain, bulk, fc.nat()).map(([rest, one, at]) => insertAt(rest, one, at));
  return fc.record({
    session: fc.constant(s),
    statements: big ? fc.oneof({ weight: 3, arbitrary: plain }, { weight: 1, arbitrary: big }) : plain,
    end: transactionEnd(),
  });
}

/** Some of the sessions each open a transaction; they end in a generated order. */
function concurrentRound(sessions: number, partitioned: boolean): fc.Arbitrary<Round> {
  const all = Array.from({ length: sessions }, (_, i) => i + 1);
  return fc.shuffledSubarray(all, { minLength: 1 }).chain((chosen) =>
    fc.record({
      transactions: fc.tuple(...chosen.map((s) => transaction(s, partitioned))),
      endOrder: fc.shuffledSubarray(
        chosen.map((_, i) => i),
        { minLength: chosen.length, maxLength: chosen.length },
      ),
    }),
  );
}

function truncate(partitioned: boolean): fc.Arbitrary<Statement> {
  const choices = [
    'TRUNCATE bag',
    'TRUNCATE kv',
    'TRUNCATE docs, pair',
    'TRUNCATE ident RESTART IDENTITY',
    ...(partitioned ? ['TRUNCATE part', 'TRUNCATE part_other'] : []),
  ];
  return fc.constantFrom(...choices).map((sql) => st('truncate', sql));
}

/** A TRUNCATE takes an ACCESS EXCLUSIVE lock: its transaction runs alone, among other statements. */
function truncateRound(sessions: number, partitioned: boolean): fc.Arbitrary<Round> {
  return fc.tuple(fc.integer({ min: 1, max: sessions }), fc.nat(), truncate(partitioned)).chain(([s, at, cut]) =>
    fc.record({
      transactions: fc.tuple(
        fc.record({
          session: fc.constant(s),
          statements: fc.array(statement(s, partitioned), { maxLength: SIZE.statements - 1 }).map((rest) => insertAt(rest, cut, at)),
          end: transactionEnd(),
        }),
      ),
      endOrder: fc.constant([0]),
    }),
  );
}

/** Drops a database its sessions may still hold: WITH (FORCE) from 13, the sessions ended first before. */
async function dropDatabase(cluster: Cluster, db: string): Promise<void> {
  if (cluster.version >= 13) {
    await cluster.sql('postgres', `DROP DATABASE ${db} WITH (FORCE)`);
    return;
  }
  await cluster.sql('postgres', `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [
    db,
  ]);
  await cluster.sql('postgres', `DROP DATABASE ${db}`);
}

/** The partitioned table needs a key on a partitioned table, a DEFAULT partition and row moves: PostgreSQL 11. */
const PARTITIONS_FROM_MAJOR = 11;

function workloadArbitrary(sourceMajor: number): fc.Arbitrary<Workload> {
  return fc
    .record({
      partitioned: sourceMajor >= PARTITIONS_FROM_MAJOR ? fc.boolean() : fc.constant(false),
      sessions: fc.integer({ min: 2, max: MAX_SESSIONS }),
    })
    .chain(({ partitioned, sessions }) => {
      const round = WITHOUT.has('truncate')
        ? concurrentRound(sessions, partitioned)
        : fc.oneof(
            { weight: 12, arbitrary: concurrentRound(sessions, partitioned) },
            { weight: 1, arbitrary: truncateRound(sessions, partitioned) },
          );
      return fc
        .array(round, { minLength: SIZE.rounds.min, maxLength: SIZE.rounds.max })
        .map((rounds): Workload => ({ partitioned, sessions, rounds }));
    });
}

// ---------------------------------------------------------------------------------------------
// How sync runs

interface SyncSettings {
  readonly memoryLimit: string;
  readonly batchChanges: number;
  /** 16kB splits the workload's tables into ranges (by key where they have an integer one): a copy killed half-way keeps its finished ranges. */
  readonly splitAbove: '16kB' | '256MB';
}

interface Plan {
  /** The source's logical_decoding_work_mem: 64kB makes 14+ stream big transactions in pieces. */
  readonly decodingWorkMem: '64kB' | '64MB';
  /** When the first spawned sync starts, after the workload started (or ended, below). */
  readonly firstSpawnAfterMs: number;
  /** Whether the first spawned sync waits for the whole workload to commit first: it starts with a backlog. */
  readonly firstSpawnAfterWorkload: boolean;
  /**
   * Spawned syncs killed with SIGKILL this long after they started, one after the other; the
   * next starts `restartAfterMs` later (the backlog grows meanwhile).
   */
  readonly killed: ReadonlyArray<SyncSettings & { readonly killAfterMs: number; readonly restartAfterMs: number }>;
  /** A last spawned sync, stopped with SIGTERM this long after the workload ended (must exit 0). */
  readonly stopped: (SyncSettings & { readonly stopAfterMs: number }) | null;
  /** The final `sync --until-caught-up`. */
  readonly final: SyncSettings;
}

function syncSettings(): fc.Arbitrary<SyncSettings> {
  return fc.record({
    // Weighted to the small limits: a backlog of a few MB then goes to disk.
    memoryLimit: WITHOUT.has('spill')
      ? fc.constant('64MB')
      : fc.oneof(
          { weight: 3, arbitrary: fc.constant('1MB') },
          { weight: 2, arbitrary: fc.constant('2MB') },
          { weight: 2, arbitrary: fc.constantFrom('4MB', '16MB', '64MB') },
        ),
    batchChanges: fc.constantFrom(1, 5, 100, 2000, 100_000),
    splitAbove: fc.constantFrom('16kB', '256MB'),
  });
}

function planArbitrary(): fc.Arbitrary<Plan> {
  return fc
    .record({
      decodingWorkMem: fc.constantFrom('64kB' as const, '64MB' as const),
      firstSpawnAfterMs: fc.integer({ min: 0, max: 800 }),
      firstSpawnAfterWorkload: fc.boolean(),
      killed: fc.array(
        fc
          .tuple(syncSettings(), fc.integer(SIZE.killAfterMs), fc.integer({ min: 0, max: 1500 }))
          .map(([s, killAfterMs, restartAfterMs]) => ({ ...s, killAfterMs, restartAfterMs })),
        { maxLength: 3 },
      ),
      stopped: fc.option(
        fc.tuple(syncSettings(), fc.integer({ min: 0, max: 1500 })).map(([s, stopAfterMs]) => ({ ...s, stopAfterMs })),
        { nil: null },
      ),
      final: syncSettings(),
      fallback: fc.tuple(syncSettings(), fc.integer({ min: 0, max: 1500 })),
    })
    .map(({ fallback, ...plan }) =>
      // Without a kill, a sync still streams while the workload commits: then it is stopped with SIGTERM.
      plan.killed.length === 0 && plan.stopped === null ? { ...plan, stopped: { ...fallback[0], stopAfterMs: fallback[1] } } : plan,
    );
}

function describePlan(plan: Plan): string {
  const settings = (s: SyncSettings) =>
    `--memory-limit ${s.memoryLimit} --batch-changes ${s.batchChanges} --split-tables-larger-than ${s.splitAbove}`;
  return [
    `logical_decoding_work_mem ${plan.decodingWorkMem}; first spawn ${plan.firstSpawnAfterMs} ms after the workload ${plan.firstSpawnAfterWorkload ? 'ended' : 'started'}`,
    ...plan.killed.map(
      (k, i) => `spawn ${i + 1}: ${settings(k)}, SIGKILL after ${k.killAfterMs} ms, next start ${k.restartAfterMs} ms later`,
    ),
    ...(plan.stopped
      ? [`spawn ${plan.killed.length + 1}: ${settings(plan.stopped)}, SIGTERM ${plan.stopped.stopAfterMs} ms after the workload ended`]
      : []),
    `final: --until-caught-up ${settings(plan.final)}`,
  ].join('\n');
}

function renderWorkload(workload: Workload): string {
  const lines = [
    `-- ${workload.sessions} sessions, ${workload.partitioned ? 'with' : 'without'} the partitioned table`,
    schemaSql(workload.partitioned),
    '',
  ];
  workload.rounds.forEach((round, r) => {
    lines.push(
      `-- round ${r + 1}: sessions ${round.transactions.map((t) => t.session).join(', ')} open; statements interleaved; ended in order ${round.endOrder.map((i) => round.transactions[i]!.session).join(', ')}`,
    );
    const longest = Math.max(...round.transactions.map((t) => t.statements.length));
    for (const t of round.transactions) lines.push(`[session ${t.session}] BEGIN;`);
    for (let i = 0; i < longest; i++) {
      for (const t of round.transactions) {
        const s = t.statements[i];
        if (s) lines.push(`[session ${t.session}] ${s.sql}; -- ${s.kind}`);
      }
    }
    for (const i of round.endOrder) lines.push(`[session ${round.transactions[i]!.session}] ${round.transactions[i]!.end};`);
  });
  return lines.join('\n') + '\n';
}

function kindsOf(workload: Workload): string {
  const counts = new Map<string, number>();
  for (const round of workload.rounds) {
    for (const t of round.transactions) {
      for (const s of t.statements) counts.set(s.kind, (counts.get(s.kind) ?? 0) + 1);
    }
  }
  return [...counts].map(([k, n]) => `${k}×${n}`).join(' ');
}

// ---------------------------------------------------------------------------------------------
// One run

/** Commits the workload from its sessions, each with synchronous_commit = on. */
async function runWorkload(source: Cluster, db: string, workload: Workload): Promise<void> {
  const clients = new Map<number, pg.Client>();
  try {
    for (let s = 1; s <= workload.sessions; s++) {
      const client = new pg.Client({ connectionString: source.url(db), application_name: `property-session-${s}` });
      client.on('error', () => undefined);
      await client.connect();
      clients.set(s, client);
      await client.query('SET synchronous_commit = on');
    }
    for (const [r, round] of workload.rounds.entries()) {
      const run = async (t: Transaction, sql: string) => {
        try {
          await clients.get(t.session)!.query(sql);
        } catch (error) {
          throw new Error(
            `the workload failed on the source (a fault of the test, not of sync), round ${r + 1}, session ${t.session}: ${(error as Error).message}\n${sql}`,
          );
        }
      };
      for (const t of round.transactions) await run(t, 'BEGIN');
      const longest = Math.max(...round.transactions.map((t) => t.statements.length));
      for (let i = 0; i < longest; i++) {
        for (const t of round.transactions) {
          const s = t.statements[i];
          if (s) await run(t, s.sql);
        }
      }
      for (const i of round.endOrder) await run(round.transactions[i]!, round.transactions[i]!.end);
    }
  } finally {
    await Promise.all([...clients.values()].map((c) => c.end().catch(() => undefined)));
  }
}

interface Pair {
  readonly from: number;
  readonly to: number;
  readonly source: Cluster;
  readonly target: Cluster;
}

function syncArgs(pair: Pair, db: string, settings: SyncSettings): string[] {
  return [
    'sync',
    '--source',
    pair.source.url(db),
    '--target',
    pair.target.url(db),
    '--memory-limit',
    settings.memoryLimit,
    '--batch-changes',
    String(settings.batchChanges),
    '--split-tables-larger-than',
    settings.splitAbove,
  ];
}

/** The slot never confirms more than the target committed. The slot's name is the one the target's state records. */
async function assertSlotBehindTarget(pair: Pair, db: string, when: string): Promise<void> {
  const state = (await pair.target.sql(db, 'SELECT applied_lsn::text AS lsn, slot_name AS slot FROM pgferry.sync')).rows[0] as
    { lsn: string; slot: string } | undefined;
  assert.ok(state, `${when}: pgferry.sync has its row on the target`);
  const slot = (
    await pair.source.sql(
      db,
      `SELECT confirmed_flush_lsn::text AS confirmed, confirmed_flush_lsn <= $1::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $2`,
      [state.lsn, state.slot],
    )
  ).rows[0] as { confirmed: string | null; ok: boolean | null } | undefined;
  assert.ok(slot, `${when}: slot ${state.slot} exists on the source`);
  assert.equal(slot.ok, true, `${when}: the slot's confirmed_flush_lsn ${slot.confirmed} is past the target's applied_lsn ${state.lsn}`);
}

async function waitForOutput(run: PgferryProcess, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(run.output())) {
    if (run.child.exitCode !== null) throw new Error(`sync exited (${run.child.exitCode}) before logging ${pattern}`);
    if (Date.now() > deadline) throw new Error(`sync did not log ${pattern} within ${timeoutMs / 1000} s`);
    await sleep(50);
  }
}

/** The exit code, or 'still running' once `ms` passed (the timer is cleared: it must not hold the test process open). */
async function exitedWithin(run: PgferryProcess, ms: number): Promise<number | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), ms)));
  try {
    return await Promise.race([run.exited(), late]);
  } finally {
    clearTimeout(timer);
  }
}

const tail = (text: string, n: number) => (text.length > n ? `…${text.slice(-n)}` : text);

function describeDifferences(tables: readonly TableComparison[]): string {
  const short = (row: string) => (row.length > 240 ? `${row.slice(0, 240)}…(${row.length} chars)` : row);
  return tables
    .filter((t) => !t.equal)
    .map(
      (t) =>
        `${t.table}: ${t.sourceRows} rows on the source, ${t.targetRows} on the target${t.problem ? ` (${t.problem})` : ''}\n` +
        t.onlyOnSource.map((r) => `  only on the source: ${short(r)}`).join('\n') +
        (t.onlyOnSource.length > 0 && t.onlyOnTarget.length > 0 ? '\n' : '') +
        t.onlyOnTarget.map((r) => `  only on the target: ${short(r)}`).join('\n'),
    )
    .join('\n');
}

/** Drops the run's slots once no sync holds them (a killed one's walsender may linger a moment): a server has 10. */
async function dropSlots(pair: Pair, db: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const { rows } = await pair.source.sql(
      'postgres',
      `SELECT slot_name, active, CASE WHEN NOT active THEN pg_drop_replication_slot(slot_name) IS NULL END AS dropped
         FROM pg_replication_slots WHERE database = $1 AND slot_name LIKE 'pgferry%'`,
      [db],
    );
    const active = (rows as Array<{ slot_name: string; active: boolean }>).filter((slot) => slot.active);
    if (active.length === 0) return;
    if (Date.now() > deadline) throw new Error(`slot ${active.map((slot) => slot.slot_name).join(', ')} still active after 30 s`);
    await sleep(200);
  }
}

/** The property, for one generated workload and plan. */
async function runOnce(pair: Pair, workload: Workload, plan: Plan, log: (line: string) => void): Promise<void> {
  const started = Date.now();
  const db = await pair.source.createDatabase({ prefix: 'prop' });
  await pair.target.sql('postgres', `CREATE DATABASE ${db} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`);
  const outputs: string[] = [];
  const spawned: PgferryProcess[] = [];
  let workloadDone: Promise<void> | undefined;
  let passed = false;
  try {
    // The setting arrived in 13; before it, a transaction is decoded in memory and spilled at a fixed size.
    if (pair.from >= 13) {
      await pair.source.sql('postgres', `ALTER SYSTEM SET logical_decoding_work_mem = '${plan.decodingWorkMem}'`);
      await pair.source.sql('postgres', 'SELECT pg_reload_conf()');
    }
    await pair.source.sql(db, schemaSql(workload.partitioned));

    const clone = await runPgferry(
      [...syncArgs(pair, db, { memoryLimit: '64MB', batchChanges: 100_000, splitAbove: '256MB' }), '--until-caught-up'],
      {},
      SYNC_TIMEOUT_MS,
    );
    outputs.push(`--- clone (sync --until-caught-up), exit ${clone.code}\n${tail(clone.stderr, 3000)}`);
    assert.equal(clone.code, 0, 'the first sync --until-caught-up (the clone) exits 0');

    workloadDone = runWorkload(pair.source, db, workload);
    let workloadFailure: unknown;
    workloadDone.catch((error: unknown) => (workloadFailure = error));
    if (plan.firstSpawnAfterWorkload) await workloadDone;
    await sleep(plan.firstSpawnAfterMs);
    for (const [i, run] of plan.killed.entries()) {
      const sync = spawnPgferry(syncArgs(pair, db, run));
      spawned.push(sync);
      await sleep(run.killAfterMs);
      const exitedByItself = sync.child.exitCode !== null;
      sync.child.kill('SIGKILL');
      const code = await sync.exited();
      outputs.push(
        `--- spawn ${i + 1} (${run.memoryLimit}, ${run.batchChanges}), ${exitedByItself ? `exited by itself with ${code}` : `SIGKILLed after ${run.killAfterMs} ms`}\n${tail(sync.output(), 3000)}`,
      );
      assert.ok(!exitedByItself, `spawned sync ${i + 1} exited by itself (${code}) before its SIGKILL`);
      if (workloadFailure) throw workloadFailure;
      await assertSlotBehindTarget(pair, db, `after SIGKILL of spawn ${i + 1}`);
      await sleep(run.restartAfterMs);
    }
    await workloadDone;
    if (plan.stopped) {
      const run = plan.stopped;
      const sync = spawnPgferry(syncArgs(pair, db, run));
      spawned.push(sync);
      let notStopped: unknown;
      try {
        await waitForOutput(sync, /streaming changes/, 90_000);
        await sleep(run.stopAfterMs);
        assert.ok(
          sync.child.exitCode === null,
          `spawned sync ${plan.killed.length + 1} exited by itself (${sync.child.exitCode}) before its SIGTERM`,
        );
        sync.child.kill('SIGTERM');
      } catch (error) {
        notStopped = error;
        sync.child.kill('SIGKILL');
      }
      const code = await exitedWithin(sync, SYNC_TIMEOUT_MS);
      outputs.push(
        `--- spawn ${plan.killed.length + 1} (${run.memoryLimit}, ${run.batchChanges}), SIGTERM ${run.stopAfterMs} ms after the workload ended: exit ${code}\n${tail(sync.output(), 4000)}`,
      );
      if (notStopped) throw notStopped;
      assert.equal(code, 0, 'a sync stopped with SIGTERM exits 0');
      await assertSlotBehindTarget(pair, db, 'after the SIGTERM');
    }

    const last = await runPgferry([...syncArgs(pair, db, plan.final), '--until-caught-up'], {}, SYNC_TIMEOUT_MS);
    outputs.push(
      `--- final sync --until-caught-up (${plan.final.memoryLimit}, ${plan.final.batchChanges}), exit ${last.code}\n${tail(last.stderr, 6000)}`,
    );
    assert.equal(last.code, 0, 'the final sync --until-caught-up exits 0');
    await assertSlotBehindTarget(pair, db, 'after the final sync');

    const comparison = await compareTables(pair.source.url(db), pair.target.url(db));
    assert.ok(comparison.tables.length >= 5, `there were tables to compare: ${comparison.tables.map((t) => t.table).join(', ')}`);
    assert.ok(comparison.equal, `the target differs from the source:\n${describeDifferences(comparison.tables)}`);
    // Schema changes of the workload reached the target too (a dropped column or an index is not in the rows).
    const [sourceSchema, targetSchema] = await Promise.all([
      pair.source.withClient(db, readFingerprint),
      pair.target.withClient(db, readFingerprint),
    ]);
    const schemaDiff = diffFingerprints(sourceSchema, targetSchema);
    assert.deepEqual(schemaDiff, [], `the target's schema differs from the source's:\n${schemaDiff.join('\n')}`);
    passed = true;
    log(
      `${db}: passed in ${((Date.now() - started) / 1000).toFixed(1)} s; ${workload.sessions} sessions, ${workload.rounds.length} rounds; ${plan.killed.length} kills${plan.stopped ? ', a SIGTERM' : ''}; ${kindsOf(workload)}`,
    );
  } catch (error) {
    const file = join(tmpdir(), `pgferry-property-${db}.sql`);
    writeFileSync(file, renderWorkload(workload));
    throw new Error(
      `${pair.from} → ${pair.to}, database ${db}: ${(error as Error).message}\n` +
        `plan:\n${describePlan(plan)}\n` +
        `workload (${workload.rounds.length} rounds, ${kindsOf(workload)}) written to ${file}\n` +
        `sync output:\n${outputs.join('\n')}`,
    );
  } finally {
    for (const sync of spawned) if (sync.child.exitCode === null && sync.child.signalCode === null) sync.child.kill('SIGKILL');
    await Promise.all(spawned.map((s) => s.exited()));
    await workloadDone?.catch(() => undefined);
    await dropSlots(pair, db);
    if (passed) {
      await dropDatabase(pair.source, db);
      await dropDatabase(pair.target, db);
    }
  }
}

function replayCommand(seed: number, path: string | undefined, pair: Pair): string {
  return [
    LONG ? `PGFERRY_PROPERTY_RUNS=${RUNS}` : '',
    `PGFERRY_PROPERTY_SEED=${seed}`,
    path ? `PGFERRY_PROPERTY_PATH=${path}` : '',
    `PGFERRY_PROPERTY_PAIR=${pair.from}-${pair.to}`,
    WITHOUT.size > 0 ? `PGFERRY_PROPERTY_WITHOUT=${[...WITHOUT].join(',')}` : '',
    'node dist/test/run-tests.js sync-property',
  ]
    .filter((part) => part !== '')
    .join(' ');
}

for (const [from, to] of PAIRS) {
  describe(`sync property ${from} → ${to}`, { skip: ONLY_PAIR !== undefined && ONLY_PAIR !== `${from}-${to}` }, () => {
    let source: Cluster;
    let target: Cluster;
    before(async () => {
      [source, target] = await startClusters([{ version: from }, { version: to }]);
    });
    after(async () => {
      await Promise.all([source?.stop(), target?.stop()]);
    });

    it(
      `leaves the target equal to the source after concurrent workloads, memory limits, batch sizes and SIGKILLs (${PATH ? 'one replayed run' : `${RUNS} runs`}, seed ${SEED})`,
      { timeout: (LONG ? RUNS * 5 : 20) * 60_000 },
      async (t) => {
        const pair: Pair = { from, to, source, target };
        const log = (line: string) => t.diagnostic(line);
        const property = fc.asyncProperty(workloadArbitrary(from), planArbitrary(), (workload, plan) => runOnce(pair, workload, plan, log));
        try {
          await fc.assert(property, {
            numRuns: PATH ? 1 : RUNS,
            seed: SEED,
            path: PATH,
            endOnFailure: !SHRINK,
            includeErrorInReport: true,
          });
        } catch (error) {
          const message = (error as Error).message;
          const path = /path: "([^"]*)"/.exec(message)?.[1];
          console.error(
            `sync property ${from} → ${to} failed: seed ${SEED}, path ${path ?? '(unknown)'}\nreplay: ${replayCommand(SEED, path, pair)}\n${message}`,
          );
          // The message already holds the run's error (includeErrorInReport): no cause, printed twice.
          throw new Error(`seed ${SEED}, path ${path ?? '(unknown)'}; replay: ${replayCommand(SEED, path, pair)}\n${message}`);
        }
      },
    );
  });
}
