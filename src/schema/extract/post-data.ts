import { CAPTURE_FUNCTIONS_SQL, notOwnIndexSql, type QualifiedName } from '../../catalog/index.js';
import { address, notExtensionMember, USER_NAMESPACE, type ExtractContext } from './context.js';

interface OnTable {
  relid: number;
  schema: string;
  table_name: string;
  table_q: string;
  relkind: string;
}

function tableOf(row: OnTable): QualifiedName {
  return { schema: row.schema, name: row.table_name };
}

/**
 * Everything built over loaded tables: indexes (attached to their partitioned parents),
 * primary keys and unique constraints (as a unique index, then the constraint using it),
 * exclusion and foreign-key constraints, triggers with their enabled state, rules, policies
 * and extended statistics. Objects on relations out of scope are left out.
 */
export async function extractPostData(ctx: ExtractContext): Promise<void> {
  const excluded = (relid: number) => ctx.excluded.has(address('pg_class', relid)) || !ctx.objects.has(address('pg_class', relid));
  const tableColumns = `t.oid AS relid, n.nspname AS schema, t.relname AS table_name,
           format('%I.%I', n.nspname, t.relname) AS table_q, t.relkind::text AS relkind`;

  // Constraints first, so indexes that back them are known.
  const conparent = ctx.major >= 11 ? 'c.conparentid' : '0::oid';
  const constraints = await ctx.rows<
    OnTable & {
      oid: number;
      name: string;
      contype: string;
      def: string;
      index_oid: number;
      index_q: string | null;
      /** The index's own name, quoted: ALTER TABLE … USING INDEX takes it without its schema. */
      index_name: string | null;
      index_def: string | null;
      parent_index: string | null;
      parent_index_oid: number | null;
      inherited: boolean;
      deferrable: boolean;
      deferred: boolean;
      refrelid: number;
    }
  >(`
    SELECT c.oid, format('%I', c.conname) AS name, c.contype::text AS contype, pg_get_constraintdef(c.oid) AS def,
           c.conindid AS index_oid,
           CASE WHEN c.conindid <> 0 THEN format('%I.%I', n.nspname, ic.relname) END AS index_q,
           CASE WHEN c.conindid <> 0 THEN format('%I', ic.relname) END AS index_name,
           CASE WHEN c.conindid <> 0 THEN pg_get_indexdef(c.conindid) END AS index_def,
           (SELECT format('%I.%I', pn.nspname, pi.relname) FROM pg_inherits inh
              JOIN pg_class pi ON pi.oid = inh.inhparent JOIN pg_namespace pn ON pn.oid = pi.relnamespace
             WHERE inh.inhrelid = c.conindid) AS parent_index,
           (SELECT inh.inhparent FROM pg_inherits inh WHERE inh.inhrelid = c.conindid) AS parent_index_oid,
           ${conparent} <> 0 AS inherited, c.condeferrable AS deferrable, c.condeferred AS deferred,
           c.confrelid AS refrelid,
           ${tableColumns}
      FROM pg_constraint c
      JOIN pg_class t ON t.oid = c.conrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
      LEFT JOIN pg_class ic ON ic.oid = c.conindid
     WHERE c.contype IN ('p', 'u', 'x', 'f') AND ${USER_NAMESPACE}
     ORDER BY c.oid`);
  const constraintIndexes = new Set<number>();
  // A foreign key to a partitioned table needs the key of every partition attached first.
  const attachedUnder = new Map<number, string[]>();
  for (const c of constraints) {
    if (c.parent_index_oid)
      attachedUnder.set(c.parent_index_oid, [...(attachedUnder.get(c.parent_index_oid) ?? []), address('pg_constraint', c.oid)]);
  }
  const indexOfConstraint = new Map(constraints.map((c) => [address('pg_constraint', c.oid), c.index_oid]));
  const attachments = (indexOid: number): string[] =>
    (attachedUnder.get(indexOid) ?? []).flatMap((child) => [child, ...attachments(indexOfConstraint.get(child) ?? 0)]);
  for (const c of constraints) {
    if (c.index_oid && c.contype !== 'f') constraintIndexes.add(c.index_oid);
    if (excluded(c.relid)) continue;
    const tableId = address('pg_class', c.relid);
    const base = {
      identity: `constraint ${c.table_q}.${c.name}`,
      kind: 'constraint' as const,
      name: `${c.table_q}.${c.name}`,
      schema: c.schema,
      section: 'post-data' as const,
      table: tableOf(c),
      commentTarget: `CONSTRAINT ${c.name} ON ${c.table_q}`,
    };
    if (c.contype === 'f') {
      // Partitions get their foreign keys from the partitioned parent.
      if (c.inherited) continue;
      if (excluded(c.refrelid)) {
        ctx.unsupportedObject('foreign key', base.name, 'it references a table out of scope, so it is not created');
        continue;
      }
      const only = c.relkind === 'p' ? '' : 'ONLY ';
      ctx.add({
        ...base,
        id: address('pg_constraint', c.oid),
        statements: [`ALTER TABLE ${only}${c.table_q} ADD CONSTRAINT ${c.name} ${c.def};`],
        dependsOn: [tableId, address('pg_class', c.refrelid), ...attachments(c.index_oid)],
      });
      continue;
    }
    const statements: string[] = [];
    const aliases = [address('pg_class', c.index_oid)];
    // Only a btree key can be built as a plain unique index first (not WITHOUT OVERLAPS keys).
    const usingIndex =
      (c.contype === 'p' || c.contype === 'u') &&
      c.relkind === 'r' &&
      c.index_name !== null &&
      (c.index_def?.includes(' USING btree ') ?? false);
    if (usingIndex) {
      // Build the index on its own, then turn it into the constraint: the index build is the
      // expensive part, and clone runs it in parallel with other tables' copies.
      statements.push(`${c.index_def};`);
      const kind = c.contype === 'p' ? 'PRIMARY KEY' : 'UNIQUE';
      const deferrable = c.deferrable ? ` DEFERRABLE${c.deferred ? ' INITIALLY DEFERRED' : ''}` : '';
      statements.push(`ALTER TABLE ONLY ${c.table_q} ADD CONSTRAINT ${c.name} ${kind} USING INDEX ${c.index_name}${deferrable};`);
    } else {
      statements.push(`ALTER TABLE ONLY ${c.table_q} ADD CONSTRAINT ${c.name} ${c.def};`);
    }
    const dependsOn = [tableId];
    if (c.parent_index && c.parent_index_oid) {
      statements.push(`ALTER INDEX ${c.parent_index} ATTACH PARTITION ${c.index_q};`);
      dependsOn.push(address('pg_class', c.parent_index_oid));
    }
    ctx.add({ ...base, id: address('pg_constraint', c.oid), statements, dependsOn, aliases });
  }

  const indexes = await ctx.rows<
    OnTable & {
      oid: number;
      qname: string;
      /** Its own name, quoted, for CLUSTER ON and REPLICA IDENTITY USING INDEX. */
      name: string;
      def: string;
      parent_oid: number | null;
      parent_q: string | null;
      clustered: boolean;
      replident: boolean;
      stats: string[] | null;
    }
  >(`
    SELECT i.indexrelid AS oid, format('%I.%I', n.nspname, ic.relname) AS qname, format('%I', ic.relname) AS name, pg_get_indexdef(i.indexrelid) AS def,
           inh.inhparent AS parent_oid,
           (SELECT format('%I.%I', pn.nspname, pc.relname) FROM pg_class pc JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE pc.oid = inh.inhparent) AS parent_q,
           i.indisclustered AS clustered, i.indisreplident AS replident,
           (SELECT array_agg(format('ALTER INDEX %I.%I ALTER COLUMN %s SET STATISTICS %s;', n.nspname, ic.relname, a.attnum, a.attstattarget) ORDER BY a.attnum)
              FROM pg_attribute a WHERE a.attrelid = i.indexrelid AND a.attstattarget >= 0) AS stats,
           ${tableColumns}
      FROM pg_index i
      JOIN pg_class ic ON ic.oid = i.indexrelid
      JOIN pg_class t ON t.oid = i.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
      LEFT JOIN pg_inherits inh ON inh.inhrelid = i.indexrelid
     WHERE ${USER_NAMESPACE} AND i.indisvalid AND ${notExtensionMember('pg_class', 'i.indexrelid')}
       AND ${notOwnIndexSql('ic.relname')}
     ORDER BY i.indexrelid`);
  for (const i of indexes) {
    if (excluded(i.relid)) continue;
    const tableId = address('pg_class', i.relid);
    const isConstraintIndex = constraintIndexes.has(i.oid);
    if (!isConstraintIndex) {
      const statements = [`${i.def};`, ...(i.stats ?? [])];
      if (i.parent_q) statements.push(`ALTER INDEX ${i.parent_q} ATTACH PARTITION ${i.qname};`);
      ctx.add({
        id: address('pg_class', i.oid),
        identity: `index ${i.qname}`,
        kind: 'index',
        name: i.qname,
        schema: i.schema,
        section: 'post-data',
        statements,
        dependsOn: [tableId, ...(i.parent_oid ? [address('pg_class', i.parent_oid)] : [])],
        table: tableOf(i),
        commentTarget: `INDEX ${i.qname}`,
      });
    }
    const indexObject = address('pg_class', i.oid);
    const extra: string[] = [];
    if (i.clustered) extra.push(`ALTER TABLE ${i.table_q} CLUSTER ON ${i.name};`);
    if (i.replident) extra.push(`ALTER TABLE ONLY ${i.table_q} REPLICA IDENTITY USING INDEX ${i.name};`);
    if (extra.length > 0) {
      ctx.add({
        id: `${indexObject}/table-options`,
        identity: `index options ${i.qname}`,
        kind: 'replica identity',
        name: i.qname,
        schema: i.schema,
        section: 'post-data',
        statements: extra,
        dependsOn: [tableId, indexObject],
        table: tableOf(i),
      });
    }
  }

  await extractTriggersRulesPolicies(ctx, excluded, tableColumns);
}

