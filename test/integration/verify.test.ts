/**
 * `pgferry verify` against real servers, 13 → 17 and 17 → 18. A source database is cloned to
 * a fresh target database per test with `pgferry clone`; each test makes one change on the
 * target (a missing row, an extra row, a changed value inside a TOASTed column, NULL against
 * an empty string, a changed copy of a duplicated keyless row, a sequence set back, a changed
 * row of a two-column key) and asserts that verify names exactly that difference and nothing
 * else, with exit code 4, where the clone alone verifies identical with exit code 0. Then:
 * counts mode, key ranges planned from a sample, bad input, and verify while `pgferry sync`
 * streams under a light pgbench load.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { resolveConnection } from '../../src/config/index.js';
import { createLogger } from '../../src/log/index.js';
import { verify, type VerifyReport } from '../../src/verify/index.js';
import { chooseHashFunction } from '../../src/verify/hash-sql.js';
import { closeLane, openLane } from '../../src/verify/session.js';
import { EVERYTHING } from '../../src/catalog/index.js';
import {
  createPgbenchTables,
  runPgferry,
  spawnPgferry,
  startClusters,
  startLoad,
  useClusterPair,
  waitUntilStreaming,
  type CliResult,
  type Cluster,
  type Load,
  type PgferryProcess,
} from '../harness/index.js';

const PAIRS = [
  [13, 17],
  [17, 18],
] as const;

const ITEMS = 20_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * items: a serial key, NULLs and empty strings, a TOASTed text (rows 5 and 6, about 100 KB
 * each that pglz can't shrink), numeric, timestamptz, float, bytea, interval and jsonb values
 * whose text output depends on the pinned settings. pairs: a two-column key with a text
 * column. bag: no key, ten distinct rows 300 times each.
 */
const FIXTURE = `
  CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, note text, body text, price numeric(12, 3), at timestamptz,
                      ratio float8, raw bytea, span interval, doc jsonb);
  INSERT INTO items (name, note, body, price, at, ratio, raw, span, doc)
    SELECT 'item ' || g, CASE WHEN g % 3 = 0 THEN NULL WHEN g % 3 = 1 THEN '' ELSE 'note ' || g END,
           CASE WHEN g IN (5, 6) THEN (SELECT string_agg(md5(i::text || g), '') FROM generate_series(1, 3125) i) ELSE 'short ' || g END,
           g * 1.125, timestamptz '2024-03-01 12:00:00+00' + g * interval '37 minutes', g / 7.0::float8,
           decode(md5(g::text), 'hex'), g * interval '1 day 3 hours', jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g % 5))
      FROM generate_series(1, ${ITEMS}) g;
  CREATE TABLE pairs (region text, n int, v text, PRIMARY KEY (region, n));
  INSERT INTO pairs SELECT 'region ' || (g % 50), g, md5(g::text) FROM generate_series(1, 5000) g;
  CREATE TABLE bag (x int, y text);
  INSERT INTO bag SELECT g % 10, 'v' || (g % 10) FROM generate_series(1, 3000) g;
  CREATE VIEW cheap_items AS SELECT id, name FROM items WHERE price < 10;`;

interface Verified extends CliResult {
  readonly report: VerifyReport;
}

