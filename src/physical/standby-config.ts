import type { CarriedSetting } from './carried-settings.js';
import { quoteConfigValue } from './conninfo.js';

/** What makes a base backup a standby of its source, for the server's major version. */
export interface StandbySettings {
  readonly major: number;
  /** libpq connection string to the source (no password: `passfile=` names the file). */
  readonly primaryConninfo: string;
  readonly slot: string;
  /** The standby's own port, when it differs from the source's copied settings. */
  readonly port: number | undefined;
  /** The source's settings the copy lacks (from its command line, say). */
  readonly carried: readonly CarriedSetting[];
}

/** A file to write into the data directory: appended to, or made (mode 0600). */
export interface DataDirectoryFile {
  readonly name: string;
  readonly content: string;
  readonly append: boolean;
}

/** Marks what pgferry wrote into postgresql.auto.conf, for people reading it. */
export const MARK = '# added by pgferry sync --physical: this server streams from its source until it is promoted';
/** Marks the source's settings carried over, for people reading it. */
export const CARRIED_MARK =
  '# added by pgferry sync --physical: the source runs with these, and its data directory does not say so (command line, environment, files outside it)';

/**
 * From PostgreSQL 12, `standby.signal` and the recovery settings in postgresql.auto.conf (which
 * ALTER SYSTEM owns, and where later settings override earlier ones); before 12, recovery.conf
 * with `standby_mode`. The port goes in postgresql.auto.conf either way: the base backup
 * carries the source's settings, and two servers on one host must not share a port. The
 * carried settings go there too, first, so pgferry's own lines come last and win.
 */
export function standbyFiles(settings: StandbySettings): DataDirectoryFile[] {
  const recovery = [
    `primary_conninfo = ${quoteConfigValue(settings.primaryConninfo)}`,
    `primary_slot_name = ${quoteConfigValue(settings.slot)}`,
  ];
  const carried =
    settings.carried.length === 0 ? [] : [CARRIED_MARK, ...settings.carried.map((s) => `${s.name} = ${quoteConfigValue(s.value)}`)];
  const port = settings.port === undefined ? [] : [`port = ${settings.port}`];
  if (settings.major >= 12) {
    return [
      { name: 'standby.signal', content: '', append: false },
      { name: 'postgresql.auto.conf', content: `${[...carried, MARK, ...recovery, ...port].join('\n')}\n`, append: true },
    ];
  }
  const auto = [...carried, ...(port.length > 0 ? [MARK, ...port] : [])];
  return [
    { name: 'recovery.conf', content: `${[MARK, "standby_mode = 'on'", ...recovery].join('\n')}\n`, append: false },
    ...(auto.length > 0 ? [{ name: 'postgresql.auto.conf', content: `${auto.join('\n')}\n`, append: true }] : []),
  ];
}
