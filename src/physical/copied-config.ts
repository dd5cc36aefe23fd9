import { execFile } from 'node:child_process';
import { access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { messageOf } from '../errors.js';

const run = promisify(execFile);

/** What the copied configuration gives for each setting asked, and why it could not be read if it could not. */
export interface CopiedConfig {
  readonly values: ReadonlyMap<string, string | undefined>;
  /** The server's complaint when it cannot read the copy's configuration at all (an include this host lacks, say). */
  readonly unreadable: string | undefined;
}

/**
 * Asks the standby's own server program what the copy's configuration files give, as it will
 * read them on this host: `postgres -C name` reads postgresql.conf, its includes and
 * postgresql.auto.conf without starting anything, and prints the value as pg_settings.setting
 * does. One setting per run. A setting the copy does not know (a module's, not loaded) is
 * undefined; so is every one when the configuration cannot be read.
 */
export async function readCopiedConfig(postgres: string, dir: string, names: readonly string[]): Promise<CopiedConfig> {
  const values = new Map<string, string | undefined>();
  let unreadable: string | undefined;
  for (const name of names) {
    try {
      const { stdout } = await run(postgres, ['-D', dir, '-C', name], {
        timeout: 30_000,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
      });
      values.set(name, stdout.replace(/\n$/, ''));
    } catch (error) {
      values.set(name, undefined);
      const said: unknown = error instanceof Error && 'stderr' in error ? error.stderr : undefined;
      const text = typeof said === 'string' && said.trim() !== '' ? said.trim() : messageOf(error);
      // An unknown name is that name's business; anything else is the configuration's.
      if (!/unrecognized configuration parameter/.test(text)) unreadable ??= text.split('\n').slice(0, 3).join('; ');
    }
  }
  return { values, unreadable };
}

/** Marks the postgresql.conf pgferry makes when the copy has none. */
export const MADE_CONFIG_FILE =
  "# made by pgferry sync --physical: the source's postgresql.conf lies outside its data directory, so the base backup holds none; the settings it gave the source are in postgresql.auto.conf";

/**
 * A source whose postgresql.conf lies outside its data directory (Debian's /etc/postgresql)
 * leaves a copy without one, and a server does not start without one. An empty one lets it
 * start on postgresql.auto.conf, where the source's settings are carried. True when made.
 */
export async function ensureConfigFile(dir: string): Promise<boolean> {
  const path = join(dir, 'postgresql.conf');
  const present = await access(path).then(
    () => true,
    () => false,
  );
  if (present) return false;
  await writeFile(path, `${MADE_CONFIG_FILE}\n`, { mode: 0o600 });
  return true;
}
