/**
 * What a database holds besides its objects' definitions and rows (issue 19, first part), on
 * real servers: its own settings and its roles' settings in it, and the default privileges that
 * objects created later get. Each is set on the source, moved by `pgferry clone` (which sync uses
 * too), and compared with the source through the catalogs; the freeze's read-only setting never
 * travels.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import type { CutoverReport } from '../../src/cutover/index.js';
import { describeError, errorCode, migrationUnderWay, runPgferry, stopSync, useClusterPair, type Cluster } from '../harness/index.js';

/** A database's settings and its roles' settings in it, by role name ('' for the database's own). */
async function settings(cluster: Cluster, db: string): Promise<Array<{ role: string; setting: string }>> {
  const { rows } = await cluster.sql(
    'postgres',
    `SELECT coalesce(pg_get_userbyid(NULLIF(s.setrole, 0)), '') AS role, c AS setting
       FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase CROSS JOIN unnest(s.setconfig) c
      WHERE d.datname = $1 ORDER BY 1, 2`,
    [db],
  );
  return rows as Array<{ role: string; setting: string }>;
}

/** Default privileges as the catalog holds them: who, where, on what, and the ACL itself. */
async function defaultPrivileges(cluster: Cluster, db: string): Promise<string[]> {
  const { rows } = await cluster.sql(
    db,
    `SELECT format('%s %s %s %s', pg_get_userbyid(defaclrole), coalesce(n.nspname, '*'), defaclobjtype,
                   (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(defaclacl) x)) AS line
       FROM pg_default_acl a LEFT JOIN pg_namespace n ON n.oid = a.defaclnamespace ORDER BY 1`,
  );
  return (rows as Array<{ line: string }>).map((r) => r.line);
}

/** Whether a cut-over's read-only freeze is set on the database. */
async function frozen(cluster: Cluster, db: string): Promise<boolean> {
  const { rows } = await cluster.sql(
    'postgres',
    `SELECT EXISTS (SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
                     WHERE d.datname = $1 AND s.setrole = 0 AND 'default_transaction_read_only=on' = ANY (s.setconfig)) AS frozen`,
    [db],
  );
  return (rows[0] as { frozen: boolean }).frozen;
}

/** Every large object with what is carried of it: content, owner, grants, comment. */
async function largeObjects(cluster: Cluster, db: string): Promise<unknown[]> {
  const { rows } = await cluster.sql(
    db,
    `SELECT m.oid::text, md5(lo_get(m.oid)) AS content, length(lo_get(m.oid)) AS bytes, pg_get_userbyid(m.lomowner) AS owner,
            (SELECT coalesce(string_agg(pg_get_userbyid(a.grantee) || ':' || a.privilege_type, ',' ORDER BY 1), '')
               FROM aclexplode(m.lomacl) a WHERE a.grantee <> m.lomowner) AS grants,
            obj_description(m.oid, 'pg_largeobject') AS comment
       FROM pg_largeobject_metadata m ORDER BY 1`,
  );
  return rows;
}

