import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { Scope, type ScopeFilter } from '../catalog/index.js';
import { connect, type ConnectionSpec } from '../config/index.js';
import { messageOf, PgferryError } from '../errors.js';
import type { Logger } from '../log/index.js';
import { closeClient, destroyClient, sleep, withDeadline } from '../plumbing/index.js';
import { formatLsn, type Lsn } from '../replication/index.js';
import { ensureCutoverState, readSyncState, recordCutoverOutcome, recordFreezeIntent, recordUnfrozen, withdrawSyncStop, type FreezeMode } from '../state/index.js';
import { verify, type VerifyReport } from '../verify/index.js';
import { emitFence } from './fence.js';
import { describeLateWrites, lateWrites, type LateWrites } from './late-writes.js';
import { writableSession } from './read-only.js';
import { applyFreeze, drainForFreeze, endSessionsOpenedDuringFreeze, liftFreeze, planFreeze, type FreezePlan } from './freeze.js';
import { syncSequences, type SequenceSync } from './sequences.js';
import { assertSyncStreaming, stopSync, waitForFence, waitForLag } from './sync-watch.js';

export type VerifyLevel = 'none' | 'counts' | 'full';

export interface CutoverOptions {
  readonly source: ConnectionSpec;
  readonly target: ConnectionSpec;
  readonly filter: ScopeFilter;
  readonly maxLagSeconds: number;
  readonly catchUpTimeoutMs: number;
  readonly freeze: FreezeMode;
  /** `--freeze revoke`: the roles whose write privileges are revoked. */
  readonly roles: readonly string[];
  readonly drainTimeoutMs: number;
  readonly fenceTimeoutMs: number;
  readonly sequenceMargin: bigint;
  readonly verify: VerifyLevel;
  readonly unfreezeSource: boolean;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
}

export interface CutoverStep {
  readonly step: string;
  readonly ms: number;
}

export interface CutoverReport {
  /** From the freeze taking hold until sync stopped and the slot was read for late writes. */
  readonly downtimeMs: number;
  readonly fenceLsn: string;
  readonly freeze: FreezeMode;
  readonly sessionsEnded: number;
  readonly sequences: readonly SequenceSync[];
  readonly verified: VerifyReport | null;
  readonly syncStopped: boolean;
  /**
   * Transactions the source committed past sync's final position (0: none), or null when that
   * could not be checked (sync did not confirm its stop; the slot could not be read).
   */
  readonly lateTransactions: number | null;
  readonly sourceUnfrozen: boolean;
  readonly lagAtStartSeconds: number;
  readonly steps: readonly CutoverStep[];
}

/** Time allowed for sync to notice the stop request and end cleanly. */
const SYNC_STOP_TIMEOUT_MS = 15_000;

/**
 * `pgferry cutover`, while `pgferry sync` streams in another process:
 *  1. wait until sync is within `--max-lag` of the source;
 *  2. freeze writes on the source and drain the sessions that could still write;
 *  3. emit a fence into the change stream and wait until sync has applied it: the target now
 *     holds every transaction the source committed;
 *  4. set the target's sequences to the source's values (plus the margin);
 *  5. verify (counts, or full content);
 *  6. stop sync;
 *  7. read the slot for writes committed past sync's final position (late-writes.ts): a
 *     session that escaped the freeze. If there are any, the cut-over is undone: the stop
 *     request is withdrawn so sync can carry them, and the freeze is lifted.
 * What a freeze changes is written on the target before the source is touched. If any step
 * from 2 to 5 fails, the freeze is lifted, sync keeps running, and the error says which step.
 */
