import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import {
  decodePgoutput,
  parseLsn,
  postgresTimeToDate,
  type DecodeOptions,
  type Lsn,
  type SourceTransaction,
  type Tuple,
  UNCHANGED,
} from '../replication/index.js';
import { recordAppliedBatch, recordChangedRows, type TableCounts } from '../state/index.js';
import { displayName } from '../catalog/index.js';
import { ChangedRows, type ChangeRecording } from './recording.js';
import { OrderedApplySignal, type ChangeOrigin, type RowChange } from './changes.js';
import { Coalescer, type TableWork } from './coalesce.js';
import { rejected } from './errors.js';
import { StagingTables } from './staging.js';
import {
  copyRows,
  deleteByKeys,
  deleteKeyRanges,
  deleteStaged,
  insertRows,
  moveIdentityRows,
  singleChange,
  stageRows,
  truncate,
  updateByKeys,
  updateStaged,
  type CopyIn,
  type Statement,
} from './statements.js';
import type { SchemaChangeReader, SchemaChangeSink } from './schema-changes.js';
import { CopyPositions, type TruncateVerdict } from './copy-positions.js';
import type { TargetTable, TargetTables } from './target-tables.js';
import { isIntegrityViolation, sqlState } from '../plumbing/index.js';

export interface BatchOptions {
  /** Row changes coalesced before their statements are written (memory bound for big transactions). */
  readonly flushEvery: number;
  /** Protocol 4 stream aborts carry more fields. */
  readonly abortInfo: boolean;
  /** Prefix of the logical messages that mark a fence (cut-over). */
  readonly fencePrefix: string;
  /** Where captured schema changes go; without it, none is expected in the stream. */
  readonly schemaChanges?: SchemaChangeSink;
  /** From where each table copied at its own snapshot takes changes (none: every change counts). */
  readonly copyPositions?: CopyPositions;
  /** Whether the rows written are recorded for a cut-over (apply/recording.ts). */
  readonly recording?: ChangeRecording;
  /**
   * Asked as the batch records its position: the stream's lag once the batch is committed, and
   * whether a cut-over waits to be notified of it (sync/change-stream.ts).
   */
  readonly progress?: () => { readonly lagMs: number | undefined; readonly notify: boolean };
}

export interface BatchResult {
  readonly transactions: number;
  readonly rows: number;
  /** Where the stream restarts once this batch is committed. */
  readonly endLsn: Lsn;
  /** The target's WAL position after the commit: the batch is durable once the target flushed past it. */
  readonly targetLsn: Lsn;
  /** True when a constraint error sent the batch through the exact-order replay. */
  readonly replayed: boolean;
}

/**
 * From this many rows a table's inserts go by COPY and its updates and deletes through its
 * staging table; fewer take the unnest statements, one round trip each (a COPY takes two, and
 * staging adds one): a trickle of small batches keeps its latency.
 */
const BULK_FROM_ROWS = 64;

/**
 * Applies a batch of whole source transactions in one target transaction (DESIGN decision 6):
 * changes coalesced per table and key into set-based statements; on a constraint error the
 * batch is rolled back and replayed change by change in source order. The batch's end
 * position is written in the same transaction, so the target always knows exactly what it holds.
 */
export class BatchApplier {
  private readonly prepared = new Map<string, string>();
  private readonly staging: StagingTables;
  /** The part of the batch being written while the next one is decoded (see flushBehind). */
  private writing: Promise<void> | undefined;
  /** Decoding options for plain and for streamed transactions: made once, not per message. */
  private readonly decodeOptions: readonly [DecodeOptions, DecodeOptions];
  private readonly positions: CopyPositions;
  /** The relation of the schema-change queue table, once its definition arrived (sources before 14). */
  private queueRelation: { readonly id: number; readonly payloadColumn: number } | undefined;

  constructor(
    private readonly client: pg.Client,
    private readonly tables: TargetTables,
    private readonly options: BatchOptions,
  ) {
    this.staging = new StagingTables(client);
    this.positions = options.copyPositions ?? CopyPositions.none;
    this.decodeOptions = [
      { inStream: false, abortInfo: options.abortInfo },
      { inStream: true, abortInfo: options.abortInfo },
    ];
  }

