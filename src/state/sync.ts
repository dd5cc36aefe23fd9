import type pg from 'pg';
import { inOneRoundTrip, inTransaction, SQLSTATE, sqlState } from '../plumbing/index.js';
import { formatLsn, parseLsn, type Lsn } from '../replication/index.js';
import { LaterColumns, stateTableExists } from './exists.js';
import { CHANGED_ROWS_STATEMENTS, RECORDING_COLUMNS, type RecordingRequest } from './recording.js';
import { PHASE_CHANNEL, PROGRESS_CHANNEL, REQUESTS_CHANNEL } from './notify.js';

/**
 * The change stream's state on the target. `applied_lsn` moves in the same transaction as the
 * changes it covers, so after any crash it says exactly where the stream must start again.
 * The monitor columns (lag, rates, heartbeat) are written apart, once a second, for `status`.
 * The stream's own lag (`lag_ms`) rides on each batch's commit, and on the monitor's heartbeat
 * while no batch commits.
 */
export type SyncPhase = 'cloning' | 'streaming' | 'stopped';

export interface SyncState {
  readonly name: string;
  readonly slot: string;
  readonly publication: string;
  readonly phase: SyncPhase;
  readonly consistentLsn: Lsn | null;
  readonly appliedLsn: Lsn;
  readonly appliedAt: Date | null;
  readonly lastCommitTime: Date | null;
  readonly sourceLsn: Lsn | null;
  readonly lagBytes: number | null;
  readonly lagSeconds: number | null;
  /**
   * The stream's lag in milliseconds (sync/stream-lag.ts): how long ago the oldest source commit
   * not applied yet was committed, 0 when nothing is pending; null until sync measured it.
   */
  readonly lagMs: number | null;
  /** When `lagMs` was recorded, and how long ago by the target's clock (the one that wrote it). */
  readonly lagAt: Date | null;
  readonly lagAgeMs: number | null;
  /** The source's WAL end as the walsender last reported it (how far it has read): the applied position catches up with it. */
  readonly walsenderLsn: Lsn | null;
  readonly transactionsPerSecond: number | null;
  readonly rowsPerSecond: number | null;
  readonly appliedTransactions: number;
  readonly appliedRows: number;
  readonly heartbeatAt: Date | null;
  /** Seconds since the heartbeat, by the target's clock (the one that wrote it); null before the first. */
  readonly heartbeatAgeSeconds: number | null;
  readonly fenceLsn: Lsn | null;
  /** The backend of sync's own monitoring session on the source: a cut-over's drain must spare it. */
  readonly sourcePid: number | null;
  readonly stopRequestedAt: Date | null;
  readonly stopReason: string | null;
  /** The source server's system identifier: the stream may only continue from that server. */
  readonly sourceSystemId: string | null;
  /** What keeps sync from applying, as it last said (a lost target, a rejected change); null once it applies again. */
  readonly problem: { readonly text: string; readonly at: Date } | null;
  /**
   * Set when a cut-over prepared this state as the way back (or forward again): the other side
   * is where the application writes, and this database follows it from the moment both were
   * equal. Null for a migration that began with a copy.
   */
  readonly preparedAt: Date | null;
}

/**
 * Columns later pgferry versions added to pgferry.sync: a state made by an earlier version gets
 * them on the next sync run, and readers meanwhile read NULL for them.
 */
const LATER_COLUMNS = new LaterColumns('sync', [
  ['source_system_id', 'text'],
  ['problem', 'text'],
  ['problem_at', 'timestamptz'],
  ['prepared_at', 'timestamptz'],
  ['lag_ms', 'float8'],
  ['lag_at', 'timestamptz'],
  ['walsender_lsn', 'pg_lsn'],
  ['progress_wanted_until', 'timestamptz'],
  ...RECORDING_COLUMNS,
]);
const ADD_LATER_COLUMNS = LATER_COLUMNS.add;

