import type pg from 'pg';
import type { GlobalDatabase, GlobalRole, GlobalTablespace, Globals, Membership, PasswordVerifier, RoleSetting } from './globals-model.js';

/**
 * Reads one server's global objects. Works as any role: pg_authid (the password verifiers) is
 * read only when this role may (a superuser; never on managed services), and the rest comes
 * from catalogs everyone can read.
 */
export async function readGlobals(client: pg.Client): Promise<Globals> {
  const { rows: me } = await client.query<{
    num: string;
    user: string;
    superuser: boolean;
    createdb: boolean;
    createrole: boolean;
    replication: boolean;
    bypassrls: boolean;
    authid: boolean;
    icu: boolean;
  }>(
    `SELECT current_setting('server_version_num') AS num, current_user AS user, r.rolsuper AS superuser, r.rolcreatedb AS createdb,
            r.rolcreaterole AS createrole, r.rolreplication AS replication, r.rolbypassrls AS bypassrls,
            has_table_privilege('pg_catalog.pg_authid', 'SELECT') AS authid,
            EXISTS (SELECT 1 FROM pg_catalog.pg_collation WHERE collprovider = 'i') AS icu
       FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`,
  );
  const self = me[0]!;
  const major = Math.floor(Number(self.num) / 10000);
  const [roles, memberships, settings, databases, tablespaces, parameters] = [
    await readRoles(client, self.authid),
    await readMemberships(client, major),
    await readSettings(client),
    await readDatabases(client, major),
    await readTablespaces(client),
    await client.query<{ name: string }>('SELECT lower(name) AS name FROM pg_catalog.pg_settings'),
  ];
  return {
    major,
    currentUser: self.user,
    superuser: self.superuser,
    own: { createDb: self.createdb, createRole: self.createrole, replication: self.replication, bypassRls: self.bypassrls },
    passwordsReadable: self.authid,
    hasIcu: self.icu,
    roles,
    memberships,
    settings,
    databases,
    tablespaces,
    parameters: new Set(parameters.rows.map((r) => r.name)),
  };
}

/** A verifier as pg_authid holds it, by its format (SCRAM's and MD5's are documented). */
export function verifierOf(stored: string | null, readable: boolean): PasswordVerifier {
  if (!readable) return { kind: 'unreadable' };
  if (stored === null) return { kind: 'none' };
  if (stored.startsWith('SCRAM-SHA-256$')) return { kind: 'scram', verifier: stored };
  if (/^md5[0-9a-f]{32}$/.test(stored)) return { kind: 'md5', verifier: stored };
  return { kind: 'other' };
}

/** A timestamptz as one text both servers read the same, whatever their TimeZone and DateStyle. */
const VALID_UNTIL = `CASE WHEN r.rolvaliduntil IS NULL THEN NULL WHEN isfinite(r.rolvaliduntil)
  THEN to_char(r.rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') ELSE r.rolvaliduntil::text END`;

async function readRoles(client: pg.Client, authid: boolean): Promise<GlobalRole[]> {
  const { rows } = await client.query<{
    name: string;
    bootstrap: boolean;
    login: boolean;
    superuser: boolean;
    createdb: boolean;
    createrole: boolean;
    inherit: boolean;
    replication: boolean;
    bypassrls: boolean;
    connlimit: number;
    validuntil: string | null;
    comment: string | null;
    password: string | null;
  }>(
    `SELECT r.rolname AS name, r.oid = 10 AS bootstrap, r.rolcanlogin AS login, r.rolsuper AS superuser, r.rolcreatedb AS createdb,
            r.rolcreaterole AS createrole, r.rolinherit AS inherit, r.rolreplication AS replication, r.rolbypassrls AS bypassrls,
            r.rolconnlimit AS connlimit, ${VALID_UNTIL} AS validuntil, shobj_description(r.oid, 'pg_authid') AS comment,
            ${authid ? '(SELECT a.rolpassword FROM pg_catalog.pg_authid a WHERE a.oid = r.oid)' : 'NULL::text'} AS password
       FROM pg_catalog.pg_roles r
      ORDER BY r.rolname`,
  );
  return rows.map((r) => ({
    name: r.name,
    bootstrap: r.bootstrap,
    login: r.login,
    superuser: r.superuser,
    createDb: r.createdb,
    createRole: r.createrole,
    inherit: r.inherit,
    replication: r.replication,
    bypassRls: r.bypassrls,
    connectionLimit: r.connlimit,
    validUntil: r.validuntil,
    comment: r.comment,
    password: verifierOf(r.password, authid),
  }));
}

async function readMemberships(client: pg.Client, major: number): Promise<Membership[]> {
  // INHERIT and SET became options of each grant in 16; before, inheriting was the member's attribute.
  const options = major >= 16 ? 'm.inherit_option AS inherit, m.set_option AS set' : 'NULL::boolean AS inherit, NULL::boolean AS set';
  const { rows } = await client.query<Membership>(
    `SELECT g.rolname AS role, u.rolname AS member, gr.rolname AS grantor, m.admin_option AS admin, ${options}
       FROM pg_catalog.pg_auth_members m
       JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
       JOIN pg_catalog.pg_roles u ON u.oid = m.member
       LEFT JOIN pg_catalog.pg_roles gr ON gr.oid = m.grantor
      ORDER BY 1, 2, 3`,
  );
  return rows;
}

async function readSettings(client: pg.Client): Promise<RoleSetting[]> {
  const { rows } = await client.query<RoleSetting>(
    `SELECT r.rolname AS role, d.datname AS database, c.setting
       FROM pg_catalog.pg_db_role_setting s
       LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
       LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
      CROSS JOIN LATERAL unnest(s.setconfig) AS c(setting)
      ORDER BY 1 NULLS FIRST, 2 NULLS FIRST, 3`,
  );
  return rows;
}

async function readDatabases(client: pg.Client, major: number): Promise<GlobalDatabase[]> {
  const provider = major >= 15 ? `CASE d.datlocprovider WHEN 'i' THEN 'icu' WHEN 'b' THEN 'builtin' ELSE 'libc' END` : `'libc'`;
  const locale = major >= 17 ? 'd.datlocale' : major >= 15 ? 'd.daticulocale' : 'NULL::text';
  const rules = major >= 16 ? 'd.daticurules' : 'NULL::text';
  const { rows } = await client.query<GlobalDatabase>(
    `SELECT d.datname AS name, pg_get_userbyid(d.datdba) AS owner, pg_encoding_to_char(d.encoding) AS encoding,
            d.datcollate AS collate, d.datctype AS ctype, ${provider} AS provider, ${locale} AS locale, ${rules} AS "icuRules",
            d.datconnlimit AS "connectionLimit", shobj_description(d.oid, 'pg_database') AS comment,
            t.spcname AS tablespace
       FROM pg_catalog.pg_database d JOIN pg_catalog.pg_tablespace t ON t.oid = d.dattablespace
      ORDER BY 1`,
  );
  return rows;
}

async function readTablespaces(client: pg.Client): Promise<GlobalTablespace[]> {
  const { rows } = await client.query<GlobalTablespace>(
    `SELECT t.spcname AS name, pg_get_userbyid(t.spcowner) AS owner, pg_tablespace_location(t.oid) AS location,
            coalesce(t.spcoptions, '{}') AS options, shobj_description(t.oid, 'pg_tablespace') AS comment
       FROM pg_catalog.pg_tablespace t
      WHERE t.spcname NOT IN ('pg_default', 'pg_global')
      ORDER BY 1`,
  );
  return rows;
}
