import type pg from 'pg';
import { Scope } from '../catalog/index.js';
import { connect } from '../config/index.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../log/index.js';
import { formatLsn } from '../replication/index.js';
import {
  ensureCutoverState,
  PhaseListener,
  readSlotPosition,
  recordFreezeIntent,
  wantProgress,
  withdrawSyncStop,
  type FreezeRecord,
  type SyncState,
} from '../state/index.js';
import { verify, type VerifyReport } from '../verify/index.js';
import { LargeObjectSync, type LargeObjectReconcile } from '../copy/index.js';
import type { PoolReport } from '../pgbouncer/index.js';
import type { MigrationNames } from '../sync/index.js';
import { allBranches, closeClient } from '../plumbing/index.js';
import type { CutoverOptions, FreezeContext, VerifyLevel } from './context.js';
import { throwIfInterrupted, verifyFailed, type Lifted } from './failures.js';
import { emitFence, type Fence } from './fence.js';
import { finishCutover, type CutoverReport, type Frozen } from './finish.js';
import { lateWrites, RestartPoint, type LateWrites } from './late-writes.js';
import { writableSession } from './read-only.js';
import { applyFreeze, drainForFreeze, planFreeze, type FreezePlan } from './freeze.js';
import type { DrainReport } from './drain.js';
import { syncSequences, type SequenceSync } from './sequences.js';
import { CutoverSteps } from './steps.js';
import { assertSyncStreaming, stopSync, waitForFence, waitForLag } from './sync-watch.js';
import { unfreezeAfterFailure } from './undo.js';
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
import { ChangeRecord, type ChangesAhead, type ChangesInFreeze } from './changes.js';

/** Time allowed for sync to notice the stop request and end cleanly. */
const SYNC_STOP_TIMEOUT_MS = 15_000;
/** How long, before the freeze, the cut-over waits for sync to confirm its first restart mark (late-writes.ts RestartPoint). */
const RESTART_POINT_WAIT_MS = 3_000;

/**
 * One database's part of a cut-over, step by step: run.ts runs one of these for a database, or
 * several under one freeze for an instance, and decides when each step runs and what a failure
 * undoes. Each step keeps what it established here; each is timed into this database's steps.
 */
export class DatabaseCutover {
  readonly steps = new CutoverSteps();
  private ready: WayBackReady | undefined;
  private targetFreezes: readonly FreezeRecord[] = [];
  private largeObjectSync: LargeObjectSync | undefined;
  /** A session on the target of its own, for the fence: the sequences are set on the cut-over's meanwhile. */
  private watch: pg.Client | undefined;
  /**
   * A source session of its own for reading the slot for late writes, so that read runs beside the
   * hand-over (which writes the way back's state through the main one): writable, spared by the drain.
   */
  private slotReader: { readonly client: pg.Client; readonly pid: number } | undefined;
  /** `--verify changes`: the rows sync records, and what was compared before the freeze. */
  private record: ChangeRecord | undefined;
  private verifiedAhead: VerifyReport | undefined;
  private ahead: (ChangesAhead & { readonly report: VerifyReport }) | null = null;
  private lagAtStart = 0;
  /** The catch-up asked sync to notify each batch it commits (until past the freeze): withdrawn by close. */
  private progressAsked = false;
  private cut: FreezeContext | undefined;
  private frozenAt: string | undefined;
  private drained: DrainReport | undefined;
  private fenced: { readonly fence: Fence; readonly sequences: readonly SequenceSync[] } | undefined;
  private carried: LargeObjectReconcile | undefined;
  private verified: VerifyReport | null = null;
  private inFreeze: ChangesInFreeze | null = null;
  /** Sync was asked to stop (whether or not it confirmed): a cut-over undone past here must withdraw the request. */
  private stopRequested = false;
  private syncStopped = false;
  private late: number | null = null;
  private wayBack: WayBack | null = null;
  private wayBackSkipped: string | null;
  private targetFreezesLifted = 0;

  private constructor(
    /** The database's name in an instance's cut-over; undefined for a cut-over of one database. */
    readonly database: string | undefined,
    readonly options: CutoverOptions,
    readonly log: Logger,
    private readonly source: pg.Client,
    private readonly target: pg.Client,
    private readonly state: SyncState,
    readonly plan: FreezePlan,
    private readonly sides: WayBackSides,
  ) {
    this.wayBackSkipped = wantsWayBack(options) ? null : wayBackLeftOut(options);
  }