export async function ensureSyncState(client: pg.Client): Promise<void> {
  await client.query(`
    CREATE SCHEMA IF NOT EXISTS pgferry;
    CREATE TABLE IF NOT EXISTS pgferry.sync (
      only_row             boolean PRIMARY KEY DEFAULT true CHECK (only_row),
      name                 text NOT NULL,
      slot_name            text NOT NULL,
      publication          text NOT NULL,
      phase                text NOT NULL,
      consistent_lsn       pg_lsn,
      applied_lsn          pg_lsn NOT NULL DEFAULT '0/0',
      applied_at           timestamptz,
      last_commit_time     timestamptz,
      applied_transactions bigint NOT NULL DEFAULT 0,
      applied_rows         bigint NOT NULL DEFAULT 0,
      fence_lsn            pg_lsn,
      source_lsn           pg_lsn,
      lag_bytes            bigint,
      lag_seconds          float8,
      transactions_per_second float8,
      rows_per_second      float8,
      heartbeat_at         timestamptz,
      started_at           timestamptz NOT NULL DEFAULT now(),
      source_pid           integer,
      stop_requested_at    timestamptz,
      stop_reason          text,
      source_system_id     text,
      problem              text,
      problem_at           timestamptz
    );
    ${ADD_LATER_COLUMNS}
    CREATE TABLE IF NOT EXISTS pgferry.sync_tables (
      table_name text PRIMARY KEY,
      inserted   bigint NOT NULL DEFAULT 0,
      updated    bigint NOT NULL DEFAULT 0,
      deleted    bigint NOT NULL DEFAULT 0,
      truncated  bigint NOT NULL DEFAULT 0
    );`);
  // The cut-over's record of changed rows, made now so that a cut-over never alters a table a batch writes to.
  for (const statement of CHANGED_ROWS_STATEMENTS) await client.query(statement);
}

export async function readSyncState(client: pg.Client): Promise<SyncState | undefined> {
  if (!(await stateTableExists(client, 'sync'))) return undefined;
  // Read-only readers (status, cut-over) may meet a state made before later columns existed.
  const later = await LATER_COLUMNS.selectList(client);
  const { rows } = await client.query<{
    name: string;
    slot_name: string;
    publication: string;
    phase: SyncPhase;
    consistent_lsn: string | null;
    applied_lsn: string;
    applied_at: Date | null;
    last_commit_time: Date | null;
    source_lsn: string | null;
    lag_bytes: string | null;
    lag_seconds: number | null;
    transactions_per_second: number | null;
    rows_per_second: number | null;
    applied_transactions: string;
    applied_rows: string;
    heartbeat_at: Date | null;
    heartbeat_age: number | null;
    fence_lsn: string | null;
    source_pid: number | null;
    stop_requested_at: Date | null;
    stop_reason: string | null;
    source_system_id: string | null;
    problem: string | null;
    problem_at: Date | null;
    prepared_at: Date | null;
    lag_ms: number | null;
    lag_at: Date | null;
    lag_age_ms: number | null;
    walsender_text: string | null;
  }>(`SELECT *, walsender_lsn::text AS walsender_text, (extract(epoch FROM clock_timestamp() - lag_at) * 1000)::float8 AS lag_age_ms
        FROM (SELECT name, slot_name, publication, phase, consistent_lsn::text, applied_lsn::text, applied_at, last_commit_time,
                     source_lsn::text, lag_bytes::text, lag_seconds, transactions_per_second, rows_per_second,
                     applied_transactions::text, applied_rows::text, heartbeat_at,
                     extract(epoch FROM now() - heartbeat_at)::float8 AS heartbeat_age, fence_lsn::text,
                     source_pid, stop_requested_at, stop_reason, ${later}
                FROM pgferry.sync) AS s`);
  const row = rows[0];
  if (!row) return undefined;
  return {
    name: row.name,
    slot: row.slot_name,
    publication: row.publication,
    phase: row.phase,
    consistentLsn: lsnOrNull(row.consistent_lsn),
    appliedLsn: parseLsn(row.applied_lsn),
    appliedAt: row.applied_at,
    lastCommitTime: row.last_commit_time,
    sourceLsn: lsnOrNull(row.source_lsn),
    lagBytes: row.lag_bytes === null ? null : Number(row.lag_bytes),
    lagSeconds: row.lag_seconds,
    lagMs: row.lag_ms,
    lagAt: row.lag_at,
    lagAgeMs: row.lag_age_ms,
    walsenderLsn: lsnOrNull(row.walsender_text),
    transactionsPerSecond: row.transactions_per_second,
    rowsPerSecond: row.rows_per_second,
    appliedTransactions: Number(row.applied_transactions),
    appliedRows: Number(row.applied_rows),
    heartbeatAt: row.heartbeat_at,
    heartbeatAgeSeconds: row.heartbeat_age,
    fenceLsn: lsnOrNull(row.fence_lsn),
    sourcePid: row.source_pid,
    stopRequestedAt: row.stop_requested_at,
    stopReason: row.stop_reason,
    sourceSystemId: row.source_system_id,
    problem: row.problem === null ? null : { text: row.problem, at: row.problem_at ?? new Date(0) },
    preparedAt: row.prepared_at,
  };
}

