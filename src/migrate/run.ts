import { connect, type ConnectionSpec } from '../config/index.js';
import {
  cutover,
  cutoverDatabases,
  type CutoverOptions,
  type CutoverReport,
  type InstanceCutoverOptions,
  type InstanceCutoverReport,
} from '../cutover/index.js';
import type { Logger } from '../log/index.js';
import { sync, syncAllDatabases, type DatabaseSync, type DatabaseSyncOutcome, type SyncOptions, type SyncSummary } from '../sync/index.js';
import { readSyncState, syncIsStreaming } from '../state/index.js';
import { closeClient, sleep } from '../plumbing/index.js';

/** The cut-over's own settings: where it connects, what it covers and how it logs come from sync's. */
export type MigrateCutoverSettings = Omit<CutoverOptions, 'source' | 'target' | 'filter' | 'logger' | 'signal'>;

export interface MigrateOptions {
  /** Sync's options; its signal stops the whole migration cleanly. */
  readonly sync: SyncOptions;
  /** The cut-over's settings; without them (`--cutover manual`) sync runs until a `pgferry cutover` elsewhere stops it. */
  readonly cutover: MigrateCutoverSettings | undefined;
}

export interface MigrateReport {
  readonly sync: SyncSummary;
  readonly cutover: CutoverReport | undefined;
}

/**
 * `pgferry migrate`: sync (which clones first) and, once it streams, the cut-over, in one
 * process. They still talk only through the target, exactly as the two separate commands do,
 * so the cut-over here is the one `pgferry cutover` runs. If the cut-over fails, the source
 * has been unfrozen; sync is then stopped cleanly and the error reported, and running migrate
 * again continues from the target's position.
 */
export async function migrate(options: MigrateOptions): Promise<MigrateReport> {
  const settings = options.cutover;
  const { synced, cut } = await syncThenCutOver({
    signal: options.sync.signal,
    log: options.sync.logger,
    targets: [options.sync.target],
    sync: (signal) => sync({ ...options.sync, signal }),
    cutover: settings
      ? (signal) =>
          cutover({
            ...settings,
            source: options.sync.source,
            target: options.sync.target,
            filter: options.sync.filter,
            logger: options.sync.logger,
            signal,
          })
      : undefined,
  });
  return { sync: synced, cutover: cut };
}

export interface MigrateAllOptions {
  /** One sync per database (sync/all-databases.ts), each with its own options. */
  readonly runs: readonly DatabaseSync[];
  readonly cutover: MigrateCutoverSettings | undefined;
  readonly logger: Logger;
  readonly signal: AbortSignal | undefined;
}

export interface MigrateAllReport {
  readonly syncs: readonly DatabaseSyncOutcome[];
  readonly cutover: InstanceCutoverReport | undefined;
}

/**
 * `pgferry migrate --all-databases`: every database's sync in this process and, once every one
 * streams, one cut-over of them all under one freeze. A failure in any sync or in the cut-over
 * ends all of them, as for one database.
 */
export async function migrateAllDatabases(options: MigrateAllOptions): Promise<MigrateAllReport> {
  const settings = options.cutover;
  const first = options.runs[0]!.options;
  const databases: InstanceCutoverOptions['databases'] = options.runs.map((r) => ({
    database: r.database,
    source: r.options.source,
    target: r.options.target,
  }));
  const { synced, cut } = await syncThenCutOver({
    signal: options.signal,
    log: options.logger,
    targets: options.runs.map((r) => r.options.target),
    sync: (signal) => syncAllDatabases(options.runs, signal, options.logger),
    cutover: settings
      ? (signal) => cutoverDatabases({ ...settings, databases, filter: first.filter, logger: options.logger, signal })
      : undefined,
  });
  return { syncs: synced, cutover: cut };
}

/**
 * The race both share: sync runs until stopped; once every target records a streaming sync, the
 * cut-over runs (it stops sync through the targets, as `pgferry cutover` does). Whichever fails
 * first ends the migration: a failed cut-over has lifted its freeze, and sync is then stopped cleanly.
 */
async function syncThenCutOver<S, C>(run: {
  readonly signal: AbortSignal | undefined;
  readonly log: Logger;
  readonly targets: readonly ConnectionSpec[];
  readonly sync: (signal: AbortSignal) => Promise<S>;
  readonly cutover: ((signal: AbortSignal) => Promise<C>) | undefined;
}): Promise<{ synced: S; cut: C | undefined }> {
  const stop = new AbortController();
  const outer = run.signal;
  const relay = () => stop.abort();
  outer?.addEventListener('abort', relay);
  if (outer?.aborted) stop.abort();
  let settled = false;
  const syncing = run.sync(stop.signal).finally(() => (settled = true));
  try {
    const cutoverOf = run.cutover;
    if (!cutoverOf) return { synced: await syncing, cut: undefined };
    const cutting = (async () => {
      const over = () => settled || stop.signal.aborted;
      for (const target of run.targets) if (!(await waitUntilStreaming(target, over))) return undefined;
      run.log.info('sync is streaming: cutting over once it is within the lag limit');
      return cutoverOf(stop.signal);
    })();
    let cut: C | undefined;
    try {
      cut = await Promise.race([cutting, syncing.then(() => cutting)]);
    } catch (error) {
      stop.abort();
      await Promise.allSettled([syncing, cutting]);
      throw error;
    }
    return { synced: await syncing, cut };
  } finally {
    outer?.removeEventListener('abort', relay);
  }
}

/** Polls the target until sync streams (its first heartbeat is in), or gives up when `over` says sync ended. */
async function waitUntilStreaming(target: ConnectionSpec, over: () => boolean): Promise<boolean> {
  const { client } = await connect(target);
  try {
    for (;;) {
      if (over()) return false;
      const state = await readSyncState(client).catch(() => undefined);
      if (syncIsStreaming(state)) return true;
      await sleep(200);
    }
  } finally {
    await closeClient(client);
  }
}
