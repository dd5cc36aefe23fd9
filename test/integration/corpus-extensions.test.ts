/**
 * The extensions corpus (issue 30, DESIGN decision 16): PostGIS and pg_partman as applications
 * use them (test/fixtures/corpus-extensions.sql), through every path, on Debian's PostgreSQL 15
 * servers (npm's have neither extension): check; clone; sync while the application inserts, updates and
 * deletes and pg_partman's maintenance creates, detaches and drops partitions; verify --mode
 * full; cutover --verify full; and the way back, with the same writes and maintenance on the new
 * primary. Judged apart from pgferry's own reading of the catalogs: pg_dump --schema-only of both
 * sides is the same (pgferry's own objects aside), and every table holds the same rows.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import type { CutoverReport } from '../../src/cutover/index.js';
import type { VerifyReport } from '../../src/verify/index.js';
import {
  compareTables,
  DEBIAN_MAJOR,
  runPgferry,
  spawnPgferry,
  startWriter,
  stopSync,
  useClusterPair,
  waitUntilStreaming,
  writerDatabases,
  type Cluster,
  type ClusterOptions,
  type PgferryProcess,
  type Writer,
} from '../harness/index.js';
import { schemaDifference } from '../harness/dump-compare.js';
import { findPgDump } from '../harness/pg-dump.js';

const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/corpus-extensions.sql', import.meta.url));
const SERVER: ClusterOptions = { version: DEBIAN_MAJOR, distribution: 'debian', extensions: ['postgis', 'pg_partman'] };
const CATCH_UP_MS = 90_000;

function fixture(): string {
  assert.ok(existsSync(FIXTURE), `${FIXTURE} is missing: it is part of the repository`);
  return readFileSync(FIXTURE, 'utf8');
}

/** pg_dump --schema-only of `db` on both servers is the same (owners and grants included), pgferry's own objects aside. */
async function assertSameSchema(from: Cluster, to: Cluster, db: string, when: string): Promise<void> {
  const fixtureThere = await from.sql(db, `SELECT count(*)::int AS n FROM pg_extension WHERE extname IN ('postgis', 'pg_partman')`);
  // A dump of an empty database would compare equal too.
  assert.equal((fixtureThere.rows[0] as { n: number }).n, 2, `${when}: the source lacks the fixture's extensions`);
  const difference = await schemaDifference({ cluster: from, database: db }, { cluster: to, database: db }, { owners: true });
  if (difference !== undefined) assert.fail(`${when}: pg_dump of the target differs from pg_dump of the source:\n${difference}`);
}

/** Every table (extension configuration tables, partitions, detached partitions) holds the same rows on both. */
async function assertSameRows(from: Cluster, to: Cluster, db: string, when: string): Promise<void> {
  const comparison = await compareTables(from.url(db), to.url(db));
  const names = comparison.tables.map((t) => t.table);
  for (const expected of ['public.spatial_ref_sys', 'partman.part_config', 'public.places', 'public.readings_default']) {
    assert.ok(names.includes(expected), `${when}: ${expected} was not compared (${names.join(', ')})`);
  }
  const unequal = comparison.tables.filter((t) => !t.equal);
  assert.ok(comparison.equal, `${when}: tables differ: ${JSON.stringify(unequal, null, 1).slice(0, 4000)}`);
}

/** The partitions of the fixture's two partitioned tables on `cluster`, by parent. */
async function partitions(cluster: Cluster, db: string): Promise<Record<string, string[]>> {
  const { rows } = await cluster.sql(
    db,
    `SELECT p.relname AS parent, coalesce(array_agg(c.relname::text ORDER BY c.relname) FILTER (WHERE c.oid IS NOT NULL), '{}') AS children
       FROM pg_class p LEFT JOIN pg_inherits i ON i.inhparent = p.oid LEFT JOIN pg_class c ON c.oid = i.inhrelid
      WHERE p.relname IN ('readings', 'tracks') AND p.relkind = 'p' GROUP BY p.relname`,
  );
  return Object.fromEntries((rows as Array<{ parent: string; children: string[] }>).map((r) => [r.parent, r.children]));
}

