import type { QualifiedName } from '../../catalog/index.js';
import { address, notExtensionMember, USER_NAMESPACE, type ExtractContext } from './context.js';

interface RelationRow {
  oid: number;
  schema: string;
  name: string;
  namespace_oid: number;
  qname: string;
  relkind: string;
  persistence: string;
  ispartition: boolean;
  replident: string;
  rowsecurity: boolean;
  forcerowsecurity: boolean;
  reloptions: string[] | null;
  /** Options of the table's TOAST table, written as toast.name=value in CREATE TABLE. */
  toast_options: string[] | null;
  /** The composite type of a typed table (CREATE TABLE … OF type). */
  of_type: string | null;
  access_method: string | null;
  partkey: string | null;
  partbound: string | null;
  rowtype: number;
  rowtype_array: number;
  viewdef: string | null;
}

/**
 * Tables (with partitions and inheritance), sequences, views and materialized views; column
 * defaults, sequence ownership, replica identity and row-level security switches.
 */
export async function extractRelations(ctx: ExtractContext): Promise<void> {
  const accessMethod = ctx.major >= 12 ? `CASE WHEN am.amname <> 'heap' THEN format('%I', am.amname) END` : 'NULL::text';
  const amJoin = ctx.major >= 12 ? 'LEFT JOIN pg_am am ON am.oid = c.relam' : '';
  const relations = await ctx.rows<RelationRow>(`
    SELECT c.oid, n.nspname AS schema, c.relname AS name, n.oid AS namespace_oid,
           format('%I.%I', n.nspname, c.relname) AS qname, c.relkind::text AS relkind,
           c.relpersistence::text AS persistence, c.relispartition AS ispartition,
           c.relreplident::text AS replident, c.relrowsecurity AS rowsecurity, c.relforcerowsecurity AS forcerowsecurity,
           c.reloptions, ${accessMethod} AS access_method,
           (SELECT array_agg('toast.' || o) FROM pg_class tc, unnest(tc.reloptions) o WHERE tc.oid = c.reltoastrelid) AS toast_options,
           CASE WHEN c.reloftype <> 0 THEN c.reloftype::regtype::text END AS of_type,
           CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partkey,
           CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS partbound,
           c.reltype AS rowtype, coalesce(t.typarray, 0) AS rowtype_array,
           CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END AS viewdef
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_type t ON t.oid = c.reltype
      ${amJoin}
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
       AND ${USER_NAMESPACE} AND ${notExtensionMember('pg_class', 'c.oid')}
     ORDER BY c.oid`);

  const owners = await sequenceOwners(ctx);
  const sequences = await readSequences(ctx);
  const inScope = (r: RelationRow) => {
    if (r.relkind === 'S') {
      // A sequence goes wherever the table that owns it goes.
      const owner = owners.get(r.oid);
      if (owner) return ctx.scope.includes(owner.table);
    }
    return ctx.scope.includes(r);
  };
  const included = relations.filter((r) => {
    const keep = inScope(r);
    if (!keep) ctx.excluded.add(address('pg_class', r.oid));
    return keep;
  });

  // Views too: a view column can carry a default (ALTER VIEW … SET DEFAULT).
  const columns = await readColumns(
    ctx,
    included.filter((r) => r.relkind !== 'S').map((r) => r.oid),
  );
  const checks = await readChecks(ctx);
  const parents = await readParents(ctx);
  const returnRules = new Map(
    (await ctx.rows<{ oid: number; ev_class: number }>(`SELECT oid, ev_class FROM pg_rewrite WHERE rulename = '_RETURN'`)).map((r) => [
      r.ev_class,
      r.oid,
    ]),
  );

  for (const r of included) {
    const id = address('pg_class', r.oid);
    const schemaDep = address('pg_namespace', r.namespace_oid);
    const table: QualifiedName = { schema: r.schema, name: r.name };
    const rowtypeAliases = [address('pg_type', r.rowtype), ...(r.rowtype_array ? [address('pg_type', r.rowtype_array)] : [])];
    switch (r.relkind) {
      case 'S': {
        const identityOwner = owners.get(r.oid);
        if (identityOwner?.identity) {
          // Created by its identity column: whatever needs the sequence needs the table.
          ctx.aliases.set(id, address('pg_class', identityOwner.tableOid));
          continue;
        }
        const ddl = sequenceDdl(sequences.get(r.oid), r.qname, r.persistence === 'u');
        ctx.add({
          id,
          identity: `sequence ${r.qname}`,
          kind: 'sequence',
          name: r.qname,
          schema: r.schema,
          section: 'pre-data',
          statements: [ddl],
          dependsOn: [schemaDep],
          commentTarget: `SEQUENCE ${r.qname}`,
        });
        const owner = owners.get(r.oid);
        if (owner) {
          ctx.add({
            id: `${id}/owned-by`,
            identity: `sequence owner ${r.qname}`,
            kind: 'sequence owner',
            name: `${r.qname} owned by ${owner.column}`,
            schema: r.schema,
            section: 'pre-data',
            statements: [`ALTER SEQUENCE ${r.qname} OWNED BY ${owner.column};`],
            dependsOn: [id, address('pg_class', owner.tableOid)],
          });
        }
        break;
      }
      case 'v':
      case 'm': {
        const statement = viewDdl(r);
        const rule = returnRules.get(r.oid);
        ctx.add({
          id,
          identity: `${r.relkind === 'm' ? 'materialized view' : 'view'} ${r.qname}`,
          kind: r.relkind === 'm' ? 'materialized view' : 'view',
          name: r.qname,
          schema: r.schema,
          section: 'pre-data',
          statements: [statement],
          dependsOn: [schemaDep],
          aliases: [...rowtypeAliases, ...(rule ? [address('pg_rewrite', rule)] : [])],
          commentTarget: `${r.relkind === 'm' ? 'MATERIALIZED VIEW' : 'VIEW'} ${r.qname}`,
        });
        break;
      }
      case 'f':
        ctx.unsupportedObject(
          'foreign table',
          r.qname,
          'foreign tables (and their servers and user mappings) are not copied yet; create them on the target',
        );
        ctx.excluded.add(id);
        continue;
      default: {
        const own = columns.get(r.oid) ?? [];
        const parentList = parents.get(r.oid) ?? [];
        const tableChecks = (checks.get(r.oid) ?? []).filter((c) => c.validated && (r.ispartition || c.local));
        ctx.add({
          id,
          identity: `table ${r.qname}`,
          kind: 'table',
          name: r.qname,
          schema: r.schema,
          section: 'pre-data',
          statements: [
            tableDdl(
              r,
              own,
              tableChecks.map((c) => c.sql),
              r.ispartition ? [] : parentList.map((p) => p.qname),
            ),
            ...columnSettings(r, own),
            ...(r.of_type ? [`ALTER TABLE ONLY ${r.qname} OF ${r.of_type};`] : []),
          ],
          dependsOn: [schemaDep, ...parentList.map((p) => address('pg_class', p.oid))],
          aliases: [
            ...rowtypeAliases,
            ...tableChecks.map((c) => address('pg_constraint', c.oid)),
            ...own.filter((c) => c.generated).map((c) => address('pg_attrdef', c.defaultOid ?? 0)),
          ],
          table,
          commentTarget: `TABLE ${r.qname}`,
          columns: own.map((c) => ({ name: c.name, type: c.type })),
        });
        if (r.ispartition && parentList[0] && r.partbound) {
          const parent = parentList[0];
          ctx.add({
            id: `${id}/attach`,
            identity: `partition ${r.qname}`,
            kind: 'partition attach',
            name: `${r.qname} partition of ${parent.qname}`,
            schema: r.schema,
            section: 'pre-data',
            statements: [`ALTER TABLE ONLY ${parent.qname} ATTACH PARTITION ${r.qname} ${r.partbound};`],
            dependsOn: [id, address('pg_class', parent.oid)],
            table,
          });
        }
        for (const c of (checks.get(r.oid) ?? []).filter((c) => !c.validated && c.local)) {
          ctx.add({
            id: address('pg_constraint', c.oid),
            identity: `constraint ${r.qname}.${c.name}`,
            kind: 'constraint',
            name: `${r.qname}.${c.name}`,
            schema: r.schema,
            section: 'post-data',
            // Not ONLY: a CHECK must reach inheritance children and partitions too.
            statements: [`ALTER TABLE ${r.qname} ADD CONSTRAINT ${c.sql};`],
            dependsOn: [id],
            table,
            commentTarget: `CONSTRAINT ${c.name} ON ${r.qname}`,
          });
        }
        addTableSwitches(ctx, r, id, table);
      }
    }
    // Column defaults: separate statements, so a default that calls a function which reads
    // the table (or a sequence owned by it) never makes a cycle.
    for (const c of columns.get(r.oid) ?? []) {
      if (c.defaultExpr === null || c.generated || c.defaultOid === null) continue;
      ctx.add({
        id: address('pg_attrdef', c.defaultOid),
        identity: `default ${r.qname}.${c.name}`,
        kind: 'default',
        name: `${r.qname}.${c.name}`,
        schema: r.schema,
        section: 'pre-data',
        statements: [`ALTER TABLE ONLY ${r.qname} ALTER COLUMN ${c.name} SET DEFAULT ${c.defaultExpr};`],
        dependsOn: [id],
        table,
      });
    }
  }
}

