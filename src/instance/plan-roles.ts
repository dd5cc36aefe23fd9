import { quoteIdent, quoteLiteral } from '../plumbing/index.js';
import type { GlobalRole, Globals, Membership } from './globals-model.js';
import { step, type PlanPart, type Skipped, type Step } from './plan-model.js';

/** The predefined roles (pg_read_all_data, …): each server has its own; memberships in them are carried. */
export function isPredefined(name: string): boolean {
  return name.startsWith('pg_');
}

type Flag = 'login' | 'superuser' | 'createDb' | 'createRole' | 'inherit' | 'replication' | 'bypassRls';

const FLAGS: ReadonlyArray<readonly [Flag, string]> = [
  ['login', 'LOGIN'],
  ['superuser', 'SUPERUSER'],
  ['createDb', 'CREATEDB'],
  ['createRole', 'CREATEROLE'],
  ['inherit', 'INHERIT'],
  ['replication', 'REPLICATION'],
  ['bypassRls', 'BYPASSRLS'],
];

/**
 * The attributes the target's role may hand on: a superuser all of them; a CREATEROLE role
 * never SUPERUSER, and from 16 on only what it has itself (before 16 it could give CREATEDB,
 * never REPLICATION or BYPASSRLS).
 */
export function grantableFlags(target: Pick<Globals, 'superuser' | 'major' | 'own'>): ReadonlySet<Flag> {
  if (target.superuser) return new Set(FLAGS.map(([f]) => f));
  const flags = new Set<Flag>(['login', 'inherit', 'createRole']);
  if (target.major < 16 || target.own.createDb) flags.add('createDb');
  if (target.major >= 16 && target.own.replication) flags.add('replication');
  if (target.major >= 16 && target.own.bypassRls) flags.add('bypassRls');
  return flags;
}

/** Why a role of the source is not carried, or null when it is. */
export function whyRoleSkipped(role: GlobalRole, target: Globals): string | null {
  if (isPredefined(role.name)) return 'a predefined role: the target has its own';
  if (role.bootstrap) return 'the bootstrap superuser: the target has its own';
  if (role.name === target.currentUser) return 'the role pgferry connects to the target as: left as it is';
  if (target.roles.some((r) => r.bootstrap && r.name === role.name)) return "the target's bootstrap superuser: left as it is";
  return null;
}

interface RolesPlan extends PlanPart {
  readonly passwordsToSet: readonly string[];
  /** Roles of the source that are carried (so memberships and settings of them are too). */
  readonly carried: ReadonlySet<string>;
}

/** Roles to create or align: attributes, password verifier, comment. */
export function planRoles(source: Globals, target: Globals): RolesPlan {
  const grantable = grantableFlags(target);
  const onTarget = new Map(target.roles.map((r) => [r.name, r]));
  const steps: Step[] = [];
  const skipped: Skipped[] = [];
  const warnings: string[] = [];
  const passwordsToSet: string[] = [];
  const carried = new Set<string>();
  for (const role of source.roles) {
    const reason = whyRoleSkipped(role, target);
    if (reason !== null) {
      if (!isPredefined(role.name)) skipped.push({ object: `role ${role.name}`, reason });
      continue;
    }
    carried.add(role.name);
    const existing = onTarget.get(role.name);
    const clauses: string[] = [];
    const withheld: string[] = [];
    for (const [flag, keyword] of FLAGS) {
      if (existing !== undefined && existing[flag] === role[flag]) continue;
      if (!grantable.has(flag)) {
        if (role[flag]) withheld.push(keyword);
        continue;
      }
      clauses.push(role[flag] ? keyword : `NO${keyword}`);
    }
    if (existing === undefined || existing.connectionLimit !== role.connectionLimit)
      clauses.push(`CONNECTION LIMIT ${role.connectionLimit}`);
    if (role.validUntil !== null && existing?.validUntil !== role.validUntil) clauses.push(`VALID UNTIL ${quoteLiteral(role.validUntil)}`);
    if (withheld.length > 0) {
      warnings.push(
        `role ${role.name}: ${withheld.join(', ')} not given (the target's role ${target.currentUser} may not give it): give it as a superuser`,
      );
    }
    const password = passwordClause(role, existing, warnings, passwordsToSet);
    const name = quoteIdent(role.name);
    if (existing === undefined) {
      const head = `CREATE ROLE ${name}${clauses.length > 0 ? ` WITH ${clauses.join(' ')}` : ''}`;
      steps.push({
        object: `role ${role.name}`,
        action: 'create',
        sql: password === null ? head : `${head} PASSWORD ${quoteLiteral(password)}`,
        shown: password === null ? head : `${head} PASSWORD '…'`,
        onFailure: 'warn',
      });
    } else {
      if (clauses.length > 0) steps.push(step(`role ${role.name}`, 'alter', `ALTER ROLE ${name} WITH ${clauses.join(' ')}`));
      if (password !== null) {
        steps.push({
          object: `role ${role.name}`,
          action: 'alter',
          sql: `ALTER ROLE ${name} PASSWORD ${quoteLiteral(password)}`,
          shown: `ALTER ROLE ${name} PASSWORD '…'`,
          onFailure: 'warn',
        });
      }
    }
    if (role.comment !== null && existing?.comment !== role.comment) {
      steps.push(
        step(`role ${role.name}`, existing === undefined ? 'create' : 'alter', `COMMENT ON ROLE ${name} IS ${quoteLiteral(role.comment)}`),
      );
    }
  }
  return { steps, skipped, warnings, passwordsToSet, carried };
}

