import type pg from 'pg';
import { copyUnit, type CopyAt, type UnitCopy } from './pipe.js';
import { POST_DATA_SETTLE_MS, type PostDataScheduler } from './post-data-scheduler.js';
import type { CopyProgress } from './progress.js';
import type { PlannedUnit } from './resume.js';
import type { Lease, SnapshotLeases } from './snapshot-leases.js';
import type { SourceTable } from './source-tables.js';
import type { Permits } from '../plumbing/index.js';

/** What the copy of one table added up to in this run. */
export interface TableCopied {
  readonly rows: number;
  readonly bytes: number;
  readonly seconds: number;
  readonly units: number;
}

export interface CopyUnitsWork {
  /** The units to copy, largest first. */
  readonly pending: readonly PlannedUnit[];
  /** Parallel COPY pipes. */
  readonly jobs: number;
  readonly tables: ReadonlyMap<string, SourceTable>;
  readonly jobsByTable: ReadonlyMap<string, Omit<UnitCopy, 'unit'>>;
  /** The one snapshot of the whole copy, or the per-table snapshots (sync). */
  readonly at: { readonly snapshot: string } | { readonly leases: SnapshotLeases };
  readonly progress: CopyProgress;
  /** Told each table whose last unit landed, so its indexes and keys are built at once. */
  readonly postData: PostDataScheduler;
  /**
   * Jobs shared with other copies running at once (sync --all-databases): a pipe holds one of
   * them from before it opens its sessions until it has no unit left.
   */
  readonly permits?: Permits;
  /** A source and a target session for one pipe. */
  readonly openPair: () => Promise<[pg.Client, pg.Client]>;
  /** Tables not copied because they changed since the plan (table-at-snapshot.ts): filled here, with why. */
  readonly deferred: Map<string, string>;
}

/**
 * The copy phase: `jobs` pipes take units off one queue. A table's indexes are started as soon
 * as its last unit lands; one failed unit (or index) stops the queue, and the error ends the
 * phase once the pipes in flight have ended. A deferred table's other units are taken off the
 * queue; its indexes wait for the copy that copies it.
 */
export async function copyUnits(work: CopyUnitsWork): Promise<Map<string, TableCopied>> {
  const { progress, postData, deferred } = work;
  const copied = new Map<string, TableCopied>();
  const remaining = new Map<string, number>();
  for (const u of work.pending) remaining.set(u.table, (remaining.get(u.table) ?? 0) + 1);
  progress.start(
    work.pending.reduce((sum, u) => sum + u.estimatedBytes, 0),
    work.pending.length,
  );
  const queue = [...work.pending];
  // A failed index or key stops the copy too: there is no point copying for hours first.
  postData.onFailure = () => (queue.length = 0);
  const leases = 'leases' in work.at ? work.at.leases : undefined;
  const oneSnapshot = 'snapshot' in work.at ? work.at.snapshot : undefined;

  const pipe = async () => {
    const release = await work.permits?.acquire();
    try {
      await copyEach();
    } finally {
      release?.();
    }
  };
  const copyEach = async () => {
    if (queue.length === 0) return;
    const [source, target] = await work.openPair();
    for (let unit = queue.shift(); unit; unit = queue.shift()) {
      const { table } = unit;
      progress.unitStarted(table, unit.unit, unit.estimatedBytes);
      const job = { unit, ...work.jobsByTable.get(table)! };
      // Key ranges may each have their own snapshot; other ranges of a table share one.
      const leaseFor = unit.unit.startsWith('key ') ? `${table} ${unit.unit}` : table;
      let lease: Lease | undefined;
      let result;
      try {
        lease = await leases?.acquire(leaseFor);
        const at: CopyAt = lease
          ? { snapshot: lease.held.snapshot, position: lease.held.position, table: work.tables.get(table)! }
          : { snapshot: oneSnapshot! };
        const name = unit.unit;
        result = await copyUnit(source, target, job, at, (n) => progress.bytes(table, name, n));
      } catch (error) {
        // One failed unit stops the others: the run is to be resumed anyway.
        queue.length = 0;
        if (lease) leases!.unitDone(lease, leaseFor, false);
        throw error;
      }
      if (result.deferred !== undefined || deferred.has(table)) {
        if (result.deferred !== undefined) deferred.set(table, result.deferred);
        for (let i = queue.length - 1; i >= 0; i--) if (queue[i]!.table === table) queue.splice(i, 1);
        if (lease) leases!.unitDone(lease, leaseFor, true);
        progress.unitDeferred(table, unit.unit, deferred.get(table)!);
        continue;
      }
      progress.unitDone(table, unit.unit, result.rows);
      const sum = copied.get(table) ?? { rows: 0, bytes: 0, seconds: 0, units: 0 };
      copied.set(table, {
        rows: sum.rows + result.rows,
        bytes: sum.bytes + result.bytes,
        seconds: sum.seconds + result.seconds,
        units: sum.units + 1,
      });
      const left = remaining.get(table)! - 1;
      remaining.set(table, left);
      if (lease) leases!.unitDone(lease, leaseFor, left === 0 || leaseFor !== table);
      if (left === 0) postData.tableLoaded(work.tables.get(table)!);
    }
  };
  const outcome = await Promise.allSettled(Array.from({ length: Math.max(1, work.jobs) }, pipe));
  const failed = outcome.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (failed) {
    await postData.cancel(POST_DATA_SETTLE_MS);
    throw failed.reason;
  }
  return copied;
}