/**
 * The application's own writes on the extensions' tables, each transaction committed with
 * synchronous_commit on: inserts, updates (a reading moved to another day's partition among
 * them) and deletes of geometries, geographies and partitioned rows, a new SRID and a changed
 * one, and a change to pg_partman's configuration. `round` keeps rounds apart.
 */
async function applicationWrites(cluster: Cluster, db: string, round: number): Promise<void> {
  const srid = 910100 + round;
  await cluster.withClient(db, async (client) => {
    await client.query('SET synchronous_commit = on');
    await client.query(`BEGIN;
      INSERT INTO places (region_id, name, location, reach, route, tags)
      SELECT 1 + g % 10, 'round ${round} place ' || g, ST_SetSRID(ST_MakePoint(13.05 + g * 0.001, 52.05), 4326),
             ST_Buffer(ST_SetSRID(ST_MakePoint(13.05, 52.05), 4326)::geography, 50 + g)::geography(Polygon, 4326),
             ST_MakeLine(ST_SetSRID(ST_MakePoint(13, 52), 4326), ST_SetSRID(ST_MakePoint(13.2, 52 + g * 0.001), 4326))::geography,
             ARRAY['round-${round}']
        FROM generate_series(1, 40) g;
      UPDATE places SET location = ST_Translate(location, 0.0001, 0.0001), elevation = ST_SetSRID(ST_MakePoint(13, 52, ${round}), 4326)
       WHERE id % 17 = ${round % 17};
      DELETE FROM places WHERE id % 53 = ${round % 53};
      COMMIT`);
    await client.query(`BEGIN;
      INSERT INTO readings (place_id, taken_at, position, value)
      SELECT 1 + g, now() - interval '1 day' + g * interval '13 minutes', ST_SetSRID(ST_MakePoint(13 + g * 0.001, 52), 4326), g
        FROM generate_series(1, 150) g;
      UPDATE readings SET taken_at = taken_at + interval '1 day', value = value + 1000 WHERE id % 97 = ${round % 97} AND taken_at < now();
      DELETE FROM readings WHERE id % 89 = ${round % 89};
      COMMIT`);
    await client.query(`BEGIN;
      UPDATE regions SET boundary_local = ST_Transform(boundary, 910001), name = name || ' (${round})' WHERE id = ${1 + (round % 10)};
      INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, srtext, proj4text)
      VALUES (${srid}, 'pgferry', ${srid}, 'LOCAL_CS["round ${round}",UNIT["metre",1]]', '');
      UPDATE spatial_ref_sys SET srtext = 'LOCAL_CS["pgferry warehouse floor, round ${round}",UNIT["metre",1]]' WHERE srid = 910002;
      UPDATE partman.part_config SET optimize_constraint = optimize_constraint + 1 WHERE parent_table = 'public.readings';
      COMMIT`);
  });
}

/**
 * pg_partman's maintenance as its background worker or a cron job runs it: more premade
 * partitions (made by CREATE TABLE … (LIKE …) and ATTACH PARTITION inside its function), readings
 * partitions older than `readingsKept` detached and kept, the oldest tracks partition dropped, and
 * readings `readingsAhead` moved out of the default partition, in a session configured by `session`. Checked
 * to have done all three, so the corpus can't pass with maintenance that did nothing.
 */