export async function cutover(options: CutoverOptions): Promise<CutoverReport> {
  const log = options.logger.child({ step: 'cutover' });
  const scope = new Scope(options.filter);
  const steps: CutoverStep[] = [];
  const timed = async <T>(step: string, work: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await work();
    } finally {
      steps.push({ step, ms: round(performance.now() - started) });
    }
  };

  const target = await connect(options.target);
  let source: { client: pg.Client } | undefined;
  try {
    source = await connect(options.source);
    const sourceClient = source.client;
    // A cut-over that died may have left the source frozen: this session must write anyway.
    await writableSession(sourceClient);
    const state = await assertSyncStreaming(target.client);
    const plan = await planFreeze(sourceClient, options.freeze, options.roles, scope);
    log.info({ maxLagSeconds: options.maxLagSeconds }, 'waiting for sync to be within the lag limit');
    const lagAtStart = await timed('catch up', () => waitForLag(target.client, options.maxLagSeconds, options.catchUpTimeoutMs, options.signal));

    await ensureCutoverState(target.client);
    const cutoverId = await recordFreezeIntent(target.client, plan);
    const spare = state.sourcePid === null ? [] : [state.sourcePid];
    const frozenFrom = performance.now();
    let frozenAt: string | undefined;
    // Past the stop request sync is gone for good: what fails from here is reported as such,
    // never as "sync keeps running".
    const finish = async (done: {
      downtimeMs: number;
      fenceLsn: Lsn;
      drained: number;
      sequences: SequenceSync[];
      verified: VerifyReport | null;
      syncStopped: boolean;
      lateTransactions: number | null;
      lagAtStart: number;
    }): Promise<CutoverReport> => {
      if (!done.syncStopped) log.warn('sync did not confirm it stopped; it will stop when it next reads the target (or stop it yourself)');
      let sourceUnfrozen = false;
      try {
        if (options.unfreezeSource && plan.mode !== 'none') {
          await liftFreeze(sourceClient, plan);
          await recordUnfrozen(target.client, cutoverId);
          sourceUnfrozen = true;
        }
        // A write with synchronous_commit on (the target's default for this session): its commit
        // flushes the target's WAL, and with it every batch sync committed asynchronously.
        await recordCutoverOutcome(target.client, cutoverId, { outcome: 'done', fenceLsn: done.fenceLsn, downtimeMs: done.downtimeMs });
      } catch (error) {
        throw new PgferryError('query', `the cut-over is done (everything up to fence ${formatLsn(done.fenceLsn)} is on the target, sync stopped) but finishing failed: ${messageOf(error)}`, {
          fix: 'point the application at the target; run pgferry cleanup (with --unfreeze-source if you wanted the source writable)',
          cause: error,
        });
      }
      return {
        downtimeMs: done.downtimeMs,
        fenceLsn: formatLsn(done.fenceLsn),
        freeze: plan.mode,
        sessionsEnded: done.drained,
        sequences: done.sequences,
        verified: done.verified,
        syncStopped: done.syncStopped,
        lateTransactions: done.lateTransactions,
        sourceUnfrozen,
        lagAtStartSeconds: done.lagAtStart,
        steps,
      };
    };
    let stage = 'freeze';
    let done: Parameters<typeof finish>[0];
    try {
      frozenAt = await timed('freeze', () => applyFreeze(sourceClient, plan, scope));
      log.info({ freeze: plan.mode }, 'writes frozen on the source; draining sessions');
      stage = 'drain';
      const drained = await timed('drain', () => drainForFreeze(sourceClient, plan, frozenAt!, spare, options.drainTimeoutMs, options.signal));
      stage = 'fence';
      const fence = await timed('fence', async () => {
        const emitted = await emitFence(sourceClient, cutoverId);
        await waitForFence(target.client, emitted, options.fenceTimeoutMs, options.signal);
        return emitted;
      });
      const fenceLsn = formatLsn(fence.lsn);
      log.info({ fenceLsn }, 'sync applied everything up to the fence');
      throwIfInterrupted(options.signal);
      stage = 'sequences';
      const sequences = await timed('sequences', () => syncSequences(sourceClient, target.client, scope, options.sequenceMargin));
      const missing = sequences.filter((s) => s.target === null);
      if (missing.length > 0) log.warn({ sequences: missing.map((s) => s.name) }, 'sequences missing on the target were not set');
      stage = 'verify';
      const verified = options.verify === 'none' ? null : await timed('verify', () => verifyFrozen(options, options.verify as 'counts' | 'full'));
      if (verified && !verified.identical) throw verifyFailed(verified);
      throwIfInterrupted(options.signal);
      stage = 'stop sync';
      const syncStopped = await timed('stop sync', () => stopSync(target.client, `cut over at fence ${fenceLsn}`, SYNC_STOP_TIMEOUT_MS));
      stage = 'late writes';
      // Past the stop only LateWritesFound undoes the cut-over; a check that cannot run is a warning.
      const late = syncStopped ? await timed('late writes', () => checkLateWrites(sourceClient, target.client, log)) : null;
      if (!syncStopped) log.warn('writes after the fence were not checked: sync still holds the slot');
      // The source stayed frozen through the check: it is part of the downtime.
      const downtimeMs = round(performance.now() - frozenFrom);
      done = { downtimeMs, fenceLsn: fence.lsn, drained: drained.sessionsEnded, sequences, verified, syncStopped, lateTransactions: late, lagAtStart };
    } catch (error) {
      const lifted = await unfreezeAfterFailure(options, sourceClient, target.client, cutoverId, plan, frozenAt, spare, log);
      if (error instanceof LateWritesFound) {
        // Sync has stopped: it must be able to start again to carry what the source committed.
        const reopened = await withdrawSyncStop(target.client).then(
          () => undefined,
          (problem: unknown) => messageOf(problem),
        );
        throw lateWritesFailure(error, plan, lifted, reopened);
      }
      throw failedAt(stage, error, plan, lifted);
    }
    return await finish(done);
  } finally {
    await source?.client.end().catch(() => undefined);
    await target.client.end().catch(() => undefined);
  }
}

