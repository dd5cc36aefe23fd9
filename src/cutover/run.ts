import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { Scope } from '../catalog/index.js';
import { connect } from '../config/index.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../log/index.js';
import { formatLsn } from '../replication/index.js';
import { ensureCutoverState, readSlotPosition, recordFreezeIntent, withdrawSyncStop, type FreezeRecord } from '../state/index.js';
import { verify, type VerifyReport } from '../verify/index.js';
import type { CutoverOptions, FreezeContext, VerifyLevel } from './context.js';
import { failedAt, lateWritesFailure, throwIfInterrupted, verifyFailed } from './failures.js';
import { emitFence } from './fence.js';
import { finishCutover, type CutoverReport, type Frozen } from './finish.js';
import { lateWrites, type LateWrites } from './late-writes.js';
import { writableSession } from './read-only.js';
import { applyFreeze, drainForFreeze, planFreeze, type FreezePlan } from './freeze.js';
import { syncSequences } from './sequences.js';
import { LargeObjectSync } from '../copy/index.js';
import { CutoverSteps, round } from './steps.js';
import { assertSyncStreaming, stopSync, waitForFence, waitForLag } from './sync-watch.js';
import { unfreezeAfterFailure } from './undo.js';
import { pauseTooLong, withPoolOutcome } from './failures.js';
import { PoolSwitch, type PoolReport } from '../pgbouncer/index.js';
import {
  handOver,
  freezesLeftOnTarget,
  liftFreezesOfTarget,
  prepareWayBack,
  withdrawWayBack,
  type WayBack,
  type WayBackReady,
  type WayBackSides,
} from './way-back.js';
import { closeClient } from '../plumbing/index.js';
import { ChangeRecord, type ChangesAhead, type ChangesInFreeze } from './changes.js';

/** Time allowed for sync to notice the stop request and end cleanly. */
const SYNC_STOP_TIMEOUT_MS = 15_000;

/**
 * `pgferry cutover`, while `pgferry sync` streams in another process:
 *  1. make the way back on the target (way-back.ts), unless `--no-fallback`; with `--verify
 *     changes` (the default), have sync record the rows it applies, verify every row while sync
 *     streams, and compare the rows recorded since, until little is left (changes.ts); then
 *     wait until sync is within `--max-lag` of the source;
 *  2. freeze writes on the source and drain the sessions that could still write;
 *  3. emit a fence into the change stream and wait until sync has applied it: the target now
 *     holds every transaction the source committed;
 *  4. set the target's sequences to the source's values (plus the margin; read while the fence
 *     travels), and make its large objects the source's (they are in no stream; most changes
 *     were carried just before the freeze);
 *  5. verify: the rows sync recorded since the last look before the freeze (changes), or the
 *     counts of every table, or every row (full);
 *  6. stop sync;
 *  7. read the slot for writes committed past sync's final position (late-writes.ts): a
 *     session that escaped the freeze. If there are any, the cut-over is undone: the stop
 *     request is withdrawn so sync can carry them, and the freeze is lifted;
 *  8. hand over: the way back starts at the target's position now, when both sides are equal.
 * What a freeze changes is written on the target before the source is touched. If any step
 * from 2 to 5 fails, the freeze is lifted, sync keeps running, and the error says which step;
 * the way back made in step 1 is removed again whenever the cut-over does not complete.
 */
