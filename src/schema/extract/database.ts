import { quoteIdent, quoteLiteral } from '../../plumbing/index.js';
import { address, type ExtractContext } from './context.js';

/**
 * What the database holds besides its objects, for the application and its operators to find
 * it behaving the same: its own settings and its roles' settings in it (`ALTER DATABASE … SET`,
 * `ALTER ROLE … IN DATABASE … SET`), and the default privileges that later objects get
 * (`ALTER DEFAULT PRIVILEGES`). Post-data: they must not change how the copy itself runs.
 */
export async function extractDatabaseProperties(ctx: ExtractContext): Promise<void> {
  await extractSettings(ctx);
  await extractDefaultPrivileges(ctx);
}

/**
 * A cut-over's freeze is a database setting; it belongs to the source, never to the target.
 * (A database kept read-only on purpose is left as the target makes it, too.)
 */
const NEVER_CARRIED = new Set(['default_transaction_read_only']);

/** Whether a database's own setting travels to the target (the cut-over's freeze never does). */
export function isCarriedDatabaseSetting(name: string): boolean {
  return !NEVER_CARRIED.has(name.toLowerCase());
}

/** Settings whose value is a list the server keeps already quoted (pg_dump writes them as they are). */
const LIST_SETTINGS = new Set([
  'search_path',
  'temp_tablespaces',
  'session_preload_libraries',
  'local_preload_libraries',
  'shared_preload_libraries',
]);

/** One `name=value` entry of pg_db_role_setting.setconfig, its value as it goes after SET … TO. */
export function settingOf(setting: string): { readonly name: string; readonly rendered: string } {
  const eq = setting.indexOf('=');
  const name = setting.slice(0, eq);
  const value = setting.slice(eq + 1);
  return { name, rendered: LIST_SETTINGS.has(name.toLowerCase()) ? value : quoteLiteral(value) };
}

async function extractSettings(ctx: ExtractContext): Promise<void> {
  const rows = await ctx.rows<{ role: string | null; setting: string }>(`
    SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_get_userbyid(s.setrole) END AS role, c.setting
      FROM pg_db_role_setting s
      JOIN pg_database d ON d.oid = s.setdatabase AND d.datname = current_database()
     CROSS JOIN LATERAL unnest(s.setconfig) AS c(setting)
     ORDER BY 1 NULLS FIRST, 2`);
  for (const { role, setting } of rows) {
    const { name, rendered } = settingOf(setting);
    if (!isCarriedDatabaseSetting(name)) continue;
    // The target database may have another name: it is named from inside, at apply time.
    const who = role === null ? '' : `ROLE ${quoteIdent(role)} IN `;
    const alter = `format('ALTER ${who.replace(/'/g, "''")}DATABASE %I SET %s TO %s', pg_catalog.current_database(), ${quoteLiteral(quoteIdent(name))}, ${quoteLiteral(rendered)})`;
    // A parameter the target's version no longer has (or an extension's not loaded there and
    // without a dot) would fail the whole copy; it is left out with a warning in its log.
    const known = name.includes('.')
      ? 'true'
      : `EXISTS (SELECT 1 FROM pg_catalog.pg_settings WHERE name = ${quoteLiteral(name.toLowerCase())})`;
    ctx.add({
      id: `database:setting/${role ?? ''}/${name}`,
      identity: role === null ? `database setting ${name}` : `role ${quoteIdent(role)} setting ${name}`,
      kind: 'database setting',
      name: role === null ? `database setting ${name}` : `setting ${name} of role ${role}`,
      schema: '',
      section: 'post-data',
      statements: [
        `DO $pgferry$BEGIN IF ${known} THEN EXECUTE ${alter}; ELSE RAISE WARNING 'pgferry: parameter % of the source database does not exist here', ${quoteLiteral(name)}; END IF; END$pgferry$;`,
      ],
      requiresRoles: role === null ? [] : [role],
    });
  }
}

const DEFAULT_ACL_OBJECTS: Readonly<Record<string, string>> = { r: 'TABLES', S: 'SEQUENCES', f: 'FUNCTIONS', T: 'TYPES', n: 'SCHEMAS' };

async function extractDefaultPrivileges(ctx: ExtractContext): Promise<void> {
  const rows = await ctx.rows<{
    oid: number;
    role: string;
    schema: string | null;
    schema_oid: number;
    type: string;
    acl: Array<{ grantee: string; privilege: string; grantable: boolean }>;
  }>(`
    SELECT a.oid, pg_get_userbyid(a.defaclrole) AS role, n.nspname AS schema, a.defaclnamespace AS schema_oid, a.defaclobjtype::text AS type,
           coalesce((SELECT json_agg(json_build_object('grantee', CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END,
                                                       'privilege', x.privilege_type, 'grantable', x.is_grantable) ORDER BY 1)
                       FROM aclexplode(a.defaclacl) x), '[]') AS acl
      FROM pg_default_acl a LEFT JOIN pg_namespace n ON n.oid = a.defaclnamespace
     ORDER BY 2, 3 NULLS FIRST, 5`);
  for (const row of rows) {
    const objects = DEFAULT_ACL_OBJECTS[row.type];
    if (objects === undefined) continue;
    if (row.schema !== null && !ctx.scope.includesSchema(row.schema)) continue;
    const prefix = `ALTER DEFAULT PRIVILEGES FOR ROLE ${quoteIdent(row.role)}${row.schema === null ? '' : ` IN SCHEMA ${quoteIdent(row.schema)}`}`;
    const grantee = (name: string) => (name === 'PUBLIC' ? 'PUBLIC' : quoteIdent(name));
    // A database-wide entry replaces the built-in defaults (the owner's rights, PUBLIC's EXECUTE
    // and USAGE): from nothing, then exactly what the source has. One in a schema only adds.
    const statements =
      row.schema === null
        ? [`${prefix} REVOKE ALL ON ${objects} FROM PUBLIC;`, `${prefix} REVOKE ALL ON ${objects} FROM ${quoteIdent(row.role)};`]
        : [];
    for (const entry of row.acl) {
      statements.push(
        `${prefix} GRANT ${entry.privilege} ON ${objects} TO ${grantee(entry.grantee)}${entry.grantable ? ' WITH GRANT OPTION' : ''};`,
      );
    }
    ctx.add({
      id: address('pg_default_acl', row.oid),
      identity: `default privileges for ${quoteIdent(row.role)} in ${row.schema === null ? 'the database' : `schema ${quoteIdent(row.schema)}`} on ${objects.toLowerCase()}`,
      kind: 'default privileges',
      name: `default privileges of ${row.role} on ${objects.toLowerCase()}${row.schema === null ? '' : ` in ${row.schema}`}`,
      schema: row.schema ?? '',
      section: 'post-data',
      statements,
      dependsOn: row.schema === null ? [] : [address('pg_namespace', row.schema_oid)],
      requiresRoles: [...new Set([row.role, ...row.acl.map((e) => e.grantee).filter((g) => g !== 'PUBLIC')])],
    });
  }
}
