import { address, notExtensionMember, USER_NAMESPACE, type ExtractContext } from './context.js';
import { quoteLiteral } from '../../plumbing/index.js';

interface TypeRow {
  oid: number;
  schema: string;
  namespace_oid: number;
  qname: string;
  typtype: string;
  typarray: number;
  typrelid: number;
  relkind: string | null;
}

/** Enum, composite, range and domain types. Base types with C I/O functions are reported, not created. */
export async function extractTypes(ctx: ExtractContext): Promise<void> {
  const types = await ctx.rows<TypeRow>(`
    SELECT t.oid, n.nspname AS schema, n.oid AS namespace_oid, format('%I.%I', n.nspname, t.typname) AS qname,
           t.typtype::text AS typtype, t.typarray, t.typrelid, c.relkind::text AS relkind
      FROM pg_type t
      JOIN pg_namespace n ON n.oid = t.typnamespace
      LEFT JOIN pg_class c ON c.oid = t.typrelid
     WHERE ${USER_NAMESPACE} AND ${notExtensionMember('pg_type', 't.oid')}
       AND NOT (t.typcategory = 'A' AND t.typelem <> 0)              -- array types come with their element
       AND (t.typrelid = 0 OR c.relkind = 'c')                      -- row types come with their table
       AND t.typtype <> 'm'                                         -- multiranges come with their range`);
  for (const t of types) {
    if (!ctx.inScope(t.schema, address('pg_type', t.oid), address('pg_type', t.typarray))) continue;
    const base = {
      id: address('pg_type', t.oid),
      identity: `type ${t.qname}`,
      name: t.qname,
      schema: t.schema,
      section: 'pre-data' as const,
      dependsOn: [address('pg_namespace', t.namespace_oid)],
      commentTarget: `${t.typtype === 'd' ? 'DOMAIN' : 'TYPE'} ${t.qname}`,
    };
    const aliases = t.typarray ? [address('pg_type', t.typarray)] : [];
    switch (t.typtype) {
      case 'e':
        ctx.add({ ...base, kind: 'enum type', statements: [await enumDdl(ctx, t)], aliases });
        break;
      case 'c':
        ctx.add({
          ...base,
          kind: 'composite type',
          statements: [await compositeDdl(ctx, t)],
          aliases: [...aliases, address('pg_class', t.typrelid)],
        });
        break;
      case 'r': {
        const { statement, multirange } = await rangeDdl(ctx, t);
        ctx.add({ ...base, kind: 'range type', statements: [statement], aliases: [...aliases, ...multirange] });
        break;
      }
      case 'd': {
        const { statements, constraintAliases } = await domainDdl(ctx, t);
        ctx.add({ ...base, kind: 'domain', statements, aliases: [...aliases, ...constraintAliases] });
        break;
      }
      default:
        ctx.unsupportedObject(
          'base type',
          t.qname,
          'base types with their own input/output functions are not copied; create them on the target first',
        );
    }
  }
}

async function enumDdl(ctx: ExtractContext, t: TypeRow): Promise<string> {
  const labels = await ctx.rows<{ label: string }>(`SELECT enumlabel AS label FROM pg_enum WHERE enumtypid = $1 ORDER BY enumsortorder`, [
    t.oid,
  ]);
  return `CREATE TYPE ${t.qname} AS ENUM (${labels.map((l) => quoteLiteral(l.label)).join(', ')});`;
}

