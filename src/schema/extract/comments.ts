import { address, type ExtractContext } from './context.js';
import { quoteLiteral } from '../../plumbing/index.js';

/**
 * COMMENT ON for every created object, column and part of an object that has one on the
 * source. Parts (a CHECK inside CREATE TABLE, an identity sequence, a key's index) are no
 * objects of their own: their comments are named from the catalog and travel with their owner.
 */
export async function attachComments(ctx: ExtractContext): Promise<void> {
  const comments = await ctx.rows<{
    catalog: string;
    objoid: number;
    objsubid: number;
    description: string;
    column: string | null;
    part_target: string | null;
  }>(`
    SELECT d.classoid::regclass::text AS catalog, d.objoid, d.objsubid, d.description,
           CASE WHEN d.classoid = 'pg_class'::regclass AND d.objsubid > 0
                THEN (SELECT format('%I', attname) FROM pg_attribute WHERE attrelid = d.objoid AND attnum = d.objsubid) END AS column,
           CASE WHEN d.classoid = 'pg_constraint'::regclass
                THEN (SELECT format('CONSTRAINT %I ON %s', c.conname,
                                    CASE WHEN c.conrelid <> 0 THEN c.conrelid::regclass::text ELSE 'DOMAIN ' || c.contypid::regtype::text END)
                        FROM pg_constraint c WHERE c.oid = d.objoid)
                WHEN d.classoid = 'pg_type'::regclass THEN 'TYPE ' || d.objoid::regtype::text
                WHEN d.classoid = 'pg_class'::regclass AND d.objsubid = 0
                THEN (SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE ' WHEN 'i' THEN 'INDEX ' WHEN 'I' THEN 'INDEX ' END || c.oid::regclass::text
                        FROM pg_class c WHERE c.oid = d.objoid) END AS part_target
      FROM pg_description d
     WHERE d.classoid IN ('pg_namespace'::regclass, 'pg_extension'::regclass, 'pg_collation'::regclass, 'pg_type'::regclass,
                          'pg_proc'::regclass, 'pg_class'::regclass, 'pg_constraint'::regclass, 'pg_trigger'::regclass,
                          'pg_rewrite'::regclass, 'pg_policy'::regclass, 'pg_statistic_ext'::regclass)
       -- Thousands of built-in objects carry comments; none of them is created. Every object a
       -- user makes has an oid from 16384 on; of initdb's, only the public schema is one of ours.
       AND (d.objoid >= 16384 OR d.classoid = 'pg_namespace'::regclass)`);
  for (const c of comments) {
    const id = address(c.catalog, c.objoid);
    const statement = (target: string) => `COMMENT ON ${target} IS ${quoteLiteral(c.description)};`;
    if (c.objsubid > 0) {
      // A column of a table, view or composite type (whose pg_class entry is an alias of the type).
      const owner = ctx.resolve(id);
      const target = owner ? ctx.commentTargets.get(owner.id) : undefined;
      if (!owner || !target || c.column === null) continue;
      const relation = target.replace(/^(TABLE|VIEW|MATERIALIZED VIEW|TYPE) /, '');
      owner.statements.push(statement(`COLUMN ${relation}.${c.column}`));
      continue;
    }
    // Every database's public schema carries this comment already, and only its owner may set it.
    if (c.catalog === 'pg_namespace' && c.description === 'standard public schema') continue;
    const own = ctx.objects.get(id);
    const ownTarget = ctx.commentTargets.get(id);
    if (own && ownTarget) {
      own.statements.push(statement(ownTarget));
    } else if (c.part_target) {
      // Part of another object: a constraint inside CREATE TABLE or CREATE DOMAIN, an
      // identity column's sequence, the index behind a key.
      ctx.resolve(id)?.statements.push(statement(c.part_target));
    }
  }
}