for (const [from, to] of [
  [13, 17],
  [17, 18],
] as const) {
  describe(`database settings and default privileges, ${from} → ${to}`, () => {
    const pair = useClusterPair(from, to);

    it('are carried by the copy and hold for objects created on the target afterwards', async () => {
      const db = await pair.source.createDatabase({ prefix: 'props' });
      await pair.target.sql('postgres', `CREATE DATABASE ${db}`);
      for (const cluster of [pair.source, pair.target]) {
        await cluster.sql('postgres', `DO $$BEGIN CREATE ROLE reader; EXCEPTION WHEN duplicate_object THEN NULL; END$$`);
      }
      await pair.source.sql(
        'postgres',
        `ALTER DATABASE ${db} SET search_path TO "$user", public, app;
         ALTER DATABASE ${db} SET statement_timeout = '30s';
         ALTER DATABASE ${db} SET work_mem = '12MB';
         ALTER DATABASE ${db} SET myapp.tenant = 'north';
         ALTER ROLE reader IN DATABASE ${db} SET work_mem = '8MB';
         COMMENT ON DATABASE ${db} IS 'orders of the north shop'`,
      );
      await pair.source.sql(
        db,
        `CREATE SCHEMA app;
         CREATE TABLE app.orders (id int PRIMARY KEY);
         ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO reader;
         ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT INSERT, UPDATE ON TABLES TO reader;
         ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
         ALTER DEFAULT PRIVILEGES GRANT USAGE ON SEQUENCES TO reader WITH GRANT OPTION`,
      );
      // Large objects: one of several chunks (2.5 MB), one empty, with an owner, a grant and a comment.
      await pair.source.sql(
        db,
        `SELECT lo_from_bytea(424242, decode(repeat('00ff10', 873814), 'hex'));
         SELECT lo_from_bytea(424243, '');
         ALTER LARGE OBJECT 424242 OWNER TO reader;
         GRANT SELECT ON LARGE OBJECT 424243 TO reader;
         COMMENT ON LARGE OBJECT 424243 IS 'an empty one'`,
      );
      // As a cut-over's freeze leaves it: the one setting that must not travel.
      await pair.source.sql('postgres', `ALTER DATABASE ${db} SET default_transaction_read_only = on`);
      const cloned = await runPgferry(['clone', '--source', pair.source.url(db), '--target', pair.target.url(db)], {}, 120_000);
      assert.equal(cloned.code, 0, cloned.stderr);

      const expected = (await settings(pair.source, db)).filter((s) => !s.setting.startsWith('default_transaction_read_only='));
      assert.deepEqual(await settings(pair.target, db), expected);
      assert.deepEqual(await defaultPrivileges(pair.target, db), await defaultPrivileges(pair.source, db));
      const onSource = await largeObjects(pair.source, db);
      assert.equal(onSource.length, 2);
      assert.deepEqual(await largeObjects(pair.target, db), onSource);

      // What is a property of the database itself is reported, with the statement to carry it.
      const checked = await runPgferry(['check', '--json', '--source', pair.source.url(db), '--target', pair.target.url(db)]);
      const findings = (JSON.parse(checked.stdout) as { findings: Array<{ id: string; fix: string }> }).findings;
      assert.equal(findings.find((f) => f.id === 'database.comment')?.fix, `COMMENT ON DATABASE "${db}" IS 'orders of the north shop';`);

      // verify holds the target to the same default privileges (settings may rightly differ: not compared).
      const verified = await runPgferry(['verify', '--source', pair.source.url(db), '--target', pair.target.url(db)], {}, 120_000);
      assert.equal(verified.code, 0, verified.stdout);
      assert.match(verified.stdout, /Identical: .*schema/, verified.stdout);

      // The public schema: whoever may create in it on the source may on the target (before 15
      // everyone may; from 15 a new database lets nobody but its owner).
      const creates = `SELECT has_schema_privilege('reader', 'public', 'CREATE') AS creates, has_schema_privilege('reader', 'public', 'USAGE') AS uses`;
      assert.deepEqual((await pair.target.sql(db, creates)).rows[0], (await pair.source.sql(db, creates)).rows[0]);
      if (from < 15) assert.deepEqual((await pair.target.sql(db, creates)).rows[0], { creates: true, uses: true });

      // What the application sees afterwards: a table made later on the target gets the grants.
      await pair.target.sql(db, `CREATE TABLE app.invoices (id int); CREATE FUNCTION app.f() RETURNS int LANGUAGE sql AS 'SELECT 1'`);
      const { rows } = await pair.target.sql(
        db,
        `SELECT has_table_privilege('reader', 'app.invoices', 'SELECT') AS reads,
                has_table_privilege('reader', 'app.invoices', 'INSERT') AS inserts,
                has_function_privilege('reader', 'app.f()', 'EXECUTE') AS executes,
                current_setting('search_path') AS path, current_setting('myapp.tenant') AS tenant`,
      );
      assert.deepEqual(rows[0], { reads: true, inserts: true, executes: false, path: '"$user", public, app', tenant: 'north' });
    });

    it('large objects made, written, unlinked and re-owned while sync streams are made equal by the cut-over, inside its freeze', async () => {
      const { db, sync, args } = await migrationUnderWay(
        pair.source,
        pair.target,
        'lobs',
        `DO $$BEGIN CREATE ROLE reader; EXCEPTION WHEN duplicate_object THEN NULL; END$$;
         SELECT lo_from_bytea(9000 + g, convert_to(repeat('object ' || g || ' ', 50 * g), 'UTF8')) FROM generate_series(1, 20) g;
         CREATE TABLE documents (id int PRIMARY KEY, body oid);
         INSERT INTO documents SELECT g, 9000 + g FROM generate_series(1, 20) g`,
      );
      await pair.target.sql('postgres', `DO $$BEGIN CREATE ROLE reader; EXCEPTION WHEN duplicate_object THEN NULL; END$$`);
      try {
        assert.deepEqual(await largeObjects(pair.target, db), await largeObjects(pair.source, db), 'the copy carries them at its snapshot');
        await pair.source.sql(
          db,
          `SELECT lo_from_bytea(9100, decode(repeat('ab', 3000000), 'hex'));      -- made: 3 MB, several chunks
           SELECT lo_put(9001, 5, 'written in place');                            -- written
           SELECT lo_put(9002, 100000, 'past its end');                          -- grown
           SELECT lo_unlink(9003);                                               -- unlinked
           ALTER LARGE OBJECT 9004 OWNER TO reader;
           GRANT UPDATE ON LARGE OBJECT 9005 TO reader;
           COMMENT ON LARGE OBJECT 9006 IS 'commented later';
           SELECT lo_unlink(lo_from_bytea(9101, 'made and gone'));
           INSERT INTO documents VALUES (100, 9100)`,
        );
        // A table of `oid`s streams as rows; the objects do not.
        const cut = await runPgferry(['cutover', ...args, '--json', '--no-fallback'], {}, 120_000);
        assert.equal(cut.code, 0, `${cut.stderr}\n--- sync\n${sync.output()}`);
        const report = JSON.parse(cut.stdout) as CutoverReport;
        assert.ok(
          report.steps.some((s) => s.step === 'large objects'),
          'the freeze has a large-object step',
        );
        const ahead = report.steps.findIndex((s) => s.step === 'large objects ahead');
        assert.ok(ahead >= 0 && ahead < report.steps.findIndex((s) => s.step === 'freeze'), 'most of the work is done before the freeze');
        // Everything changed before the cut-over began was carried ahead of the freeze.
        assert.deepEqual(report.largeObjects, { objects: 20, created: 0, changed: 0, removed: 0, bytes: 0, missingRoles: [] });
        assert.deepEqual(await largeObjects(pair.target, db), await largeObjects(pair.source, db));
        assert.equal(await sync.exited(), 0, sync.output());
      } finally {
        await stopSync(sync);
      }
    });
  });
}

