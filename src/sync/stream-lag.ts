/**
 * The stream's lag, to the millisecond, from what the stream itself carries: each transaction's
 * commit time (in its BEGIN and COMMIT) against the moment it is applied, read on this
 * machine's clock. The monitor's once-a-second reading of the source's WAL position
 * (monitor.ts, SourcePositions) stays beside it: it also sees WAL the walsender has not decoded
 * yet, which the stream cannot show.
 */

/** PostgreSQL's wire timestamps count microseconds from 2000-01-01 UTC. */
const POSTGRES_EPOCH_MS = Date.UTC(2000, 0, 1);

/** A wire timestamp as milliseconds of the Unix epoch, to the microsecond. */
export function postgresTimeToMs(microseconds: bigint): number {
  return POSTGRES_EPOCH_MS + Number(microseconds) / 1000;
}

/** How long each minimum of the clock offset stands for; six of them (a minute) are kept. */
const OFFSET_BUCKET_MS = 10_000;
const OFFSET_BUCKETS = 6;

/**
 * This machine's clock against the source's, from the walsender's keepalives: each carries the
 * source's time when it was sent, and received here the difference is the clocks' offset plus
 * the time the message travelled. Travel only adds, so the smallest difference of the last
 * minute is the closest to the offset alone (a minute, so a clock that is stepped or drifts is
 * followed). A source commit time plus this offset is when the commit happened by this
 * machine's clock, late by the shortest travel seen (a network's one-way delay): a lag computed
 * with it is short by that much at most, never longer than the real one, and no clock skew
 * between the machines enters it.
 */
export class SourceClock {
  /** Per bucket of time, oldest first: the smallest offset seen in it. */
  private readonly minima: Array<{ readonly bucket: number; offset: number }> = [];

  /** A keepalive sent at `sentMs` by the source's clock arrived at `receivedMs` by this one's. */
  observe(sentMs: number, receivedMs: number): void {
    const offset = receivedMs - sentMs;
    const bucket = Math.floor(receivedMs / OFFSET_BUCKET_MS);
    const last = this.minima.at(-1);
    if (last?.bucket === bucket) last.offset = Math.min(last.offset, offset);
    else this.minima.push({ bucket, offset });
    while (this.minima.length > OFFSET_BUCKETS) this.minima.shift();
  }

  /** What to add to a source time to read it on this machine's clock; undefined before the first keepalive. */
  get offsetMs(): number | undefined {
    if (this.minima.length === 0) return undefined;
    return Math.min(...this.minima.map((m) => m.offset));
  }
}

/**
 * How long ago the oldest transaction the source committed and the target has not applied yet
 * was committed, in milliseconds by this machine's clock (`offsetMs` from SourceClock). Nothing
 * pending (everything the walsender sent is applied) is a lag of 0, however old the last commit:
 * an idle source is not behind. Undefined while something is pending and the clocks' offset is
 * not known yet. Pure.
 */
export function streamLagMs(oldestPendingCommit: bigint | undefined, nowMs: number, offsetMs: number | undefined): number | undefined {
  if (oldestPendingCommit === undefined) return 0;
  if (offsetMs === undefined) return undefined;
  const lag = nowMs - (postgresTimeToMs(oldestPendingCommit) + offsetMs);
  // To the microsecond, never below 0 (an offset taken from a faster message than this one's).
  return Math.max(0, Math.round(lag * 1000) / 1000);
}