function addTableSwitches(ctx: ExtractContext, r: RelationRow, id: string, table: QualifiedName): void {
  const identity = r.replident === 'f' ? 'FULL' : r.replident === 'n' ? 'NOTHING' : r.replident === 'i' ? 'index' : undefined;
  if (identity === 'FULL' || identity === 'NOTHING') {
    ctx.add({
      id: `${id}/replica-identity`,
      identity: `replica identity ${r.qname}`,
      kind: 'replica identity',
      name: r.qname,
      schema: r.schema,
      section: 'pre-data',
      statements: [`ALTER TABLE ONLY ${r.qname} REPLICA IDENTITY ${identity};`],
      dependsOn: [id],
      table,
    });
  }
  if (r.rowsecurity || r.forcerowsecurity) {
    const statements: string[] = [];
    if (r.rowsecurity) statements.push(`ALTER TABLE ${r.qname} ENABLE ROW LEVEL SECURITY;`);
    if (r.forcerowsecurity) statements.push(`ALTER TABLE ${r.qname} FORCE ROW LEVEL SECURITY;`);
    ctx.add({
      id: `${id}/row-security`,
      identity: `row security ${r.qname}`,
      kind: 'row security',
      name: r.qname,
      schema: r.schema,
      section: 'post-data',
      statements,
      dependsOn: [id],
      table,
    });
  }
}

