/**
 * The instance's global objects (issue 32), on real servers: roles with their attributes and
 * password verifiers, memberships with PostgreSQL 16's INHERIT and SET options and their
 * grantor, role settings everywhere and per database, databases with owner, encoding, ICU
 * locale, connection limit, comment and settings, a tablespace moved to another directory.
 * After `pgferry globals` the target's catalogs say what the source's say, a role logs in to
 * the target with its old password (pg_hba: scram-sha-256, as the harness's initdb writes it),
 * a rerun does nothing, a clone into a created database works, and a source role that may not
 * read pg_authid yields the list of passwords to set by hand.
 */
import assert from 'node:assert/strict';
import { chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pg from 'pg';
import { carryGlobals, type GlobalsReport } from '../../src/instance/index.js';
import { resolveConnection } from '../../src/config/index.js';
import { runPgferry, unprivilegedUser, useClusterPair, type Cluster } from '../harness/index.js';

const ROLES = ['g_owner', 'g_app', 'g_readers', 'g_lead', 'g_legacy', 'g_ops'];
const DATABASES = ['g_shop', 'g_crm', 'g_analytics'];

/** A directory the server's OS user owns, for a tablespace. */
function serverDirectory(cluster: Cluster, name: string): string {
  const dir = join(cluster.directory, name);
  mkdirSync(dir);
  const runAs = unprivilegedUser();
  if (runAs) chownSync(dir, runAs.uid, runAs.gid);
  return dir;
}

async function roleFacts(cluster: Cluster): Promise<unknown[]> {
  const { rows } = await cluster.sql(
    'postgres',
    `SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls, rolconnlimit,
            rolvaliduntil::text AS valid, rolpassword, shobj_description(oid, 'pg_authid') AS comment
       FROM pg_authid WHERE rolname = ANY ($1) ORDER BY 1`,
    [ROLES],
  );
  return rows;
}

async function membershipFacts(cluster: Cluster): Promise<unknown[]> {
  const { rows } = await cluster.sql(
    'postgres',
    `SELECT pg_get_userbyid(roleid) AS role, pg_get_userbyid(member) AS member, pg_get_userbyid(grantor) AS grantor,
            admin_option, inherit_option, set_option
       FROM pg_auth_members WHERE pg_get_userbyid(member) = ANY ($1) ORDER BY 1, 2`,
    [ROLES],
  );
  return rows;
}

async function settingFacts(cluster: Cluster): Promise<unknown[]> {
  const { rows } = await cluster.sql(
    'postgres',
    `SELECT coalesce(pg_get_userbyid(NULLIF(s.setrole, 0)), '') AS role, coalesce(d.datname, '') AS database, s.setconfig
       FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase
      WHERE pg_get_userbyid(s.setrole) = ANY ($1) OR d.datname = ANY ($2) ORDER BY 1, 2`,
    [ROLES, DATABASES],
  );
  return rows;
}

async function databaseFacts(cluster: Cluster): Promise<unknown[]> {
  const locale = cluster.version >= 17 ? 'datlocale' : 'daticulocale';
  const { rows } = await cluster.sql(
    'postgres',
    `SELECT datname, pg_get_userbyid(datdba) AS owner, pg_encoding_to_char(encoding) AS encoding, datcollate, datctype,
            datlocprovider, ${locale} AS locale, datconnlimit, shobj_description(d.oid, 'pg_database') AS comment,
            t.spcname AS tablespace
       FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace WHERE datname = ANY ($1) ORDER BY 1`,
    [DATABASES],
  );
  return rows;
}

async function tablespaceFacts(cluster: Cluster): Promise<unknown[]> {
  const { rows } = await cluster.sql(
    'postgres',
    `SELECT spcname, pg_get_userbyid(spcowner) AS owner, spcoptions, shobj_description(oid, 'pg_tablespace') AS comment
       FROM pg_tablespace WHERE spcname = 'g_fast'`,
  );
  return rows;
}

/** Logs in over TCP with a password, as an application would; the server's answer, or its refusal. */
async function logIn(cluster: Cluster, user: string, password: string, database: string): Promise<string> {
  const client = new pg.Client({ host: cluster.host, port: cluster.port, user, password, database, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
    const { rows } = await client.query<{ who: string }>('SELECT current_user AS who');
    return rows[0]!.who;
  } catch (error) {
    return `refused: ${(error as Error).message}`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe('pgferry globals, 16 → 18', () => {
  const pair = useClusterPair(16, 18);

  it('carries roles with their passwords, memberships with their options, settings, databases and a tablespace; a rerun does nothing', async () => {
    const sourceFast = serverDirectory(pair.source, 'fast');
    const targetFast = serverDirectory(pair.target, 'fast-here');
    await pair.source.sql(
      'postgres',
      `CREATE ROLE g_owner NOLOGIN;
       COMMENT ON ROLE g_owner IS 'owns the shop';
       CREATE ROLE g_readers NOLOGIN NOINHERIT;
       CREATE ROLE g_app LOGIN CREATEDB PASSWORD 'app-secret' CONNECTION LIMIT 7 VALID UNTIL '2031-01-01 00:00:00+00';
       CREATE ROLE g_lead LOGIN CREATEROLE PASSWORD 'lead-secret';
       CREATE ROLE g_ops LOGIN REPLICATION BYPASSRLS PASSWORD 'ops-secret';
       SET password_encryption = 'md5';
       CREATE ROLE g_legacy LOGIN PASSWORD 'legacy-secret';
       RESET password_encryption;
       GRANT g_readers TO g_app WITH INHERIT FALSE, SET TRUE;
       GRANT g_readers TO g_lead WITH ADMIN OPTION;
       GRANT g_readers TO g_ops WITH SET FALSE GRANTED BY g_lead;
       GRANT pg_monitor TO g_ops;
       ALTER ROLE g_app SET work_mem = '16MB'`,
    );
    await pair.source.sql('postgres', `CREATE TABLESPACE g_fast OWNER g_owner LOCATION '${sourceFast}' WITH (random_page_cost = 1.1)`);
    await pair.source.sql('postgres', `COMMENT ON TABLESPACE g_fast IS 'the fast disk'`);
    await pair.source.sql('postgres', `CREATE DATABASE g_shop OWNER g_owner CONNECTION LIMIT 20`);
    await pair.source.sql('postgres', `CREATE DATABASE g_crm OWNER g_app TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'`);
    await pair.source.sql(
      'postgres',
      `CREATE DATABASE g_analytics TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LC_COLLATE 'C' LC_CTYPE 'C' TABLESPACE g_fast`,
    );
    await pair.source.sql('postgres', `CREATE DATABASE g_other`);
    await pair.source.sql(
      'postgres',
      `COMMENT ON DATABASE g_shop IS 'the shop';
       ALTER DATABASE g_shop SET statement_timeout = '5s';
       ALTER ROLE g_app IN DATABASE g_shop SET search_path = shop, public;
       ALTER ROLE g_app IN DATABASE g_other SET work_mem = '1MB'`,
    );
    await pair.source.sql('g_shop', `CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders VALUES (1, 'first')`);
    await pair.source.sql('postgres', `ALTER DATABASE g_shop SET default_transaction_read_only = on`);

    const args = [
      'globals',
      '--source',
      pair.source.url(),
      '--target',
      pair.target.url(),
      '--all-databases',
      '--exclude-database',
      'g_other',
      '--tablespace-location',
      `g_fast=${targetFast}`,
      '--json',
    ];
    const dry = await runPgferry([...args, '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    const planned = JSON.parse(dry.stdout) as GlobalsReport;
    assert.ok(planned.created.includes('role g_app') && planned.created.includes('database g_crm'), dry.stdout);
    assert.equal(planned.statements, 0);
    const untouched = await pair.target.sql('postgres', `SELECT count(*)::int AS n FROM pg_roles WHERE rolname = ANY ($1)`, [ROLES]);
    assert.deepEqual(untouched.rows, [{ n: 0 }], '--dry-run made a role');

    const first = await runPgferry(args);
    assert.equal(first.code, 0, first.stderr);
    const report = JSON.parse(first.stdout) as GlobalsReport;
    assert.ok(!first.stdout.includes('SCRAM-SHA-256$') && !first.stderr.includes('SCRAM-SHA-256$'), 'a verifier was printed');
    for (const object of [
      'role g_app',
      'role g_legacy',
      'database g_shop',
      'database g_crm',
      'database g_analytics',
      'tablespace g_fast',
    ]) {
      assert.ok(report.created.includes(object), `${object} not created: ${first.stdout}`);
    }
    assert.ok(
      report.warnings.some((w) => w.startsWith('role g_legacy: its password is an MD5 verifier')),
      `no MD5 warning: ${report.warnings.join('\n')}`,
    );
    assert.deepEqual(report.passwordsToSet, []);

    // The read-only freeze of a cut-over never travels; everything else reads the same on both sides.
    const withoutFreeze = (rows: unknown[]) =>
      rows.map((r) => {
        const row = r as { setconfig: string[] };
        return { ...row, setconfig: row.setconfig.filter((s) => s !== 'default_transaction_read_only=on') };
      });
    assert.deepEqual(await roleFacts(pair.target), await roleFacts(pair.source));
    assert.deepEqual(await membershipFacts(pair.target), await membershipFacts(pair.source));
    assert.deepEqual(
      await settingFacts(pair.target),
      withoutFreeze((await settingFacts(pair.source)).filter((r) => (r as { database: string }).database !== 'g_other')),
    );
    assert.deepEqual(await databaseFacts(pair.target), await databaseFacts(pair.source));
    assert.deepEqual(await tablespaceFacts(pair.target), await tablespaceFacts(pair.source));
    const placed = await pair.target.sql(
      'postgres',
      `SELECT pg_tablespace_location(oid) AS location FROM pg_tablespace WHERE spcname = 'g_fast'`,
    );
    assert.deepEqual(placed.rows, [{ location: targetFast }]);

    // SCRAM verifiers keep every login working; an MD5 one does not pass a scram-sha-256 pg_hba line, as its warning says.
    assert.equal(await logIn(pair.target, 'g_app', 'app-secret', 'g_shop'), 'g_app');
    assert.equal(await logIn(pair.target, 'g_lead', 'lead-secret', 'g_crm'), 'g_lead');
    assert.match(await logIn(pair.target, 'g_app', 'wrong', 'g_shop'), /^refused: password authentication failed/);
    assert.match(await logIn(pair.target, 'g_legacy', 'legacy-secret', 'postgres'), /^refused: password authentication failed/);

    const again = await runPgferry(args);
    assert.equal(again.code, 0, again.stderr);
    const rerun = JSON.parse(again.stdout) as GlobalsReport;
    assert.deepEqual([rerun.created, rerun.altered, rerun.statements], [[], [], 0], again.stdout);

    // A database made by globals takes a clone as one made by hand does.
    await pair.source.sql('postgres', `ALTER DATABASE g_shop RESET default_transaction_read_only`);
    const cloned = await runPgferry(['clone', '--source', pair.source.url('g_shop'), '--target', pair.target.url('g_shop')]);
    assert.equal(cloned.code, 0, cloned.stderr);
    assert.deepEqual((await pair.target.sql('g_shop', 'SELECT note FROM orders')).rows, [{ note: 'first' }]);
  });

  it('a target that drifted is brought back to the source: attributes, password, grant options, owner, limit, comment, settings', async () => {
    await pair.target.sql(
      'postgres',
      `ALTER ROLE g_app NOLOGIN CONNECTION LIMIT 1 PASSWORD 'drifted';
       GRANT g_readers TO g_app WITH INHERIT TRUE, SET FALSE;
       ALTER ROLE g_app SET work_mem = '1MB';
       ALTER DATABASE g_shop OWNER TO g_app;
       ALTER DATABASE g_shop CONNECTION LIMIT 2;
       COMMENT ON DATABASE g_shop IS 'drifted'`,
    );
    const source = await resolveConnection('source', pair.source.url());
    const target = await resolveConnection('target', pair.target.url());
    const report = await carryGlobals(source, target, ['g_shop'], { tablespaceLocations: ['g_fast=/nowhere'] });
    assert.deepEqual(report.created, []);
    assert.deepEqual(report.altered, ['role g_app', 'database g_shop', 'membership of g_app in g_readers'], JSON.stringify(report));
    assert.deepEqual(await roleFacts(pair.target), await roleFacts(pair.source));
    assert.deepEqual(await membershipFacts(pair.target), await membershipFacts(pair.source));
    assert.deepEqual(await databaseFacts(pair.target), await databaseFacts(pair.source));
    assert.deepEqual(
      await settingFacts(pair.target),
      (await settingFacts(pair.source)).filter((r) => (r as { database: string }).database !== 'g_other'),
    );
    assert.equal(await logIn(pair.target, 'g_app', 'app-secret', 'g_shop'), 'g_app');
  });

  it('a source role that may not read pg_authid: no password is carried, the login roles are listed', async () => {
    await pair.source.sql(
      'postgres',
      `CREATE ROLE g_viewer LOGIN PASSWORD 'viewer-secret'; CREATE ROLE g_batch LOGIN PASSWORD 'batch-secret'`,
    );
    const source = await resolveConnection('source', pair.source.url('postgres', { user: 'g_viewer', password: 'viewer-secret' }));
    const target = await resolveConnection('target', pair.target.url());
    const report = await carryGlobals(source, target, []);
    assert.ok(report.created.includes('role g_batch'), JSON.stringify(report));
    assert.ok(report.passwordsToSet.includes('g_batch') && report.passwordsToSet.includes('g_app'), JSON.stringify(report.passwordsToSet));
    assert.ok(report.warnings.some((w) => w.includes('may not read pg_authid')));
    const { rows } = await pair.target.sql('postgres', `SELECT rolpassword IS NULL AS none FROM pg_authid WHERE rolname = 'g_batch'`);
    assert.deepEqual(rows, [{ none: true }]);
    // What had come with its verifier before stays as it is.
    assert.equal(await logIn(pair.target, 'g_app', 'app-secret', 'g_shop'), 'g_app');
  });
});

describe('pgferry globals between 14 and 17', () => {
  const pair = useClusterPair(14, 17);

  it('from 14: a membership takes INHERIT from the member role, as it did there; ADMIN carried', async () => {
    await pair.source.sql(
      'postgres',
      `CREATE ROLE h_group NOLOGIN;
       CREATE ROLE h_inherits LOGIN PASSWORD 'inherits-secret';
       CREATE ROLE h_noinherit LOGIN NOINHERIT PASSWORD 'noinherit-secret';
       GRANT h_group TO h_inherits WITH ADMIN OPTION;
       GRANT h_group TO h_noinherit`,
    );
    const source = await resolveConnection('source', pair.source.url());
    const target = await resolveConnection('target', pair.target.url());
    const report = await carryGlobals(source, target, []);
    assert.deepEqual(report.warnings, []);
    const { rows } = await pair.target.sql(
      'postgres',
      `SELECT pg_get_userbyid(member) AS member, admin_option, inherit_option, set_option FROM pg_auth_members
        WHERE roleid = 'h_group'::regrole ORDER BY 1`,
    );
    assert.deepEqual(rows, [
      { member: 'h_inherits', admin_option: true, inherit_option: true, set_option: true },
      { member: 'h_noinherit', admin_option: false, inherit_option: false, set_option: true },
    ]);
    assert.equal(await logIn(pair.target, 'h_noinherit', 'noinherit-secret', 'postgres'), 'h_noinherit');
    const again = await runPgferry(['globals', '--source', pair.source.url(), '--target', pair.target.url()]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^the target has every global object of the source already\n/);
  });

  it('to 14: a database with an ICU locale is refused before anything is done, naming it and the way out', async () => {
    await pair.target.sql('postgres', `CREATE ROLE h_icu_owner NOLOGIN`);
    await pair.target.sql(
      'postgres',
      `CREATE DATABASE h_icu OWNER h_icu_owner TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'de-DE' LOCALE 'C'`,
    );
    const result = await runPgferry([
      'globals',
      '--source',
      pair.target.url(),
      '--target',
      pair.source.url(),
      '--all-databases',
      '--include-database',
      'h_icu',
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /database "h_icu" uses the ICU locale "de-DE", and the target \(PostgreSQL 14\) cannot make an ICU database/,
    );
    assert.match(result.stderr, /create the database on the target yourself/);
    const { rows } = await pair.source.sql('postgres', `SELECT count(*)::int AS n FROM pg_roles WHERE rolname = 'h_icu_owner'`);
    assert.deepEqual(rows, [{ n: 0 }], 'a role was made before the refusal');
  });

  it('a tablespace whose target directory does not exist stops the carry, naming it and the fix', async () => {
    const dir = serverDirectory(pair.source, 'h_space');
    await pair.source.sql('postgres', `CREATE TABLESPACE h_space LOCATION '${dir}'`);
    const args = ['globals', '--source', pair.source.url(), '--target', pair.target.url()];
    const unmapped = await runPgferry(args);
    assert.equal(unmapped.code, 2, unmapped.stderr);
    assert.match(unmapped.stderr, new RegExp(`tablespace h_space \\(at ${dir} on the source\\) needs a directory on the target's machine`));
    assert.match(unmapped.stderr, /--tablespace-location/);
    const missing = await runPgferry([...args, '--tablespace-location', `h_space=${join(pair.target.directory, 'absent')}`]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /tablespace h_space: CREATE TABLESPACE .* failed: .*absent/);
    assert.match(missing.stderr, /an empty directory owned by the server's OS user/);
  });
});
