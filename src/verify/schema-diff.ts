import type { Scope } from '../catalog/index.js';
import { withConnection, type ConnectionSpec } from '../config/index.js';
import { PgferryError, messageOf, type Side } from '../errors.js';
import { extractSchema, type SchemaObject } from '../schema/index.js';
import type { SchemaDifference } from './types.js';

/**
 * The schema of both sides as the schema step reads it (src/schema's extraction: the objects
 * clone creates, each with its statements), compared object by object. The pgferry schema is
 * outside every scope, so pgferry's own state on the target is never a difference.
 */
export async function compareSchema(source: ConnectionSpec, target: ConnectionSpec, scope: Scope): Promise<SchemaDifference[]> {
  const read = (side: Side, spec: ConnectionSpec) =>
    withConnection(spec, async ({ client }) => {
      try {
        return await extractSchema(client, scope);
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
  return diffSchemaObjects(s.objects, t.objects);
}

/** Whitespace is layout, not definition: deparsers of different majors indent differently. */
function definition(object: SchemaObject): string {
  return object.statements.join('\n').replace(/\s+/g, ' ').trim();
}

export function diffSchemaObjects(source: readonly SchemaObject[], target: readonly SchemaObject[]): SchemaDifference[] {
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
