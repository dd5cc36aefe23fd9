import type pg from 'pg';

/**
 * Where the source's running value of a setting came from, as far as a base backup is
 * concerned: pg_basebackup copies the data directory and nothing else, so a value given on
 * the postmaster's command line (`postgres -c …`, the official Docker image's way), in its
 * environment, or in a configuration file outside the data directory (Debian's /etc/postgresql,
 * an include of a shared file) does not reach the standby.
 */
export type SettingOrigin =
  | { readonly kind: 'command-line' }
  | { readonly kind: 'environment' }
  | { readonly kind: 'outside-file'; readonly file: string }
  /** A configuration file this role may not name (pg_settings.sourcefile needs pg_read_all_settings). */
  | { readonly kind: 'unseen-file' }
  /** The default, or a file inside the data directory: the copy says the same. */
  | { readonly kind: 'in-copy' };

export interface SourceSetting {
  readonly name: string;
  /**
   * The running value as pg_settings.setting gives it: an integer in the setting's base unit,
   * which is how postgresql.conf reads a number written without a unit, and how `postgres -C`
   * prints the copy's value, so the two compare as text.
   */
  readonly value: string;
  /** The value as SHOW prints it (with its unit), for people. */
  readonly shown: string;
  readonly vartype: string;
  /** pg_settings.context: 'internal' settings cannot be set at all. */
  readonly context: string;
  readonly origin: SettingOrigin;
}

/** The source's settings that matter to a physical copy. */
export interface SourceSettings {
  readonly settings: readonly SourceSetting[];
  /** The source's postgresql.conf, pg_hba.conf and pg_ident.conf when outside its data directory (and this role may see them). */
  readonly filesOutside: readonly { readonly setting: 'config_file' | 'hba_file' | 'ident_file'; readonly path: string }[];
  /** False when this role may not see which file a setting comes from, nor where the data directory is. */
  readonly filesVisible: boolean;
}

/**
 * What a hot standby must hold at least at the primary's value, or it refuses to start
 * ("recovery aborted because of insufficient parameter settings"): the primary records them in
 * its WAL and control file. max_wal_senders joined them in 12; asking it of 10 and 11 is harmless.
 */
export const HOT_STANDBY_MINIMUMS = [
  'max_connections',
  'max_worker_processes',
  'max_wal_senders',
  'max_prepared_transactions',
  'max_locks_per_transaction',
] as const;

export function isHotStandbyMinimum(name: string): boolean {
  return (HOT_STANDBY_MINIMUMS as readonly string[]).includes(name);
}

const FILE_SETTINGS = ['config_file', 'hba_file', 'ident_file'] as const;

/** A file is the copy's when it lies under the data directory (both as the server spells them: absolute, not resolved). */
export function insideDirectory(file: string, directory: string): boolean {
  return file.startsWith(`${directory.replace(/\/+$/, '')}/`);
}

/** Classifies pg_settings.source and sourcefile; `dataDirectory` is undefined when this role may not see it. */
export function originOf(source: string, sourcefile: string | null, dataDirectory: string | undefined): SettingOrigin {
  switch (source) {
    case 'command line':
      return { kind: 'command-line' };
    case 'environment variable':
      return { kind: 'environment' };
    case 'configuration file':
      if (sourcefile === null || dataDirectory === undefined) return { kind: 'unseen-file' };
      return insideDirectory(sourcefile, dataDirectory) ? { kind: 'in-copy' } : { kind: 'outside-file', file: sourcefile };
    default:
      // 'default', 'override' (computed by the server), and per-database or per-role values,
      // which live in pg_db_role_setting and travel with the copy.
      return { kind: 'in-copy' };
  }
}

/**
 * Reads the settings a copy might lack: every one from the command line, the environment or a
 * configuration file, and the hot standby's minimums whatever their source. Reads only.
 */
export async function readSourceSettings(source: pg.Client): Promise<SourceSettings> {
  const { rows } = await source.query<{
    name: string;
    setting: string | null;
    shown: string | null;
    vartype: string;
    context: string;
    source: string;
    sourcefile: string | null;
  }>(
    `SELECT name, setting, CASE WHEN unit IS NULL THEN setting ELSE current_setting(name) END AS shown,
            vartype, context, source, sourcefile
       FROM pg_settings
      WHERE source IN ('command line', 'environment variable', 'configuration file')
         OR name = ANY($1::text[])`,
    [[...HOT_STANDBY_MINIMUMS, 'data_directory', ...FILE_SETTINGS]],
  );
  // data_directory and the file settings are hidden from a role without pg_read_all_settings.
  const dataDirectory = rows.find((r) => r.name === 'data_directory')?.setting ?? undefined;
  const filesOutside = FILE_SETTINGS.flatMap((setting) => {
    const path = rows.find((r) => r.name === setting)?.setting;
    return path && dataDirectory !== undefined && !insideDirectory(path, dataDirectory) ? [{ setting, path }] : [];
  });
  const settings = rows
    .filter((r) => r.name !== 'data_directory' && !(FILE_SETTINGS as readonly string[]).includes(r.name))
    .map((r): SourceSetting => ({
      name: r.name,
      value: r.setting ?? '',
      shown: r.shown ?? r.setting ?? '',
      vartype: r.vartype,
      context: r.context,
      origin: originOf(r.source, r.sourcefile, dataDirectory),
    }));
  return { settings, filesOutside, filesVisible: dataDirectory !== undefined };
}
