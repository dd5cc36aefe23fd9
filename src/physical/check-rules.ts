import { listSome, type Finding } from '../check/index.js';
import type { FoundProgram } from './binaries.js';
import type { PhysicalSourceFacts } from './source-facts.js';
import { describeDataDirectory, type DataDirectoryState } from './data-directory.js';
import { describeOrigin, settingsNotCopied } from './carried-settings.js';
import { isHotStandbyMinimum, type SourceSettings } from './source-settings.js';

/** Everything `check --physical` found, for the pure rules below. */
export interface PhysicalFacts {
  readonly source: PhysicalSourceFacts;
  readonly slot: string;
  /** A replication connection was tried: pg_hba.conf, the role and TLS all had their say. */
  readonly replicationConnection: { readonly ok: true } | { readonly ok: false; readonly message: string };
  /** The binaries in --pg-bin, or why each could not be used. */
  readonly programs: Readonly<Record<'pg_basebackup' | 'postgres', FoundProgram | string>>;
  readonly pgdata: { readonly path: string; readonly state: DataDirectoryState };
  readonly runningAsRoot: boolean;
}

const GB = 1024 ** 3;

export function physicalFindings(facts: PhysicalFacts): Finding[] {
  const s = facts.source;
  const findings: Finding[] = [
    {
      id: 'source.version',
      severity: 'info',
      message: `source: PostgreSQL ${s.version} as "${s.currentUser}", ${(s.clusterBytes / GB).toFixed(2)} GB in all databases`,
      why: 'a physical copy needs the same major version on both sides',
      fix: 'nothing to do',
    },
  ];
  for (const [program, found] of Object.entries(facts.programs)) {
    if (typeof found === 'string') {
      findings.push({
        id: `target.${program}`,
        severity: 'error',
        message: found,
        why: `sync --physical runs ${program} from --pg-bin`,
        fix: `give --pg-bin the directory holding PostgreSQL ${s.major}'s ${program}`,
      });
    } else if (found.major !== s.major) {
      findings.push({
        id: 'target.version',
        severity: 'error',
        message: `${found.path} is PostgreSQL ${found.version}; the source runs PostgreSQL ${s.version}`,
        why: 'a base backup and a streaming standby need the same major version on both sides; a move to another major version is what pgferry sync (logical) is for',
        fix: `give --pg-bin the binaries of PostgreSQL ${s.major}, or migrate with pgferry sync without --physical`,
      });
    }
  }
  if (s.major < 12) {
    findings.push({
      id: 'source.promote',
      severity: 'warning',
      message: `PostgreSQL ${s.version} has no pg_promote(): pgferry cutover --physical refuses it`,
      why: 'the standby is promoted with pg_promote(), which arrived in PostgreSQL 12',
      fix: 'sync --physical works; for the cut-over, freeze the source yourself, wait until the standby has replayed pg_current_wal_lsn(), and run pg_ctl promote on the new host',
    });
  }
  if (!['replica', 'logical'].includes(s.walLevel)) {
    findings.push({
      id: 'source.wal_level',
      severity: 'error',
      message: `the source has wal_level = ${s.walLevel}`,
      why: 'a standby can only replay WAL written at wal_level replica or logical',
      fix: 'ALTER SYSTEM SET wal_level = replica; then restart the source',
    });
  }
  if (!s.canReplicate) {
    findings.push({
      id: 'source.replication-role',
      severity: 'error',
      message: `role "${s.currentUser}" may not open replication connections`,
      why: 'pg_basebackup and the standby stream WAL over a replication connection',
      fix: `ALTER ROLE "${s.currentUser}" REPLICATION;`,
    });
  }
  if (!facts.replicationConnection.ok) {
    findings.push({
      id: 'source.replication-connection',
      severity: 'error',
      message: `a replication connection to the source was refused: ${facts.replicationConnection.message}`,
      why: 'pg_hba.conf needs an entry for the "replication" database, separate from the entries for normal databases',
      fix: `add to the source's pg_hba.conf a line such as "hostssl replication ${s.currentUser} <this host's address>/32 scram-sha-256", then SELECT pg_reload_conf();`,
    });
  }
  // The base backup's WAL stream and then the standby: one sender and one slot at a time, plus a spare.
  if (s.maxWalSenders - s.walSendersInUse < 2) {
    findings.push({
      id: 'source.wal-senders',
      severity: 'error',
      message: `max_wal_senders is ${s.maxWalSenders} and ${s.walSendersInUse} are in use`,
      why: 'pg_basebackup streams WAL on a second connection while it copies, and the standby needs one after',
      fix: `ALTER SYSTEM SET max_wal_senders = ${s.walSendersInUse + 4}; then restart the source`,
    });
  }
  if (!s.slot.exists && s.maxReplicationSlots - s.slotsInUse < 1) {
    findings.push({
      id: 'source.replication-slots',
      severity: 'error',
      message: `max_replication_slots is ${s.maxReplicationSlots} and ${s.slotsInUse} are in use`,
      why: 'the standby keeps its place in a physical slot, so the source keeps the WAL it has not received',
      fix: `ALTER SYSTEM SET max_replication_slots = ${s.slotsInUse + 2}; then restart the source`,
    });
  }
  if (s.slot.exists) {
    findings.push({
      id: 'source.slot-exists',
      severity: s.slot.active ? 'error' : 'warning',
      message: `the slot ${facts.slot} exists on the source${s.slot.active ? ' and a standby streams from it' : ''}`,
      why: 'each physical migration has a slot of its own',
      fix: s.slot.active ? 'give this migration another --name' : `pgferry cleanup --physical --name … drops it, or pass another --name`,
    });
  }
  if (!s.canFreeze) {
    findings.push({
      id: 'source.freeze',
      severity: 'error',
      message: `role "${s.currentUser}" may not freeze the server (ALTER SYSTEM on default_transaction_read_only, and reading pg_file_settings)`,
      why: 'the physical cut-over freezes every database of the source at once with ALTER SYSTEM, which does not reach the standby: the new primary stays an exact copy',
      fix:
        s.major >= 15
          ? `GRANT ALTER SYSTEM ON PARAMETER default_transaction_read_only, "pgferry.physical_freeze" TO "${s.currentUser}"; GRANT pg_read_all_settings TO "${s.currentUser}"; or run as a superuser`
          : 'run the cut-over as a superuser',
    });
  }
  findings.push(...settingsFindings(s.settings, facts.pgdata.path));
  findings.push(...dataDirectoryFindings(facts.pgdata.path, facts.pgdata.state, s.clusterBytes));
  if (s.unsized.length > 0) {
    findings.push({
      id: 'source.unsized-databases',
      severity: 'warning',
      message: `the size of ${s.unsized.join(', ')} is unknown to this role: the disk check leaves them out`,
      why: 'a base backup copies every database, whatever the role may read',
      fix: 'GRANT pg_read_all_stats to the role for an exact check, or make sure the disk has room',
    });
  }
  if (facts.runningAsRoot) {
    findings.push({
      id: 'target.root',
      severity: 'error',
      message: 'pgferry runs as root',
      why: 'PostgreSQL refuses to run as root, and the data directory must belong to the user that runs the standby',
      fix: 'run pgferry as the operating-system user that will own the data directory (e.g. sudo -u postgres pgferry …)',
    });
  }
  return findings;
}

