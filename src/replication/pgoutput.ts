import type { Lsn } from './lsn.js';

/**
 * The messages of the pgoutput plugin (PostgreSQL's "logical replication message formats"),
 * protocol versions 1 to 4, as a tagged union. Column values stay the text the server sent:
 * pgferry hands them back to the target as text and lets the target's types parse them.
 *
 * The wire grammar. Integers are big-endian (u8 u16 u32 u64; i16 i32 i64 signed), a string
 * is UTF-8 ended by a zero byte, an LSN is a u64 and a time is an i64 of microseconds since
 * 2000-01-01 UTC. [xid] is a u32 present only on messages inside a streamed transaction
 * (between STREAM START and STREAM STOP, protocol 2 and later).
 *
 *   BEGIN          'B' u64(final_lsn) i64(commit_time) u32(xid)
 *   COMMIT         'C' u8(flags = 0) u64(commit_lsn) u64(end_lsn) i64(commit_time)
 *   ORIGIN         'O' u64(origin_commit_lsn) string(origin_name)
 *   RELATION       'R' [xid] u32(relation_oid) string(namespace) string(name) u8(replica_identity: d n f i)
 *                      i16(ncolumns) column*
 *     column       u8(flags: 1 = part of the key) string(name) u32(type_oid) i32(type_modifier)
 *   TYPE           'Y' [xid] u32(type_oid) string(namespace) string(name)
 *   INSERT         'I' [xid] u32(relation_oid) 'N' tuple
 *   UPDATE         'U' [xid] u32(relation_oid) [('K' | 'O') tuple] 'N' tuple
 *   DELETE         'D' [xid] u32(relation_oid) ('K' | 'O') tuple
 *   TRUNCATE       'T' [xid] u32(nrelations) u8(options: 1 = CASCADE, 2 = RESTART IDENTITY) u32(relation_oid)*nrelations
 *   MESSAGE        'M' [xid] u8(flags: 1 = transactional) u64(lsn) string(prefix) u32(length) byte*length
 *     tuple        i16(ncolumns) value*
 *     value        'n' (null) | 'u' (unchanged TOASTed value) | 't' u32(length) byte*length (text)
 *                  | 'b' u32(length) byte*length (binary, when asked for: pgferry never asks)
 *     'K' before a key-only old tuple (the key changed), 'O' before a whole one (REPLICA IDENTITY FULL)
 *   Protocol 2 (PostgreSQL 14), `streaming`:
 *   STREAM START   'S' u32(xid) u8(first_segment: 1 = first)
 *   STREAM STOP    'E'
 *   STREAM COMMIT  'c' u32(xid) u8(flags = 0) u64(commit_lsn) u64(end_lsn) i64(commit_time)
 *   STREAM ABORT   'A' u32(xid) u32(subtransaction_xid) [u64(abort_lsn) i64(abort_time)]
 *                      (the last two with protocol 4, PostgreSQL 16, and streaming = parallel only)
 *   Protocol 3 (PostgreSQL 15), `two_phase`, which pgferry never asks for, so never decodes:
 *   BEGIN PREPARE  'b' u64(prepare_lsn) u64(end_lsn) i64(prepare_time) u32(xid) string(gid)
 *   PREPARE        'P' u8(flags = 0) u64(prepare_lsn) u64(end_lsn) i64(prepare_time) u32(xid) string(gid)
 *   COMMIT PREPARED 'K' u8(flags = 0) u64(commit_lsn) u64(end_lsn) i64(commit_time) u32(xid) string(gid)
 *   ROLLBACK PREPARED 'r' u8(flags = 0) u64(prepare_end_lsn) u64(rollback_end_lsn) i64(prepare_time)
 *                      i64(rollback_time) u32(xid) string(gid)
 *   STREAM PREPARE 'p' u8(flags = 0) u64(prepare_lsn) u64(end_lsn) i64(prepare_time) u32(xid) string(gid)
 */

/**
 * The first byte of each pgoutput message pgferry reads: its type. A const enum, so tsc writes
 * the number itself wherever a member is used: the decoder's switch stays a switch over
 * literals (reading the tags from an object made decoding about 10 % slower).
 */
export const enum PGOUTPUT {
  begin = 0x42 /* B */,
  commit = 0x43 /* C */,
  origin = 0x4f /* O */,
  relation = 0x52 /* R */,
  type = 0x59 /* Y */,
  insert = 0x49 /* I */,
  update = 0x55 /* U */,
  delete = 0x44 /* D */,
  truncate = 0x54 /* T */,
  message = 0x4d /* M */,
  streamStart = 0x53 /* S */,
  streamStop = 0x45 /* E */,
  streamCommit = 0x63 /* c */,
  streamAbort = 0x41 /* A */,
}