for (const [from, to] of PAIRS) {
  describe(`verify ${from} → ${to}`, () => {
    let source: Cluster;
    let target: Cluster;
    let sourceDb: string;

    before(async () => {
      [source, target] = await startClusters([{ version: from }, { version: to }]);
      sourceDb = await source.createDatabase({ prefix: 'verify' });
      await source.sql(sourceDb, FIXTURE);
      await source.sql(sourceDb, 'VACUUM ANALYZE');
    });
    after(async () => {
      await Promise.all([source?.stop(), target?.stop()]);
    });

    let clones = 0;
    /** A new target database holding a `pgferry clone` of the source. */
    async function freshClone(): Promise<string> {
      const db = `copy${++clones}`;
      await target.sql('postgres', `CREATE DATABASE ${db}`);
      const run = await runPgferry(['clone', '--source', source.url(sourceDb), '--target', target.url(db)], {}, 120_000);
      assert.equal(run.code, 0, `clone exited ${run.code}:\n${run.stderr.slice(-3000)}`);
      return db;
    }

    async function verifyCli(db: string, extra: readonly string[] = []): Promise<Verified> {
      const run = await runPgferry(
        ['verify', '--json', '--source', source.url(sourceDb), '--target', target.url(db), ...extra],
        {},
        120_000,
      );
      assert.ok(run.code === 0 || run.code === 4, `verify exited ${run.code}:\n${run.stderr.slice(-3000)}`);
      return { ...run, report: JSON.parse(run.stdout) as VerifyReport };
    }

    function table(report: VerifyReport, name: string) {
      const found = report.tables.find((t) => t.name === name);
      assert.ok(found, `the report names ${name}; it has ${report.tables.map((t) => t.name).join(', ')}`);
      return found;
    }

    /** Exactly one table differs, with exactly these differences; sequences and schema as on the source. */
    function assertOnly(run: Verified, name: string, differences: unknown[]): void {
      assert.equal(run.code, 4, `exit code 4 for a difference:\n${run.stderr}`);
      assert.equal(run.report.identical, false);
      const t = table(run.report, name);
      assert.equal(t.status, 'different');
      const order = (list: unknown[]) => [...list].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
      assert.deepEqual(order(t.differences), order(differences));
      const others = run.report.tables.filter((x) => x.name !== name && (x.status !== 'identical' || x.differences.length > 0));
      assert.deepEqual(others, [], 'no other table differs');
      assert.deepEqual(
        run.report.sequences.filter((s) => s.status !== 'identical'),
        [],
        'no sequence differs',
      );
      assert.deepEqual(run.report.schema, [], 'no schema difference');
    }

    it('a clone verifies identical: exit 0, the --json shape, one line per table and a verdict', async () => {
      const db = await freshClone();
      const run = await verifyCli(db);
      assert.equal(run.code, 0, run.stdout);
      const { report } = run;
      assert.equal(report.identical, true);
      assert.equal(report.mode, 'full');
      assert.deepEqual(
        report.tables.map((t) => [t.name, t.status, t.sourceRows, t.targetRows, t.differences]),
        [
          ['public.bag', 'identical', 3000, 3000, []],
          ['public.items', 'identical', ITEMS, ITEMS, []],
          ['public.pairs', 'identical', 5000, 5000, []],
        ],
      );
      for (const t of report.tables) assert.equal(typeof t.seconds, 'number');
      assert.deepEqual(report.sequences, [
        { name: 'public.items_id_seq', source: String(ITEMS), target: String(ITEMS), status: 'identical' },
      ]);
      assert.deepEqual(report.schema, []);

      const human = await runPgferry(['verify', '--source', source.url(sourceDb), '--target', target.url(db)]);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /^public\.items\s+20000\s+20000\s+identical\s+\d+\.\d\d$/m);
      assert.match(human.stdout, /^Identical: 3 tables \(28000 rows\) by content, 1 sequences, schema/m);
    });

    it('a row missing on the target', async () => {
      const db = await freshClone();
      await target.sql(db, 'DELETE FROM items WHERE id = 777');
      const run = await verifyCli(db);
      assertOnly(run, 'public.items', [{ kind: 'missing', key: { id: '777' } }]);
      assert.deepEqual([table(run.report, 'public.items').sourceRows, table(run.report, 'public.items').targetRows], [ITEMS, ITEMS - 1]);
      const human = await runPgferry(['verify', '--source', source.url(sourceDb), '--target', target.url(db)]);
      assert.equal(human.code, 4);
      assert.match(human.stdout, /public\.items {2}missing on the target: id="777"/);
      assert.match(human.stdout, /^Different: 1 of 3 tables/m);
    });

    it('an extra row on the target', async () => {
      const db = await freshClone();
      await target.sql(db, `INSERT INTO items (id, name) VALUES (${ITEMS + 500}, 'stowaway')`);
      assertOnly(await verifyCli(db), 'public.items', [{ kind: 'extra', key: { id: String(ITEMS + 500) } }]);
    });

    it('a changed value inside a TOASTed column', async () => {
      const db = await freshClone();
      const [{ stored }] = (
        await target.sql(
          db,
          `SELECT pg_column_size(body) < octet_length(body) / 2 OR pg_column_size(body) > 8000 AS stored FROM items WHERE id = 5`,
        )
      ).rows as [{ stored: boolean }];
      assert.ok(stored, 'row 5 holds a big body');
      await target.sql(db, `UPDATE items SET body = overlay(body PLACING 'X' FROM 70000 FOR 1) WHERE id = 5`);
      assertOnly(await verifyCli(db), 'public.items', [{ kind: 'changed', key: { id: '5' }, columns: ['body'] }]);
    });

    it('NULL against an empty string, both ways', async () => {
      const db = await freshClone();
      // Row 3 has a NULL note on the source, row 4 an empty one.
      await target.sql(db, `UPDATE items SET note = '' WHERE id = 3; UPDATE items SET note = NULL WHERE id = 4`);
      assertOnly(await verifyCli(db), 'public.items', [
        { kind: 'changed', key: { id: '3' }, columns: ['note'] },
        { kind: 'changed', key: { id: '4' }, columns: ['note'] },
      ]);
    });

    it('a changed copy of a duplicated row in a keyless table', async () => {
      const db = await freshClone();
      await target.sql(db, `UPDATE bag SET y = 'changed' WHERE ctid = (SELECT ctid FROM bag WHERE x = 3 LIMIT 1)`);
      assertOnly(await verifyCli(db), 'public.bag', [
        { kind: 'missing', key: { x: '3', y: 'v3' } },
        { kind: 'extra', key: { x: '3', y: 'changed' } },
      ]);
    });

    it('a sequence behind the source, and one ahead (not a difference)', async () => {
      const db = await freshClone();
      await target.sql(db, `SELECT setval('items_id_seq', 10)`);
      const run = await verifyCli(db);
      assert.equal(run.code, 4);
      assert.deepEqual(run.report.sequences, [{ name: 'public.items_id_seq', source: String(ITEMS), target: '10', status: 'behind' }]);
      assert.deepEqual(
        run.report.tables.filter((t) => t.status !== 'identical'),
        [],
      );
      assert.deepEqual(run.report.schema, []);
      await target.sql(db, `SELECT setval('items_id_seq', ${ITEMS + 1000})`);
      const ahead = await verifyCli(db);
      assert.equal(ahead.code, 0);
      assert.equal(ahead.report.sequences[0]!.status, 'ahead');
    });

    it("the public schema's owner is carried by the clone, and another owner on the target is a schema difference", async () => {
      const db = await freshClone();
      const ownerOf = async (cluster: Cluster, database: string) =>
        (await cluster.sql(database, `SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = 'public'`)).rows[0]
          ?.owner as string;
      const sourceOwner = await ownerOf(source, sourceDb);
      // initdb makes the bootstrap superuser its owner before 15, pg_database_owner from 15 on.
      assert.equal(sourceOwner, from < 15 ? source.superuser : 'pg_database_owner');
      assert.equal(await ownerOf(target, db), sourceOwner, 'the clone gives public the source’s owner');
      const other = sourceOwner === 'pg_database_owner' ? target.superuser : 'pg_database_owner';
      await target.sql(db, `ALTER SCHEMA public OWNER TO ${other}`);
      const run = await verifyCli(db);
      assert.equal(run.code, 4, run.stdout);
      // pg_dump's rule: public's owner is an object of its own unless it is pg_database_owner.
      assert.deepEqual(run.report.schema, [
        sourceOwner === 'pg_database_owner'
          ? { object: `owner public owner ${other}`, kind: 'extra' }
          : { object: `owner public owner ${sourceOwner}`, kind: 'missing' },
      ]);
      assert.deepEqual(
        run.report.tables.filter((t) => t.status !== 'identical'),
        [],
      );
    });

    it('a table without columns and one of generated columns only: their rows are counted, and a missing one is named', async () => {
      const bareSource = await source.createDatabase({ prefix: 'bare' });
      await source.sql(
        bareSource,
        `CREATE TABLE nothing (); INSERT INTO nothing SELECT FROM generate_series(1, 7);
         CREATE TABLE computed (one int GENERATED ALWAYS AS (1) STORED); INSERT INTO computed SELECT FROM generate_series(1, 4);`,
      );
      const db = `bare${++clones}`;
      await target.sql('postgres', `CREATE DATABASE ${db}`);
      const cloned = await runPgferry(['clone', '--source', source.url(bareSource), '--target', target.url(db)], {}, 120_000);
      assert.equal(cloned.code, 0, cloned.stderr);
      const run = async () => {
        const r = await runPgferry(['verify', '--json', '--source', source.url(bareSource), '--target', target.url(db)], {}, 120_000);
        assert.ok(r.code === 0 || r.code === 4, `verify exited ${r.code}:\n${r.stderr.slice(-3000)}`);
        return { ...r, report: JSON.parse(r.stdout) as VerifyReport };
      };
      const same = await run();
      assert.equal(same.code, 0, same.stdout);
      assert.deepEqual(
        same.report.tables.map((t) => [t.name, t.status, t.sourceRows, t.targetRows]),
        [
          ['public.computed', 'identical', 4, 4],
          ['public.nothing', 'identical', 7, 7],
        ],
      );
      await target.sql(db, `DELETE FROM nothing WHERE ctid = (SELECT min(ctid) FROM nothing)`);
      const lost = await run();
      assert.equal(lost.code, 4, lost.stdout);
      const nothing = table(lost.report, 'public.nothing');
      assert.deepEqual([nothing.status, nothing.sourceRows, nothing.targetRows], ['different', 7, 6]);
      assert.deepEqual(nothing.differences, [{ kind: 'missing', key: {} }], 'one row of no values is missing');
      assert.equal(table(lost.report, 'public.computed').status, 'identical');
      const human = await runPgferry(['verify', '--source', source.url(bareSource), '--target', target.url(db)], {}, 120_000);
      assert.match(human.stdout, /missing on the target: \(\) \(a row of a table without columns\)/);
    });

    it('a changed row of a two-column key is named by both columns', async () => {
      const db = await freshClone();
      await target.sql(db, `UPDATE pairs SET v = 'different' WHERE region = 'region 7' AND n = 107`);
      assertOnly(await verifyCli(db), 'public.pairs', [{ kind: 'changed', key: { region: 'region 7', n: '107' }, columns: ['v'] }]);
    });

    it('counts mode compares row counts and sequences only', async () => {
      const db = await freshClone();
      await target.sql(db, `UPDATE items SET name = 'renamed' WHERE id = 1; DELETE FROM pairs WHERE n = 1`);
      const run = await verifyCli(db, ['--mode', 'counts']);
      assert.equal(run.code, 4);
      assert.equal(run.report.mode, 'counts');
      assert.deepEqual(
        run.report.tables.map((t) => [t.name, t.status, t.sourceRows, t.targetRows, t.differences.length]),
        [
          ['public.bag', 'identical', 3000, 3000, 0],
          ['public.items', 'identical', ITEMS, ITEMS, 0],
          ['public.pairs', 'different', 5000, 4999, 0],
        ],
      );
      assert.deepEqual(run.report.schema, []);
    });

    it('big tables are first cut into key ranges planned from a sample; the difference is still named exactly', async () => {
      const db = await freshClone();
      await target.sql(
        db,
        `DELETE FROM items WHERE id = 19999; UPDATE pairs SET v = NULL WHERE region = 'region 49' AND n = 4999; DELETE FROM pairs WHERE n = 1`,
      );
      const report = await verify({
        source: await resolveConnection('source', source.url(sourceDb)),
        target: await resolveConnection('target', target.url(db)),
        filter: EVERYTHING,
        mode: 'full',
        jobs: 2,
        logger: createLogger({ level: 'silent' }),
        rowsPerRange: 1_500,
      });
      assert.equal(report.identical, false);
      assert.deepEqual(table(report, 'public.items').differences, [{ kind: 'missing', key: { id: '19999' } }]);
      assert.deepEqual(
        [...table(report, 'public.pairs').differences].sort((a, b) => a.kind.localeCompare(b.kind)),
        [
          { kind: 'changed', key: { region: 'region 49', n: '4999' }, columns: ['v'] },
          { kind: 'missing', key: { region: 'region 1', n: '1' } },
        ],
      );
      assert.equal(table(report, 'public.bag').status, 'identical');
      assert.equal(table(report, 'public.items').sourceRows, ITEMS);
    });

    it('columns hashed from their values: every change their text output shows is seen, and a column typed apart on the target is compared by text', async () => {
      // A database of its own, so the shared source keeps its three tables.
      const typedSource = await source.createDatabase({ prefix: 'typed' });
      await source.sql(
        typedSource,
        `CREATE TABLE typed (id int8 PRIMARY KEY, small int2, n int4, big int8, o oid, flag bool, u uuid, t text, v varchar(40), amount numeric, f float8, c char(6));
         INSERT INTO typed SELECT g, g, g * 1000, CASE WHEN g = 3 THEN 1 ELSE g * 10000000000 END, g, g % 2 = 0, md5(g::text)::uuid,
                                  'text ' || g, 'varchar ' || g, 1.0, 0, 'ü' || g
           FROM generate_series(1, 500) g;
         UPDATE typed SET flag = NULL, t = NULL WHERE id IN (7, 9);
         CREATE TABLE typed_bag (n int4, t text);
         INSERT INTO typed_bag SELECT g % 3, 'bag' FROM generate_series(1, 30) g;
         CREATE TABLE padded (id int4 PRIMARY KEY, c char(4));
         INSERT INTO padded VALUES (1, 'ab'), (2, ''), (3, NULL);`,
      );
      const copy = async (): Promise<string> => {
        const db = `typedcopy${++clones}`;
        await target.sql('postgres', `CREATE DATABASE ${db}`);
        const run = await runPgferry(['clone', '--source', source.url(typedSource), '--target', target.url(db)], {}, 120_000);
        assert.equal(run.code, 0, run.stderr.slice(-3000));
        return db;
      };
      const verifyTyped = async (db: string): Promise<Verified> => {
        const run = await runPgferry(['verify', '--json', '--source', source.url(typedSource), '--target', target.url(db)], {}, 120_000);
        assert.ok(run.code === 0 || run.code === 4, run.stderr.slice(-3000));
        return { ...run, report: JSON.parse(run.stdout) as VerifyReport };
      };

      const db = await copy();
      assert.equal((await verifyTyped(db)).code, 0);
      // Both servers hash the probe rows alike, so these columns are hashed from their values.
      const lane = await openLane(
        await resolveConnection('source', source.url(typedSource)),
        await resolveConnection('target', target.url(db)),
      );
      try {
        assert.equal(await chooseHashFunction(lane), 'typed');
      } finally {
        await closeLane(lane);
      }
      await target.sql(
        db,
        `UPDATE typed SET amount = 1.00 WHERE id = 1;                  -- equal numerics, printed apart
         UPDATE typed SET t = 'text 2 changed' WHERE id = 2;
         UPDATE typed SET big = 4294967296 WHERE id = 3;               -- hashint8extended(1) = hashint8extended(2^32)
         UPDATE typed SET f = '-0' WHERE id = 4;                       -- -0 = 0, printed apart
         UPDATE typed SET t = v, v = t WHERE id = 5;                   -- the same values, in each other's column
         UPDATE typed SET flag = false WHERE id = 7;                   -- NULL against a value
         UPDATE typed SET t = '' WHERE id = 9;                         -- NULL against an empty string
         UPDATE typed SET u = md5('other')::uuid, small = -small, o = 4000000000 WHERE id = 11;
         UPDATE typed SET c = 'ü13 ' WHERE id = 13;                    -- char(6): the same value, blanks given
         UPDATE typed SET c = 'ü15x' WHERE id = 15;
         UPDATE typed SET c = NULL WHERE id = 17;
         UPDATE typed SET c = '' WHERE id = 19;                        -- ü19 against blanks only
         UPDATE typed_bag SET n = 5 WHERE ctid = (SELECT ctid FROM typed_bag WHERE n = 1 LIMIT 1);`,
      );
      const run = await verifyTyped(db);
      assert.equal(run.code, 4);
      const order = (list: unknown[]) => [...list].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
      const changed = (id: number, ...columns: string[]) => ({ kind: 'changed', key: { id: String(id) }, columns });
      assert.deepEqual(
        order(table(run.report, 'public.typed').differences),
        order([
          changed(1, 'amount'),
          changed(2, 't'),
          changed(3, 'big'),
          changed(4, 'f'),
          changed(5, 't', 'v'),
          changed(7, 'flag'),
          changed(9, 't'),
          changed(11, 'small', 'o', 'u'),
          changed(15, 'c'),
          changed(17, 'c'),
          changed(19, 'c'),
        ]),
      );
      assert.deepEqual(
        order(table(run.report, 'public.typed_bag').differences),
        order([
          { kind: 'missing', key: { n: '1', t: 'bag' } },
          { kind: 'extra', key: { n: '5', t: 'bag' } },
        ]),
      );

      // The target holds big as numeric: the same values print alike, so the rows are equal; the
      // schema difference is reported on its own. It holds padded.c as char(6): the same letters
      // print with more blanks, so those rows differ (the char(n) hash alone would miss that).
      const retyped = await copy();
      await target.sql(retyped, 'ALTER TABLE typed ALTER big TYPE numeric; ALTER TABLE padded ALTER c TYPE char(6)');
      const again = await verifyTyped(retyped);
      assert.equal(table(again.report, 'public.typed').status, 'identical', JSON.stringify(again.report.tables));
      assert.equal(table(again.report, 'public.typed_bag').status, 'identical');
      assert.deepEqual(
        order(table(again.report, 'public.padded').differences),
        order([
          { kind: 'changed', key: { id: '1' }, columns: ['c'] },
          { kind: 'changed', key: { id: '2' }, columns: ['c'] },
        ]),
      );
      assert.ok(again.report.schema.length > 0, 'the changed column type is a schema difference');
    });

    it('a policy naming two roles whose OIDs run in the opposite order on the target verifies identical', async () => {
      // Found by the zoo corpus: the roles of a policy were listed in OID order, which differs
      // between servers where the roles were made in another order.
      await source.sql('postgres', 'CREATE ROLE verify_pol_b NOLOGIN; CREATE ROLE verify_pol_a NOLOGIN');
      await target.sql('postgres', 'CREATE ROLE verify_pol_a NOLOGIN; CREATE ROLE verify_pol_b NOLOGIN');
      const db = await source.createDatabase({ prefix: 'policy' });
      await source.sql(
        db,
        `CREATE TABLE guarded (id int PRIMARY KEY, owner text);
         ALTER TABLE guarded ENABLE ROW LEVEL SECURITY;
         CREATE POLICY mine ON guarded TO verify_pol_b, verify_pol_a USING (owner = current_user);`,
      );
      await target.sql('postgres', `CREATE DATABASE ${db}`);
      const args = ['--source', source.url(db), '--target', target.url(db)];
      const cloned = await runPgferry(['clone', ...args], {}, 120_000);
      assert.equal(cloned.code, 0, cloned.stderr);
      const run = await runPgferry(['verify', '--json', ...args], {}, 120_000);
      assert.equal(run.code, 0, run.stdout);
    });

    it('bad input: a table pattern naming nothing, a target that is not there', async () => {
      const db = await freshClone();
      const unknown = await runPgferry([
        'verify',
        '--source',
        source.url(sourceDb),
        '--target',
        target.url(db),
        '--include-table',
        'nosuch',
      ]);
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /--include-table "nosuch" matches no table/);
      const down = await runPgferry([
        'verify',
        '--source',
        source.url(sourceDb),
        '--target',
        `postgres://postgres@127.0.0.1:1/${db}?sslmode=disable`,
      ]);
      assert.equal(down.code, 1);
      assert.match(down.stderr, /^pgferry: target: nothing accepts connections at 127\.0\.0\.1:1/m);
      const missing = await runPgferry(['verify', '--json', '--source', source.url(sourceDb), '--target', target.url('postgres')]);
      assert.equal(missing.code, 4);
      const report = JSON.parse(missing.stdout) as VerifyReport;
      assert.deepEqual(
        report.tables.map((t) => t.status),
        ['missing-on-target', 'missing-on-target', 'missing-on-target'],
      );
    });
  });
}

