import type { Lsn } from '../replication/index.js';

/*
 * Per-table snapshots for a copy that a change stream completes (sync). Each table is copied
 * at a snapshot whose position in the source's WAL is known exactly; the stream applies a
 * table's changes only from its own position on. A snapshot is held only while a table's copy
 * needs it, so the source's vacuum horizon moves during a long copy, and a copy interrupted in
 * hour five keeps every table finished before it.
 *
 * Snapshots cost a replication slot's creation each (it waits for the transactions running on
 * the source), so one is shared: by the ranges of one split table (they must be: ranges copied
 * at two snapshots don't add up), and by the next tables copied within `reuseMs` of its making.
 */

/** A snapshot whose position is known exactly: transactions committed before `position` are in it, none after. */
export interface PositionedSnapshot {
  /** What holds it on the source (a temporary slot's name): for the log and status. */
  readonly name: string;
  /** For SET TRANSACTION SNAPSHOT. */
  readonly snapshot: string;
  readonly position: Lsn;
  /** Ends the snapshot (and the session holding it). */
  release(): Promise<void>;
}

/** Where positioned snapshots come from (sync makes them with temporary slots). */
export interface SnapshotSource {
  take(): Promise<PositionedSnapshot>;
}

/** A snapshot in use by the copy. */
export interface Lease {
  readonly held: PositionedSnapshot;
  readonly takenAt: number;
  /** Units copying at it now. */
  users: number;
  /** Tables with units still to copy at it: it stays until their last unit is done. */
  readonly tables: Set<string>;
}

/** The lease a table's next unit copies at: the table's own, a young one shared, or a new one. */
export type LeaseChoice = { readonly kind: 'table' | 'share'; readonly lease: Lease } | { readonly kind: 'new' };

/**
 * Pure: a table that already has a lease keeps it (its ranges must share one snapshot);
 * otherwise the youngest open lease made less than `reuseMs` ago serves it too; otherwise a
 * new one is taken.
 */
export function chooseLease(
  table: string,
  byTable: ReadonlyMap<string, Lease>,
  open: Iterable<Lease>,
  now: number,
  reuseMs: number,
): LeaseChoice {
  const own = byTable.get(table);
  if (own) return { kind: 'table', lease: own };
  let youngest: Lease | undefined;
  for (const lease of open) if (now - lease.takenAt < reuseMs && (!youngest || lease.takenAt > youngest.takenAt)) youngest = lease;
  return youngest ? { kind: 'share', lease: youngest } : { kind: 'new' };
}

/** Pure: a lease nobody copies at and no table waits for is released once it is too old to share. */
export function releasableAfterMs(lease: Lease, now: number, reuseMs: number): number | undefined {
  if (lease.users > 0 || lease.tables.size > 0) return undefined;
  return Math.max(0, lease.takenAt + reuseMs - now);
}

/** How long a snapshot may serve further tables after it was taken, by default. */
export const DEFAULT_SNAPSHOT_REUSE_MS = 5_000;

/**
 * The copy's snapshots: `acquire` before a unit's copy, `unitDone` after it (with whether it
 * was the table's last unit). Every lease is released as soon as nothing needs it; `close`
 * releases the rest whatever happened.
 */
export class SnapshotLeases {
  private readonly byTable = new Map<string, Lease>();
  private readonly open = new Set<Lease>();
  /** A lease being taken, so two units of one table arriving together share it. */
  private readonly taking = new Map<string, Promise<Lease>>();
  private readonly timers = new Map<Lease, NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly source: SnapshotSource,
    private readonly reuseMs = DEFAULT_SNAPSHOT_REUSE_MS,
    private readonly onRelease: (lease: Lease) => void = () => undefined,
  ) {}

  /** The lease `table`'s next unit copies at; counted as in use until `unitDone`. */
  async acquire(table: string): Promise<Lease> {
    const pending = this.taking.get(table);
    if (pending) return this.use(await pending, table);
    const choice = chooseLease(table, this.byTable, this.open, Date.now(), this.reuseMs);
    if (choice.kind !== 'new') return this.use(choice.lease, table);
    const taking = this.take();
    this.taking.set(table, taking);
    try {
      return this.use(await taking, table);
    } finally {
      this.taking.delete(table);
    }
  }

  /** A unit copied at `lease` ended (done or failed); `tableDone` when it was its table's last. */
  unitDone(lease: Lease, table: string, tableDone: boolean): void {
    lease.users--;
    if (tableDone) {
      lease.tables.delete(table);
      this.byTable.delete(table);
    }
    this.releaseWhenIdle(lease);
  }

  /** The open leases, oldest first (for status). */
  held(): readonly Lease[] {
    return [...this.open].sort((a, b) => a.takenAt - b.takenAt);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await Promise.allSettled([...this.taking.values()]);
    const all = [...this.open];
    this.open.clear();
    this.byTable.clear();
    await Promise.allSettled(all.map((lease) => this.release(lease)));
  }

  private async take(): Promise<Lease> {
    // Idle leases too old to share are let go first: they hold a slot and a snapshot for nothing.
    for (const lease of [...this.open]) if (releasableAfterMs(lease, Date.now(), this.reuseMs) === 0) await this.forget(lease);
    const held = await this.source.take();
    const lease: Lease = { held, takenAt: Date.now(), users: 0, tables: new Set() };
    if (this.closed) {
      await held.release();
      throw new Error('the copy ended while a snapshot was being taken');
    }
    this.open.add(lease);
    return lease;
  }

  private use(lease: Lease, table: string): Lease {
    const timer = this.timers.get(lease);
    if (timer) clearTimeout(timer);
    this.timers.delete(lease);
    lease.users++;
    lease.tables.add(table);
    this.byTable.set(table, lease);
    return lease;
  }

  private releaseWhenIdle(lease: Lease): void {
    const after = releasableAfterMs(lease, Date.now(), this.reuseMs);
    if (after === undefined || this.closed) return;
    if (after === 0) {
      void this.forget(lease);
      return;
    }
    clearTimeout(this.timers.get(lease));
    const timer = setTimeout(() => {
      this.timers.delete(lease);
      if (releasableAfterMs(lease, Date.now(), this.reuseMs) !== undefined) void this.forget(lease);
    }, after);
    timer.unref();
    this.timers.set(lease, timer);
  }

  private async forget(lease: Lease): Promise<void> {
    if (!this.open.delete(lease)) return;
    clearTimeout(this.timers.get(lease));
    this.timers.delete(lease);
    await this.release(lease);
  }

  private async release(lease: Lease): Promise<void> {
    this.onRelease(lease);
    await lease.held.release().catch(() => undefined);
  }
}