async function maintenance(
  cluster: Cluster,
  db: string,
  work: { readonly lastTrackId: number; readonly readingsKept: string; readonly readingsAhead: string; readonly session: string },
): Promise<void> {
  const { lastTrackId, readingsKept, readingsAhead, session } = work;
  const before = await partitions(cluster, db);
  await cluster.withClient(db, async (client) => {
    await client.query(`SET synchronous_commit = on; ${session}`);
    await client.query(`INSERT INTO tracks (id, place_id, path)
      SELECT g, 1, ST_MakeLine(ST_SetSRID(ST_MakePoint(13, 52), 4326), ST_SetSRID(ST_MakePoint(13.1, 52 + g * 0.00001), 4326))
        FROM generate_series((SELECT max(id) + 1 FROM tracks), ${lastTrackId}) g`);
    await client.query(`UPDATE partman.part_config SET premake = premake + 2`);
    await client.query(`UPDATE partman.part_config SET retention = $1 WHERE parent_table = 'public.readings'`, [readingsKept]);
    await client.query(`SELECT partman.run_maintenance(p_analyze := false)`);
    // Rows far ahead land in the default partition; pg_partman moves them out into a partition of
    // their own, by way of a temporary table (CREATE TEMP TABLE … ON COMMIT DROP inside its function).
    await client.query(
      `INSERT INTO readings (place_id, taken_at, value)
      SELECT 1, now() + $1::interval + g * interval '1 minute', g FROM generate_series(1, 30) g`,
      [readingsAhead],
    );
    const { rows } = await client.query<{ moved: number }>(
      `SELECT partman.partition_data_time('public.readings', p_batch_count := 5)::int AS moved`,
    );
    assert.equal(rows[0]?.moved, 30, 'partition_data_time moved the rows out of the default partition');
  });
  const after = await partitions(cluster, db);
  for (const parent of ['readings', 'tracks']) {
    const made = after[parent]!.filter((c) => !before[parent]!.includes(c));
    const gone = before[parent]!.filter((c) => !after[parent]!.includes(c));
    assert.ok(made.length > 0, `maintenance made no ${parent} partition: ${JSON.stringify({ before, after })}`);
    assert.ok(gone.length > 0, `maintenance detached or dropped no ${parent} partition: ${JSON.stringify({ before, after })}`);
  }
}