export async function cutover(options: CutoverOptions): Promise<CutoverReport> {
  const log = options.logger.child({ step: 'cutover' });
  const scope = new Scope(options.filter);
  const steps = new CutoverSteps();

  const target = await connect(options.target);
  let source: { client: pg.Client } | undefined;
  let pool: PoolSwitch | undefined;
  let record: ChangeRecord | undefined;
  let watch: pg.Client | undefined;
  try {
    source = await connect(options.source);
    const sourceClient = source.client;
    // A cut-over that died may have left the source frozen: this session must write anyway.
    await writableSession(sourceClient);
    const state = await assertSyncStreaming(target.client);
    const plan = await planFreeze(sourceClient, options.freeze, options.roles, scope);
    // PgBouncer's console, pooled database and file are checked before anything is made.
    pool = options.pgbouncer ? await PoolSwitch.prepare(options.pgbouncer, options.source) : undefined;

    // The way back is made before the freeze (way-back.ts): the freeze pays only for its hand-over.
    // A target that cannot have one is refused before any waiting.
    const names = { name: state.name, slot: state.slot, publication: state.publication };
    const sides: WayBackSides = { source: sourceClient, target: target.client, filter: options.filter, scope, log };
    const ready = wantsWayBack(options)
      ? await steps.run('way back', () => {
          log.info('preparing the way back on the target: capture, publication and slot');
          return prepareWayBack(sides, names);
        })
      : undefined;
    const withdraw = async (error: unknown): Promise<never> => {
      if (ready)
        await withdrawWayBack(sides, names).catch((problem: unknown) =>
          log.warn({ error: messageOf(problem) }, 'could not remove the way back the failed cut-over prepared on the target'),
        );
      throw error;
    };
    // A return lifts the freeze the cut-over away from the target left on it: read now, lifted in the freeze.
    const targetFreezes = await freezesLeftOnTarget(sides).catch(withdraw);
    // Large objects are in no stream: most of what changed since the copy is carried now, while
    // writes go on; the freeze carries only what changes after this.
    const largeObjects = await LargeObjectSync.between(sourceClient, target.client).catch(withdraw);
    const early = await steps.run('large objects ahead', () => largeObjects.compareAll()).catch(withdraw);
    if (early.created + early.changed + early.removed > 0) log.info(early, 'large objects brought up to date before the freeze');
    // The fence is watched on a session of its own: the sequences are set on the cut-over's meanwhile.
    // Opened now, so that nothing between the last look at the changes and the freeze waits for it.
    watch = await connect(options.target).then((c) => c.client, withdraw);
    let ahead: (ChangesAhead & { readonly report: VerifyReport }) | null = null;
    if (options.verify === 'changes') {
      log.info('asking sync to record the rows it applies, then verifying every row while it streams');
      record = await steps.run('record changes', () => ChangeRecord.begin(options, sourceClient, log)).catch(withdraw);
      const changes = record;
      const verified = await steps.run('verify ahead', () => changes.verifyAhead(options)).catch(withdraw);
      log.info({ tables: verified.tables.length, seconds: verified.seconds }, 'every row is equal while sync streams');
      const passes = await steps.run('changes ahead', () => changes.narrow(options.signal)).catch(withdraw);
      ahead = {
        recordedFrom: changes.recordedFrom,
        verify: { identical: verified.identical, seconds: verified.seconds, tables: verified.tables.length, notes: verified.notes },
        passes,
        report: verified,
      };
    }
    // Last before the freeze, so the lag it measures is the lag the freeze starts with.
    log.info({ maxLagSeconds: options.maxLagSeconds }, 'waiting for sync to be within the lag limit');
    const lagAtStart = await steps
      .run('catch up', () => waitForLag(target.client, options.maxLagSeconds, options.catchUpTimeoutMs, options.signal))
      .catch(withdraw);
    // The lease now covers the freeze: nothing renews it while the freeze's sessions are busy.
    await record?.holdThroughFreeze(options.drainTimeoutMs + options.fenceTimeoutMs).catch(withdraw);
    const cut: FreezeContext = await recordIntent(target.client, plan).then(
      (cutoverId) => ({
        options,
        source: sourceClient,
        target: target.client,
        plan,
        cutoverId,
        // Sync's session, and the sessions that check the changed rows inside the freeze.
        spare: [...(state.sourcePid === null ? [] : [state.sourcePid]), ...(record?.sourcePids ?? [])],
        log,
      }),
      withdraw,
    );
    const done = await whileFrozen(cut, steps, { sides, ready, lagAtStart, pool, targetFreezes, largeObjects, record, ahead, watch }).catch(
      withdraw,
    );
    return await finishCutover(cut, done, steps.timed, sides, names);
  } finally {
    // Recording ends with the cut-over, whatever its outcome (a killed one's lease runs out).
    await record?.end();
    if (watch) await closeClient(watch);
    await pool?.close();
    if (source) await closeClient(source.client);
    await closeClient(target.client);
  }
}

async function recordIntent(target: pg.Client, plan: FreezePlan): Promise<number> {
  await ensureCutoverState(target);
  return recordFreezeIntent(target, plan);
}

/**
 * Steps 2 to 8, with the source frozen: what they established, or, on any failure, the freeze
 * lifted and an error saying at which step (and, past the stop, sync's stop withdrawn).
 */
