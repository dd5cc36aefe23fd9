import { serverMajor, type Scope } from '../catalog/index.js';
import { withConnection, type ConnectionSpec } from '../config/index.js';
import { PgferryError, messageOf, type Side } from '../errors.js';
import { extractSchema, type SchemaObject } from '../schema/index.js';
import type { DifferenceKind, SchemaDifference } from './types.js';

/**
 * The schema of both sides as the schema step reads it (src/schema's extraction: the objects
 * clone creates, each with its statements), compared object by object. The pgferry schema is
 * outside every scope, so pgferry's own state on the target is never a difference.
 */
export async function compareSchema(source: ConnectionSpec, target: ConnectionSpec, scope: Scope): Promise<SchemaDifference[]> {
  const read = (side: Side, spec: ConnectionSpec) =>
    withConnection(spec, async ({ client }) => {
      try {
        return { major: await serverMajor(client), schema: await extractSchema(client, scope) };
      } catch (error) {
        if (error instanceof PgferryError) throw error;
        throw new PgferryError('query', `${side}: reading the schema to compare failed: ${messageOf(error)}`, {
          side,
          fix: `check that the ${side} role may read the system catalogs; run with --debug for details`,
          cause: error,
        });
      }
    });
  const [s, t] = await Promise.all([read('source', source), read('target', target)]);
  const majors = [s.major, t.major] as const;
  // Settings are carried by clone, but a target may rightly differ (a bigger machine's work_mem):
  // verify does not hold it to the source's.
  const compared = (objects: readonly SchemaObject[]) =>
    objects.filter((o) => o.kind !== 'database setting').map((o) => comparable(o, majors));
  return diffSchemaObjects(compared(s.schema.objects), compared(t.schema.objects));
}

type Comparable = Pick<SchemaObject, 'identity' | 'kind' | 'name' | 'statements'>;

/**
 * The same object deparses differently on some pairs of majors. Only those differences are
 * smoothed over, and only when the two servers straddle the version that changed them.
 */
export function comparable(object: Comparable, majors: readonly [number, number]): Comparable {
  const oldest = Math.min(...majors);
  const newest = Math.max(...majors);
  const straddles = (version: number) => oldest < version && newest >= version;
  let { identity, name, statements } = object;
  if (straddles(14) && /\(/.test(identity) && ['function', 'aggregate', 'owner', 'privileges'].includes(object.kind)) {
    // From 14 on a procedure's arguments print with their IN mode; up to 13 without.
    identity = withoutInModes(identity);
    name = withoutInModes(name);
    statements = statements.map(withoutInModes);
  }
  if (oldest < 14 && object.kind === 'range type') {
    // 14+ gives every range type a multirange and names it; 13 has none to name.
    statements = statements.map((st) => st.replace(/, multirange_type_name = [^,)]+/, ''));
  }
  if (straddles(17) && object.kind === 'privileges') {
    // 17 added MAINTAIN, and an owner's default privileges include it there: a source before 17
    // can't grant it, and a GRANT replayed on a 17 target writes the owner's defaults with it.
    statements = statements.filter((st) => !/^GRANT MAINTAIN\b/.test(st));
  }
  if (straddles(16) && (object.kind === 'view' || object.kind === 'materialized view')) {
    // From 16 on a query over one relation prints its columns unqualified ("id", not "animal.id").
    statements = statements.map(unqualifiedSingleRelation);
  }
  return { identity, kind: object.kind, name, statements };
}

/** "p(IN a integer, INOUT b text)" → "p(a integer, INOUT b text)", in the first line only. */
function withoutInModes(text: string): string {
  const [first = '', ...rest] = text.split('\n');
  return [first.replace(/(\(|, )IN (?=\S)/g, '$1'), ...rest].join('\n');
}

/** For a view whose only FROM item is one relation (no join, no subquery), drops that relation's name where it qualifies a column. */
function unqualifiedSingleRelation(statement: string): string {
  if (!/^CREATE (MATERIALIZED )?VIEW /.test(statement) || /\bJOIN\b/.test(statement) || (statement.match(/\bFROM\b/g) ?? []).length !== 1)
    return statement;
  const from = /\bFROM (?:(?:"[^"]+"|\w+)\.)?("[^"]+"|\w+)(?: (\w+))?\s*(?:;|$|\n)/.exec(statement);
  if (!from) return statement;
  const qualifier = (from[2] ?? from[1]!).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return statement.replace(new RegExp(`(?<![\\w."])${qualifier}\\.(?=[\\w"])`, 'g'), '');
}

/** Whitespace is layout, not definition: deparsers of different majors indent differently. */
function definition(object: Comparable): string {
  return object.statements.join('\n').replace(/\s+/g, ' ').trim();
}

export function diffSchemaObjects(source: readonly Comparable[], target: readonly Comparable[]): SchemaDifference[] {
  const onTarget = new Map(target.map((o) => [o.identity, o]));
  const onSource = new Set(source.map((o) => o.identity));
  const differences: SchemaDifference[] = [];
  for (const o of source) {
    const other = onTarget.get(o.identity);
    if (!other) differences.push({ object: `${o.kind} ${o.name}`, kind: 'missing' });
    else if (definition(other) !== definition(o)) differences.push({ object: `${o.kind} ${o.name}`, kind: 'changed' });
  }
  for (const o of target) if (!onSource.has(o.identity)) differences.push({ object: `${o.kind} ${o.name}`, kind: 'extra' });
  return differences;
}

/** How an object differs, in words: for verify's table and the cut-over's error alike. */
export const SCHEMA_DIFFERENCE_WORDS: Readonly<Record<DifferenceKind, string>> = {
  missing: 'missing on the target',
  extra: 'only on the target',
  changed: 'defined differently',
};

/** One schema difference as a person reads it: "index public.t_pkey (missing on the target)". */
export function describeSchemaDifference(difference: SchemaDifference): string {
  return `${difference.object} (${SCHEMA_DIFFERENCE_WORDS[difference.kind]})`;
}
