import { PgferryError } from '../errors.js';
import type { Lsn } from './lsn.js';
import { DecodeError, decodePgoutput, PGOUTPUT, PGOUTPUT_OFFSET, streamedXidOf, type LogicalMessage } from './pgoutput.js';
import { SpoolLog, type Extent } from './spool.js';

/**
 * One source transaction as received: its commit position and time, and its pgoutput data
 * messages (relations, types, row changes, truncates, logical messages) in source order, kept
 * raw until the apply decodes them. Large transactions live in a spool file, not in memory.
 */
export interface SourceTransaction {
  readonly xid: number;
  /** Position of the commit record. */
  readonly commitLsn: Lsn;
  /** End of the commit record: the position to restart from once this transaction is applied. */
  readonly endLsn: Lsn;
  /** Microseconds since 2000-01-01, as the server sends it. */
  readonly commitTime: bigint;
  /** Sent in pieces while still running (protocol 2+): data messages carry the xid. */
  readonly streamed: boolean;
  readonly messageCount: number;
  /** Holds a schema change captured on the source (a logical message with SCHEMA_CHANGE_PREFIX). */
  readonly carriesSchemaChange: boolean;
  readonly bytes: number;
  /** Of those bytes, the ones held in memory (the rest is in the spool log). */
  readonly inMemory: number;
  /**
   * The data messages, in source order, as many times as asked (a failed batch is replayed), in
   * blocks: from memory one block, from the spool one per read.
   */
  messageBlocks(): AsyncIterable<readonly Buffer[]>;
  /** The same messages when they are all in memory (no I/O, so no awaiting per message); else undefined. */
  messagesInMemory(): readonly Buffer[] | undefined;
  /** Frees memory and spool space once the transaction is applied. */
  release(): void;
}

export interface AssemblerOptions {
  /** Protocol 4, streaming = parallel: stream aborts carry position and time. */
  readonly abortInfo: boolean;
  /** Bytes of transaction data held in memory, all transactions together, before spilling to disk. */
  readonly memoryLimit: number;
  readonly onTransaction: (transaction: SourceTransaction) => void;
  /** A non-transactional logical message (pg_logical_emit_message(false, …)). */
  readonly onMessage?: (message: LogicalMessage) => void;
}

/**
 * Messages of one transaction: in memory until the shared budget runs out while it is still
 * open, then in the spool log. Once sealed it never moves again: a sealed transaction is read
 * (once, or twice for a replay) from exactly where it was when it was sealed.
 */
class TransactionBuffer implements SourceTransaction {
  private memory: Buffer[] = [];
  private memoryBytes = 0;
  /** Where its messages are in the spool log, once it has spilled: everything from then on goes there. */
  private extents: Extent[] | undefined;
  private sealed = false;
  count = 0;
  bytes = 0;
  carriesSchemaChange = false;
  commitLsn: Lsn = 0n;
  endLsn: Lsn = 0n;
  commitTime = 0n;
  /** Subtransactions rolled back inside a streamed transaction: their changes are dropped on read. */
  abortedSubXids: Set<number> | undefined;

  constructor(
    readonly xid: number,
    readonly streamed: boolean,
    private readonly budget: Budget,
  ) {}

  get inMemory(): number {
    return this.memoryBytes;
  }

  get messageCount(): number {
    return this.count;
  }

  add(payload: Buffer): void {
    this.count++;
    this.bytes += payload.length;
    if (this.extents !== undefined) {
      this.appendToLog(payload);
      return;
    }
    // Kept as a view into the CopyData chunk it arrived in (one chunk per message): no copy.
    this.memory.push(payload);
    this.memoryBytes += payload.length;
    this.budget.inMemory += payload.length;
  }

  /** Moves what is in memory to the spool log; later messages go straight there. Open transactions only. */
  spill(): void {
    if (this.sealed) throw new Error('spool: a sealed transaction is never moved');
    this.extents ??= [];
    for (const payload of this.memory) this.appendToLog(payload);
    this.budget.inMemory -= this.memoryBytes;
    this.memory = [];
    this.memoryBytes = 0;
  }

  private appendToLog(payload: Buffer): void {
    const extents = this.extents!;
    const extent = this.budget.log.append(payload);
    const last = extents[extents.length - 1];
    if (last !== undefined && last.segment === extent.segment && last.offset + last.length === extent.offset) {
      last.length += extent.length;
      return;
    }
    this.budget.log.retain(extent);
    extents.push(extent);
  }

  /** Ends writing: the buffer becomes a transaction to read. */
  seal(commit: { commitLsn: Lsn; endLsn: Lsn; commitTime: bigint }): SourceTransaction {
    this.sealed = true;
    this.commitLsn = commit.commitLsn;
    this.endLsn = commit.endLsn;
    this.commitTime = commit.commitTime;
    return this;
  }

  messageBlocks(): AsyncIterable<readonly Buffer[]> {
    if (this.extents !== undefined) return this.budget.log.read(this.extents, (payload) => this.keep(payload));
    return this.fromMemory();
  }

  private async *fromMemory(): AsyncGenerator<readonly Buffer[]> {
    yield this.messagesInMemory()!;
  }

