import { connect } from '../config/index.js';
import { PgferryError, messageOf } from '../errors.js';
import type { Logger } from '../log/index.js';
import { closeClient, sleep, withDeadline } from '../plumbing/index.js';
import type { ReplicationSession } from '../replication/index.js';
import { recordSyncProblem } from '../state/index.js';
import type { SyncOptions } from './options.js';
import type { MigrationNames } from './source-setup.js';
import { StreamRun, type StreamTotals } from './streaming.js';
import { isTransient } from './transient.js';
import { endOwnLostSessions } from './lock-watch.js';
import { retainedWalNow, walGuardVerdict } from './wal-guard.js';

/*
 * The retry around a streaming run: what decides whether a failure is retried (transient.ts),
 * how long to wait, what is recorded for status, and when to give up (a signal, the WAL guard).
 * The run itself (streaming.ts) knows nothing of retries.
 */

/** Streams until stopped; a failure a reconnect can cure is retried with backoff, from the target's position. */
export async function streamWithRetries(
  options: SyncOptions,
  names: MigrationNames,
  firstSession: ReplicationSession | undefined,
  log: Logger,
): Promise<StreamTotals> {
  const totals: StreamTotals = { appliedLsn: '0/0', transactions: 0, rows: 0, reconnects: 0, stoppedBecause: 'asked to stop' };
  const run = new StreamRun(options, names, log, totals);
  let session = firstSession;
  let failures = 0;
  /** When the current run of failures began: the apply has been stuck since then. */
  let failingSince: number | undefined;
  for (;;) {
    const appliedBefore = totals.transactions;
    try {
      totals.stoppedBecause = await run.once(session);
      return totals;
    } catch (error) {
      session = undefined;
      if (options.signal?.aborted) throw stoppedWithoutFinishing(error);
      await sayWhatHolds(options, error, log);
      if (!isTransient(error)) throw error;
      if (totals.transactions > appliedBefore || failingSince === undefined) failingSince = Date.now();
      failures++;
      totals.reconnects++;
      const guard = walGuardVerdict(
        names.slot,
        await retainedWalNow(options.source, names.slot),
        options.maxRetainedWal,
        Date.now() - failingSince,
      );
      if (guard) throw guard;
      const delay = Math.min(30_000, 500 * 2 ** Math.min(failures, 6));
      log.warn(
        { error: messageOf(error), retryInMs: delay, attempt: failures },
        'lost a connection (or waited too long on a lock); reconnecting and continuing from the position the target recorded',
      );
      await sleep(delay, options.signal);
      if (options.signal?.aborted) throw stoppedWithoutFinishing(error);
    }
  }
}

/**
 * What stopped the run, recorded for `status` when the target answers (it may be the thing that
 * failed). The run's lost sessions go first: one may hold the row the record goes to.
 */
async function sayWhatHolds(options: SyncOptions, error: unknown, log: Logger): Promise<void> {
  try {
    const { client } = await connect(options.target);
    try {
      await withDeadline(
        (async () => {
          await endOwnLostSessions(client, 'target', log);
          await recordSyncProblem(client, messageOf(error).slice(0, 1000));
        })(),
        10_000,
        'recording the problem',
      );
    } finally {
      await closeClient(client);
    }
  } catch {
    // The target is down: the log says it, and status shows the heartbeat's age.
  }
}

function stoppedWithoutFinishing(error: unknown): unknown {
  if (!isTransient(error)) return error;
  return new PgferryError('connection-lost', `sync stopped without a clean finish: ${messageOf(error)}`, {
    fix: 'nothing is lost: the batch in flight rolled back, and the next pgferry sync continues from the position the target recorded',
    cause: error,
  });
}
