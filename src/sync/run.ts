import type pg from 'pg';
import { Scope, serverMajor, type ScopeFilter } from '../catalog/index.js';
import { connect, describeConnection, type Connection, type ConnectionSpec } from '../config/index.js';
import { clone, type CloneSummary, type CopyProgress } from '../copy/index.js';
import { PgferryError, messageOf, usageError } from '../errors.js';
import type { Logger } from '../log/index.js';
import { sleep } from '../plumbing/index.js';
import { DECODING_SETTINGS, formatLsn, parseLsn, removeAbandonedSpools, ReplicationSession, type Lsn } from '../replication/index.js';
import {
  cloneState,
  ensureSyncState,
  readStopRequest,
  readSyncState,
  recordSourceSystem,
  setSyncPhase,
  startStreamingRun,
  startStreamingState,
  startSyncState,
  type SyncState,
} from '../state/index.js';
import { ChangeStream, type StreamProgress } from './change-stream.js';
import { Monitor } from './monitor.js';
import { claimSlotName, createSlotNamingBlockers, DEFAULT_SLOT_TIMEOUT_MS } from './slot-creation.js';
import {
  createPublication,
  defaultMigrationName,
  migrationNames,
  protocolFor,
  readSlot,
  slotAheadError,
  slotGoneError,
  systemIdentifier,
  tablesToPublish,
  type MigrationNames,
  type SlotInfo,
} from './source-setup.js';

export interface SyncOptions {
  readonly source: ConnectionSpec;
  readonly target: ConnectionSpec;
  readonly filter: ScopeFilter;
  /**
   * Names the slot and publication (`pgferry_<name>`). Default: the name the target's state
   * records, else one made from the target database's name and identity (defaultMigrationName).
   */
  readonly name?: string;
  readonly untilCaughtUp: boolean;
  readonly dropExisting: boolean;
  readonly maxRetainedWal: number;
  /** Bytes of received transactions kept in memory before spilling to disk. */
  readonly memoryLimit: number;
  readonly maxBatchChanges: number;
  /** How long creating the slot may wait for transactions running on the source (ms). */
  readonly slotTimeoutMs?: number;
  /** Clone settings, for when the target is not cloned yet. */
  readonly clone: {
    readonly jobs: number;
    readonly indexJobs: number;
    readonly splitThreshold: number;
    readonly noOwner: boolean;
    readonly noAcl: boolean;
    readonly progress: CopyProgress;
  };
  readonly logger: Logger;
  /** Aborting stops sync cleanly: the batch in flight commits and the slot is acknowledged. */
  readonly signal?: AbortSignal;
  readonly logEveryMs?: number;
}

export interface SyncSummary {
  readonly name: string;
  readonly slot: string;
  readonly cloned: CloneSummary | undefined;
  readonly appliedLsn: string;
  readonly transactions: number;
  readonly rows: number;
  readonly reconnects: number;
  readonly stoppedBecause: StopCause;
}

/** Why sync ended: its own goal, a signal, or a cut-over that asked through the target. */
export type StopCause = 'caught up' | 'asked to stop' | 'cut over';

/** How often a streaming sync looks on the target for a cut-over's stop request. */
const STOP_POLL_MS = 100;

/** Prefix of the logical messages `pgferry cutover` emits as its fence. */
export const FENCE_PREFIX = 'pgferry.fence';

/**
 * Settings of the target session that applies changes: the walsender's output settings, so
 * the text values parse as they were printed. Every keyed statement joins a batch of keys to
 * the table's key index: a nested loop over that index. Given a big batch, the planner would
 * rather hash the batch and scan the whole table, many times slower on a big table.
 */
const APPLY_SETTINGS: Readonly<Record<string, string>> = {
  ...DECODING_SETTINGS,
  // NULL elements of the text arrays the set-based statements take must read as NULL.
  array_nulls: 'on',
  synchronous_commit: 'off',
  enable_hashjoin: 'off',
  enable_mergejoin: 'off',
};

/**
 * `pgferry sync`: the publication and slot on the source, the clone at the slot's snapshot
 * when the target has none yet, then every committed change, applied in batches, until asked
 * to stop (or caught up). Started again, it continues from the position the target recorded.
 */