class LateWritesFound extends Error {}

/**
 * Step 7: the number of transactions the source committed past sync's final position (which
 * throws LateWritesFound when there are any), or null when the slot could not be read: the
 * cut-over itself is complete, so that is a warning, not a failure.
 */
async function checkLateWrites(source: pg.Client, target: pg.Client, log: Logger): Promise<number | null> {
  let late: LateWrites;
  try {
    const state = await readSyncState(target);
    if (!state) return null;
    late = await lateWrites(source, state.slot, state.publication, state.appliedLsn);
  } catch (error) {
    log.warn({ error: messageOf(error) }, 'writes after the fence could not be checked');
    return null;
  }
  if (late.transactions > 0) throw new LateWritesFound(describeLateWrites(late));
  return 0;
}

function lateWritesFailure(error: LateWritesFound, plan: FreezePlan, lifted: Lifted, reopenProblem: string | undefined): PgferryError {
  const source =
    plan.mode === 'none' ? 'the source was not frozen (--freeze none)' : lifted.ok ? 'the freeze is lifted' : `the source could NOT be unfrozen (${lifted.problem}): run pgferry cleanup --unfreeze-source`;
  const sync =
    reopenProblem === undefined
      ? 'sync may run again'
      : `sync's stop request could NOT be withdrawn (${reopenProblem}): run UPDATE pgferry.sync SET stop_requested_at = NULL, stop_reason = NULL on the target before starting sync again`;
  return new PgferryError(
    'query',
    `cut-over undone: the source committed ${error.message} after sync's final position, so the target lacks them; ${source}, and ${sync}`,
    {
      side: 'source',
      fix:
        'something still writes to the source: a session that set default_transaction_read_only off or ran BEGIN READ WRITE, or, with --freeze none, the application itself. ' +
        'Start pgferry sync again (it continues from the target\'s position and carries those writes), stop that writer, and cut over again, with --freeze revoke --roles <its role> to hold it',
    },
  );
}

/** With writes frozen the result is exact: no recheck for a moving source. */
function verifyFrozen(options: CutoverOptions, mode: 'counts' | 'full'): Promise<VerifyReport> {
  return verify({
    source: options.source,
    target: options.target,
    filter: options.filter,
    mode,
    logger: options.logger,
    recheckWhileSyncing: false,
    signal: options.signal,
  });
}

function verifyFailed(report: VerifyReport): PgferryError {
  const different = report.tables.filter((t) => t.status !== 'identical');
  const shown = different.slice(0, 5).map((t) => `${t.name} (${t.status}: ${t.sourceRows} rows on the source, ${t.targetRows} on the target)`);
  const sequences = report.sequences.filter((s) => s.status === 'behind' || s.status === 'missing-on-target').map((s) => `sequence ${s.name} ${s.status}`);
  return new PgferryError('query', `the target differs from the source at the fence: ${[...shown, ...sequences].join(', ')}${different.length > 5 ? ` and ${different.length - 5} more tables` : ''}`, {
    side: 'target',
    fix: 'run pgferry verify --source … --target … to see the rows; do not point the application at the target',
  });
}

interface Lifted {
  readonly ok: boolean;
  readonly problem?: string;
}

/** How long a failed cut-over keeps trying to lift its freeze (the source may be restarting). */
const LIFT_WITHIN_MS = 30_000;

