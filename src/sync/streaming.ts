import type pg from 'pg';
import { serverMajor } from '../catalog/index.js';
import { connect, type Connection, type ConnectionSpec } from '../config/index.js';
import { asError, PgferryError, messageOf } from '../errors.js';
import type { Logger } from '../log/index.js';
import { closeClient, destroyClient, openAll, repeatEvery, sleep, withDeadline } from '../plumbing/index.js';
import { DECODING_SETTINGS, formatLsn, parseLsn, ReplicationSession, type Lsn } from '../replication/index.js';
import {
  flushStateWrites,
  readStopRequest,
  readSyncState,
  recordSourceSystem,
  recordSyncProblem,
  setSyncPhase,
  startStreamingRun,
  type SyncState,
} from '../state/index.js';
import { ChangeStream, type StreamProgress } from './change-stream.js';
import { livenessTimings } from './liveness.js';
import { Monitor } from './monitor.js';
import type { StopCause, SyncOptions } from './options.js';
import { protocolFor, readSlot, slotAheadError, slotGoneError, type MigrationNames, type SlotInfo } from './source-setup.js';
import { isTransient } from './transient.js';
import { retainedWalNow, walGuardVerdict } from './wal-guard.js';

/** How often a streaming sync looks on the target for a cut-over's stop request. */
const STOP_POLL_MS = 100;

/** Prefix of the logical messages `pgferry cutover` emits as its fence. */
export const FENCE_PREFIX = 'pgferry.fence';

/**
 * A stop (a signal, a cut-over's request) lets the batch in flight commit; if the servers have
 * not let it finish by then, the connections are closed (the batch rolls back: nothing is lost,
 * the next run continues from the target's position). Well inside the 30 s a stop may take.
 */
const STOP_WITHIN_MS = 20_000;
/** Setting up a run (a few small queries on each side) before the source's timeout is known. */
const SETUP_WITHIN_MS = 60_000;

/**
 * Settings of the target session that applies changes: the walsender's output settings, so
 * the text values parse as they were printed. Every keyed statement joins a batch of keys to
 * the table's key index: a nested loop over that index. Given a big batch, the planner would
 * rather hash the batch and scan the whole table, many times slower on a big table. A lock
 * held on the target holds the apply at most a minute; then the batch is tried again.
 */
const APPLY_SETTINGS: Readonly<Record<string, string>> = {
  ...DECODING_SETTINGS,
  // NULL elements of the text arrays the set-based statements take must read as NULL.
  array_nulls: 'on',
  synchronous_commit: 'off',
  enable_hashjoin: 'off',
  enable_mergejoin: 'off',
  lock_timeout: '60s',
  // A policy must never make an UPDATE or DELETE match nothing: a role subject to one errors.
  row_security: 'off',
};

export interface StreamTotals {
  appliedLsn: string;
  transactions: number;
  rows: number;
  reconnects: number;
  stoppedBecause: StopCause;
}

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
      await sayWhatHolds(options, error);
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

