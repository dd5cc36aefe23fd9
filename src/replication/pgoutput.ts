import type { Lsn } from './lsn.js';

/**
 * The messages of the pgoutput plugin (PostgreSQL's "logical replication message formats"),
 * protocol versions 1 to 4, as a tagged union. Column values stay the text the server sent:
 * pgferry hands them back to the target as text and lets the target's types parse them.
 */

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

export interface RelationMessage {
  readonly tag: 'relation';
  readonly xid: number | undefined;
  readonly relationId: number;
  readonly schema: string;
  readonly name: string;
  readonly replicaIdentity: ReplicaIdentitySetting;
  readonly columns: readonly RelationColumn[];
}

export type PgoutputMessage =
  | { readonly tag: 'begin'; readonly finalLsn: Lsn; readonly commitTime: bigint; readonly xid: number }
  | { readonly tag: 'commit'; readonly flags: number; readonly commitLsn: Lsn; readonly endLsn: Lsn; readonly commitTime: bigint }
  | { readonly tag: 'origin'; readonly lsn: Lsn; readonly name: string }
  | RelationMessage
  | { readonly tag: 'type'; readonly xid: number | undefined; readonly typeOid: number; readonly schema: string; readonly name: string }
  | { readonly tag: 'insert'; readonly xid: number | undefined; readonly relationId: number; readonly newTuple: Tuple }
  | {
      readonly tag: 'update';
      readonly xid: number | undefined;
      readonly relationId: number;
      /** 'key' when the key changed (old key columns only), 'full' under REPLICA IDENTITY FULL. */
      readonly oldKind: 'key' | 'full' | undefined;
      readonly oldTuple: Tuple | undefined;
      readonly newTuple: Tuple;
    }
  | { readonly tag: 'delete'; readonly xid: number | undefined; readonly relationId: number; readonly oldKind: 'key' | 'full'; readonly oldTuple: Tuple }
  | {
      readonly tag: 'truncate';
      readonly xid: number | undefined;
      readonly relationIds: readonly number[];
      readonly cascade: boolean;
      readonly restartIdentity: boolean;
    }
  | {
      readonly tag: 'message';
      readonly xid: number | undefined;
      readonly transactional: boolean;
      readonly lsn: Lsn;
      readonly prefix: string;
      readonly content: Buffer;
    }
  | { readonly tag: 'stream-start'; readonly xid: number; readonly firstSegment: boolean }
  | { readonly tag: 'stream-stop' }
  | { readonly tag: 'stream-commit'; readonly xid: number; readonly flags: number; readonly commitLsn: Lsn; readonly endLsn: Lsn; readonly commitTime: bigint }
  | { readonly tag: 'stream-abort'; readonly xid: number; readonly subXid: number; readonly abortLsn: Lsn | undefined; readonly abortTime: bigint | undefined };

export type PgoutputTag = PgoutputMessage['tag'];

export interface DecodeOptions {
  /** Inside a streamed transaction (between stream start and stop) data messages carry the xid. */
  readonly inStream: boolean;
  /** Protocol 4 with streaming = parallel: stream aborts carry the abort position and time. */
  readonly abortInfo: boolean;
}

const REPLICA_IDENTITIES: Record<string, ReplicaIdentitySetting> = { d: 'default', n: 'nothing', f: 'full', i: 'index' };

export class DecodeError extends Error {
  constructor(message: string, readonly tag: string) {
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
  const tag = String.fromCharCode(buffer[0]!);
  const reader = new Reader(buffer, tag);
  reader.skip(1);
  switch (tag) {
    case 'B':
      return { tag: 'begin', finalLsn: reader.uint64(), commitTime: reader.int64(), xid: reader.uint32() };
    case 'C':
      return { tag: 'commit', flags: reader.int8(), commitLsn: reader.uint64(), endLsn: reader.uint64(), commitTime: reader.int64() };
    case 'O':
      return { tag: 'origin', lsn: reader.uint64(), name: reader.cstring() };
    case 'R': {
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
    case 'Y':
      return { tag: 'type', xid: (options.inStream ? reader.uint32() : undefined), typeOid: reader.uint32(), schema: reader.cstring(), name: reader.cstring() };
    case 'I': {
      const xid = options.inStream ? reader.uint32() : undefined;
      const relationId = reader.uint32();
      const marker = reader.char();
      if (marker !== 'N') throw new DecodeError(`expected N before the new tuple, got '${marker}'`, tag);
      return { tag: 'insert', xid, relationId, newTuple: readTuple(reader, tag) };
    }
    case 'U': {
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
    case 'D': {
      const xid = options.inStream ? reader.uint32() : undefined;
      const relationId = reader.uint32();
      const oldKind = oldTupleKind(reader.char(), tag);
      return { tag: 'delete', xid, relationId, oldKind, oldTuple: readTuple(reader, tag) };
    }
    case 'T': {
      const xid = options.inStream ? reader.uint32() : undefined;
      const count = reader.uint32();
      const flags = reader.int8();
      const relationIds: number[] = [];
      for (let i = 0; i < count; i++) relationIds.push(reader.uint32());
      return { tag: 'truncate', xid, relationIds, cascade: (flags & 1) !== 0, restartIdentity: (flags & 2) !== 0 };
    }
    case 'M': {
      const xid = options.inStream ? reader.uint32() : undefined;
      const transactional = (reader.int8() & 1) === 1;
      const lsn = reader.uint64();
      const prefix = reader.cstring();
      const content = Buffer.from(reader.bytes(reader.uint32()));
      return { tag: 'message', xid, transactional, lsn, prefix, content };
    }
    case 'S':
      return { tag: 'stream-start', xid: reader.uint32(), firstSegment: reader.int8() === 1 };
    case 'E':
      return { tag: 'stream-stop' };
    case 'c':
      return { tag: 'stream-commit', xid: reader.uint32(), flags: reader.int8(), commitLsn: reader.uint64(), endLsn: reader.uint64(), commitTime: reader.int64() };
    case 'A': {
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
  const tag = String.fromCharCode(buffer[0]!);
  return 'RYIUDTM'.includes(tag) && buffer.length >= 5 ? buffer.readUInt32BE(1) : undefined;
}
