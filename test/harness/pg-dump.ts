import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Cluster } from './cluster.js';

/**
 * The schema copy's first oracle is pg_dump itself, and one pg_dump version must read both
 * sides: 15 is the version CI installs (Debian's postgresql-client-15). npm ships servers
 * but no pg_dump, so this one comes from the system.
 */
export const PG_DUMP_MAJOR = 15;

const DEBIAN_PATH = `/usr/lib/postgresql/${PG_DUMP_MAJOR}/bin/pg_dump`;
const INSTALL_HINT =
  `install Debian's postgresql-client-${PG_DUMP_MAJOR} (as root: DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql-client-${PG_DUMP_MAJOR}; ` +
  `.ci/run does this when ${DEBIAN_PATH} is missing), or set PGFERRY_PG_DUMP to a PostgreSQL ${PG_DUMP_MAJOR} pg_dump`;
/** A home without ~/.pgpass or ~/.pg_service.conf, so the developer's own files never change a dump. */
const EMPTY_HOME = mkdtempSync(join(tmpdir(), 'pgferry-pgdump-home-'));

export interface PgDump {
  readonly path: string;
  /** What `pg_dump --version` printed, e.g. "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)". */
  readonly version: string;
}

let found: PgDump | undefined;

/**
 * Finds a PostgreSQL 15 pg_dump: $PGFERRY_PG_DUMP, else Debian's path, else `pg_dump` on PATH
 * when it is version 15. Throws, naming how to install one, when there is none: a missing
 * oracle must fail the suite, never let it pass without comparing anything.
 */
export function findPgDump(): PgDump {
  if (found) return found;
  const fromEnv = process.env.PGFERRY_PG_DUMP;
  if (fromEnv) {
    // Asked for explicitly: a wrong one is an error, not a reason to look elsewhere.
    const version = versionOf(fromEnv);
    if (version === undefined || majorOf(version) !== PG_DUMP_MAJOR) {
      throw new Error(
        `PGFERRY_PG_DUMP=${fromEnv} is not a PostgreSQL ${PG_DUMP_MAJOR} pg_dump (${version ?? 'it does not run'}); ${INSTALL_HINT}`,
      );
    }
    return (found = { path: fromEnv, version });
  }
  const tried: string[] = [];
  for (const candidate of [DEBIAN_PATH, 'pg_dump']) {
    if (candidate.startsWith('/') && !existsSync(candidate)) {
      tried.push(`${candidate}: not there`);
      continue;
    }
    const version = versionOf(candidate);
    if (version !== undefined && majorOf(version) === PG_DUMP_MAJOR) return (found = { path: candidate, version });
    tried.push(`${candidate}: ${version ?? 'not found'}`);
  }
  throw new Error(`no PostgreSQL ${PG_DUMP_MAJOR} pg_dump found (${tried.join('; ')}); ${INSTALL_HINT}`);
}

function versionOf(command: string): string | undefined {
  const result = spawnSync(command, ['--version'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  if (result.status !== 0) return undefined;
  return result.stdout.trim();
}

function majorOf(version: string): number | undefined {
  const match = /\(PostgreSQL\)\s+(\d+)/.exec(version);
  return match ? Number(match[1]) : undefined;
}

/**
 * `pg_dump --schema-only --no-owner --no-privileges` of one database, as text (with `owners`,
 * ownership and privileges are kept).
 */
export function dumpSchema(
  cluster: Cluster,
  database: string,
  extraArgs: readonly string[] = [],
  options: { readonly owners?: boolean } = {},
): Promise<string> {
  const pgDump = findPgDump();
  const args = [
    '--schema-only',
    ...(options.owners === true ? [] : ['--no-owner', '--no-privileges']),
    `--host=${cluster.host}`,
    `--port=${cluster.port}`,
    `--username=${cluster.superuser}`,
    '--no-password',
    ...extraArgs,
    database,
  ];
  return runDumpTool(pgDump.path, args, cluster, `database ${database}`);
}

/**
 * `pg_dumpall --globals-only` of an instance (roles with their password verifiers, memberships,
 * role settings, tablespaces): the oracle for what a whole-server migration carries besides the
 * databases. pg_dumpall lies beside the pg_dump found above.
 */
export function dumpGlobals(cluster: Cluster): Promise<string> {
  const pgDumpall = join(dirname(findPgDump().path), 'pg_dumpall');
  const args = ['--globals-only', `--host=${cluster.host}`, `--port=${cluster.port}`, `--username=${cluster.superuser}`, '--no-password'];
  return runDumpTool(pgDumpall, args, cluster, 'the globals');
}

/** Runs pg_dump or pg_dumpall against `cluster` and returns what it printed. The password
 * travels in PGPASSWORD, never on the command line where `ps` would show it; the rest of the
 * environment is left out so the caller's PG* variables cannot point the dump elsewhere. */
function runDumpTool(path: string, args: readonly string[], cluster: Cluster, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: EMPTY_HOME,
        PGPASSWORD: cluster.password,
        PGSSLMODE: 'disable',
        PGCONNECT_TIMEOUT: '10',
        LC_ALL: 'C',
        TZ: 'UTC',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`${path} of ${what} on PostgreSQL ${cluster.version} exited ${code ?? signal}:\n${stderr}`));
    });
  });
}
