import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lsn } from './lsn.js';
import { DecodeError, decodePgoutput, streamedXidOf, type PgoutputMessage } from './pgoutput.js';

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
  readonly bytes: number;
  /** The data messages, in source order, as many times as asked (a failed batch is replayed). */
  messages(): AsyncIterable<Buffer>;
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
  readonly onMessage?: (message: Extract<PgoutputMessage, { tag: 'message' }>) => void;
}

const SPILL_BLOCK = 1024 * 1024;

/**
 * Messages of one transaction: in memory until the shared budget runs out, then in a file.
 * Once sealed it is the SourceTransaction itself: a backlog holds one per source transaction.
 */
class TransactionBuffer implements SourceTransaction {
  private memory: Buffer[] = [];
  private memoryBytes = 0;
  private file: string | undefined;
  private fd: number | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  count = 0;
  bytes = 0;
  commitLsn: Lsn = 0n;
  endLsn: Lsn = 0n;
  commitTime = 0n;
  /** Subtransactions rolled back inside a streamed transaction: their changes are dropped on read. */
  abortedSubXids: Set<number> | undefined;

  constructor(
    readonly xid: number,
    readonly streamed: boolean,
    private readonly spool: Spool,
  ) {
    spool.live.add(this);
  }

  get inMemory(): number {
    return this.memoryBytes;
  }

  add(payload: Buffer): void {
    this.count++;
    this.bytes += payload.length;
    if (this.fd !== undefined) {
      this.appendToFile(payload);
      return;
    }
    // Kept as a view into the CopyData chunk it arrived in (one chunk per message): no copy.
    this.memory.push(payload);
    this.memoryBytes += payload.length;
    this.spool.track(payload.length);
  }

  /** Moves what is in memory to the spool file; later messages go straight there. */
  spill(): void {
    if (this.fd === undefined) {
      this.file = this.spool.newFile();
      this.fd = openSync(this.file, 'w');
    }
    for (const payload of this.memory) this.appendToFile(payload);
    this.spool.track(-this.memoryBytes);
    this.memory = [];
    this.memoryBytes = 0;
  }

  private appendToFile(payload: Buffer): void {
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32BE(payload.length, 0);
    this.pending.push(header, payload);
    this.pendingBytes += 4 + payload.length;
    if (this.pendingBytes >= SPILL_BLOCK) this.flushFile();
  }

  private flushFile(): void {
    if (this.fd === undefined || this.pendingBytes === 0) return;
    writeSync(this.fd, Buffer.concat(this.pending, this.pendingBytes));
    this.pending = [];
    this.pendingBytes = 0;
  }

  get messageCount(): number {
    return this.count;
  }

  /** Ends writing: the buffer becomes a transaction to read. */
  seal(commit: { commitLsn: Lsn; endLsn: Lsn; commitTime: bigint }): SourceTransaction {
    this.flushFile();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.commitLsn = commit.commitLsn;
    this.endLsn = commit.endLsn;
    this.commitTime = commit.commitTime;
    return this;
  }

  messages(): AsyncIterable<Buffer> {
    return this.read();
  }

  messagesInMemory(): readonly Buffer[] | undefined {
    return this.inMemoryMessages();
  }

  inMemoryMessages(): readonly Buffer[] | undefined {
    if (this.file !== undefined) return undefined;
    if (this.abortedSubXids === undefined) return this.memory;
    return this.memory.filter((payload) => this.keep(payload));
  }

  private keep(payload: Buffer): boolean {
    const aborted = this.abortedSubXids;
    if (aborted === undefined) return true;
    const xid = streamedXidOf(payload);
    return xid === undefined || payload[0] === 0x52 /* R */ || !aborted.has(xid);
  }

  private async *read(): AsyncGenerator<Buffer> {
    const keep = (payload: Buffer) => this.keep(payload);
    if (this.file === undefined) {
      for (const payload of this.memory) if (keep(payload)) yield payload;
      return;
    }
    const handle = await open(this.file, 'r');
    try {
      let carry = Buffer.alloc(0);
      const block = Buffer.allocUnsafe(SPILL_BLOCK);
      for (;;) {
        const { bytesRead } = await handle.read(block, 0, block.length, null);
        if (bytesRead === 0) break;
        let data = carry.length > 0 ? Buffer.concat([carry, block.subarray(0, bytesRead)]) : block.subarray(0, bytesRead);
        let offset = 0;
        while (offset + 4 <= data.length) {
          const length = data.readUInt32BE(offset);
          if (offset + 4 + length > data.length) break;
          const payload = Buffer.from(data.subarray(offset + 4, offset + 4 + length));
          offset += 4 + length;
          if (keep(payload)) yield payload;
        }
        carry = Buffer.from(data.subarray(offset));
        data = carry;
      }
    } finally {
      await handle.close();
    }
  }

