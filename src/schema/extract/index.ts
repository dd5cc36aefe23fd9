import type pg from 'pg';
import { serverMajor, type Scope } from '../../catalog/index.js';
import type { ExtractedSchema } from '../model.js';
import { orderObjects } from '../order.js';
import { attachComments } from './comments.js';
import { ExtractContext } from './context.js';
import { addDependencies } from './dependencies.js';
import { extractDatabaseProperties } from './database.js';
import { extractExtensionMemberPrivileges } from './extension-privileges.js';
import { extractFunctions } from './functions.js';
import { extractNamespaces } from './namespaces.js';
import { extractPostData } from './post-data.js';
import { extractPrivileges } from './privileges.js';
import { extractRelations } from './relations.js';
import { extractTypes } from './types.js';

/**
 * Reads the source's schema from its catalogs into ordered objects. The session's search_path
 * is emptied first, so every name the server's deparsers print is schema-qualified and means
 * the same on the target; the work runs in one repeatable-read transaction so the catalogs
 * don't shift under it.
 */
export async function extractSchema(client: pg.Client, scope: Scope): Promise<ExtractedSchema> {
  const major = await serverMajor(client);
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    await client.query(`SELECT pg_catalog.set_config('search_path', '', true)`);
    const ctx = new ExtractContext(client, major, scope);
    await extractNamespaces(ctx);
    await extractTypes(ctx);
    await extractFunctions(ctx);
    await extractRelations(ctx);
    await extractPostData(ctx);
    await attachComments(ctx);
    await extractPrivileges(ctx);
    await extractExtensionMemberPrivileges(ctx);
    await extractDatabaseProperties(ctx);
    const skipped = await addDependencies(ctx);
    const objects = orderObjects([...ctx.objects.values()]);
    return {
      objects,
      unsupported: ctx.unsupported,
      skipped,
      materializedViews: objects.filter((o) => o.kind === 'materialized view').map((o) => o.name),
    };
  } finally {
    await client.query('COMMIT');
  }
}