/** Until the target has applied everything the source has written so far. */
async function caughtUp(from: Cluster, to: Cluster, db: string, sync: PgferryProcess): Promise<void> {
  const { rows } = await from.sql(db, `SELECT pg_current_wal_insert_lsn()::text AS lsn`);
  const goal = (rows[0] as { lsn: string }).lsn;
  const deadline = Date.now() + CATCH_UP_MS;
  for (;;) {
    const state = await to.sql(db, `SELECT applied_lsn >= $1::pg_lsn AS done FROM pgferry.sync`, [goal]);
    if ((state.rows[0] as { done: boolean }).done) return;
    if (sync.child.exitCode !== null) assert.fail(`sync exited:\n${sync.output().slice(-4000)}`);
    assert.ok(Date.now() < deadline, `sync did not catch up with ${goal}:\n${sync.output().slice(-4000)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** `verify --mode full` finds the sides identical: exit 0. */
async function verifyFull(args: readonly string[], when: string): Promise<void> {
  const verify = await runPgferry(['verify', ...args, '--mode', 'full'], {}, 180_000);
  assert.equal(
    verify.code,
    0,
    `${when}: verify --mode full exited ${verify.code}:\n${verify.stdout.slice(-3000)}${verify.stderr.slice(-3000)}`,
  );
}

/**
 * `verify --mode full` while sync streams: every table and the schema identical. Sequences may be
 * behind (sync does not carry their values, the cut-over sets them), never missing.
 */
async function verifyWhileStreaming(args: readonly string[]): Promise<void> {
  const verify = await runPgferry(['verify', ...args, '--mode', 'full', '--json'], {}, 180_000);
  const report = JSON.parse(verify.stdout) as VerifyReport;
  const tables = report.tables.filter((t) => t.status !== 'identical');
  const sequences = report.sequences.filter((q) => q.status !== 'identical' && q.status !== 'behind');
  assert.deepEqual(
    { tables, schema: report.schema, sequences },
    { tables: [], schema: [], sequences: [] },
    `verify --mode full while sync streams:\n${verify.stderr.slice(-2000)}`,
  );
}

async function cutover(args: readonly string[], sync: PgferryProcess): Promise<CutoverReport> {
  const cut = await runPgferry(['cutover', ...args, '--verify', 'full', '--json'], {}, 180_000);
  assert.equal(
    cut.code,
    0,
    `cutover --verify full exited ${cut.code}:\n${cut.stderr.slice(-4000)}\nsync said:\n${sync.output().slice(-3000)}`,
  );
  assert.equal(await sync.exited(), 0, sync.output().slice(-3000));
  return JSON.parse(cut.stdout) as CutoverReport;
}

describe(`the extensions corpus (PostGIS, pg_partman), Debian PostgreSQL ${DEBIAN_MAJOR} → ${DEBIAN_MAJOR}`, () => {
  // Without the oracle nothing below could be judged: fail before any server starts.
  findPgDump();
  const pair = useClusterPair(SERVER, SERVER);

  it('check finds it ready; clone: the same pg_dump and the same rows; verify --mode full finds them identical', async () => {
    const { source, target } = pair;
    const db = await source.createDatabase({ prefix: 'ext_clone' });
    await target.sql('postgres', `CREATE DATABASE ${db}`);
    await source.sql(db, fixture());
    const args = ['--source', source.url(db), '--target', target.url(db)];
    const check = await runPgferry(['check', ...args], {}, 60_000);
    assert.equal(check.code, 0, `check exited ${check.code}:\n${check.stdout}${check.stderr}`);
    const clone = await runPgferry(['clone', ...args], {}, 180_000);
    assert.equal(clone.code, 0, `clone exited ${clone.code}:\n${clone.stderr.slice(-4000)}`);
    await assertSameSchema(source, target, db, 'after clone');
    await assertSameRows(source, target, db, 'after clone');
    await verifyFull(args, 'after clone');
  });

  it("sync under the application's writes and pg_partman's maintenance, verify, cutover --verify full, and the way back", async () => {
    const { source: old, target: now } = pair;
    const { db, args } = await writerDatabases(old, now, 'ext_sync', fixture());
    const back = ['--source', now.url(db), '--target', old.url(db)];
    let sync: PgferryProcess | undefined = spawnPgferry(['sync', ...args]);
    let reverse: PgferryProcess | undefined;
    let writer: Writer | undefined = startWriter(old.url(db));
    try {
      await waitUntilStreaming(now, db, sync);

      // Forward: the application writes and maintenance runs while sync streams.
      await writer.waitForCommits(50, 'source');
      await applicationWrites(old, db, 1);
      await maintenance(old, db, { lastTrackId: 2999, readingsKept: '7 days', readingsAhead: '60 days', session: '' });
      await applicationWrites(old, db, 2);
      await caughtUp(old, now, db, sync);
      assert.deepEqual(await partitions(now, db), await partitions(old, db), 'partitions attached on the target as on the source');
      await verifyWhileStreaming(args);
      const first = await cutover(args, sync);
      sync = undefined;
      assert.ok(first.wayBack, `no way back: ${first.wayBackSkipped}`);
      await assertSameSchema(old, now, db, 'at the cut-over');
      await assertSameRows(old, now, db, 'at the cut-over');

      // Back: the same on the new primary, streamed to the old one.
      writer.switchTo(now.url(db));
      await writer.waitForCommits(50, 'target');
      reverse = spawnPgferry(['sync', ...back]);
      await waitUntilStreaming(old, db, reverse);
      await applicationWrites(now, db, 3);
      // As a cron job in another part of the world might run it: dates print day first, in its time zone.
      await maintenance(now, db, {
        lastTrackId: 3999,
        readingsKept: '5 days',
        readingsAhead: '120 days',
        session: `SET datestyle = 'SQL, DMY'; SET timezone = 'Asia/Kolkata'`,
      });
      await applicationWrites(now, db, 4);
      await caughtUp(now, old, db, reverse);
      const second = await cutover(back, reverse);
      reverse = undefined;
      assert.equal(second.targetFreezesLifted, 1, 'the old primary is writable again');
      const report = await writer.stop();
      writer = undefined;
      assert.deepEqual(report.unexpectedErrors, [], 'a duplicate id or another error reached the application');
      await assertSameSchema(now, old, db, 'at the cut-over back');
      await assertSameRows(now, old, db, 'at the cut-over back');
    } finally {
      await writer?.stop();
      for (const process of [sync, reverse]) if (process) await stopSync(process);
    }
  });
});