describe('verify while pgferry sync streams under a light load', () => {
  const pair = useClusterPair(17, 18);

  /** pgbench tables on the source, sync streaming them and a light pgbench load: a target always a little behind. */
  async function streamingUnderLoad(prefix: string): Promise<{ db: string; sync: PgferryProcess; load: Load }> {
    const db = await pair.source.createDatabase({ prefix });
    await pair.target.sql('postgres', `CREATE DATABASE ${db}`);
    await createPgbenchTables(pair.source, db, 1);
    // pgbench_history has no key; sync needs a replica identity to carry its rows.
    await pair.source.sql(db, 'ALTER TABLE pgbench_history REPLICA IDENTITY FULL');
    const sync = spawnPgferry(['sync', '--source', pair.source.url(db), '--target', pair.target.url(db)]);
    const load = startLoad(pair.source.url(db), { clients: 2, scale: 1, ratePerSecond: 50 });
    try {
      await waitUntilStreaming(pair.target, db, sync);
      await sleep(1_000);
    } catch (error) {
      await load.stop();
      sync.child.kill('SIGINT');
      await sync.exited();
      throw error;
    }
    return { db, sync, load };
  }

  /** The slots of stopped syncs into `db`, which would otherwise hold WAL on the shared source. */
  async function dropStoppedSlots(db: string): Promise<void> {
    await pair.source.sql(
      'postgres',
      `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`,
      [db],
    );
  }

  it('reports identical once the differences in flight are rechecked', async () => {
    const { db, sync, load } = await streamingUnderLoad('moving');
    try {
      const runs: Array<{ code: number; report: VerifyReport }> = [];
      for (let i = 0; i < 2; i++) {
        const run = await runPgferry(['verify', '--json', '--source', pair.source.url(db), '--target', pair.target.url(db)], {}, 120_000);
        assert.ok(run.stdout.length > 0, `verify printed nothing (exit ${run.code}):\n${run.stderr}`);
        runs.push({ code: run.code, report: JSON.parse(run.stdout) as VerifyReport });
      }
      for (const { code, report } of runs) {
        assert.equal(code, 0, JSON.stringify(report, null, 1));
        assert.equal(report.identical, true);
        assert.deepEqual(
          report.tables.map((t) => t.name),
          ['public.pgbench_accounts', 'public.pgbench_branches', 'public.pgbench_history', 'public.pgbench_tellers'],
        );
      }
      assert.ok(load.committed > 0, 'the load committed transactions while verify ran');
      // Without the recheck, the moving tables are reported as they were first seen.
      const first = await runPgferry(
        ['verify', '--json', '--no-recheck', '--source', pair.source.url(db), '--target', pair.target.url(db)],
        {},
        120_000,
      );
      assert.ok(first.code === 0 || first.code === 4, first.stderr);
      // The load must have made the source move under verify, or "identical" proved nothing.
      const sawMovement =
        first.code === 4 || runs.some((r) => r.report.notes.some((n) => /[1-9]\d* table\(s\) differed at the first check/.test(n)));
      assert.ok(sawMovement, `no check ever saw the source ahead of the target: ${JSON.stringify(runs.map((r) => r.report.notes))}`);
    } finally {
      const report = await load.stop();
      sync.child.kill('SIGINT');
      await sync.exited();
      assert.deepEqual(report.errors, []);
    }
    // Writes stopped and sync drained: the result is exact, and still identical.
    const caughtUp = await runPgferry(
      ['sync', '--source', pair.source.url(db), '--target', pair.target.url(db), '--until-caught-up'],
      {},
      120_000,
    );
    assert.equal(caughtUp.code, 0, caughtUp.stderr.slice(-3000));
    const exact = await runPgferry(
      ['verify', '--json', '--no-recheck', '--source', pair.source.url(db), '--target', pair.target.url(db)],
      {},
      120_000,
    );
    assert.equal(exact.code, 0, exact.stdout);
    await dropStoppedSlots(db);
  });

  it('counts mode while sync streams does not explain away a row lost on a table the source keeps writing', async () => {
    const { db, sync, load } = await streamingUnderLoad('lostrow');
    try {
      // A row the stream will never bring back: lost on the target, kept on the source.
      await pair.target.sql(db, `DELETE FROM pgbench_history WHERE ctid = (SELECT min(ctid) FROM pgbench_history)`);
      const run = await runPgferry(
        ['verify', '--json', '--mode', 'counts', '--source', pair.source.url(db), '--target', pair.target.url(db)],
        {},
        120_000,
      );
      const report = JSON.parse(run.stdout) as VerifyReport;
      const history = report.tables.find((t) => t.name === 'public.pgbench_history');
      assert.notEqual(history?.status, 'identical', JSON.stringify(report, null, 1));
      assert.equal(run.code, 4, JSON.stringify(report, null, 1));
    } finally {
      await load.stop();
      sync.child.kill('SIGINT');
      await sync.exited();
    }
    await dropStoppedSlots(db);
  });
});