/**
 * Lifts the freeze after a failure, whatever broke: the session the cut-over used may be the
 * thing that failed (a network cut, a terminated backend, a failover), so each try after the
 * first opens a fresh session, until LIFT_WITHIN_MS. The outcome is recorded on the target the
 * same way, through a fresh session if need be; then sessions opened during the freeze are
 * ended as they become idle, so they reconnect writable.
 */
async function unfreezeAfterFailure(
  options: CutoverOptions,
  source: pg.Client,
  target: pg.Client,
  cutoverId: number,
  plan: FreezePlan,
  frozenAt: string | undefined,
  spare: readonly number[],
  log: Logger,
): Promise<Lifted> {
  const lifted: Lifted =
    plan.mode === 'none'
      ? { ok: true }
      : await onSourceUntilDone(options, source, log, async (client) => {
          // A transaction left open by the failed step would hold the lift.
          await client.query('ROLLBACK').catch(() => undefined);
          await liftFreeze(client, plan);
          if (plan.mode === 'read-only' && frozenAt !== undefined) {
            const { ended, left } = await endSessionsOpenedDuringFreeze(client, frozenAt, spare, SESSIONS_SETTLE_MS);
            if (ended > 0) log.info({ sessions: ended }, 'ended sessions opened during the freeze, so they reconnect writable');
            if (left > 0) log.warn({ sessions: left }, 'sessions opened during the freeze are still in a transaction: they stay read-only until they reconnect');
          }
        });
  await onTargetOnce(options, target, async (client) => {
    if (lifted.ok) await recordUnfrozen(client, cutoverId);
    await recordCutoverOutcome(client, cutoverId, { outcome: 'failed', fenceLsn: undefined, downtimeMs: undefined });
  }).catch((error: unknown) => log.warn({ error: messageOf(error) }, 'could not record the failed cut-over on the target'));
  return lifted;
}

/** How long the sessions opened during a lifted freeze are waited for, to end them once idle. */
const SESSIONS_SETTLE_MS = 10_000;

async function onSourceUntilDone(options: CutoverOptions, first: pg.Client, log: Logger, work: (client: pg.Client) => Promise<void>): Promise<Lifted> {
  const deadline = Date.now() + LIFT_WITHIN_MS;
  let problem = '';
  for (let attempt = 1; ; attempt++) {
    let fresh: pg.Client | undefined;
    try {
      if (attempt === 1) await withDeadline(work(first), 10_000, 'lifting the freeze', () => destroyClient(first));
      else {
        fresh = (await connect(options.source)).client;
        await writableSession(fresh);
        await withDeadline(work(fresh), 10_000, 'lifting the freeze');
      }
      return { ok: true };
    } catch (error) {
      problem = messageOf(error);
      log.warn({ error: problem, attempt }, 'could not lift the freeze yet; trying again on a fresh session');
    } finally {
      if (fresh) await closeClient(fresh);
    }
    if (Date.now() >= deadline) return { ok: false, problem };
    await sleep(Math.min(2000, 250 * attempt));
  }
}

async function onTargetOnce(options: CutoverOptions, first: pg.Client, work: (client: pg.Client) => Promise<void>): Promise<void> {
  try {
    await withDeadline(work(first), 10_000, 'recording on the target', () => destroyClient(first));
  } catch {
    const fresh = (await connect(options.target)).client;
    try {
      await withDeadline(work(fresh), 10_000, 'recording on the target');
    } finally {
      await closeClient(fresh);
    }
  }
}

function failedAt(stage: string, error: unknown, plan: FreezePlan, lifted: Lifted): PgferryError {
  const cause = error instanceof PgferryError ? error : undefined;
  const unfrozen =
    plan.mode === 'none'
      ? 'sync keeps running'
      : lifted.ok
        ? 'the source is writable again and sync keeps running'
        : `the source could NOT be unfrozen (${lifted.problem}): run pgferry cleanup --unfreeze-source; sync keeps running`;
  return new PgferryError(cause?.code ?? 'query', `cut-over failed at the ${stage} step: ${messageOf(error)}; ${unfrozen}`, {
    side: cause?.side,
    fix: cause?.fix ?? 'fix the cause above and run pgferry cutover again',
    cause: error,
  });
}

/** Interrupted mid-freeze, the cut-over unfreezes like any failure; past the stop request it finishes. */
function throwIfInterrupted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw interrupted();
}

export function interrupted(): PgferryError {
  return new PgferryError('usage', 'interrupted', { fix: 'run pgferry cutover again when ready' });
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