async function whileFrozen(
  cut: FreezeContext,
  steps: CutoverSteps,
  {
    sides,
    ready,
    lagAtStart,
    pool,
    targetFreezes,
    largeObjects,
    record,
    ahead,
    watch,
  }: {
    readonly sides: WayBackSides;
    readonly ready: WayBackReady | undefined;
    readonly lagAtStart: number;
    readonly pool: PoolSwitch | undefined;
    readonly targetFreezes: readonly FreezeRecord[];
    /** Compared once before the freeze: inside it only what changed since is carried. */
    readonly largeObjects: LargeObjectSync;
    /** `--verify changes`: the rows sync recorded, and what was compared before the freeze. */
    readonly record: ChangeRecord | undefined;
    readonly ahead: (ChangesAhead & { readonly report: VerifyReport }) | null;
    /** A session on the target of its own, for the fence. */
    readonly watch: pg.Client;
  },
): Promise<Frozen> {
  const { options, plan, log, cutoverId } = cut;
  const sourceClient = cut.source;
  const target = cut.target;
  // Clients wait in PgBouncer's pause from its start: no step may take them past --max-pause.
  const pauseLimit = pool ? AbortSignal.timeout(pool.maxPauseMs) : undefined;
  const signal = pauseLimit ? AbortSignal.any([pauseLimit, ...(options.signal ? [options.signal] : [])]) : options.signal;
  let frozenFrom = performance.now();
  let frozenAt: string | undefined;
  try {
    if (pool) {
      log.info({ database: pool.name }, 'pausing PgBouncer: new transactions wait, running ones finish');
      await steps.run('pause', () => pool.pause(options.drainTimeoutMs, log));
      frozenFrom = performance.now();
    }
    const since = await steps.run('freeze', () => applyFreeze(sourceClient, plan, sides.scope));
    frozenAt = since;
    log.info({ freeze: plan.mode }, 'writes frozen on the source; draining sessions');
    const drained = await steps.run('drain', () => drainForFreeze(sourceClient, plan, since, cut.spare, options.drainTimeoutMs, signal));
    const { fence, sequences } = await steps.run('fence', async () => {
      const emitted = await emitFence(sourceClient, cutoverId);
      // Drained, the source hands out no more values: its sequences are set on the target while the fence travels.
      const [applied, set] = await Promise.allSettled([
        steps.alongside('fence applied', () => waitForFence(watch, emitted, options.fenceTimeoutMs, signal)),
        steps.alongside('sequences', () => syncSequences(sourceClient, target, sides.scope, options.sequenceMargin)),
      ]);
      if (applied.status === 'rejected') throw applied.reason;
      if (set.status === 'rejected') throw set.reason;
      return { fence: emitted, sequences: set.value };
    });
    const fenceLsn = formatLsn(fence.lsn);
    log.info({ fenceLsn }, 'sync applied everything up to the fence');
    throwIfInterrupted(signal);
    const missing = sequences.filter((s) => s.target === null);
    if (missing.length > 0) log.warn({ sequences: missing.map((s) => s.name) }, 'sequences missing on the target were not set');
    log.info('carrying the large objects changed since the pass before the freeze');
    const carried = await steps.run('large objects', () => largeObjects.carryChanges());
    if (carried.missingRoles.length > 0) {
      log.warn({ roles: carried.missingRoles }, "roles missing on the target: their large objects' ownership and grants were left out");
    }
    const level = options.verify;
    let verified: VerifyReport | null = ahead?.report ?? null;
    let inFreeze: ChangesInFreeze | null = null;
    if (level === 'none') steps.skip('verify');
    else if (level === 'changes') inFreeze = (await steps.run('verify', () => record!.checkInFreeze(signal))).summary;
    else verified = await steps.run('verify', () => verifyFrozen(options, level, signal));
    if (verified && !verified.identical) throw verifyFailed(verified);
    throwIfInterrupted(signal);
    const syncStopped = await steps.run('stop sync', () => stopSync(target, `cut over at fence ${fenceLsn}`, SYNC_STOP_TIMEOUT_MS));
    // Past the stop only LateWritesSignal undoes the cut-over; a check that cannot run is a warning.
    const late = syncStopped ? await steps.run('late writes', () => checkLateWrites(sourceClient, target, log)) : null;
    if (!syncStopped) log.warn('writes after the fence were not checked: sync still holds the slot');
    // Only once nothing writes to the target any more does it hold exactly the source's rows.
    let wayBack: WayBack | null = null;
    let wayBackSkipped = ready ? null : wayBackLeftOut(options);
    if (ready && syncStopped)
      wayBack = await steps.run('hand over', () => {
        log.info("handing over: the way back starts at the target's position now");
        return handOver(sides, ready, cutoverId);
      });
    else if (ready) wayBackSkipped = 'sync did not confirm it stopped, so the target may still change';
    let pgbouncer: PoolReport | null = null;
    if (pool) {
      throwIfInterrupted(signal);
      await steps.run('repoint', () => pool.repoint(options.target));
    }
    // A return: the freeze the cut-over away from the target left on it goes before any client
    // reaches it (PgBouncer's, resumed next; the application's own, once this command returns).
    const targetFreezesLifted =
      targetFreezes.length === 0 ? 0 : await steps.run('unfreeze target', () => liftFreezesOfTarget(sides, targetFreezes));
    if (pool) {
      pgbouncer = await steps.run('resume', () => pool.resume());
      log.info(
        { database: pgbouncer.database, pausedMs: pgbouncer.pausedMs, pointsTo: pgbouncer.pointsTo },
        'PgBouncer resumed on the target',
      );
    }
    // The source stayed frozen through the check and the hand-over: both are part of the downtime.
    return {
      downtimeMs: round(performance.now() - frozenFrom),
      fenceLsn: fence.lsn,
      sessionsEnded: drained.sessionsEnded,
      sequences,
      largeObjects: carried,
      verified,
      checked: {
        level,
        beforeFreeze: ahead === null ? null : { recordedFrom: ahead.recordedFrom, verify: ahead.verify, passes: ahead.passes },
        insideFreeze: inFreeze,
      },
      syncStopped,
      lateTransactions: late,
      lagAtStartSeconds: lagAtStart,
      wayBack,
      wayBackSkipped,
      pgbouncer,
      targetFreezesLifted,
    };
  } catch (failure) {
    const lifted = await unfreezeAfterFailure(cut, frozenAt);
    // Lifted first: clients resumed on a frozen source would fail.
    const poolProblem = pool ? await pool.undo(log) : undefined;
    const error = pauseLimit?.aborted && !options.signal?.aborted ? pauseTooLong(pool!, steps.current) : failure;
    // Past the stop, sync stopped for a cut-over that is now undone: it must be able to start again.
    const pastStop = error instanceof LateWritesSignal || ['hand over', 'repoint', 'unfreeze target', 'resume'].includes(steps.current);
    const reopened = pastStop
      ? await withdrawSyncStop(target).then(
          () => undefined,
          (problem: unknown) => messageOf(problem),
        )
      : undefined;
    if (error instanceof LateWritesSignal)
      throw withPoolOutcome(lateWritesFailure(error.late, plan.mode, lifted, reopened), pool, poolProblem);
    throw withPoolOutcome(
      failedAt(steps.current, error, plan.mode, lifted, { syncStopped: pastStop, reopenProblem: reopened }),
      pool,
      poolProblem,
    );
  }
}