/** What stopped the run, recorded for `status` when the target answers (it may be the thing that failed). */
async function sayWhatHolds(options: SyncOptions, error: unknown): Promise<void> {
  try {
    const { client } = await connect(options.target);
    try {
      await withDeadline(recordSyncProblem(client, messageOf(error).slice(0, 1000)), 5_000, 'recording the problem');
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

/**
 * One streaming run: four sessions (the walsender, the apply session, a monitor session on
 * each side), the change stream between them, and the watch over them. Every wait on a peer
 * has an end: the walsender's silence (replication/liveness.ts), the monitor round's deadline,
 * the apply session's stall (sync/liveness.ts), the stop's. When one is reached, every session
 * is closed at once, so whatever awaits a peer fails instead of waiting forever, and the run
 * ends with a connection error the retry loop cures.
 */
class StreamRun {
  /** The goal of --until-caught-up: the source's position when the first run began. */
  private goal: Lsn | undefined;

  constructor(
    private readonly options: SyncOptions,
    private readonly names: MigrationNames,
    private readonly log: Logger,
    private readonly totals: StreamTotals,
  ) {}

  async once(givenSession: ReplicationSession | undefined): Promise<StopCause> {
    const { options, names, log, totals } = this;
    const opened: Connection[] = [];
    let replication = givenSession;
    let stream: ChangeStream | undefined;
    const timers: NodeJS.Timeout[] = [];
    let stopRequested: string | undefined;
    let lost: Error | undefined;
    /** Closes every session at once: whatever awaits a peer fails now. */
    const loseEverything = (error: Error) => {
      lost ??= error;
      stream?.abort(error);
      replication?.destroy();
      for (const { client } of opened) destroyClient(client);
    };
    const onSignal = () => {
      stream?.stop();
      timers.push(setTimeout(() => loseEverything(stopTimedOut()), STOP_WITHIN_MS));
    };
    options.signal?.addEventListener('abort', onSignal);
    try {
      const setup = await withDeadline(
        this.setUp(replication, opened, (s) => (replication = s)),
        SETUP_WITHIN_MS,
        'setting up the stream',
        () =>
          loseEverything(
            new PgferryError('connection-lost', 'a server did not answer while sync set up the stream', {
              fix: 'sync reconnects by itself',
            }),
          ),
      );
      const { sourceMonitor, target, targetMonitor, source, state, applyPid, timings } = setup;
      const appliedLsn = state.appliedLsn;
      const goal = (this.goal ??= source.goal!);
      const protocol = protocolFor(source.major, names.publication);
      const running = new ChangeStream({
        session: setup.replication,
        target,
        slot: names.slot,
        protocol,
        appliedLsn,
        memoryLimit: options.memoryLimit,
        maxBatchChanges: options.maxBatchChanges,
        fencePrefix: FENCE_PREFIX,
        inbound: timings,
        logger: log,
      });
      stream = running;
      running.start();
      if (options.signal?.aborted) onSignal();
      log.info({ from: formatLsn(state.appliedLsn), protocol: protocol.version }, 'streaming changes');
      const monitor = new Monitor(
        {
          source: sourceMonitor,
          target: targetMonitor,
          slot: names.slot,
          publication: names.publication,
          sourceMajor: source.major,
          maxRetainedWal: options.maxRetainedWal,
          applyPid,
          timings,
          logger: log,
          logEveryMs: options.logEveryMs ?? 10_000,
        },
        running,
      );
      const monitoring = repeatEvery(1000, timers, () =>
        withDeadline(monitor.tick(), timings.monitorDeadlineMs, 'the monitor round', () =>
          loseEverything(
            new PgferryError(
              'connection-lost',
              `a server did not answer the monitor's small queries within ${Math.round(timings.monitorDeadlineMs / 1000)} s: the connections are treated as lost`,
              { fix: 'sync reconnects by itself' },
            ),
          ),
        ).then(
          () => undefined,
          (error: unknown) => loseEverything(asError(error)),
        ),
      );
      const polling = repeatEvery(STOP_POLL_MS, timers, () =>
        readStopRequest(targetMonitor)
          .then((reason) => {
            if (reason === undefined || stopRequested !== undefined) return;
            stopRequested = reason;
            log.info({ reason }, 'stop requested through the target; stopping');
            running.stop();
            timers.push(setTimeout(() => loseEverything(stopTimedOut()), STOP_WITHIN_MS));
          })
          .catch((error: unknown) => loseEverything(asError(error))),
      );

      let caughtUp = false;
      await running.run((progress: StreamProgress) => {
        caughtUp = options.untilCaughtUp && progress.appliedLsn >= goal;
        return caughtUp;
      });
      await Promise.all([monitoring.stop(), polling.stop()]);
      if (lost) throw lost;
      await withDeadline(
        (async () => {
          await finishCleanly(running, targetMonitor, setup.replication);
          // One last heartbeat, so status shows where this run left the lag.
          await monitor.tick();
          await setSyncPhase(target, 'stopped');
        })(),
        STOP_WITHIN_MS,
        'finishing the run',
        () => loseEverything(stopTimedOut()),
      );
      totals.appliedLsn = formatLsn(running.progress.appliedLsn);
      totals.transactions += running.progress.transactions;
      totals.rows += running.progress.rows;
      const cause: StopCause = caughtUp ? 'caught up' : stopRequested !== undefined ? 'cut over' : 'asked to stop';
      log.info(
        { appliedLsn: totals.appliedLsn, transactions: totals.transactions, rows: totals.rows, cause },
        caughtUp ? 'caught up; stopping' : 'stopped',
      );
      return cause;
    } catch (error) {
      if (stream) {
        totals.transactions += stream.progress.transactions;
        totals.rows += stream.progress.rows;
      }
      replication?.destroy();
      throw lost ?? error;
    } finally {
      for (const timer of timers) clearTimeout(timer);
      options.signal?.removeEventListener('abort', onSignal);
      stream?.close();
      await Promise.all(opened.map((c) => closeClient(c.client)));
    }
  }

  /** Opens the four sessions at once and readies both sides: the checks every (re)start makes. */
  private async setUp(given: ReplicationSession | undefined, opened: Connection[], setReplication: (session: ReplicationSession) => void) {
    const { options, names } = this;
    const open = async (spec: ConnectionSpec) => {
      const connection = await connect(spec);
      opened.push(connection);
      return connection.client;
    };
    // Every connection at once: each costs a round of authentication, and none needs another.
    // Each is known to the run as soon as it opens, for a deadline to cut it.
    const openReplication = async () => {
      const session = await ReplicationSession.open(options.source);
      setReplication(session);
      return session;
    };
    const [sourceMonitor, target, targetMonitor, replication] = await openAll(
      [open(options.source), open(options.target), open(options.target), given ?? openReplication()],
      async (session) => {
        // As the run's failure path does: the walsender is cut, the others are closed.
        if (session instanceof ReplicationSession) session.destroy();
        else await closeClient(session);
      },
    );

    // The source's facts and the target's apply session are readied side by side.
    const [source, apply] = await Promise.all([
      readSourceFacts(sourceMonitor, names.slot, this.goal === undefined),
      prepareApplySession(target),
    ]);
    const state = apply.state;
    if (!state)
      throw new PgferryError('query', 'target: the pgferry sync state is gone', {
        side: 'target',
        fix: 'run pgferry sync --drop-existing to start over',
      });
    const appliedLsn = state.appliedLsn;
    await ensureSameSource(target, state, source.systemId);
    if (source.slot.confirmedFlush !== undefined && source.slot.confirmedFlush > appliedLsn)
      throw slotAheadError(names.slot, source.slot.confirmedFlush, appliedLsn);
    await startStreamingRun(target, source.pid);
    return {
      replication,
      sourceMonitor,
      target,
      targetMonitor,
      source,
      state,
      applyPid: apply.pid,
      timings: livenessTimings(source.walSenderTimeoutMs),
    };
  }
}

function stopTimedOut(): PgferryError {
  return new PgferryError(
    'connection-lost',
    `the servers did not let the run finish within ${STOP_WITHIN_MS / 1000} s of the stop; its connections were closed`,
    {
      fix: 'nothing is lost: the batch in flight rolled back, and the next pgferry sync continues from the position the target recorded',
    },
  );
}

interface SourceFacts {
  readonly major: number;
  readonly systemId: string;
  readonly slot: SlotInfo;
  /** The source session's pid, recorded so a cut-over's drain spares it. */
  readonly pid: number;
  /** The source's insert position now, when the run needs a goal to catch up to. */
  readonly goal: Lsn | undefined;
  /** How long the source's walsenders wait for a word from their client (0: forever). */
  readonly walSenderTimeoutMs: number;
}

/** What a run needs from the source before streaming: its major, a usable slot, its pid, a goal. */
async function readSourceFacts(source: pg.Client, slotName: string, wantGoal: boolean): Promise<SourceFacts> {
  const major = await serverMajor(source);
  const slot = await readSlot(source, slotName, major);
  if (!slot.exists || slot.lost) throw slotGoneError(slotName, slot);
  // The insert position, not the write position: a commit made with synchronous_commit = off
  // may not be written yet, and it is committed all the same.
  const { rows } = await source.query<{ pid: number; lsn: string; system: string; sender_timeout: string }>(
    `SELECT pg_backend_pid() AS pid, pg_current_wal_insert_lsn()::text AS lsn, (SELECT system_identifier::text FROM pg_control_system()) AS system,
            (SELECT setting FROM pg_settings WHERE name = 'wal_sender_timeout') AS sender_timeout`,
  );
  const row = rows[0]!;
  return {
    major,
    systemId: row.system,
    slot,
    pid: row.pid,
    goal: wantGoal ? parseLsn(row.lsn) : undefined,
    walSenderTimeoutMs: Number(row.sender_timeout),
  };
}

/** The stream continues only from the server the target was cloned from (or a physical copy of it). */
async function ensureSameSource(target: pg.Client, state: SyncState, sourceSystemId: string): Promise<void> {
  if (state.sourceSystemId === null) {
    await recordSourceSystem(target, sourceSystemId);
    return;
  }
  if (state.sourceSystemId !== sourceSystemId) {
    throw new PgferryError(
      'wrong-migration',
      `source: this server (system identifier ${sourceSystemId}) is not the one migration "${state.name}" copied from (${state.sourceSystemId}): its slot of the same name holds another history`,
      {
        side: 'source',
        fix: 'point --source at the server the migration started from, or run pgferry sync --drop-existing to start a new migration from this one',
      },
    );
  }
}

/** The apply session's settings and replica role; then the sync state it continues from, and the session's pid. */
async function prepareApplySession(target: pg.Client): Promise<{ state: SyncState | undefined; pid: number }> {
  const settings = Object.entries(APPLY_SETTINGS);
  const { rows } = await target.query<{ pid: number }>(
    `SELECT pg_backend_pid() AS pid, ${settings.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, false)`).join(', ')}`,
    settings.flat(),
  );
  await enableReplicaRole(target);
  return { state: await readSyncState(target), pid: rows[0]!.pid };
}

/** Applying runs with triggers and foreign keys off, as the source already enforced them. */
async function enableReplicaRole(target: pg.Client): Promise<void> {
  try {
    await target.query(`SET session_replication_role = replica`);
  } catch (error) {
    throw new PgferryError('query', `target: cannot SET session_replication_role = replica: ${messageOf(error)}`, {
      side: 'target',
      fix: 'connect to the target as a superuser, or on PostgreSQL 15+ run GRANT SET ON PARAMETER session_replication_role TO <role>',
      cause: error,
    });
  }
}

/** Makes the target flush the last batch, acknowledges it, and ends the stream. */
async function finishCleanly(stream: ChangeStream, target: pg.Client, session: ReplicationSession): Promise<void> {
  const last = stream.lastTargetLsn;
  // Batches commit with synchronous_commit off; one synchronous commit flushes the WAL up to
  // it, and so every batch before it, at once instead of after the WAL writer's next rounds.
  await flushStateWrites(target);
  const deadline = Date.now() + 5000;
  for (;;) {
    const { rows } = await target.query<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn');
    const flushed = parseLsn(rows[0]!.lsn);
    stream.flushedUpTo(flushed);
    if (last === undefined || flushed >= last || Date.now() > deadline) break;
    await sleep(50);
  }
  await session.close();
}
