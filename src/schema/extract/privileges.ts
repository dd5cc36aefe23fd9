import { address, type ExtractContext } from './context.js';
import { quoteIdent } from '../../plumbing/index.js';

interface AclEntry {
  grantee: string;
  privilege: string;
  grantable: boolean;
}

/** GRANT and ALTER … OWNER name objects differently from COMMENT ON in a few places. */
function grantTarget(commentTarget: string): string | undefined {
  const [keyword] = commentTarget.split(' ', 1);
  const rest = commentTarget.slice(commentTarget.indexOf(' ') + 1);
  if (commentTarget.startsWith('MATERIALIZED VIEW ')) return `TABLE ${commentTarget.slice('MATERIALIZED VIEW '.length)}`;
  switch (keyword) {
    case 'TABLE':
    case 'VIEW':
      return `TABLE ${rest}`;
    case 'SEQUENCE':
    case 'FUNCTION':
    case 'PROCEDURE':
    case 'SCHEMA':
    case 'TYPE':
    case 'DOMAIN':
      return `${keyword} ${rest}`;
    default:
      return undefined;
  }
}

const OWNED_KINDS = /^(TABLE|VIEW|MATERIALIZED VIEW|SEQUENCE|FUNCTION|PROCEDURE|AGGREGATE|SCHEMA|TYPE|DOMAIN|COLLATION|STATISTICS) /;

/**
 * Owners and privileges, as post-data objects (after the copy, so the migrating role can
 * still write the tables it created). Each one names the roles it needs: where a role does
 * not exist on the target, the apply step leaves that statement out and says so.
 */
export async function extractPrivileges(ctx: ExtractContext): Promise<void> {
  const aclJson = (
    column: string,
  ) => `(SELECT json_agg(json_build_object('grantee', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
                     'privilege', a.privilege_type, 'grantable', a.is_grantable)) FROM aclexplode(${column}) a)`;
  // Built-in objects (oids below 16384, FirstNormalObjectId) are never created, so their ACLs are not read.
  const rows = await ctx.rows<{ catalog: string; oid: number; owner: string; acl: AclEntry[] | null }>(`
    SELECT 'pg_class' AS catalog, c.oid, pg_get_userbyid(c.relowner) AS owner, ${aclJson('c.relacl')} AS acl FROM pg_class c WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND c.oid >= 16384
    UNION ALL SELECT 'pg_namespace', n.oid, pg_get_userbyid(n.nspowner), ${aclJson('n.nspacl')} FROM pg_namespace n
    UNION ALL SELECT 'pg_proc', p.oid, pg_get_userbyid(p.proowner), ${aclJson('p.proacl')} FROM pg_proc p WHERE p.oid >= 16384
    UNION ALL SELECT 'pg_type', t.oid, pg_get_userbyid(t.typowner), ${aclJson('t.typacl')} FROM pg_type t WHERE t.oid >= 16384
    UNION ALL SELECT 'pg_collation', co.oid, pg_get_userbyid(co.collowner), NULL FROM pg_collation co WHERE co.oid >= 16384
    UNION ALL SELECT 'pg_statistic_ext', s.oid, pg_get_userbyid(s.stxowner), NULL FROM pg_statistic_ext s`);
  const columnAcls = await ctx.rows<{ relid: number; column: string; acl: AclEntry[] }>(`
    SELECT a.attrelid AS relid, format('%I', a.attname) AS column, ${aclJson('a.attacl')} AS acl
      FROM pg_attribute a WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped`);

  for (const row of rows) {
    const id = address(row.catalog, row.oid);
    const object = ctx.objects.get(id);
    const target = ctx.commentTargets.get(id);
    if (!object || !target || !OWNED_KINDS.test(target)) continue;
    const owner = quoteIdent(row.owner);
    const isPublic = object.kind === 'schema' && object.name === 'public';
    // pg_dump's rule for the public schema, which every database has already: its owner is set
    // unless it is pg_database_owner, what initdb makes it from 15 on. Before 15 initdb made
    // the bootstrap superuser its owner, so a source before 15 always carries one.
    const ownerId = isPublic && row.owner === 'pg_database_owner' ? id : `${id}/owner`;
    if (ownerId !== id) {
      ctx.add({
        id: ownerId,
        identity: `owner ${object.identity}`,
        kind: 'owner',
        name: `${object.name} owner ${row.owner}`,
        schema: object.schema,
        section: 'post-data',
        statements: [`ALTER ${target} OWNER TO ${owner};`],
        dependsOn: [id],
        requiresRoles: [row.owner],
      });
    }
    if (isPublic) {
      addPublicSchemaGrants(ctx, id, ownerId, object.identity, row.owner, row.acl);
      continue;
    }
    const on = grantTarget(target);
    if (row.acl === null || on === undefined) continue;
    // A non-default ACL: start from nothing, then grant exactly what the source has.
    const statements = [`REVOKE ALL ON ${on} FROM PUBLIC;`, `REVOKE ALL ON ${on} FROM ${owner};`];
    addGrants(ctx, `${id}/acl`, `privileges ${object.identity}`, object.name, object.schema, id, ownerId, statements, on, row.acl, [
      row.owner,
    ]);
  }
  for (const c of columnAcls) {
    const id = address('pg_class', c.relid);
    const object = ctx.objects.get(id);
    const target = ctx.commentTargets.get(id);
    if (!object || !target) continue;
    const relation = target.replace(/^(TABLE|VIEW|MATERIALIZED VIEW) /, '');
    addGrants(
      ctx,
      `${id}/acl/${c.column}`,
      `privileges ${object.identity}.${c.column}`,
      `${object.name}.${c.column}`,
      object.schema,
      id,
      `${id}/owner`,
      [],
      `TABLE ${relation}`,
      c.acl,
      [],
      c.column,
    );
  }
}

