import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  appendFileSync,
  chownSync,
  existsSync,
  mkdtempSync,
  openSync,
  closeSync,
  mkdirSync,
  readFileSync,
  renameSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import {
  debianInstallation,
  installation,
  unprivilegedUser,
  type DebianExtension,
  type Distribution,
  type Installation,
  type MajorVersion,
} from './binaries.js';
import { makeServerCertificate, type ServerCertificate } from './certificates.js';

export type Setting = string | number | boolean;

export interface ClusterOptions {
  readonly version: MajorVersion;
  /** postgresql.conf settings; `wal_level` defaults to `logical`. */
  readonly settings?: Readonly<Record<string, Setting>>;
  /**
   * Settings given as `-c name=value` on the postmaster's command line instead (as the official
   * Docker image and many service managers do): they override postgresql.conf, and a base
   * backup, which copies only the data directory, does not carry them.
   */
  readonly commandLine?: Readonly<Record<string, Setting>>;
  /**
   * Debian's layout: postgresql.conf and pg_hba.conf live in `<directory>/etc`, outside the data
   * directory, the postmaster given `-c config_file=…` and the configuration `hba_file`.
   */
  readonly configOutside?: boolean;
  /** Serve TLS with a self-signed certificate naming these hosts (made fresh by the harness). */
  readonly tlsHostNames?: readonly string[];
  /** Whose build of the server: npm's (the default) or Debian's, which has PostGIS and pg_partman. */
  readonly distribution?: Distribution;
  /**
   * Extensions the server must be able to create (Debian's only): checked before it starts, and
   * a missing one fails with the package to install.
   */
  readonly extensions?: readonly DebianExtension[];
}

const DIR_PREFIX = 'pgferry-test-';
const OWNER_FILE = 'owner.pid';
const SUPERUSER = 'postgres';
const START_TIMEOUT_MS = 60_000;

/** Settings that make a throwaway test server fast; durability is not under test here. */
const FAST_SETTINGS: Record<string, Setting> = {
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  max_connections: 60,
  shared_buffers: '64MB',
  max_wal_size: '1GB',
  log_min_messages: 'warning',
};

/** The ways `Cluster.restart` can stop the server before starting it again. */
export type RestartMode = 'fast' | 'immediate';

/** Options of `Cluster.url`; `host` and `port` point the URL elsewhere (a proxy, say). */
export interface UrlOptions {
  readonly user?: string;
  readonly password?: string | null;
  readonly host?: string;
  readonly port?: number;
  readonly params?: Record<string, string>;
}

const running = new Set<Cluster>();
let exitHookInstalled = false;

/** A real PostgreSQL server in a temporary directory, on a free port, owned by this test process. */
export class Cluster {
  readonly host = '127.0.0.1';
  readonly superuser = SUPERUSER;
  private databaseCounter = 0;

  constructor(
    readonly installation: Installation,
    readonly port: number,
    readonly password: string,
    readonly directory: string,
    readonly certificate: ServerCertificate | undefined,
    // Mutable: each restart spawns a new postmaster.
    private process: ChildProcess,
    private readonly commandLine: Readonly<Record<string, Setting>> = {},
  ) {}

  get version(): MajorVersion {
    return this.installation.major;
  }

  /** A postgres:// URL for `database`, as `user` (the superuser by default). */
  url(database = 'postgres', options: UrlOptions = {}): string {
    const user = options.user ?? this.superuser;
    const password = options.password === undefined ? this.password : options.password;
    const auth = password === null ? encodeURIComponent(user) : `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
    const query = new URLSearchParams({ sslmode: 'disable', ...options.params }).toString();
    return `postgres://${auth}@${options.host ?? this.host}:${options.port ?? this.port}/${encodeURIComponent(database)}?${query}`;
  }

  /** Runs `work` with a superuser session on `database`, closed afterwards. */
  async withClient<T>(database: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({
      host: this.host,
      port: this.port,
      user: this.superuser,
      password: this.password,
      database,
      connectionTimeoutMillis: 10_000,
    });
    // A session a cut-over's drain ends also emits 'error' once its query has failed with it (or
    // while it waits between queries): what failed is the query's rejection, not an uncaught event.
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  }

  /** Runs SQL as the superuser; several statements may be given when there are no parameters. */
  async sql(database: string, text: string, values?: unknown[]): Promise<pg.QueryResult> {
    return this.withClient(database, (client) => client.query(text, values));
  }

  /** A fresh, empty database for one test. */
  async createDatabase(options: { encoding?: string; collate?: string; ctype?: string; prefix?: string } = {}): Promise<string> {
    this.databaseCounter += 1;
    const name = `${options.prefix ?? 'db'}_${this.databaseCounter}_${randomBytes(3).toString('hex')}`;
    const clauses = ['TEMPLATE template0'];
    clauses.push(`ENCODING '${options.encoding ?? 'UTF8'}'`);
    clauses.push(`LC_COLLATE '${options.collate ?? 'C'}'`);
    clauses.push(`LC_CTYPE '${options.ctype ?? options.collate ?? 'C'}'`);
    await this.sql('postgres', `CREATE DATABASE ${name} ${clauses.join(' ')}`);
    return name;
  }

