import type pg from 'pg';
import { PgferryError } from '../errors.js';
import {
  copyIsResumable,
  HEARTBEAT_FRESH_SECONDS,
  PhaseListener,
  ProgressListener,
  readFenceProgress,
  readLagProgress,
  readSyncPhase,
  readSyncState,
  requestSyncStop,
  syncIsStreaming,
  wantProgress,
  type SyncProgress,
  type SyncState,
} from '../state/index.js';
import type { Fence } from './fence.js';
import { sleep } from '../plumbing/index.js';

/**
 * The catch-up and the fence are woken by sync's own notification of each batch it commits, the
 * stop by its notification that it stopped; should none come (a sync that has not read the
 * cut-over's wish yet, or an earlier version that does not notify), they look for themselves
 * this often. Not the path: a safety net.
 */
const UNNOTIFIED_LOOK_MS = 25;
/** A sync of an earlier version records only the monitor's lag, once a second: looked at this often. */
const MONITOR_LAG_POLL_MS = 100;
/**
 * How long sync notifies its progress past the catch-up's own limit: the freeze that follows
 * (drain, fence) is inside it. A cut-over that dies leaves it to run out; sync just stops notifying.
 */
const PROGRESS_WANTED_PAST_CATCH_UP_MS = 120_000;

/**
 * The cut-over's view of a sync running in another process, read from the target's `pgferry`
 * schema: the only channel the two share, so they can run on different machines.
 */

/** Refuses to start a cut-over with no sync streaming into the target: nothing would apply the fence. */
export async function assertSyncStreaming(target: pg.Client): Promise<SyncState> {
  const state = await readSyncState(target);
  if (!state) {
    throw new PgferryError('not-syncing', 'target: no pgferry sync state here: this database is not following a source', {
      side: 'target',
      fix: 'run pgferry sync --source … --target … first, and the cut-over while it runs',
    });
  }
  if (state.stopRequestedAt) {
    throw new PgferryError(
      'wrong-migration',
      `target: migration "${state.name}" was already cut over (${state.stopReason ?? 'stop requested'})`,
      {
        side: 'target',
        fix: 'point the application at the target; run pgferry cleanup to remove the slot, publication and state',
      },
    );
  }
  if (!syncIsStreaming(state)) {
    const age = state.heartbeatAgeSeconds;
    throw new PgferryError(
      'not-syncing',
      `target: pgferry sync is not running (phase ${state.phase}${age === null ? '' : `, last heartbeat ${age.toFixed(0)} s ago`})`,
      {
        side: 'target',
        fix: 'start pgferry sync --source … --target … in another terminal, and run the cut-over while it streams',
      },
    );
  }
  if (await copyIsResumable(target)) {
    throw new PgferryError('not-syncing', `target: the copy of migration "${state.name}" is not finished (tables wait to be copied)`, {
      side: 'target',
      fix: 'let pgferry sync finish the copy (pgferry status shows which tables wait), then run the cut-over',
    });
  }
  return state;
}

/**
 * Step 1: lag under the limit, as the stream measures it to the millisecond (sync records it at
 * every batch it commits, and at its heartbeat), within the time limit; the lag it starts the
 * freeze with, in seconds. Sync is asked to notify each batch from now (through the freeze that
 * follows, so the fence's wait is woken the same way): the wait wakes at the commit that brings
 * the lag under the limit, with no polling interval. The monitor must know the lag too: a sync
 * just started on a backlog the walsender has not decoded yet shows nothing pending in its
 * stream, and only the monitor, which reads the source's WAL position, tells.
 */
export async function waitForLag(target: pg.Client, maxLagSeconds: number, timeoutMs: number, signal?: AbortSignal): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  if (!(await wantProgress(target, timeoutMs + PROGRESS_WANTED_PAST_CATCH_UP_MS)))
    return waitForMonitorLag(target, maxLagSeconds, deadline, signal);
  const progress = await ProgressListener.open(target);
  let caughtUp = false;
  try {
    const limitMs = maxLagSeconds * 1000;
    for (;;) {
      const lag = await readLagProgress(target);
      const fresh =
        lag !== undefined &&
        lag.phase === 'streaming' &&
        lag.heartbeatAgeSeconds !== null &&
        lag.heartbeatAgeSeconds <= HEARTBEAT_FRESH_SECONDS;
      if (fresh && lag.monitorKnows && lag.lagMs !== null && lag.lagMs <= limitMs) {
        caughtUp = true;
        return lag.lagMs / 1000;
      }
      for (;;) {
        if (Date.now() > deadline || signal?.aborted)
          throw lagTimeout(maxLagSeconds, timeoutMs, lag?.lagMs == null ? null : lag.lagMs / 1000, lag?.heartbeatAgeSeconds ?? null);
        // Woken by the next batch sync commits. Its notification says the lag: one still over the
        // limit needs no read (a backlog applied in hundreds of batches a second would otherwise
        // cost as many queries); one under it is read again, which also checks that sync is alive
        // and that its monitor knows the lag.
        const notified = await progress.next(Math.min(UNNOTIFIED_LOOK_MS, Math.max(0, deadline - Date.now())), signal);
        if (notified === undefined || notified.lagMs === null || notified.lagMs <= limitMs) break;
      }
    }
  } finally {
    // A session that failed has nothing left to unlisten: the first error is the one.
    await progress.close().catch(() => undefined);
    // Caught up, the notifications are wanted through the freeze that follows, and no longer; given
    // up, not at all. (A cut-over that dies leaves its wish to run out by itself.)
    await wantProgress(target, caughtUp ? PROGRESS_WANTED_PAST_CATCH_UP_MS : 0).catch(() => undefined);
  }
}

