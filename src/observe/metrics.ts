import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { LagHistory } from './lag-history.js';

/** The lag as sync's monitor measured it at its last tick (sync/monitor.ts). */
export interface LagSample {
  readonly lagBytes: number;
  readonly lagSeconds: number | undefined;
  /** The stream's own lag, to the millisecond (sync/stream-lag.ts); undefined while unknown. */
  readonly streamLagMs?: number | undefined;
  readonly retainedWalBytes: number | undefined;
  readonly catchUpSeconds?: number | undefined;
}

/** What the target's state says the apply has done, read at scrape time (state/ is its only reader). */
export interface AppliedTotals {
  readonly transactions: number;
  readonly tables: ReadonlyArray<{
    readonly table: string;
    readonly inserted: number;
    readonly updated: number;
    readonly deleted: number;
    readonly truncated: number;
  }>;
}

/**
 * pgferry's Prometheus metrics, in a registry of their own (prom-client), with the process
 * metrics beside them. Two kinds of source: what this process sees as it happens (copy bytes
 * and rows, lag, the spool, the phase), and what the target records (applied transactions and
 * row changes per table and operation since the copy), so a restarted sync reports the same
 * totals the target holds.
 */
export class MigrationMetrics {
  readonly registry = new Registry();
  private readonly lagBytes = this.gauge('pgferry_lag_bytes', "bytes of the source's WAL the target has not applied yet");
  private readonly lagSeconds = this.gauge('pgferry_lag_seconds', 'seconds since the source was where the target is now');
  private readonly streamLagSeconds = this.gauge(
    'pgferry_stream_lag_seconds',
    'seconds (to the millisecond) since the oldest source commit not yet applied on the target was committed; 0 when nothing waits',
  );
  private readonly retainedWal = this.gauge('pgferry_source_retained_wal_bytes', "WAL the migration's slot holds on the source");
  private readonly catchUp = this.gauge(
    'pgferry_catch_up_eta_seconds',
    'while the lag shrinks: the time until it is gone at the rate of the last seconds',
  );
  private readonly walLimit = this.gauge('pgferry_source_wal_limit_bytes', 'max_slot_wal_keep_size on the source (absent when unlimited)');
  private readonly phaseInfo = new Gauge({
    name: 'pgferry_phase',
    help: 'the phase the migration is in: 1 for the current one',
    labelNames: ['phase'],
    registers: [this.registry],
  });
  private readonly copyPhaseInfo = new Gauge({
    name: 'pgferry_copy_phase',
    help: "the initial copy's phase (read schema, pre-data, copy and indexes, …): 1 for the current one",
    labelNames: ['phase'],
    registers: [this.registry],
  });
  private currentCopyPhase: string | undefined;
  private readonly spoolMemory = this.gauge('pgferry_spool_memory_bytes', 'decoded changes held in memory, waiting to be applied');
  private readonly spoolDisk = this.gauge('pgferry_spool_disk_bytes', 'decoded changes spilled to the spool file on disk');
  private readonly copyBytes = new Counter({
    name: 'pgferry_copy_bytes_total',
    help: 'bytes copied into the target by the initial copy, per table',
    labelNames: ['table'],
    registers: [this.registry],
  });
  private readonly copyRows = new Counter({
    name: 'pgferry_copy_rows_total',
    help: 'rows copied into the target by the initial copy, per table',
    labelNames: ['table'],
    registers: [this.registry],
  });
  private readonly appliedTransactions = new Counter({
    name: 'pgferry_applied_transactions_total',
    help: 'source transactions applied on the target since the copy (from the target state)',
    registers: [this.registry],
  });
  private readonly appliedRows = new Counter({
    name: 'pgferry_applied_rows_total',
    help: 'row changes applied on the target since the copy, per table and operation (from the target state)',
    labelNames: ['table', 'operation'],
    registers: [this.registry],
  });
  private currentPhase: string | undefined;
  /** The last hour of lag, for the status page. */
  readonly history = new LagHistory();
  /** The latest figures the status page shows besides the target's state. */
  latest: {
    retainedWalBytes: number | null;
    walLimitBytes: number | null;
    spoolMemoryBytes: number;
    spoolDiskBytes: number;
    phase: string | null;
    catchUpSeconds: number | null;
  } = {
    catchUpSeconds: null,
    retainedWalBytes: null,
    walLimitBytes: null,
    spoolMemoryBytes: 0,
    spoolDiskBytes: 0,
    phase: null,
  };

