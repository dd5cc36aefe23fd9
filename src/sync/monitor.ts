import type pg from 'pg';
import type { Logger } from '../log/index.js';
import { formatLsn, parseLsn, type Lsn } from '../replication/index.js';
import { recordHeartbeat } from '../state/index.js';
import type { ChangeStream } from './change-stream.js';
import { readSlot, slotGoneError } from './source-setup.js';

export interface MonitorOptions {
  readonly source: pg.Client;
  readonly target: pg.Client;
  readonly slot: string;
  readonly sourceMajor: number;
  readonly maxRetainedWal: number;
  readonly logger: Logger;
  readonly logEveryMs: number;
}

export interface Lag {
  readonly sourceLsn: Lsn;
  readonly lagBytes: number;
  readonly lagSeconds: number;
  readonly transactionsPerSecond: number;
  readonly rowsPerSecond: number;
  readonly retainedWalBytes: number | undefined;
}

const RATE_WINDOW_MS = 10_000;
const WARN_AGAIN_MS = 5 * 60_000;

/**
 * Once a second: how far behind the target is (bytes from the source's WAL position, seconds
 * from the oldest commit not applied), the rates, the WAL the slot holds on the source, and
 * the acknowledgement of what the target has flushed. Written to the target for `status`.
 */
export class Monitor {
  private readonly samples: Array<{ at: number; transactions: number; rows: number }> = [];
  private lastLog = 0;
  private lastWalWarning = 0;
  latest: Lag | undefined;

  constructor(
    private readonly options: MonitorOptions,
    private readonly stream: ChangeStream,
  ) {}

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
    const flushed = await target.query<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn');
    this.stream.flushedUpTo(parseLsn(flushed.rows[0]!.lsn));

    const now = Date.now();
    this.samples.push({ at: now, transactions: progress.transactions, rows: progress.rows });
    while (this.samples.length > 2 && now - this.samples[0]!.at > RATE_WINDOW_MS) this.samples.shift();
    const first = this.samples[0]!;
    const span = (now - first.at) / 1000;
    const lagBytes = sourceLsn > progress.appliedLsn ? Number(sourceLsn - progress.appliedLsn) : 0;
    const lag: Lag = {
      sourceLsn,
      lagBytes,
      lagSeconds: progress.oldestUnapplied ? Math.max(0, (now - progress.oldestUnapplied.getTime()) / 1000) : 0,
      transactionsPerSecond: span > 0 ? (progress.transactions - first.transactions) / span : 0,
      rowsPerSecond: span > 0 ? (progress.rows - first.rows) / span : 0,
      retainedWalBytes: rows[0]!.retained === null ? undefined : Number(rows[0]!.retained),
    };
    this.latest = lag;
    await recordHeartbeat(target, {
      sourceLsn: formatLsn(sourceLsn),
      lagBytes: lag.lagBytes,
      lagSeconds: lag.lagSeconds,
      transactionsPerSecond: lag.transactionsPerSecond,
      rowsPerSecond: lag.rowsPerSecond,
    });
    this.report(lag, now);
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
        lagSeconds: Number(lag.lagSeconds.toFixed(3)),
        transactionsPerSecond: Math.round(lag.transactionsPerSecond),
        rowsPerSecond: Math.round(lag.rowsPerSecond),
      },
      'streaming',
    );
  }
}
