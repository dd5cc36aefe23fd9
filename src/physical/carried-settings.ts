import { isHotStandbyMinimum, type SettingOrigin, type SourceSetting } from './source-settings.js';

/** Why a setting of the source is not carried to the standby. */
export type NotCarriedBecause =
  /** Ports, addresses, sockets, paths and TLS files: this host decides them (and --port). */
  | 'host'
  /** Recovery settings: pgferry's standby streams from its own slot, and its cut-over connects to it. */
  | 'recovery';

const NOT_CARRIED: Readonly<Record<string, NotCarriedBecause>> = {
  port: 'host',
  listen_addresses: 'host',
  unix_socket_directories: 'host',
  unix_socket_group: 'host',
  unix_socket_permissions: 'host',
  bonjour_name: 'host',
  data_directory: 'host',
  config_file: 'host',
  hba_file: 'host',
  ident_file: 'host',
  external_pid_file: 'host',
  log_directory: 'host',
  stats_temp_directory: 'host',
  dynamic_library_path: 'host',
  extension_control_path: 'host',
  krb_server_keyfile: 'host',
  // TLS is the certificate files' business: ssl = on carried without them stops the server.
  ssl: 'host',
  ssl_cert_file: 'host',
  ssl_key_file: 'host',
  ssl_ca_file: 'host',
  ssl_crl_file: 'host',
  ssl_crl_dir: 'host',
  ssl_dh_params_file: 'host',
  ssl_passphrase_command: 'host',
  // The server sets it from the host's stack limit (the "environment variable" source).
  max_stack_depth: 'host',
  primary_conninfo: 'recovery',
  primary_slot_name: 'recovery',
  hot_standby: 'recovery',
  restore_command: 'recovery',
  archive_cleanup_command: 'recovery',
  recovery_end_command: 'recovery',
  recovery_min_apply_delay: 'recovery',
  promote_trigger_file: 'recovery',
  trigger_file: 'recovery',
  standby_mode: 'recovery',
};

export function notCarriedBecause(name: string): NotCarriedBecause | undefined {
  return NOT_CARRIED[name] ?? (name.startsWith('recovery_target') ? 'recovery' : undefined);
}

/** The source's settings the copy might lack and that may be carried (the copy's value is then asked for). */
export function settingsToCompare(settings: readonly SourceSetting[]): SourceSetting[] {
  return settings.filter(
    (s) =>
      s.context !== 'internal' && notCarriedBecause(s.name) === undefined && (s.origin.kind !== 'in-copy' || isHotStandbyMinimum(s.name)),
  );
}

/** What the source runs with that the copy does not carry, and why: for check and for people. */
export function settingsNotCopied(settings: readonly SourceSetting[]): {
  readonly carried: readonly SourceSetting[];
  readonly notCarried: readonly (SourceSetting & { readonly because: NotCarriedBecause })[];
} {
  const outside = settings.filter((s) => s.context !== 'internal' && s.origin.kind !== 'in-copy' && s.origin.kind !== 'unseen-file');
  return {
    carried: outside.filter((s) => notCarriedBecause(s.name) === undefined),
    notCarried: outside.flatMap((s) => {
      const because = notCarriedBecause(s.name);
      return because === undefined ? [] : [{ ...s, because }];
    }),
  };
}

/** A line sync --physical writes into the standby's postgresql.auto.conf. */
export interface CarriedSetting {
  readonly name: string;
  /** The source's running value, in the form postgresql.conf reads (see SourceSetting.value). */
  readonly value: string;
  readonly shown: string;
  /** A string may hold anything (a command, a library list): named, its value not printed. */
  readonly printable: boolean;
  readonly origin: SettingOrigin;
  /** The copy gave less than the primary's value, which a hot standby refuses. */
  readonly belowPrimary: boolean;
}

/**
 * The pure decision: given the source's settings and what the copied configuration gives for
 * each (`postgres -C` on the copy; undefined when it gives nothing or could not be read), the
 * settings to write. A setting from outside the copy is written when the copy differs from
 * the source, so the new primary runs as the old one did; a hot standby's minimum also when
 * the copy gives less than the primary's value, wherever that came from. When unsure (the copy
 * unreadable), the source's value is written: it is never wrong for the standby to have it.
 */
export function settingsToCarry(settings: readonly SourceSetting[], copied: ReadonlyMap<string, string | undefined>): CarriedSetting[] {
  return settingsToCompare(settings).flatMap((s): CarriedSetting[] => {
    const copy = copied.get(s.name);
    const belowPrimary = isHotStandbyMinimum(s.name) && (copy === undefined || !(Number(copy) >= Number(s.value)));
    const differs = s.origin.kind !== 'in-copy' && copy !== s.value;
    if (!belowPrimary && !differs) return [];
    return [{ name: s.name, value: s.value, shown: s.shown, printable: s.vartype !== 'string', origin: s.origin, belowPrimary }];
  });
}

/** Where a setting comes from, in words. */
export function describeOrigin(origin: SettingOrigin): string {
  switch (origin.kind) {
    case 'command-line':
      return "the source's command line";
    case 'environment':
      return "the source's environment";
    case 'outside-file':
      return origin.file;
    case 'unseen-file':
      return 'a configuration file this role may not see';
    case 'in-copy':
      return "the source's data directory";
  }
}
