import { address, notMemberOrInternal, USER_NAMESPACE, type ExtractContext } from './context.js';
import { quoteLiteral } from '../../plumbing/index.js';

/** Functions, procedures and aggregates, deparsed by the server where it can. */
export async function extractFunctions(ctx: ExtractContext): Promise<void> {
  const kind = ctx.major >= 11 ? 'p.prokind::text' : `CASE WHEN p.proisagg THEN 'a' WHEN p.proiswindow THEN 'w' ELSE 'f' END`;
  const functions = await ctx.rows<{
    oid: number;
    schema: string;
    namespace_oid: number;
    qname: string;
    signature: string;
    prokind: string;
    def: string | null;
  }>(`
    SELECT p.oid, n.nspname AS schema, n.oid AS namespace_oid, format('%I.%I', n.nspname, p.proname) AS qname,
           -- count(*)-style aggregates have no arguments and are named with (*).
           format('%I.%I(%s)', n.nspname, p.proname,
                  CASE WHEN ${kind} = 'a' AND pg_get_function_identity_arguments(p.oid) = '' THEN '*'
                       ELSE pg_get_function_identity_arguments(p.oid) END) AS signature,
           ${kind} AS prokind,
           CASE WHEN ${kind} <> 'a' THEN pg_get_functiondef(p.oid) END AS def
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE ${USER_NAMESPACE} AND ${notMemberOrInternal('pg_proc', 'p.oid')}`);
  for (const f of functions) {
    if (!ctx.inScope(f.schema, address('pg_proc', f.oid))) continue;
    const common = {
      id: address('pg_proc', f.oid),
      identity: `function ${f.signature}`,
      name: f.signature,
      schema: f.schema,
      section: 'pre-data' as const,
      dependsOn: [address('pg_namespace', f.namespace_oid)],
    };
    if (f.prokind === 'a') {
      const statement = await aggregateDdl(ctx, f.oid, f.signature);
      if (statement) ctx.add({ ...common, kind: 'aggregate', statements: [statement], commentTarget: `AGGREGATE ${f.signature}` });
      continue;
    }
    const keyword = f.prokind === 'p' ? 'PROCEDURE' : 'FUNCTION';
    ctx.add({ ...common, kind: 'function', statements: [`${f.def!.trimEnd()};`], commentTarget: `${keyword} ${f.signature}` });
  }
}

async function aggregateDdl(ctx: ExtractContext, oid: number, signature: string): Promise<string | undefined> {
  const combine = ctx.major >= 9 ? 'NULLIF(a.aggcombinefn, 0)::regproc::text' : 'NULL';
  const [a] = await ctx.rows<{
    kind: string;
    args: string;
    sfunc: string;
    stype: string;
    finalfunc: string | null;
    finalextra: boolean;
    combinefunc: string | null;
    serialfunc: string | null;
    deserialfunc: string | null;
    initcond: string | null;
    sortop: string | null;
    msfunc: string | null;
    parallel: string;
  }>(
    `SELECT a.aggkind::text AS kind, pg_get_function_arguments(a.aggfnoid) AS args,
            a.aggtransfn::regproc::text AS sfunc, format_type(a.aggtranstype, NULL) AS stype,
            NULLIF(a.aggfinalfn, 0)::regproc::text AS finalfunc, a.aggfinalextra AS finalextra,
            ${combine} AS combinefunc,
            NULLIF(a.aggserialfn, 0)::regproc::text AS serialfunc,
            NULLIF(a.aggdeserialfn, 0)::regproc::text AS deserialfunc,
            a.agginitval AS initcond,
            NULLIF(a.aggsortop, 0)::regoperator::text AS sortop,
            NULLIF(a.aggmtransfn, 0)::regproc::text AS msfunc,
            (SELECT proparallel::text FROM pg_proc WHERE oid = a.aggfnoid) AS parallel
       FROM pg_aggregate a WHERE a.aggfnoid = $1`,
    [oid],
  );
  if (!a) return undefined;
  if (a.kind !== 'n' || a.msfunc !== null) {
    ctx.unsupportedObject(
      'aggregate',
      signature,
      'ordered-set, hypothetical-set and moving aggregates are not copied yet; create them on the target',
    );
    return undefined;
  }
  const options = [`SFUNC = ${a.sfunc}`, `STYPE = ${a.stype}`];
  if (a.finalfunc) options.push(`FINALFUNC = ${a.finalfunc}`);
  if (a.finalextra) options.push('FINALFUNC_EXTRA');
  if (a.combinefunc) options.push(`COMBINEFUNC = ${a.combinefunc}`);
  if (a.serialfunc) options.push(`SERIALFUNC = ${a.serialfunc}`);
  if (a.deserialfunc) options.push(`DESERIALFUNC = ${a.deserialfunc}`);
  if (a.initcond !== null) options.push(`INITCOND = ${quoteLiteral(a.initcond)}`);
  if (a.sortop) options.push(`SORTOP = ${a.sortop.replace(/\(.*$/, '')}`);
  if (a.parallel === 's') options.push('PARALLEL = SAFE');
  if (a.parallel === 'r') options.push('PARALLEL = RESTRICTED');
  const name = signature.replace(/\(.*$/, '');
  return `CREATE AGGREGATE ${name}(${a.args || '*'}) (\n    ${options.join(',\n    ')}\n);`;
}
