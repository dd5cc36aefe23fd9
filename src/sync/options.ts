import type { ScopeFilter } from '../catalog/index.js';
import type { ConnectionSpec } from '../config/index.js';
import type { CloneSummary, CopyProgress } from '../copy/index.js';
import type { DdlPolicy } from '../ddl/index.js';
import type { MeasurementSink } from './monitor.js';
import type { Logger } from '../log/index.js';
import type { Lsn } from '../replication/index.js';
import type { Permits } from '../plumbing/index.js';

/** What a caller gives sync and gets back: the types every file of the sync room shares. */
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
  /** `--ddl`: carry the source's schema changes to the target, or stop at the first. */
  readonly ddl: DdlPolicy;
  /** A transaction (its commit position) whose schema changes the user made on the target by hand. */
  readonly skipDdlAt?: Lsn;
  /** How long creating the slot may wait for transactions running on the source (ms). */
  readonly slotTimeoutMs?: number;
  /** How long a table's snapshot may serve further tables after it was taken (copy/snapshot-leases.ts). */
  readonly snapshotReuseMs?: number;
  /** Clone settings, for when the target is not cloned yet. */
  readonly clone: {
    readonly jobs: number;
    readonly indexJobs: number;
    readonly splitThreshold: number;
    readonly noOwner: boolean;
    readonly noAcl: boolean;
    readonly createRoles: boolean;
    readonly targetSetup: { readonly file: string; readonly sql: string } | undefined;
    readonly progress: CopyProgress;
    /** COPY jobs shared with the other databases' copies (sync --all-databases). */
    readonly permits?: Permits;
  };
  readonly logger: Logger;
  /** Where the lag, the spool and the copy are reported for /metrics and the status page (--listen). */
  readonly metrics?: MeasurementSink;
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
