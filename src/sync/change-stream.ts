import type pg from 'pg';
import { BatchApplier, TargetTables, type ChangeRecording, type CopyPositions, type SchemaChangeSink } from '../apply/index.js';
import { asError, PgferryError } from '../errors.js';
import type { Logger } from '../log/index.js';
import {
  parseLsn,
  TransactionAssembler,
  type InboundTimings,
  type Lsn,
  type ReplicationSession,
  type SourceTransaction,
} from '../replication/index.js';
import { recordIdlePosition } from '../state/index.js';
import { AckQueue } from './ack-queue.js';
import { Queue } from './queue.js';
import type { StreamProtocol } from './source-setup.js';
import { postgresTimeToMs, SourceClock, streamLagMs } from './stream-lag.js';

export interface ChangeStreamOptions {
  readonly session: ReplicationSession;
  /** The apply session on the target (session_replication_role = replica). */
  readonly target: pg.Client;
  readonly slot: string;
  readonly protocol: StreamProtocol;
  /** Where the target stands: the stream starts here. */
  readonly appliedLsn: Lsn;
  readonly memoryLimit: number;
  readonly maxBatchChanges: number;
  readonly fencePrefix: string;
  /** Where the schema changes captured on the source are replayed. */
  readonly schemaChanges: SchemaChangeSink;
  /** No capture on the source: columns added at the end of a table are added on the target from the stream. */
  readonly addColumnsFromStream: boolean;
  /** When the walsender's silence means it is gone (sync/liveness.ts). */
  readonly inbound: InboundTimings;
  /** From where each table copied at its own snapshot takes changes. */
  readonly copyPositions: CopyPositions;
  /** Switched by sync's poll while a cut-over has the rows applied recorded. */
  readonly recording?: ChangeRecording;
  readonly logger: Logger;
}

/** Counters the monitor reads. */
export interface StreamProgress {
  appliedLsn: Lsn;
  /** Highest position the server said it has sent everything before. */
  serverLsn: Lsn;
  transactions: number;
  rows: number;
  batches: number;
  replayedBatches: number;
}

const STATUS_INTERVAL_MS = 1000;
const IDLE_RECORD_INTERVAL_MS = 1000;
/**
 * Once a batch was applied, the next idle moment may move the position sooner: a backlog
 * just applied is then caught up at once (--until-caught-up waited up to a second for it),
 * while a steady trickle of small batches still moves it at most ten times a second.
 */
const IDLE_AFTER_BATCH_MS = 100;
/**
 * When the stream stops reading (backpressure on the walsender, which keeps the WAL): the
 * committed transactions waiting in memory reach half the memory limit (the other half is for
 * the batch being applied and the transactions still arriving), or the queue reaches these
 * sizes whatever it holds in memory: read-ahead into the spool beyond them only costs disk.
 * Reading resumes below half of each.
 */
const QUEUE_HIGH_BYTES = 256 * 1024 * 1024;
const QUEUE_HIGH_TRANSACTIONS = 200_000;
/**
 * A batch is written in parts of this many coalesced changes, each sent while the next is
 * decoded: small enough that the target starts early, large enough that statements stay few.
 */
const FLUSH_EVERY_CHANGES = 10_000;

/**
 * The apply loop: transactions arrive from the session into a queue while the previous batch
 * is written; each batch takes whatever is queued (up to a limit), so a backlog is applied in
 * big coalesced batches and a trickle with the latency of one round of statements.
 * The slot is acknowledged by the caller (`flushedUpTo`) only once the target flushed a batch.
 */
export class ChangeStream {
  private readonly queue = new Queue<SourceTransaction>();
  private queuedBytes = 0;
  private queuedInMemory = 0;
  private readonly assembler: TransactionAssembler;
  private readonly applier: BatchApplier;
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  private ended = false;
  private stopping = false;
  private paused = false;
  private lastIdleRecord = 0;
  private busySince: number | undefined;
  private appliedSinceIdleRecord = false;
  /** Batches committed on the target, waiting for the target to flush them. */
  private readonly acks = new AckQueue();
  /** The source's clock against this machine's, from the walsender's keepalives (stream-lag.ts). */
  private readonly sourceClock = new SourceClock();
  /** The commit time of the oldest transaction of the batch being applied. */
  private inFlightOldest: bigint | undefined;
  /** A cut-over waits on the progress: each batch's commit notifies it (state/notify.ts). */
  private progressWanted = false;
  readonly progress: StreamProgress;

