import { rename, rm, rmdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type pg from 'pg';
import { describeConnection, withConnection, type ConnectionSpec } from '../config/index.js';
import { PgferryError } from '../errors.js';
import type { Logger } from '../log/index.js';
import { sleep } from '../plumbing/index.js';
import { formatLsn } from '../replication/index.js';
import { runBaseBackup } from './base-backup.js';
import { findProgram } from './binaries.js';
import { describeOrigin, settingsNotCopied, settingsToCarry, settingsToCompare, type CarriedSetting } from './carried-settings.js';
import { ensureConfigFile, readCopiedConfig } from './copied-config.js';
import { describeDataDirectory, inspectDataDirectory } from './data-directory.js';
import { readPhysicalSourceFacts, type PhysicalSourceFacts } from './source-facts.js';
import { createPhysicalSlot, physicalSlotName, stopOrphanedBackup } from './slot.js';
import { configureStandby, startCommand, startStandby } from './standby.js';
import { readStandbyLag } from './standby-lag.js';

export interface PhysicalSyncOptions {
  readonly source: ConnectionSpec;
  readonly pgdata: string;
  readonly pgBin: string;
  readonly name: string;
  readonly port: number | undefined;
  readonly start: boolean;
  readonly untilCaughtUp: boolean;
  /** How long the standby may take to connect, and how long its replay may stand still while behind. */
  readonly standbyTimeoutMs: number;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
}

export interface PhysicalSyncSummary {
  readonly slot: string;
  readonly pgdata: string;
  readonly backupBytes: number;
  readonly backupSeconds: number;
  readonly started: boolean;
  /** The command that starts the standby, when --start was not given. */
  readonly startCommand: string;
  /** With --until-caught-up: the source position the standby had replayed when it returned. */
  readonly caughtUpAt: string | undefined;
  /** The source's settings written into the standby's postgresql.auto.conf, which the copy lacked. */
  readonly carried: readonly CarriedSetting[];
  /** Settings the source runs with from outside its data directory that this host decides (ports, paths, TLS files). */
  readonly notCarried: readonly string[];
  /** What the operator must do or know about the copy's configuration. */
  readonly notes: readonly string[];
}

/**
 * `sync --physical`: a base backup of the whole source server through a physical slot, made a
 * standby that streams from it, started or ready to start. Run on the new host as the user
 * who will own the data directory. Nothing is written on the source but the slot.
 */
export async function syncPhysical(options: PhysicalSyncOptions): Promise<PhysicalSyncSummary> {
  const log = options.logger;
  if (process.getuid?.() === 0) {
    throw new PgferryError('usage', 'sync --physical runs as root', {
      fix: 'run it as the operating-system user that will own the data directory and run the standby (e.g. sudo -u postgres pgferry sync --physical …)',
    });
  }
  const slot = physicalSlotName(options.name);
  const basebackup = await findProgram(options.pgBin, 'pg_basebackup');
  // It reads the copy's configuration, as the standby will: every sync needs it.
  const postgres = await findProgram(options.pgBin, 'postgres');
  const pgCtl = options.start ? await findProgram(options.pgBin, 'pg_ctl') : undefined;
  const state = await inspectDataDirectory(options.pgdata);
  if (state.kind !== 'absent' && state.kind !== 'empty') {
    throw new PgferryError('target-not-empty', `--pgdata ${options.pgdata}: ${describeDataDirectory(state)}`, {
      fix: 'give --pgdata a new or empty directory; nothing was changed',
    });
  }
  // Hours of base backup go by between these two sessions: none is held idle meanwhile.
  const facts = await withConnection(options.source, async ({ client: source }) => {
    if (await stopOrphanedBackup(source, slot)) log.info({ slot }, 'stopped the base backup an interrupted sync --physical left running');
    const found = await readPhysicalSourceFacts(source, slot);
    const other = [basebackup, postgres].find((p) => p.major !== found.major);
    if (other) {
      throw new PgferryError('usage', `the source runs PostgreSQL ${found.version} and ${other.path} is PostgreSQL ${other.version}`, {
        side: 'source',
        fix: `give --pg-bin the binaries of PostgreSQL ${found.major}; a move to another major version is pgferry sync without --physical`,
      });
    }
    if (found.slot.active) {
      throw new PgferryError('slot-taken', `source: a standby already streams from the slot ${slot}`, {
        side: 'source',
        fix: 'give this migration another --name',
      });
    }
    if (found.slot.exists) log.info({ slot }, 'the slot an earlier sync --physical made is kept and used');
    else await createPhysicalSlot(source, slot);
    return found;
  });
  // The copy is made beside --pgdata and renamed into place once it is a complete standby:
  // a run killed half-way leaves only the partial copy, which the next run removes.
  const pgdata = resolve(options.pgdata);
  const partial = `${pgdata}${PARTIAL_SUFFIX}`;
  if (await exists(partial)) {
    log.info({ partial }, 'removing the partial copy an interrupted sync --physical left');
    await rm(partial, { recursive: true, force: true });
  }
  log.info({ source: describeConnection(options.source), pgdata, slot }, 'base backup: starting');
  const backup = await runBaseBackup({
    program: basebackup.path,
    source: options.source,
    pgdata: partial,
    slot,
    logger: log,
    stallMs: options.standbyTimeoutMs,
    signal: options.signal,
  });
  log.info({ bytes: backup.bytes, seconds: backup.seconds }, 'base backup: done');
  const config = await completeConfiguration(postgres.path, partial, pgdata, facts.settings, log);
  await configureStandby(partial, pgdata, options.source, { major: facts.major, slot, port: options.port, carried: config.carried });
  if (state.kind === 'empty') await rmdir(pgdata);
  await rename(partial, pgdata);
  const command = startCommand(pgCtl?.path ?? `${options.pgBin}/pg_ctl`, pgdata).join(' ');
  if (pgCtl) {
    await startStandby(pgCtl.path, pgdata);
    log.info({ pgdata, port: options.port }, 'standby started');
  } else {
    log.info({ command }, 'standby ready: start it with this command (or your service manager)');
  }
  const caughtUpAt = options.untilCaughtUp
    ? await withConnection(options.source, ({ client: source }) => waitUntilCaughtUp(source, slot, options))
    : undefined;
  return {
    slot,
    pgdata,
    backupBytes: backup.bytes,
    backupSeconds: backup.seconds,
    started: pgCtl !== undefined,
    startCommand: command,
    caughtUpAt: caughtUpAt === undefined ? undefined : formatLsn(caughtUpAt),
    ...config,
  };
}

/**
 * The copy holds the source's data directory, not the way the source was started: settings
 * from its command line, environment or files outside the data directory are compared with
 * what the copy's configuration gives (asked of the standby's own server program), and those
 * that differ, or fall below a hot standby's minimum, are carried into postgresql.auto.conf.
 */
async function completeConfiguration(
  postgres: string,
  dir: string,
  pgdata: string,
  settings: PhysicalSourceFacts['settings'],
  log: Logger,
): Promise<Pick<PhysicalSyncSummary, 'carried' | 'notCarried' | 'notes'>> {
  const notes: string[] = [];
  if (await ensureConfigFile(dir)) {
    notes.push(
      `The source's postgresql.conf is outside its data directory: ${join(pgdata, 'postgresql.conf')} was made empty, and the settings it gave the source are in postgresql.auto.conf.`,
    );
  }
  const copied = await readCopiedConfig(
    postgres,
    dir,
    settingsToCompare(settings.settings).map((s) => s.name),
  );
  if (copied.unreadable !== undefined) {
    notes.push(
      `This host cannot read the copy's configuration (${copied.unreadable}): the source's values were written for every setting compared; fix what the server says before the standby starts.`,
    );
  }
  for (const file of settings.filesOutside) {
    const name = basename(file.path);
    if (file.setting !== 'config_file' && !(await exists(join(dir, name)))) {
      notes.push(
        `The source's ${file.setting} is ${file.path}, outside its data directory: copy it to ${join(pgdata, name)} before the standby starts.`,
      );
    }
  }
  const carried = settingsToCarry(settings.settings, copied.values);
  const notCarried = settingsNotCopied(settings.settings).notCarried.map((s) => s.name);
  if (carried.length > 0) {
    log.info(
      { carried: carried.map((s) => `${s.name} (${s.belowPrimary ? "below the primary's value" : describeOrigin(s.origin)})`) },
      "the source's settings the copy lacks: written into postgresql.auto.conf",
    );
  }
  if (notCarried.length > 0) log.warn({ notCarried }, 'settings of the source this host decides, not carried');
  for (const note of notes) log.warn(note);
  return { carried, notCarried, notes };
}
/**
 * Waits until the standby streams and has replayed the source's position when streaming was
 * first seen. It must connect within the timeout, and its replay may not stand still for
 * that long while behind.
 */
async function waitUntilCaughtUp(source: pg.Client, slot: string, options: PhysicalSyncOptions): Promise<bigint> {
  let goal: bigint | undefined;
  let lastReplay: bigint | null = null;
  let lastMoved = Date.now();
  for (;;) {
    if (options.signal?.aborted) throw new PgferryError('interrupted', 'interrupted while waiting for the standby to catch up');
    const lag = await readStandbyLag(source, slot);
    if (lag?.state === 'streaming' && lag.replayLsn !== null) {
      goal ??= lag.currentLsn;
      if (lag.replayLsn >= goal) {
        options.logger.info({ replayed: formatLsn(lag.replayLsn) }, 'standby caught up');
        return lag.replayLsn;
      }
      if (lag.replayLsn !== lastReplay) {
        lastReplay = lag.replayLsn;
        lastMoved = Date.now();
      }
    }
    if (Date.now() - lastMoved > options.standbyTimeoutMs) {
      throw new PgferryError(
        'standby',
        lag === undefined
          ? `no standby streams from the slot ${slot} after ${Math.round(options.standbyTimeoutMs / 1000)} s`
          : `the standby's replay stood still at ${lastReplay === null ? 'nothing' : formatLsn(lastReplay)} for ${Math.round(options.standbyTimeoutMs / 1000)} s (state ${lag.state})`,
        {
          side: 'target',
          fix: `start the standby (${options.pgdata}) if it is not running, and read its log: primary_conninfo and pg_hba.conf are the usual causes`,
        },
      );
    }
    await sleep(200, options.signal);
  }
}

/** Beside --pgdata while pg_basebackup writes it: <pgdata>.pgferry-partial. */
const PARTIAL_SUFFIX = '.pgferry-partial';

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
