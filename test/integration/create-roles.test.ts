/**
 * `--create-roles` (issue 19), on real servers: the roles a schema needs and the target lacks
 * are made there with their attributes, comment, settings and memberships (the roles they are
 * members of come too), never a password; then ownership and grants arrive with the schema.
 * A target role that may not create roles is refused with one message, and nothing is made.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { runPgferry, useClusterPair, type Cluster } from '../harness/index.js';

/** What --create-roles carries of each role, as pg_roles and its neighbours show it. */
async function roleFacts(cluster: Cluster, names: readonly string[]): Promise<unknown[]> {
  const { rows } = await cluster.sql(
    'postgres',
    `SELECT r.rolname, r.rolcanlogin, r.rolinherit, r.rolcreatedb, r.rolcreaterole, r.rolreplication, r.rolbypassrls,
            r.rolconnlimit, r.rolvaliduntil::text AS valid, shobj_description(r.oid, 'pg_authid') AS comment,
            (SELECT s.setconfig FROM pg_db_role_setting s WHERE s.setrole = r.oid AND s.setdatabase = 0) AS settings,
            (SELECT array_agg(g.rolname || CASE WHEN m.admin_option THEN ' (admin)' ELSE '' END ORDER BY g.rolname)
               FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid) AS member_of
       FROM pg_roles r WHERE r.rolname = ANY ($1) ORDER BY 1`,
    [names],
  );
  return rows;
}

describe('--create-roles, 13 → 17', () => {
  const pair = useClusterPair(13, 17);

  it('makes the missing roles with their attributes and memberships but no password, then ownership and grants arrive', async () => {
    const tag = randomBytes(3).toString('hex');
    const [owner, user, readers, ops] = ['owner', 'user', 'readers', 'ops'].map((r) => `app_${r}_${tag}`) as [
      string,
      string,
      string,
      string,
    ];
    const db = await pair.source.createDatabase({ prefix: 'roles' });
    await pair.target.sql('postgres', `CREATE DATABASE ${db}`);
    await pair.source.sql(
      'postgres',
      `CREATE ROLE ${owner} NOLOGIN;
       CREATE ROLE ${readers} NOLOGIN;
       CREATE ROLE ${user} LOGIN PASSWORD 'secret-${tag}' CONNECTION LIMIT 5 VALID UNTIL '2031-01-01 00:00:00+00' NOINHERIT;
       CREATE ROLE ${ops} LOGIN CREATEDB CREATEROLE REPLICATION BYPASSRLS;
       GRANT ${readers} TO ${user} WITH ADMIN OPTION;
       GRANT pg_monitor TO ${ops};
       COMMENT ON ROLE ${ops} IS 'the operators';
       ALTER ROLE ${ops} SET work_mem = '16MB';
       ALTER ROLE ${ops} SET search_path = 'ops, public'`,
    );
    await pair.source.sql(
      db,
      `CREATE TABLE orders (id int PRIMARY KEY);
       ALTER TABLE orders OWNER TO ${owner};
       GRANT SELECT ON orders TO ${readers};
       GRANT INSERT ON orders TO ${ops}`,
    );
    const args = ['--source', pair.source.url(db), '--target', pair.target.url(db)];
    const cloned = await runPgferry(['clone', ...args, '--create-roles']);
    assert.equal(cloned.code, 0, cloned.stderr);
    assert.match(cloned.stderr, new RegExp(`created roles .*${owner}.* without passwords .*ALTER ROLE … PASSWORD`));

    const names = [owner, user, readers, ops];
    assert.deepEqual(await roleFacts(pair.target, names), await roleFacts(pair.source, names));
    const password = await pair.target.sql('postgres', `SELECT rolpassword IS NULL AS none FROM pg_authid WHERE rolname = $1`, [user]);
    assert.deepEqual(password.rows, [{ none: true }], 'a password reached the target');
    const privileges = await pair.target.sql(
      db,
      `SELECT pg_get_userbyid(relowner) AS owner, has_table_privilege($1, 'orders', 'SELECT') AS reads,
              has_table_privilege($2, 'orders', 'INSERT') AS inserts
         FROM pg_class WHERE relname = 'orders'`,
      [readers, ops],
    );
    assert.deepEqual(privileges.rows, [{ owner, reads: true, inserts: true }]);
  });

  it('refuses, naming the fix, when the target role may not create roles; nothing is made', async () => {
    const tag = randomBytes(3).toString('hex');
    const [owner, plain] = [`app_owner_${tag}`, `plain_${tag}`];
    const db = await pair.source.createDatabase({ prefix: 'noroles' });
    await pair.target.sql('postgres', `CREATE DATABASE ${db}`);
    await pair.target.sql('postgres', `CREATE ROLE ${plain} LOGIN PASSWORD 'pw'; ALTER DATABASE ${db} OWNER TO ${plain}`);
    await pair.source.sql('postgres', `CREATE ROLE ${owner}`);
    await pair.source.sql(db, `CREATE TABLE t (id int PRIMARY KEY); ALTER TABLE t OWNER TO ${owner}`);
    const result = await runPgferry([
      'clone',
      '--source',
      pair.source.url(db),
      '--target',
      pair.target.url(db, { user: plain, password: 'pw' }),
      '--create-roles',
    ]);
    assert.notEqual(result.code, 0);
    assert.match(
      result.stderr,
      new RegExp(`--create-roles needs a role with CREATEROLE.*${owner}.*connect to the target as a role with CREATEROLE`),
    );
    assert.deepEqual((await pair.target.sql('postgres', `SELECT rolname FROM pg_roles WHERE rolname = $1`, [owner])).rows, []);
    assert.deepEqual((await pair.target.sql(db, `SELECT relname FROM pg_class WHERE relname = 't'`)).rows, []);
  });
});