  constructor(private readonly options: ChangeStreamOptions) {
    this.progress = {
      appliedLsn: options.appliedLsn,
      serverLsn: options.appliedLsn,
      transactions: 0,
      rows: 0,
      batches: 0,
      replayedBatches: 0,
    };
    this.assembler = new TransactionAssembler({
      abortInfo: options.protocol.abortInfo,
      memoryLimit: options.memoryLimit,
      onTransaction: (transaction) => this.enqueue(transaction),
    });
    this.applier = new BatchApplier(options.target, new TargetTables(options.target, options.addColumnsFromStream), {
      flushEvery: Math.min(FLUSH_EVERY_CHANGES, options.maxBatchChanges),
      abortInfo: options.protocol.abortInfo,
      fencePrefix: options.fencePrefix,
      schemaChanges: options.schemaChanges,
      copyPositions: options.copyPositions,
      recording: options.recording,
      // As the batch records its position, nothing of it is pending any more.
      progress: () => ({ lagMs: this.lagOf(this.oldestWaiting()), notify: this.progressWanted }),
    });
  }

  /** Whether a cut-over waits on the progress (sync/requests.ts reads it from the target). */
  wantProgress(wanted: boolean): void {
    this.progressWanted = wanted;
  }

  /**
   * The stream's lag now, in milliseconds (stream-lag.ts), with the applied position it was
   * measured at and the source's WAL end as the walsender last reported it.
   */
  get lag(): { readonly lagMs: number | undefined; readonly appliedLsn: Lsn; readonly walsenderLsn: Lsn } {
    return {
      lagMs: this.lagOf(this.inFlightOldest ?? this.oldestWaiting()),
      appliedLsn: this.progress.appliedLsn,
      walsenderLsn: this.progress.serverLsn,
    };
  }

  /** The oldest committed transaction not in the batch in flight: queued, or still arriving. */
  private oldestWaiting(): bigint | undefined {
    return this.queue.first?.commitTime ?? this.assembler.receivingCommitTime;
  }

  private lagOf(oldestPending: bigint | undefined): number | undefined {
    return streamLagMs(oldestPending, Date.now(), this.sourceClock.offsetMs);
  }

  /** Starts START_REPLICATION; call `run` next. */
  start(): void {
    const { session } = this.options;
    session.on('error', (error) => this.abort(error));
    session.on('end', () => this.abort(new PgferryError('connection-lost', 'the source ended the replication stream', { side: 'source' })));
    session.start(
      this.options.slot,
      this.options.appliedLsn,
      this.options.protocol.options,
      { statusIntervalMs: STATUS_INTERVAL_MS, inbound: this.options.inbound },
      {
        xlogData: (payload) => this.receive(payload),
        keepalive: (walEnd, sentAt) => {
          this.sourceClock.observe(postgresTimeToMs(sentAt), Date.now());
          if (walEnd > this.progress.serverLsn) this.progress.serverLsn = walEnd;
          this.signal();
        },
      },
    );
  }

  private receive(payload: Buffer): void {
    try {
      this.assembler.push(payload);
    } catch (error) {
      this.abort(asError(error));
    }
  }

  private enqueue(transaction: SourceTransaction): void {
    this.queue.push(transaction);
    this.queuedBytes += transaction.bytes;
    this.queuedInMemory += transaction.inMemory;
    if (!this.paused && this.queueAbove(1)) {
      this.paused = true;
      this.options.session.pause();
    }
    this.signal();
  }

  /** Ends `run` with this error (a failed monitor check, a broken session). */
  abort(error: Error): void {
    if (this.ended) return;
    this.failure ??= error;
    this.signal();
  }