/**
 * The public schema comes with every database, owned and granted differently by version: up to
 * 14 everyone may CREATE in it, from 15 on nobody but its owner (pg_database_owner). What
 * everyone but its owner may do in it is made the source's exactly (an application that creates
 * its tables there must go on doing so after the move), once its owner is set (`ownerId`).
 */
function addPublicSchemaGrants(
  ctx: ExtractContext,
  id: string,
  ownerId: string,
  identity: string,
  owner: string,
  acl: AclEntry[] | null,
): void {
  // Every grant on the target's public schema but its owner's, whatever the target's version made.
  const revokeOthers = `DO $pgferry$DECLARE g text; BEGIN
  FOR g IN SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END
             FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) a
            WHERE n.nspname = 'public' AND a.grantee <> n.nspowner
  LOOP EXECUTE 'REVOKE ALL ON SCHEMA public FROM ' || g; END LOOP;
END$pgferry$;`;
  const others = (acl ?? []).filter((a) => a.grantee !== owner);
  addGrants(ctx, `${id}/acl`, `privileges ${identity}`, 'public', 'public', id, ownerId, [revokeOthers], 'SCHEMA public', others, []);
}

function addGrants(
  ctx: ExtractContext,
  id: string,
  identity: string,
  name: string,
  schema: string,
  objectId: string,
  ownerId: string,
  revokes: string[],
  on: string,
  acl: AclEntry[],
  roles: string[],
  column?: string,
): void {
  const grants = acl.map((a) => {
    const privilege = column ? `${a.privilege} (${column})` : a.privilege;
    const grantee = a.grantee === 'PUBLIC' ? 'PUBLIC' : quoteIdent(a.grantee);
    return `GRANT ${privilege} ON ${on} TO ${grantee}${a.grantable ? ' WITH GRANT OPTION' : ''};`;
  });
  ctx.add({
    id,
    identity,
    kind: 'privileges',
    name,
    schema,
    section: 'post-data',
    statements: [...revokes, ...grants],
    dependsOn: [objectId, ownerId],
    requiresRoles: [...new Set([...roles, ...acl.map((a) => a.grantee).filter((g) => g !== 'PUBLIC')])],
  });
}
