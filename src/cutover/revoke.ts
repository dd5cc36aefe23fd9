import type pg from 'pg';
import { SYSTEM_SCHEMA_SQL, type Scope } from '../catalog/index.js';
import { PgferryError, usageError } from '../errors.js';
import type { RevokedPrivilege } from '../state/index.js';
import { inTransaction, quoteIdent } from '../plumbing/index.js';

/** The privileges that let a role change rows (or draw sequence values). */
const TABLE_WRITES = ['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'];
const SEQUENCE_WRITES = ['UPDATE', 'USAGE'];

/**
 * `--freeze revoke --roles a,b`: what those roles were granted directly on the tables and
 * sequences in scope that lets them write. A privilege held WITH GRANT OPTION is written
 * `INSERT*`, so giving it back restores the option too.
 */
export async function planRevoke(source: pg.Client, roles: readonly string[], scope: Scope): Promise<RevokedPrivilege[]> {
  const known = await source.query<{ rolname: string; rolsuper: boolean }>(
    `SELECT rolname, rolsuper FROM pg_roles WHERE rolname = ANY($1)`,
    [roles],
  );
  for (const role of roles) {
    const found = known.rows.find((r) => r.rolname === role);
    if (!found)
      throw usageError(`--roles: the source has no role "${role}"`, 'name the roles the application connects as, comma-separated');
    if (found.rolsuper)
      throw usageError(`--roles: "${role}" is a superuser, and no revoke stops a superuser from writing`, 'use --freeze read-only instead');
  }
  const { rows } = await source.query<{
    schema: string;
    name: string;
    object: string;
    relkind: string;
    role: string;
    privileges: string[];
  }>(
    `SELECT n.nspname AS schema, c.relname AS name, format('%I.%I', n.nspname, c.relname) AS object, c.relkind::text AS relkind, r.rolname AS role,
            array_agg(a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END ORDER BY a.privilege_type) AS privileges
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       CROSS JOIN LATERAL aclexplode(c.relacl) AS a
       JOIN pg_roles r ON r.oid = a.grantee
      WHERE r.rolname = ANY($1) AND c.relkind IN ('r', 'p', 'S') AND ${SYSTEM_SCHEMA_SQL}
        AND ((c.relkind IN ('r', 'p') AND a.privilege_type = ANY($2)) OR (c.relkind = 'S' AND a.privilege_type = ANY($3)))
      GROUP BY 1, 2, 3, 4, 5
      ORDER BY 3, 5`,
    [roles, TABLE_WRITES, SEQUENCE_WRITES],
  );
  return rows
    .filter((r) => (r.relkind === 'S' ? scope.includesSchema(r.schema) : scope.includes({ schema: r.schema, name: r.name })))
    .map((r) => ({ role: r.role, kind: r.relkind === 'S' ? 'sequence' : 'table', object: r.object, privileges: r.privileges }));
}

/**
 * Revokes in one transaction, then asks the server whether the roles can still write anywhere
 * in scope (as owners, through PUBLIC or another role, or by a grant this user can't revoke).
 * If they can, the transaction is rolled back: a freeze with a hole in it would lose writes.
 */