  /** Applies `batch`; transactions ending at or before `appliedLsn` are already on the target and only read. */
  async apply(batch: readonly SourceTransaction[], appliedLsn: Lsn): Promise<BatchResult> {
    const last = batch[batch.length - 1]!;
    const definitions = this.tables.snapshot();
    // Read once: the batch records all of its rows or none.
    const recording = this.options.recording?.current;
    await this.client.query('BEGIN');
    let replayed = false;
    let counts: Counts;
    try {
      try {
        counts = await this.run(batch, appliedLsn, 'coalesced', recording !== undefined);
      } catch (error) {
        if (!(error instanceof OrderedApplySignal) && !isIntegrityViolation(sqlState(error))) throw error;
        await this.client.query('ROLLBACK');
        this.staging.afterRollback();
        await this.client.query('BEGIN');
        replayed = true;
        this.tables.restore(definitions);
        counts = await this.run(batch, appliedLsn, 'ordered', recording !== undefined);
      }
      // The first batch that records says from where: everything past its start is recorded.
      if (recording && (!recording.acknowledged || counts.recorded!.size > 0))
        await recordChangedRows(this.client, recording.id, {
          lsn: last.endLsn,
          startsAt: recording.acknowledged ? undefined : appliedLsn,
          rows: counts.recorded!.list(),
        });
      const progress = this.options.progress?.();
      await recordAppliedBatch(this.client, {
        lagMs: progress?.lagMs,
        notify: progress?.notify ?? false,
        lsn: last.endLsn,
        lastCommitTime: counts.lastCommitTime === undefined ? undefined : postgresTimeToDate(counts.lastCommitTime),
        transactions: counts.transactions,
        rows: counts.rows,
        tables: counts.tables,
        fenceLsn: counts.fence,
      });
      await this.client.query('COMMIT');
      this.staging.afterCommit();
      if (recording && !recording.acknowledged) this.options.recording!.acknowledged(recording.id);
    } catch (error) {
      await this.client.query('ROLLBACK').catch(() => undefined);
      this.staging.afterRollback();
      throw error;
    }
    const { rows } = await this.client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    return { transactions: counts.transactions, rows: counts.rows, endLsn: last.endLsn, targetLsn: parseLsn(rows[0]!.lsn), replayed };
  }

  private async run(batch: readonly SourceTransaction[], appliedLsn: Lsn, mode: 'coalesced' | 'ordered', record: boolean): Promise<Counts> {
    try {
      return await this.runParts(batch, appliedLsn, mode, record);
    } catch (error) {
      // Statements still being sent would land after the ROLLBACK, outside any transaction.
      await this.writing?.catch(() => undefined);
      throw error;
    } finally {
      this.writing = undefined;
    }
  }

  private async runParts(
    batch: readonly SourceTransaction[],
    appliedLsn: Lsn,
    mode: 'coalesced' | 'ordered',
    record: boolean,
  ): Promise<Counts> {
    const counts: Counts = {
      transactions: 0,
      rows: 0,
      tables: new Map(),
      lastCommitTime: undefined,
      fence: undefined,
      recorded: record ? new ChangedRows((table) => this.tables.relation(table.relationId).columns.map((c) => c.name)) : undefined,
    };
    const coalescer = new Coalescer();
    for (const transaction of batch) {
      const skip = transaction.endLsn <= appliedLsn;
      if (!skip) {
        counts.transactions++;
        counts.lastCommitTime = transaction.commitTime;
      }
      const reading: Reading = {
        decode: this.decodeOptions[transaction.streamed ? 1 : 0],
        skip,
        origin: { xid: transaction.xid, commitLsn: transaction.commitLsn },
        counts,
        coalescer,
        mode,
        schemaChanges: undefined,
      };
      const inMemory = transaction.messagesInMemory();
      if (inMemory) {
        const pending = this.takeAll(inMemory, 0, reading);
        if (pending) await pending;
      } else {
        for await (const block of transaction.messageBlocks()) await this.takeAll(block, 0, reading);
      }
    }
    await this.flush(coalescer);
    return counts;
  }

