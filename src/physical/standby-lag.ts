import type pg from 'pg';
import { parseLsn } from '../replication/index.js';

/** The standby as its source sees it: where the WAL it was sent stands, written, flushed and replayed. */
export interface StandbyLag {
  readonly state: string;
  readonly currentLsn: bigint;
  readonly sentLsn: bigint | null;
  readonly writeLsn: bigint | null;
  readonly flushLsn: bigint | null;
  readonly replayLsn: bigint | null;
  /** The server's own measures of how long recent WAL took to be written, flushed and replayed there. */
  readonly writeLagSeconds: number | null;
  readonly flushLagSeconds: number | null;
  readonly replayLagSeconds: number | null;
}

/** Undefined when no standby of this slot is connected. */
export async function readStandbyLag(source: pg.Client, slot: string): Promise<StandbyLag | undefined> {
  const { rows } = await source.query<{
    state: string;
    current: string;
    sent: string | null;
    write: string | null;
    flush: string | null;
    replay: string | null;
    write_lag: number | null;
    flush_lag: number | null;
    replay_lag: number | null;
  }>(
    `SELECT r.state, pg_current_wal_lsn()::text AS current, r.sent_lsn::text AS sent, r.write_lsn::text AS write,
            r.flush_lsn::text AS flush, r.replay_lsn::text AS replay,
            extract(epoch FROM r.write_lag)::float8 AS write_lag, extract(epoch FROM r.flush_lag)::float8 AS flush_lag,
            extract(epoch FROM r.replay_lag)::float8 AS replay_lag
       FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid
      WHERE s.slot_name = $1`,
    [slot],
  );
  const row = rows[0];
  if (!row) return undefined;
  const lsn = (text: string | null) => (text === null ? null : parseLsn(text));
  return {
    state: row.state,
    currentLsn: parseLsn(row.current),
    sentLsn: lsn(row.sent),
    writeLsn: lsn(row.write),
    flushLsn: lsn(row.flush),
    replayLsn: lsn(row.replay),
    writeLagSeconds: row.write_lag,
    flushLagSeconds: row.flush_lag,
    replayLagSeconds: row.replay_lag,
  };
}

/** Bytes of WAL between the source's position and each of the standby's, for people and metrics. */
export function lagBytes(lag: StandbyLag): Record<'sent' | 'written' | 'flushed' | 'replayed', string | null> {
  const behind = (at: bigint | null) => (at === null ? null : String(lag.currentLsn > at ? lag.currentLsn - at : 0n));
  return { sent: behind(lag.sentLsn), written: behind(lag.writeLsn), flushed: behind(lag.flushLsn), replayed: behind(lag.replayLsn) };
}
