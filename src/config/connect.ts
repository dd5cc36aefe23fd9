import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { PgferryError, messageOf } from '../errors.js';
import { describeConnection, endpointOf, type ConnectionSpec } from './connection-spec.js';
import { tlsAttempts, type TlsAttempt } from './tls.js';
import { closeClient, openingSession, SQLSTATE, sqlState, type OwnSession } from '../plumbing/index.js';
import { serverKeepalives } from './server-keepalives.js';

/** What kind of session to open, beyond what the connection string says. */
export interface SessionKind {
  /**
   * A walsender session: `logical` for logical replication commands in a database
   * (CREATE_REPLICATION_SLOT, START_REPLICATION), `physical` for the whole server's WAL (no SQL).
   */
  readonly replication?: 'logical' | 'physical';
  /** Settings sent in the start-up packet (`-c name=value`), added to the connection string's own `options`. */
  readonly settings?: Readonly<Record<string, string>>;
}

/** An open session to one side, with the spec it came from for messages. */
export interface Connection {
  readonly spec: ConnectionSpec;
  readonly client: pg.Client;
}

const NO_SSL_ON_SERVER = 'The server does not support SSL connections';

/**
 * Opens a session the way libpq would for the spec's sslmode, and turns every way that can
 * fail into one PgferryError naming the side, what failed and what to do.
 */
export async function connect(spec: ConnectionSpec, session: SessionKind = {}): Promise<Connection> {
  const attempts = tlsAttempts(spec);
  let lastError: unknown;
  let lastProgress: Progress = 'negotiating';
  for (const [index, attempt] of attempts.entries()) {
    const own = openingSession();
    const client = new pg.Client(clientConfig(spec, attempt, session, own));
    // Open until its socket closes, however that happens: a backend of a closed one is lost to pgferry.
    client.connection.once('end', () => own.closed());
    // A session that dies later must not crash the process; its next query reports the failure.
    client.on('error', () => undefined);
    const progress = trackProgress(spec, client);
    const major = serverMajorAtStartup(client);
    try {
      await client.connect();
      await applyLaterSettings(client, major(), session);
      return { spec, client };
    } catch (error) {
      lastError = error;
      lastProgress = progress();
      await closeClient(client);
      const isLast = index === attempts.length - 1;
      if (isLast || !worthFallingBack(error)) break;
    }
  }
  throw connectionError(spec, lastError, lastProgress);
}

/** The server's major version, from the server_version it reports while the session starts. */
function serverMajorAtStartup(client: pg.Client): () => number | undefined {
  let major: number | undefined;
  client.connection.on('parameterStatus', (message: { parameterName: string; parameterValue: string }) => {
    if (message.parameterName === 'server_version') major = Number.parseInt(message.parameterValue, 10);
  });
  return () => major;
}

async function applyLaterSettings(client: pg.Client, major: number | undefined, session: SessionKind): Promise<void> {
  const settings = LATER_SETTINGS.filter(
    ([since, name]) => major !== undefined && major >= since && session.settings?.[name] === undefined,
  );
  // A physical walsender runs replication commands only.
  if (settings.length === 0 || session.replication === 'physical') return;
  await client.query(`SELECT ${settings.map(([, name, value]) => `set_config('${name}', '${value}', false)`).join(', ')}`);
}

/** How far an attempt got: a timeout means something different in each step. */
type Progress = 'resolving' | 'connecting' | 'negotiating';

/**
 * Follows the socket pg is about to open. A timeout while the host name is still being looked
 * up is a DNS problem, not a silent server, and the message must say so.
 */
function trackProgress(spec: ConnectionSpec, client: pg.Client): () => Progress {
  const host = spec.hostaddr ?? spec.host;
  // Addresses and socket paths are not looked up, and their sockets emit no 'lookup' event.
  let progress: Progress = isIP(host) !== 0 || host.startsWith('/') ? 'connecting' : 'resolving';
  const socket = client.connection.stream;
  socket.once('lookup', (error: Error | null) => {
    if (!error) progress = 'connecting';
  });
  socket.once('connect', () => (progress = 'negotiating'));
  return () => progress;
}