interface ColumnRow {
  name: string;
  type: string;
  notnull: boolean;
  identity: string;
  generated: string;
  collation: string | null;
  local: boolean;
  defaultExpr: string | null;
  defaultOid: number | null;
  identityOptions: string | null;
  /** SET STATISTICS, SET STORAGE, SET (options), SET COMPRESSION clauses that differ from the defaults. */
  settings: string[] | null;
}

async function readColumns(ctx: ExtractContext, oids: number[]): Promise<Map<number, ColumnRow[]>> {
  const generated = ctx.major >= 12 ? 'a.attgenerated::text' : "''";
  const compression =
    ctx.major >= 14
      ? "CASE WHEN a.attcompression <> '' THEN 'SET COMPRESSION ' || CASE a.attcompression WHEN 'p' THEN 'pglz' ELSE 'lz4' END END"
      : 'NULL::text';
  const rows = await ctx.rows<ColumnRow & { relid: number }>(
    `SELECT a.attrelid AS relid, format('%I', a.attname) AS name, format_type(a.atttypid, a.atttypmod) AS type,
            a.attnotnull AS notnull, a.attidentity::text AS identity, ${generated} AS generated,
            CASE WHEN a.attcollation <> t.typcollation THEN format('%I.%I', cn.nspname, co.collname) END AS collation,
            a.attislocal AS local,
            pg_get_expr(d.adbin, d.adrelid) AS "defaultExpr", d.oid AS "defaultOid",
            (SELECT format('SEQUENCE NAME %I.%I START WITH %s INCREMENT BY %s MINVALUE %s MAXVALUE %s CACHE %s%s',
                           sn.nspname, sc.relname, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache,
                           CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END)
               FROM pg_depend dep
               JOIN pg_sequence s ON s.seqrelid = dep.objid
               JOIN pg_class sc ON sc.oid = s.seqrelid
               JOIN pg_namespace sn ON sn.oid = sc.relnamespace
              WHERE dep.classid = 'pg_class'::regclass AND dep.refclassid = 'pg_class'::regclass
                AND dep.refobjid = a.attrelid AND dep.refobjsubid = a.attnum AND dep.deptype = 'i'
              LIMIT 1) AS "identityOptions",
            array_remove(ARRAY[
              CASE WHEN a.attstattarget >= 0 THEN 'SET STATISTICS ' || a.attstattarget END,
              CASE WHEN a.attstorage <> t.typstorage THEN 'SET STORAGE ' || CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END END,
              CASE WHEN a.attoptions IS NOT NULL THEN 'SET (' || array_to_string(a.attoptions, ', ') || ')' END,
              ${compression}
            ], NULL) AS settings
       FROM pg_attribute a
       JOIN pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_collation co ON co.oid = a.attcollation
       LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attrelid, a.attnum`,
    [oids],
  );
  const byTable = new Map<number, ColumnRow[]>();
  for (const row of rows) {
    const list = byTable.get(row.relid) ?? [];
    list.push(row);
    byTable.set(row.relid, list);
  }
  return byTable;
}