/** A nullable pg_lsn column read as text. */
function lsnOrNull(text: string | null): Lsn | null {
  return text === null ? null : parseLsn(text);
}

export interface SyncIdentity {
  readonly name: string;
  readonly slot: string;
  readonly publication: string;
  readonly sourceSystemId: string;
}

/**
 * A migration begins: its slot's consistent point is where the stream starts (the copy's
 * per-table positions all lie past it), recorded before anything is copied.
 */
export async function startSyncState(client: pg.Client, identity: SyncIdentity, consistentLsn: Lsn): Promise<void> {
  await client.query(
    `INSERT INTO pgferry.sync (name, slot_name, publication, phase, source_system_id, consistent_lsn, applied_lsn)
     VALUES ($1, $2, $3, 'cloning', $4, $5::pg_lsn, $5::pg_lsn)
     ON CONFLICT (only_row) DO UPDATE SET name = $1, slot_name = $2, publication = $3, phase = 'cloning', started_at = now(),
                                          fence_lsn = NULL, stop_requested_at = NULL, stop_reason = NULL, source_system_id = $4,
                                          prepared_at = NULL, consistent_lsn = $5::pg_lsn, applied_lsn = $5::pg_lsn`,
    [identity.name, identity.slot, identity.publication, identity.sourceSystemId, formatLsn(consistentLsn)],
  );
}

/** Every table is copied: the stream alone carries the migration from here. */
export async function copyFinishedState(client: pg.Client): Promise<void> {
  await client.query(`UPDATE pgferry.sync SET phase = 'streaming' WHERE phase = 'cloning'`);
}

/**
 * A cut-over's way back (or forward again): this database follows the one the application now
 * writes to, from `from`, the position on that server where both held the same rows. No copy:
 * the state starts streaming there, as a sync that stopped at `from` would continue. Whatever
 * this database recorded before (an earlier direction's state, its counters) is replaced.
 */
export async function prepareFollowingState(client: pg.Client, identity: SyncIdentity, from: Lsn): Promise<void> {
  await inTransaction(client, async () => {
    await client.query(
      `INSERT INTO pgferry.sync (name, slot_name, publication, phase, consistent_lsn, applied_lsn, source_system_id, prepared_at)
       VALUES ($1, $2, $3, 'streaming', $4::pg_lsn, $4::pg_lsn, $5, now())
       ON CONFLICT (only_row) DO UPDATE SET name = $1, slot_name = $2, publication = $3, phase = 'streaming',
              consistent_lsn = $4::pg_lsn, applied_lsn = $4::pg_lsn, applied_at = NULL, last_commit_time = NULL,
              applied_transactions = 0, applied_rows = 0, fence_lsn = NULL, source_lsn = NULL, lag_bytes = NULL,
              lag_seconds = NULL, lag_ms = NULL, lag_at = NULL, walsender_lsn = NULL, progress_wanted_until = NULL,
              transactions_per_second = NULL, rows_per_second = NULL, heartbeat_at = NULL,
              started_at = now(), source_pid = NULL, stop_requested_at = NULL, stop_reason = NULL,
              source_system_id = $5, problem = NULL, problem_at = NULL, prepared_at = now()`,
      [identity.name, identity.slot, identity.publication, formatLsn(from), identity.sourceSystemId],
    );
    await client.query('DELETE FROM pgferry.sync_tables');
  });
}