/** Opens, runs `work`, and always closes the session. */
export async function withConnection<T>(spec: ConnectionSpec, work: (connection: Connection) => Promise<T>): Promise<T> {
  const connection = await connect(spec);
  try {
    return await work(connection);
  } finally {
    await closeClient(connection.client);
  }
}

/**
 * Server-side timeouts a role or database may set, which would end pgferry's own long
 * statements (a COPY of a big table, a batch), its exported snapshot held idle in a transaction
 * for hours, or its idle sessions: off on every session, unless a session sets them itself.
 * These three exist on every supported server and go in the start-up packet.
 */
const NO_TIMEOUTS: Readonly<Record<string, string>> = {
  statement_timeout: '0',
  lock_timeout: '0',
  idle_in_transaction_session_timeout: '0',
};

/**
 * A cut-over freezes a database for the application with its `default_transaction_read_only`,
 * and pgferry goes on writing to it: the fence and the freeze's undoing on the old source, the
 * way back's changes applied to it while it stays frozen. Its own sessions are never under the
 * freeze (a start-up setting outranks the database's and the role's defaults).
 */
const NOT_UNDER_A_FREEZE: Readonly<Record<string, string>> = { default_transaction_read_only: 'off' };
/**
 * Settings of later servers, by the first major that has them (an unknown name in the start-up
 * packet fails the connection, so they are set once the version is known): the later timeouts,
 * off as above; and a check, every few seconds while a statement runs, that pgferry is still
 * there. Without it a long statement of a pgferry that died or gave up (a verify's hash of a big
 * table, a COPY) runs to its end, minutes later, holding its locks and its snapshot.
 */
const LATER_SETTINGS: ReadonlyArray<readonly [number, string, string]> = [
  [14, 'idle_session_timeout', '0'],
  [17, 'transaction_timeout', '0'],
  [14, 'client_connection_check_interval', '5000'],
];

function clientConfig(spec: ConnectionSpec, attempt: TlsAttempt, session: SessionKind, own: OwnSession): pg.ClientConfig {
  // Keepalives the connection string's own options set are the user's choice, and win.
  const keepalives = spec.options?.includes('tcp_keepalives_') === true ? {} : serverKeepalives(spec.peerTimeoutMs);
  const startup = { ...NO_TIMEOUTS, ...NOT_UNDER_A_FREEZE, ...keepalives, ...session.settings };
  const settings = Object.entries(startup).map(([name, value]) => `-c ${name}=${value.replace(/[\\ ]/g, '\\$&')}`);
  const options = [spec.options, ...settings].filter((o) => o !== undefined && o !== '').join(' ');
  return {
    host: spec.hostaddr ?? spec.host,
    port: spec.port,
    user: spec.user,
    database: spec.database,
    // A function, so pg neither falls back to process.env.PGPASSWORD nor reads the password
    // file itself (pgferry already resolved both, with libpq's rules, from the given env).
    // Undefined on purpose when no password was found: pg then fails with "client password must
    // be a string", which describe() below turns into "none was given" with the fix.
    // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- see the line above
    password: async () => spec.password as string,
    ssl: attempt.tls ? withServerName(spec, attempt.options) : false,
    connectionTimeoutMillis: spec.connectTimeoutSeconds * 1000,
    keepAlive: spec.keepalives,
    keepAliveInitialDelayMillis: spec.keepalivesIdleSeconds * 1000,
    // Recognisable on the server as this run's, one session apart from the next (plumbing/own-sessions.ts).
    application_name: own.applicationName(spec.applicationName, spec.migration),
    ...(options === '' ? {} : { options }),
    ...(session.replication === undefined ? {} : { replication: session.replication === 'logical' ? 'database' : 'true' }),
  };
}

function withServerName(spec: ConnectionSpec, options: ConnectionOptions): ConnectionOptions {
  // With hostaddr the socket goes to an address, but the certificate is checked against host.
  if (spec.hostaddr !== undefined && options.servername === undefined && options.checkServerIdentity === undefined) {
    return { ...options, servername: spec.host };
  }
  return options;
}

/** prefer/allow fall back only when the other way might work, as libpq does. */
function worthFallingBack(error: unknown): boolean {
  const message = messageOf(error);
  if (message.includes(NO_SSL_ON_SERVER)) return true;
  // pg_hba.conf may only accept hostssl, or only hostnossl.
  return sqlState(error) === SQLSTATE.invalidAuthorizationSpecification;
}

