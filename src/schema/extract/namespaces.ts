import { REPLICATION_EXTENSIONS_SQL } from '../../catalog/index.js';
import { quoteLiteral } from '../../plumbing/index.js';
import { address, notExtensionMember, USER_NAMESPACE, type ExtractContext } from './context.js';

/** Schemas, extensions and collations: what every other object is created in or with. */
export async function extractNamespaces(ctx: ExtractContext): Promise<void> {
  const schemas = await ctx.rows<{ oid: number; name: string; q: string }>(`
    SELECT n.oid, n.nspname AS name, format('%I', n.nspname) AS q
      FROM pg_namespace n
     WHERE ${USER_NAMESPACE} AND ${notExtensionMember('pg_namespace', 'n.oid')}`);
  const extensionSchemas = await ctx.rows<{ name: string; machinery: boolean }>(
    `SELECT n.nspname AS name, e.extname IN (${REPLICATION_EXTENSIONS_SQL}) AS machinery FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace`,
  );
  const needed = new Set(extensionSchemas.filter((r) => !r.machinery).map((r) => r.name));
  // A replication tool's own schema (pglogical's) goes with it, unless something kept lives there.
  const machinery = new Set(extensionSchemas.filter((r) => r.machinery && !needed.has(r.name) && r.name !== 'public').map((r) => r.name));
  for (const s of schemas) {
    if (machinery.has(s.name)) continue;
    // A schema an extension lives in is needed whatever the filters say.
    if (!ctx.scope.includesSchema(s.name) && !needed.has(s.name)) continue;
    ctx.add({
      id: address('pg_namespace', s.oid),
      identity: `schema ${s.q}`,
      kind: 'schema',
      name: s.name,
      schema: s.name,
      section: 'pre-data',
      // public exists in every new database; IF NOT EXISTS keeps the script rerunnable.
      statements: [`CREATE SCHEMA IF NOT EXISTS ${s.q};`],
      commentTarget: `SCHEMA ${s.q}`,
    });
  }

  const extensions = await ctx.rows<{
    oid: number;
    name: string;
    q: string;
    version: string;
    schema: string;
    schema_oid: number;
    qschema: string;
  }>(`
    SELECT e.oid, e.extname AS name, format('%I', e.extname) AS q, e.extversion AS version,
           n.nspname AS schema, n.oid AS schema_oid, format('%I', n.nspname) AS qschema
      FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
     WHERE e.extname <> 'plpgsql' AND e.extname NOT IN (${REPLICATION_EXTENSIONS_SQL})`);
  for (const e of extensions) {
    ctx.add({
      id: address('pg_extension', e.oid),
      identity: `extension ${e.q}`,
      kind: 'extension',
      name: e.name,
      schema: e.schema,
      section: 'pre-data',
      statements: [`CREATE EXTENSION IF NOT EXISTS ${e.q} WITH SCHEMA ${e.qschema} VERSION ${quoteLiteral(e.version)};`],
      dependsOn: [address('pg_namespace', e.schema_oid)],
      commentTarget: `EXTENSION ${e.q}`,
    });
  }

  const locale = ctx.major >= 17 ? 'c.colllocale' : ctx.major >= 15 ? 'c.colliculocale' : 'NULL::text';
  const deterministic = ctx.major >= 12 ? 'c.collisdeterministic' : 'true';
  const collations = await ctx.rows<{
    oid: number;
    schema: string;
    qname: string;
    provider: string;
    collate: string | null;
    ctype: string | null;
    locale: string | null;
    deterministic: boolean;
    namespace_oid: number;
  }>(`
    SELECT c.oid, n.nspname AS schema, format('%I.%I', n.nspname, c.collname) AS qname,
           c.collprovider::text AS provider, c.collcollate AS collate, c.collctype AS ctype,
           ${locale} AS locale, ${deterministic} AS deterministic, n.oid AS namespace_oid
      FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace
     WHERE ${USER_NAMESPACE} AND ${notExtensionMember('pg_collation', 'c.oid')}`);
  for (const c of collations) {
    if (!ctx.inScope(c.schema, address('pg_collation', c.oid))) continue;
    const options: string[] = [];
    const provider = c.provider === 'i' ? 'icu' : c.provider === 'b' ? 'builtin' : 'libc';
    options.push(`provider = ${provider}`);
    if (c.provider === 'c' || c.provider === 'd') {
      if (c.collate === c.ctype && c.collate !== null) options.push(`locale = ${quoteLiteral(c.collate)}`);
      else {
        if (c.collate !== null) options.push(`lc_collate = ${quoteLiteral(c.collate)}`);
        if (c.ctype !== null) options.push(`lc_ctype = ${quoteLiteral(c.ctype)}`);
      }
    } else {
      options.push(`locale = ${quoteLiteral(c.locale ?? c.collate ?? '')}`);
    }
    if (!c.deterministic) options.push('deterministic = false');
    ctx.add({
      id: address('pg_collation', c.oid),
      identity: `collation ${c.qname}`,
      kind: 'collation',
      name: c.qname,
      schema: c.schema,
      section: 'pre-data',
      statements: [`CREATE COLLATION ${c.qname} (${options.join(', ')});`],
      dependsOn: [address('pg_namespace', c.namespace_oid)],
      commentTarget: `COLLATION ${c.qname}`,
    });
  }
}