export async function applyRevoke(
  source: pg.Client,
  roles: readonly string[],
  revoked: readonly RevokedPrivilege[],
  scope: Scope,
  /** Try it and roll it back: the cut-over refuses a freeze with a hole before it waits for anything. */
  probe = false,
): Promise<void> {
  await inTransaction(
    source,
    async () => {
      for (const r of revoked) {
        await source.query(
          `REVOKE ${r.privileges.map((p) => p.replace('*', '')).join(', ')} ON ${r.kind === 'table' ? 'TABLE' : 'SEQUENCE'} ${r.object} FROM ${quoteIdent(r.role)}`,
        );
      }
      const { rows } = await source.query<{ schema: string; name: string; object: string; role: string }>(
        `SELECT n.nspname AS schema, c.relname AS name, format('%I.%I', n.nspname, c.relname) AS object, r AS role
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN unnest($1::text[]) AS r
        WHERE c.relkind IN ('r', 'p') AND ${SYSTEM_SCHEMA_SQL}
          AND (has_table_privilege(r, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') OR has_any_column_privilege(r, c.oid, 'INSERT, UPDATE'))
        ORDER BY 3, 4`,
        [roles],
      );
      const holes = rows.filter((r) => scope.includes({ schema: r.schema, name: r.name }));
      if (holes.length > 0) {
        const shown = holes
          .slice(0, 5)
          .map((h) => `${h.role} on ${h.object}`)
          .join(', ');
        throw new PgferryError(
          'freeze-would-not-hold',
          `--freeze revoke would leave writes open: ${shown}${holes.length > 5 ? ` and ${holes.length - 5} more` : ''} (the role owns the table, or writes through PUBLIC, another role, or a grant made by someone else)`,
          {
            side: 'source',
            fix: 'use --freeze read-only, or remove those grants first',
          },
        );
      }
    },
    { rollback: probe },
  );
}

/**
 * What was revoked, as read back from the target's state, checked before any of it becomes SQL
 * on the source: each object must be a table or sequence the source has (named again by the
 * source itself), each privilege one a freeze revokes. Whoever can write to the target's
 * pgferry schema must not be able to run SQL on the source.
 */
async function checkedRevoked(
  source: pg.Client,
  revoked: readonly RevokedPrivilege[],
): Promise<Array<RevokedPrivilege & { readonly on: string }>> {
  const problems: string[] = [];
  const checked: Array<RevokedPrivilege & { readonly on: string }> = [];
  for (const r of revoked) {
    const allowed = r.kind === 'table' ? TABLE_WRITES : r.kind === 'sequence' ? SEQUENCE_WRITES : [];
    const badPrivilege = r.privileges.find((p) => !allowed.includes(p.replace(/\*$/, '')));
    const { rows } = await source
      .query<{ object: string; relkind: string }>(
        `SELECT format('%I.%I', n.nspname, c.relname) AS object, c.relkind::text AS relkind
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)`,
        [r.object],
      )
      .catch(() => ({ rows: [] as Array<{ object: string; relkind: string }> }));
    const found = rows[0];
    const kindMatches =
      found !== undefined && (r.kind === 'sequence' ? found.relkind === 'S' : found.relkind === 'r' || found.relkind === 'p');
    if (badPrivilege !== undefined || !kindMatches || found.object !== r.object) {
      problems.push(JSON.stringify({ role: r.role, kind: r.kind, object: r.object, privileges: r.privileges }).slice(0, 200));
      continue;
    }
    checked.push({ ...r, on: `${r.kind === 'table' ? 'TABLE' : 'SEQUENCE'} ${found.object}` });
  }
  if (problems.length > 0) {
    throw new PgferryError(
      'state-tampered',
      `target: the recorded freeze holds privileges no freeze revokes, or objects the source does not have: ${problems.join('; ')} (pgferry.cutover was changed by hand?)`,
      {
        side: 'target',
        fix: 'nothing was granted; give the application its privileges back by hand on the source, then mark the freeze lifted (or drop the pgferry schema on the target)',
      },
    );
  }
  return checked;
}

/** Gives back exactly what was revoked, grant options included. */
export async function liftRevoke(source: pg.Client, revoked: readonly RevokedPrivilege[]): Promise<void> {
  const checked = await checkedRevoked(source, revoked);
  await inTransaction(source, async () => {
    for (const r of checked) {
      const on = r.on;
      const plain = r.privileges.filter((p) => !p.endsWith('*'));
      const grantable = r.privileges.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
      if (plain.length > 0) await source.query(`GRANT ${plain.join(', ')} ON ${on} TO ${quoteIdent(r.role)}`);
      if (grantable.length > 0) await source.query(`GRANT ${grantable.join(', ')} ON ${on} TO ${quoteIdent(r.role)} WITH GRANT OPTION`);
    }
  });
}
