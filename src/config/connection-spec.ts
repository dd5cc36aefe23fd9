import type { Side } from '../errors.js';

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export type PasswordSource = 'connection string' | 'PGPASSWORD' | 'password file' | 'none';

/** One side's connection, fully resolved the way libpq would resolve it. */
export interface ConnectionSpec {
  readonly side: Side;
  /** A host name, an IP address, or a Unix socket directory (starts with "/"). */
  readonly host: string;
  /** Overrides DNS for the TCP connection while `host` is still used to verify the certificate. */
  readonly hostaddr: string | undefined;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string | undefined;
  readonly passwordSource: PasswordSource;
  readonly sslmode: SslMode;
  readonly sslrootcert: string | undefined;
  readonly sslcert: string | undefined;
  readonly sslkey: string | undefined;
  readonly connectTimeoutSeconds: number;
  /**
   * TCP keepalives (libpq's keepalives, on unless 0): probes on an idle connection keep NAT
   * and load-balancer entries alive and find a peer that vanished without a word.
   */
  readonly keepalives: boolean;
  /** Idle seconds before the first probe (libpq's keepalives_idle). */
  readonly keepalivesIdleSeconds: number;
  /** What the user called pgferry's sessions (application_name); each session adds its own mark (plumbing/own-sessions.ts). */
  readonly applicationName: string;
  readonly options: string | undefined;
  /**
   * How long a peer may stay silent before it is taken for gone (`--peer-timeout`): pgferry's
   * own checks, and the server's keepalives of pgferry's sessions (server-keepalives.ts).
   */
  readonly peerTimeoutMs: number;
  /** The migration these sessions serve, named in their application_name once known (forMigration). */
  readonly migration?: string | undefined;
}

/** A peer silent this long is gone, unless told otherwise: what native logical replication allows a walsender (wal_receiver_timeout). */
export const DEFAULT_PEER_TIMEOUT_MS = 60_000;

/** The spec whose sessions name `migration` in their application_name. */
export function forMigration(spec: ConnectionSpec, migration: string): ConnectionSpec {
  return { ...spec, migration };
}

/** How a connection is shown to people: never with its password. */
export function describeConnection(spec: ConnectionSpec): string {
  const host = spec.host.includes(':') ? `[${spec.host}]` : spec.host;
  const where = spec.host.startsWith('/')
    ? `postgres://${encodeURIComponent(spec.user)}@/${encodeURIComponent(spec.database)}?host=${encodeURIComponent(spec.host)}&port=${spec.port}`
    : `postgres://${encodeURIComponent(spec.user)}@${host}:${spec.port}/${encodeURIComponent(spec.database)}`;
  const ssl = spec.sslmode === 'prefer' ? '' : `${where.includes('?') ? '&' : '?'}sslmode=${spec.sslmode}`;
  return where + ssl;
}

/** `host:port` or the socket path, for messages about reachability. */
export function endpointOf(spec: ConnectionSpec): string {
  if (spec.host.startsWith('/')) return `socket ${spec.host}/.s.PGSQL.${spec.port}`;
  const host = spec.host.includes(':') ? `[${spec.host}]` : spec.host;
  return `${host}:${spec.port}`;
}
