/**
 * What the copy must not lose or alter (review A3, A4, B5): rows a row-level security policy
 * would hide from pgferry's role, values printed under a source database's own output settings,
 * and the rows users add to extensions' configuration tables.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { installation, runPgferry } from '../harness/index.js';
import { useSyncPair } from '../harness/sync-fixture.js';

describe('copy guards, 16 → 17', () => {
  const pair = useSyncPair(16, 17);

  /** A role like a managed service's: not a superuser, may replicate, owns the tables it migrates. */
  async function migrationRole(db: string, role: string, password: string): Promise<void> {
    for (const cluster of [pair.source, pair.target]) {
      await cluster.sql(
        'postgres',
        `DO $$BEGIN CREATE ROLE ${role} LOGIN REPLICATION PASSWORD '${password}'; EXCEPTION WHEN duplicate_object THEN NULL; END$$`,
      );
      await cluster.sql('postgres', `GRANT CREATE ON DATABASE ${db} TO ${role}`);
    }
    await pair.target.sql('postgres', `GRANT SET ON PARAMETER session_replication_role TO ${role}`);
  }

  it('refuses, naming the table and the fix, to copy a table whose forced row security hides rows from its owner', async () => {
    const db = await pair.freshDatabase(
      'rls',
      `CREATE TABLE docs (id int PRIMARY KEY, tenant int, body text);
       INSERT INTO docs SELECT g, g % 3, 'x' FROM generate_series(1, 300) g;
       ALTER TABLE docs ENABLE ROW LEVEL SECURITY; ALTER TABLE docs FORCE ROW LEVEL SECURITY;
       CREATE POLICY p ON docs USING (tenant = coalesce(nullif(current_setting('app.tenant', true), '')::int, 0));`,
    );
    await migrationRole(db, 'rls_mig', 'rls-pass-1');
    await pair.source.sql(db, `ALTER TABLE docs OWNER TO rls_mig; GRANT CREATE ON SCHEMA public TO rls_mig`);
    await pair.target.sql(db, `GRANT CREATE ON SCHEMA public TO rls_mig`);
    const as = (cluster: typeof pair.source) => cluster.url(db, { user: 'rls_mig', password: 'rls-pass-1' });

    const checked = await runPgferry(['check', '--json', '--source', as(pair.source), '--target', as(pair.target)], {}, 60_000);
    const findings = (JSON.parse(checked.stdout) as { findings: Array<{ id: string; message: string; fix: string }> }).findings;
    const rls = findings.find((f) => f.id === 'tables.row-security');
    assert.ok(rls, `check names the table: ${checked.stdout}`);
    assert.match(rls.message, /public\.docs/);
    assert.match(rls.fix, /BYPASSRLS|NO FORCE ROW LEVEL SECURITY/);

    const cloned = await runPgferry(['clone', '--source', as(pair.source), '--target', as(pair.target)], {}, 60_000);
    assert.notEqual(cloned.code, 0, `the clone copied through the policy:\n${cloned.stderr}`);
    assert.match(cloned.stderr, /public\.docs.*row-level security/);
    assert.match(cloned.stderr, /BYPASSRLS|NO FORCE ROW LEVEL SECURITY/);

    // With the owner no longer forced under its own policy, every row goes, and verify sees them all.
    await pair.source.sql(db, `ALTER TABLE docs NO FORCE ROW LEVEL SECURITY`);
    await pair.target.sql(db, `DROP SCHEMA IF EXISTS pgferry CASCADE; DROP TABLE IF EXISTS docs`);
    const again = await runPgferry(['clone', '--source', as(pair.source), '--target', as(pair.target)], {}, 60_000);
    assert.equal(again.code, 0, again.stderr);
    const [count] = (await pair.target.sql(db, `SELECT count(*)::int AS n FROM docs`)).rows as Array<{ n: number }>;
    assert.equal(count?.n, 300);
    // Forced on both sides again, and a row the policy hides lost on the target: verify must not
    // compare the two hidden views and call them identical.
    await pair.target.sql(db, `DELETE FROM docs WHERE id = 1`);
    for (const cluster of [pair.source, pair.target]) await cluster.sql(db, `ALTER TABLE docs FORCE ROW LEVEL SECURITY`);
    const verified = await runPgferry(['verify', '--json', '--source', as(pair.source), '--target', as(pair.target)], {}, 60_000);
    assert.notEqual(verified.code, 0, `verify said identical through the policy:\n${verified.stdout}`);
    assert.match(verified.stdout + verified.stderr, /row-level security/);
  });

  it("copies values printed under a source database's own DateStyle, IntervalStyle, extra_float_digits and lc_monetary", async () => {
    const db = await pair.freshDatabase(
      'styles',
      `CREATE TYPE mood AS ENUM ('a', 'b');
       CREATE TABLE iv (id int PRIMARY KEY, d interval, f float8, day date, ts timestamptz, m money, tags mood[]);`,
    );
    await pair.source.sql('postgres', `ALTER DATABASE ${db} SET intervalstyle = 'sql_standard'`);
    await pair.source.sql('postgres', `ALTER DATABASE ${db} SET extra_float_digits = 0`);
    await pair.source.sql('postgres', `ALTER DATABASE ${db} SET datestyle = 'SQL, DMY'`);
    await pair.source.sql('postgres', `ALTER DATABASE ${db} SET timezone = 'Pacific/Chatham'`);
    await pair.source.sql(
      db,
      `INSERT INTO iv VALUES (1, interval '-1 day -2 hours', 0.1::float8 + 0.2, '2023-03-04', '2023-03-04 05:06:07.123456+00', 1234.56, '{a,b}')`,
    );
    await pair.target.sql('postgres', `ALTER DATABASE ${db} SET datestyle = 'SQL, MDY'`);
    // The mood[] column makes the table go by text COPY: values printed on the source, parsed on the target.
    await pair.sync(db);
    await pair.assertSame(db);
    // Compared as values: the copy carries the source database's own settings to the target too
    // (extra_float_digits = 0 would print this float as 0.3 in a new session there).
    const [row] = await pair.rows<{ d: boolean; f: boolean; day: string }>(
      pair.target,
      db,
      `SELECT d = interval '-1 day -2 hours' AS d, f = 0.1::float8 + 0.2 AS f, to_char(day, 'YYYY-MM-DD') AS day FROM iv`,
    );
    assert.deepEqual(row, { d: true, f: true, day: '2023-03-04' });
  });
});

