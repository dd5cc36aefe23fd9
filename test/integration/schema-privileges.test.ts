/**
 * Owners and grants travel with the schema when the roles exist on the target; otherwise they
 * are left out and named, and --no-owner / --no-acl leave them out on purpose.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runPgferry, startClusters, type Cluster } from '../harness/index.js';

let source: Cluster;
let target: Cluster;

before(async () => {
  [source, target] = await startClusters([{ version: 16 }, { version: 17 }]);
  await source.sql('postgres', 'CREATE ROLE app_owner; CREATE ROLE app_reader; CREATE ROLE only_on_source');
  await target.sql('postgres', 'CREATE ROLE app_owner; CREATE ROLE app_reader');
});

after(async () => {
  await Promise.all([source?.stop(), target?.stop()]);
});

const SOURCE_SQL = `
  CREATE SCHEMA shop AUTHORIZATION app_owner;
  CREATE TABLE shop.items (id int PRIMARY KEY, name text, secret text);
  ALTER TABLE shop.items OWNER TO app_owner;
  GRANT SELECT ON shop.items TO app_reader;
  GRANT SELECT (name), UPDATE (name) ON shop.items TO app_reader;
  CREATE VIEW shop.item_names AS SELECT id, name FROM shop.items;
  ALTER VIEW shop.item_names OWNER TO app_owner;
  GRANT SELECT ON shop.item_names TO PUBLIC;
  CREATE FUNCTION shop.price(int) RETURNS numeric LANGUAGE sql AS 'SELECT 1.0';
  REVOKE EXECUTE ON FUNCTION shop.price(int) FROM PUBLIC;
  GRANT EXECUTE ON FUNCTION shop.price(int) TO app_reader WITH GRANT OPTION;
  CREATE SEQUENCE shop.counter;
  ALTER SEQUENCE shop.counter OWNER TO only_on_source;
  ALTER SCHEMA public OWNER TO app_owner;`;

const FACTS = `
  SELECT c.relname AS name, pg_get_userbyid(c.relowner) AS owner, c.relacl::text AS acl,
         (SELECT string_agg(a.attname || '=' || a.attacl::text, ' ' ORDER BY a.attnum) FROM pg_attribute a
           WHERE a.attrelid = c.oid AND a.attacl IS NOT NULL) AS column_acl
    FROM pg_class c WHERE c.relnamespace = 'shop'::regnamespace AND c.relkind IN ('r', 'v', 'S')
  UNION ALL
  SELECT p.proname, pg_get_userbyid(p.proowner), p.proacl::text, NULL FROM pg_proc p WHERE p.pronamespace = 'shop'::regnamespace
  UNION ALL
  SELECT n.nspname, pg_get_userbyid(n.nspowner), n.nspacl::text, NULL FROM pg_namespace n WHERE n.nspname IN ('shop', 'public')
  ORDER BY 1`;

async function facts(
  cluster: Cluster,
  db: string,
): Promise<Record<string, { owner: string; acl: string | null; column_acl: string | null }>> {
  const { rows } = await cluster.sql(db, FACTS);
  return Object.fromEntries(rows.map((r) => [r.name, { owner: r.owner, acl: r.acl, column_acl: r.column_acl }]));
}

describe('owners and privileges', () => {
  test('are copied where the roles exist, and the missing role is named', async () => {
    const sourceDb = await source.createDatabase();
    const targetDb = await target.createDatabase();
    await source.sql(sourceDb, SOURCE_SQL);
    const result = await runPgferry(['clone', '--schema-only', '--source', source.url(sourceDb), '--target', target.url(targetDb)]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /roles missing on the target.*only_on_source/);

    const before = await facts(source, sourceDb);
    const after = await facts(target, targetDb);
    for (const name of ['shop', 'items', 'item_names', 'price', 'public']) {
      assert.deepEqual(after[name], before[name], `${name}: owner and privileges as on the source`);
    }
    assert.equal(after.counter?.owner, target.superuser, 'a role the target lacks leaves the object with the migrating role');
  });

  test('--no-owner and --no-acl leave owners and privileges to the target', async () => {
    const sourceDb = await source.createDatabase();
    const targetDb = await target.createDatabase();
    await source.sql(sourceDb, SOURCE_SQL);
    const result = await runPgferry([
      'clone',
      '--schema-only',
      '--no-owner',
      '--no-acl',
      '--source',
      source.url(sourceDb),
      '--target',
      target.url(targetDb),
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /roles missing/);
    const after = await facts(target, targetDb);
    for (const name of ['items', 'item_names', 'price', 'counter']) {
      assert.equal(after[name]?.owner, target.superuser, `${name} is owned by the migrating role`);
      assert.equal(after[name]?.acl, null, `${name} keeps default privileges`);
    }
    assert.equal(after.items?.column_acl, null);
    assert.equal(after.public?.owner, 'pg_database_owner', 'the public schema keeps the owner the target gave it');
  });

  test("the public schema's owner: a role the target lacks is named and left out, and --create-roles makes it", async () => {
    // pg_dump writes ALTER SCHEMA public OWNER TO for any owner but pg_database_owner, which is
    // what initdb gives it from 15 on (before 15 the bootstrap superuser: see verify.test.ts).
    const role = `public_owner_${process.pid}`;
    await source.sql('postgres', `CREATE ROLE ${role}`);
    const sourceDb = await source.createDatabase();
    await source.sql(sourceDb, `ALTER SCHEMA public OWNER TO ${role}`);
    const owner = async (db: string) =>
      (await target.sql(db, `SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = 'public'`)).rows[0]?.owner;

    const withoutRole = await target.createDatabase();
    const left = await runPgferry(['clone', '--schema-only', '--source', source.url(sourceDb), '--target', target.url(withoutRole)]);
    assert.equal(left.code, 0, left.stderr);
    assert.match(left.stderr, new RegExp(`roles missing on the target.*${role}`));
    assert.equal(await owner(withoutRole), 'pg_database_owner');

    const withRole = await target.createDatabase();
    const made = await runPgferry([
      'clone',
      '--schema-only',
      '--create-roles',
      '--source',
      source.url(sourceDb),
      '--target',
      target.url(withRole),
    ]);
    assert.equal(made.code, 0, made.stderr);
    assert.equal(await owner(withRole), role);
  });
});