describe('large objects changed during the freeze window, 17 → 18', () => {
  const pair = useClusterPair(17, 18);

  it('what changes after the pass before the freeze is carried inside it', async () => {
    const { db, sync, args } = await migrationUnderWay(
      pair.source,
      pair.target,
      'lobfreeze',
      `SELECT lo_from_bytea(7000 + g, convert_to(repeat('x', g), 'UTF8')) FROM generate_series(1, 50) g`,
    );
    try {
      // A session that changes large objects while the cut-over runs: it holds a transaction
      // open across the pass before the freeze, so its changes commit after that pass and
      // before the drain ends (the drain waits for it; it commits at once when let go).
      const writer = new pg.Client({ connectionString: pair.source.url(db) });
      // Once committed it is idle, and the read-only drain ends idle sessions: the server's
      // "terminating connection" may reach it before writer.end() does. That is the drain doing
      // its job, not a failure; any other error is.
      const writerErrors: unknown[] = [];
      writer.on('error', (error) => writerErrors.push(error));
      await writer.connect();
      await writer.query(`BEGIN; SELECT lo_put(7001, 0, 'changed late'); SELECT lo_unlink(7002); SELECT lo_from_bytea(7999, 'made late')`);
      const cutting = runPgferry(['cutover', ...args, '--json', '--no-fallback', '--drain-timeout', '30'], {}, 120_000);
      // The freeze has taken hold (the drain now waits for this transaction): commit it.
      const deadline = Date.now() + 60_000;
      while (!(await frozen(pair.source, db))) {
        assert.ok(Date.now() < deadline, 'the cut-over never froze the source');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await writer.query('COMMIT');
      await writer.end().catch(() => undefined);
      // The server's word comes first ("Connection terminated unexpectedly" may follow it).
      if (writerErrors.length > 0) assert.equal(errorCode(writerErrors[0]), '57P01', describeError(writerErrors[0]));
      const cut = await cutting;
      assert.equal(cut.code, 0, `${cut.stderr}\n--- sync\n${sync.output()}`);
      const report = JSON.parse(cut.stdout) as CutoverReport;
      assert.deepEqual(report.largeObjects, {
        objects: 50,
        created: 1,
        changed: 1,
        removed: 1,
        bytes: 'made late'.length + 'changed late'.length,
        missingRoles: [],
      });
      assert.deepEqual(await largeObjects(pair.target, db), await largeObjects(pair.source, db));
    } finally {
      await stopSync(sync);
    }
  });
});