async function extractTriggersRulesPolicies(
  ctx: ExtractContext,
  excluded: (relid: number) => boolean,
  tableColumns: string,
): Promise<void> {
  const tgparent = ctx.major >= 13 ? 'tg.tgparentid <> 0' : 'false';
  const triggers = await ctx.rows<OnTable & { oid: number; name: string; def: string; enabled: string; cloned: boolean }>(`
    SELECT tg.oid, format('%I', tg.tgname) AS name, pg_get_triggerdef(tg.oid) AS def, tg.tgenabled::text AS enabled,
           ${tgparent} AS cloned, ${tableColumns}
      FROM pg_trigger tg
      JOIN pg_class t ON t.oid = tg.tgrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE NOT tg.tgisinternal AND ${USER_NAMESPACE}
       -- pgferry's own TRUNCATE capture on a PostgreSQL 10 source (ddl/truncate-capture.ts).
       AND tg.tgfoid NOT IN (${CAPTURE_FUNCTIONS_SQL})
     ORDER BY tg.oid`);
  for (const tg of triggers) {
    if (excluded(tg.relid) || tg.cloned) continue;
    const statements = [`${tg.def};`];
    const state = { D: 'DISABLE TRIGGER', R: 'ENABLE REPLICA TRIGGER', A: 'ENABLE ALWAYS TRIGGER' }[tg.enabled];
    if (state) statements.push(`ALTER TABLE ${tg.table_q} ${state} ${tg.name};`);
    ctx.add({
      id: address('pg_trigger', tg.oid),
      identity: `trigger ${tg.table_q}.${tg.name}`,
      kind: 'trigger',
      name: `${tg.table_q}.${tg.name}`,
      schema: tg.schema,
      section: 'post-data',
      statements,
      dependsOn: [address('pg_class', tg.relid)],
      table: tableOf(tg),
      commentTarget: `TRIGGER ${tg.name} ON ${tg.table_q}`,
    });
  }

  const rules = await ctx.rows<OnTable & { oid: number; name: string; def: string }>(`
    SELECT r.oid, format('%I', r.rulename) AS name, pg_get_ruledef(r.oid) AS def, ${tableColumns}
      FROM pg_rewrite r
      JOIN pg_class t ON t.oid = r.ev_class
      JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE r.rulename <> '_RETURN' AND ${USER_NAMESPACE}
     ORDER BY r.oid`);
  for (const r of rules) {
    if (excluded(r.relid)) continue;
    ctx.add({
      id: address('pg_rewrite', r.oid),
      identity: `rule ${r.table_q}.${r.name}`,
      kind: 'rule',
      name: `${r.table_q}.${r.name}`,
      schema: r.schema,
      section: 'post-data',
      statements: [r.def.trim().endsWith(';') ? r.def.trim() : `${r.def.trim()};`],
      dependsOn: [address('pg_class', r.relid)],
      table: tableOf(r),
      commentTarget: `RULE ${r.name} ON ${r.table_q}`,
    });
  }

  const permissive = ctx.major >= 10 ? 'p.polpermissive' : 'true';
  const policies = await ctx.rows<
    OnTable & { oid: number; name: string; permissive: boolean; cmd: string; roles: string; qual: string | null; check: string | null }
  >(`
    SELECT p.oid, format('%I', p.polname) AS name, ${permissive} AS permissive, p.polcmd::text AS cmd,
           -- By name, not by OID: role OIDs differ between servers, and verify compares this text.
           (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE format('%I', pg_get_userbyid(r)) END, ', '
                              ORDER BY r <> 0, pg_get_userbyid(r))
              FROM unnest(p.polroles) r) AS roles,
           pg_get_expr(p.polqual, p.polrelid) AS qual, pg_get_expr(p.polwithcheck, p.polrelid) AS check,
           ${tableColumns}
      FROM pg_policy p
      JOIN pg_class t ON t.oid = p.polrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE ${USER_NAMESPACE}
     ORDER BY p.oid`);
  const commands: Record<string, string> = { r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE', '*': 'ALL' };
  for (const p of policies) {
    if (excluded(p.relid)) continue;
    let statement = `CREATE POLICY ${p.name} ON ${p.table_q} AS ${p.permissive ? 'PERMISSIVE' : 'RESTRICTIVE'} FOR ${commands[p.cmd] ?? 'ALL'} TO ${p.roles}`;
    if (p.qual !== null) statement += ` USING (${p.qual})`;
    if (p.check !== null) statement += ` WITH CHECK (${p.check})`;
    ctx.add({
      id: address('pg_policy', p.oid),
      identity: `policy ${p.table_q}.${p.name}`,
      kind: 'policy',
      name: `${p.table_q}.${p.name}`,
      schema: p.schema,
      section: 'post-data',
      statements: [`${statement};`],
      dependsOn: [address('pg_class', p.relid)],
      table: tableOf(p),
      commentTarget: `POLICY ${p.name} ON ${p.table_q}`,
    });
  }

  const statistics = await ctx.rows<{ oid: number; schema: string; qname: string; def: string; relid: number }>(`
    SELECT s.oid, n.nspname AS schema, format('%I.%I', n.nspname, s.stxname) AS qname,
           pg_get_statisticsobjdef(s.oid) AS def, s.stxrelid AS relid
      FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace
     WHERE ${USER_NAMESPACE}
     ORDER BY s.oid`);
  for (const s of statistics) {
    if (excluded(s.relid)) continue;
    ctx.add({
      id: address('pg_statistic_ext', s.oid),
      identity: `statistics ${s.qname}`,
      kind: 'statistics',
      name: s.qname,
      schema: s.schema,
      section: 'post-data',
      statements: [`${s.def};`],
      dependsOn: [address('pg_class', s.relid)],
      commentTarget: `STATISTICS ${s.qname}`,
    });
  }
}
