export {
  Scope,
  EVERYTHING,
  SYSTEM_SCHEMA_SQL,
  NON_USER_SCHEMAS_SQL,
  OWN_INDEX_PREFIX,
  notOwnIndexSql,
  CAPTURE_FUNCTIONS_SQL,
  REPLICATION_EXTENSIONS,
  REPLICATION_EXTENSIONS_SQL,
} from './scope.js';
export type { ScopeFilter, QualifiedName } from './scope.js';
export { readServerInfo, readSettings, serverMajor, assertStreamableSource, OLDEST_SOURCE_MAJOR } from './server.js';
export type { ServerInfo } from './server.js';
export { listTables, displayName, LOOKUP_INDEX_SQL } from './tables.js';
export type { TableInfo, TableKind, ReplicaIdentity } from './tables.js';
export { tablesOnTarget } from './target-tables.js';
