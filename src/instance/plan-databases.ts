import { PgferryError } from '../errors.js';
import { quoteIdent, quoteLiteral } from '../plumbing/index.js';
import type { GlobalDatabase, Globals } from './globals-model.js';
import { ownerOnTarget, step, type PlanPart, type Skipped, type Step } from './plan-model.js';

/**
 * Why the target cannot make a database like the source's, or null when it can: ICU databases
 * need PostgreSQL 15 built with ICU, the builtin provider 17. (A libc locale the target's
 * machine lacks is said by CREATE DATABASE itself, wrapped with the database's name.)
 */
export function localeRefusal(db: GlobalDatabase, target: Pick<Globals, 'major' | 'hasIcu'>): string | null {
  if (db.provider === 'icu' && (target.major < 15 || !target.hasIcu)) {
    return `database "${db.name}" uses the ICU locale "${db.locale ?? ''}", and the target (PostgreSQL ${target.major}${target.major >= 15 ? ' built without ICU' : ''}) cannot make an ICU database`;
  }
  if (db.provider === 'builtin' && target.major < 17) {
    return `database "${db.name}" uses the builtin locale provider (PostgreSQL 17), which the target (PostgreSQL ${target.major}) lacks`;
  }
  if (db.icuRules !== null && target.major < 16) {
    return `database "${db.name}" has ICU rules (PostgreSQL 16), which the target (PostgreSQL ${target.major}) lacks`;
  }
  return null;
}

/** CREATE DATABASE as the source's: from template0, so any encoding and locale can be chosen. */
export function createDatabaseSql(db: GlobalDatabase, targetMajor: number): string {
  const parts = [
    `TEMPLATE template0`,
    `OWNER ${quoteIdent(db.owner)}`,
    `ENCODING ${quoteLiteral(db.encoding)}`,
    `LC_COLLATE ${quoteLiteral(db.collate)}`,
    `LC_CTYPE ${quoteLiteral(db.ctype)}`,
  ];
  if (db.provider === 'icu') {
    parts.push(`LOCALE_PROVIDER icu`, `ICU_LOCALE ${quoteLiteral(db.locale ?? '')}`);
    if (db.icuRules !== null) parts.push(`ICU_RULES ${quoteLiteral(db.icuRules)}`);
  } else if (db.provider === 'builtin') {
    parts.push(`LOCALE_PROVIDER builtin`, `BUILTIN_LOCALE ${quoteLiteral(db.locale ?? '')}`);
  } else if (targetMajor >= 15) {
    // The target's own default provider may be ICU (initdb --locale-provider=icu): say libc.
    parts.push('LOCALE_PROVIDER libc');
  }
  parts.push(`CONNECTION LIMIT ${db.connectionLimit}`);
  if (db.tablespace !== 'pg_default') parts.push(`TABLESPACE ${quoteIdent(db.tablespace)}`);
  return `CREATE DATABASE ${quoteIdent(db.name)} WITH ${parts.join(' ')}`;
}

/** How a database's locale reads, to compare both sides and to say it. */
function localeOf(db: GlobalDatabase): string {
  return `${db.encoding}, ${db.provider}${db.locale === null ? '' : ` ${db.locale}`}, collate ${db.collate}, ctype ${db.ctype}`;
}

/**
 * Databases to create or align (owner, connection limit, comment). Refuses, before anything is
 * done, the databases the target cannot make, naming each and the way out.
 */
export function planDatabases(source: Globals, target: Globals, databases: readonly string[]): PlanPart {
  const steps: Step[] = [];
  const skipped: Skipped[] = [];
  const warnings: string[] = [];
  const refusals: string[] = [];
  for (const name of databases) {
    const found = source.databases.find((d) => d.name === name);
    if (found === undefined)
      throw new PgferryError('usage', `source: database "${name}" does not exist`, { side: 'source', fix: 'check its name' });
    const db = { ...found, owner: ownerOnTarget(found.owner, source, target) };
    const existing = target.databases.find((d) => d.name === name);
    const object = `database ${name}`;
    const quoted = quoteIdent(name);
    if (existing === undefined) {
      const refusal = localeRefusal(db, target);
      if (refusal !== null) {
        refusals.push(refusal);
        continue;
      }
      steps.push(
        step(
          object,
          'create',
          createDatabaseSql(db, target.major),
          'stop',
          `create database "${name}" on the target yourself with an encoding and locale the target has (the source's: ${localeOf(db)}), then run again`,
        ),
      );
      if (db.comment !== null) steps.push(step(object, 'create', `COMMENT ON DATABASE ${quoted} IS ${quoteLiteral(db.comment)}`));
      continue;
    }
    if (localeOf(existing) !== localeOf(db)) {
      warnings.push(
        `database ${name} exists on the target with another locale (target: ${localeOf(existing)}; source: ${localeOf(db)}): kept; text may sort and compare differently`,
      );
    }
    if (existing.tablespace !== db.tablespace) {
      warnings.push(
        `database ${name}: default tablespace ${existing.tablespace} on the target, ${db.tablespace} on the source: kept (ALTER DATABASE … SET TABLESPACE needs the database unused)`,
      );
    }
    if (existing.owner !== db.owner) steps.push(step(object, 'alter', `ALTER DATABASE ${quoted} OWNER TO ${quoteIdent(db.owner)}`));
    if (existing.connectionLimit !== db.connectionLimit) {
      steps.push(step(object, 'alter', `ALTER DATABASE ${quoted} CONNECTION LIMIT ${db.connectionLimit}`));
    }
    if (db.comment !== null && existing.comment !== db.comment) {
      steps.push(step(object, 'alter', `COMMENT ON DATABASE ${quoted} IS ${quoteLiteral(db.comment)}`));
    }
  }
  if (refusals.length > 0) {
    throw new PgferryError('usage', `target: ${refusals.join('; ')}`, {
      side: 'target',
      fix: 'migrate to a target that has the locale provider (a newer PostgreSQL, or one built with ICU), or create the database on the target yourself with a locale it has and run again',
    });
  }
  return { steps, skipped, warnings };
}