describe('extension configuration tables, 16 → 17', () => {
  const pair = useSyncPair(16, 17);

  /** An extension of the test's own with a configuration table, like PostGIS's spatial_ref_sys: shipped rows, and room for the user's. */
  function installTestExtension(): void {
    for (const major of [16, 17] as const) {
      const dir = join(installation(major).binDir, '..', 'share', 'postgresql', 'extension');
      writeFileSync(join(dir, 'pgferry_test_config.control'), "default_version = '1.0'\nrelocatable = false\nschema = public\n");
      writeFileSync(
        join(dir, 'pgferry_test_config--1.0.sql'),
        `CREATE TABLE srs (id int PRIMARY KEY, name text NOT NULL, shipped boolean NOT NULL DEFAULT false);
         INSERT INTO srs VALUES (1, 'shipped one', true), (2, 'shipped two', true);
         SELECT pg_catalog.pg_extension_config_dump('srs', 'WHERE NOT shipped');\n`,
      );
    }
  }

  it("copies and streams the rows users add to an extension's configuration table, keeping the shipped ones", async () => {
    installTestExtension();
    const db = await pair.freshDatabase(
      'extcfg',
      `CREATE EXTENSION pgferry_test_config;
       INSERT INTO srs VALUES (990001, 'a custom one', false);
       CREATE TABLE t (id int PRIMARY KEY);`,
    );
    await pair.sync(db);
    const rows = async () => (await pair.target.sql(db, `SELECT id, name, shipped FROM srs ORDER BY id`)).rows;
    assert.deepEqual(await rows(), [
      { id: 1, name: 'shipped one', shipped: true },
      { id: 2, name: 'shipped two', shipped: true },
      { id: 990001, name: 'a custom one', shipped: false },
    ]);
    await pair.change(db, [`INSERT INTO srs VALUES (990002, 'added later', false)`, `UPDATE srs SET name = 'renamed' WHERE id = 990001`]);
    await pair.sync(db);
    assert.deepEqual(await rows(), [
      { id: 1, name: 'shipped one', shipped: true },
      { id: 2, name: 'shipped two', shipped: true },
      { id: 990001, name: 'renamed', shipped: false },
      { id: 990002, name: 'added later', shipped: false },
    ]);
  });
});