/**
 * Takes back a following state a failed cut-over prepared (the way back it made is gone): only
 * one still waiting to stream from `slot`, never one a sync has begun to use or a cut-over ended.
 */
export async function forgetFollowingState(client: pg.Client, slot: string): Promise<void> {
  await client.query(
    `DELETE FROM pgferry.sync WHERE prepared_at IS NOT NULL AND stop_requested_at IS NULL AND slot_name = $1 AND heartbeat_at IS NULL`,
    [slot],
  );
}

/** A state made before pgferry recorded the source's identity learns it from the slot's server. */
export async function recordSourceSystem(client: pg.Client, sourceSystemId: string): Promise<void> {
  await client.query(ADD_LATER_COLUMNS);
  await client.query(`UPDATE pgferry.sync SET source_system_id = $1 WHERE source_system_id IS NULL`, [sourceSystemId]);
}

/**
 * Streaming (re)starts: which source backend is sync's own. Its first heartbeat is written
 * here too, so a cut-over started the moment sync says it streams finds it running (the
 * monitor's own heartbeats follow every second).
 */
export async function startStreamingRun(client: pg.Client, sourcePid: number): Promise<void> {
  await client.query(ADD_LATER_COLUMNS);
  // The lag of an earlier run says nothing about this one: unknown until its monitor measures it.
  await client.query(
    `UPDATE pgferry.sync SET phase = 'streaming', source_pid = $1, heartbeat_at = now(), lag_seconds = NULL, lag_bytes = NULL, lag_ms = NULL,
            lag_at = NULL, walsender_lsn = NULL, problem = NULL, problem_at = NULL`,
    [sourcePid],
  );
}

/** What keeps sync from applying, for `status` (null clears it). */
export async function recordSyncProblem(client: pg.Client, problem: string | null): Promise<void> {
  await client.query(`UPDATE pgferry.sync SET problem = $1, problem_at = CASE WHEN $1::text IS NULL THEN NULL ELSE now() END`, [problem]);
}

/** A running sync writes a heartbeat every second; this long without one, it is not running. */
export const HEARTBEAT_FRESH_SECONDS = 5;

/** What a target follows its source through; null when it follows nothing (see followedThrough). */
export type FollowedThrough = 'migration' | 'way back' | null;

/**
 * The one answer to "does this database follow its source?", for status (its direction) and
 * verify (whose sequences the stream does not carry): a sync state no cut-over has stopped,
 * through a migration under way or through the way back a cut-over prepared.
 */
export function followedThrough(state: SyncState | undefined): FollowedThrough {
  if (state === undefined || state.stopRequestedAt !== null) return null;
  return state.preparedAt === null ? 'migration' : 'way back';
}

/**
 * The one answer to "is pgferry sync streaming into this target now?", for every command that
 * asks (cut-over, migrate, verify, status): the phase says streaming and the heartbeat, by the
 * target's own clock, is fresh. A sync killed while streaming leaves the phase behind; only the
 * heartbeat tells.
 */
export function syncIsStreaming(state: SyncState | undefined): boolean {
  return (
    state !== undefined &&
    state.phase === 'streaming' &&
    state.heartbeatAgeSeconds !== null &&
    state.heartbeatAgeSeconds <= HEARTBEAT_FRESH_SECONDS
  );
}

/**
 * How another pgferry process (cut-over) stops a running sync: through the target, the one
 * place both can reach. Sync looks for the request several times a second.
 */
export async function requestSyncStop(client: pg.Client, reason: string): Promise<void> {
  // The request and the notification that wakes sync to read it, in one statement: the
  // notification is delivered when the statement commits, with the request visible.
  await client.query(
    `WITH request AS (UPDATE pgferry.sync SET stop_requested_at = now(), stop_reason = $1 RETURNING 1) SELECT pg_notify($2, '')`,
    [reason, REQUESTS_CHANNEL],
  );
}