/**
 * Byte offsets (the type byte is byte 0) of the fields read in place, without the decoder: the
 * assembler's fast path for BEGIN and COMMIT, and the late-writes count in SQL.
 */
export const enum PGOUTPUT_OFFSET {
  beginCommitTime = 9,
  beginXid = 17,
  /** The whole BEGIN message. */
  beginLength = 21,
  commitLsn = 2,
  commitEndLsn = 10,
  commitTime = 18,
  /** The whole COMMIT message. */
  commitLength = 26,
  /** The xid of a data message inside a streamed transaction. */
  streamedXid = 1,
  /** The table of an INSERT, UPDATE or DELETE outside a stream; a RELATION message's too. */
  changeRelation = 1,
  /** Inside a stream every data message has the transaction's xid first: its fields are this much further. */
  streamedShift = 4,
  /** The first table of a TRUNCATE outside a stream (after its count and options). */
  truncateFirstRelation = 6,
  /** The prefix of a logical message (after its flags and position) outside a stream. */
  messagePrefix = 10,
}

/** The data messages that carry the xid inside a streamed transaction. */
const STREAMED_DATA: ReadonlySet<number> = new Set([
  PGOUTPUT.relation,
  PGOUTPUT.type,
  PGOUTPUT.insert,
  PGOUTPUT.update,
  PGOUTPUT.delete,
  PGOUTPUT.truncate,
  PGOUTPUT.message,
]);

/** A column the server did not send because its TOASTed value did not change. */
export const UNCHANGED = Symbol('unchanged TOAST value');
export type ColumnValue = string | null | typeof UNCHANGED;
export type Tuple = readonly ColumnValue[];

export interface RelationColumn {
  readonly name: string;
  readonly typeOid: number;
  readonly typeModifier: number;
  /** Part of the replica identity (the key the server sends with UPDATE and DELETE). */
  readonly isKey: boolean;
}

export type ReplicaIdentitySetting = 'default' | 'nothing' | 'full' | 'index';

export interface BeginMessage {
  readonly tag: 'begin';
  readonly finalLsn: Lsn;
  readonly commitTime: bigint;
  readonly xid: number;
}

export interface CommitMessage {
  readonly tag: 'commit';
  readonly flags: number;
  readonly commitLsn: Lsn;
  readonly endLsn: Lsn;
  readonly commitTime: bigint;
}

export interface OriginMessage {
  readonly tag: 'origin';
  readonly lsn: Lsn;
  readonly name: string;
}

export interface RelationMessage {
  readonly tag: 'relation';
  readonly xid: number | undefined;
  readonly relationId: number;
  readonly schema: string;
  readonly name: string;
  readonly replicaIdentity: ReplicaIdentitySetting;
  readonly columns: readonly RelationColumn[];
}

export interface TypeMessage {
  readonly tag: 'type';
  readonly xid: number | undefined;
  readonly typeOid: number;
  readonly schema: string;
  readonly name: string;
}

export interface InsertMessage {
  readonly tag: 'insert';
  readonly xid: number | undefined;
  readonly relationId: number;
  readonly newTuple: Tuple;
}

export interface UpdateMessage {
  readonly tag: 'update';
  readonly xid: number | undefined;
  readonly relationId: number;
  /** 'key' when the key changed (old key columns only), 'full' under REPLICA IDENTITY FULL. */
  readonly oldKind: 'key' | 'full' | undefined;
  readonly oldTuple: Tuple | undefined;
  readonly newTuple: Tuple;
}

export interface DeleteMessage {
  readonly tag: 'delete';
  readonly xid: number | undefined;
  readonly relationId: number;
  readonly oldKind: 'key' | 'full';
  readonly oldTuple: Tuple;
}

export interface TruncateMessage {
  readonly tag: 'truncate';
  readonly xid: number | undefined;
  readonly relationIds: readonly number[];
  readonly cascade: boolean;
  readonly restartIdentity: boolean;
}

/** A logical decoding message (pg_logical_emit_message). */
export interface LogicalMessage {
  readonly tag: 'message';
  readonly xid: number | undefined;
  readonly transactional: boolean;
  readonly lsn: Lsn;
  readonly prefix: string;
  readonly content: Buffer;
}

export interface StreamStartMessage {
  readonly tag: 'stream-start';
  readonly xid: number;
  readonly firstSegment: boolean;
}

export interface StreamStopMessage {
  readonly tag: 'stream-stop';
}

export interface StreamCommitMessage {
  readonly tag: 'stream-commit';
  readonly xid: number;
  readonly flags: number;
  readonly commitLsn: Lsn;
  readonly endLsn: Lsn;
  readonly commitTime: bigint;
}