async function compositeDdl(ctx: ExtractContext, t: TypeRow): Promise<string> {
  const attributes = await ctx.rows<{ def: string }>(
    `SELECT format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod))
            || CASE WHEN a.attcollation <> ty.typcollation THEN ' COLLATE ' || format('%I.%I', cn.nspname, co.collname) ELSE '' END AS def
       FROM pg_attribute a
       JOIN pg_type ty ON ty.oid = a.atttypid
       LEFT JOIN pg_collation co ON co.oid = a.attcollation
       LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [t.typrelid],
  );
  return `CREATE TYPE ${t.qname} AS (${attributes.map((a) => `\n    ${a.def}`).join(',')}\n);`;
}

async function rangeDdl(ctx: ExtractContext, t: TypeRow): Promise<{ statement: string; multirange: string[] }> {
  const multirange = ctx.major >= 14 ? 'r.rngmultitypid' : '0::oid';
  const [r] = await ctx.rows<{
    subtype: string;
    opclass: string | null;
    collation: string | null;
    canonical: string | null;
    diff: string | null;
    multirange_oid: number;
    multirange_name: string | null;
    multirange_array: number | null;
  }>(
    `SELECT format_type(r.rngsubtype, NULL) AS subtype,
            CASE WHEN NOT oc.opcdefault THEN format('%I.%I', ocn.nspname, oc.opcname) END AS opclass,
            CASE WHEN r.rngcollation <> 0 AND r.rngcollation <> st.typcollation THEN format('%I.%I', cn.nspname, co.collname) END AS collation,
            NULLIF(r.rngcanonical, 0)::regproc::text AS canonical,
            NULLIF(r.rngsubdiff, 0)::regproc::text AS diff,
            ${multirange} AS multirange_oid,
            CASE WHEN mt.oid IS NOT NULL THEN format('%I.%I', mn.nspname, mt.typname) END AS multirange_name,
            mt.typarray AS multirange_array
       FROM pg_range r
       JOIN pg_type st ON st.oid = r.rngsubtype
       JOIN pg_opclass oc ON oc.oid = r.rngsubopc
       JOIN pg_namespace ocn ON ocn.oid = oc.opcnamespace
       LEFT JOIN pg_collation co ON co.oid = r.rngcollation
       LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
       LEFT JOIN pg_type mt ON mt.oid = ${multirange}
       LEFT JOIN pg_namespace mn ON mn.oid = mt.typnamespace
      WHERE r.rngtypid = $1`,
    [t.oid],
  );
  if (!r) throw new Error(`range type ${t.qname} has no pg_range row`);
  const options = [`subtype = ${r.subtype}`];
  if (r.opclass) options.push(`subtype_opclass = ${r.opclass}`);
  if (r.collation) options.push(`collation = ${r.collation}`);
  if (r.canonical) {
    ctx.unsupportedObject(
      'range type canonical function',
      t.qname,
      'a canonical function needs a shell type created first; the range is created without it',
    );
  }
  if (r.diff) options.push(`subtype_diff = ${r.diff}`);
  if (r.multirange_name && r.multirange_oid) options.push(`multirange_type_name = ${r.multirange_name}`);
  const aliases = r.multirange_oid ? [address('pg_type', r.multirange_oid)] : [];
  if (r.multirange_array) aliases.push(address('pg_type', r.multirange_array));
  return { statement: `CREATE TYPE ${t.qname} AS RANGE (${options.join(', ')});`, multirange: aliases };
}

async function domainDdl(ctx: ExtractContext, t: TypeRow): Promise<{ statements: string[]; constraintAliases: string[] }> {
  const [d] = await ctx.rows<{ base: string; collation: string | null; def: string | null; notnull: boolean }>(
    `SELECT format_type(t.typbasetype, t.typtypmod) AS base,
            CASE WHEN t.typcollation <> bt.typcollation THEN format('%I.%I', cn.nspname, co.collname) END AS collation,
            -- Deparsed from the stored expression: typdefault is text written under the
            -- source session's search_path and may name types unqualified.
            pg_get_expr(t.typdefaultbin, 0) AS def, t.typnotnull AS notnull
       FROM pg_type t
       JOIN pg_type bt ON bt.oid = t.typbasetype
       LEFT JOIN pg_collation co ON co.oid = t.typcollation
       LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
      WHERE t.oid = $1`,
    [t.oid],
  );
  if (!d) throw new Error(`domain ${t.qname} disappeared while reading it`);
  const constraints = await ctx.rows<{ oid: number; name: string; def: string; validated: boolean }>(
    `SELECT oid, format('%I', conname) AS name, pg_get_constraintdef(oid) AS def, convalidated AS validated
       FROM pg_constraint WHERE contypid = $1 AND contype = 'c' ORDER BY conname`,
    [t.oid],
  );
  let create = `CREATE DOMAIN ${t.qname} AS ${d.base}`;
  if (d.collation) create += ` COLLATE ${d.collation}`;
  if (d.def !== null) create += ` DEFAULT ${d.def}`;
  if (d.notnull) create += ' NOT NULL';
  for (const c of constraints.filter((c) => c.validated)) create += `\n    CONSTRAINT ${c.name} ${c.def}`;
  const statements = [`${create};`];
  // A NOT VALID constraint can only be added to an existing domain.
  for (const c of constraints.filter((c) => !c.validated)) statements.push(`ALTER DOMAIN ${t.qname} ADD CONSTRAINT ${c.name} ${c.def};`);
  return { statements, constraintAliases: constraints.map((c) => address('pg_constraint', c.oid)) };
}
