import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installation, unprivilegedUser, type MajorVersion } from './binaries.js';

/**
 * Physical mode's binaries for one major version in one directory: pg_basebackup from Debian's
 * client package (npm's servers ship none; .ci/run installs postgresql-client-15), pg_ctl and
 * postgres from npm's server. A missing pg_basebackup fails the test loudly.
 */
export function physicalBinDir(major: MajorVersion): string {
  const basebackup = `/usr/lib/postgresql/${major}/bin/pg_basebackup`;
  if (!existsSync(basebackup)) {
    throw new Error(`${basebackup} is missing: install Debian's postgresql-client-${major} (.ci/run does for 15)`);
  }
  const dir = mkdtempSync(join(tmpdir(), `pgferry-pgbin${major}-`));
  chmodSync(dir, 0o755);
  const { binDir } = installation(major);
  symlinkSync(basebackup, join(dir, 'pg_basebackup'));
  symlinkSync(join(binDir, 'pg_ctl'), join(dir, 'pg_ctl'));
  symlinkSync(join(binDir, 'postgres'), join(dir, 'postgres'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A directory the server account owns, for data directories it makes. */
export function serverUserDirectory(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const runAs = unprivilegedUser();
  if (runAs) chownSync(dir, runAs.uid, runAs.gid);
  return dir;
}

/** Stops a server pg_ctl started (fast, or immediate as a crash would), as the server account. */
export function stopServer(pgBin: string, pgdata: string, mode: 'fast' | 'immediate'): void {
  const runAs = unprivilegedUser();
  execFileSync(join(pgBin, 'pg_ctl'), ['--pgdata', pgdata, '--mode', mode, '--wait', 'stop'], {
    ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    stdio: 'ignore',
    timeout: 60_000,
  });
}

/** Starts it again, as the server account. */
export function startServer(pgBin: string, pgdata: string): void {
  const runAs = unprivilegedUser();
  execFileSync(join(pgBin, 'pg_ctl'), ['--pgdata', pgdata, '--log', join(pgdata, 'pgferry_start.log'), '--wait', 'start'], {
    ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    stdio: 'ignore',
    timeout: 120_000,
  });
}
