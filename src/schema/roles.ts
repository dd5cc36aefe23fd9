import type pg from 'pg';
import { messageOf, PgferryError } from '../errors.js';
import { quoteIdent, quoteLiteral } from '../plumbing/index.js';
import { settingOf } from './extract/database.js';
import type { ExtractedSchema } from './model.js';

/** A role as pg_roles shows it (never pg_authid: managed services hide it, and with it the passwords). */
interface SourceRole {
  readonly name: string;
  readonly superuser: boolean;
  readonly inherit: boolean;
  readonly createRole: boolean;
  readonly createDb: boolean;
  readonly login: boolean;
  readonly replication: boolean;
  readonly bypassRls: boolean;
  readonly connectionLimit: number;
  readonly validUntil: string | null;
  readonly comment: string | null;
  /** Roles it is a member of, and whether it may grant them on. */
  readonly memberOf: ReadonlyArray<{ readonly role: string; readonly admin: boolean }> | null;
  /** ALTER ROLE … SET in every database (per-database ones travel with the database). */
  readonly settings: readonly string[] | null;
}

export interface RoleCarry {
  /** Roles made on the target, in the order made. */
  readonly created: readonly string[];
  /** What could not be carried, one line each: attributes the target role may not give, failed settings, memberships. */
  readonly leftOut: readonly string[];
}

/** The roles a schema names: owners, grantees, default privileges and per-database settings. */
export function rolesTheSchemaNeeds(schema: ExtractedSchema): string[] {
  return [...new Set(schema.objects.flatMap((o) => o.requiresRoles ?? []))].sort();
}

/**
 * `--create-roles`: makes on the target the roles `wanted` names that it lacks, their members and
 * the roles they are members of (privileges flow through them), with their attributes, comment, settings
 * and memberships, but no password: pgferry reads roles from pg_roles, which shows none (and
 * pg_authid, which holds them, is hidden on managed services). Roles the target has already are
 * left as they are. SUPERUSER, REPLICATION and BYPASSRLS are given only when the target role
 * may; anything the target refuses is reported in `leftOut`, never fatal, since the schema copy
 * itself reports what a missing role costs.
 */
export async function carryRoles(source: pg.Client, target: pg.Client, wanted: readonly string[]): Promise<RoleCarry> {
  if (wanted.length === 0) return { created: [], leftOut: [] };
  const roles = await readSourceRoles(source, wanted);
  const { rows: existing } = await target.query<{ rolname: string }>('SELECT rolname FROM pg_roles');
  const onTarget = new Set(existing.map((r) => r.rolname));
  const missing = roles.filter((r) => !onTarget.has(r.name));
  if (missing.length === 0) return { created: [], leftOut: [] };
  const { rows: me } = await target.query<{ superuser: boolean; createrole: boolean }>(
    'SELECT rolsuper AS superuser, rolcreaterole AS createrole FROM pg_roles WHERE rolname = current_user',
  );
  const { superuser, createrole } = me[0]!;
  if (!superuser && !createrole) {
    throw new PgferryError(
      'usage',
      `target: --create-roles needs a role with CREATEROLE, and the target role has neither it nor SUPERUSER (roles missing: ${missing.map((r) => r.name).join(', ')})`,
      {
        side: 'target',
        fix: 'connect to the target as a role with CREATEROLE (the admin role of a managed service has it), or create the roles yourself',
      },
    );
  }
  const created: string[] = [];
  const leftOut: string[] = [];
  const attempt = async (statement: string, what: string) => {
    try {
      await target.query(statement);
      return true;
    } catch (error) {
      leftOut.push(`${what}: ${messageOf(error)}`);
      return false;
    }
  };
  for (const role of missing) {
    const withheld = superuser
      ? []
      : [...(role.superuser ? ['SUPERUSER'] : []), ...(role.replication ? ['REPLICATION'] : []), ...(role.bypassRls ? ['BYPASSRLS'] : [])];
    if (withheld.length > 0) leftOut.push(`role ${role.name}: ${withheld.join(', ')} (only a superuser may give it)`);
    if (!(await attempt(`CREATE ROLE ${quoteIdent(role.name)} ${roleOptions(role, superuser)}`, `role ${role.name}`))) continue;
    created.push(role.name);
    if (role.comment !== null)
      await attempt(`COMMENT ON ROLE ${quoteIdent(role.name)} IS ${quoteLiteral(role.comment)}`, `comment on role ${role.name}`);
    for (const setting of role.settings ?? []) {
      const { name, rendered } = settingOf(setting);
      await attempt(
        `ALTER ROLE ${quoteIdent(role.name)} SET ${quoteIdent(name)} TO ${rendered}`,
        `setting ${setting} of role ${role.name}`,
      );
    }
  }
  // Memberships once every role exists: a created role joins the roles it belonged to on the source.
  const present = new Set([...onTarget, ...created]);
  for (const role of missing.filter((r) => created.includes(r.name))) {
    for (const { role: group, admin } of role.memberOf ?? []) {
      if (!present.has(group)) {
        leftOut.push(`membership of ${role.name} in ${group}: ${group} is not on the target`);
        continue;
      }
      await attempt(
        `GRANT ${quoteIdent(group)} TO ${quoteIdent(role.name)}${admin ? ' WITH ADMIN OPTION' : ''}`,
        `membership of ${role.name} in ${group}`,
      );
    }
  }
  return { created, leftOut };
}

