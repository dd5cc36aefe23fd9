/**
 * What a database holds besides its objects' definitions and rows (issue 19, first part), on
 * real servers: its own settings and its roles' settings in it, and the default privileges that
 * objects created later get. Each is set on the source, moved by `pgferry clone` (which sync uses
 * too), and compared with the source through the catalogs; the freeze's read-only setting never
 * travels.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runPgferry, useClusterPair, type Cluster } from '../harness/index.js';

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
         ALTER ROLE reader IN DATABASE ${db} SET work_mem = '8MB'`,
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
      const largeObjects = `SELECT m.oid::text, md5(lo_get(m.oid)) AS content, length(lo_get(m.oid)) AS bytes, pg_get_userbyid(m.lomowner) AS owner,
                                   (SELECT coalesce(string_agg(pg_get_userbyid(a.grantee) || ':' || a.privilege_type, ','), '') FROM aclexplode(m.lomacl) a WHERE a.grantee <> m.lomowner) AS grants, obj_description(m.oid, 'pg_largeobject') AS comment
                              FROM pg_largeobject_metadata m ORDER BY 1`;
      const onSource = (await pair.source.sql(db, largeObjects)).rows;
      assert.equal(onSource.length, 2);
      assert.deepEqual((await pair.target.sql(db, largeObjects)).rows, onSource);

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
  });
}
