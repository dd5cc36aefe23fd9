/**
 * `pgferry check` against real servers: every finding is produced by a server set up to
 * cause it, and shown to go away when the cause is fixed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { CheckReport, Finding } from '../../src/check/index.js';
import { runPgferry, startClusters, type Cluster } from '../harness/index.js';

let pg17: Cluster; // source: wal_level=logical, one slot, a small max_slot_wal_keep_size
let pg18: Cluster; // target (and a source with idle_replication_slot_timeout set)
let pg16: Cluster; // source: wal_level=replica, no WAL senders
let pg13: Cluster; // an older target

before(async () => {
  [pg17, pg18, pg16, pg13] = await startClusters([
    { version: 17, settings: { max_replication_slots: 2, max_slot_wal_keep_size: '1MB' } },
    { version: 18, settings: { idle_replication_slot_timeout: '1h' } },
    { version: 16, settings: { wal_level: 'replica', max_wal_senders: 0 } },
    { version: 13 },
  ]);
});

after(async () => {
  await Promise.all([pg17, pg18, pg16, pg13].map((c) => c?.stop()));
});

interface CheckRun {
  code: number;
  report: CheckReport;
  ids: string[];
  find(id: string): Finding;
}

async function check(source: string, target: string, ...extra: string[]): Promise<CheckRun> {
  const result = await runPgferry(['check', '--json', '--source', source, '--target', target, ...extra]);
  assert.ok(result.code === 0 || result.code === 3, `pgferry check exited ${result.code}: ${result.stderr}`);
  const report = JSON.parse(result.stdout) as CheckReport;
  assert.equal(report.ready, result.code === 0, 'exit 0 exactly when ready');
  const ids = report.findings.map((f) => f.id);
  return {
    code: result.code,
    report,
    ids,
    find(id) {
      const finding = report.findings.find((f) => f.id === id);
      assert.ok(finding, `expected finding ${id}, got ${ids.join(', ')}`);
      return finding;
    },
  };
}

/** A fresh source database on `source` and an empty target database on `target`. */
async function pair(source = pg17, target = pg18, sourceSql = 'CREATE TABLE public.items (id int PRIMARY KEY, name text)') {
  const sourceDb = await source.createDatabase({ prefix: 'src' });
  const targetDb = await target.createDatabase({ prefix: 'tgt' });
  if (sourceSql) await source.sql(sourceDb, sourceSql);
  return { sourceDb, targetDb, sourceUrl: source.url(sourceDb), targetUrl: target.url(targetDb) };
}