  /**
   * With `database`, the metrics of one database of an `--all-databases` sync: every series
   * carries a `database` label, and the process metrics are left to the instance's registry
   * (InstanceMetrics), which serves them once.
   */
  constructor(readonly database?: string) {
    if (database === undefined) collectDefaultMetrics({ register: this.registry, prefix: 'pgferry_' });
    else this.registry.setDefaultLabels({ database });
  }

  private gauge(name: string, help: string): Gauge {
    return new Gauge({ name, help, registers: [this.registry] });
  }

  /** The migration's phase as the target records it (cloning, streaming, stopped, …). */
  phase(name: string): void {
    if (this.currentPhase !== undefined) this.phaseInfo.set({ phase: this.currentPhase }, 0);
    this.currentPhase = name;
    this.latest.phase = name;
    this.phaseInfo.set({ phase: name }, 1);
  }

  /** The phase within the initial copy, as this process runs it. */
  copyPhase(name: string): void {
    if (this.currentCopyPhase !== undefined) this.copyPhaseInfo.set({ phase: this.currentCopyPhase }, 0);
    this.currentCopyPhase = name;
    this.copyPhaseInfo.set({ phase: name }, 1);
  }

  copied(table: string, bytes: number): void {
    this.copyBytes.inc({ table }, bytes);
  }

  copiedRows(table: string, rows: number): void {
    this.copyRows.inc({ table }, rows);
  }

  lag(sample: LagSample): void {
    this.lagBytes.set(sample.lagBytes);
    this.catchUp.set(sample.catchUpSeconds ?? 0);
    this.latest.catchUpSeconds = sample.catchUpSeconds ?? null;
    if (sample.lagSeconds !== undefined) this.lagSeconds.set(sample.lagSeconds);
    if (sample.streamLagMs !== undefined) this.streamLagSeconds.set(sample.streamLagMs / 1000);
    if (sample.retainedWalBytes !== undefined) {
      this.retainedWal.set(sample.retainedWalBytes);
      this.latest.retainedWalBytes = sample.retainedWalBytes;
    }
    this.history.add({
      at: Date.now(),
      lagSeconds: sample.lagSeconds ?? null,
      streamLagMs: sample.streamLagMs ?? null,
      lagBytes: sample.lagBytes,
    });
  }

  walLimitBytes(bytes: number | undefined): void {
    if (bytes === undefined) return;
    this.walLimit.set(bytes);
    this.latest.walLimitBytes = bytes;
  }

  spool(memoryBytes: number, diskBytes: number): void {
    this.spoolMemory.set(memoryBytes);
    this.spoolDisk.set(diskBytes);
    this.latest.spoolMemoryBytes = memoryBytes;
    this.latest.spoolDiskBytes = diskBytes;
  }

  /** The target's totals, as of now: counters set to what the target records (they only grow). */
  applied(totals: AppliedTotals): void {
    this.appliedTransactions.reset();
    this.appliedTransactions.inc(totals.transactions);
    this.appliedRows.reset();
    for (const t of totals.tables) {
      for (const operation of ['inserted', 'updated', 'deleted', 'truncated'] as const) {
        if (t[operation] > 0) this.appliedRows.inc({ table: t.table, operation }, t[operation]);
      }
    }
  }

  async text(): Promise<{ readonly contentType: string; readonly body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