  private signal(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async nextEvent(timeoutMs: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Ends `run` after the batch in flight commits. */
  stop(): void {
    this.stopping = true;
    this.signal();
  }

  /**
   * Applies until `stop`, until `until` says so, or until the stream fails (the error is
   * thrown: the caller decides whether to reconnect). `until` is also asked about the position
   * an idle moment would move to, before it is recorded: the goal is then recorded at once.
   */
  async run(until: (progress: StreamProgress) => boolean = () => false): Promise<void> {
    try {
      while (!this.stopping) {
        if (this.failure) throw this.failure;
        if (until(this.progress)) return;
        if (this.queue.length === 0) {
          await this.advanceWhileIdle(until);
          if (until(this.progress)) return;
          await this.nextEvent(200);
          continue;
        }
        await this.applyBatch();
      }
    } catch (error) {
      // A failure reported from outside (a lost peer, a monitor check) may have been cured by
      // closing the apply session, which fails the batch in flight: the first cause is the one.
      throw this.failure ?? error;
    }
  }

  /** Since when the apply has awaited the target (a batch, or an idle position, in flight); undefined otherwise. */
  get targetBusySince(): number | undefined {
    return this.busySince;
  }

  /** Work on the apply session, timed for the liveness check (sync/liveness.ts). */
  private async onTarget<T>(work: () => Promise<T>): Promise<T> {
    this.busySince = Date.now();
    try {
      return await work();
    } finally {
      this.busySince = undefined;
    }
  }

  /** Whether the queue is past `share` of any of its high marks. */
  private queueAbove(share: number): boolean {
    return (
      this.queuedInMemory > (this.options.memoryLimit / 2) * share ||
      this.queuedBytes > QUEUE_HIGH_BYTES * share ||
      this.queue.length > QUEUE_HIGH_TRANSACTIONS * share
    );
  }

  private takeBatch(): SourceTransaction[] {
    const batch: SourceTransaction[] = [];
    let changes = 0;
    while (this.queue.length > 0 && (batch.length === 0 || changes + this.queue.first!.messageCount <= this.options.maxBatchChanges)) {
      if (batch.length > 0 && this.queue.first!.carriesSchemaChange) break;
      const transaction = this.queue.shift()!;
      this.queuedBytes -= transaction.bytes;
      this.queuedInMemory -= transaction.inMemory;
      changes += transaction.messageCount;
      batch.push(transaction);
      // A transaction with a schema change is a batch of its own: what it made is committed before
      // later transactions use it (an enum value added is unusable until then), and one that
      // fails, or that --ddl stop refuses, stops with everything before it applied.
      if (transaction.carriesSchemaChange) break;
    }
    if (this.paused && !this.queueAbove(0.5)) {
      this.paused = false;
      this.options.session.resume();
    }
    return batch;
  }

  private async applyBatch(): Promise<void> {
    const batch = this.takeBatch();
    const started = performance.now();
    this.inFlightOldest = batch[0]!.commitTime;
    const result = await this.onTarget(() => this.applier.apply(batch, this.progress.appliedLsn)).finally(
      () => (this.inFlightOldest = undefined),
    );
    this.options.logger.debug(
      { transactions: result.transactions, rows: result.rows, ms: Math.round(performance.now() - started), queued: this.queue.length },
      'batch applied',
    );
    for (const transaction of batch) transaction.release();
    this.progress.appliedLsn = result.endLsn;
    if (result.endLsn > this.progress.serverLsn) this.progress.serverLsn = result.endLsn;
    this.progress.transactions += result.transactions;
    this.progress.rows += result.rows;
    this.progress.batches++;
    if (result.replayed) {
      this.progress.replayedBatches++;
      this.options.logger.info({ transactions: batch.length }, 'batch hit a constraint error when coalesced; replayed in source order');
    }
    this.acks.committed(result.endLsn, result.targetLsn);
    this.appliedSinceIdleRecord = true;
  }

  /**
   * With nothing queued and no transaction half received, everything the server has sent
   * is applied: the position moves to the server's, so an idle source's slot advances too.
   */
  private async advanceWhileIdle(until: (progress: StreamProgress) => boolean): Promise<void> {
    const server = this.progress.serverLsn;
    if (this.assembler.insideTransaction || server <= this.progress.appliedLsn) {
      this.options.session.sendStatus(true);
      return;
    }
    const now = Date.now();
    // The rate limit keeps an idle stream's keepalives from writing to the target each time; a
    // position that reaches the caller's goal is worth its write at once (--until-caught-up sat
    // out the rest of the second when an earlier idle move had fallen short of its goal).
    const throttled = now - this.lastIdleRecord < (this.appliedSinceIdleRecord ? IDLE_AFTER_BATCH_MS : IDLE_RECORD_INTERVAL_MS);
    if (throttled && !until({ ...this.progress, appliedLsn: server })) return;
    this.lastIdleRecord = now;
    this.appliedSinceIdleRecord = false;
    const { rows } = await this.onTarget(async () => {
      await recordIdlePosition(this.options.target, server, this.progressWanted);
      return this.options.target.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    });
    this.progress.appliedLsn = server;
    this.acks.committed(server, parseLsn(rows[0]!.lsn));
    this.options.session.sendStatus(true);
  }

  /** The target flushed its WAL up to `targetFlushed`: the source may forget what that covers. */
  flushedUpTo(targetFlushed: Lsn): Lsn | undefined {
    const acknowledged = this.acks.flushed(targetFlushed);
    if (acknowledged !== undefined) this.options.session.acknowledge({ flushed: acknowledged, applied: acknowledged });
    return acknowledged;
  }

  /** Last batch's target position, for a clean stop that waits for the flush. */
  get lastTargetLsn(): Lsn | undefined {
    return this.acks.lastTarget;
  }

  /** What the assembler holds of transactions still arriving (queued ones are counted by the apply's own limits). */
  get held(): { readonly memoryBytes: number; readonly diskBytes: number } {
    return this.assembler.held;
  }

  /** Frees buffers and spool files; the session is closed by its owner. */
  close(): void {
    this.ended = true;
    for (let transaction = this.queue.shift(); transaction; transaction = this.queue.shift()) transaction.release();
    this.assembler.close();
  }
}
