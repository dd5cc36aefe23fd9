import type pg from 'pg';
import type { Scope } from '../catalog/index.js';
import type { Logger } from '../log/index.js';
import { formatLsn, parseLsn, type Lsn } from '../replication/index.js';
import { recordHeartbeat } from '../state/index.js';
import type { ChangeStream } from './change-stream.js';
import { applyConnectionLost, type LivenessTimings } from './liveness.js';
import { LockWatch } from './lock-watch.js';
import { readSlot, slotGoneError } from './source-setup.js';
import { UnpublishedTableWatch } from './unpublished.js';
import { walGuardVerdict } from './wal-guard.js';
import { PgferryError } from '../errors.js';

export interface MonitorOptions {
  readonly source: pg.Client;
  readonly target: pg.Client;
  readonly slot: string;
  readonly publication: string;
  readonly sourceMajor: number;
  readonly maxRetainedWal: number;
  /** The apply session's backend on the target, watched for a dead connection (sync/liveness.ts). */
  readonly applyPid: number;
  readonly timings: LivenessTimings;
  readonly logger: Logger;
  readonly logEveryMs: number;
  /** Which tables the migration covers: one in scope the stream can't see is said. */
  readonly scope: Scope;
  /** Each measurement also goes here, for /metrics and the status page (--listen). */
  readonly metrics?: MeasurementSink | undefined;
}

/**
 * Where the monitor's measurements go besides the target's state: the metrics of `--listen`
 * (observe/ implements it; sync does not depend on it).
 */
export interface MeasurementSink {
  lag(sample: Pick<Lag, 'lagBytes' | 'lagSeconds' | 'streamLagMs' | 'retainedWalBytes' | 'catchUpSeconds'>): void;
  spool(memoryBytes: number, diskBytes: number): void;
  walLimitBytes(bytes: number | undefined): void;
}

export interface Lag {
  readonly sourceLsn: Lsn;
  readonly lagBytes: number;
  /** Undefined while unknown (see SourcePositions). */
  readonly lagSeconds: number | undefined;
  /** The stream's own lag, to the millisecond (stream-lag.ts); undefined while unknown. */
  readonly streamLagMs: number | undefined;
  readonly transactionsPerSecond: number;
  readonly rowsPerSecond: number;
  readonly retainedWalBytes: number | undefined;
  /** When the lag shrinks: how long until it is gone at the rate it shrank over the last seconds. */
  readonly catchUpSeconds: number | undefined;
}

const RATE_WINDOW_MS = 10_000;
const WARN_AGAIN_MS = 5 * 60_000;

/**
 * Once a second: how far behind the target is (bytes from the source's WAL position, seconds
 * since the source was where the target is, see SourcePositions; the stream's own lag to the
 * millisecond, stream-lag.ts, which each batch also records), the rates, the WAL the slot holds on the source, and
 * the acknowledgement of what the target has flushed. Written to the target for `status`.
 */
export class Monitor {
  private readonly samples: Array<{ at: number; transactions: number; rows: number; lagBytes: number }> = [];
  private readonly positions = new SourcePositions();
  private lastLog = 0;
  private lastWalWarning = 0;
  private readonly unpublished: UnpublishedTableWatch;
  private readonly locks: LockWatch;
  /** The applied position at the last tick, and since when it has not moved (for the WAL guard). */
  private lastApplied: { lsn: Lsn; since: number } | undefined;
  latest: Lag | undefined;

  constructor(
    private readonly options: MonitorOptions,
    private readonly stream: ChangeStream,
  ) {
    this.unpublished = new UnpublishedTableWatch(options.source, options.publication, options.scope, options.logger);
    this.locks = new LockWatch(options.target, options.applyPid, options.logger);
  }

  /** The run's failure, with what the apply waited on when it is the apply's lock timeout. */
  explain(error: unknown): unknown {
    return this.locks.explain(error, Date.now());
  }

  /** The source's own WAL limit, read once, for the status page to draw the slot's WAL against. */
  private walLimitRead = false;