  /**
   * The messages of a block from `from` on. Most need no I/O: the loop stays synchronous until a
   * message returns a promise, and only then goes on after it, so a backlog of small
   * transactions stays off the microtask queue.
   */
  private takeAll(block: readonly Buffer[], from: number, reading: Reading): Promise<void> | undefined {
    for (let i = from; i < block.length; i++) {
      const pending = this.take(block[i]!, reading);
      if (pending) return pending.then(() => this.takeAll(block, i + 1, reading));
    }
    return undefined;
  }

  /** One message of a transaction: relations are learned, row changes coalesced (or applied, in order). */
  private take(payload: Buffer, reading: Reading): Promise<void> | undefined {
    const { skip, origin, counts, coalescer, mode } = reading;
    const message = decodePgoutput(payload, reading.decode);
    switch (message.tag) {
      case 'relation': {
        const queue = this.options.schemaChanges?.queueTable;
        if (queue && message.schema === queue.schema && message.name === queue.name) {
          this.queueRelation = { id: message.relationId, payloadColumn: message.columns.findIndex((c) => c.name === 'payload') };
          return undefined;
        }
        // Relations are read even from transactions already applied: the server sends each once.
        // Rows decoded under the definition this one replaces are written before it takes effect:
        // a batch never mixes rows of two definitions of one table.
        const pending = coalescer.holds(message.relationId);
        const redefined = this.tables.define(message);
        // A table whose definition changed is compared whole: what the change did to its rows is in no row change.
        if (redefined && !skip)
          counts.recorded?.table(displayName({ schema: message.schema, name: message.name }), 'its definition changed');
        if (redefined && pending) return this.flush(coalescer);
        return undefined;
      }
      case 'insert':
      case 'update':
      case 'delete': {
        if (skip) return undefined;
        const table = this.tables.known(message.relationId);
        if (!table && message.relationId === this.queueRelation?.id && message.tag === 'insert') {
          const payload = message.newTuple[this.queueRelation.payloadColumn];
          return typeof payload === 'string' ? this.applySchemaChange(payload, reading) : undefined;
        }
        if (!table) return this.tables.resolve(message.relationId).then(() => this.take(payload, reading));
        const change = this.notInCopy(
          message.tag === 'insert'
            ? { kind: 'insert', table, newRow: message.newTuple, origin }
            : message.tag === 'update'
              ? { kind: 'update', table, oldRow: message.oldTuple, newRow: message.newTuple, origin }
              : { kind: 'delete', table, oldRow: message.oldTuple, origin },
        );
        if (change === undefined) return undefined;
        countChange(counts, table, change.kind);
        counts.recorded?.change(change);
        if (mode === 'ordered') return this.execute(singleChange(change), change).then(() => undefined);
        coalescer.add(change);
        return coalescer.size >= this.options.flushEvery ? this.flushBehind(coalescer) : undefined;
      }
      case 'truncate': {
        if (skip) return undefined;
        const verdicts = message.relationIds.map((id) => ({ id, verdict: this.positions.truncate(id, origin.commitLsn) }));
        const whole = verdicts.filter((v) => v.verdict.kind === 'all').map((v) => v.id);
        const partly = verdicts.flatMap((v) => (v.verdict.kind === 'ranges' ? [{ id: v.id, verdict: v.verdict }] : []));
        if (whole.length === 0 && partly.length === 0) return undefined;
        // CASCADE would reach the tables left out (their copies hold the rows made since): without it the target says so, loudly.
        const cascade = message.cascade && whole.length === message.relationIds.length;
        return this.applyTruncate(whole, partly, cascade, message.restartIdentity, counts, coalescer);
      }
      case 'message':
        if (skip) return undefined;
        if (message.prefix === this.options.fencePrefix) counts.fence = message.lsn;
        else if (message.prefix === this.options.schemaChanges?.messagePrefix)
          return this.applySchemaChange(message.content.toString('utf8'), reading);
        return undefined;
      default:
        return undefined;
    }
  }