export interface StreamAbortMessage {
  readonly tag: 'stream-abort';
  readonly xid: number;
  readonly subXid: number;
  readonly abortLsn: Lsn | undefined;
  readonly abortTime: bigint | undefined;
}

export type PgoutputMessage =
  | BeginMessage
  | CommitMessage
  | OriginMessage
  | RelationMessage
  | TypeMessage
  | InsertMessage
  | UpdateMessage
  | DeleteMessage
  | TruncateMessage
  | LogicalMessage
  | StreamStartMessage
  | StreamStopMessage
  | StreamCommitMessage
  | StreamAbortMessage;

export interface DecodeOptions {
  /** Inside a streamed transaction (between stream start and stop) data messages carry the xid. */
  readonly inStream: boolean;
  /** Protocol 4 with streaming = parallel: stream aborts carry the abort position and time. */
  readonly abortInfo: boolean;
}

const REPLICA_IDENTITIES: Record<string, ReplicaIdentitySetting> = { d: 'default', n: 'nothing', f: 'full', i: 'index' };

export class DecodeError extends Error {
  constructor(
    message: string,
    readonly tag: string,
  ) {
    super(`pgoutput: ${message} (message '${tag}')`);
    this.name = 'DecodeError';
  }
}

/** A cursor over one message. Every read checks bounds, so a short message fails loudly. */
class Reader {
  private offset = 0;
  constructor(
    private readonly buffer: Buffer,
    private readonly tag: string,
  ) {}

  private need(bytes: number): void {
    if (this.offset + bytes > this.buffer.length) throw new DecodeError(`message ends early at byte ${this.offset}`, this.tag);
  }
  skip(bytes: number): void {
    this.need(bytes);
    this.offset += bytes;
  }
  int8(): number {
    this.need(1);
    return this.buffer.readUInt8(this.offset++);
  }
  char(): string {
    return String.fromCharCode(this.int8());
  }
  int16(): number {
    this.need(2);
    const value = this.buffer.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }
  int32(): number {
    this.need(4);
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }
  uint32(): number {
    this.need(4);
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }
  uint64(): bigint {
    this.need(8);
    const value = this.buffer.readBigUInt64BE(this.offset);
    this.offset += 8;
    return value;
  }
  int64(): bigint {
    this.need(8);
    const value = this.buffer.readBigInt64BE(this.offset);
    this.offset += 8;
    return value;
  }
  cstring(): string {
    const end = this.buffer.indexOf(0, this.offset);
    if (end < 0) throw new DecodeError(`string without terminator at byte ${this.offset}`, this.tag);
    const text = this.buffer.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return text;
  }
  bytes(length: number): Buffer {
    this.need(length);
    const slice = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return slice;
  }
  text(length: number): string {
    this.need(length);
    const text = this.buffer.toString('utf8', this.offset, this.offset + length);
    this.offset += length;
    return text;
  }
}

function readTuple(reader: Reader, tag: string): ColumnValue[] {
  const count = reader.int16();
  const values: ColumnValue[] = new Array<ColumnValue>(count);
  for (let i = 0; i < count; i++) {
    const kind = reader.char();
    switch (kind) {
      case 'n':
        values[i] = null;
        break;
      case 'u':
        values[i] = UNCHANGED;
        break;
      case 't':
        values[i] = reader.text(reader.uint32());
        break;
      case 'b':
        // pgferry never asks for binary values; a server that sends them anyway is a bug to report.
        throw new DecodeError(`binary column value in a text-mode stream`, tag);
      default:
        throw new DecodeError(`unknown tuple column kind '${kind}'`, tag);
    }
  }
  return values;
}

function oldTupleKind(marker: string, tag: string): 'key' | 'full' {
  if (marker === 'K') return 'key';
  if (marker === 'O') return 'full';
  throw new DecodeError(`expected K or O before the old tuple, got '${marker}'`, tag);
}