function dataDirectoryFindings(path: string, state: DataDirectoryState, clusterBytes: number): Finding[] {
  switch (state.kind) {
    case 'not-empty':
      return [
        {
          id: 'target.pgdata',
          severity: 'error',
          message: `${path}: ${describeDataDirectory(state)}`,
          why: 'the base backup writes a whole data directory and never overwrites one',
          fix: `give --pgdata a new or empty directory; if ${path} is an old copy you no longer need, remove it yourself`,
        },
      ];
    case 'not-a-directory':
      return [
        {
          id: 'target.pgdata',
          severity: 'error',
          message: `${path}: ${describeDataDirectory(state)}`,
          why: 'the base backup writes a data directory there',
          fix: 'give --pgdata a new or empty directory',
        },
      ];
    case 'not-writable':
      return [
        {
          id: 'target.pgdata',
          severity: 'error',
          message: `${path}: ${describeDataDirectory(state)}`,
          why: 'the base backup writes the data directory as this user',
          fix: 'run as the user that will own the data directory, or give --pgdata a place it may write',
        },
      ];
    case 'absent':
    case 'empty': {
      if (state.freeBytes !== undefined && state.freeBytes < clusterBytes * 1.1) {
        return [
          {
            id: 'target.disk',
            severity: 'error',
            message: `${(state.freeBytes / GB).toFixed(2)} GB free where ${path} goes; the source holds ${(clusterBytes / GB).toFixed(2)} GB`,
            why: 'the base backup copies every database, and WAL arrives while it runs',
            fix: 'free space, or put --pgdata on a larger disk',
          },
        ];
      }
      return [];
    }
  }
}