  /**
   * A schema change at its place: the rows before it are written first, the change runs, and the
   * target's tables are read again before the next row (the source sends their new definitions).
   */
  private async applySchemaChange(payload: string, reading: Reading): Promise<void> {
    const sink = this.options.schemaChanges;
    if (!sink) return;
    await this.flush(reading.coalescer);
    // Which rows a schema change rewrote (a type change, a default) is not told row by row.
    reading.counts.recorded?.everything('a schema change was applied');
    reading.schemaChanges ??= sink.forTransaction();
    await reading.schemaChanges.apply(this.client, payload, reading.origin);
    this.tables.forgetTargets();
  }

  /**
   * A row change as the target needs it, given what the table's copy holds (copy-positions.ts):
   * the change itself, nothing, or the one half of a key move the copy lacks.
   */
  private notInCopy(change: RowChange): RowChange | undefined {
    const verdict = this.positions.decide(change);
    if (verdict === 'apply') return change;
    if (verdict === 'skip' || change.kind !== 'update') return undefined;
    if (verdict === 'delete-old') return { kind: 'delete', table: change.table, oldRow: change.oldRow!, origin: change.origin };
    if (change.newRow.includes(UNCHANGED))
      throw rejected(
        change,
        new Error('the row moved into a key range copied before this change, and the change does not carry every value (unchanged TOAST)'),
      );
    return { kind: 'insert', table: change.table, newRow: change.newRow, origin: change.origin };
  }

  /** TRUNCATE of whole tables, and of the key ranges of split tables whose copies are older than it. */
  private async applyTruncate(
    relationIds: readonly number[],
    partly: ReadonlyArray<{ readonly id: number; readonly verdict: Extract<TruncateVerdict, { kind: 'ranges' }> }>,
    cascade: boolean,
    restartIdentity: boolean,
    counts: Counts,
    coalescer: Coalescer,
  ): Promise<void> {
    await this.flush(coalescer);
    const truncated: TargetTable[] = [];
    for (const id of relationIds) truncated.push(await this.tables.resolve(id));
    for (const table of truncated) tableCounts(counts, table).truncated++;
    for (const table of truncated) counts.recorded?.table(table.display, 'truncated');
    if (truncated.length > 0) await this.execute(truncate(truncated, cascade, restartIdentity));
    for (const { id, verdict } of partly) {
      const table = await this.tables.resolve(id);
      tableCounts(counts, table).truncated++;
      counts.recorded?.table(table.display, 'truncated');
      await this.execute(deleteKeyRanges(table, verdict.column, verdict.ranges));
    }
  }

  /**
   * Starts writing the part the coalescer holds once the part before it is written, and
   * returns when that earlier part is: the target executes one part while the next is decoded,
   * and at most two parts are held in memory.
   */
  private async flushBehind(coalescer: Coalescer): Promise<void> {
    const previous = this.writing;
    const work = coalescer.drain();
    const writing = (async () => {
      await previous;
      for (const part of work) await this.write(part);
    })();
    // Awaited by the next flush or at the end of the batch; until then its failure is held, not unhandled.
    writing.catch(() => undefined);
    this.writing = writing;
    await previous;
  }

  /** Writes everything: the part in flight, then what the coalescer holds. */
  private async flush(coalescer: Coalescer): Promise<void> {
    const previous = this.writing;
    this.writing = undefined;
    await previous;
    if (coalescer.size === 0) return;
    for (const work of coalescer.drain()) await this.write(work);
  }

