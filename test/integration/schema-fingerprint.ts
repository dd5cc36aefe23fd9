/**
 * Oracle 2 of the schema copy (issue 3): the set of user objects in a database, each with the
 * definition the server itself deparses from its catalogs. Two databases hold the same schema
 * when their fingerprints are equal as sets.
 *
 * Written independently of src/schema on purpose: it shares no query and no code with the
 * extractor it checks, so a mistake there cannot hide behind the same mistake here.
 */
import type pg from 'pg';

/** Object key ("relation zoo.animal", "column zoo.animal.name") → its definition as JSON. */
export type Entries = Map<string, string>;

export interface Fingerprint {
  readonly major: number;
  readonly entries: Entries;
}

/** Schemas no user object lives in, plus pgferry's own state schema on the target. */
const SYSTEM_SCHEMA = (column: string) => `(${column} IN ('pg_catalog', 'information_schema', 'pgferry', 'pgferry_capture')
  OR ${column} LIKE 'pg\\_toast%' OR ${column} LIKE 'pg\\_temp\\_%')`;
const USER_SCHEMA = (column: string) => `NOT ${SYSTEM_SCHEMA(column)}`;
/** Objects CREATE EXTENSION makes are the extension's business, not the schema copy's. */
const NOT_EXTENSION_MEMBER = (catalog: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '${catalog}'::regclass AND e.objid = ${oid} AND e.deptype = 'e')`;
/** Quoted, qualified relation name from a pg_class alias and its pg_namespace alias. */
const QNAME = (rel: string, ns: string, column = 'relname') => `format('%I.%I', ${ns}.nspname, ${rel}.${column})`;

interface Row {
  key: string;
  [field: string]: unknown;
}

/**
 * Reads the fingerprint of the database `client` is connected to. The search_path is emptied
 * first so every deparsed name is schema-qualified on both sides alike.
 */
export async function readFingerprint(client: pg.Client): Promise<Fingerprint> {
  const major = Math.floor(
    Number((await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]!.v) / 10000,
  );
  const entries: Entries = new Map();
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    await client.query(`SELECT pg_catalog.set_config('search_path', '', true)`);
    for (const [kind, sql] of queries(major)) {
      const { rows } = await client.query<Row>(sql);
      for (const { key, ...fields } of rows) {
        const entryKey = `${kind} ${key}`;
        if (entries.has(entryKey)) throw new Error(`fingerprint: two objects are called ${entryKey}`);
        entries.set(entryKey, stableJson(fields));
      }
    }
  } finally {
    await client.query('COMMIT');
  }
  return { major, entries };
}

function queries(major: number): Array<[string, string]> {
  const collLocale = major >= 17 ? 'co.colllocale' : major >= 15 ? 'co.colliculocale' : 'NULL::text';
  // Catalog columns sources from 10 lack, read as what their absence means.
  const deterministic = major >= 12 ? 'co.collisdeterministic' : 'true';
  const generated = major >= 12 ? 'a.attgenerated' : '\'\'::"char"';
  const conParent = (alias: string) => (major >= 11 ? `${alias}.conparentid` : '0::oid');
  const tgParent = major >= 13 ? 't.tgparentid' : '0::oid';
  const prokind = major >= 11 ? 'p.prokind' : "CASE WHEN p.proisagg THEN 'a' WHEN p.proiswindow THEN 'w' ELSE 'f' END";
  const finalModify = (column: string) => (major >= 11 ? `a.${column}` : 'NULL::"char"');
  const multirange =
    major >= 14
      ? `(SELECT format('%I.%I', mn.nspname, mt.typname) FROM pg_type mt JOIN pg_namespace mn ON mn.oid = mt.typnamespace WHERE mt.oid = r.rngmultitypid)`
      : 'NULL::text';
  return [
    [
      'schema',
      `SELECT format('%I', n.nspname) AS key FROM pg_namespace n
        WHERE ${USER_SCHEMA('n.nspname')} AND ${NOT_EXTENSION_MEMBER('pg_namespace', 'n.oid')}`,
    ],
    [
      'extension',
      `SELECT format('%I', x.extname) AS key, x.extversion AS version, format('%I', n.nspname) AS schema
         FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace`,
    ],
    [
      'collation',
      `SELECT ${QNAME('co', 'n', 'collname')} AS key, co.collprovider AS provider, co.collcollate AS collate,
              co.collctype AS ctype, ${collLocale} AS locale, ${deterministic} AS deterministic
         FROM pg_collation co JOIN pg_namespace n ON n.oid = co.collnamespace
        WHERE ${USER_SCHEMA('n.nspname')} AND ${NOT_EXTENSION_MEMBER('pg_collation', 'co.oid')}`,
    ],
    [
      'type',
      // Array types come with their element, row types with their relation, and multiranges
      // with their range (compared as part of the range below).
      `SELECT ${QNAME('t', 'n', 'typname')} AS key, t.typtype AS typtype,
              CASE WHEN t.typtype = 'e' THEN (SELECT array_agg(enumlabel ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid) END AS labels,
              CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS base,
              CASE WHEN t.typtype = 'd' THEN pg_get_expr(t.typdefaultbin, 0) END AS "default",
              CASE WHEN t.typtype = 'd' THEN t.typnotnull END AS notnull,
              CASE WHEN t.typcollation <> 0 THEN (SELECT format('%I.%I', cn.nspname, co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = t.typcollation) END AS collation,
              -- Named NOT NULL constraints of domains exist from 17 on; typnotnull says the same on every version.
              (SELECT array_agg(format('%I %s', c.conname, pg_get_constraintdef(c.oid)) ORDER BY c.conname)
                 FROM pg_constraint c WHERE c.contypid = t.oid AND c.contype <> 'n') AS constraints,
              (SELECT array_agg(format('%I %s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                                       CASE WHEN a.attcollation <> 0 THEN (SELECT format(' COLLATE %I.%I', cn.nspname, co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) ELSE '' END)
                                ORDER BY a.attnum)
                 FROM pg_attribute a WHERE t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) AS attributes,
              format_type(r.rngsubtype, NULL) AS subtype,
              (SELECT format('%I.%I', ocn.nspname, oc.opcname) FROM pg_opclass oc JOIN pg_namespace ocn ON ocn.oid = oc.opcnamespace WHERE oc.oid = r.rngsubopc) AS subtype_opclass,
              (SELECT format('%I.%I', cn.nspname, co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = r.rngcollation) AS range_collation,
              NULLIF(r.rngcanonical, 0)::regprocedure::text AS canonical,
              NULLIF(r.rngsubdiff, 0)::regprocedure::text AS subtype_diff,
              ${multirange} AS multirange
         FROM pg_type t
         JOIN pg_namespace n ON n.oid = t.typnamespace
         LEFT JOIN pg_range r ON r.rngtypid = t.oid
        WHERE ${USER_SCHEMA('n.nspname')} AND ${NOT_EXTENSION_MEMBER('pg_type', 't.oid')}
          AND NOT EXISTS (SELECT 1 FROM pg_type el WHERE el.typarray = t.oid)
          AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
          AND t.typtype <> 'm'`,
    ],
    [
      'sequence',
      `SELECT ${QNAME('c', 'n')} AS key, format_type(s.seqtypid, NULL) AS type, s.seqstart::text AS start,
              s.seqincrement::text AS increment, s.seqmin::text AS min, s.seqmax::text AS max, s.seqcache::text AS cache,
              s.seqcycle AS cycle, c.relpersistence AS persistence,
              (SELECT format('%I.%I.%I %s', tn.nspname, t.relname, a.attname, CASE d.deptype WHEN 'i' THEN 'identity' ELSE 'owned by' END)
                 FROM pg_depend d
                 JOIN pg_class t ON t.oid = d.refobjid
                 JOIN pg_namespace tn ON tn.oid = t.relnamespace
                 JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
                  AND d.deptype IN ('a', 'i')) AS owner
         FROM pg_sequence s
         JOIN pg_class c ON c.oid = s.seqrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE ${USER_SCHEMA('n.nspname')} AND ${NOT_EXTENSION_MEMBER('pg_class', 'c.oid')}`,
    ],
    [
      'relation',
      // relispopulated is left out: materialized views are created empty and refreshed after
      // the data copy, which --schema-only does not run.
      `SELECT ${QNAME('c', 'n')} AS key, c.relkind AS relkind, c.relpersistence AS persistence,
              c.relreplident AS replica_identity, c.relrowsecurity AS row_security, c.relforcerowsecurity AS force_row_security,
              (SELECT array_agg(o ORDER BY o) FROM unnest(c.reloptions) o) AS options,
              (SELECT array_agg(o ORDER BY o) FROM unnest(tc.reloptions) o) AS toast_options,
              CASE WHEN c.relkind IN ('r', 'm') THEN coalesce(am.amname, 'heap') ELSE am.amname END AS access_method,
              CASE WHEN c.reloftype <> 0 THEN format_type(c.reloftype, NULL) END AS of_type,
              CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_key,
              c.relispartition AS is_partition,
              CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS partition_bound,
              (SELECT array_agg(format('%I.%I', pn.nspname, p.relname) ORDER BY i.inhseqno)
                 FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
                WHERE i.inhrelid = c.oid) AS parents,
              CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END AS definition
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_class tc ON tc.oid = c.reltoastrelid
         LEFT JOIN pg_am am ON am.oid = c.relam
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND ${USER_SCHEMA('n.nspname')} AND ${NOT_EXTENSION_MEMBER('pg_class', 'c.oid')}`,
    ],
    [
      'column',
      // attislocal is compared for inheritance only: a partition built apart and attached (as
      // pg_dump does too) keeps its columns local, one made with PARTITION OF does not, and
      // nothing a user can see depends on it.
      `SELECT format('%I.%I.%I', n.nspname, c.relname, a.attname) AS key,
              row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum) AS position,
              format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull,
              pg_get_expr(d.adbin, d.adrelid) AS "default", a.attidentity AS identity, ${generated} AS generated,
              (SELECT format('%I.%I', cn.nspname, co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) AS collation,
              CASE WHEN NOT c.relispartition THEN a.attislocal END AS local, a.attinhcount AS inherited_from
         FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND a.attnum > 0 AND NOT a.attisdropped
          AND ${USER_SCHEMA('n.nspname')} AND ${NOT_EXTENSION_MEMBER('pg_class', 'c.oid')}`,
    ],
    [
      'constraint',
      // NOT NULL constraints have rows of their own from 18 on (contype 'n'); attnotnull says
      // the same on every version. conislocal of a partition's constraint: as for columns.
      // A foreign key to a partitioned table gets one more row on the referencing table per
      // referenced partition, named by the server (fkey1 up to 17, fkey_1 from 18 on), never
      // by the user or pgferry: those are named by their root constraint and what they reference.
      `WITH RECURSIVE named AS (
         SELECT con.oid, format('%I', con.conname) AS name
           FROM pg_constraint con
          WHERE con.conrelid <> 0
            AND NOT EXISTS (SELECT 1 FROM pg_constraint up WHERE up.oid = ${conParent('con')} AND up.conrelid = con.conrelid)
         UNION ALL
         SELECT con.oid, format('%s → %s', named.name, con.confrelid::regclass::text)
           FROM pg_constraint con
           JOIN pg_constraint up ON up.oid = ${conParent('con')} AND up.conrelid = con.conrelid
           JOIN named ON named.oid = up.oid
       )
       SELECT format('%s on %I.%I', named.name, n.nspname, c.relname) AS key, con.contype AS type,
              pg_get_constraintdef(con.oid) AS definition,
              CASE WHEN NOT c.relispartition THEN con.conislocal END AS local, con.coninhcount AS inherited_from,
              (SELECT format('%s on %I.%I', pnamed.name, pn.nspname, pr.relname)
                 FROM pg_constraint pc JOIN named pnamed ON pnamed.oid = pc.oid
                 JOIN pg_class pr ON pr.oid = pc.conrelid JOIN pg_namespace pn ON pn.oid = pr.relnamespace
                WHERE pc.oid = ${conParent('con')}) AS parent,
              (SELECT format('%I.%I', inn.nspname, ic.relname) FROM pg_class ic JOIN pg_namespace inn ON inn.oid = ic.relnamespace WHERE ic.oid = con.conindid) AS "index"
         FROM pg_constraint con
         JOIN named ON named.oid = con.oid
         JOIN pg_class c ON c.oid = con.conrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE con.contype <> 'n' AND ${USER_SCHEMA('n.nspname')} AND ${NOT_EXTENSION_MEMBER('pg_class', 'c.oid')}`,
    ],
    [
      'index',
      `SELECT ${QNAME('ic', 'n')} AS key, pg_get_indexdef(i.indexrelid) AS definition,
              i.indisvalid AS valid, i.indisready AS ready, i.indisclustered AS clustered, i.indisreplident AS replica_identity,
              (SELECT format('%I.%I', pn.nspname, p.relname) FROM pg_inherits h JOIN pg_class p ON p.oid = h.inhparent
                 JOIN pg_namespace pn ON pn.oid = p.relnamespace WHERE h.inhrelid = i.indexrelid) AS attached_to
         FROM pg_index i
         JOIN pg_class ic ON ic.oid = i.indexrelid
         JOIN pg_namespace n ON n.oid = ic.relnamespace
        WHERE ${USER_SCHEMA('n.nspname')} AND ${NOT_EXTENSION_MEMBER('pg_class', 'i.indrelid')}`,
    ],
    [
      'function',
      `SELECT format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS key, ${prokind} AS kind,
              CASE WHEN ${prokind} <> 'a' THEN pg_get_functiondef(p.oid) END AS definition,
              CASE WHEN ${prokind} = 'a' THEN pg_get_function_arguments(p.oid) END AS arguments,
              CASE WHEN ${prokind} = 'a' THEN pg_get_function_result(p.oid) END AS result,
              CASE WHEN ${prokind} = 'a' THEN p.proparallel END AS parallel,
              a.aggkind AS aggregate_kind, a.aggnumdirectargs AS direct_args,
              NULLIF(a.aggtransfn, 0)::regprocedure::text AS sfunc, format_type(NULLIF(a.aggtranstype, 0), NULL) AS stype,
              NULLIF(a.aggtransspace, 0) AS sspace, a.agginitval AS initcond,
              NULLIF(a.aggfinalfn, 0)::regprocedure::text AS finalfunc, a.aggfinalextra AS finalfunc_extra, ${finalModify('aggfinalmodify')} AS finalfunc_modify,
              NULLIF(a.aggcombinefn, 0)::regprocedure::text AS combinefunc,
              NULLIF(a.aggserialfn, 0)::regprocedure::text AS serialfunc, NULLIF(a.aggdeserialfn, 0)::regprocedure::text AS deserialfunc,
              NULLIF(a.aggmtransfn, 0)::regprocedure::text AS msfunc, NULLIF(a.aggminvtransfn, 0)::regprocedure::text AS minvfunc,
              format_type(NULLIF(a.aggmtranstype, 0), NULL) AS mstype, NULLIF(a.aggmtransspace, 0) AS msspace, a.aggminitval AS minitcond,
              NULLIF(a.aggmfinalfn, 0)::regprocedure::text AS mfinalfunc, a.aggmfinalextra AS mfinalfunc_extra, ${finalModify('aggmfinalmodify')} AS mfinalfunc_modify,
              NULLIF(a.aggsortop, 0)::regoperator::text AS sortop,
              -- The constructors CREATE TYPE … AS RANGE makes for the range (and, from 14 on,
              -- for its multirange) are part of the type: dropped with it, never made apart.
              (SELECT format('%s %s', CASE t.typtype WHEN 'm' THEN 'multirange' WHEN 'r' THEN 'range' ELSE 'type' END, format_type(t.oid, NULL))
                 FROM pg_depend i JOIN pg_type t ON t.oid = i.refobjid
                WHERE i.classid = 'pg_proc'::regclass AND i.objid = p.oid AND i.refclassid = 'pg_type'::regclass AND i.deptype = 'i') AS part_of
         FROM pg_proc p
         JOIN pg_namespace n ON n.oid = p.pronamespace
         LEFT JOIN pg_aggregate a ON a.aggfnoid = p.oid
        WHERE ${USER_SCHEMA('n.nspname')} AND ${NOT_EXTENSION_MEMBER('pg_proc', 'p.oid')}`,
    ],
    [
      'trigger',
      // Triggers cloned onto partitions (tgparentid <> 0) are internal on 13 and visible from
      // 15 on; the parent's trigger, compared here, is what makes them.
      `SELECT format('%I on %I.%I', t.tgname, n.nspname, c.relname) AS key, pg_get_triggerdef(t.oid) AS definition, t.tgenabled AS enabled
         FROM pg_trigger t
         JOIN pg_class c ON c.oid = t.tgrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal AND ${tgParent} = 0 AND ${USER_SCHEMA('n.nspname')}
          -- pgferry's own TRUNCATE capture on a PostgreSQL 10 source is not the user's schema.
          AND t.tgfoid NOT IN (SELECT f.oid FROM pg_proc f JOIN pg_namespace fn ON fn.oid = f.pronamespace WHERE fn.nspname = 'pgferry_capture')`,
    ],
    [
      'rule',
      `SELECT format('%I on %I.%I', r.rulename, n.nspname, c.relname) AS key, pg_get_ruledef(r.oid) AS definition, r.ev_enabled AS enabled
         FROM pg_rewrite r
         JOIN pg_class c ON c.oid = r.ev_class
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE r.rulename <> '_RETURN' AND ${USER_SCHEMA('n.nspname')}`,
    ],
    [
      'policy',
      `SELECT format('%I on %I.%I', p.polname, n.nspname, c.relname) AS key, p.polpermissive AS permissive, p.polcmd AS command,
              (SELECT array_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r)::text END ORDER BY 1) FROM unnest(p.polroles) r) AS roles,
              pg_get_expr(p.polqual, p.polrelid) AS "using", pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
         FROM pg_policy p
         JOIN pg_class c ON c.oid = p.polrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE ${USER_SCHEMA('n.nspname')}`,
    ],
    [
      'statistics',
      // The default statistics target is -1 up to 16 and NULL from 17 on.
      `SELECT ${QNAME('s', 'n', 'stxname')} AS key, pg_get_statisticsobjdef(s.oid) AS definition,
              ${major >= 13 ? 'NULLIF(s.stxstattarget::int, -1)' : 'NULL::int'} AS target
         FROM pg_statistic_ext s
         JOIN pg_namespace n ON n.oid = s.stxnamespace
        WHERE ${USER_SCHEMA('n.nspname')}`,
    ],
    [
      'comment',
      // Comments on user objects only: built-in objects' comments change between versions, and
      // extension members' come with the extension.
      `SELECT format('on %s %s', o.type, o.identity) AS key, d.description AS text
         FROM pg_description d, LATERAL pg_identify_object(d.classoid, d.objoid, d.objsubid) o
        WHERE (d.objoid >= 16384 OR d.classoid = 'pg_namespace'::regclass)
          AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = d.classoid AND e.objid = d.objoid AND e.deptype = 'e')
          AND (o.schema IS NULL OR ${USER_SCHEMA('o.schema')})
          AND NOT (o.type = 'schema' AND ${SYSTEM_SCHEMA('o.identity')})`,
    ],
  ];
}

/** JSON with keys in a fixed order and nulls left out, so equal definitions print equally. */
function stableJson(fields: Record<string, unknown>): string {
  const kept = Object.keys(fields)
    .sort()
    .filter((k) => fields[k] !== null && fields[k] !== undefined)
    .map((k) => [k, fields[k]] as const);
  return JSON.stringify(Object.fromEntries(kept));
}

/**
 * Only what legitimately depends on the server version is normalised, each for a stated
 * reason, and only when the two servers straddle the version that changed it.
 */
function comparable(entries: Entries, majors: readonly [number, number]): Entries {
  const oldest = Math.min(...majors);
  const newest = Math.max(...majors);
  const straddles = (version: number) => oldest < version && newest >= version;
  const result: Entries = new Map();
  for (const [entryKey, json] of entries) {
    let key = entryKey;
    const fields = JSON.parse(json) as Record<string, unknown>;
    if (key.startsWith('type ') && oldest < 14) {
      // A 14+ server gives every range a multirange; a 13 source has none to compare with.
      delete fields.multirange;
    }
    if (key.startsWith('function ') && oldest < 14 && String(fields.part_of).startsWith('multirange ')) {
      // A 14+ server gives every range a multirange with its constructors; 13 has none.
      continue;
    }
    if (key.startsWith('function ') && fields.kind === 'p' && straddles(14)) {
      // From 14 on, a procedure's arguments are printed with their IN mode (OUT ones became
      // part of its identity); up to 13 the IN is left out. Same procedure either way.
      key = withoutInModes(key);
      fields.definition = withoutInModes(String(fields.definition));
    }
    if (key.startsWith('relation ') && typeof fields.definition === 'string' && straddles(16)) {
      // From 16 on, a view over a single relation prints its columns unqualified ("id"), up to
      // 15 qualified by the relation ("animal.id"). Same query either way.
      fields.definition = unqualifiedSingleRelation(fields.definition);
    }
    result.set(key, stableJson(fields));
  }
  return result;
}

/** "p(IN a integer, INOUT b text)" → "p(a integer, INOUT b text)", in the first line only. */
function withoutInModes(text: string): string {
  const [first = '', ...rest] = text.split('\n');
  return [first.replace(/(\(|, )IN (?=\S)/g, '$1'), ...rest].join('\n');
}

/**
 * For a view whose only FROM item is one relation (no join, no subquery), drops that
 * relation's name (or alias) where it qualifies a column.
 */
function unqualifiedSingleRelation(definition: string): string {
  if (/\bJOIN\b/.test(definition) || (definition.match(/\bFROM\b/g) ?? []).length !== 1) return definition;
  const from = /\bFROM (?:(?:"[^"]+"|\w+)\.)?("[^"]+"|\w+)(?: (\w+))?\s*(?:;|$|\n)/.exec(definition);
  if (!from) return definition;
  const qualifier = from[2] ?? from[1]!;
  const escaped = qualifier.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return definition.replace(new RegExp(`(?<![\\w."])${escaped}\\.(?=[\\w"])`, 'g'), '');
}

/** A readable diff of two fingerprints: empty when the schemas are the same. */
export function diffFingerprints(source: Fingerprint, target: Fingerprint): string[] {
  const majors = [source.major, target.major] as const;
  const a = comparable(source.entries, majors);
  const b = comparable(target.entries, majors);
  const lines: string[] = [];
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  for (const key of keys) {
    const left = a.get(key);
    const right = b.get(key);
    if (left === right) continue;
    if (right === undefined) lines.push(`- missing on the target: ${key}\n      ${left}`);
    else if (left === undefined) lines.push(`+ only on the target:    ${key}\n      ${right}`);
    else lines.push(`~ differs: ${key}\n      source: ${left}\n      target: ${right}`);
  }
  return lines;
}

/** The keys of a fingerprint whose kind and name match, for checks on part of a schema. */
export function keysOf(fingerprint: Fingerprint, kind: string): string[] {
  return [...fingerprint.entries.keys()]
    .filter((k) => k.startsWith(`${kind} `))
    .map((k) => k.slice(kind.length + 1))
    .sort();
}
