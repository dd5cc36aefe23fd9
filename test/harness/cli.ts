import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { unprivilegedUser } from './binaries.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../../bin/pgferry.js', import.meta.url));
/** A home without ~/.pgpass or ~/.postgresql, so the developer's own files never change a result. */
const EMPTY_HOME = mkdtempSync(join(tmpdir(), 'pgferry-home-'));
process.on('exit', () => rmSync(EMPTY_HOME, { recursive: true, force: true }));

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the real `pgferry` executable the way a user does: its own process, no TTY, no stdin,
 * and only the environment given (plus PATH and an empty HOME), so the caller's PG* variables
 * never leak in.
 */
export function runPgferry(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<CliResult> {
  return runPgferryWith(args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: EMPTY_HOME, ...env } }, timeoutMs);
}

/**
 * Runs pgferry as the account the test servers run as (when we are root; else as ourselves):
 * for commands that run PostgreSQL's own programs on a data directory, which refuse root.
 */
export function runPgferryAsServerUser(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<CliResult> {
  const runAs = unprivilegedUser();
  return runPgferryWith(
    args,
    {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: serverUserHome(), ...env },
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
    },
    timeoutMs,
  );
}

let serverHome: string | undefined;
function serverUserHome(): string {
  if (serverHome) return serverHome;
  const home = mkdtempSync(join(tmpdir(), 'pgferry-server-home-'));
  const runAs = unprivilegedUser();
  if (runAs) chownSync(home, runAs.uid, runAs.gid);
  process.on('exit', () => rmSync(home, { recursive: true, force: true }));
  serverHome = home;
  return home;
}

function runPgferryWith(
  args: readonly string[],
  options: { env: Record<string, string>; uid?: number; gid?: number },
  timeoutMs: number,
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

/** A long-running pgferry (sync, migrate) in its own process, with its output collected. */
export interface PgferryProcess {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (128 + n for a signal) once the process is gone. */
  exited(): Promise<number>;
}

/** Spawned processes still running: a test that fails before stopping its own must not leave them behind. */
const live = new Map<ChildProcess, string>();

export function spawnPgferry(args: readonly string[], env: Record<string, string> = {}): PgferryProcess {
  return spawnPgferryWith(args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: EMPTY_HOME, ...env } });
}

/** spawnPgferry as the account the test servers run as (see runPgferryAsServerUser). */
export function spawnPgferryAsServerUser(args: readonly string[], env: Record<string, string> = {}): PgferryProcess {
  const runAs = unprivilegedUser();
  return spawnPgferryWith(args, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: serverUserHome(), ...env },
    ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
  });
}

function spawnPgferryWith(args: readonly string[], options: { env: Record<string, string>; uid?: number; gid?: number }): PgferryProcess {
  const child = spawn(process.execPath, [BIN, ...args], { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  live.set(child, `pgferry ${args[0] ?? ''}`);
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exit = new Promise<number>((resolve) =>
    child.once('close', (code, signal) => {
      live.delete(child);
      resolve(code ?? (signal ? 128 : 1));
    }),
  );
  return { child, output: () => output, exited: () => exit };
}

/**
 * Kills what spawnPgferry started and nobody stopped, and says which: called as a describe
 * block's servers are stopped, so a sync left by a failed test (retrying against servers that
 * are gone, as it should) cannot keep the test file from ending.
 */
export function killStrayPgferry(): void {
  const strays = [...live.entries()].filter(([child]) => child.exitCode === null && child.signalCode === null);
  for (const [child] of strays) child.kill('SIGKILL');
  if (strays.length > 0) process.stderr.write(`harness: killed ${strays.map(([, what]) => what).join(', ')} left running by a test\n`);
}