  /** Connects to both sides and refuses early: no sync streaming, or a freeze that would not hold. Nothing is made. */
  static async open(options: CutoverOptions, database: string | undefined): Promise<DatabaseCutover> {
    const log = options.logger.child(database === undefined ? { step: 'cutover' } : { step: 'cutover', database });
    const scope = new Scope(options.filter);
    const target = await connect(options.target);
    let source: pg.Client | undefined;
    try {
      source = (await connect(options.source)).client;
      // A cut-over that died may have left the source frozen: this session must write anyway.
      await writableSession(source);
      const state = await assertSyncStreaming(target.client);
      const plan = await planFreeze(source, options.freeze, options.roles, scope);
      const sides: WayBackSides = { source, target: target.client, filter: options.filter, scope, log };
      return new DatabaseCutover(database, options, log, source, target.client, state, plan, sides);
    } catch (error) {
      if (source) await closeClient(source);
      await closeClient(target.client);
      throw error;
    }
  }

  private get names(): MigrationNames {
    return { name: this.state.name, slot: this.state.slot, publication: this.state.publication };
  }

  /** Step 1, what grows with the data: the way back, large objects, recording and verifying the rows while sync streams. */
  async prepare(): Promise<void> {
    const { options, log, steps, sides } = this;
    // The way back is made before the freeze (way-back.ts): the freeze pays only for its hand-over.
    // A target that cannot have one is refused before any waiting.
    if (wantsWayBack(options))
      this.ready = await steps.run('way back', () => {
        log.info('preparing the way back on the target: capture, publication and slot');
        return prepareWayBack(sides, this.names);
      });
    // A return lifts the freeze the cut-over away from the target left on it: read now, lifted in the freeze.
    this.targetFreezes = await freezesLeftOnTarget(sides);
    // Large objects are in no stream: most of what changed since the copy is carried now, while
    // writes go on; the freeze carries only what changes after this.
    const largeObjects = await LargeObjectSync.between(this.source, this.target);
    this.largeObjectSync = largeObjects;
    const early = await steps.run('large objects ahead', () => largeObjects.compareAll());
    if (early.created + early.changed + early.removed > 0) log.info(early, 'large objects brought up to date before the freeze');
    // Opened now, so that nothing between the last look at the changes and the freeze waits for it.
    this.watch = (await connect(options.target)).client;
    // Sync's word that it stopped wakes the stop's wait inside the freeze on this session.
    await PhaseListener.prepare(this.watch);
    this.slotReader = await openSlotReader(options);
    if (options.verify === 'changes') {
      log.info('asking sync to record the rows it applies, then verifying every row while it streams');
      const record = await steps.run('record changes', () => ChangeRecord.begin(options, this.source, log));
      this.record = record;
      if (options.checkIndexes !== false) await steps.run('index keyless tables', () => record.indexKeyless(options));
      const verified = await steps.run('verify ahead', () => record.verifyAhead(options));
      this.verifiedAhead = verified;
      log.info({ tables: verified.tables.length, seconds: verified.seconds }, 'every row is equal while sync streams');
    }
  }

  /** Last before the freeze: the rows changed since the verify, compared until little is left, then the lag. */
  async approach(): Promise<void> {
    const { options, log, steps } = this;
    const record = this.record;
    const verified = this.verifiedAhead;
    // With --verify changes only: its passes over the changes leave sync the time to confirm the
    // first mark; with counts or full the late-writes read is the least of the freeze anyway.
    const restart =
      record && verified
        ? await RestartPoint.mark(this.source, this.state.slot).catch((error: unknown) => {
            log.warn({ error: messageOf(error) }, 'could not mark a restart point for the late-writes read; it reads from further back');
            return undefined;
          })
        : undefined;
    if (record && verified) {
      const passes = await steps.run('changes ahead', () => record.narrow(options.signal));
      this.ahead = {
        recordedFrom: record.recordedFrom,
        verify: { identical: verified.identical, seconds: verified.seconds, tables: verified.tables.length, notes: verified.notes },
        passes,
        report: verified,
      };
    }
    // So that the late-writes read inside the freeze decodes from about the first mark, not from up
    // to 30 s back. Before the catch-up: any wait here must not add to the lag the freeze starts with.
    if (restart)
      await restart.propose(RESTART_POINT_WAIT_MS).then(
        (proposed) => {
          if (!proposed) log.debug('sync did not confirm the restart point in time: the late-writes read starts further back');
        },
        (error: unknown) => log.warn({ error: messageOf(error) }, 'could not propose a restart point for the late-writes read'),
      );
    // Last before the freeze, so the lag it measures is the lag the freeze starts with.
    log.info({ maxLagSeconds: options.maxLagSeconds }, 'waiting for sync to be within the lag limit');
    this.progressAsked = true;
    this.lagAtStart = await steps.run('catch up', () =>
      waitForLag(this.target, options.maxLagSeconds, options.catchUpTimeoutMs, options.signal),
    );
  }