  private async toMetrics(lag: Lag): Promise<void> {
    const metrics = this.options.metrics;
    if (!metrics) return;
    metrics.lag(lag);
    metrics.spool(this.stream.held.memoryBytes, this.stream.held.diskBytes);
    if (!this.walLimitRead && this.options.sourceMajor >= 13) {
      this.walLimitRead = true;
      const { rows } = await this.options.source.query<{ mb: string }>(
        `SELECT setting AS mb FROM pg_settings WHERE name = 'max_slot_wal_keep_size'`,
      );
      const mb = Number(rows[0]?.mb ?? -1);
      metrics.walLimitBytes(mb >= 0 ? mb * 1024 * 1024 : undefined);
    }
  }

  async tick(): Promise<Lag> {
    const { source, target, slot } = this.options;
    const progress = this.stream.progress;
    const { rows } = await source.query<{ lsn: string; retained: string | null }>(
      `SELECT pg_current_wal_insert_lsn()::text AS lsn,
              (SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), restart_lsn)::bigint::text FROM pg_replication_slots WHERE slot_name = $1) AS retained`,
      [slot],
    );
    const sourceLsn = parseLsn(rows[0]!.lsn);
    const slotInfo = await readSlot(source, slot, this.options.sourceMajor);
    if (!slotInfo.exists || slotInfo.lost) throw slotGoneError(slot, slotInfo);
    const busySince = this.stream.targetBusySince;
    const { rows: targetRows } = await target.query<{
      lsn: string;
      state: string | null;
      since_ms: number | null;
      present: boolean;
      on_lock: boolean;
    }>(
      `SELECT pg_current_wal_flush_lsn()::text AS lsn, a.state, (extract(epoch FROM clock_timestamp() - a.state_change) * 1000)::float8 AS since_ms, a.pid IS NOT NULL AS present,
              coalesce(a.wait_event_type = 'Lock', false) AS on_lock
         FROM (SELECT 1) AS one LEFT JOIN pg_stat_activity a ON a.pid = $1`,
      [this.options.applyPid],
    );
    const facts = targetRows[0]!;
    this.stream.flushedUpTo(parseLsn(facts.lsn));
    if (facts.on_lock) await this.locks.look(Date.now());
    const stalled = applyConnectionLost(
      busySince === undefined ? undefined : Date.now() - busySince,
      facts.present ? { state: facts.state, sinceMs: facts.since_ms ?? 0 } : undefined,
      this.options.timings,
    );
    if (stalled !== undefined && this.stream.targetBusySince === busySince) {
      throw new PgferryError('connection-lost', `target: ${stalled}`, {
        side: 'target',
        fix: 'check the network path to the target; sync reconnects by itself',
      });
    }

    const now = Date.now();
    const stream = this.stream.lag;
    const lagBytes = sourceLsn > progress.appliedLsn ? Number(sourceLsn - progress.appliedLsn) : 0;
    this.samples.push({ at: now, transactions: progress.transactions, rows: progress.rows, lagBytes });
    while (this.samples.length > 2 && now - this.samples[0]!.at > RATE_WINDOW_MS) this.samples.shift();
    const first = this.samples[0]!;
    const span = (now - first.at) / 1000;
    const lag: Lag = {
      sourceLsn,
      lagBytes,
      lagSeconds: this.positions.lagSeconds(sourceLsn, progress.appliedLsn, now),
      streamLagMs: stream.lagMs,
      transactionsPerSecond: span > 0 ? (progress.transactions - first.transactions) / span : 0,
      rowsPerSecond: span > 0 ? (progress.rows - first.rows) / span : 0,
      retainedWalBytes: rows[0]!.retained === null ? undefined : Number(rows[0]!.retained),
      catchUpSeconds: catchUpSeconds(this.samples),
    };
    this.latest = lag;
    await this.toMetrics(lag);
    await recordHeartbeat(target, {
      sourceLsn,
      lagBytes: lag.lagBytes,
      lagSeconds: lag.lagSeconds,
      transactionsPerSecond: lag.transactionsPerSecond,
      rowsPerSecond: lag.rowsPerSecond,
      stream,
    });
    this.report(lag, now);
    await this.unpublished.look(now);
    if (this.lastApplied === undefined || progress.appliedLsn !== this.lastApplied.lsn)
      this.lastApplied = { lsn: progress.appliedLsn, since: now };
    // Stuck with nothing to apply is not stuck: an idle source's position moves too (idle advance).
    const stopping = walGuardVerdict(slot, lag.retainedWalBytes, this.options.maxRetainedWal, now - this.lastApplied.since);
    if (stopping) throw stopping;
    return lag;
  }