  messagesInMemory(): readonly Buffer[] | undefined {
    if (this.extents !== undefined) return undefined;
    if (this.abortedSubXids === undefined) return this.memory;
    return this.memory.filter((payload) => this.keep(payload));
  }

  private keep(payload: Buffer): boolean {
    const aborted = this.abortedSubXids;
    if (aborted === undefined) return true;
    const xid = streamedXidOf(payload);
    return xid === undefined || payload[0] === PGOUTPUT.relation || !aborted.has(xid);
  }

  release(): void {
    if (this.extents !== undefined) this.budget.log.release(this.extents);
    this.extents = undefined;
    this.budget.inMemory -= this.memoryBytes;
    this.memory = [];
    this.memoryBytes = 0;
  }
}

/** Every migration's schema-change messages start with it (ddl/capture.ts adds the migration's name). */
export const SCHEMA_CHANGE_PREFIX = 'pgferry.ddl.';
const SCHEMA_CHANGE_PREFIX_BYTES = Buffer.from(SCHEMA_CHANGE_PREFIX);

/** Whether a logical message carries a schema change: its prefix read in place. */
function isSchemaChange(payload: Buffer, streamed: boolean): boolean {
  const at = PGOUTPUT_OFFSET.messagePrefix + (streamed ? PGOUTPUT_OFFSET.streamedShift : 0);
  const end = at + SCHEMA_CHANGE_PREFIX_BYTES.length;
  return payload.length >= end && payload.subarray(at, end).equals(SCHEMA_CHANGE_PREFIX_BYTES);
}

/** The schema that holds the capture's queue tables on the source (ddl/capture.ts). */
const CAPTURE_SCHEMA_BYTES = Buffer.from('pgferry_capture\0');

/** The relation a relation message defines, when it is a schema-change queue table. */
function schemaChangeQueueOf(payload: Buffer, streamed: boolean): number | undefined {
  const relation = PGOUTPUT_OFFSET.changeRelation + (streamed ? PGOUTPUT_OFFSET.streamedShift : 0);
  const namespace = relation + 4;
  const end = namespace + CAPTURE_SCHEMA_BYTES.length;
  if (payload.length < end || !payload.subarray(namespace, end).equals(CAPTURE_SCHEMA_BYTES)) return undefined;
  return payload.readUInt32BE(relation);
}

/** The table of an INSERT, read in place. */
function insertedRelation(payload: Buffer, streamed: boolean): number {
  const at = PGOUTPUT_OFFSET.changeRelation + (streamed ? PGOUTPUT_OFFSET.streamedShift : 0);
  return payload.length >= at + 4 ? payload.readUInt32BE(at) : -1;
}

/** A stream whose messages break the protocol's order: nothing pgferry can apply from it. */
function outOfOrder(message: string): PgferryError {
  return new PgferryError('stream-undecodable', message, { side: 'source' });
}

/** The memory every transaction buffer holds, together, and the log they spill to. */
interface Budget {
  inMemory: number;
  readonly log: SpoolLog;
}

/**
 * Turns the pgoutput stream into whole committed transactions: plain ones between BEGIN and
 * COMMIT, and streamed ones (pieces of several running transactions interleaved, then a
 * stream commit or abort). Transactions are handed over in commit order, as the server sends
 * commits. Relation messages travel with the transaction that carries them.
 */
export class TransactionAssembler {
  private readonly budget: Budget = { inMemory: 0, log: new SpoolLog() };

  /** Decoded changes held for transactions not yet handed over: in memory, and spilled to the spool file. */
  get held(): { readonly memoryBytes: number; readonly diskBytes: number } {
    return { memoryBytes: this.budget.inMemory, diskBytes: this.budget.log.bytesOnDisk };
  }
  private current: TransactionBuffer | undefined;
  private readonly streams = new Map<number, TransactionBuffer>();
  private streaming: TransactionBuffer | undefined;
  /** Relations of the schema-change queue tables (sources before 14), learned from their relation messages. */
  private readonly schemaChangeQueues = new Set<number>();

  constructor(private readonly options: AssemblerOptions) {}

  /** True between BEGIN and COMMIT of a plain transaction: nothing after its start may be acknowledged. */
  get insideTransaction(): boolean {
    return this.current !== undefined;
  }

  /**
   * The commit time (as BEGIN carries it) of the plain transaction being received, if any: it is
   * committed on the source, and not applied yet. (A streamed one is not committed until its
   * stream commit, which hands it over whole.)
   */
  get receivingCommitTime(): bigint | undefined {
    return this.current?.commitTime;
  }

  /** Bytes of transactions held in memory: open ones, and sealed ones not yet released. */
  get bytesInMemory(): number {
    return this.budget.inMemory;
  }

  /** Bytes of transactions in the spool log, not yet released. */
  get bytesSpilled(): number {
    return this.budget.log.bytesOnDisk;
  }

