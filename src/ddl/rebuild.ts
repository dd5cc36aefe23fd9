import type pg from 'pg';
import type { DroppedObject, TableDefinition, TouchedObject } from './payload.js';
import { ABSENT, dropStatement, objectStatements, tableStatements, type TargetShape } from './rebuild-plan.js';
import { TABLE_DEFINITION_JSON } from './table-definition-sql.js';

/** What the command dropped, by name: run before the rest is rebuilt, so tables are read without it. */
export function dropStatements(dropped: readonly DroppedObject[]): string[] {
  const statements: string[] = [];
  for (const object of dropped) {
    if (!object.original || object.temporary) continue;
    const statement = dropStatement(object);
    if (statement) statements.push(statement);
  }
  return statements;
}

/**
 * The statements that make the target's objects what the source's are after a command that
 * ran inside another statement (its drops already run): sequences, tables and everything else
 * from the definitions the capture read. Run with search_path = pg_catalog (as the capture read
 * them), so every deparsed name is qualified alike on both sides.
 */
export async function rebuildStatements(target: pg.Client, tag: string, objects: readonly TouchedObject[]): Promise<string[]> {
  const statements: string[] = [];
  const own = objects.filter((o) => !o.inExtension);
  // Before the tables whose defaults use them (serial); an identity column's comes with its table.
  const sequences = own.filter((o) => o.type === 'sequence' && o.definition !== 'identity');
  for (const sequence of sequences) {
    statements.push(typeof sequence.definition === 'string' ? sequence.definition : `CREATE SEQUENCE IF NOT EXISTS ${sequence.identity}`);
  }
  // Each table once, whichever of its parts (itself, a column, a constraint) the command named.
  const tables = new Map<string, { readonly schema: string | null; readonly definition: TableDefinition }>();
  for (const object of own) {
    const definition = object.definition;
    if (definition !== null && typeof definition !== 'string') tables.set(definition.name, { schema: object.schema, definition });
  }
  const constraintIndexes = new Set<string>();
  for (const [name, { schema, definition }] of tables) {
    for (const k of definition.constraints) constraintIndexes.add(`${schema ?? ''}.${k.name}`);
    statements.push(...tableStatements(name, await targetShape(target, name, definition), definition, tag === 'CREATE TABLE'));
  }
  for (const object of own) {
    const partOfTable = object.definition !== null && typeof object.definition !== 'string';
    if (partOfTable || object.type === 'sequence' || object.type === 'table column' || object.type === 'table constraint') continue;
    // A key's or a unique constraint's index comes with the constraint.
    if (object.type === 'index' && constraintIndexes.has(`${object.schema ?? ''}.${lastName(object.identity)}`)) continue;
    statements.push(...objectStatements(object));
  }
  for (const sequence of sequences)
    if (sequence.ownedBy !== null) statements.push(`ALTER SEQUENCE ${sequence.identity} OWNED BY ${sequence.ownedBy}`);
  // A sequence the command both made and altered (serial's OWNED BY) is named twice.
  return [...new Set(statements)];
}

/** The target's table, and which of the source's partitions of it the target has as tables. */
async function targetShape(target: pg.Client, table: string, source: TableDefinition): Promise<TargetShape> {
  const { rows } = await target.query<{ shape: TableDefinition | null; present: string[] }>(
    `SELECT CASE WHEN c.oid IS NULL THEN NULL ELSE ${TABLE_DEFINITION_JSON} END AS shape,
            ARRAY(SELECT p FROM unnest($2::text[]) AS p WHERE to_regclass(p) IS NOT NULL) AS present
       FROM (SELECT to_regclass($1) AS oid) r LEFT JOIN pg_class c ON c.oid = r.oid`,
    [table, (source.partitions ?? []).map((p) => p.name)],
  );
  const shape = rows[0]?.shape;
  if (!shape) return ABSENT;
  return {
    exists: true,
    columns: shape.columns,
    constraints: shape.constraints,
    partitionOf: shape.partitionOf,
    partitions: shape.partitions ?? null,
    tablesOnTarget: new Set(rows[0]!.present),
  };
}

function lastName(identity: string): string {
  const dot = identity.lastIndexOf('.');
  const name = dot < 0 ? identity : identity.slice(dot + 1);
  return name.startsWith('"') ? name.slice(1, -1).replace(/""/g, '"') : name;
}