  private report(lag: Lag, now: number): void {
    const { logger, maxRetainedWal, slot } = this.options;
    if (lag.retainedWalBytes !== undefined && lag.retainedWalBytes > maxRetainedWal && now - this.lastWalWarning > WARN_AGAIN_MS) {
      this.lastWalWarning = now;
      logger.warn(
        { slot, retainedWalMB: Math.round(lag.retainedWalBytes / 1048576), limitMB: Math.round(maxRetainedWal / 1048576) },
        `the slot holds ${Math.round(lag.retainedWalBytes / 1048576)} MB of WAL on the source, above --max-retained-wal: the target is falling behind; watch the source's free disk, or stop and cut over sooner`,
      );
    }
    if (now - this.lastLog < this.options.logEveryMs) return;
    this.lastLog = now;
    const progress = this.stream.progress;
    logger.info(
      {
        appliedLsn: formatLsn(progress.appliedLsn),
        lagBytes: lag.lagBytes,
        lagSeconds: lag.lagSeconds === undefined ? null : Number(lag.lagSeconds.toFixed(3)),
        streamLagMs: lag.streamLagMs ?? null,
        transactionsPerSecond: Math.round(lag.transactionsPerSecond),
        rowsPerSecond: Math.round(lag.rowsPerSecond),
        ...(lag.catchUpSeconds === undefined ? {} : { catchUpSeconds: Math.round(lag.catchUpSeconds) }),
      },
      'streaming',
    );
  }
}

/** Below this the target is caught up for any practical purpose: no time left to estimate. */
const CAUGHT_UP_BYTES = 1024 * 1024;

/**
 * How long until a backlog is applied, from the lag in bytes over the last seconds (oldest
 * first): the backlog divided by the rate it shrank at, which counts what the source wrote
 * meanwhile. Undefined when it is not shrinking, or already under a megabyte. Pure.
 */
export function catchUpSeconds(samples: ReadonlyArray<{ readonly at: number; readonly lagBytes: number }>): number | undefined {
  const first = samples[0];
  const last = samples.at(-1);
  if (!first || !last || last.at <= first.at || last.lagBytes < CAUGHT_UP_BYTES) return undefined;
  const shrinkPerSecond = (first.lagBytes - last.lagBytes) / ((last.at - first.at) / 1000);
  return shrinkPerSecond > 0 ? last.lagBytes / shrinkPerSecond : undefined;
}

/**
 * The source's WAL position as the monitor saw it, second by second, on this machine's clock.
 * The lag in seconds is how long ago the source was where the target is now: it counts what
 * the walsender has not even decoded or sent yet (a backlog the stream never saw), and it
 * compares two readings of one clock, so no clock skew between machines enters it.
 */
export class SourcePositions {
  /** Oldest first; the first is the last one the target had reached at the previous reading. */
  private readonly samples: Array<{ readonly at: number; readonly lsn: Lsn }> = [];

  /**
   * Undefined while the target is still behind where the source stood at the first reading:
   * how long ago the source was there is not known (a sync started on a backlog), and a
   * cut-over must not take that for a small lag.
   */
  lagSeconds(sourceLsn: Lsn, appliedLsn: Lsn, now: number): number | undefined {
    this.samples.push({ at: now, lsn: sourceLsn });
    // Readings the target has passed tell nothing any more, but the newest of them: the source
    // moved past the applied position after that one was taken.
    while (this.samples.length >= 2 && this.samples[1]!.lsn <= appliedLsn) this.samples.shift();
    if (sourceLsn <= appliedLsn) return 0;
    const passed = this.samples[0]!;
    if (passed.lsn > appliedLsn) return undefined;
    return Math.max(0, (now - passed.at) / 1000);
  }
}