  push(payload: Buffer): void {
    const tag = payload[0];
    switch (tag) {
      case PGOUTPUT.begin: {
        // Read in place, as COMMIT below: two messages of every transaction, no object each.
        if (payload.length < PGOUTPUT_OFFSET.beginLength) throw new DecodeError('message ends early', 'B');
        this.current = new TransactionBuffer(payload.readUInt32BE(PGOUTPUT_OFFSET.beginXid), false, this.budget);
        // Known from its BEGIN: a transaction still arriving is already committed on the source (the stream's lag counts it).
        this.current.commitTime = payload.readBigInt64BE(PGOUTPUT_OFFSET.beginCommitTime);
        return;
      }
      case PGOUTPUT.commit: {
        if (payload.length < PGOUTPUT_OFFSET.commitLength) throw new DecodeError('message ends early', 'C');
        const buffer = this.current;
        if (!buffer) throw outOfOrder('pgoutput: COMMIT without BEGIN');
        this.current = undefined;
        this.options.onTransaction(
          buffer.seal({
            commitLsn: payload.readBigUInt64BE(PGOUTPUT_OFFSET.commitLsn),
            endLsn: payload.readBigUInt64BE(PGOUTPUT_OFFSET.commitEndLsn),
            commitTime: payload.readBigInt64BE(PGOUTPUT_OFFSET.commitTime),
          }),
        );
        return;
      }
      case PGOUTPUT.streamStart: {
        const start = decodePgoutput(payload, { inStream: false, abortInfo: false });
        if (start.tag !== 'stream-start') return;
        let buffer = this.streams.get(start.xid);
        if (!buffer) {
          buffer = new TransactionBuffer(start.xid, true, this.budget);
          this.streams.set(start.xid, buffer);
        }
        this.streaming = buffer;
        return;
      }
      case PGOUTPUT.streamStop:
        this.streaming = undefined;
        return;
      case PGOUTPUT.streamCommit: {
        const commit = decodePgoutput(payload, { inStream: false, abortInfo: false });
        if (commit.tag !== 'stream-commit') return;
        const buffer = this.streams.get(commit.xid);
        if (!buffer) throw outOfOrder(`pgoutput: stream commit of unknown transaction ${commit.xid}`);
        this.streams.delete(commit.xid);
        this.options.onTransaction(buffer.seal(commit));
        return;
      }
      case PGOUTPUT.streamAbort: {
        const abort = decodePgoutput(payload, { inStream: false, abortInfo: this.options.abortInfo });
        if (abort.tag !== 'stream-abort') return;
        const buffer = this.streams.get(abort.xid);
        if (!buffer) return;
        if (abort.subXid === abort.xid) {
          this.streams.delete(abort.xid);
          buffer.release();
        } else {
          (buffer.abortedSubXids ??= new Set()).add(abort.subXid);
        }
        return;
      }
      case PGOUTPUT.origin:
        return;
      case PGOUTPUT.message: {
        const owner = this.streaming ?? this.current;
        if (owner) {
          owner.add(payload);
          if (isSchemaChange(payload, owner.streamed)) owner.carriesSchemaChange = true;
          break;
        }
        const message = decodePgoutput(payload, { inStream: false, abortInfo: false });
        if (message.tag === 'message') this.options.onMessage?.(message);
        return;
      }
      case PGOUTPUT.relation: {
        const owner = this.streaming ?? this.current;
        if (!owner) throw outOfOrder(`pgoutput: 'R' message outside a transaction`);
        owner.add(payload);
        const queue = schemaChangeQueueOf(payload, owner.streamed);
        if (queue !== undefined) this.schemaChangeQueues.add(queue);
        break;
      }
      default: {
        const owner = this.streaming ?? this.current;
        if (!owner) throw outOfOrder(`pgoutput: '${String.fromCharCode(tag ?? 0)}' message outside a transaction`);
        owner.add(payload);
        // Before 14 a schema change arrives as a row of the capture's queue table.
        if (
          tag === PGOUTPUT.insert &&
          this.schemaChangeQueues.size > 0 &&
          this.schemaChangeQueues.has(insertedRelation(payload, owner.streamed))
        ) {
          owner.carriesSchemaChange = true;
        }
      }
    }
    this.enforceBudget();
  }

  /**
   * Past the memory budget, the open transaction holding most memory goes to disk, and with it
   * everything it receives from then on. Sealed transactions stay where they are: they wait in
   * the queue or are being applied, and the stream stops reading while they alone fill the
   * budget (ChangeStream). Open transactions are few (one plain, and the streamed ones in
   * progress), so the choice costs nothing per message.
   */
  private enforceBudget(): void {
    while (this.budget.inMemory > this.options.memoryLimit) {
      let largest: TransactionBuffer | undefined;
      if (this.current && this.current.inMemory > 0) largest = this.current;
      for (const buffer of this.streams.values()) if (buffer.inMemory > (largest?.inMemory ?? 0)) largest = buffer;
      if (!largest) return;
      largest.spill();
    }
  }

  /** Drops every partial transaction (the server sends them again after a restart) and the spool. */
  close(): void {
    this.current?.release();
    for (const buffer of this.streams.values()) buffer.release();
    this.streams.clear();
    this.current = undefined;
    this.budget.log.close();
  }
}
