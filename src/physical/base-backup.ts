import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionSpec } from '../config/index.js';
import { PgferryError } from '../errors.js';
import type { Logger } from '../log/index.js';
import { passwordFileLine, replicationConnectionString } from './conninfo.js';
import { backupApplicationName } from './slot.js';

/** How far pg_basebackup is, from its --progress line ("12345/67890 kB (18%), 0/1 tablespace"). */
export interface BackupProgress {
  readonly doneKb: number;
  readonly totalKb: number;
}

/** The last progress report in a chunk of pg_basebackup's standard error, if any. */
export function lastProgress(text: string): BackupProgress | undefined {
  let found: BackupProgress | undefined;
  for (const match of text.matchAll(/(\d+)\/(\d+) kB/g)) found = { doneKb: Number(match[1]), totalKb: Number(match[2]) };
  return found;
}

export interface BaseBackupOptions {
  readonly program: string;
  readonly source: ConnectionSpec;
  readonly pgdata: string;
  readonly slot: string;
  readonly logger: Logger;
  /** No progress for this long (after the checkpoint it starts with) ends the backup as stalled. */
  readonly stallMs: number;
  readonly signal?: AbortSignal;
}

export interface BaseBackupResult {
  readonly bytes: number;
  readonly seconds: number;
}

/**
 * Runs pg_basebackup into `pgdata`: a fast checkpoint, WAL streamed on a second connection
 * while the files are copied (so the copy is consistent whatever the source writes), through
 * the migration's slot. The password reaches it in a password file of its own (mode 0600,
 * removed after), never in its arguments. On failure pg_basebackup removes what it wrote.
 */
export async function runBaseBackup(options: BaseBackupOptions): Promise<BaseBackupResult> {
  const started = performance.now();
  const secrets = await mkdtemp(join(tmpdir(), 'pgferry-basebackup-'));
  try {
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', HOME: secrets };
    if (options.source.password !== undefined) {
      const passfile = join(secrets, 'pgpass');
      await writeFile(passfile, passwordFileLine(options.source, options.source.password), { mode: 0o600 });
      env.PGPASSFILE = passfile;
    }
    const args = [
      '--pgdata',
      options.pgdata,
      '--wal-method=stream',
      '--slot',
      options.slot,
      '--checkpoint=fast',
      '--progress',
      '--no-password',
      '--dbname',
      replicationConnectionString(options.source, { application_name: backupApplicationName(options.slot) }),
    ];
    const last = await watch(options, args, env);
    return { bytes: last.doneKb * 1024, seconds: (performance.now() - started) / 1000 };
  } finally {
    await rm(secrets, { recursive: true, force: true });
  }
}

/**
 * pg_basebackup must not outlive pgferry: killed, pgferry would leave it copying into a
 * directory nobody will use, holding the slot. Node ignores SIGPIPE and its children inherit
 * that, so a closed pipe does not stop it; util-linux's setpriv (in every Debian and most
 * Linux systems) asks the kernel to send it SIGTERM when its parent dies.
 */
function withParentDeathSignal(program: string, args: readonly string[]): string[] {
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => existsSync(path));
  return setpriv ? [setpriv, '--pdeathsig', 'SIGTERM', '--', program, ...args] : [program, ...args];
}

function watch(options: BaseBackupOptions, args: readonly string[], env: Record<string, string>): Promise<BackupProgress> {
  return new Promise((resolve, reject) => {
    const [program, ...rest] = withParentDeathSignal(options.program, args);
    const child = spawn(program!, rest, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let progress: BackupProgress = { doneKb: 0, totalKb: 0 };
    let lastMoved = Date.now();
    let lastLogged = 0;
    let messages = '';
    let stopped: string | undefined;
    child.stdout.resume();
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = chunk.split(/[\r\n]+/).filter((l) => l.trim() !== '');
      messages = [messages, ...lines.filter((l) => lastProgress(l) === undefined)].join('\n').slice(-4000);
      const now = lastProgress(chunk);
      if (now === undefined) return;
      if (now.doneKb !== progress.doneKb) lastMoved = Date.now();
      progress = now;
      if (Date.now() - lastLogged >= 2000) {
        lastLogged = Date.now();
        const percent = now.totalKb > 0 ? Math.floor((100 * now.doneKb) / now.totalKb) : 0;
        options.logger.info({ doneKb: now.doneKb, totalKb: now.totalKb, percent }, 'base backup');
      }
    });
    const stop = (why: string) => {
      stopped ??= why;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    };
    const stall = setInterval(() => {
      if (Date.now() - lastMoved > options.stallMs) stop(`no progress for ${Math.round(options.stallMs / 1000)} s`);
    }, 1000);
    const onAbort = () => stop('interrupted');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (error) => {
      clearInterval(stall);
      reject(new PgferryError('base-backup-failed', `could not run ${options.program}: ${error.message}`, { fix: 'check --pg-bin' }));
    });
    child.on('close', (code, signal) => {
      clearInterval(stall);
      options.signal?.removeEventListener('abort', onAbort);
      if (code === 0 && stopped === undefined) {
        resolve(progress);
        return;
      }
      const said = messages
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '')
        .slice(-3)
        .join('; ');
      reject(
        new PgferryError(
          stopped === 'interrupted' ? 'interrupted' : 'base-backup-failed',
          `pg_basebackup ${stopped ?? `exited ${code ?? signal}`}${said ? `: ${said}` : ''}`,
          {
            side: 'source',
            fix: 'run pgferry check --physical for what the source and this host lack, then sync --physical again (the slot is kept and reused)',
          },
        ),
      );
    });
  });
}
