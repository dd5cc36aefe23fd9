import type pg from 'pg';
import { SYSTEM_SCHEMA_SQL, type QualifiedName, type Scope } from '../../catalog/index.js';
import type { ObjectKind, SchemaObject, Section, UnsupportedObject } from '../model.js';

/** The catalog address of a source object, as pg_depend and pg_description record it. */
export function address(catalog: string, oid: number | string, sub?: string): string {
  return sub === undefined ? `${catalog}:${oid}` : `${catalog}:${oid}/${sub}`;
}

export interface NewObject {
  id: string;
  identity: string;
  kind: ObjectKind;
  name: string;
  schema: string;
  section: Section;
  statements: string[];
  dependsOn?: Iterable<string>;
  table?: QualifiedName;
  /** Catalog addresses whose dependencies belong to this object too. */
  aliases?: Iterable<string>;
  /** What COMMENT ON names it by ("TABLE public.film"), when it can carry a comment. */
  commentTarget?: string;
  requiresRoles?: string[];
  columns?: Array<{ name: string; type: string }>;
}

/**
 * What every extractor shares: the source session, its version, the scope, and the growing
 * set of objects with the aliases that map catalog addresses onto them.
 */
export class ExtractContext {
  readonly objects = new Map<string, SchemaObject>();
  readonly aliases = new Map<string, string>();
  readonly unsupported: UnsupportedObject[] = [];
  /**
   * Catalog addresses of user objects the scope leaves out (relations, and types, functions
   * and collations of excluded schemas): what needs them is skipped, not created half-way.
   */
  readonly excluded = new Set<string>();
  /** Object id → what COMMENT ON calls it. */
  readonly commentTargets = new Map<string, string>();

  constructor(
    readonly client: pg.Client,
    readonly major: number,
    readonly scope: Scope,
  ) {}

  async rows<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]> {
    return (await this.client.query<R>(text, values)).rows;
  }

  add(spec: NewObject): SchemaObject {
    const object: SchemaObject = {
      id: spec.id,
      identity: spec.identity,
      kind: spec.kind,
      name: spec.name,
      schema: spec.schema,
      section: spec.section,
      statements: spec.statements,
      dependsOn: new Set(spec.dependsOn ?? []),
      table: spec.table,
      ...(spec.requiresRoles ? { requiresRoles: spec.requiresRoles } : {}),
      ...(spec.columns ? { columns: spec.columns } : {}),
    };
    this.objects.set(object.id, object);
    this.aliases.set(object.id, object.id);
    for (const alias of spec.aliases ?? []) this.aliases.set(alias, object.id);
    if (spec.commentTarget !== undefined) this.commentTargets.set(object.id, spec.commentTarget);
    return object;
  }

  /** The object a catalog address stands for, if pgferry creates it. */
  resolve(catalogAddress: string): SchemaObject | undefined {
    const id = this.aliases.get(catalogAddress);
    return id === undefined ? undefined : this.objects.get(id);
  }

  /**
   * Whether objects of this schema are in scope. When not, their catalog addresses are
   * remembered as excluded, so whatever needs them is skipped and named, not half-made.
   */
  inScope(schema: string, ...addresses: string[]): boolean {
    if (this.scope.includesSchema(schema)) return true;
    for (const a of addresses) this.excluded.add(a);
    return false;
  }

  unsupportedObject(kind: string, name: string, reason: string): void {
    this.unsupported.push({ kind, name, reason });
  }
}

/** Schemas no user object lives in. */
export const USER_NAMESPACE = SYSTEM_SCHEMA_SQL;

/** Not created by CREATE EXTENSION (those come with the extension on the target). */
export function notExtensionMember(catalog: string, oidColumn: string): string {
  return `NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '${catalog}'::regclass
            AND d.objid = ${oidColumn} AND d.deptype = 'e')`;
}

/**
 * Neither an extension member nor made by the server as part of another object (a range
 * type's constructor functions, its multirange casts): creating those again would duplicate
 * them and cut their tie to the object that owns them.
 */
export function notMemberOrInternal(catalog: string, oidColumn: string): string {
  return `NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '${catalog}'::regclass
            AND d.objid = ${oidColumn} AND d.deptype IN ('e', 'i'))`;
}
