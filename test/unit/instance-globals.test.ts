/**
 * What carrying an instance's globals decides, without a server: which roles, memberships,
 * databases, settings and tablespaces are created or aligned, the SQL for each, what is
 * skipped, warned about or refused. The same plans run against real servers in
 * test/integration/instance-globals.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PgferryError } from '../../src/errors.js';
import {
  createDatabaseSql,
  grantOptions,
  parseTablespaceLocations,
  planDatabases,
  planGlobals,
  planMemberships,
  planRoles,
  planSettings,
  planTablespaces,
  verifierOf,
  type GlobalDatabase,
  type GlobalRole,
  type Globals,
  type Membership,
} from '../../src/instance/index.js';

const SCRAM = 'SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy';
const MD5 = 'md5' + '0123456789abcdef'.repeat(2);

function role(name: string, extra: Partial<GlobalRole> = {}): GlobalRole {
  return {
    name,
    bootstrap: false,
    login: false,
    superuser: false,
    createDb: false,
    createRole: false,
    inherit: true,
    replication: false,
    bypassRls: false,
    connectionLimit: -1,
    validUntil: null,
    comment: null,
    password: { kind: 'none' },
    ...extra,
  };
}

function database(name: string, extra: Partial<GlobalDatabase> = {}): GlobalDatabase {
  return {
    name,
    owner: 'postgres',
    encoding: 'UTF8',
    collate: 'C',
    ctype: 'C',
    provider: 'libc',
    locale: null,
    icuRules: null,
    connectionLimit: -1,
    comment: null,
    tablespace: 'pg_default',
    ...extra,
  };
}

function instance(extra: Partial<Globals> = {}): Globals {
  return {
    major: 17,
    currentUser: 'postgres',
    superuser: true,
    own: { createDb: true, createRole: true, replication: true, bypassRls: true },
    passwordsReadable: true,
    hasIcu: true,
    roles: [role('postgres', { bootstrap: true, superuser: true, login: true }), role('pg_read_all_data')],
    memberships: [],
    settings: [],
    databases: [database('postgres')],
    tablespaces: [],
    parameters: new Set(['work_mem', 'search_path', 'statement_timeout']),
    ...extra,
  };
}

function membership(roleName: string, member: string, extra: Partial<Membership> = {}): Membership {
  return { role: roleName, member, grantor: 'postgres', admin: false, inherit: true, set: true, ...extra };
}

describe('planRoles', () => {
  test('a missing role is created with its attributes and SCRAM verifier, which is never shown', () => {
    const source = instance({
      roles: [
        ...instance().roles,
        role('app', { login: true, createDb: true, connectionLimit: 5, password: { kind: 'scram', verifier: SCRAM } }),
      ],
    });
    const plan = planRoles(source, instance());
    assert.equal(plan.steps.length, 1);
    const [create] = plan.steps;
    assert.equal(create!.action, 'create');
    assert.equal(
      create!.sql,
      `CREATE ROLE "app" WITH LOGIN NOSUPERUSER CREATEDB NOCREATEROLE INHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 5 PASSWORD '${SCRAM}'`,
    );
    assert.ok(!create!.shown.includes(SCRAM));
    assert.ok(create!.shown.endsWith(`PASSWORD '…'`));
    assert.deepEqual(plan.warnings, []);
    assert.deepEqual([...plan.carried], ['app']);
  });

  test('a role the target has as the source has it: nothing to do; one attribute or the verifier differs: only that is altered', () => {
    const app = role('app', { login: true, password: { kind: 'scram', verifier: SCRAM } });
    const source = instance({ roles: [...instance().roles, app] });
    assert.deepEqual(planRoles(source, instance({ roles: [...instance().roles, app] })).steps, []);
    const stale = role('app', { login: false, password: { kind: 'scram', verifier: 'SCRAM-SHA-256$other' } });
    const steps = planRoles(source, instance({ roles: [...instance().roles, stale] })).steps;
    assert.deepEqual(
      steps.map((s) => [s.action, s.shown]),
      [
        ['alter', 'ALTER ROLE "app" WITH LOGIN'],
        ['alter', `ALTER ROLE "app" PASSWORD '…'`],
      ],
    );
  });

  test('the bootstrap superuser, the role pgferry connects as and predefined roles are left alone', () => {
    const source = instance({ roles: [...instance().roles, role('ferry', { login: true })] });
    const plan = planRoles(source, instance({ currentUser: 'ferry', roles: [...instance().roles, role('ferry')] }));
    assert.deepEqual(plan.steps, []);
    assert.deepEqual(
      plan.skipped.map((s) => s.object),
      ['role postgres', 'role ferry'],
    );
  });

  test('an MD5 verifier is carried with a warning; an unreadable password is listed for a login role only', () => {
    const md5 = instance({ roles: [...instance().roles, role('old', { login: true, password: { kind: 'md5', verifier: MD5 } })] });
    const plan = planRoles(md5, instance());
    assert.ok(plan.steps[0]!.sql.endsWith(`PASSWORD '${MD5}'`));
    assert.match(plan.warnings[0]!, /role old: its password is an MD5 verifier/);
    const hidden = instance({
      passwordsReadable: false,
      roles: [
        ...instance().roles,
        role('app', { login: true, password: { kind: 'unreadable' } }),
        role('group', { password: { kind: 'unreadable' } }),
      ],
    });
    const planned = planGlobals(hidden, instance(), [], new Map());
    assert.deepEqual(planned.passwordsToSet, ['app']);
    assert.ok(planned.steps.every((s) => !s.sql.includes('PASSWORD')));
    assert.ok(planned.warnings.some((w) => w.includes('may not read pg_authid') && w.includes('app')));
  });

  test('a target role without SUPERUSER withholds what it may not give, and says so', () => {
    const source = instance({ roles: [...instance().roles, role('boss', { superuser: true, replication: true, login: true })] });
    const target = instance({
      currentUser: 'admin',
      superuser: false,
      major: 16,
      own: { createDb: true, createRole: true, replication: false, bypassRls: false },
    });
    const plan = planRoles(source, target);
    assert.equal(plan.steps[0]!.sql, 'CREATE ROLE "boss" WITH LOGIN NOCREATEDB NOCREATEROLE INHERIT CONNECTION LIMIT -1');
    assert.match(plan.warnings[0]!, /role boss: SUPERUSER, REPLICATION not given/);
  });

  test('verifierOf: SCRAM and MD5 by their documented form, anything else never carried', () => {
    assert.deepEqual(verifierOf(SCRAM, true), { kind: 'scram', verifier: SCRAM });
    assert.deepEqual(verifierOf(MD5, true), { kind: 'md5', verifier: MD5 });
    assert.deepEqual(verifierOf('plaintext', true), { kind: 'other' });
    assert.deepEqual(verifierOf(null, true), { kind: 'none' });
    assert.deepEqual(verifierOf(null, false), { kind: 'unreadable' });
  });
});

describe('memberships', () => {
  test('grantOptions: a new grant, an ADMIN to add, 16 options that differ, nothing to do', () => {
    assert.equal(grantOptions(membership('r', 'm'), [], true), ' WITH ADMIN FALSE, INHERIT TRUE, SET TRUE');
    assert.equal(
      grantOptions(membership('r', 'm', { inherit: false, set: false, admin: true }), [], true),
      ' WITH ADMIN TRUE, INHERIT FALSE, SET FALSE',
    );
    assert.equal(grantOptions(membership('r', 'm'), [membership('r', 'm')], true), null);
    assert.equal(
      grantOptions(membership('r', 'm', { inherit: false }), [membership('r', 'm')], true),
      ' WITH ADMIN FALSE, INHERIT FALSE, SET TRUE',
    );
    // Never taken away: the target's ADMIN stays.
    assert.equal(
      grantOptions(membership('r', 'm', { set: false }), [membership('r', 'm', { admin: true })], true),
      ' WITH ADMIN TRUE, INHERIT TRUE, SET FALSE',
    );
    // Before 16: only ADMIN OPTION.
    assert.equal(grantOptions(membership('r', 'm', { admin: true, inherit: null, set: null }), [], false), ' WITH ADMIN OPTION');
    assert.equal(grantOptions(membership('r', 'm', { inherit: null, set: null }), [], false), '');
    assert.equal(grantOptions(membership('r', 'm', { admin: true }), [membership('r', 'm')], false), ' WITH ADMIN OPTION');
  });

  test('planMemberships: grantor kept when it is not the bootstrap superuser; predefined roles joined; 16 options warned about on older targets', () => {
    const source = instance({
      roles: [...instance().roles, role('app'), role('readers'), role('lead')],
      memberships: [
        membership('readers', 'app', { grantor: 'lead', inherit: false }),
        membership('pg_read_all_data', 'readers'),
        membership('readers', 'lead', { admin: true }),
        membership('readers', 'postgres'),
      ],
    });
    const carried = new Set(['app', 'readers', 'lead']);
    const plan = planMemberships(source, instance(), carried);
    assert.deepEqual(
      plan.steps.map((s) => s.sql),
      [
        'GRANT "readers" TO "app" WITH ADMIN FALSE, INHERIT FALSE, SET TRUE GRANTED BY "lead"',
        'GRANT "pg_read_all_data" TO "readers" WITH ADMIN FALSE, INHERIT TRUE, SET TRUE',
        'GRANT "readers" TO "lead" WITH ADMIN TRUE, INHERIT TRUE, SET TRUE',
      ],
    );
    assert.deepEqual(plan.skipped, [{ object: 'membership of postgres in readers', reason: 'role postgres is not carried' }]);
    const older = planMemberships(source, instance({ major: 15 }), carried);
    assert.equal(older.steps[0]!.sql, 'GRANT "readers" TO "app"');
    assert.match(older.warnings[0]!, /membership of app in readers: INHERIT FALSE/);
  });
});

describe('databases', () => {
  test('CREATE DATABASE from template0 with the source encoding, locale and provider', () => {
    const shop = database('shop', { owner: 'app', encoding: 'LATIN1', connectionLimit: 20 });
    assert.equal(
      createDatabaseSql(shop, 17),
      `CREATE DATABASE "shop" WITH TEMPLATE template0 OWNER "app" ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' LOCALE_PROVIDER libc CONNECTION LIMIT 20`,
    );
    assert.equal(
      createDatabaseSql(shop, 14),
      `CREATE DATABASE "shop" WITH TEMPLATE template0 OWNER "app" ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' CONNECTION LIMIT 20`,
    );
    assert.match(
      createDatabaseSql(database('crm', { provider: 'icu', locale: 'de-DE', icuRules: '&a < b', tablespace: 'fast' }), 17),
      /LOCALE_PROVIDER icu ICU_LOCALE 'de-DE' ICU_RULES '&a < b' CONNECTION LIMIT -1 TABLESPACE "fast"$/,
    );
    assert.match(
      createDatabaseSql(database('crm', { provider: 'builtin', locale: 'C.UTF-8' }), 18),
      /LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8'/,
    );
  });

  test('a database the target cannot make is refused before anything is done, naming it and the way out', () => {
    const source = instance({
      databases: [database('shop', { provider: 'icu', locale: 'de-DE' }), database('crm', { provider: 'builtin', locale: 'C' })],
    });
    assert.throws(
      () => planDatabases(source, instance({ major: 16, hasIcu: false }), ['shop', 'crm']),
      (error: unknown) =>
        error instanceof PgferryError &&
        error.code === 'usage' &&
        error.message.includes('database "shop" uses the ICU locale "de-DE"') &&
        error.message.includes('database "crm" uses the builtin locale provider') &&
        (error.fix ?? '').includes('create the database on the target yourself'),
    );
  });

  test("what the source's bootstrap superuser owns, the target's owns: each instance names its own", () => {
    const source = instance({ databases: [database('shop', { owner: 'postgres' })] });
    const target = instance({ roles: [role('admin', { bootstrap: true, superuser: true, login: true })], currentUser: 'admin' });
    assert.match(planDatabases(source, target, ['shop']).steps[0]!.sql, /OWNER "admin" ENCODING/);
    const there = instance({ ...target, databases: [database('shop', { owner: 'admin' })] });
    assert.deepEqual(planDatabases(source, there, ['shop']).steps, []);
  });

  test('an existing database: owner, connection limit and comment aligned, a different locale warned about', () => {
    const source = instance({ databases: [database('shop', { owner: 'app', connectionLimit: 3, comment: 'the shop' })] });
    const target = instance({ databases: [database('shop', { collate: 'en_US.utf8' })] });
    const plan = planDatabases(source, target, ['shop']);
    assert.deepEqual(
      plan.steps.map((s) => s.sql),
      ['ALTER DATABASE "shop" OWNER TO "app"', 'ALTER DATABASE "shop" CONNECTION LIMIT 3', `COMMENT ON DATABASE "shop" IS 'the shop'`],
    );
    assert.match(plan.warnings[0]!, /database shop exists on the target with another locale/);
    assert.deepEqual(planDatabases(source, source, ['shop']).steps, []);
  });
});

describe('planSettings', () => {
  test('role settings everywhere and in carried databases, database settings, never the freeze, unknown parameters warned', () => {
    const source = instance({
      settings: [
        { role: 'app', database: null, setting: 'work_mem=64MB' },
        { role: 'app', database: 'shop', setting: 'search_path=shop, public' },
        { role: 'app', database: 'other', setting: 'work_mem=1MB' },
        { role: null, database: 'shop', setting: 'statement_timeout=5s' },
        { role: null, database: 'shop', setting: 'default_transaction_read_only=on' },
        { role: null, database: 'shop', setting: 'old_parameter=1' },
        { role: null, database: 'shop', setting: 'app.tenant=eu' },
        { role: 'postgres', database: null, setting: 'work_mem=1GB' },
      ],
    });
    const plan = planSettings(source, instance(), ['shop'], new Set(['app']));
    assert.deepEqual(
      plan.steps.map((s) => s.sql),
      [
        `ALTER ROLE "app" SET "work_mem" TO '64MB'`,
        'ALTER ROLE "app" IN DATABASE "shop" SET "search_path" TO shop, public',
        `ALTER DATABASE "shop" SET "statement_timeout" TO '5s'`,
        `ALTER DATABASE "shop" SET "app.tenant" TO 'eu'`,
      ],
    );
    assert.deepEqual(plan.warnings, ["database shop: setting old_parameter not carried: the target's PostgreSQL 17 has no such parameter"]);
    assert.deepEqual(planSettings(source, source, ['shop'], new Set(['app'])).steps, []);
  });
});

describe('tablespaces', () => {
  const source = instance({
    tablespaces: [{ name: 'fast', owner: 'app', location: '/mnt/ssd/pg', options: ['random_page_cost=1.1'], comment: null }],
  });

  test('--tablespace-location by name or by source directory; malformed and unknown ones refused', () => {
    for (const flag of ['fast=/srv/fast', '/mnt/ssd/pg=/srv/fast']) {
      const plan = planTablespaces(source, instance(), parseTablespaceLocations([flag]));
      assert.deepEqual(
        plan.steps.map((s) => s.sql),
        [`CREATE TABLESPACE "fast" OWNER "app" LOCATION '/srv/fast' WITH (random_page_cost=1.1)`],
      );
    }
    assert.throws(() => parseTablespaceLocations(['fast']), /is not <name or source directory>=<absolute directory on the target>/);
    assert.throws(() => parseTablespaceLocations(['fast=relative']), PgferryError);
    assert.throws(
      () => planTablespaces(source, instance(), parseTablespaceLocations(['slow=/srv/x'])),
      /names "slow", which is no tablespace/,
    );
  });

  test('a tablespace without a place on the target is refused with the fix; one the target has is aligned', () => {
    assert.throws(
      () => planTablespaces(source, instance(), new Map()),
      (error: unknown) =>
        error instanceof PgferryError &&
        error.message.includes('fast (at /mnt/ssd/pg on the source)') &&
        (error.fix ?? '').includes('--tablespace-location'),
    );
    const target = instance({ tablespaces: [{ name: 'fast', owner: 'postgres', location: '/elsewhere', options: [], comment: null }] });
    assert.deepEqual(
      planTablespaces(source, target, new Map()).steps.map((s) => s.sql),
      ['ALTER TABLESPACE "fast" OWNER TO "app"', 'ALTER TABLESPACE "fast" SET (random_page_cost=1.1)'],
    );
  });
});