/** Decodes one pgoutput message (the payload of an XLogData message). */
export function decodePgoutput(buffer: Buffer, options: DecodeOptions): PgoutputMessage {
  if (buffer.length === 0) throw new DecodeError('empty message', '?');
  const type = buffer[0]!;
  const tag = String.fromCharCode(type);
  const reader = new Reader(buffer, tag);
  reader.skip(1);
  switch (type) {
    case PGOUTPUT.begin:
      return { tag: 'begin', finalLsn: reader.uint64(), commitTime: reader.int64(), xid: reader.uint32() };
    case PGOUTPUT.commit:
      return { tag: 'commit', flags: reader.int8(), commitLsn: reader.uint64(), endLsn: reader.uint64(), commitTime: reader.int64() };
    case PGOUTPUT.origin:
      return { tag: 'origin', lsn: reader.uint64(), name: reader.cstring() };
    case PGOUTPUT.relation: {
      const xid = options.inStream ? reader.uint32() : undefined;
      const relationId = reader.uint32();
      const schema = reader.cstring();
      const name = reader.cstring();
      const identityChar = reader.char();
      const replicaIdentity = REPLICA_IDENTITIES[identityChar];
      if (!replicaIdentity) throw new DecodeError(`unknown replica identity '${identityChar}'`, tag);
      const count = reader.int16();
      const columns: RelationColumn[] = [];
      for (let i = 0; i < count; i++) {
        const flags = reader.int8();
        columns.push({ isKey: (flags & 1) === 1, name: reader.cstring(), typeOid: reader.uint32(), typeModifier: reader.int32() });
      }
      return { tag: 'relation', xid, relationId, schema, name, replicaIdentity, columns };
    }
    case PGOUTPUT.type:
      return {
        tag: 'type',
        xid: options.inStream ? reader.uint32() : undefined,
        typeOid: reader.uint32(),
        schema: reader.cstring(),
        name: reader.cstring(),
      };
    case PGOUTPUT.insert: {
      const xid = options.inStream ? reader.uint32() : undefined;
      const relationId = reader.uint32();
      const marker = reader.char();
      if (marker !== 'N') throw new DecodeError(`expected N before the new tuple, got '${marker}'`, tag);
      return { tag: 'insert', xid, relationId, newTuple: readTuple(reader, tag) };
    }
    case PGOUTPUT.update: {
      const xid = options.inStream ? reader.uint32() : undefined;
      const relationId = reader.uint32();
      let marker = reader.char();
      let oldKind: 'key' | 'full' | undefined;
      let oldTuple: Tuple | undefined;
      if (marker === 'K' || marker === 'O') {
        oldKind = oldTupleKind(marker, tag);
        oldTuple = readTuple(reader, tag);
        marker = reader.char();
      }
      if (marker !== 'N') throw new DecodeError(`expected N before the new tuple, got '${marker}'`, tag);
      return { tag: 'update', xid, relationId, oldKind, oldTuple, newTuple: readTuple(reader, tag) };
    }
    case PGOUTPUT.delete: {
      const xid = options.inStream ? reader.uint32() : undefined;
      const relationId = reader.uint32();
      const oldKind = oldTupleKind(reader.char(), tag);
      return { tag: 'delete', xid, relationId, oldKind, oldTuple: readTuple(reader, tag) };
    }
    case PGOUTPUT.truncate: {
      const xid = options.inStream ? reader.uint32() : undefined;
      const count = reader.uint32();
      const flags = reader.int8();
      const relationIds: number[] = [];
      for (let i = 0; i < count; i++) relationIds.push(reader.uint32());
      return { tag: 'truncate', xid, relationIds, cascade: (flags & 1) !== 0, restartIdentity: (flags & 2) !== 0 };
    }
    case PGOUTPUT.message: {
      const xid = options.inStream ? reader.uint32() : undefined;
      const transactional = (reader.int8() & 1) === 1;
      const lsn = reader.uint64();
      const prefix = reader.cstring();
      const content = Buffer.from(reader.bytes(reader.uint32()));
      return { tag: 'message', xid, transactional, lsn, prefix, content };
    }
    case PGOUTPUT.streamStart:
      return { tag: 'stream-start', xid: reader.uint32(), firstSegment: reader.int8() === 1 };
    case PGOUTPUT.streamStop:
      return { tag: 'stream-stop' };
    case PGOUTPUT.streamCommit:
      return {
        tag: 'stream-commit',
        xid: reader.uint32(),
        flags: reader.int8(),
        commitLsn: reader.uint64(),
        endLsn: reader.uint64(),
        commitTime: reader.int64(),
      };
    case PGOUTPUT.streamAbort: {
      const xid = reader.uint32();
      const subXid = reader.uint32();
      if (!options.abortInfo) return { tag: 'stream-abort', xid, subXid, abortLsn: undefined, abortTime: undefined };
      return { tag: 'stream-abort', xid, subXid, abortLsn: reader.uint64(), abortTime: reader.int64() };
    }
    default:
      throw new DecodeError('unknown message type', tag);
  }
}

/** Which xid a data message belongs to inside a stream, without decoding all of it. */
export function streamedXidOf(buffer: Buffer): number | undefined {
  const type = buffer[0];
  return type !== undefined && STREAMED_DATA.has(type) && buffer.length >= PGOUTPUT_OFFSET.streamedXid + 4
    ? buffer.readUInt32BE(PGOUTPUT_OFFSET.streamedXid)
    : undefined;
}