export async function sync(options: SyncOptions): Promise<SyncSummary> {
  const scope = new Scope(options.filter);
  let cloned: CloneSummary | undefined;
  let firstSession: ReplicationSession | undefined;
  let names: MigrationNames;
  let log = options.logger;

  const admin = await connect(options.target);
  let source: Connection | undefined;
  try {
    const state = await readSyncState(admin.client);
    names = migrationNames(options.name ?? state?.name ?? (await defaultMigrationName(admin.client)));
    log = options.logger.child({ migration: names.name });
    if (state && state.name !== names.name && !options.dropExisting) {
      throw usageError(`the target already follows migration "${state.name}", not "${names.name}"`, `run with --name ${state.name}, or run pgferry cleanup first`);
    }
    if (state?.stopRequestedAt && !options.dropExisting) {
      throw usageError(
        `migration "${state.name}" is over: ${state.stopReason ?? 'a stop was requested'} at ${state.stopRequestedAt.toISOString()}, and the application may write to the target now`,
        'run pgferry cleanup to remove the slot, publication and state, or sync --drop-existing to start a new migration',
      );
    }
    const needsClone = state === undefined || state.phase === 'cloning' || options.dropExisting;
    if (needsClone) {
      source = await connect(options.source);
      if (state === undefined && !options.dropExisting && (await cloneState(admin.client)) !== 'none') {
        throw usageError(
          `the target (${describeConnection(options.target)}) holds a clone made without sync: its rows match no replication slot`,
          'pass --drop-existing to copy again at the slot\'s snapshot, or use an empty target database',
        );
      }
      if (state?.phase === 'cloning') log.warn('an earlier sync stopped during its copy: copying again from the start at a new snapshot');
      // The slot name is this migration's when the target's state records it, or when it is
      // the default (unique to this target); a name given by hand may be another target's.
      const ownsSlotName = state?.slot === names.slot || options.name === undefined || options.dropExisting;
      const started = await startFromClone(options, names, source.client, scope, { restarting: state !== undefined, ownsSlotName }, log);
      cloned = started.cloned;
      firstSession = started.session;
    } else {
      // Whether the slot is still usable is checked as streaming starts, on every (re)connect.
      log.info({ appliedLsn: state.appliedLsn }, 'continuing from the position the target recorded');
    }
  } catch (error) {
    firstSession?.destroy();
    throw error;
  } finally {
    await admin.client.end().catch(() => undefined);
    await source?.client.end().catch(() => undefined);
  }

  // Row data a killed sync left in its spool: nobody reads it again.
  removeAbandonedSpools();
  const totals = await streamWithRetries(options, names, firstSession, log);
  return { name: names.name, slot: names.slot, cloned, ...totals };
}

/**
 * Decision 3: the slot is created first and exports its snapshot; the clone copies at that
 * snapshot; the stream starts at the slot's consistent point. Nothing missed, nothing twice.
 */
async function startFromClone(
  options: SyncOptions,
  names: MigrationNames,
  source: pg.Client,
  scope: Scope,
  { restarting, ownsSlotName }: { readonly restarting: boolean; readonly ownsSlotName: boolean },
  log: Logger,
): Promise<{ cloned: CloneSummary; session: ReplicationSession }> {
  const tables = await tablesToPublish(source, scope);
  await claimSlotName(source, names.slot, ownsSlotName);
  await createPublication(source, names.publication, tables);
  const sourceSystemId = await systemIdentifier(source);
  const session = await ReplicationSession.open(options.source);
  try {
    log.info({ slot: names.slot }, 'creating the replication slot (waits for transactions running on the source to end)');
    const slot = await createSlotNamingBlockers(session, names.slot, source, options.slotTimeoutMs ?? DEFAULT_SLOT_TIMEOUT_MS, log);
    if (slot.snapshot === undefined) throw new PgferryError('query', 'source: the new replication slot exported no snapshot', { side: 'source' });
    log.info({ slot: names.slot, consistentLsn: formatLsn(slot.consistentPoint) }, 'slot created; copying at its snapshot');
    const cloned = await clone({
      source: options.source,
      target: options.target,
      filter: options.filter,
      ...options.clone,
      resume: false,
      dropExisting: options.dropExisting || restarting,
      logger: options.logger,
      snapshot: slot.snapshot,
      onCopyStarting: async (target) => {
        await ensureSyncState(target);
        await startSyncState(target, { ...names, sourceSystemId });
      },
    });
    await withTarget(options.target, (target) => startStreamingState(target, formatLsn(slot.consistentPoint)));
    return { cloned, session };
  } catch (error) {
    session.destroy();
    throw error;
  }
}