  /**
   * Stops the server and starts it again on the same port and data directory, returning once
   * it accepts connections. 'fast' is a clean shutdown (SIGINT: sessions ended, checkpoint
   * written); 'immediate' is a crash (SIGQUIT: no checkpoint, so the start-up replays WAL).
   * Either way every open session is ended. The harness runs with synchronous_commit off, so
   * an immediate restart may lose the last ~600 ms of commits: a test that needs a commit to
   * survive one must make that commit with synchronous_commit on.
   */
  async restart(mode: RestartMode): Promise<void> {
    if (!running.has(this)) throw new Error(`PostgreSQL ${this.version} on port ${this.port} is stopped; it cannot be restarted`);
    await stopProcess(this.process, mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
    // The cluster stays in `running` throughout, so an interrupted test still cleans it up.
    this.process = spawnPostgres(this.installation, this.directory, this.commandLine);
    await waitUntilReady(this, this.process);
  }

  /** Fast shutdown, then the directory is removed. Safe to call twice. */
  async stop(): Promise<void> {
    if (!running.has(this)) return;
    running.delete(this);
    await stopProcess(this.process);
    rmSync(this.directory, { recursive: true, force: true });
  }

  get logFile(): string {
    return join(this.directory, 'server.log');
  }
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  sweepAbandonedClusters();
  installExitHook();
  let lastError: unknown;
  // A free port can be taken by a parallel test file between our probe and the server's bind.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(options, await freePort());
    } catch (error) {
      lastError = error;
      if (!String(error).includes('could not bind') && !String(error).includes('Address already in use')) throw error;
    }
  }
  throw lastError;
}

/** Starts several clusters at once; if one fails, the others are stopped. */
export async function startClusters<const T extends readonly ClusterOptions[]>(list: T): Promise<{ -readonly [K in keyof T]: Cluster }> {
  const results = await Promise.allSettled(list.map((options) => startCluster(options)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(results.map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)));
    throw failed.reason;
  }
  return results.map((r) => (r as PromiseFulfilledResult<Cluster>).value) as { -readonly [K in keyof T]: Cluster };
}

/** The binaries a cluster with these options runs: asking npm's build for extensions is a mistake in the test. */
function installationFor(options: ClusterOptions): Installation {
  if ((options.distribution ?? 'npm') === 'debian') return debianInstallation(options.version, options.extensions);
  if (options.extensions?.length) {
    throw new Error(
      `extensions ${options.extensions.join(', ')} come with Debian's server only: start the cluster with distribution 'debian'`,
    );
  }
  return installation(options.version);
}

