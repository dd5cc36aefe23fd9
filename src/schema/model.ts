import type { QualifiedName } from '../catalog/index.js';

/**
 * Pre-data is created before rows are copied (types, tables, functions, views); post-data
 * after (indexes, keys, constraints, triggers, rules, policies), because building them over
 * loaded tables is faster than maintaining them row by row, and triggers must not fire on
 * copied rows.
 */
export type Section = 'pre-data' | 'post-data';

export type ObjectKind =
  | 'schema'
  | 'extension'
  | 'collation'
  | 'enum type'
  | 'composite type'
  | 'range type'
  | 'domain'
  | 'function'
  | 'aggregate'
  | 'sequence'
  | 'sequence owner'
  | 'table'
  | 'partition attach'
  | 'default'
  | 'view'
  | 'materialized view'
  | 'index'
  | 'index attach'
  | 'constraint'
  | 'trigger'
  | 'rule'
  | 'policy'
  | 'row security'
  | 'replica identity'
  | 'statistics'
  | 'owner'
  | 'privileges'
  | 'database setting'
  | 'default privileges';

/**
 * One thing pgferry creates on the target: the statements that create it, where it lives in
 * the source catalogs, and what it must come after. `identity` names it the same way on
 * every server (no OIDs), so a rerun can tell what is already there.
 */
export interface SchemaObject {
  /** Catalog address on the source, "pg_class:16384"; derived objects append "/…". */
  readonly id: string;
  readonly identity: string;
  readonly kind: ObjectKind;
  /** How people name it in messages: public.film, public.film.film_pkey, public.f(integer). */
  readonly name: string;
  readonly schema: string;
  readonly section: Section;
  readonly statements: string[];
  /** Ids of objects that must exist first. */
  readonly dependsOn: Set<string>;
  /** The table a post-data object belongs to, so clone can build it once that table is loaded. */
  readonly table: QualifiedName | undefined;
  /** Roles that must exist on the target (owners, grantees); without them the object is left out. */
  readonly requiresRoles?: readonly string[];
  /** A table's columns (quoted name, type), to accept an existing target table the rows still fit. */
  readonly columns?: ReadonlyArray<{ readonly name: string; readonly type: string }>;
}

/** An object the source holds that pgferry cannot recreate; reported, never silently dropped. */
export interface UnsupportedObject {
  readonly kind: string;
  readonly name: string;
  readonly reason: string;
}

export interface ExtractedSchema {
  /** In an order that creates them: every object after what it depends on, pre-data first. */
  readonly objects: readonly SchemaObject[];
  readonly unsupported: readonly UnsupportedObject[];
  /** Objects left out because they depend on something out of scope. */
  readonly skipped: readonly { readonly name: string; readonly because: string }[];
  readonly materializedViews: readonly string[];
}

/** An extracted schema as JSON text, for the target's state: a resumed copy that a stream completes uses the schema it planned with. */
export function schemaToJson(schema: ExtractedSchema): string {
  return JSON.stringify(schema, (_key, value: unknown) => (value instanceof Set ? [...(value as Set<unknown>)] : value));
}

export function schemaFromJson(text: string): ExtractedSchema {
  const value: unknown = JSON.parse(text);
  if (!isStoredSchema(value)) throw new Error('the stored schema is not one pgferry wrote');
  return { ...value, objects: value.objects.map((o) => ({ ...o, dependsOn: new Set(o.dependsOn) })) };
}

type StoredSchema = Omit<ExtractedSchema, 'objects'> & {
  readonly objects: ReadonlyArray<Omit<SchemaObject, 'dependsOn'> & { dependsOn: string[] }>;
};

/** The shape schemaToJson writes (the objects' own fields are the target's business: they only ever run there). */
function isStoredSchema(value: unknown): value is StoredSchema {
  return (
    typeof value === 'object' &&
    value !== null &&
    'objects' in value &&
    Array.isArray(value.objects) &&
    value.objects.every((o: unknown) => typeof o === 'object' && o !== null && 'dependsOn' in o && Array.isArray(o.dependsOn)) &&
    'unsupported' in value &&
    Array.isArray(value.unsupported) &&
    'skipped' in value &&
    Array.isArray(value.skipped) &&
    'materializedViews' in value &&
    Array.isArray(value.materializedViews)
  );
}
