import { spawn, type ChildProcess } from 'node:child_process';
import { Socket } from 'node:net';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from '../log/index.js';
import { sleep } from '../plumbing/index.js';
import { PoolConsole } from './console.js';

/**
 * A paused pool must not outlive the cut-over that paused it, even one killed with SIGKILL,
 * which no handler sees. So the pause is watched from outside: a small process of its own
 * (`pgferry pgbouncer-watchdog`), detached, reading a pipe from the cut-over. The cut-over says
 * which pool, and says "released" once the pool is resumed (or its undo did it). If the pipe
 * closes without that, the cut-over died with the pool paused: the watchdog resumes it (every
 * pooled database the cut-over paused), wherever it points, so clients get on with an answer (an error from a frozen source, at worst) rather
 * than wait forever. The console's URL travels through the pipe, never the process list.
 */
export interface Watchdog {
  /** The pool is resumed: nothing left to watch. */
  release(): void;
}

const RELEASED = 'released';

/** How long the watchdog keeps trying to resume (PgBouncer may be restarting). */
const RESUME_WITHIN_MS = 30_000;

export function startWatchdog(admin: string, databases: readonly string[], log: Logger): Watchdog {
  const cli = process.env.PGFERRY_CLI_PATH ?? process.argv[1] ?? '';
  if (!/^pgferry(\.m?js)?$/.test(basename(cli))) {
    log.warn('not run from the pgferry command: no watchdog resumes PgBouncer if this process is killed while the pool is paused');
    return { release: () => undefined };
  }
  let child: ChildProcess | undefined;
  try {
    child = spawn(process.execPath, [cli, 'pgbouncer-watchdog'], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    child.on('error', () => undefined);
    child.stdin?.on('error', () => undefined);
    child.stdin?.write(`${JSON.stringify({ admin, databases })}\n`);
    child.unref();
    // Nor may the pipe keep this process alive once it is done (or failed).
    if (child.stdin instanceof Socket) child.stdin.unref();
  } catch (error) {
    log.warn({ error: String(error) }, 'could not start the watchdog that resumes PgBouncer should this process be killed');
  }
  return {
    release() {
      child?.stdin?.end(`${RELEASED}\n`);
    },
  };
}

/** The watchdog itself: reads the pool from stdin, and resumes it if stdin ends without "released". */
export async function runWatchdog(input: NodeJS.ReadableStream): Promise<number> {
  let pool: { admin: string; databases: string[] } | undefined;
  let released = false;
  for await (const line of createInterface({ input })) {
    if (pool === undefined) pool = parsePool(line);
    else if (line === RELEASED) released = true;
  }
  if (released || pool === undefined) return 0;
  const deadline = Date.now() + RESUME_WITHIN_MS;
  for (;;) {
    try {
      const console = await PoolConsole.open(pool.admin);
      try {
        for (const database of pool.databases) await console.resume(database);
        return 0;
      } finally {
        await console.close();
      }
    } catch {
      if (Date.now() > deadline) return 1;
      await sleep(500);
    }
  }
}

function parsePool(line: string): { admin: string; databases: string[] } {
  const value: unknown = JSON.parse(line);
  if (typeof value === 'object' && value !== null && 'admin' in value && 'databases' in value) {
    const { admin, databases } = value;
    if (typeof admin === 'string' && Array.isArray(databases) && databases.every((d): d is string => typeof d === 'string'))
      return { admin, databases };
  }
  throw new Error('pgbouncer-watchdog: the first line must say which pool to watch');
}
