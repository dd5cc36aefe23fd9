import { REPLICATION_EXTENSIONS_SQL } from '../../catalog/index.js';
import { quoteIdent } from '../../plumbing/index.js';
import { address, type ExtractContext } from './context.js';

/** One privilege of one grantee whose grant differs from what the extension made. */
interface Change {
  grantee: string;
  privilege: string;
  /** Null: not held. */
  was: boolean | null;
  now: boolean | null;
}

interface MemberRow {
  extension: number;
  schema: string;
  /** As GRANT names it: "FUNCTION public.f(integer)", "TABLE public.v", "SEQUENCE …", "TYPE …". */
  target: string;
  /** The object without its keyword, for messages. */
  name: string;
  /** Quoted; set for a column's privileges. */
  column: string | null;
  changes: Change[];
}

/**
 * Privileges changed on objects an extension made (REVOKE ALL ON FUNCTION
 * pg_stat_statements(boolean) FROM PUBLIC, say). CREATE EXTENSION on the target makes those
 * objects with the privileges its script gives them, so, as pg_dump does, only the difference
 * is carried: between the object's ACL and its initial one (pg_init_privs, which records what
 * the script granted, or the built-in default when the script granted nothing).
 */
export async function extractExtensionMemberPrivileges(ctx: ExtractContext): Promise<void> {
  const procedure = ctx.major >= 11 ? `p.prokind = 'p'` : 'false';
  // An ACL against its initial one, per grantee and privilege (several grantors count as one grant).
  const changes = (acl: string, initial: string) => `(
    SELECT coalesce(json_agg(json_build_object('grantee', x.grantee, 'privilege', x.privilege, 'was', x.was, 'now', x.now)
                             ORDER BY x.was IS NULL, x.grantee, x.privilege), '[]')
      FROM (SELECT CASE WHEN coalesce(n.grantee, i.grantee) = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(coalesce(n.grantee, i.grantee)) END AS grantee,
                   coalesce(n.privilege, i.privilege) AS privilege, i.grantable AS was, n.grantable AS now
              FROM (SELECT a.grantee, a.privilege_type AS privilege, bool_or(a.is_grantable) AS grantable
                      FROM aclexplode(${acl}) a GROUP BY 1, 2) n
              FULL JOIN (SELECT a.grantee, a.privilege_type AS privilege, bool_or(a.is_grantable) AS grantable
                           FROM aclexplode(${initial}) a GROUP BY 1, 2) i ON i.grantee = n.grantee AND i.privilege = n.privilege
             WHERE n.grantable IS DISTINCT FROM i.grantable) x)`;
  const initial = (catalog: string, oid: string, subid: string, builtIn: string) =>
    `coalesce((SELECT ip.initprivs FROM pg_init_privs ip
                WHERE ip.classoid = '${catalog}'::regclass AND ip.objoid = ${oid} AND ip.objsubid = ${subid}), ${builtIn})`;
  const rows = await ctx.rows<MemberRow>(`
    WITH member AS (
      SELECT d.refobjid AS extension, d.classid, d.objid FROM pg_depend d
       WHERE d.deptype = 'e' AND d.refclassid = 'pg_extension'::regclass
         AND d.refobjid NOT IN (SELECT oid FROM pg_extension WHERE extname IN (${REPLICATION_EXTENSIONS_SQL}))
    ), object AS (
      SELECT m.extension, n.nspname AS schema,
             CASE WHEN ${procedure} THEN 'PROCEDURE ' ELSE 'FUNCTION ' END
               || format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS target,
             NULL::text AS column, coalesce(p.proacl, acldefault('f', p.proowner)) AS acl,
             ${initial('pg_proc', 'p.oid', '0', "acldefault('f', p.proowner)")} AS initial
        FROM member m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
        JOIN pg_namespace n ON n.oid = p.pronamespace
      UNION ALL
      SELECT m.extension, n.nspname,
             CASE WHEN c.relkind = 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || format('%I.%I', n.nspname, c.relname),
             NULL, coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner)),
             ${initial('pg_class', 'c.oid', '0', `acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner)`)}
        FROM member m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
        JOIN pg_namespace n ON n.oid = c.relnamespace
      UNION ALL
      -- A column's privileges are its own grants only: by default it has none (NULL: aclexplode
      -- gives no row for it, and refuses the zero-dimensional '{}').
      SELECT m.extension, n.nspname, 'TABLE ' || format('%I.%I', n.nspname, c.relname),
             format('%I', a.attname), a.attacl,
             ${initial('pg_class', 'c.oid', 'a.attnum', 'NULL::aclitem[]')}
        FROM member m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      UNION ALL
      SELECT m.extension, n.nspname, 'TYPE ' || format('%I.%I', n.nspname, t.typname),
             NULL, coalesce(t.typacl, acldefault('T', t.typowner)),
             ${initial('pg_type', 't.oid', '0', "acldefault('T', t.typowner)")}
        FROM member m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
        JOIN pg_namespace n ON n.oid = t.typnamespace
    )
    SELECT o.extension, o.schema, o.target, substr(o.target, strpos(o.target, ' ') + 1) AS name, o.column,
           ${changes('o.acl', 'o.initial')} AS changes
      FROM object o
     ORDER BY o.target, o.column`);
  for (const row of rows) {
    if (row.changes.length === 0) continue;
    const privilege = (c: Change) => (row.column === null ? c.privilege : `${c.privilege} (${row.column})`);
    const grantee = (c: Change) => (c.grantee === 'PUBLIC' ? 'PUBLIC' : quoteIdent(c.grantee));
    const statements = row.changes.map((c) => {
      if (c.now === null) return `REVOKE ${privilege(c)} ON ${row.target} FROM ${grantee(c)};`;
      if (c.was === true) return `REVOKE GRANT OPTION FOR ${privilege(c)} ON ${row.target} FROM ${grantee(c)};`;
      return `GRANT ${privilege(c)} ON ${row.target} TO ${grantee(c)}${c.now ? ' WITH GRANT OPTION' : ''};`;
    });
    const what = row.column === null ? row.target : `${row.target}.${row.column}`;
    ctx.add({
      id: `${address('pg_extension', row.extension)}/acl/${what}`,
      identity: `privileges of extension member ${what}`,
      kind: 'privileges',
      name: row.column === null ? row.name : `${row.name}.${row.column}`,
      schema: row.schema,
      section: 'post-data',
      statements,
      dependsOn: [address('pg_extension', row.extension)],
      requiresRoles: [...new Set(row.changes.map((c) => c.grantee).filter((g) => g !== 'PUBLIC'))],
    });
  }
}
