import type pg from 'pg';
import { CAPTURE_FUNCTIONS_SQL } from '../catalog/index.js';
import { notExtensionMember, notMemberOrInternal } from './extract/context.js';
import type { UnsupportedObject } from './model.js';

/**
 * Object kinds the schema step does not recreate, found in user schemas (extension members
 * excluded: CREATE EXTENSION brings them). Each is named, so nothing is dropped silently.
 */
const QUERIES: ReadonlyArray<{ kind: string; reason: string; sql: string }> = [
  {
    kind: 'event trigger',
    reason: 'event triggers are database-wide; create them on the target after the cut-over',
    // pgferry's own schema-change capture (ddl/capture.ts) is not the user's.
    sql: `SELECT format('%I', evtname) FROM pg_event_trigger e
           WHERE ${notExtensionMember('pg_event_trigger', 'e.oid')}
             AND e.evtfoid NOT IN (${CAPTURE_FUNCTIONS_SQL})`,
  },
  {
    kind: 'operator',
    reason: 'user-defined operators are not copied yet; create them on the target first',
    sql: `SELECT format('%I.%s', n.nspname, o.oprname) FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
           WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
             AND ${notExtensionMember('pg_operator', 'o.oid')}`,
  },
  {
    kind: 'operator class',
    reason: 'user-defined operator classes are not copied yet; create them on the target first',
    sql: `SELECT format('%I.%I', n.nspname, c.opcname) FROM pg_opclass c JOIN pg_namespace n ON n.oid = c.opcnamespace
           WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
             AND ${notExtensionMember('pg_opclass', 'c.oid')}`,
  },
  {
    kind: 'text search configuration',
    reason: 'user-defined text search configurations are not copied yet; create them on the target first',
    sql: `SELECT format('%I.%I', n.nspname, c.cfgname) FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace
           WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
             AND ${notExtensionMember('pg_ts_config', 'c.oid')}`,
  },
  {
    kind: 'cast',
    reason: 'user-defined casts are not copied yet; create them on the target first',
    sql: `SELECT format('%s AS %s', format_type(c.castsource, NULL), format_type(c.casttarget, NULL)) FROM pg_cast c
           WHERE c.oid >= 16384
             AND ${notMemberOrInternal('pg_cast', 'c.oid')}`,
  },
  {
    kind: 'publication',
    reason: 'publications describe replication out of this server; create them on the target if it will publish',
    sql: `SELECT format('%I', pubname) FROM pg_publication WHERE pubname NOT LIKE 'pgferry%'`,
  },
  {
    kind: 'foreign server',
    reason: 'foreign servers and user mappings are not copied yet; create them on the target',
    sql: `SELECT format('%I', srvname) FROM pg_foreign_server`,
  },
];

export async function findUnsupportedObjects(client: pg.Client): Promise<UnsupportedObject[]> {
  const found: UnsupportedObject[] = [];
  for (const q of QUERIES) {
    const { rows } = await client.query<{ name: string }>(`SELECT name FROM (${q.sql}) AS found(name) ORDER BY 1`);
    for (const r of rows) found.push({ kind: q.kind, name: r.name, reason: q.reason });
  }
  return found;
}