async function withTarget<T>(spec: ConnectionSpec, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const { client } = await connect(spec);
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', '57P01', '57P02', '57P03', '53300', '55006']);

/** Failures a reconnect can cure: a lost connection, a server restarting, a slot still held by our previous session. */
export function isTransient(error: unknown): boolean {
  if (error instanceof PgferryError && error.kind === 'connection') return true;
  const code = (error as { code?: unknown }).code ?? (error as { cause?: { code?: unknown } }).cause?.code;
  if (typeof code === 'string' && (TRANSIENT_CODES.has(code) || code.startsWith('08'))) return true;
  const message = messageOf(error);
  return /Connection terminated|connection closed|ended the replication stream|terminating connection|Client was closed|not queryable/i.test(message);
}

interface StreamTotals {
  appliedLsn: string;
  transactions: number;
  rows: number;
  reconnects: number;
  stoppedBecause: StopCause;
}

async function streamWithRetries(options: SyncOptions, names: MigrationNames, firstSession: ReplicationSession | undefined, log: Logger): Promise<StreamTotals> {
  const totals: StreamTotals = { appliedLsn: '0/0', transactions: 0, rows: 0, reconnects: 0, stoppedBecause: 'asked to stop' };
  let goal: Lsn | undefined;
  let session = firstSession;
  let failures = 0;
  for (;;) {
    try {
      const outcome = await streamOnce(options, names, session, log, goal, (g) => (goal = g), totals);
      totals.stoppedBecause = outcome;
      return totals;
    } catch (error) {
      session = undefined;
      if (options.signal?.aborted || !isTransient(error)) throw error;
      failures++;
      totals.reconnects++;
      const delay = Math.min(30_000, 500 * 2 ** Math.min(failures, 6));
      log.warn({ error: messageOf(error), retryInMs: delay, attempt: failures }, 'lost a connection; reconnecting and continuing from the position the target recorded');
      await sleep(delay, options.signal);
    }
  }
}

async function streamOnce(
  options: SyncOptions,
  names: MigrationNames,
  givenSession: ReplicationSession | undefined,
  log: Logger,
  knownGoal: Lsn | undefined,
  setGoal: (goal: Lsn) => void,
  totals: StreamTotals,
): Promise<StopCause> {
  const opened: Connection[] = [];
  const open = async (spec: ConnectionSpec) => {
    const connection = await connect(spec);
    opened.push(connection);
    return connection.client;
  };
  let session = givenSession;
  let stream: ChangeStream | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopPoll: NodeJS.Timeout | undefined;
  let stopRequested: string | undefined;
  const onAbort = () => stream?.stop();
  try {
    // Every connection at once: each costs a round of authentication, and none needs another.
    const opening = await Promise.allSettled([
      open(options.source),
      open(options.target),
      open(options.target),
      session ?? ReplicationSession.open(options.source),
    ] as const);
    if (opening[3].status === 'fulfilled') session = opening[3].value;
    const failed = opening.find((o) => o.status === 'rejected');
    if (failed) throw failed.reason;
    const [sourceMonitor, target, targetMonitor] = opening.map((o) => (o as PromiseFulfilledResult<pg.Client>).value) as [pg.Client, pg.Client, pg.Client];
    const replication = (opening[3] as PromiseFulfilledResult<ReplicationSession>).value;

    // The source's facts and the target's apply session are readied side by side.
    const [source, state] = await Promise.all([readSourceFacts(sourceMonitor, names.slot, knownGoal === undefined), prepareApplySession(target)]);
    const major = source.major;
    if (!state) throw new PgferryError('query', 'target: the pgferry sync state is gone', { side: 'target', fix: 'run pgferry sync --drop-existing to start over' });
    const appliedLsn = parseLsn(state.appliedLsn);
    await ensureSameSource(target, state, source.systemId);
    if (source.slot.confirmedFlush !== undefined && source.slot.confirmedFlush > appliedLsn) throw slotAheadError(names.slot, source.slot.confirmedFlush, appliedLsn);
    await startStreamingRun(target, source.pid);
    if (knownGoal === undefined) {
      knownGoal = source.goal!;
      setGoal(knownGoal);
    }
    const goal = knownGoal;

    const protocol = protocolFor(major, names.publication);
    stream = new ChangeStream({
      session: replication,
      target,
      slot: names.slot,
      protocol,
      appliedLsn,
      memoryLimit: options.memoryLimit,
      maxBatchChanges: options.maxBatchChanges,
      fencePrefix: FENCE_PREFIX,
      logger: log,
    });
    const running = stream;
    running.start();
    log.info({ from: state.appliedLsn, protocol: protocol.version }, 'streaming changes');
    const monitor = new Monitor(
      { source: sourceMonitor, target: targetMonitor, slot: names.slot, sourceMajor: major, maxRetainedWal: options.maxRetainedWal, logger: log, logEveryMs: options.logEveryMs ?? 10_000 },
      running,
    );
    let ticking = false;
    timer = setInterval(() => {
      if (ticking) return;
      ticking = true;
      monitor
        .tick()
        .catch((error: unknown) => running.abort(error instanceof Error ? error : new Error(String(error))))
        .finally(() => (ticking = false));
    }, 1000);
    options.signal?.addEventListener('abort', onAbort);
    if (options.signal?.aborted) running.stop();
    let polling = false;
    stopPoll = setInterval(() => {
      if (polling) return;
      polling = true;
      readStopRequest(targetMonitor)
        .then((reason) => {
          if (reason === undefined || stopRequested !== undefined) return;
          stopRequested = reason;
          log.info({ reason }, 'stop requested through the target; stopping');
          running.stop();
        })
        .catch((error: unknown) => running.abort(error instanceof Error ? error : new Error(String(error))))
        .finally(() => (polling = false));
    }, STOP_POLL_MS);

    let caughtUp = false;
    await running.run((progress: StreamProgress) => {
      caughtUp = options.untilCaughtUp && progress.appliedLsn >= goal;
      return caughtUp;
    });
    clearInterval(timer);
    clearInterval(stopPoll);
    while (ticking || polling) await sleep(20);
    await finishCleanly(running, targetMonitor, replication);
    // One last heartbeat, so status shows where this run left the lag.
    await monitor.tick();
    await setSyncPhase(target, 'stopped');
    totals.appliedLsn = formatLsn(running.progress.appliedLsn);
    totals.transactions += running.progress.transactions;
    totals.rows += running.progress.rows;
    const cause: StopCause = caughtUp ? 'caught up' : stopRequested !== undefined ? 'cut over' : 'asked to stop';
    log.info({ appliedLsn: totals.appliedLsn, transactions: totals.transactions, rows: totals.rows, cause }, caughtUp ? 'caught up; stopping' : 'stopped');
    return cause;
  } catch (error) {
    if (stream) {
      totals.transactions += stream.progress.transactions;
      totals.rows += stream.progress.rows;
    }
    session?.destroy();
    throw error;
  } finally {
    clearInterval(timer);
    clearInterval(stopPoll);
    options.signal?.removeEventListener('abort', onAbort);
    stream?.close();
    await Promise.all(opened.map((c) => c.client.end().catch(() => undefined)));
  }
}

interface SourceFacts {
  readonly major: number;
  readonly systemId: string;
  readonly slot: SlotInfo;
  /** The source session's pid, recorded so a cut-over's drain spares it. */
  readonly pid: number;
  /** The source's insert position now, when the run needs a goal to catch up to. */
  readonly goal: Lsn | undefined;
}

/** What a run needs from the source before streaming: its major, a usable slot, its pid, a goal. */
async function readSourceFacts(source: pg.Client, slotName: string, wantGoal: boolean): Promise<SourceFacts> {
  const major = await serverMajor(source);
  const slot = await readSlot(source, slotName, major);
  if (!slot.exists || slot.lost) throw slotGoneError(slotName, slot);
  // The insert position, not the write position: a commit made with synchronous_commit = off
  // may not be written yet, and it is committed all the same.
  const { rows } = await source.query<{ pid: number; lsn: string; system: string }>(
    'SELECT pg_backend_pid() AS pid, pg_current_wal_insert_lsn()::text AS lsn, (SELECT system_identifier::text FROM pg_control_system()) AS system',
  );
  return { major, systemId: rows[0]!.system, slot, pid: rows[0]!.pid, goal: wantGoal ? parseLsn(rows[0]!.lsn) : undefined };
}

/** The stream continues only from the server the target was cloned from (or a physical copy of it). */
async function ensureSameSource(target: pg.Client, state: SyncState, sourceSystemId: string): Promise<void> {
  if (state.sourceSystemId === null) {
    await recordSourceSystem(target, sourceSystemId);
    return;
  }
  if (state.sourceSystemId !== sourceSystemId) {
    throw new PgferryError(
      'usage',
      `source: this server (system identifier ${sourceSystemId}) is not the one migration "${state.name}" copied from (${state.sourceSystemId}): its slot of the same name holds another history`,
      { side: 'source', fix: 'point --source at the server the migration started from, or run pgferry sync --drop-existing to start a new migration from this one' },
    );
  }
}

/** The apply session's settings and replica role; then the sync state it continues from. */
async function prepareApplySession(target: pg.Client): ReturnType<typeof readSyncState> {
  await target.query(`SELECT ${Object.keys(APPLY_SETTINGS).map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, false)`).join(', ')}`, Object.entries(APPLY_SETTINGS).flat());
  await enableReplicaRole(target);
  return readSyncState(target);
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
  await target.query(`BEGIN; SET LOCAL synchronous_commit = on; UPDATE pgferry.sync SET phase = phase; COMMIT;`);
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