describe('pgferry check', () => {
  // First, while the cluster's uptime is short and its average WAL rate is high.
  test('warns when max_slot_wal_keep_size is below what the slot will retain', async () => {
    const p = await pair(
      pg17,
      pg18,
      `CREATE TABLE public.bulk (id int PRIMARY KEY, payload text);
      INSERT INTO public.bulk SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 60000) g;`,
    );
    const run = await check(p.sourceUrl, p.targetUrl);
    const finding = run.find('source.slot-wal-limit');
    assert.equal(finding.severity, 'warning');
    assert.match(finding.message, /max_slot_wal_keep_size is 1\.0 MB/);
    assert.match(finding.fix, /max_slot_wal_keep_size = -1/);
    assert.match(run.find('source.size').message, /the source database is \d/);

    // A source without a limit has nothing to warn about.
    const unlimited = await pair(pg16, pg18);
    assert.ok(!(await check(unlimited.sourceUrl, unlimited.targetUrl)).ids.includes('source.slot-wal-limit'));
  });

  test('a ready pair exits 0 and reports both versions', async () => {
    const p = await pair();
    const run = await check(p.sourceUrl, p.targetUrl);
    assert.equal(run.code, 0, JSON.stringify(run.report.findings, null, 1));
    assert.equal(run.report.source.version.split('.')[0], '17');
    assert.equal(run.report.target.version.split('.')[0], '18');
    assert.match(run.find('source.version').message, /PostgreSQL 17\./);
    assert.match(run.find('target.version').message, /PostgreSQL 18\./);
    assert.ok(!run.report.findings.some((f) => f.severity === 'error'));
    for (const f of run.report.findings) assert.ok(f.message && f.fix && f.why, `finding ${f.id} is complete`);
  });

  test('the human report is a readable table and carries the same findings', async () => {
    const p = await pair(pg16, pg13);
    const result = await runPgferry(['check', '--source', p.sourceUrl, '--target', p.targetUrl]);
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stdout, /^SEVERITY\s+CHECK\s+FINDING$/m);
    assert.match(result.stdout, /^ERROR\s+source\.wal-level\s+wal_level is "replica"/m);
    assert.match(result.stdout, /^\s+fix: postgresql\.conf: wal_level = logical/m);
    assert.match(result.stdout, /not ready/);
  });

  test('wal_level=replica, no free WAL sender, and a target older than the source', async () => {
    const p = await pair(pg16, pg13);
    const run = await check(p.sourceUrl, p.targetUrl);
    assert.equal(run.code, 3);
    const wal = run.find('source.wal-level');
    assert.equal(wal.severity, 'error');
    for (const managed of ['rds.logical_replication', 'cloudsql.logical_decoding', 'azure.replication_support', 'restart']) {
      assert.ok(wal.fix.includes(managed), `wal_level fix mentions ${managed}`);
    }
    const senders = run.find('source.wal-senders');
    assert.equal(senders.severity, 'error');
    assert.match(senders.fix, /max_wal_senders = 1/);
    const older = run.find('target.older-than-source');
    assert.equal(older.severity, 'warning');
    assert.match(older.message, /PostgreSQL 13\..*older than the source \(PostgreSQL 16\./);

    // The logical, newer pair has none of these.
    const good = await pair(pg17, pg18);
    const ids = (await check(good.sourceUrl, good.targetUrl)).ids;
    for (const id of ['source.wal-level', 'source.wal-senders', 'target.older-than-source']) assert.ok(!ids.includes(id));
  });

  test('no free replication slot', async () => {
    const p = await pair();
    await pg17.sql(p.sourceDb, `SELECT pg_create_logical_replication_slot('occupies_the_only_slot', 'pgoutput')`);
    try {
      const run = await check(p.sourceUrl, p.targetUrl);
      assert.equal(run.code, 3);
      const slots = run.find('source.replication-slots');
      // The migration's slot and one for the copy's snapshots: one in use leaves too few.
      assert.match(slots.message, /max_replication_slots = 2, 1 in use/);
      assert.match(slots.fix, /max_replication_slots = 3/);
      // Nobody reads it: it holds WAL, and is named with how to drop it.
      const inactive = run.find('source.inactive-slots');
      assert.match(inactive.message, /"occupies_the_only_slot" \(holds [\d.]+ \w?B of WAL\)/);
      assert.match(inactive.fix, /pg_drop_replication_slot\('occupies_the_only_slot'\)/);
      assert.ok(!run.ids.includes('source.leftover-pgferry-slot'));
    } finally {
      await pg17.sql(p.sourceDb, `SELECT pg_drop_replication_slot('occupies_the_only_slot')`);
    }
    const after = await check(p.sourceUrl, p.targetUrl);
    assert.ok(!after.ids.includes('source.replication-slots'));
    assert.ok(!after.ids.includes('source.inactive-slots'));
  });

  test('a source role that cannot replicate, read the tables or publish them', async () => {
    const p = await pair();
    const role = `reader_${p.sourceDb}`;
    await pg17.sql(p.sourceDb, `CREATE ROLE ${role} LOGIN PASSWORD 'reader-pw'`);
    const source = pg17.url(p.sourceDb, { user: role, password: 'reader-pw' });
    const run = await check(source, p.targetUrl);
    assert.equal(run.code, 3);
    assert.match(run.find('source.replication-privilege').fix, /ALTER ROLE "reader_\w+" WITH REPLICATION;[\s\S]*GRANT rds_replication/);
    const select = run.find('source.select-privilege');
    assert.match(select.message, /public\.items/);
    assert.match(select.fix, /GRANT SELECT ON ALL TABLES IN SCHEMA "public"/);
    const publication = run.find('source.publication-privilege');
    assert.match(publication.message, /no CREATE privilege on database/);
    assert.match(publication.message, /does not own 1 table/);

    await pg17.sql(
      p.sourceDb,
      `ALTER ROLE ${role} WITH REPLICATION; GRANT CREATE ON DATABASE ${p.sourceDb} TO ${role};
       GRANT SELECT ON public.items TO ${role}; ALTER TABLE public.items OWNER TO ${role};`,
    );
    const fixed = await check(source, p.targetUrl);
    for (const id of ['source.replication-privilege', 'source.select-privilege', 'source.publication-privilege']) {
      assert.ok(!fixed.ids.includes(id), `${id} is gone once granted`);
    }
    assert.equal(fixed.code, 0);
  });

  test('a target role that cannot create schemas or set session_replication_role', async () => {
    const p = await pair();
    const role = `writer_${p.targetDb}`;
    await pg18.sql(p.targetDb, `CREATE ROLE ${role} LOGIN PASSWORD 'writer-pw'; REVOKE CREATE ON DATABASE ${p.targetDb} FROM PUBLIC`);
    const target = pg18.url(p.targetDb, { user: role, password: 'writer-pw' });
    const run = await check(p.sourceUrl, target);
    assert.equal(run.code, 3);
    assert.match(run.find('target.create-privilege').fix, /GRANT CREATE ON DATABASE/);
    assert.match(run.find('target.replication-role').fix, /GRANT SET ON PARAMETER session_replication_role/);
    // Since PostgreSQL 15 only the owner may create in public: CREATE on the database is not enough.
    assert.match(run.find('target.schema-create-privilege').fix, /GRANT CREATE ON SCHEMA "public"/);

    await pg18.sql(
      p.targetDb,
      `GRANT CREATE ON DATABASE ${p.targetDb} TO ${role}; GRANT SET ON PARAMETER session_replication_role TO ${role}`,
    );
    const partly = await check(p.sourceUrl, target);
    assert.ok(!partly.ids.includes('target.create-privilege'));
    assert.ok(!partly.ids.includes('target.replication-role'));
    assert.ok(partly.ids.includes('target.schema-create-privilege'));
    assert.equal(partly.code, 3);

    await pg18.sql(p.targetDb, `GRANT CREATE ON SCHEMA public TO ${role}`);
    const fixed = await check(p.sourceUrl, target);
    assert.ok(!fixed.ids.includes('target.schema-create-privilege'));
    assert.equal(fixed.code, 0);
  });

  test('tables without a usable replica identity, listed with both fixes', async () => {
    const p = await pair(
      pg17,
      pg18,
      `CREATE TABLE public.keyed (id int PRIMARY KEY);
       CREATE TABLE public.log_lines (at timestamptz, line text);
       CREATE TABLE public.nothing (id int PRIMARY KEY); ALTER TABLE public.nothing REPLICA IDENTITY NOTHING;
       CREATE TABLE public.full_dupes (v text); ALTER TABLE public.full_dupes REPLICA IDENTITY FULL;
       CREATE TABLE public.found_dupes (v text); ALTER TABLE public.found_dupes REPLICA IDENTITY FULL;
       CREATE INDEX found_dupes_v ON public.found_dupes (v);
       CREATE INDEX pgferry_narrow_0123456789ab ON public.full_dupes (v);
       CREATE TABLE public.events (at date, what text) PARTITION BY RANGE (at);
       CREATE TABLE public.events_2026 PARTITION OF public.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');`,
    );
    const run = await check(p.sourceUrl, p.targetUrl);
    assert.equal(run.code, 3);
    const missing = run.find('tables.no-replica-identity');
    assert.equal(missing.severity, 'error');
    assert.match(missing.message, /^3 tables .*: public\.events_2026, public\.log_lines, public\.nothing$/);
    assert.match(missing.fix, /ADD PRIMARY KEY/);
    assert.match(missing.fix, /ALTER TABLE "public"\."log_lines" REPLICA IDENTITY FULL;/);
    // public.nothing has a primary key: pointing its identity back at it is the fix.
    assert.match(missing.fix, /ALTER TABLE "public"\."nothing" REPLICA IDENTITY DEFAULT;/);
    assert.match(run.find('tables.replica-identity-full').message, /public\.full_dupes/);
    // The cut-over's check would index full_dupes (an index a killed cut-over left is not its own),
    // not found_dupes, which has one.
    assert.match(
      run.find('cutover.keyless-check-index').message,
      /^the cut-over will index 1 table without a key or an index for its check \(.+ in all\): public\.full_dupes \(.+\)$/,
    );

    await pg17.sql(
      p.sourceDb,
      `ALTER TABLE public.log_lines REPLICA IDENTITY FULL; ALTER TABLE public.nothing REPLICA IDENTITY DEFAULT;
       ALTER TABLE public.events_2026 REPLICA IDENTITY FULL;`,
    );
    assert.ok(!(await check(p.sourceUrl, p.targetUrl)).ids.includes('tables.no-replica-identity'));
  });

  test('unlogged tables, large objects, foreign tables and materialized views', async () => {
    const p = await pair(
      pg17,
      pg18,
      `CREATE UNLOGGED TABLE public.sessions (id int PRIMARY KEY);
       SELECT lo_create(0);
       CREATE EXTENSION postgres_fdw;
       CREATE SERVER elsewhere FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname 'x');
       CREATE FOREIGN TABLE public.remote_things (id int) SERVER elsewhere;
       CREATE TABLE public.items (id int PRIMARY KEY);
       CREATE MATERIALIZED VIEW public.item_count AS SELECT count(*) FROM public.items;`,
    );
    const run = await check(p.sourceUrl, p.targetUrl);
    assert.equal(run.find('tables.unlogged').severity, 'warning');
    assert.match(run.find('tables.unlogged').fix, /ALTER TABLE "public"\."sessions" SET LOGGED;/);
    assert.match(run.find('objects.large-objects').message, /1 large object/);
    assert.match(run.find('objects.foreign-tables').message, /public\.remote_things/);
    assert.match(run.find('objects.materialized-views').message, /public\.item_count/);
    assert.equal(run.code, 0, 'none of these blocks a migration');
  });

  test('an extension the target cannot install, and one whose version it lacks', async () => {
    // old_snapshot ships with PostgreSQL 16 and was removed in 17.
    const removed = await pair(pg16, pg17, `CREATE EXTENSION old_snapshot; CREATE TABLE public.t (id int PRIMARY KEY)`);
    const run = await check(removed.sourceUrl, removed.targetUrl);
    const missing = run.find('extensions.missing-on-target');
    assert.equal(missing.severity, 'error');
    assert.match(missing.message, /"old_snapshot" 1\.0/);
    assert.match(missing.fix, /DROP EXTENSION "old_snapshot"/);

    // pg_stat_statements 1.11 (PostgreSQL 17) does not exist for PostgreSQL 13.
    const newer = await pair(pg17, pg13, `CREATE EXTENSION pg_stat_statements; CREATE TABLE public.t (id int PRIMARY KEY)`);
    const differs = (await check(newer.sourceUrl, newer.targetUrl)).find('extensions.version-differs');
    assert.match(differs.message, /"pg_stat_statements" is 1\.11 on the source/);

    const same = await pair(pg17, pg18, `CREATE EXTENSION hstore; CREATE TABLE public.t (id int PRIMARY KEY)`);
    const ids = (await check(same.sourceUrl, same.targetUrl)).ids;
    assert.ok(!ids.includes('extensions.missing-on-target') && !ids.includes('extensions.version-differs'));
  });

  test('encoding and collation differences', async () => {
    const p = await pair();
    const latin1 = await pg18.createDatabase({ prefix: 'latin1', encoding: 'LATIN1' });
    const encoding = (await check(p.sourceUrl, pg18.url(latin1))).find('database.encoding');
    assert.equal(encoding.severity, 'error', 'UTF8 text may not fit LATIN1');
    assert.match(encoding.message, /source UTF8, target LATIN1/);
    assert.match(encoding.fix, /ENCODING 'UTF8'/);

    const utf8Collation = await pg18.createDatabase({ prefix: 'coll', collate: 'C.UTF-8' });
    const collation = (await check(p.sourceUrl, pg18.url(utf8Collation))).find('database.collation');
    assert.equal(collation.severity, 'warning');
    assert.match(collation.message, /LC_COLLATE "C" → "C\.UTF-8"/);

    const ids = (await check(p.sourceUrl, p.targetUrl)).ids;
    assert.ok(!ids.includes('database.encoding') && !ids.includes('database.collation'));
  });

  test('tables in scope that already hold rows on the target', async () => {
    const p = await pair(pg17, pg18, `CREATE TABLE public.items (id int PRIMARY KEY); CREATE TABLE public.other (id int PRIMARY KEY)`);
    await pg18.sql(
      p.targetDb,
      `CREATE TABLE public.items (id int PRIMARY KEY); CREATE TABLE public.other (id int PRIMARY KEY); INSERT INTO public.items VALUES (1)`,
    );
    const run = await check(p.sourceUrl, p.targetUrl);
    assert.equal(run.code, 3);
    assert.match(run.find('target.tables-not-empty').message, /^1 table in scope already holds rows on the target: public\.items$/);

    const filtered = await check(p.sourceUrl, p.targetUrl, '--exclude-table', 'public.items');
    assert.ok(!filtered.ids.includes('target.tables-not-empty'), 'a table out of scope is not counted');
    assert.equal(filtered.code, 0);
  });

  test('a filter that matches no table is bad usage, named with its fix', async () => {
    const p = await pair();
    const result = await runPgferry(['check', '--source', p.sourceUrl, '--target', p.targetUrl, '--include-table', 'itmes']);
    assert.equal(result.code, 2);
    assert.equal(result.stderr.trim().split('\n').length, 1);
    assert.match(result.stderr, /--include-table "itmes" matches no table in the source database/);
    assert.equal(result.stdout, '');
  });

  test('a deferrable primary key is no replica identity', async () => {
    const p = await pair(pg17, pg18, `CREATE TABLE public.deferred (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED, v text)`);
    const run = await check(p.sourceUrl, p.targetUrl);
    assert.match(run.find('tables.no-replica-identity').message, /public\.deferred/);
  });

  test('tables on the target the target role cannot read', async () => {
    const p = await pair();
    const role = `blind_${p.targetDb}`;
    await pg18.sql(
      p.targetDb,
      `CREATE ROLE ${role} LOGIN PASSWORD 'blind-pw'; GRANT CREATE ON SCHEMA public TO ${role}; GRANT CREATE ON DATABASE ${p.targetDb} TO ${role};
       GRANT SET ON PARAMETER session_replication_role TO ${role};
       CREATE TABLE public.items (id int PRIMARY KEY, name text)`,
    );
    const target = pg18.url(p.targetDb, { user: role, password: 'blind-pw' });
    const run = await check(p.sourceUrl, target);
    assert.equal(run.code, 3);
    assert.match(run.find('target.tables-unreadable').message, /public\.items/);
    await pg18.sql(p.targetDb, `GRANT SELECT ON public.items TO ${role}`);
    const fixed = await check(p.sourceUrl, target);
    assert.ok(!fixed.ids.includes('target.tables-unreadable'));
    assert.equal(fixed.code, 0);
  });

  test('a slot an earlier pgferry migration left on the source, named with its cleanup', async () => {
    const p = await pair(pg18, pg18);
    await pg18.sql(p.sourceDb, `SELECT pg_create_logical_replication_slot('pgferry_last_year', 'pgoutput')`);
    try {
      const run = await check(p.sourceUrl, p.targetUrl);
      const leftover = run.find('source.leftover-pgferry-slot');
      assert.equal(leftover.severity, 'warning');
      assert.match(leftover.message, /"pgferry_last_year" \(holds [\d.]+ \w?B of WAL\)/);
      assert.match(leftover.fix, /pgferry cleanup --source … --target … --name last_year/);
      assert.ok(!run.ids.includes('source.inactive-slots'));
    } finally {
      await pg18.sql(p.sourceDb, `SELECT pg_drop_replication_slot('pgferry_last_year')`);
    }
    assert.ok(!(await check(p.sourceUrl, p.targetUrl)).ids.includes('source.leftover-pgferry-slot'));
  });

  test('idle_replication_slot_timeout on a PostgreSQL 18 source', async () => {
    const p = await pair(pg18, pg18);
    const finding = (await check(p.sourceUrl, p.targetUrl)).find('source.idle-slot-timeout');
    assert.equal(finding.severity, 'warning');
    assert.match(finding.message, /3600 s/);
    assert.match(finding.fix, /idle_replication_slot_timeout = 0/);
    const other = await pair(pg17, pg18);
    assert.ok(!(await check(other.sourceUrl, other.targetUrl)).ids.includes('source.idle-slot-timeout'));
  });

  test('a source without tables in scope is a warning', async () => {
    const p = await pair(pg17, pg18, '');
    const run = await check(p.sourceUrl, p.targetUrl);
    assert.equal(run.find('scope.empty').severity, 'warning');
  });

  test('PostgreSQL 13 as the source', async () => {
    const p = await pair(pg13, pg17);
    const run = await check(p.sourceUrl, p.targetUrl);
    assert.equal(run.code, 0, JSON.stringify(run.report.findings, null, 1));
    assert.equal(run.report.source.version.split('.')[0], '13');
    // PostgreSQL 13 has no pg_stat_wal: the size finding says the rate is unknown.
    assert.match(run.find('source.size').message, /not visible before PostgreSQL 14/);
  });

  test('objects the schema copy cannot recreate, and roles the target lacks', async () => {
    const p = await pair(
      pg17,
      pg18,
      `CREATE TABLE public.items (id int PRIMARY KEY);
       CREATE FUNCTION public.noop_ddl() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END';
       CREATE EVENT TRIGGER noop_ddl ON ddl_command_start EXECUTE FUNCTION public.noop_ddl();
       CREATE FUNCTION public.int_close(int, int) RETURNS bool LANGUAGE sql AS 'SELECT abs($1 - $2) < 2';
       CREATE OPERATOR public.=~ (LEFTARG = int, RIGHTARG = int, FUNCTION = public.int_close);`,
    );
    const owner = `owner_${p.sourceDb}`;
    await pg17.sql(p.sourceDb, `CREATE ROLE ${owner}; ALTER TABLE public.items OWNER TO ${owner}`);
    const run = await check(p.sourceUrl, p.targetUrl);
    const unsupported = run.find('schema.unsupported-objects');
    assert.equal(unsupported.severity, 'warning');
    assert.match(unsupported.message, /event trigger noop_ddl/);
    assert.match(unsupported.message, /operator public\.=~/);
    const roles = run.find('target.missing-roles');
    assert.match(roles.message, new RegExp(owner));
    assert.match(roles.fix, /--no-owner/);

    await pg18.sql('postgres', `CREATE ROLE ${owner}`);
    assert.ok(!(await check(p.sourceUrl, p.targetUrl)).ids.includes('target.missing-roles'));
  });
});
