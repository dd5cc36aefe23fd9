/**
 * PgBouncer for tests and benchmarks: Debian's binary (`.ci/run` installs it when absent), run
 * as the same unprivileged account as the PostgreSQL servers, in front of one database of a
 * cluster, with SCRAM logins for the application and the admin console. Its configuration file
 * is what pgferry's `--pgbouncer-ini` rewrites at a cut-over.
 */
import { execFile, spawn, type ChildProcess, type PromiseWithChild } from 'node:child_process';
import { promisify } from 'node:util';
import { chownSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { unprivilegedUser } from './binaries.js';
import { freePort, type Cluster } from './cluster.js';

export const PGBOUNCER_BINARY = '/usr/sbin/pgbouncer';

export interface Bouncer {
  readonly port: number;
  readonly ini: string;
  /** The console, as pgferry's --pgbouncer takes it. */
  readonly adminUrl: string;
  /** A client URL through the pool for `database` (as the cluster's superuser). */
  url(database: string): string;
  /** Runs one console command (simple protocol) and returns its rows. */
  admin<T extends pg.QueryResultRow>(command: string): Promise<T[]>;
  log(): string;
  stop(): Promise<void>;
}

export interface BouncerOptions {
  readonly poolMode?: 'transaction' | 'session';
  /** The admin console password (the superuser's own by default); a test of a wrong one changes the URL only. */
  readonly adminPassword?: string;
  /** More logins (name → password), for application roles that exist with the same password on both servers. */
  readonly users?: Readonly<Record<string, string>>;
  /** More [pgbouncer] settings, or other values for the harness's own (min_pool_size, server_login_retry, …). */
  readonly settings?: Readonly<Record<string, string>>;
}

/**
 * Starts PgBouncer with a pooled database for `databases` (one or several, each of the same name)
 * pointing at `cluster`. Fails loudly when PgBouncer is not installed.
 */
export async function startPgbouncer(
  cluster: Cluster,
  databases: string | readonly string[],
  options: BouncerOptions = {},
): Promise<Bouncer> {
  if (!existsSync(PGBOUNCER_BINARY))
    throw new Error(`PgBouncer is not installed (${PGBOUNCER_BINARY}): apt-get install pgbouncer (.ci/run does it)`);
  const runAs = unprivilegedUser();
  const directory = mkdtempSync(join(tmpdir(), 'pgferry-bouncer-'));
  const port = await freePort();
  const ini = join(directory, 'pgbouncer.ini');
  const users = join(directory, 'userlist.txt');
  const logFile = join(directory, 'pgbouncer.log');
  const logins = { [cluster.superuser]: cluster.password, ...options.users };
  writeFileSync(
    users,
    Object.entries(logins)
      .map(([name, password]) => `"${name}" "${password}"\n`)
      .join(''),
    { mode: 0o600 },
  );
  writeFileSync(
    ini,
    [
      '[databases]',
      ...(typeof databases === 'string' ? [databases] : databases).map(
        (database) => `${database} = host=${cluster.host} port=${cluster.port} dbname=${database} pool_size=20`,
      ),
      '',
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = scram-sha-256',
      `auth_file = ${users}`,
      `admin_users = ${cluster.superuser}`,
      `pool_mode = ${options.poolMode ?? 'transaction'}`,
      'max_client_conn = 200',
      'default_pool_size = 20',
      `server_login_retry = ${options.settings?.server_login_retry ?? '1'}`,
      ...Object.entries(options.settings ?? {})
        .filter(([key]) => key !== 'server_login_retry')
        .map(([key, value]) => `${key} = ${value}`),
      'ignore_startup_parameters = extra_float_digits',
      `logfile = ${logFile}`,
      `pidfile = ${join(directory, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  if (runAs) for (const path of [directory, ini, users]) chownSync(path, runAs.uid, runAs.gid);
  const out = openSync(join(directory, 'stdout.log'), 'a');
  const child: ChildProcess = spawn(PGBOUNCER_BINARY, [ini], {
    ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    stdio: ['ignore', out, out],
    cwd: directory,
  });
  const adminUrl = `postgres://${cluster.superuser}:${encodeURIComponent(options.adminPassword ?? cluster.password)}@127.0.0.1:${port}/pgbouncer`;
  const admin = async <T extends pg.QueryResultRow>(command: string): Promise<T[]> => {
    const client = new pg.Client({
      connectionString: `postgres://${cluster.superuser}:${encodeURIComponent(cluster.password)}@127.0.0.1:${port}/pgbouncer`,
    });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return (await client.query<T>(command)).rows;
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await admin('SHOW VERSION');
      break;
    } catch (error) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`PgBouncer did not start: ${String(error)}\n${readLog(logFile)}${readLog(join(directory, 'stdout.log'))}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    port,
    ini,
    adminUrl,
    url: (db) => `postgres://${cluster.superuser}:${encodeURIComponent(cluster.password)}@127.0.0.1:${port}/${db}`,
    admin,
    log: () => readLog(logFile),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGINT');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

function readLog(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Debian's pgbench (postgresql-client-15, which .ci/run installs). */
export const PGBENCH = '/usr/lib/postgresql/15/bin/pgbench';

/**
 * pgbench as the application: `clients` (4 by default) through the pool for `seconds`, as
 * `login`, at a steady `rate` transactions/s, or as fast as they can when no rate is given. With
 * `logPrefix`, each transaction's latency is logged (pgbench -l) under that prefix. Resolves
 * with its output (it fails when a client aborts); its process is the promise's `child`.
 */
export function pgbenchThroughPool(
  bouncer: Bouncer,
  db: string,
  login: { readonly user: string; readonly password: string },
  {
    seconds,
    rate,
    clients = 4,
    logPrefix,
  }: { readonly seconds: number; readonly rate?: number; readonly clients?: number; readonly logPrefix?: string },
): PromiseWithChild<{ stdout: string; stderr: string }> {
  const args = [
    '-n',
    '-c',
    String(clients),
    '-j',
    '2',
    '-T',
    String(seconds),
    ...(rate === undefined ? [] : ['-R', String(rate)]),
    ...(logPrefix === undefined ? [] : ['-l', '--log-prefix', logPrefix]),
    '-h',
    '127.0.0.1',
    '-p',
    String(bouncer.port),
    '-U',
    login.user,
    db,
  ];
  return promisify(execFile)(PGBENCH, args, { env: { ...process.env, PGPASSWORD: login.password }, maxBuffer: 16 * 1024 * 1024 });
}

/** A query through the pool, as the application: which server (by port) answers. */
export async function servedBy(bouncer: Bouncer, db: string, login: { readonly user: string; readonly password: string }): Promise<number> {
  const client = new pg.Client({ host: '127.0.0.1', port: bouncer.port, database: db, user: login.user, password: login.password });
  await client.connect();
  try {
    return Number((await client.query<{ port: number }>(`SELECT current_setting('port')::int AS port`)).rows[0]!.port);
  } finally {
    await client.end();
  }
}