/** What --create-roles did, as lines for a command's summary. */
export function roleNotes(carry: RoleCarry): string[] {
  return [
    ...(carry.created.length > 0
      ? [
          `created roles ${carry.created.join(', ')} without passwords (pgferry reads roles from pg_roles, never pg_authid, which managed services hide): ` +
            "set each login role's with ALTER ROLE … PASSWORD on the target",
        ]
      : []),
    ...carry.leftOut.map((line) => `not carried by --create-roles: ${line}`),
  ];
}

function roleOptions(role: SourceRole, targetIsSuperuser: boolean): string {
  const flag = (on: boolean, name: string) => (on ? name : `NO${name}`);
  return [
    flag(role.login, 'LOGIN'),
    flag(role.inherit, 'INHERIT'),
    flag(role.createDb, 'CREATEDB'),
    flag(role.createRole, 'CREATEROLE'),
    ...(targetIsSuperuser
      ? [flag(role.superuser, 'SUPERUSER'), flag(role.replication, 'REPLICATION'), flag(role.bypassRls, 'BYPASSRLS')]
      : []),
    `CONNECTION LIMIT ${role.connectionLimit}`,
    ...(role.validUntil !== null ? [`VALID UNTIL ${quoteLiteral(role.validUntil)}`] : []),
  ].join(' ');
}

/**
 * The wanted roles, the roles that are members of them (the application's login roles, most
 * often, which the schema never names: they hold privileges through a group), and every role
 * any of those is a member of, directly or through others. Predefined pg_ roles are not made
 * (the target has its own), but memberships in them are carried.
 */
async function readSourceRoles(source: pg.Client, wanted: readonly string[]): Promise<SourceRole[]> {
  const { rows } = await source.query<SourceRole>(
    `WITH RECURSIVE named(oid) AS (
       SELECT r.oid FROM pg_roles r WHERE r.rolname = ANY ($1::text[])
       UNION
       SELECT m.member FROM pg_auth_members m JOIN named n ON m.roleid = n.oid
     ), wanted(oid) AS (
       SELECT oid FROM named
       UNION
       SELECT m.roleid FROM pg_auth_members m JOIN wanted w ON m.member = w.oid
     )
     SELECT r.rolname AS name, r.rolsuper AS superuser, r.rolinherit AS inherit, r.rolcreaterole AS "createRole",
            r.rolcreatedb AS "createDb", r.rolcanlogin AS login, r.rolreplication AS replication, r.rolbypassrls AS "bypassRls",
            r.rolconnlimit AS "connectionLimit", r.rolvaliduntil::text AS "validUntil",
            shobj_description(r.oid, 'pg_authid') AS comment,
            (SELECT json_agg(json_build_object('role', g.rolname, 'admin', m.admin_option) ORDER BY g.rolname)
               FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid) AS "memberOf",
            (SELECT s.setconfig FROM pg_db_role_setting s WHERE s.setrole = r.oid AND s.setdatabase = 0) AS settings
       FROM pg_roles r JOIN wanted w ON w.oid = r.oid
      WHERE r.rolname !~ '^pg_'
      ORDER BY r.rolname`,
    [[...wanted]],
  );
  return rows;
}
