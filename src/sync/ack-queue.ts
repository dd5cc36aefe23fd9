import type { Lsn } from '../replication/index.js';

/**
 * What the slot may be told (invariant 3: the slot's confirmed position never passes what the
 * target has durably committed). Each batch, and each idle advance, commits on the target
 * with synchronous_commit off: it is committed at once but durable only once the target's WAL
 * is flushed past the target position it ended at. The queue holds the pairs in order, and
 * gives back the furthest source position whose target position the flush has passed.
 */
export class AckQueue {
  /** Oldest first: the source position a commit covers, and the target's WAL position after it. */
  private readonly pending: Array<{ readonly source: Lsn; readonly target: Lsn }> = [];

  /** A commit on the target covering the source up to `source`, ending at target position `target`. */
  committed(source: Lsn, target: Lsn): void {
    this.pending.push({ source, target });
  }

  /** The target flushed its WAL up to `targetFlushed`: the furthest source position now durable, if any became so. */
  flushed(targetFlushed: Lsn): Lsn | undefined {
    let durable: Lsn | undefined;
    while (this.pending.length > 0 && this.pending[0]!.target <= targetFlushed) durable = this.pending.shift()!.source;
    return durable;
  }

  /** The target position the last commit ended at: a clean stop waits for the flush to pass it. */
  get lastTarget(): Lsn | undefined {
    return this.pending[this.pending.length - 1]?.target;
  }
}