  /** Deletes first, then updates, then inserts: a key deleted and inserted again within the batch ends as the insert. */
  private async write(work: TableWork): Promise<void> {
    const { table } = work;
    const groups = [...work.updates];
    let changed = work.deletes.length;
    for (const [, rows] of groups) changed += rows.length;
    const staging = changed >= BULK_FROM_ROWS ? await this.staging.for(table, 1 + groups.length) : undefined;
    if (staging !== undefined) {
      const { name, firstGroup } = staging;
      await this.copy(
        stageRows(
          table,
          name,
          firstGroup,
          work.deletes,
          groups.map(([, rows]) => rows),
        ),
      );
      if (work.deletes.length > 0) await this.execute(deleteStaged(table, name, firstGroup));
      for (const [index, [mask]] of groups.entries()) {
        const statement = updateStaged(table, name, mask, firstGroup + 1 + index);
        if (statement) await this.execute(statement);
      }
    } else {
      if (work.deletes.length > 0) await this.execute(deleteByKeys(table, work.deletes));
      for (const [mask, rows] of groups) {
        const statement = updateByKeys(table, mask, rows);
        if (statement) await this.execute(statement);
      }
    }
    if (groups.length > 0) {
      const moved = moveIdentityRows(
        table,
        groups.flatMap(([, rows]) => rows),
      );
      if (moved) await this.execute(moved);
    }
    if (work.inserts.length > 0) await this.insert(table, work.inserts);
    // Keyless tables: runs of inserts as one statement, every other change on its own, in order.
    let run: Tuple[] = [];
    for (const change of work.ordered) {
      if (change.kind === 'insert') {
        run.push(change.newRow);
        continue;
      }
      if (run.length > 0) await this.insert(table, run);
      run = [];
      await this.execute(singleChange(change));
    }
    if (run.length > 0) await this.insert(table, run);
  }

  private async insert(table: TargetTable, rows: readonly Tuple[]): Promise<void> {
    if (rows.length >= BULK_FROM_ROWS) await this.copy(copyRows(table, rows));
    else await this.execute(insertRows(table, rows));
  }

  /** Streams COPY data to the target; a constraint error rejects like a statement's (then the batch is replayed in order). */
  private async copy(copyIn: CopyIn): Promise<void> {
    const stream = this.client.query(copyFrom(copyIn.text));
    await new Promise<void>((resolve, reject) => {
      stream.on('error', reject);
      stream.on('finish', resolve);
      for (const piece of copyIn.data) stream.write(piece);
      stream.end();
    });
  }

  /** Runs a statement, prepared once per text; a failure in the exact-order replay names the change. */
  private async execute(statement: Statement, change?: RowChange): Promise<pg.QueryResult> {
    let name = this.prepared.get(statement.text);
    if (name === undefined && this.prepared.size < 2000) {
      name = `pgferry_${this.prepared.size}`;
      this.prepared.set(statement.text, name);
    }
    try {
      return await this.client.query({ name, text: statement.text, values: statement.values });
    } catch (error) {
      throw change ? rejected(change, error) : error;
    }
  }
}

/** How the messages of one transaction of a batch are read: made once per transaction. */
interface Reading {
  readonly decode: DecodeOptions;
  /** Already on the target (ends at or before the applied position): relations are learned, nothing applied. */
  readonly skip: boolean;
  readonly origin: ChangeOrigin;
  readonly counts: Counts;
  readonly coalescer: Coalescer;
  readonly mode: 'coalesced' | 'ordered';
  /** Made at the transaction's first schema change. */
  schemaChanges: SchemaChangeReader | undefined;
}

interface Counts {
  transactions: number;
  rows: number;
  tables: Map<string, TableCounts>;
  /** Microseconds since 2000 (converted once per batch, not per transaction). */
  lastCommitTime: bigint | undefined;
  fence: Lsn | undefined;
  /** The rows changed, while a cut-over has sync record them. */
  recorded: ChangedRows | undefined;
}

function tableCounts(counts: Counts, table: TargetTable): TableCounts {
  let entry = counts.tables.get(table.display);
  if (!entry) counts.tables.set(table.display, (entry = { inserted: 0, updated: 0, deleted: 0, truncated: 0 }));
  return entry;
}

function countChange(counts: Counts, table: TargetTable, kind: RowChange['kind']): void {
  counts.rows++;
  const entry = tableCounts(counts, table);
  if (kind === 'insert') entry.inserted++;
  else if (kind === 'update') entry.updated++;
  else entry.deleted++;
}