/** Takes a stop request back: a cut-over that found it could not finish lets sync run again. */
export async function withdrawSyncStop(client: pg.Client): Promise<void> {
  await client.query(`UPDATE pgferry.sync SET stop_requested_at = NULL, stop_reason = NULL`);
}

/**
 * What a running sync is asked through the target, in one read (its poll makes it several
 * times a second): to stop, and to record the rows it applies for a cut-over (state/recording.ts).
 */
export async function readStreamRequests(client: pg.Client): Promise<{
  readonly stop: string | undefined;
  readonly recording: RecordingRequest | undefined;
  /** A cut-over waits on sync's progress: each batch notifies it (PROGRESS_CHANNEL) while this holds. */
  readonly progressWanted: boolean;
}> {
  const { rows } = await client.query<{
    stop: boolean;
    reason: string | null;
    recording_id: string | null;
    expired: boolean | null;
    acknowledged: boolean;
    progress_wanted: boolean | null;
  }>(
    `SELECT stop_requested_at IS NOT NULL AS stop, stop_reason AS reason, recording_id,
            recording_lease_until < clock_timestamp() AS expired, recording_from_lsn IS NOT NULL AS acknowledged,
            progress_wanted_until > clock_timestamp() AS progress_wanted
       FROM pgferry.sync`,
  );
  const row = rows[0];
  return {
    progressWanted: row?.progress_wanted === true,
    stop: row?.stop ? (row.reason ?? 'stop requested') : undefined,
    recording:
      row?.recording_id != null ? { id: row.recording_id, expired: row.expired !== false, acknowledged: row.acknowledged } : undefined,
  };
}

export async function setSyncPhase(client: pg.Client, phase: SyncPhase): Promise<void> {
  // The phase and the notification that says it, in one statement: delivered at its commit, with the phase visible.
  await client.query(`WITH phase AS (UPDATE pgferry.sync SET phase = $1 RETURNING 1) SELECT pg_notify($2, $1)`, [phase, PHASE_CHANNEL]);
}

export interface TableCounts {
  inserted: number;
  updated: number;
  deleted: number;
  truncated: number;
}

export interface AppliedBatch {
  readonly lsn: Lsn;
  readonly lastCommitTime: Date | undefined;
  readonly transactions: number;
  readonly rows: number;
  readonly tables: ReadonlyMap<string, TableCounts>;
  readonly fenceLsn: Lsn | undefined;
  /** The stream's lag once this batch is committed (sync/stream-lag.ts); undefined while unknown. */
  readonly lagMs: number | undefined;
  /** A cut-over waits on sync's progress: the commit also notifies it (PROGRESS_CHANNEL). */
  readonly notify: boolean;
}

/**
 * What a progress notification carries: the applied position, the last fence applied, the
 * stream's lag; read by notify.ts's ProgressListener. Built from the row just written.
 */
const PROGRESS_PAYLOAD = `RETURNING pg_notify('${PROGRESS_CHANNEL}', applied_lsn::text || ' ' || coalesce(fence_lsn::text, '-') || ' ' || coalesce(lag_ms::text, '-'))`;

/**
 * Inside the batch's own transaction: where the stream stands, what each table received, and
 * the stream's lag (no round trip of its own: it rides on the statement the batch makes anyway).
 */