  release(): void {
    this.spool.live.delete(this);
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    if (this.file !== undefined) rmSync(this.file, { force: true });
    this.spool.track(-this.memoryBytes);
    this.memory = [];
    this.memoryBytes = 0;
  }
}

/** The spool directory and the memory budget shared by every transaction buffer. */
class Spool {
  private directory: string | undefined;
  private counter = 0;
  inMemory = 0;
  spilledFiles = 0;
  /** Buffers not yet released: open, or committed and waiting to be applied. */
  readonly live = new Set<TransactionBuffer>();

  track(bytes: number): void {
    this.inMemory += bytes;
  }

  newFile(): string {
    this.directory ??= mkdtempSync(join(tmpdir(), 'pgferry-spool-'));
    this.spilledFiles++;
    return join(this.directory, `${process.pid}-${++this.counter}.spool`);
  }

  remove(): void {
    if (this.directory !== undefined) rmSync(this.directory, { recursive: true, force: true });
    this.directory = undefined;
  }
}

/**
 * Turns the pgoutput stream into whole committed transactions: plain ones between BEGIN and
 * COMMIT, and streamed ones (pieces of several running transactions interleaved, then a
 * stream commit or abort). Transactions are handed over in commit order, as the server sends
 * commits. Relation messages travel with the transaction that carries them.
 */
export class TransactionAssembler {
  private readonly spool = new Spool();
  private current: TransactionBuffer | undefined;
  private readonly streams = new Map<number, TransactionBuffer>();
  private streaming: TransactionBuffer | undefined;

  constructor(private readonly options: AssemblerOptions) {}

  /** True between BEGIN and COMMIT of a plain transaction: nothing after its start may be acknowledged. */
  get insideTransaction(): boolean {
    return this.current !== undefined;
  }

  get spilledFiles(): number {
    return this.spool.spilledFiles;
  }

  push(payload: Buffer): void {
    const tag = payload[0];
    switch (tag) {
      case 0x42 /* B */: {
        // Read in place, as COMMIT below: two messages of every transaction, no object each.
        if (payload.length < 21) throw new DecodeError('message ends early', 'B');
        this.current = new TransactionBuffer(payload.readUInt32BE(17), false, this.spool);
        return;
      }
      case 0x43 /* C */: {
        if (payload.length < 26) throw new DecodeError('message ends early', 'C');
        const buffer = this.current;
        if (!buffer) throw new Error('pgoutput: COMMIT without BEGIN');
        this.current = undefined;
        this.options.onTransaction(buffer.seal({ commitLsn: payload.readBigUInt64BE(2), endLsn: payload.readBigUInt64BE(10), commitTime: payload.readBigInt64BE(18) }));
        return;
      }
      case 0x53 /* S */: {
        const start = decodePgoutput(payload, { inStream: false, abortInfo: false });
        if (start.tag !== 'stream-start') return;
        let buffer = this.streams.get(start.xid);
        if (!buffer) {
          buffer = new TransactionBuffer(start.xid, true, this.spool);
          this.streams.set(start.xid, buffer);
        }
        this.streaming = buffer;
        return;
      }
      case 0x45 /* E */:
        this.streaming = undefined;
        return;
      case 0x63 /* c */: {
        const commit = decodePgoutput(payload, { inStream: false, abortInfo: false });
        if (commit.tag !== 'stream-commit') return;
        const buffer = this.streams.get(commit.xid);
        if (!buffer) throw new Error(`pgoutput: stream commit of unknown transaction ${commit.xid}`);
        this.streams.delete(commit.xid);
        this.options.onTransaction(buffer.seal(commit));
        return;
      }
      case 0x41 /* A */: {
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
      case 0x4f /* O */:
        return;
      case 0x4d /* M */: {
        const owner = this.streaming ?? this.current;
        if (owner) {
          owner.add(payload);
          break;
        }
        const message = decodePgoutput(payload, { inStream: false, abortInfo: false });
        if (message.tag === 'message') this.options.onMessage?.(message);
        return;
      }
      default: {
        const owner = this.streaming ?? this.current;
        if (!owner) throw new Error(`pgoutput: '${String.fromCharCode(tag ?? 0)}' message outside a transaction`);
        owner.add(payload);
      }
    }
    this.enforceBudget();
  }

  /** Past the memory budget, the transaction holding most memory goes to disk. */
  private enforceBudget(): void {
    while (this.spool.inMemory > this.options.memoryLimit) {
      let largest: TransactionBuffer | undefined;
      for (const buffer of this.spool.live) if (!largest || buffer.inMemory > largest.inMemory) largest = buffer;
      if (!largest || largest.inMemory === 0) return;
      largest.spill();
    }
  }

  /** Drops every partial transaction (the server sends them again after a restart) and the spool. */
  close(): void {
    for (const buffer of [...this.spool.live]) buffer.release();
    this.streams.clear();
    this.current = undefined;
    this.spool.remove();
  }
}
