import type { Scope } from '../catalog/index.js';
import { withConnection, type ConnectionSpec } from '../config/index.js';
import { PgferryError, messageOf } from '../errors.js';
import { applySection, type ApplyResult } from './apply.js';
import { extractSchema } from './extract/index.js';
import type { ExtractedSchema, SchemaObject, Section } from './model.js';
import { findUnsupportedObjects } from './unsupported.js';
import { carryRoles, rolesTheSchemaNeeds, type RoleCarry } from './roles.js';

/** Reads the source schema: the objects to create, and what cannot be created. */
export async function readSourceSchema(source: ConnectionSpec, scope: Scope): Promise<ExtractedSchema> {
  return withConnection(source, async ({ client }) => {
    try {
      const schema = await extractSchema(client, scope);
      const unsupported = [...schema.unsupported, ...(await findUnsupportedObjects(client))];
      return { ...schema, unsupported };
    } catch (error) {
      if (error instanceof PgferryError) throw error;
      throw new PgferryError('query', `source: reading the schema failed: ${messageOf(error)}`, {
        side: 'source',
        fix: 'check that the source role may read the system catalogs; run with --debug for details',
        cause: error,
      });
    }
  });
}

export interface SectionResult extends ApplyResult {
  readonly section: Section;
  readonly seconds: number;
}

/** Creates one section of an extracted schema on the target. */
export async function createSection(
  target: ConnectionSpec,
  schema: ExtractedSchema,
  section: Section,
  scope: Scope,
  options: { onObject?: (object: SchemaObject) => void; noOwner?: boolean; noAcl?: boolean } = {},
): Promise<SectionResult> {
  const started = performance.now();
  const result = await withConnection(target, ({ client }) =>
    applySection(client, schema, section, {
      readTargetSchema: () => withConnection(target, ({ client: reader }) => extractSchema(reader, scope)),
      ...options,
    }),
  );
  return { ...result, section, seconds: (performance.now() - started) / 1000 };
}

/** `--create-roles` for a schema-only copy: the roles the schema needs, made before its first section. */
export async function carryRolesOf(source: ConnectionSpec, target: ConnectionSpec, schema: ExtractedSchema): Promise<RoleCarry> {
  return withConnection(source, ({ client: from }) =>
    withConnection(target, ({ client: to }) => carryRoles(from, to, rolesTheSchemaNeeds(schema))),
  );
}
