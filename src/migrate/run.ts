import { connect } from '../config/index.js';
import { cutover, type CutoverOptions, type CutoverReport } from '../cutover/index.js';
import { sync, type SyncOptions, type SyncSummary } from '../sync/index.js';
import { readSyncState, syncIsStreaming } from '../state/index.js';
import { closeClient, sleep } from '../plumbing/index.js';

export interface MigrateOptions {
  /** Sync's options; its signal stops the whole migration cleanly. */
  readonly sync: SyncOptions;
  /** The cut-over's settings; without them (`--cutover manual`) sync runs until a `pgferry cutover` elsewhere stops it. */
  readonly cutover: Omit<CutoverOptions, 'source' | 'target' | 'filter' | 'logger' | 'signal'> | undefined;
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
  const stop = new AbortController();
  const outer = options.sync.signal;
  const relay = () => stop.abort();
  outer?.addEventListener('abort', relay);
  if (outer?.aborted) stop.abort();
  let settled = false;
  const syncing = sync({ ...options.sync, signal: stop.signal }).finally(() => (settled = true));
  try {
    if (!options.cutover) return { sync: await syncing, cutover: undefined };
    const settings = options.cutover;
    const cutting = (async () => {
      const streaming = await waitUntilStreaming(options.sync, () => settled || stop.signal.aborted);
      if (!streaming) return undefined;
      options.sync.logger.info('sync is streaming: cutting over once it is within the lag limit');
      return cutover({
        ...settings,
        source: options.sync.source,
        target: options.sync.target,
        filter: options.sync.filter,
        logger: options.sync.logger,
        signal: stop.signal,
      });
    })();
    // Whichever fails first ends the migration; a failed cut-over stops sync cleanly.
    let report: CutoverReport | undefined;
    try {
      report = await Promise.race([cutting, syncing.then(() => cutting)]);
    } catch (error) {
      stop.abort();
      await Promise.allSettled([syncing, cutting]);
      throw error;
    }
    return { sync: await syncing, cutover: report };
  } finally {
    outer?.removeEventListener('abort', relay);
  }
}

/** Polls the target until sync streams (its first heartbeat is in), or gives up when `over` says sync ended. */
async function waitUntilStreaming(options: SyncOptions, over: () => boolean): Promise<boolean> {
  const { client } = await connect(options.target);
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