  /** What the freeze will change, recorded on the target before the source is touched. */
  async recordIntent(): Promise<void> {
    const { options } = this;
    // The lease now covers the freeze: nothing renews it while the freeze's sessions are busy.
    await this.record?.holdThroughFreeze(options.drainTimeoutMs + options.fenceTimeoutMs);
    await ensureCutoverState(this.target);
    const cutoverId = await recordFreezeIntent(this.target, this.plan);
    this.cut = {
      options,
      source: this.source,
      target: this.target,
      plan: this.plan,
      cutoverId,
      // Sync's session, the sessions that check the changed rows inside the freeze, and the slot's reader.
      spare: [
        ...(this.state.sourcePid === null ? [] : [this.state.sourcePid]),
        ...(this.record?.sourcePids ?? []),
        ...(this.slotReader ? [this.slotReader.pid] : []),
      ],
      log: this.log,
    };
  }

  /** Step 2: writes stop on the source. */
  async freeze(): Promise<void> {
    this.frozenAt = await this.steps.run('freeze', () => applyFreeze(this.source, this.plan, this.sides.scope));
    this.log.info({ freeze: this.plan.mode }, 'writes frozen on the source; draining sessions');
  }

  async drain(signal: AbortSignal | undefined): Promise<void> {
    const { plan, options } = this;
    const since = this.frozenAt!;
    this.drained = await this.steps.run('drain', () =>
      drainForFreeze(this.source, plan, since, this.intent.spare, options.drainTimeoutMs, signal),
    );
  }

  /** Steps 3 and 4: the fence applied on the target; the sequences set while it travels. */
  async fence(signal: AbortSignal | undefined): Promise<void> {
    const { options, steps, log } = this;
    const watch = this.watch!;
    this.fenced = await steps.run('fence', async () => {
      const emitted = await emitFence(this.source, this.intent.cutoverId);
      // Drained, the source hands out no more values: its sequences are set on the target while the fence travels.
      const [applied, set] = await Promise.allSettled([
        steps.alongside('fence applied', () => waitForFence(watch, emitted, options.fenceTimeoutMs, signal)),
        steps.alongside('sequences', () => syncSequences(this.source, this.target, this.sides.scope, options.sequenceMargin)),
      ]);
      if (applied.status === 'rejected') throw applied.reason;
      if (set.status === 'rejected') throw set.reason;
      return { fence: emitted, sequences: set.value };
    });
    log.info({ fenceLsn: formatLsn(this.fenced.fence.lsn) }, 'sync applied everything up to the fence');
    throwIfInterrupted(signal);
    const missing = this.fenced.sequences.filter((s) => s.target === null);
    if (missing.length > 0) log.warn({ sequences: missing.map((s) => s.name) }, 'sequences missing on the target were not set');
  }

  async carryLargeObjects(): Promise<void> {
    const largeObjects = this.largeObjectSync!;
    this.log.info('carrying the large objects changed since the pass before the freeze');
    const carried = await this.steps.run('large objects', () => largeObjects.carryChanges());
    this.carried = carried;
    if (carried.missingRoles.length > 0)
      this.log.warn(
        { roles: carried.missingRoles },
        "roles missing on the target: their large objects' ownership and grants were left out",
      );
  }

  /** Step 5: what `--verify` asks for, exact now that the source no longer moves. */
  async verify(signal: AbortSignal | undefined): Promise<void> {
    const { options, steps } = this;
    const level = options.verify;
    this.verified = this.ahead?.report ?? null;
    const record = this.record;
    if (level === 'none') steps.skip('verify');
    else if (level === 'changes') this.inFreeze = (await steps.run('verify', () => record!.checkInFreeze(signal))).summary;
    else this.verified = await steps.run('verify', () => verifyFrozen(options, level, signal));
    if (this.verified && !this.verified.identical) throw verifyFailed(this.verified);
    throwIfInterrupted(signal);
  }

  /** Step 6. */
  async stopSync(): Promise<void> {
    const fenceLsn = formatLsn(this.fenced!.fence.lsn);
    this.syncStopped = await this.steps.run('stop sync', () => {
      this.stopRequested = true;
      return stopSync(this.target, this.watch!, `cut over at fence ${fenceLsn}`, SYNC_STOP_TIMEOUT_MS);
    });
  }

  /**
   * Steps 7 and 8 at once, as neither needs the other: sync has stopped, so nothing writes to the
   * target any more, and the slot can be read. Should late writes turn up, the undo removes the
   * way back, the hand-over's records with it (withdrawWayBack).
   */
  async checkLateWritesAndHandOver(): Promise<void> {
    await allBranches([() => this.checkLateWrites(), () => this.handOver()]);
  }

  /** Step 7: past the stop only LateWritesSignal undoes the cut-over; a check that cannot run is a warning. */
  private async checkLateWrites(): Promise<void> {
    // The watch session waited on the fence and is idle now; the main ones serve the hand-over meanwhile.
    if (this.syncStopped)
      this.late = await this.steps.run('late writes', () =>
        checkLateWrites(this.slotReader?.client ?? this.source, this.watch ?? this.target, this.log),
      );
    else this.log.warn('writes after the fence were not checked: sync still holds the slot');
  }