interface CheckRow {
  oid: number;
  relid: number;
  name: string;
  sql: string;
  validated: boolean;
  local: boolean;
}

async function readChecks(ctx: ExtractContext): Promise<Map<number, CheckRow[]>> {
  const rows = await ctx.rows<CheckRow>(`
    SELECT c.oid, c.conrelid AS relid, format('%I', c.conname) AS name,
           format('%I', c.conname) || ' ' || pg_get_constraintdef(c.oid) AS sql,
           c.convalidated AS validated, c.conislocal AS local
      FROM pg_constraint c
     WHERE c.contype = 'c' AND c.conrelid <> 0
     ORDER BY c.conrelid, c.conname`);
  const byTable = new Map<number, CheckRow[]>();
  for (const row of rows) byTable.set(row.relid, [...(byTable.get(row.relid) ?? []), row]);
  return byTable;
}

async function readParents(ctx: ExtractContext): Promise<Map<number, Array<{ oid: number; qname: string }>>> {
  const rows = await ctx.rows<{ child: number; oid: number; qname: string }>(`
    SELECT i.inhrelid AS child, p.oid, format('%I.%I', n.nspname, p.relname) AS qname
      FROM pg_inherits i
      JOIN pg_class p ON p.oid = i.inhparent
      JOIN pg_namespace n ON n.oid = p.relnamespace
     WHERE p.relkind IN ('r', 'p')
     ORDER BY i.inhrelid, i.inhseqno`);
  const byChild = new Map<number, Array<{ oid: number; qname: string }>>();
  for (const row of rows) byChild.set(row.child, [...(byChild.get(row.child) ?? []), { oid: row.oid, qname: row.qname }]);
  return byChild;
}

interface SequenceOwner {
  table: QualifiedName;
  tableOid: number;
  column: string;
  identity: boolean;
}

async function sequenceOwners(ctx: ExtractContext): Promise<Map<number, SequenceOwner>> {
  const rows = await ctx.rows<{ seq: number; table_oid: number; schema: string; name: string; column: string; identity: boolean }>(`
    SELECT d.objid AS seq, t.oid AS table_oid, n.nspname AS schema, t.relname AS name,
           format('%I.%I.%I', n.nspname, t.relname, a.attname) AS column, d.deptype = 'i' AS identity
      FROM pg_depend d
      JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
      JOIN pg_class t ON t.oid = d.refobjid
      JOIN pg_namespace n ON n.oid = t.relnamespace
      JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
     WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
       AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')`);
  return new Map(
    rows.map((r) => [r.seq, { table: { schema: r.schema, name: r.name }, tableOid: r.table_oid, column: r.column, identity: r.identity }]),
  );
}

