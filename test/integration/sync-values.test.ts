/**
 * Values that must arrive exactly as the source holds them, in the clone and in the stream
 * (review B2, B3, B4, B6, B8, B10): OID-alias types, GENERATED ALWAYS identity columns,
 * length-limited types, money under a source locale, composite text keys, and NULLs under a
 * target that reads arrays differently.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { runPgferry } from '../harness/index.js';
import { useSyncPair } from '../harness/sync-fixture.js';

const PAIRS = [
  [13, 17],
  [17, 18],
] as const;

/** A locale other than C, for lc_monetary: generated when missing, which needs root and localedef. */
function haveLocale(name: string): boolean {
  const listed = () =>
    execFileSync('locale', ['-a'], { encoding: 'utf8' })
      .split('\n')
      .some((l) => l.toLowerCase() === name.toLowerCase().replace('utf-8', 'utf8'));
  if (listed()) return true;
  try {
    const [language, charset] = name.split('.');
    execFileSync('localedef', ['-i', language!, '-f', charset!, name], { stdio: 'ignore' });
  } catch {
    return false;
  }
  return listed();
}

for (const [from, to] of PAIRS) {
  describe(`sync ${from} → ${to}: values that round-trip`, () => {
    const pair = useSyncPair(from, to);

    it('copies and streams regclass, regtype, regproc, regnamespace and regconfig values by name, not by OID', async () => {
      const db = await pair.freshDatabase(
        'reg',
        `CREATE SCHEMA other;
         CREATE TABLE public.foo (x int);
         CREATE TABLE other.bar (x int);
         CREATE TYPE other.mood AS ENUM ('a');
         CREATE FUNCTION other.f() RETURNS int LANGUAGE sql AS 'SELECT 1';
         CREATE TABLE ref (id int PRIMARY KEY, rel regclass, typ regtype, fn regproc, ns regnamespace, cfg regconfig, rels regclass[]);
         INSERT INTO ref VALUES (1, 'public.foo', 'other.mood', 'other.f', 'other', 'english', '{public.foo,other.bar}'),
                                (2, 'other.bar', 'int4', 'now', 'public', 'simple', '{}');`,
      );
      // The objects the values name, made on the target in another order: other OIDs there.
      await pair.target.sql(
        db,
        `CREATE TABLE filler1 (x int); CREATE SCHEMA other; CREATE TYPE other.mood AS ENUM ('a');
         CREATE TABLE other.bar (x int); CREATE TABLE public.foo (x int); CREATE FUNCTION other.f() RETURNS int LANGUAGE sql AS 'SELECT 1';
         DROP TABLE filler1;`,
      );
      await pair.sync(db, ['--include-table', 'ref']);
      await pair.assertSame(db);
      await pair.change(db, [
        `INSERT INTO ref VALUES (3, 'foo', 'other.mood', 'other.f', 'other', 'english', '{foo,other.bar}')`,
        `UPDATE ref SET rel = 'other.bar', rels = '{other.bar}' WHERE id = 1`,
      ]);
      await pair.sync(db, ['--include-table', 'ref']);
      await pair.assertSame(db);
      const [row] = await pair.rows<{ rel: string; relid: boolean }>(
        pair.target,
        db,
        `SELECT rel::text, rel = 'public.foo'::regclass AS relid FROM ref WHERE id = 3`,
      );
      assert.deepEqual(row, { rel: 'foo', relid: true });
    });

    it('updates GENERATED ALWAYS identity columns that are not the key: SET … = DEFAULT, and a delete and re-insert of a key', async () => {
      const db = await pair.cloned(
        'ident',
        `CREATE TABLE item (code text PRIMARY KEY, n int GENERATED ALWAYS AS IDENTITY, v text); INSERT INTO item (code, v) VALUES ('a', 'x'), ('b', 'x');`,
      );
      await pair.change(db, [
        `UPDATE item SET n = DEFAULT WHERE code = 'a'`,
        `BEGIN; DELETE FROM item WHERE code = 'b'; INSERT INTO item (code, v) VALUES ('b', 'y'); COMMIT`,
        `INSERT INTO item (code, v) SELECT 'many' || g, 'z' FROM generate_series(1, 100) g`,
        `UPDATE item SET n = DEFAULT, v = 'w' WHERE code LIKE 'many%'`,
      ]);
      await pair.sync(db);
      await pair.assertSame(db);
    });

    it('refuses a value longer than the target column instead of cutting it, then applies it once the target is widened', async () => {
      const db = await pair.cloned(
        'width',
        `CREATE TABLE w (id int PRIMARY KEY, name varchar(50), code char(6), bits bit(5), vbits varbit(6))`,
      );
      // Narrower on the target than on the source, by hand (a schema change on the source would be carried).
      await pair.target.sql(
        db,
        `ALTER TABLE w ALTER COLUMN name TYPE varchar(10), ALTER COLUMN code TYPE char(3), ALTER COLUMN bits TYPE bit(3), ALTER COLUMN vbits TYPE varbit(3)`,
      );
      await pair.change(db, [`INSERT INTO w VALUES (1, repeat('z', 40), 'abcdef', B'10101', B'101010')`]);
      const refused = await runPgferry(pair.syncArgs(db), {}, 60_000);
      assert.notEqual(refused.code, 0, `sync wrote a value that does not fit:\n${refused.stderr.slice(-2000)}`);
      assert.match(refused.stderr, /too long|does not match|length/i);
      assert.deepEqual(await pair.rows(pair.target, db, 'SELECT * FROM w'), [], 'nothing was cut to fit');
      await pair.target.sql(
        db,
        `ALTER TABLE w ALTER COLUMN name TYPE varchar(50), ALTER COLUMN code TYPE char(6), ALTER COLUMN bits TYPE bit(5), ALTER COLUMN vbits TYPE varbit(6)`,
      );
      await pair.sync(db);
      await pair.assertSame(db);
    });

    it('finds rows of a REPLICA IDENTITY FULL table by its primary key through the index, not by scanning the table per change', async () => {
      const db = await pair.cloned(
        'fullpk',
        `CREATE TABLE f (id int PRIMARY KEY, v text, n int);
         ALTER TABLE f REPLICA IDENTITY FULL;
         INSERT INTO f SELECT g, md5(g::text), g FROM generate_series(1, 100000) g;`,
      );
      const scans = async () => {
        const [row] = await pair.rows<{ n: string }>(
          pair.target,
          db,
          `SELECT seq_scan::text AS n FROM pg_stat_user_tables WHERE relid = 'public.f'::regclass`,
        );
        return Number(row?.n);
      };
      const before = await scans();
      await pair.change(db, [
        `DO $$BEGIN FOR i IN 1..300 LOOP UPDATE f SET v = 'changed', n = -n WHERE id = i * 97; COMMIT; END LOOP; END$$`,
        `DO $$BEGIN FOR i IN 1..100 LOOP DELETE FROM f WHERE id = i * 89 + 1; COMMIT; END LOOP; END$$`,
        `BEGIN; UPDATE f SET id = -id WHERE id = 5; UPDATE f SET v = NULL WHERE id = 6; COMMIT`,
      ]);
      await pair.sync(db);
      await pair.assertSame(db);
      const scanned = (await scans()) - before;
      assert.ok(scanned < 20, `the target scanned the whole table ${scanned} times for 402 changes`);
    });

    it('keeps two composite text keys apart that differ only in where a \\x01 byte sits', async () => {
      const db = await pair.cloned(
        'kk',
        `CREATE TABLE kk (a text, b text, v int, PRIMARY KEY (a, b)); INSERT INTO kk VALUES ('x', E'\\x01y', 1), (E'x\\x01', 'y', 2);`,
      );
      await pair.change(db, [
        `BEGIN; UPDATE kk SET v = 10 WHERE a = 'x' AND b = E'\\x01y'; DELETE FROM kk WHERE a = E'x\\x01' AND b = 'y'; COMMIT`,
      ]);
      await pair.sync(db);
      await pair.assertSame(db);
    });

    it('writes NULLs as NULL into a target whose database sets array_nulls off', async () => {
      const db = await pair.cloned('arraynulls', `CREATE TABLE n (id int PRIMARY KEY, t text, a text[])`);
      await pair.target.sql('postgres', `ALTER DATABASE ${db} SET array_nulls = off`);
      await pair.change(db, [`INSERT INTO n VALUES (1, NULL, NULL), (2, 'NULL', '{NULL,"NULL"}')`, `UPDATE n SET t = NULL WHERE id = 2`]);
      await pair.sync(db);
      await pair.assertSame(db);
      assert.deepEqual(await pair.rows(pair.target, db, 'SELECT id, t IS NULL AS null_t FROM n ORDER BY id'), [
        { id: 1, null_t: true },
        { id: 2, null_t: true },
      ]);
    });

    it("streams a SQL_ASCII source's UTF-8 text, and stops on bytes that are not UTF-8 instead of replacing them", async () => {
      // (A clone refuses such bytes too: the source converts to UTF-8 for COPY, and checks them.)
      const db = await pair.freshDatabase(
        'ascii',
        `CREATE TABLE s (id int PRIMARY KEY, t text); INSERT INTO s VALUES (1, 'plain'), (2, 'café');`,
        { encoding: 'SQL_ASCII' },
      );
      await pair.sync(db);
      await pair.change(db, [`INSERT INTO s VALUES (3, 'déjà vu in UTF-8')`]);
      await pair.sync(db);
      await pair.assertSame(db);
      await pair.change(db, [`INSERT INTO s VALUES (4, E'caf\\xe9')`]);
      const refused = await runPgferry(pair.syncArgs(db), {}, 60_000);
      assert.notEqual(refused.code, 0, `sync carried bytes it cannot carry:\n${refused.stderr}`);
      assert.match(refused.stderr, /walsender cannot send a change .*invalid byte sequence/);
      assert.match(refused.stderr, /not UTF-8 \(a SQL_ASCII database\)/);
      assert.deepEqual(
        await pair.rows(pair.target, db, 'SELECT id FROM s ORDER BY id'),
        [{ id: 1 }, { id: 2 }, { id: 3 }],
        'nothing was altered to fit',
      );
    });

    it('streams money printed under a source database lc_monetary that the target does not share', async (t) => {
      if (!haveLocale('de_DE.UTF-8')) {
        t.skip('NOT RUN: the locale de_DE.UTF-8 is missing and could not be generated (localedef as root)');
        return;
      }
      const db = await pair.freshDatabase('money', `CREATE TABLE m (id int PRIMARY KEY, amount money)`);
      await pair.source.sql('postgres', `ALTER DATABASE ${db} SET lc_monetary = 'de_DE.UTF-8'`);
      await pair.source.sql(db, `INSERT INTO m VALUES (1, 1234.56)`);
      await pair.sync(db);
      await pair.change(db, [`INSERT INTO m VALUES (2, 1234.56), (3, -0.5)`]);
      await pair.sync(db);
      await pair.assertSame(db);
    });
  });
}