  /** Step 8: only once nothing writes to the target any more does it hold exactly the source's rows. */
  private async handOver(): Promise<void> {
    const ready = this.ready;
    if (ready && this.syncStopped)
      this.wayBack = await this.steps.run('hand over', () => {
        this.log.info("handing over: the way back starts at the target's position now");
        return handOver(this.sides, ready, this.intent.cutoverId);
      });
    else if (ready) this.wayBackSkipped = 'sync did not confirm it stopped, so the target may still change';
  }

  /**
   * A return: the freeze the cut-over away from the target left on it goes before any client
   * reaches it (PgBouncer's, resumed next; the application's own, once this command returns).
   */
  async unfreezeTarget(): Promise<void> {
    if (this.targetFreezes.length === 0) return;
    this.targetFreezesLifted = await this.steps.run('unfreeze target', () => liftFreezesOfTarget(this.sides, this.targetFreezes));
  }

  /** Whether what the freeze will change is recorded on the target: from then on, a failure is recorded there too. */
  get frozenIntent(): boolean {
    return this.cut !== undefined;
  }

  private get intent(): FreezeContext {
    if (!this.cut) throw new Error('the freeze of this database was not recorded');
    return this.cut;
  }

  /**
   * After a failure anywhere: the freeze lifted (and the failure recorded), if one was recorded.
   * Lifted first: clients resumed on a frozen source would fail.
   */
  async unfreeze(): Promise<Lifted> {
    if (!this.cut) return { ok: true };
    return unfreezeAfterFailure(this.cut, this.frozenAt);
  }

  /** Past the stop, sync stopped for a cut-over that is now undone: it must be able to start again. Returns the problem, if any. */
  async reopenSync(): Promise<{ readonly pastStop: boolean; readonly problem: string | undefined }> {
    if (!this.stopRequested) return { pastStop: false, problem: undefined };
    const problem = await withdrawSyncStop(this.target).then(
      () => undefined,
      (error: unknown) => messageOf(error),
    );
    return { pastStop: true, problem };
  }

  /** The way back made in step 1 is removed whenever the cut-over does not complete. Never throws. */
  async withdrawWayBack(): Promise<void> {
    if (!this.ready) return;
    await withdrawWayBack(this.sides, this.names).catch((problem: unknown) =>
      this.log.warn({ error: messageOf(problem) }, 'could not remove the way back the failed cut-over prepared on the target'),
    );
  }

  /** The cut-over's last act for this database (finish.ts), with the freeze as the whole cut-over lived it. */
  async finish(downtimeMs: number, pgbouncer: PoolReport | null): Promise<CutoverReport> {
    const fenced = this.fenced!;
    const frozen: Frozen = {
      downtimeMs,
      fenceLsn: fenced.fence.lsn,
      sessionsEnded: this.drained!.sessionsEnded,
      sequences: fenced.sequences,
      largeObjects: this.carried!,
      verified: this.verified,
      checked: {
        level: this.options.verify,
        beforeFreeze:
          this.ahead === null ? null : { recordedFrom: this.ahead.recordedFrom, verify: this.ahead.verify, passes: this.ahead.passes },
        insideFreeze: this.inFreeze,
      },
      syncStopped: this.syncStopped,
      lateTransactions: this.late,
      lagAtStartSeconds: this.lagAtStart,
      wayBack: this.wayBack,
      wayBackSkipped: this.wayBackSkipped,
      pgbouncer,
      targetFreezesLifted: this.targetFreezesLifted,
    };
    return finishCutover(this.intent, frozen, this.steps.timed, this.sides, this.names);
  }

  /**
   * Recording ends with the cut-over, whatever its outcome (a killed one's lease runs out), and so
   * does sync's notification of each batch, which the catch-up asked for past the freeze.
   */
  async close(): Promise<void> {
    await this.record?.end();
    if (this.progressAsked) await wantProgress(this.target, 0).catch(() => undefined);
    if (this.watch) await closeClient(this.watch);
    if (this.slotReader) await closeClient(this.slotReader.client);
    await closeClient(this.source);
    await closeClient(this.target);
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
export class LateWritesSignal extends Error {
  constructor(readonly late: LateWrites) {
    super("writes committed past sync's final position");
    this.name = 'LateWritesSignal';
  }
}

/** A source session for the late-writes read: writable (the source is frozen by then), its backend named for the drain to spare. */
async function openSlotReader(options: CutoverOptions): Promise<{ client: pg.Client; pid: number }> {
  const { client } = await connect(options.source);
  try {
    await writableSession(client);
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    return { client, pid: rows[0]!.pid };
  } catch (error) {
    await closeClient(client);
    throw error;
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