/** The catch-up against a sync that does not measure its stream's lag (an earlier version): the monitor's figure, once a second. */
async function waitForMonitorLag(target: pg.Client, maxLagSeconds: number, deadline: number, signal?: AbortSignal): Promise<number> {
  const timeoutMs = deadline - Date.now();
  for (;;) {
    const state = await readSyncState(target);
    if (state && syncIsStreaming(state) && state.lagSeconds !== null && state.lagSeconds <= maxLagSeconds) return state.lagSeconds;
    if (Date.now() > deadline || signal?.aborted)
      throw lagTimeout(maxLagSeconds, timeoutMs, state?.lagSeconds ?? null, state?.heartbeatAgeSeconds ?? null);
    await sleep(MONITOR_LAG_POLL_MS, signal);
  }
}

function lagTimeout(maxLagSeconds: number, timeoutMs: number, lag: number | null, age: number | null): PgferryError {
  return new PgferryError(
    'lag-timeout',
    `target: sync did not get within ${maxLagSeconds} s of the source in ${(timeoutMs / 1000).toFixed(0)} s (lag ${lag === null ? 'unknown' : `${lag.toFixed(3)} s`}${age !== null && age > HEARTBEAT_FRESH_SECONDS ? `, no heartbeat for ${age.toFixed(0)} s: is sync running?` : ''})`,
    {
      side: 'target',
      fix: 'let sync catch up (pgferry status shows the lag), then run the cut-over again; or raise --max-lag or --catch-up-timeout',
    },
  );
}

/**
 * Step 3: sync has committed on the target the transaction that carries this cut-over's fence,
 * so every source commit before the freeze is on the target. The applied position passing the
 * fence's own position says so on every version; on 14+, where pgoutput carries logical
 * messages, sync also records the fence itself (at or past `after`). PostgreSQL 13 has no
 * messages in pgoutput, but still sends the fence's (empty) transaction, or, if it skips it,
 * moves the idle position past it. Woken by sync's notification of the commit that carries it
 * (its round trip is timed as the step 'fence applied', run.ts).
 */
export async function waitForFence(target: pg.Client, fence: Fence, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // Listening before the first look: a batch committed after it notifies, one before it is read.
  const progress = await ProgressListener.open(target);
  try {
    let seen: Pick<SyncProgress, 'applied' | 'fence'> | undefined = await readFenceProgress(target);
    for (;;) {
      if (seen && (seen.applied >= fence.lsn || (seen.fence !== undefined && seen.fence >= fence.after))) return;
      if (signal?.aborted)
        throw new PgferryError('interrupted', 'interrupted while waiting for the fence', { fix: 'run pgferry cutover again when ready' });
      if (Date.now() > deadline) {
        throw new PgferryError('fence-timeout', `target: sync did not apply the fence within ${(timeoutMs / 1000).toFixed(1)} s`, {
          side: 'target',
          fix: 'check that pgferry sync is running and not stuck (pgferry status, its log), then run the cut-over again; or raise --fence-timeout',
        });
      }
      // Woken by the commit of the batch that carries the fence: its notification says what it applied.
      const next = await progress.next(Math.min(UNNOTIFIED_LOOK_MS, Math.max(0, deadline - Date.now())), signal);
      seen = next ?? (await readFenceProgress(target));
    }
  } finally {
    // The session is the cut-over's own for the fence, closed with it: no UNLISTEN round trip inside the freeze.
    progress.stopListening();
  }
}

/**
 * Step 6: asks sync to stop through the target and waits until it says it has. Woken by sync's
 * notification of the commit that records it stopped, on `watch` (made to listen before the
 * freeze: PhaseListener.prepare), with no polling interval; should none come (a sync of an
 * earlier version does not notify), the phase is read on `target` every UNNOTIFIED_LOOK_MS.
 */
export async function stopSync(target: pg.Client, watch: pg.Client, reason: string, timeoutMs: number): Promise<boolean> {
  // Attached before the request: the notification cannot come before the request it answers.
  const phases = PhaseListener.attach(watch);
  try {
    await requestSyncStop(target, reason);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const notified = await phases.next(Math.min(UNNOTIFIED_LOOK_MS, Math.max(0, deadline - Date.now())));
      // Delivered at the commit that set it: nothing to read back.
      if (notified === 'stopped' || (await readSyncPhase(target)) === 'stopped') return true;
      if (Date.now() > deadline) return false;
    }
  } finally {
    phases.stopListening();
  }
}