async function startOnce(options: ClusterOptions, port: number): Promise<Cluster> {
  const found = installationFor(options);
  const { binDir } = found;
  const runAs = unprivilegedUser();
  const directory = mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${options.version}-`));
  writeFileSync(join(directory, OWNER_FILE), String(process.pid));
  const dataDir = join(directory, 'data');
  const password = randomBytes(12).toString('base64url');
  const passwordFile = join(directory, 'pwfile');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  if (runAs) {
    chownSync(directory, runAs.uid, runAs.gid);
    chownSync(passwordFile, runAs.uid, runAs.gid);
  }
  const { env, spawnIdentity } = serverProcessOptions();
  const init = spawnSync(
    join(binDir, 'initdb'),
    [
      '-D',
      dataDir,
      '-U',
      SUPERUSER,
      `--pwfile=${passwordFile}`,
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
    ],
    { env, ...spawnIdentity, encoding: 'utf8', cwd: directory },
  );
  if (init.status !== 0) {
    rmSync(directory, { recursive: true, force: true });
    throw new Error(`initdb for PostgreSQL ${options.version} failed:\n${init.stderr}${init.stdout}`);
  }

  let certificate: ServerCertificate | undefined;
  const settings: Record<string, Setting> = {
    ...FAST_SETTINGS,
    wal_level: 'logical',
    // One address, the one the free-port probe checked; "localhost" may also mean ::1.
    listen_addresses: '127.0.0.1',
    port,
    unix_socket_directories: directory,
    ...options.settings,
  };
  if (options.tlsHostNames) {
    certificate = await makeServerCertificate(options.tlsHostNames);
    writeFileSync(join(dataDir, 'server.crt'), certificate.certificate);
    writeFileSync(join(dataDir, 'server.key'), certificate.privateKey, { mode: 0o600 });
    if (runAs) {
      chownSync(join(dataDir, 'server.crt'), runAs.uid, runAs.gid);
      chownSync(join(dataDir, 'server.key'), runAs.uid, runAs.gid);
    }
    Object.assign(settings, { ssl: 'on', ssl_cert_file: 'server.crt', ssl_key_file: 'server.key' });
  }
  appendFileSync(join(dataDir, 'postgresql.conf'), `\n# set by the pgferry test harness\n${formatSettings(settings)}`);
  const commandLine = { ...options.commandLine };
  if (options.configOutside) commandLine.config_file = moveConfigOutside(directory);

  const child = spawnPostgres(found, directory, commandLine);
  const cluster = new Cluster(found, port, password, directory, certificate, child, commandLine);
  running.add(cluster);
  try {
    await waitUntilReady(cluster, child);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

/** Moves postgresql.conf and pg_hba.conf to `<directory>/etc`; returns the configuration file's path. */
function moveConfigOutside(directory: string): string {
  const etc = join(directory, 'etc');
  mkdirSync(etc);
  for (const name of ['postgresql.conf', 'pg_hba.conf']) renameSync(join(directory, 'data', name), join(etc, name));
  appendFileSync(join(etc, 'postgresql.conf'), `\nhba_file = '${join(etc, 'pg_hba.conf')}'\n`);
  const runAs = unprivilegedUser();
  if (runAs) chownSync(etc, runAs.uid, runAs.gid);
  return join(etc, 'postgresql.conf');
}

/** How every server program runs: a fixed environment, as the unprivileged user when we are root. */
function serverProcessOptions(): { env: Record<string, string>; spawnIdentity: { uid?: number; gid?: number } } {
  const runAs = unprivilegedUser();
  return {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C', TZ: 'UTC' },
    spawnIdentity: runAs ? { uid: runAs.uid, gid: runAs.gid } : {},
  };
}

/** Starts the postmaster of the cluster in `directory`, appending its output to server.log. */
function spawnPostgres({ binDir }: Installation, directory: string, commandLine: Readonly<Record<string, Setting>>): ChildProcess {
  const runAs = unprivilegedUser();
  const { env, spawnIdentity } = serverProcessOptions();
  const logFile = join(directory, 'server.log');
  const logFd = openSync(logFile, 'a');
  try {
    if (runAs) chownSync(logFile, runAs.uid, runAs.gid);
    const settings = Object.entries(commandLine).flatMap(([name, value]) => ['-c', `${name}=${formatValue(value)}`]);
    return spawn(join(binDir, 'postgres'), ['-D', join(directory, 'data'), ...settings], {
      env,
      ...spawnIdentity,
      cwd: directory,
      stdio: ['ignore', logFd, logFd],
    });
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(logFd);
  }
}

function formatSettings(settings: Record<string, Setting>): string {
  return Object.entries(settings)
    .map(([name, value]) => `${name} = ${typeof value === 'string' ? `'${value.replace(/'/g, "''")}'` : formatValue(value)}`)
    .join('\n');
}

function formatValue(value: Setting): string {
  return value === true ? 'on' : value === false ? 'off' : String(value);
}

async function waitUntilReady(cluster: Cluster, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let exited = false;
  child.once('exit', () => (exited = true));
  while (Date.now() < deadline) {
    if (exited) throw new Error(`PostgreSQL ${cluster.version} exited at start-up:\n${tail(cluster.logFile)}`);
    try {
      await cluster.sql('postgres', 'SELECT 1');
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(
    `PostgreSQL ${cluster.version} did not accept connections within ${START_TIMEOUT_MS / 1000} s:\n${tail(cluster.logFile)}`,
  );
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '(no server log)';
  }
}

/**
 * SIGINT is PostgreSQL's fast shutdown: sessions are ended, nothing is waited for, a
 * checkpoint is written. SIGQUIT is its immediate shutdown: every process quits at once, as
 * in a crash. A server still there after 15 s gets the next harder signal.
 */
function stopProcess(child: ChildProcess, signal: 'SIGINT' | 'SIGQUIT' = 'SIGINT'): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const kill = setTimeout(() => child.kill(signal === 'SIGINT' ? 'SIGQUIT' : 'SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill(signal);
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** No test may leave a server behind, even when it fails or the runner is interrupted. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const cluster of running) {
      // Immediate shutdown: the process is exiting and cannot wait.
      killQuietly(cluster);
    }
  };
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
}

function killQuietly(cluster: Cluster): void {
  const pidFile = join(cluster.directory, 'data', 'postmaster.pid');
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (pid > 0) process.kill(pid, 'SIGQUIT');
  } catch {
    // Already gone.
  }
  rmSync(cluster.directory, { recursive: true, force: true });
}

/**
 * A test process killed with SIGKILL cannot clean up. The next harness to start stops any
 * server whose owning test process no longer exists, and removes its directory.
 */
export function sweepAbandonedClusters(): void {
  let entries: string[];
  try {
    entries = readdirSync(tmpdir()).filter((name) => name.startsWith(DIR_PREFIX));
  } catch {
    return;
  }
  for (const name of entries) {
    const directory = join(tmpdir(), name);
    const ownerFile = join(directory, OWNER_FILE);
    if (!existsSync(ownerFile)) continue;
    const owner = Number(readFileSync(ownerFile, 'utf8'));
    if (isAlive(owner)) continue;
    const pidFile = join(directory, 'data', 'postmaster.pid');
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
      if (pid > 0 && isAlive(pid)) {
        try {
          process.kill(pid, 'SIGQUIT');
        } catch {
          // Raced with its own exit.
        }
      }
    }
    rmSync(directory, { recursive: true, force: true });
  }
}

export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // Under an init that doesn't reap, a killed server lingers as a zombie: that is gone too.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}