export async function recordAppliedBatch(client: pg.Client, batch: AppliedBatch): Promise<void> {
  const names = [...batch.tables.keys()];
  const counts = [...batch.tables.values()];
  await client.query(
    `WITH tables AS (
       INSERT INTO pgferry.sync_tables AS s (table_name, inserted, updated, deleted, truncated)
       SELECT * FROM unnest($6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])
       ON CONFLICT (table_name) DO UPDATE SET inserted = s.inserted + EXCLUDED.inserted, updated = s.updated + EXCLUDED.updated,
                                              deleted = s.deleted + EXCLUDED.deleted, truncated = s.truncated + EXCLUDED.truncated)
     UPDATE pgferry.sync SET applied_lsn = $1::pg_lsn, applied_at = now(), last_commit_time = coalesce($2, last_commit_time),
            applied_transactions = applied_transactions + $3, applied_rows = applied_rows + $4,
            fence_lsn = coalesce($5::pg_lsn, fence_lsn), lag_ms = $11, lag_at = clock_timestamp()
     ${batch.notify ? PROGRESS_PAYLOAD : ''}`,
    [
      formatLsn(batch.lsn),
      batch.lastCommitTime ?? null,
      batch.transactions,
      batch.rows,
      batch.fenceLsn === undefined ? null : formatLsn(batch.fenceLsn),
      names,
      counts.map((c) => c.inserted),
      counts.map((c) => c.updated),
      counts.map((c) => c.deleted),
      counts.map((c) => c.truncated),
      batch.lagMs ?? null,
    ],
  );
}

/**
 * An idle stream moves too: nothing between the applied position and this one needs applying,
 * and nothing is pending, so the stream's lag is 0.
 */
export async function recordIdlePosition(client: pg.Client, lsn: Lsn, notify: boolean): Promise<void> {
  await client.query(
    `UPDATE pgferry.sync SET applied_lsn = $1::pg_lsn, applied_at = now(), lag_ms = 0, lag_at = clock_timestamp()
      WHERE applied_lsn < $1::pg_lsn ${notify ? PROGRESS_PAYLOAD : ''}`,
    [formatLsn(lsn)],
  );
}

export interface Heartbeat {
  readonly sourceLsn: Lsn;
  readonly lagBytes: number;
  /** Undefined while sync cannot tell (catching up on a backlog older than its first look). */
  readonly lagSeconds: number | undefined;
  readonly transactionsPerSecond: number;
  readonly rowsPerSecond: number;
  /** The stream's lag now (it grows while a batch takes long), measured with the applied position at `appliedLsn`. */
  readonly stream: { readonly lagMs: number | undefined; readonly appliedLsn: Lsn; readonly walsenderLsn: Lsn };
}

export async function recordHeartbeat(client: pg.Client, beat: Heartbeat): Promise<void> {
  // The stream's lag only if no batch committed since it was measured (a batch records its own,
  // newer, figure; this update may have waited for that batch's row lock).
  await client.query(
    `UPDATE pgferry.sync SET source_lsn = $1::pg_lsn, lag_bytes = $2, lag_seconds = $3, transactions_per_second = $4,
            rows_per_second = $5, heartbeat_at = now(), walsender_lsn = $8::pg_lsn,
            lag_ms = CASE WHEN applied_lsn <= $7::pg_lsn THEN $6 ELSE lag_ms END,
            lag_at = CASE WHEN applied_lsn <= $7::pg_lsn THEN clock_timestamp() ELSE lag_at END`,
    [
      formatLsn(beat.sourceLsn),
      beat.lagBytes,
      beat.lagSeconds ?? null,
      beat.transactionsPerSecond,
      beat.rowsPerSecond,
      beat.stream.lagMs ?? null,
      formatLsn(beat.stream.appliedLsn),
      formatLsn(beat.stream.walsenderLsn),
    ],
  );
}

/**
 * A cut-over is about to wait on sync's progress (its catch-up, then its fence): until `ms` from
 * now, sync notifies PROGRESS_CHANNEL at each batch it commits, and is woken to read this at
 * once. False when the running sync's state has no such column (a sync of an earlier version):
 * the waits then look without being woken.
 */
export async function wantProgress(client: pg.Client, ms: number): Promise<boolean> {
  try {
    await client.query(
      `WITH wanted AS (UPDATE pgferry.sync SET progress_wanted_until = clock_timestamp() + $1 * interval '1 millisecond' RETURNING 1)
       SELECT pg_notify($2, '') FROM wanted`,
      [ms, REQUESTS_CHANNEL],
    );
    return true;
  } catch (error) {
    if (sqlState(error) === SQLSTATE.undefinedColumn) return false;
    throw error;
  }
}

