/**
 * Sync's flags, shared by `sync`, `sync --all-databases` and `migrate`: the options they add, the
 * SyncOptions made of them, and the summary printed when sync stops.
 */
import type { Command } from 'commander';
import { resolveConnection } from '../config/index.js';
import { LogProgress, TerminalProgress } from '../copy/index.js';
import { usageError } from '../errors.js';
import type { Logger } from '../log/index.js';
import { MIN_PEER_TIMEOUT_MS, type SyncOptions, type SyncSummary } from '../sync/index.js';
import {
  addCopyOptions,
  copySettingsFrom,
  filterFrom,
  parseChoice,
  parseDuration,
  parseLsnFlag,
  parseSeconds,
  parseSize,
  type ConnectionFlags,
  type CopyFlags,
  type FilterFlags,
  type GlobalsFlags,
  type InstanceFlags,
} from './options.js';
import { printOut } from './terminal.js';

export interface SyncFlags extends ConnectionFlags, FilterFlags, CopyFlags, InstanceFlags, GlobalsFlags {
  name?: string;
  untilCaughtUp?: boolean;
  dropExisting?: boolean;
  maxRetainedWal: string;
  memoryLimit: string;
  batchChanges: string;
  slotTimeout: string;
  ddl: string;
  skipDdlAt?: string;
  peerTimeout: string;
  json?: boolean;
  debug?: boolean;
  listen?: string;
}

/** Sync's own options and the initial copy's, shared with `migrate`. */
export function addSyncOptions(command: Command): Command {
  command
    .option(
      '--name <name>',
      'migration name: the slot and publication are pgferry_<name> (default: the target database name and a fingerprint of the target)',
    )
    .option('--drop-existing', "drop the tables in scope on the target and pgferry's state, and start over with a new slot")
    .option('--max-retained-wal <size>', 'warn when the slot holds more WAL than this on the source', '10GB')
    .option('--memory-limit <size>', 'received transactions kept in memory before spilling to disk', '256MB')
    .option('--batch-changes <n>', 'most row changes applied in one target transaction (whole source transactions)', '100000')
    .option('--slot-timeout <seconds>', 'how long creating the replication slot may wait for transactions running on the source', '600')
    .option(
      '--ddl <policy>',
      'schema changes on the source: apply (replay them on the target in order) or stop (stop sync before the first)',
      'apply',
    )
    .option(
      '--skip-ddl-at <lsn>',
      'go on past the schema changes of the transaction committed at this position (made on the target by hand)',
    )
    .option(
      '--peer-timeout <duration>',
      'how long a server may stay silent before sync takes its connections for lost and reconnects; the servers give up on a silent pgferry as soon (their TCP keepalives)',
      '60s',
    );
  return addCopyOptions(command);
}

/** Everything `sync` needs from its flags, checked, for `sync` and `migrate` alike. */
export async function syncOptionsFrom(flags: SyncFlags, log: Logger, signal: AbortSignal): Promise<SyncOptions> {
  const copy = copySettingsFrom(flags);
  const maxRetainedWal = parseSize(flags.maxRetainedWal);
  const memoryLimit = parseSize(flags.memoryLimit);
  const maxBatchChanges = Number(flags.batchChanges);
  if (!Number.isInteger(maxBatchChanges) || maxBatchChanges < 1) {
    throw usageError(`--batch-changes "${flags.batchChanges}" is not a positive whole number`, 'use e.g. --batch-changes 100000');
  }
  const skipDdlAt = flags.skipDdlAt === undefined ? undefined : parseLsnFlag(flags.skipDdlAt, '--skip-ddl-at');
  const peerTimeoutMs = parseDuration(flags.peerTimeout, '--peer-timeout', MIN_PEER_TIMEOUT_MS);
  const source = { ...(await resolveConnection('source', flags.source)), peerTimeoutMs };
  const target = { ...(await resolveConnection('target', flags.target)), peerTimeoutMs };
  return {
    source,
    target,
    filter: filterFrom(flags),
    name: flags.name,
    untilCaughtUp: flags.untilCaughtUp === true,
    dropExisting: flags.dropExisting === true,
    maxRetainedWal,
    memoryLimit,
    maxBatchChanges,
    slotTimeoutMs: parseSeconds(flags.slotTimeout, '--slot-timeout'),
    ddl: parseChoice(flags.ddl, '--ddl', ['apply', 'stop'] as const),
    skipDdlAt,
    clone: {
      ...copy,
      progress: process.stderr.isTTY && !flags.json ? new TerminalProgress() : new LogProgress(log),
    },
    logger: log,
    signal,
  };
}

/** What sync reports when it stops: the clone summarised, not every table. */
export function syncSummaryJson(summary: SyncSummary): Record<string, unknown> {
  return {
    name: summary.name,
    slot: summary.slot,
    appliedLsn: summary.appliedLsn,
    transactions: summary.transactions,
    rows: summary.rows,
    reconnects: summary.reconnects,
    stoppedBecause: summary.stoppedBecause,
    cloned: summary.cloned
      ? { tables: summary.cloned.tables.length, rows: summary.cloned.tables.reduce((s, t) => s + t.rows, 0) }
      : undefined,
  };
}

export function printSyncSummary(summary: SyncSummary, json: boolean): void {
  if (json) printOut(`${JSON.stringify(syncSummaryJson(summary), null, 2)}\n`);
  else {
    printOut(
      `sync ${summary.name} stopped (${summary.stoppedBecause}) at ${summary.appliedLsn}: ${summary.transactions} transactions, ${summary.rows} row changes applied` +
        `${summary.reconnects > 0 ? `, ${summary.reconnects} reconnects` : ''}.\n`,
    );
  }
}