/** The way back is prepared unless told not to, or unless the source is to be writable again (it would then diverge). */
function wantsWayBack(options: CutoverOptions): boolean {
  return options.fallback && !options.unfreezeSource;
}

function wayBackLeftOut(options: CutoverOptions): string {
  return options.fallback ? '--unfreeze-source makes the source writable, and a way back needs it frozen and equal' : '--no-fallback';
}

/** Step 7 found writes past sync's final position: the one outcome after the stop that undoes the cut-over. */
class LateWritesSignal extends Error {
  constructor(readonly late: LateWrites) {
    super("writes committed past sync's final position");
    this.name = 'LateWritesSignal';
  }
}

/**
 * Step 7: the number of transactions the source committed past sync's final position (which
 * throws LateWritesSignal when there are any), or null when the slot could not be read: the
 * cut-over itself is complete, so that is a warning, not a failure.
 */
async function checkLateWrites(source: pg.Client, target: pg.Client, log: Logger): Promise<number | null> {
  let late: LateWrites;
  try {
    const state = await readSlotPosition(target);
    if (!state) return null;
    late = await lateWrites(source, state.slot, state.publication, state.appliedLsn);
  } catch (error) {
    log.warn({ error: messageOf(error) }, 'writes after the fence could not be checked');
    return null;
  }
  if (late.transactions > 0) throw new LateWritesSignal(late);
  return 0;
}

/** With writes frozen the result is exact: no recheck for a moving source. */
function verifyFrozen(
  options: CutoverOptions,
  mode: Exclude<VerifyLevel, 'none' | 'changes'>,
  signal: AbortSignal | undefined,
): Promise<VerifyReport> {
  return verify({
    source: options.source,
    target: options.target,
    filter: options.filter,
    mode,
    logger: options.logger,
    recheckWhileSyncing: false,
    signal,
  });
}
