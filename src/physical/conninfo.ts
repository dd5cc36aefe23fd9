import type { ConnectionSpec } from '../config/index.js';

/**
 * The libpq connection string pg_basebackup and the standby's WAL receiver use to reach the
 * source: every parameter the spec resolved except the password, which goes in a password
 * file (a `passfile=` parameter names it), never in a process's arguments or a config file.
 */
export function replicationConnectionString(spec: ConnectionSpec, extra: Readonly<Record<string, string>> = {}): string {
  const params: Array<[string, string | number | undefined]> = [
    ['host', spec.host],
    ['hostaddr', spec.hostaddr],
    ['port', spec.port],
    ['user', spec.user],
    ['sslmode', spec.sslmode],
    ['sslrootcert', spec.sslrootcert],
    ['sslcert', spec.sslcert],
    ['sslkey', spec.sslkey],
    ['connect_timeout', spec.connectTimeoutSeconds],
    ['keepalives', spec.keepalives ? 1 : 0],
    ['keepalives_idle', spec.keepalivesIdleSeconds],
    ...Object.entries(extra),
  ];
  return params
    .filter((p): p is [string, string | number] => p[1] !== undefined && p[1] !== '')
    .map(([key, value]) => `${key}=${quoteConninfoValue(String(value))}`)
    .join(' ');
}

/** libpq's quoting: single quotes around the value, backslash before a quote or backslash. */
export function quoteConninfoValue(value: string): string {
  return /^[^\s'\\]+$/.test(value) ? value : `'${value.replace(/[\\']/g, '\\$&')}'`;
}

/**
 * One line of a libpq password file (hostname:port:database:username:password) that serves
 * the spec's host and user for any database, replication connections included: a colon or
 * backslash in a field is escaped with a backslash.
 */
export function passwordFileLine(spec: ConnectionSpec, password: string): string {
  const field = (value: string) => value.replace(/[\\:]/g, '\\$&');
  // A Unix socket connection is looked up as localhost.
  const host = spec.host.startsWith('/') ? 'localhost' : spec.host;
  return `${field(host)}:${spec.port}:*:${field(spec.user)}:${field(password)}\n`;
}

/** A value in postgresql.conf syntax: single-quoted, a quote doubled. */
export function quoteConfigValue(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}