/**
 * The verifier to set, or null: a SCRAM verifier carries as it is (the client proves it knows
 * the password; the server never needed it), an MD5 one too, with a warning, since it logs in
 * only where pg_hba.conf allows md5. A verifier the target holds already is not set again.
 */
function passwordClause(role: GlobalRole, existing: GlobalRole | undefined, warnings: string[], toSet: string[]): string | null {
  const password = role.password;
  switch (password.kind) {
    case 'none':
      return null;
    case 'unreadable':
      if (role.login) toSet.push(role.name);
      return null;
    case 'other':
      warnings.push(
        `role ${role.name}: its password is stored in a form pgferry does not know: not carried; set it on the target with ALTER ROLE … PASSWORD`,
      );
      return null;
    case 'md5':
      warnings.push(
        `role ${role.name}: its password is an MD5 verifier, carried as it is: it logs in only where the target's pg_hba.conf says md5 for it (scram-sha-256 refuses it); set a new password on the target to get a SCRAM verifier (PostgreSQL 18 deprecates MD5)`,
      );
      break;
    case 'scram':
      break;
  }
  const current = existing?.password;
  if (current !== undefined && (current.kind === 'scram' || current.kind === 'md5') && current.verifier === password.verifier) return null;
  return password.verifier;
}

/** Memberships to grant: the source's, for carried roles and roles the target has (predefined ones included). */
export function planMemberships(source: Globals, target: Globals, carried: ReadonlySet<string>): PlanPart {
  const steps: Step[] = [];
  const skipped: Skipped[] = [];
  const warnings: string[] = [];
  const present = (name: string) => carried.has(name) || (isPredefined(name) && target.roles.some((r) => r.name === name));
  const sourceBootstrap = source.roles.find((r) => r.bootstrap)?.name;
  const perGrant = source.major >= 16 && target.major >= 16;
  for (const m of source.memberships) {
    const object = `membership of ${m.member} in ${m.role}`;
    if (!carried.has(m.member)) {
      if (!isPredefined(m.member)) skipped.push({ object, reason: `role ${m.member} is not carried` });
      continue;
    }
    if (!present(m.role)) {
      warnings.push(`${object}: role ${m.role} is not on the target`);
      continue;
    }
    const existing = target.memberships.filter((t) => t.role === m.role && t.member === m.member);
    const options = grantOptions(m, existing, perGrant);
    if (options === null) continue;
    if (!perGrant && (m.inherit === false || m.set === false)) {
      warnings.push(
        `${object}: INHERIT FALSE / SET FALSE of the grant need PostgreSQL 16 on both sides: granted with the target's defaults`,
      );
    }
    const grantor =
      target.major >= 16 && m.grantor !== null && m.grantor !== sourceBootstrap && m.grantor !== m.member && present(m.grantor)
        ? ` GRANTED BY ${quoteIdent(m.grantor)}`
        : '';
    // A grant by a role holds only once that role may grant it, which another grant may give: retried.
    steps.push(
      step(
        object,
        existing.length === 0 ? 'create' : 'alter',
        `GRANT ${quoteIdent(m.role)} TO ${quoteIdent(m.member)}${options}${grantor}`,
        'retry',
      ),
    );
  }
  return { steps, skipped, warnings };
}

/**
 * The WITH clause of the GRANT that makes the target's membership match, '' for a plain grant,
 * or null when nothing is to be done. Never takes anything away: an ADMIN or INHERIT the target
 * has beyond the source's stays.
 */
export function grantOptions(m: Membership, existing: readonly Membership[], perGrant: boolean): string | null {
  const admin = m.admin && !existing.some((e) => e.admin);
  if (perGrant && m.inherit !== null && m.set !== null) {
    const matches = existing.some((e) => e.inherit === m.inherit && e.set === m.set);
    if (existing.length > 0 && matches && !admin) return null;
    return ` WITH ADMIN ${m.admin || existing.some((e) => e.admin) ? 'TRUE' : 'FALSE'}, INHERIT ${m.inherit ? 'TRUE' : 'FALSE'}, SET ${m.set ? 'TRUE' : 'FALSE'}`;
  }
  if (existing.length > 0 && !admin) return null;
  return m.admin ? ' WITH ADMIN OPTION' : '';
}
