import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import { usageError, type Side } from '../errors.js';
import { parseConnectionString, type ConnectionParams } from './connection-string.js';
import { lookupPassword } from './password-file.js';
import { DEFAULT_PEER_TIMEOUT_MS, SSL_MODES, type ConnectionSpec, type PasswordSource, type SslMode } from './connection-spec.js';
import { registerSecret } from './secrets.js';

type Env = Readonly<Record<string, string | undefined>>;

/** The libpq environment variables, by the parameter each one supplies when the string leaves it out. */
const ENVIRONMENT: ReadonlyArray<[keyof ConnectionParams, string]> = [
  ['host', 'PGHOST'],
  ['hostaddr', 'PGHOSTADDR'],
  ['port', 'PGPORT'],
  ['dbname', 'PGDATABASE'],
  ['user', 'PGUSER'],
  ['password', 'PGPASSWORD'],
  ['sslmode', 'PGSSLMODE'],
  ['sslrootcert', 'PGSSLROOTCERT'],
  ['sslcert', 'PGSSLCERT'],
  ['sslkey', 'PGSSLKEY'],
  ['connect_timeout', 'PGCONNECT_TIMEOUT'],
  ['application_name', 'PGAPPNAME'],
  ['options', 'PGOPTIONS'],
];

const DEFAULT_CONNECT_TIMEOUT_SECONDS = 10;
/**
 * libpq leaves the first keepalive probe to the system (two hours on Linux). pgferry's sessions
 * live for days and sit idle for long stretches (the walsender during a long copy), behind NATs
 * and load balancers that forget idle flows after a few minutes: probe after a minute.
 */
const DEFAULT_KEEPALIVES_IDLE_SECONDS = 60;
const SIDE_VARIABLE: Record<Side, string> = { source: 'PGFERRY_SOURCE', target: 'PGFERRY_TARGET' };

/**
 * Resolves one side's connection as libpq users expect: the `--source`/`--target` value, else
 * PGFERRY_SOURCE/PGFERRY_TARGET; parameters it leaves out come from the PG* variables, then
 * libpq's defaults; a missing password is looked up in the password file (PGPASSFILE or
 * ~/.pgpass).
 */
export async function resolveConnection(side: Side, given: string | undefined, env: Env = process.env): Promise<ConnectionSpec> {
  const text = given ?? env[SIDE_VARIABLE[side]];
  if (text === undefined || text.trim() === '') {
    throw usageError(`no ${side} database given`, `pass --${side} postgres://user@host:5432/dbname or set ${SIDE_VARIABLE[side]}`);
  }
  const params = parseConnectionString(text, side);
  registerSecret(params.password);

  const fromEnv = (key: keyof ConnectionParams): string | undefined => {
    const variable = ENVIRONMENT.find(([k]) => k === key)?.[1];
    const value = variable === undefined ? undefined : env[variable];
    return value === '' ? undefined : value;
  };
  // libpq treats an empty value like a missing one: dbname='' means the default database.
  const pick = (key: keyof ConnectionParams) => (params[key] === '' ? undefined : params[key]) ?? fromEnv(key);

  const port = parsePort(pick('port') ?? '5432', side);
  const user = pick('user') ?? osUser();
  const database = pick('dbname') ?? user;
  const givenHost = pick('host');
  const hostaddr = pick('hostaddr');
  // libpq: with only hostaddr, that address is the host for the password file and messages.
  const host = givenHost ?? hostaddr ?? defaultHost(port);
  const sslmode = parseSslMode(pick('sslmode') ?? 'prefer', side);
  const connectTimeoutSeconds = parseTimeout(pick('connect_timeout'), side);

  let password: string | undefined = params.password;
  let passwordSource: PasswordSource = password === undefined ? 'none' : 'connection string';
  if (password === undefined && fromEnv('password') !== undefined) {
    password = fromEnv('password');
    passwordSource = 'PGPASSWORD';
  }
  if (password === undefined) {
    const hostIsDefaultSocket = givenHost === undefined && host.startsWith('/');
    password = lookupPassword({ host, port, database, user, hostIsDefaultSocket }, env, (message) =>
      process.stderr.write(`pgferry: warning: ${message}\n`),
    );
    if (password !== undefined) passwordSource = 'password file';
  }
  registerSecret(password);
  // keepalives_interval and keepalives_count are checked as libpq would, and otherwise left:
  // Node.js's runtime (libuv) fixes them at 1 s and 10 probes on every socket it keeps alive.
  parseSeconds(pick('keepalives_interval'), 'keepalives_interval', 1, side);
  parseSeconds(pick('keepalives_count'), 'keepalives_count', 10, side);

  return {
    side,
    host,
    hostaddr,
    port,
    database,
    user,
    password,
    passwordSource,
    sslmode,
    sslrootcert: pick('sslrootcert'),
    sslcert: pick('sslcert'),
    sslkey: pick('sslkey'),
    connectTimeoutSeconds,
    applicationName: pick('application_name') ?? 'pgferry',
    options: pick('options'),
    keepalives: parseFlag(pick('keepalives') ?? '1', 'keepalives', side),
    keepalivesIdleSeconds: parseSeconds(pick('keepalives_idle'), 'keepalives_idle', DEFAULT_KEEPALIVES_IDLE_SECONDS, side),
    peerTimeoutMs: DEFAULT_PEER_TIMEOUT_MS,
  };
}

function parseFlag(text: string, keyword: string, side: Side): boolean {
  if (text === '1') return true;
  if (text === '0') return false;
  throw usageError(`${side} ${keyword} "${text}" is not 0 or 1`, `use ${keyword}=1 (on) or ${keyword}=0 (off)`);
}

function parseSeconds(text: string | undefined, keyword: string, fallback: number, side: Side): number {
  if (text === undefined) return fallback;
  const seconds = Number(text);
  if (!Number.isInteger(seconds) || seconds < 0) {
    throw usageError(`${side} ${keyword} "${text}" is not a whole number of seconds`, `use a whole number such as ${keyword}=${fallback}`);
  }
  return seconds === 0 ? fallback : seconds;
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'postgres';
  }
}

/** libpq's default is the Unix socket directory it was built with; use it when a server listens there. */
function defaultHost(port: number): string {
  for (const dir of ['/var/run/postgresql', '/tmp']) {
    if (existsSync(`${dir}/.s.PGSQL.${port}`)) return dir;
  }
  return 'localhost';
}

function parsePort(text: string, side: Side): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw usageError(`${side} port "${text}" is not a port number`, 'use a number between 1 and 65535, such as 5432');
  }
  return port;
}

function parseSslMode(text: string, side: Side): SslMode {
  const mode = SSL_MODES.find((m) => m === text);
  if (mode === undefined) {
    throw usageError(`${side} sslmode "${text}" is not one libpq knows`, `use one of ${SSL_MODES.join(', ')}`);
  }
  return mode;
}

function parseTimeout(text: string | undefined, side: Side): number {
  if (text === undefined) return DEFAULT_CONNECT_TIMEOUT_SECONDS;
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw usageError(`${side} connect_timeout "${text}" is not a number of seconds`, 'use a whole number of seconds, such as 10');
  }
  // libpq treats 0 as "wait forever" and values below 2 as 2.
  return seconds === 0 ? 0 : Math.max(2, Math.trunc(seconds));
}
