import { messageOf } from '../errors.js';
import { failedIn } from '../instance/index.js';
import type { Logger } from '../log/index.js';
import { sync } from './run.js';
import type { SyncOptions, SyncSummary } from './options.js';

/** One database's sync of `sync --all-databases`: its own options (its slot, publication and state). */
export interface DatabaseSync {
  readonly database: string;
  readonly options: SyncOptions;
}

/** How one database's sync ended: stopped with its summary, or not yet stopped when the process gave up waiting. */
export type DatabaseSyncOutcome =
  | { readonly database: string; readonly stopped: true; readonly summary: SyncSummary }
  | { readonly database: string; readonly stopped: false };

/**
 * How long the other databases' syncs may take to stop cleanly once one failed or a signal came.
 * A copy in flight does not stop halfway; past this the process ends anyway, which loses nothing
 * (each sync continues from what its target recorded), so a stop never hangs on a long copy.
 */
export const STOP_ALL_GRACE_MS = 20_000;

/**
 * The syncs of every database of an instance, in one process, all at once: each is the ordinary
 * `sync` with options of its own. With `untilCaughtUp` they return once all are caught up. A
 * failure in one (after the reconnects sync makes by itself) stops every other cleanly and
 * ends with that failure, naming the database: a whole-server cut-over needs every database
 * following its source, so going on with some would only hide the failure.
 */
export async function syncAllDatabases(
  runs: readonly DatabaseSync[],
  signal: AbortSignal | undefined,
  log: Logger,
): Promise<DatabaseSyncOutcome[]> {
  const stopAll = new AbortController();
  const stopping = signal ? AbortSignal.any([signal, stopAll.signal]) : stopAll.signal;
  let failure: { readonly database: string; readonly error: unknown } | undefined;
  const running = runs.map(async ({ database, options }): Promise<DatabaseSyncOutcome> => {
    try {
      return { database, stopped: true, summary: await sync({ ...options, signal: stopping }) };
    } catch (error) {
      if (failure === undefined) {
        failure = { database, error };
        if (!stopping.aborted) log.error({ database, error: messageOf(error) }, 'sync of this database failed: stopping every database');
        stopAll.abort();
      }
      throw error;
    }
  });
  const outcomes = await settledOrGivenUp(running, stopping, runs);
  if (failure !== undefined)
    throw failedIn(
      failure.database,
      failure.error,
      'the other databases were stopped; run the same command again: each database continues where it stopped',
    );
  for (const o of outcomes)
    if (!o.stopped)
      log.warn(
        { database: o.database },
        `did not stop within ${STOP_ALL_GRACE_MS / 1000} s: leaving it (the next sync continues where it was)`,
      );
  return outcomes;
}

/** Every outcome once all have settled; or, from STOP_ALL_GRACE_MS after a stop, what has settled by then. */
async function settledOrGivenUp(
  running: ReadonlyArray<Promise<DatabaseSyncOutcome>>,
  stopping: AbortSignal,
  runs: readonly DatabaseSync[],
): Promise<DatabaseSyncOutcome[]> {
  const settled = new Map<number, DatabaseSyncOutcome>();
  running.forEach((p, i) =>
    p.then(
      (o) => settled.set(i, o),
      () => undefined,
    ),
  );
  let timer: NodeJS.Timeout | undefined;
  const onStop = () => (timer = setTimeout(() => giveUp(), STOP_ALL_GRACE_MS));
  let giveUp: () => void = () => undefined;
  const gaveUp = new Promise<void>((resolve) => (giveUp = resolve));
  if (stopping.aborted) onStop();
  else stopping.addEventListener('abort', onStop, { once: true });
  try {
    await Promise.race([Promise.allSettled(running), gaveUp]);
  } finally {
    clearTimeout(timer);
    stopping.removeEventListener('abort', onStop);
  }
  return runs.map(({ database }, i) => settled.get(i) ?? { database, stopped: false });
}
