import { spawn, type ChildProcess } from 'node:child_process';
import { Socket } from 'node:net';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from '../log/index.js';
import { sleep } from '../plumbing/index.js';
import { PoolConfigFile } from './config-file.js';
import { PoolConsole } from './console.js';

/**
 * A paused pool must not outlive the cut-over that paused it, even one killed with SIGKILL,
 * which no handler sees. So the pause is watched from outside: a small process of its own
 * (`pgferry pgbouncer-watchdog`), detached, reading a pipe from the cut-over. The cut-over says
 * which pool and what its file held, says "target" once the target is ready for the clients,
 * and "released" once the pool is resumed (or its undo did it). If the pipe closes without that,
 * the cut-over died with the pool paused: the watchdog puts the file back as it was (the switch
 * points the pool at the target early in the pause, before the target is ready) unless the
 * target was ready, reloads, and resumes every pooled database the cut-over paused, so clients
 * get on with an answer (an error from a frozen source, at worst) rather than wait forever. The
 * console's URL and the file's text travel through the pipe, never the process list.
 */
export interface Watchdog {
  /** The target is ready for the clients: should this process die now, the pool is resumed where it points. */
  targetReady(): void;
  /** The pool is resumed: nothing left to watch. */
  release(): void;
}

/** What the watchdog is told first: which pool, and the file to put back. */
interface Watched {
  readonly admin: string;
  readonly databases: readonly string[];
  readonly ini: string;
  readonly original: string;
}

const TARGET_READY = 'target';
const RELEASED = 'released';

/** How long the watchdog keeps trying to resume (PgBouncer may be restarting). */
const RESUME_WITHIN_MS = 30_000;

export function startWatchdog(watched: Watched, log: Logger): Watchdog {
  const cli = process.env.PGFERRY_CLI_PATH ?? process.argv[1] ?? '';
  if (!/^pgferry(\.m?js)?$/.test(basename(cli))) {
    log.warn('not run from the pgferry command: no watchdog resumes PgBouncer if this process is killed while the pool is paused');
    return { targetReady: () => undefined, release: () => undefined };
  }
  let child: ChildProcess | undefined;
  try {
    child = spawn(process.execPath, [cli, 'pgbouncer-watchdog'], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    child.on('error', () => undefined);
    child.stdin?.on('error', () => undefined);
    child.stdin?.write(`${JSON.stringify(watched)}\n`);
    child.unref();
    // Nor may the pipe keep this process alive once it is done (or failed).
    if (child.stdin instanceof Socket) child.stdin.unref();
  } catch (error) {
    log.warn({ error: String(error) }, 'could not start the watchdog that resumes PgBouncer should this process be killed');
  }
  return {
    targetReady() {
      child?.stdin?.write(`${TARGET_READY}\n`);
    },
    release() {
      child?.stdin?.end(`${RELEASED}\n`);
    },
  };
}

/**
 * The watchdog itself: reads the pool from stdin; if stdin ends without "released", puts the
 * file back (unless the target was ready) and resumes the pool.
 */
export async function runWatchdog(input: NodeJS.ReadableStream): Promise<number> {
  let pool: Watched | undefined;
  let targetReady = false;
  let released = false;
  for await (const line of createInterface({ input })) {
    if (pool === undefined) pool = parsePool(line);
    else if (line === TARGET_READY) targetReady = true;
    else if (line === RELEASED) released = true;
  }
  if (released || pool === undefined) return 0;
  const file = new PoolConfigFile(pool.ini);
  let reload = false;
  const deadline = Date.now() + RESUME_WITHIN_MS;
  for (;;) {
    try {
      if (!targetReady && file.read() !== pool.original) {
        file.replace(pool.original);
        reload = true;
      }
      const console = await PoolConsole.open(pool.admin);
      try {
        if (reload) await console.reload();
        // As the switch's own RESUME does (switch.ts, lift): no wait for server_login_retry.
        const retry = await console.setting('server_login_retry');
        if (retry !== undefined) await console.set('server_login_retry', '0');
        for (const database of pool.databases) await console.resume(database);
        if (retry !== undefined) await console.set('server_login_retry', retry).catch(() => undefined);
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

function parsePool(line: string): Watched {
  const value: unknown = JSON.parse(line);
  if (typeof value === 'object' && value !== null && 'admin' in value && 'databases' in value && 'ini' in value && 'original' in value) {
    const { admin, databases, ini, original } = value;
    if (
      typeof admin === 'string' &&
      typeof ini === 'string' &&
      typeof original === 'string' &&
      Array.isArray(databases) &&
      databases.every((d): d is string => typeof d === 'string')
    )
      return { admin, databases, ini, original };
  }
  throw new Error('pgbouncer-watchdog: the first line must say which pool to watch');
}