/**
 * The settings a base backup does not copy: those the source takes from its command line, its
 * environment or configuration files outside its data directory. sync --physical carries them
 * (except what this host decides); the finding says so, so that whoever starts the standby
 * another way knows what it must run with.
 */
/** A hot standby's minimums first: they are what stops it starting, and a long list is cut short. */
function minimumsFirst<T extends { readonly name: string }>(settings: readonly T[]): T[] {
  const rank = (name: string) => (isHotStandbyMinimum(name) ? 0 : 1);
  return [...settings].sort((a, b) => rank(a.name) - rank(b.name));
}

function settingsFindings(settings: SourceSettings, pgdata: string): Finding[] {
  const findings: Finding[] = [];
  const { carried, notCarried } = settingsNotCopied(settings.settings);
  if (carried.length > 0 || notCarried.length > 0) {
    const byOrigin = new Map<string, string[]>();
    for (const setting of [...minimumsFirst(carried), ...notCarried]) {
      const from = describeOrigin(setting.origin);
      byOrigin.set(from, [...(byOrigin.get(from) ?? []), setting.name]);
    }
    const minimums = carried.filter((c) => isHotStandbyMinimum(c.name)).map((c) => c.name);
    findings.push({
      id: 'source.settings-not-copied',
      severity: 'warning',
      message: `the source runs with settings its data directory does not hold: ${[...byOrigin].map(([from, names]) => `from ${from}: ${listSome(names)}`).join('; ')}`,
      why: `pg_basebackup copies the data directory only; ${
        minimums.length > 0 ? `a standby refuses to start with ${minimums.join(', ')} below the primary's value, and ` : ''
      }the new primary should run as the old one did`,
      fix: [
        ...(carried.length > 0
          ? [
              `sync --physical writes ${listSome(minimumsFirst(carried).map((c) => c.name))} into the standby's postgresql.auto.conf; if you start the standby yourself, do not give it lower values (its own -c options win over that file)`,
            ]
          : []),
        ...(notCarried.length > 0
          ? [
              `not carried, as ports, sockets, paths and TLS files are this host's to set${notCarried.some((c) => c.because === 'recovery') ? ' and pgferry sets the recovery settings itself' : ''}: ${notCarried.map((c) => c.name).join(', ')}; give the standby what this host needs in ${pgdata}/postgresql.auto.conf`,
            ]
          : []),
      ].join('\n'),
    });
  }
  for (const file of settings.filesOutside) {
    findings.push({
      id: `source.${file.setting.replace('_', '-')}`,
      severity: 'warning',
      message: `the source's ${file.setting} is ${file.path}, outside its data directory`,
      why:
        file.setting === 'config_file'
          ? 'pg_basebackup copies the data directory only, so the copy has no postgresql.conf of the source'
          : `pg_basebackup copies the data directory only; the standby reads its ${file.setting === 'hba_file' ? 'pg_hba.conf (and does not start without one)' : 'pg_ident.conf'} there`,
      fix:
        file.setting === 'config_file'
          ? 'nothing to do: sync --physical makes an empty postgresql.conf in the copy and carries the settings it gives the source into postgresql.auto.conf'
          : `copy ${file.path} from the source's host to ${pgdata}/${file.setting === 'hba_file' ? 'pg_hba.conf' : 'pg_ident.conf'} before the standby starts (sync --physical without --start prints the start command)`,
    });
  }
  if (!settings.filesVisible) {
    findings.push({
      id: 'source.settings-unseen',
      severity: 'info',
      message: 'this role may not see which configuration file each setting comes from: those outside the data directory cannot be named',
      why: 'pg_settings.sourcefile and data_directory need pg_read_all_settings',
      fix: 'nothing to do: sync --physical compares every setting from a file with the copy and carries those that differ; GRANT pg_read_all_settings for a full check',
    });
  }
  return findings;
}