interface ErrorShape {
  code?: string;
  message: string;
}

function connectionError(spec: ConnectionSpec, error: unknown, progress: Progress): PgferryError {
  const { code, message } = (error instanceof Error ? error : { message: String(error) }) as ErrorShape;
  const side = spec.side;
  const where = endpointOf(spec);
  const shown = describeConnection(spec);
  const fail = (what: string, fix: string) => new PgferryError('connection', `${side}: ${what}`, { side, fix, cause: error });

  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return fail(
        `host name "${spec.hostaddr ?? spec.host}" does not resolve`,
        `check the host in the ${side} connection string (${shown})`,
      );
    case 'ECONNREFUSED':
    case 'ENOENT':
      return fail(
        `nothing accepts connections at ${where}`,
        `check that the server is running, that the port is right, and that listen_addresses includes this address`,
      );
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return fail(`${where} cannot be reached (${code})`, `check the host, the network path and firewalls between here and the server`);
    case 'ECONNRESET':
      return fail(`${where} closed the connection during start-up`, `check that ${where} is a PostgreSQL server and look at its log`);
    case '28P01':
      return fail(
        `password authentication failed for user "${spec.user}" (password from ${spec.passwordSource})`,
        `check the password in the ${side} connection string, PGPASSWORD or the password file (~/.pgpass)`,
      );
    case '28000':
      return fail(
        `the server refused user "${spec.user}" on database "${spec.database}": ${message}`,
        `add a pg_hba.conf line for this client, user and database (or change sslmode if the server only accepts encrypted or unencrypted connections)`,
      );
    case '3D000':
      return fail(
        `database "${spec.database}" does not exist on ${where}`,
        `create it, or fix the database name in the ${side} connection string`,
      );
    case '53300':
      return fail(`${where} has no connection slots left (${message})`, `raise max_connections on the server or close idle sessions`);
    case '57P03':
      return fail(`${where} is starting up or shutting down`, `wait until the server accepts connections and run again`);
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
      return fail(
        `the server's TLS certificate is not signed by a trusted root (sslmode=${spec.sslmode})`,
        `set sslrootcert= to the CA certificate that signed it, or use sslmode=require to encrypt without verifying`,
      );
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return fail(
        `the server's TLS certificate does not name host "${spec.host}" (sslmode=verify-full)`,
        `connect with the host name the certificate was issued for, or use sslmode=verify-ca`,
      );
    case 'CERT_HAS_EXPIRED':
      return fail(`the server's TLS certificate has expired`, `renew the server certificate`);
  }
  if (message.includes('timeout') || message.includes('timed out')) {
    const seconds = spec.connectTimeoutSeconds;
    switch (progress) {
      case 'resolving':
        return fail(
          `host name "${spec.hostaddr ?? spec.host}" did not resolve within ${seconds} s`,
          `check the host in the ${side} connection string and that a DNS server is reachable from here, or raise connect_timeout`,
        );
      case 'connecting':
        return fail(
          `${where} did not accept a connection within ${seconds} s`,
          `check the host, the port, the network path and firewalls between here and the server, or raise connect_timeout`,
        );
      case 'negotiating':
        return fail(
          `no answer from ${where} within ${seconds} s`,
          `check that ${where} is a PostgreSQL server and reachable, or raise connect_timeout`,
        );
    }
  }
  if (message.includes(NO_SSL_ON_SERVER)) {
    return fail(
      `the server at ${where} does not accept TLS but sslmode=${spec.sslmode} requires it`,
      `enable ssl on the server, or lower sslmode`,
    );
  }
  if (message.includes('client password must be a string') || message.includes('password authentication failed')) {
    return fail(
      `the server asks user "${spec.user}" for a password and none was given`,
      `put the password in the ${side} connection string, PGPASSWORD or the password file (~/.pgpass)`,
    );
  }
  if (message.includes('Connection terminated unexpectedly')) {
    return fail(`${where} closed the connection during start-up`, `check that ${where} is a PostgreSQL server and look at its log`);
  }
  return fail(`cannot connect to ${shown}: ${message}`, `check the ${side} connection string and the server's log`);
}
