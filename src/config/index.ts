export { parseConnectionString, CONNECTION_KEYWORDS } from './connection-string.js';
export type { ConnectionParams, ConnectionKeyword } from './connection-string.js';
export { describeConnection, endpointOf, forMigration, DEFAULT_PEER_TIMEOUT_MS, SSL_MODES } from './connection-spec.js';
export { serverKeepalives } from './server-keepalives.js';
export type { ConnectionSpec, SslMode, PasswordSource } from './connection-spec.js';
export { resolveConnection } from './resolve.js';
export { connect, withConnection } from './connect.js';
export type { Connection, SessionKind } from './connect.js';
export { registerSecret, scrubSecrets, scrubPatterns, hidePasswordsFromProcessList } from './secrets.js';
