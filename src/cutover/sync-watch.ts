import type pg from 'pg';
import { PgferryError } from '../errors.js';
import {
  copyIsResumable,
  HEARTBEAT_FRESH_SECONDS,
  readFenceProgress,
  readSyncPhase,
  readSyncState,
  requestSyncStop,
  syncIsStreaming,
  type SyncState,
} from '../state/index.js';
import type { Fence } from './fence.js';
import { sleep } from '../plumbing/index.js';

/** How often the freeze's waits on sync look at the target: each look is one small query. */
const FENCE_POLL_MS = 2;

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

/** Step 1: lag under the limit, as sync's own monitor measures it, within the time limit. */
export async function waitForLag(target: pg.Client, maxLagSeconds: number, timeoutMs: number, signal?: AbortSignal): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last: { lag: number | null; age: number | null } = { lag: null, age: null };
  for (;;) {
    const state = await readSyncState(target);
    last = { lag: state?.lagSeconds ?? null, age: state?.heartbeatAgeSeconds ?? null };
    if (state && syncIsStreaming(state) && state.lagSeconds !== null && state.lagSeconds <= maxLagSeconds) return state.lagSeconds;
    if (Date.now() > deadline || signal?.aborted) {
      throw new PgferryError(
        'lag-timeout',
        `target: sync did not get within ${maxLagSeconds} s of the source in ${(timeoutMs / 1000).toFixed(0)} s (lag ${last.lag === null ? 'unknown' : `${last.lag.toFixed(1)} s`}${last.age !== null && last.age > HEARTBEAT_FRESH_SECONDS ? `, no heartbeat for ${last.age.toFixed(0)} s: is sync running?` : ''})`,
        {
          side: 'target',
          fix: 'let sync catch up (pgferry status shows the lag), then run the cut-over again; or raise --max-lag or --catch-up-timeout',
        },
      );
    }
    await sleep(100);
  }
}

/**
 * Step 3: sync has committed on the target the transaction that carries this cut-over's fence,
 * so every source commit before the freeze is on the target. The applied position passing the
 * fence's own position says so on every version; on 14+, where pgoutput carries logical
 * messages, sync also records the fence itself (at or past `after`). PostgreSQL 13 has no
 * messages in pgoutput, but still sends the fence's (empty) transaction, or, if it skips it,
 * moves the idle position past it.
 */
export async function waitForFence(target: pg.Client, fence: Fence, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const progress = await readFenceProgress(target);
    if (progress && (progress.applied >= fence.lsn || (progress.fence !== undefined && progress.fence >= fence.after))) return;
    if (signal?.aborted)
      throw new PgferryError('interrupted', 'interrupted while waiting for the fence', { fix: 'run pgferry cutover again when ready' });
    if (Date.now() > deadline) {
      throw new PgferryError('fence-timeout', `target: sync did not apply the fence within ${(timeoutMs / 1000).toFixed(1)} s`, {
        side: 'target',
        fix: 'check that pgferry sync is running and not stuck (pgferry status, its log), then run the cut-over again; or raise --fence-timeout',
      });
    }
    // Sync applies the fence within milliseconds of its commit: looked for often, it costs little more.
    await sleep(FENCE_POLL_MS);
  }
}

/** Step 6: asks sync to stop through the target and waits until it says it has. */
export async function stopSync(target: pg.Client, reason: string, timeoutMs: number): Promise<boolean> {
  await requestSyncStop(target, reason);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await readSyncPhase(target)) === 'stopped') return true;
    if (Date.now() > deadline) return false;
    await sleep(FENCE_POLL_MS);
  }
}
