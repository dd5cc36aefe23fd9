import { address, type ExtractContext } from './context.js';
import { literal } from './namespaces.js';

/** COMMENT ON for every created object and table column that has one on the source. */
export async function attachComments(ctx: ExtractContext): Promise<void> {
  const comments = await ctx.rows<{ catalog: string; objoid: number; objsubid: number; description: string; column: string | null }>(`
    SELECT d.classoid::regclass::text AS catalog, d.objoid, d.objsubid, d.description,
           CASE WHEN d.classoid = 'pg_class'::regclass AND d.objsubid > 0
                THEN (SELECT format('%I', attname) FROM pg_attribute WHERE attrelid = d.objoid AND attnum = d.objsubid) END AS column
      FROM pg_description d
     WHERE d.classoid IN ('pg_namespace'::regclass, 'pg_extension'::regclass, 'pg_collation'::regclass, 'pg_type'::regclass,
                          'pg_proc'::regclass, 'pg_class'::regclass, 'pg_constraint'::regclass, 'pg_trigger'::regclass,
                          'pg_rewrite'::regclass, 'pg_policy'::regclass, 'pg_statistic_ext'::regclass)`);
  for (const c of comments) {
    const id = address(c.catalog, c.objoid);
    const object = ctx.objects.get(id);
    const target = ctx.commentTargets.get(id);
    if (!object || !target) continue;
    if (c.objsubid > 0) {
      if (c.column === null) continue;
      const relation = target.replace(/^(TABLE|VIEW|MATERIALIZED VIEW|TYPE) /, '');
      object.statements.push(`COMMENT ON COLUMN ${relation}.${c.column} IS ${literal(c.description)};`);
    } else {
      object.statements.push(`COMMENT ON ${target} IS ${literal(c.description)};`);
    }
  }
}