/** The catch-up's one small read: the stream's lag, whether the monitor knows the lag at all, and the heartbeat's age. */
export async function readLagProgress(client: pg.Client): Promise<
  | {
      readonly lagMs: number | null;
      readonly monitorKnows: boolean;
      readonly phase: SyncPhase;
      readonly heartbeatAgeSeconds: number | null;
    }
  | undefined
> {
  const { rows } = await client.query<{
    lag_ms: number | null;
    lag_seconds: number | null;
    phase: SyncPhase;
    heartbeat_age: number | null;
  }>(`SELECT lag_ms, lag_seconds, phase, extract(epoch FROM now() - heartbeat_at)::float8 AS heartbeat_age FROM pgferry.sync`);
  const row = rows[0];
  return row
    ? {
        lagMs: row.lag_ms,
        monitorKnows: row.lag_seconds !== null,
        phase: row.phase,
        heartbeatAgeSeconds: row.heartbeat_age,
      }
    : undefined;
}

export async function readSyncTables(client: pg.Client): Promise<Array<{ table: string } & TableCounts>> {
  if (!(await stateTableExists(client, 'sync_tables'))) return [];
  const { rows } = await client.query<{ table: string; inserted: string; updated: string; deleted: string; truncated: string }>(
    `SELECT table_name AS table, inserted::text, updated::text, deleted::text, truncated::text FROM pgferry.sync_tables ORDER BY table_name`,
  );
  return rows.map((r) => ({
    table: r.table,
    inserted: Number(r.inserted),
    updated: Number(r.updated),
    deleted: Number(r.deleted),
    truncated: Number(r.truncated),
  }));
}

/** The slot, the publication and the applied position, in one read: what the late-write check needs once sync stopped. */
export async function readSlotPosition(
  client: pg.Client,
): Promise<{ readonly slot: string; readonly publication: string; readonly appliedLsn: Lsn } | undefined> {
  const { rows } = await client.query<{ slot_name: string; publication: string; applied: string }>(
    `SELECT slot_name, publication, applied_lsn::text AS applied FROM pgferry.sync`,
  );
  const row = rows[0];
  return row ? { slot: row.slot_name, publication: row.publication, appliedLsn: parseLsn(row.applied) } : undefined;
}

/** Where sync stands against a cut-over's fence: the applied position and the last fence it applied. */
export async function readFenceProgress(
  client: pg.Client,
): Promise<{ readonly applied: Lsn; readonly fence: Lsn | undefined } | undefined> {
  const { rows } = await client.query<{ fence: string | null; applied: string }>(
    `SELECT fence_lsn::text AS fence, applied_lsn::text AS applied FROM pgferry.sync`,
  );
  const row = rows[0];
  return row ? { applied: parseLsn(row.applied), fence: row.fence === null ? undefined : parseLsn(row.fence) } : undefined;
}

export async function readSyncPhase(client: pg.Client): Promise<SyncPhase | undefined> {
  const { rows } = await client.query<{ phase: SyncPhase }>(`SELECT phase FROM pgferry.sync`);
  return rows[0]?.phase;
}

/** Whether the target has applied the source up to `position` (sync writes applied_lsn with the changes it covers). */
export async function appliedPast(client: pg.Client, position: Lsn): Promise<{ readonly passed: boolean; readonly applied: Lsn | null }> {
  const { rows } = await client.query<{ passed: boolean; applied: string }>(
    `SELECT applied_lsn >= $1::pg_lsn AS passed, applied_lsn::text AS applied FROM pgferry.sync`,
    [formatLsn(position)],
  );
  return { passed: rows[0]?.passed === true, applied: lsnOrNull(rows[0]?.applied ?? null) };
}

/**
 * One write to the state with synchronous_commit on: its commit flushes the target's WAL, and
 * with it every batch sync committed asynchronously before it.
 */
export async function flushStateWrites(client: pg.Client): Promise<void> {
  // One round trip: sync's stop, which a cut-over waits for with writes frozen, makes it.
  await inOneRoundTrip(client, `UPDATE pgferry.sync SET phase = phase`, { local: { synchronous_commit: 'on' } });
}
