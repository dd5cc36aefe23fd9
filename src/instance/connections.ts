import type { ConnectionSpec } from '../config/index.js';

/**
 * The same server reached in another database: an instance-level command connects to each
 * database with the user's host, port, role, TLS and password, only the database changed. The
 * database in the user's URL is only where pgferry connects first to list the others.
 */
export function inDatabase(spec: ConnectionSpec, database: string): ConnectionSpec {
  return { ...spec, database };
}