interface SequenceRow {
  oid: number;
  type: string;
  start: string;
  increment: string;
  min: string;
  max: string;
  cache: string;
  cycle: boolean;
}

async function readSequences(ctx: ExtractContext): Promise<Map<number, SequenceRow>> {
  const rows = await ctx.rows<SequenceRow>(
    `SELECT seqrelid AS oid, format_type(seqtypid, NULL) AS type, seqstart::text AS start, seqincrement::text AS increment,
            seqmin::text AS min, seqmax::text AS max, seqcache::text AS cache, seqcycle AS cycle
       FROM pg_sequence`,
  );
  return new Map(rows.map((r) => [r.oid, r]));
}

function sequenceDdl(s: SequenceRow | undefined, qname: string, unlogged: boolean): string {
  if (!s) throw new Error(`sequence ${qname} has no pg_sequence row`);
  return (
    `CREATE ${unlogged ? 'UNLOGGED ' : ''}SEQUENCE ${qname}\n    AS ${s.type}\n    START WITH ${s.start}\n    INCREMENT BY ${s.increment}\n` +
    `    MINVALUE ${s.min}\n    MAXVALUE ${s.max}\n    CACHE ${s.cache}${s.cycle ? '\n    CYCLE' : ''};`
  );
}

/** Per-column settings CREATE TABLE cannot say, as ALTER TABLE statements. */
function columnSettings(r: RelationRow, columns: ColumnRow[]): string[] {
  return columns.flatMap((c) => (c.settings ?? []).map((setting) => `ALTER TABLE ONLY ${r.qname} ALTER COLUMN ${c.name} ${setting};`));
}

function tableDdl(r: RelationRow, columns: ColumnRow[], checks: string[], inherits: string[]): string {
  // Inherited columns come from INHERITS; partitions list every column (they are attached later).
  const own = columns.filter((c) => r.ispartition || c.local || inherits.length === 0);
  const lines = own.map((c) => {
    let line = `${c.name} ${c.type}`;
    if (c.collation) line += ` COLLATE ${c.collation}`;
    if (c.generated === 's') line += ` GENERATED ALWAYS AS (${c.defaultExpr}) STORED`;
    if (c.generated === 'v') line += ` GENERATED ALWAYS AS (${c.defaultExpr}) VIRTUAL`;
    if (c.identity === 'a' || c.identity === 'd') {
      line += ` GENERATED ${c.identity === 'a' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY${c.identityOptions ? ` (${c.identityOptions})` : ''}`;
    }
    if (c.notnull && c.identity === '') line += ' NOT NULL';
    return line;
  });
  lines.push(...checks.map((c) => `CONSTRAINT ${c}`));
  let ddl = `CREATE ${r.persistence === 'u' ? 'UNLOGGED ' : ''}TABLE ${r.qname} (${lines.map((l) => `\n    ${l}`).join(',')}\n)`;
  if (inherits.length > 0) ddl += `\nINHERITS (${inherits.join(', ')})`;
  if (r.partkey) ddl += `\nPARTITION BY ${r.partkey}`;
  if (r.access_method) ddl += `\nUSING ${r.access_method}`;
  const options = [...(r.reloptions ?? []), ...(r.toast_options ?? [])];
  if (options.length > 0) ddl += `\nWITH (${options.join(', ')})`;
  return `${ddl};`;
}

function viewDdl(r: RelationRow): string {
  const body = (r.viewdef ?? '').trim().replace(/;$/, '');
  const options = (r.reloptions ?? []).filter((o) => !o.startsWith('check_option='));
  const checkOption = (r.reloptions ?? []).find((o) => o.startsWith('check_option='))?.split('=')[1];
  const withClause = options.length > 0 ? ` WITH (${options.join(', ')})` : '';
  if (r.relkind === 'm') return `CREATE MATERIALIZED VIEW ${r.qname}${withClause} AS\n${body}\nWITH NO DATA;`;
  return `CREATE VIEW ${r.qname}${withClause} AS\n${body}${checkOption ? `\nWITH ${checkOption.toUpperCase()} CHECK OPTION` : ''};`;
}
