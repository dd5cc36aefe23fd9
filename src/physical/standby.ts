import { execFile } from 'node:child_process';
import { appendFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { ConnectionSpec } from '../config/index.js';
import { messageOf, PgferryError } from '../errors.js';
import { passwordFileLine, replicationConnectionString } from './conninfo.js';
import type { CarriedSetting } from './carried-settings.js';
import { describeComplaint, startFailure } from './server-log.js';
import { standbyFiles } from './standby-config.js';

const run = promisify(execFile);

/** The password file the standby's WAL receiver reads, inside its data directory (mode 0600). */
export const STANDBY_PASSFILE = 'pgferry_primary.pgpass';
/** Where pg_ctl writes the server's output until its own logging takes over. */
export const STANDBY_START_LOG = 'pgferry_start.log';

/**
 * Turns the base backup into a standby of the source: the recovery settings for its version,
 * the slot, the port, and the password in a file only its owner reads.
 */
export async function configureStandby(
  /** Where the copy is now. */
  dir: string,
  /** Where it will run from (the password file's path in its settings). */
  pgdata: string,
  source: ConnectionSpec,
  settings: {
    readonly major: number;
    readonly slot: string;
    readonly port: number | undefined;
    readonly carried: readonly CarriedSetting[];
  },
): Promise<void> {
  const passfile = join(resolve(pgdata), STANDBY_PASSFILE);
  if (source.password !== undefined)
    await writeFile(join(dir, STANDBY_PASSFILE), passwordFileLine(source, source.password), { mode: 0o600 });
  const conninfo = replicationConnectionString(source, {
    application_name: settings.slot,
    ...(source.password === undefined ? {} : { passfile }),
  });
  for (const file of standbyFiles({
    major: settings.major,
    primaryConninfo: conninfo,
    slot: settings.slot,
    port: settings.port,
    carried: settings.carried,
  })) {
    const path = join(dir, file.name);
    if (file.append) await appendFile(path, `\n${file.content}`);
    else await writeFile(path, file.content, { mode: 0o600 });
  }
}

/** The command that starts the standby, for the service manager or a person. */
export function startCommand(pgCtl: string, pgdata: string): string[] {
  const dir = resolve(pgdata);
  return [pgCtl, '--pgdata', dir, '--log', join(dir, STANDBY_START_LOG), '--wait', '--timeout', '300', 'start'];
}

/**
 * Starts the standby with pg_ctl. When it does not start, the error carries the server's own
 * FATAL line with its DETAIL and HINT, read from what this attempt wrote to the start log (or
 * to the logging collector's file, when the copy's settings turn the collector on).
 */
export async function startStandby(pgCtl: string, pgdata: string): Promise<void> {
  const [program, ...args] = startCommand(pgCtl, pgdata);
  const startLog = join(resolve(pgdata), STANDBY_START_LOG);
  const offset = await stat(startLog).then(
    (s) => s.size,
    () => 0,
  );
  const since = Date.now();
  try {
    await run(program!, args, { timeout: 320_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' } });
  } catch (error) {
    const failure = await startFailure(resolve(pgdata), startLog, offset, since);
    const said =
      failure.complaint !== undefined
        ? describeComplaint(failure.complaint)
        : failure.lastLines || messageOf(error).split('\n').slice(-3).join('; ');
    throw new PgferryError('standby', `the standby in ${pgdata} did not start: ${said}`, {
      side: 'target',
      fix: `fix what the server says (the whole of it is in ${startLog}), then start it with: ${startCommand(pgCtl, pgdata).join(' ')}`,
      cause: error,
    });
  }
}
