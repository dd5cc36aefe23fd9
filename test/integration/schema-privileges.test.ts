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

  test("privileges changed on an extension's members travel, as pg_dump carries them (against pg_init_privs)", async () => {
    const sourceDb = await source.createDatabase();
    const targetDb = await target.createDatabase();
    // The function starts with the default privileges; the view with those the extension's
    // script gave it (GRANT SELECT … TO PUBLIC), which pg_init_privs records.
    await source.sql(
      sourceDb,
      `CREATE EXTENSION pg_stat_statements;
       REVOKE ALL ON FUNCTION public.pg_stat_statements(boolean) FROM PUBLIC;
       GRANT EXECUTE ON FUNCTION public.pg_stat_statements(boolean) TO app_reader;
       REVOKE SELECT ON public.pg_stat_statements FROM PUBLIC;
       GRANT SELECT ON public.pg_stat_statements TO app_reader WITH GRANT OPTION;`,
    );
    // Who may do what, NULL read as the default; MAINTAIN (17+, the owner's by default) left out.
    const privileges = (acl: string) =>
      `(SELECT string_agg(e, ' ' ORDER BY e) FROM (
          SELECT format('%s:%s%s', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type,
                        CASE WHEN a.is_grantable THEN '*' END) AS e
            FROM aclexplode(${acl}) a WHERE a.privilege_type <> 'MAINTAIN') x)`;
    const acls = async (cluster: Cluster, db: string) =>
      (
        await cluster.sql(
          db,
          `SELECT (SELECT ${privileges("coalesce(proacl, acldefault('f', proowner))")} FROM pg_proc
                    WHERE oid = 'public.pg_stat_statements(boolean)'::regprocedure) AS function,
                  (SELECT ${privileges("coalesce(relacl, acldefault('r', relowner))")} FROM pg_class
                    WHERE oid = 'public.pg_stat_statements'::regclass) AS view`,
        )
      ).rows[0];
    const result = await runPgferry(['clone', '--schema-only', '--source', source.url(sourceDb), '--target', target.url(targetDb)]);
    assert.equal(result.code, 0, result.stderr);
    const expected = await acls(source, sourceDb);
    assert.deepEqual(expected, {
      function: `app_reader:EXECUTE ${source.superuser}:EXECUTE`,
      view: `app_reader:SELECT* ${['DELETE', 'INSERT', 'REFERENCES', 'SELECT', 'TRIGGER', 'TRUNCATE', 'UPDATE'].map((p) => `${source.superuser}:${p}`).join(' ')}`,
    });
    assert.deepEqual(await acls(target, targetDb), expected);

    // verify compares them too.
    const verify = async () => {
      const run = await runPgferry(['verify', '--json', '--source', source.url(sourceDb), '--target', target.url(targetDb)]);
      assert.ok(run.code === 0 || run.code === 4, run.stderr);
      return { code: run.code, schema: (JSON.parse(run.stdout) as { schema: Array<{ object: string; kind: string }> }).schema };
    };
    assert.deepEqual(await verify(), { code: 0, schema: [] });
    await target.sql(targetDb, 'GRANT EXECUTE ON FUNCTION public.pg_stat_statements(boolean) TO PUBLIC');
    const changed = await verify();
    assert.deepEqual(
      changed.schema.map((d) => [d.kind, d.object.split('(')[0]]),
      [['changed', 'privileges public.pg_stat_statements']],
    );
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
