import { Scope } from '../catalog/index.js';
import { connect, type Connection, type ConnectionSpec } from '../config/index.js';
import { captureNames, SchemaChangeReplayer } from '../ddl/index.js';
import { asError, PgferryError } from '../errors.js';
import type { Logger } from '../log/index.js';
import { closeClient, destroyClient, openAll, repeatEvery, withDeadline } from '../plumbing/index.js';
import { formatLsn, ReplicationSession, type Lsn } from '../replication/index.js';
import { copyPositions, setSyncPhase, startStreamingRun } from '../state/index.js';
import { ChangeRecording, CopyPositions } from '../apply/index.js';
import { ChangeStream, type StreamProgress } from './change-stream.js';
import { finishCleanly, prepareApplySession } from './apply-session.js';
import { livenessTimings } from './liveness.js';
import { endOwnLostSessions } from './lock-watch.js';
import { Monitor } from './monitor.js';
import type { StopCause, SyncOptions } from './options.js';
import { ensureSameSource, readSourceFacts } from './source-facts.js';
import { protocolFor, slotAheadError, type MigrationNames } from './source-setup.js';
import { watchRequests } from './requests.js';

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

/** What the runs of one sync did, kept across reconnects. */
export interface StreamTotals {
  appliedLsn: string;
  transactions: number;
  rows: number;
  reconnects: number;
  stoppedBecause: StopCause;
}

/**
 * One streaming run: four sessions (the walsender, the apply session, a monitor session on
 * each side), the change stream between them, and the watch over them. Every wait on a peer
 * has an end: the walsender's silence (replication/liveness.ts), the monitor round's deadline,
 * the apply session's stall (sync/liveness.ts), the stop's. When one is reached, every session
 * is closed at once, so whatever awaits a peer fails instead of waiting forever, and the run
 * ends with a connection error the retry loop cures.
 */
export class StreamRun {
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
    let monitor: Monitor | undefined;
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
      const scope = new Scope(options.filter);
      const positions = setup.copyPositions;
      const recording = new ChangeRecording();
      if (positions.consistentFrom > appliedLsn)
        log.info(
          { consistentFrom: formatLsn(positions.consistentFrom) },
          'tables were copied at snapshots of their own: each takes changes from its own position; the target is consistent as a whole once the stream passes the newest',
        );
      const running = new ChangeStream({
        session: setup.replication,
        target,
        slot: names.slot,
        protocol,
        appliedLsn,
        memoryLimit: options.memoryLimit,
        maxBatchChanges: options.maxBatchChanges,
        fencePrefix: FENCE_PREFIX,
        addColumnsFromStream: !source.capturesSchemaChanges && options.ddl === 'apply',
        copyPositions: positions,
        schemaChanges: new SchemaChangeReplayer({
          migration: names.name,
          sourceMajor: source.major,
          scope,
          policy: options.ddl,
          skipAt: options.skipDdlAt,
          logger: log,
          truncateCounts: (table, commitLsn) => positions.countsTable(table, commitLsn),
        }),
        inbound: timings,
        recording,
        logger: log,
      });
      stream = running;
      // Read before the first batch: a run that starts while a cut-over records records from its first batch.
      const requests = await watchRequests({
        target: targetMonitor,
        recording,
        timers,
        log,
        onStop: (reason) => {
          stopRequested = reason;
          log.info({ reason }, 'stop requested through the target; stopping');
          running.stop();
          timers.push(setTimeout(() => loseEverything(stopTimedOut()), STOP_WITHIN_MS));
        },
        onProgressWanted: (wanted) => running.wantProgress(wanted),
        onError: loseEverything,
      });
      running.start();
      if (options.signal?.aborted) onSignal();
      log.info({ from: formatLsn(state.appliedLsn), protocol: protocol.version }, 'streaming changes');
      const watch = new Monitor(
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
          scope,
          metrics: options.metrics,
        },
        running,
      );
      monitor = watch;
      const monitoring = repeatEvery(1000, timers, () =>
        withDeadline(watch.tick(), timings.monitorDeadlineMs, 'the monitor round', () =>
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

      let caughtUp = false;
      await running.run((progress: StreamProgress) => {
        caughtUp = options.untilCaughtUp && progress.appliedLsn >= goal;
        return caughtUp;
      });
      await Promise.all([monitoring.stop(), requests.stop()]);
      if (lost) throw lost;
      await withDeadline(
        (async () => {
          await finishCleanly(running, targetMonitor, setup.replication);
          // Stopped first: a cut-over waits for it with writes frozen.
          await setSyncPhase(target, 'stopped');
          // One last heartbeat, so status shows where this run left the lag.
          await watch.tick();
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
      const failure = lost ?? error;
      throw monitor ? monitor.explain(failure) : failure;
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

    // What this run's lost connections left on either server (a batch's row locks, the slot) goes
    // before anything could wait on it.
    await Promise.all([endOwnLostSessions(sourceMonitor, 'source', this.log), endOwnLostSessions(targetMonitor, 'target', this.log)]);
    // The source's facts and the target's apply session are readied side by side.
    const [source, apply] = await Promise.all([
      readSourceFacts(sourceMonitor, names.slot, this.goal === undefined, captureNames(names.name).endTrigger),
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
    // Positions the stream has passed change nothing any more.
    const copied = CopyPositions.from(await copyPositions(target), appliedLsn);
    return {
      copyPositions: copied,
      replication,
      sourceMonitor,
      target,
      targetMonitor,
      source,
      state,
      applyPid: apply.pid,
      timings: livenessTimings(options.source.peerTimeoutMs, options.target.peerTimeoutMs),
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
