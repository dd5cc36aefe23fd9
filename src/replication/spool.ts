import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemErrorCode } from '../plumbing/index.js';

/**
 * Where transactions go when they do not fit in memory: one append-only log, cut into segment
 * files, shared by every spilled transaction. A transaction's spilled messages are a list of
 * extents in that log, so a backlog of a hundred thousand small spilled transactions is a few
 * segment files, not a hundred thousand; the log holds one file open for writing and opens a
 * segment only while reading it. A segment is deleted once no transaction has data in it.
 *
 * Messages are written as a 4-byte length and the payload. Writes are gathered in memory and
 * written a block at a time; anything a reader asks for is written first, so a transaction is
 * always read back whole.
 */

/** A run of bytes in one segment. */
export interface Extent {
  readonly segment: number;
  readonly offset: number;
  length: number;
}

const WRITE_BLOCK = 1024 * 1024;
const SEGMENT_BYTES = 64 * 1024 * 1024;
/** Reads go a block at a time; a fresh buffer each, so payloads handed out may be views into it. */
const READ_BLOCK = 1024 * 1024;
const DIRECTORY_PREFIX = 'pgferry-spool-';

interface Segment {
  readonly path: string;
  /** Bytes appended so far (written or still gathered). */
  size: number;
  /** Bytes on disk. */
  written: number;
  /** Extents of live transactions in this segment. */
  users: number;
}

export interface SpoolSizes {
  /** A segment file is closed and a new one begun past this size. */
  readonly segmentBytes: number;
  /** Appends are gathered in memory up to this size, then written. */
  readonly writeBlock: number;
}

export class SpoolLog {
  private directory: string | undefined;
  private readonly segments = new Map<number, Segment>();
  private current: { readonly id: number; readonly segment: Segment; readonly fd: number } | undefined;
  private nextId = 0;
  private gathered: Buffer[] = [];
  private gatheredBytes = 0;
  /** Bytes in the log not yet released, for the metrics and the tests. */
  bytesOnDisk = 0;

  constructor(private readonly sizes: SpoolSizes = { segmentBytes: SEGMENT_BYTES, writeBlock: WRITE_BLOCK }) {}

  /** Segment files that exist now (open for writing or holding live data). */
  get segmentFiles(): number {
    return this.segments.size;
  }

  /** Appends one message; returns the extent it landed in (the caller merges adjacent ones). */
  append(payload: Buffer): Extent {
    const current = this.writable(4 + payload.length);
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32BE(payload.length, 0);
    const offset = current.segment.size;
    this.gathered.push(header, payload);
    this.gatheredBytes += 4 + payload.length;
    current.segment.size += 4 + payload.length;
    this.bytesOnDisk += 4 + payload.length;
    if (this.gatheredBytes >= this.sizes.writeBlock) this.writeGathered();
    return { segment: current.id, offset, length: 4 + payload.length };
  }

  /** The segment to append to, a new one when this message would pass the segment size. */
  private writable(bytes: number): { readonly id: number; readonly segment: Segment; readonly fd: number } {
    const current = this.current;
    if (current && (current.segment.size === 0 || current.segment.size + bytes <= this.sizes.segmentBytes)) return current;
    if (current) this.closeCurrent();
    this.directory ??= mkdtempSync(join(tmpdir(), `${DIRECTORY_PREFIX}${process.pid}-`));
    const id = this.nextId++;
    const segment: Segment = { path: join(this.directory, `${id}.spool`), size: 0, written: 0, users: 0 };
    this.segments.set(id, segment);
    this.current = { id, segment, fd: openSync(segment.path, 'wx', 0o600) };
    return this.current;
  }

  private writeGathered(): void {
    const current = this.current;
    if (!current || this.gatheredBytes === 0) return;
    const data = this.gathered.length === 1 ? this.gathered[0]! : Buffer.concat(this.gathered, this.gatheredBytes);
    let done = 0;
    while (done < data.length) done += writeSync(current.fd, data, done, data.length - done);
    current.segment.written += data.length;
    this.gathered = [];
    this.gatheredBytes = 0;
  }

  private closeCurrent(): void {
    const current = this.current;
    if (!current) return;
    this.writeGathered();
    closeSync(current.fd);
    this.current = undefined;
    if (current.segment.users === 0) this.remove(current.id);
  }

  /** A transaction now holds data in this extent's segment. */
  retain(extent: Extent): void {
    this.segments.get(extent.segment)!.users++;
  }

  /** A transaction let go of its extents: segments nobody uses any more are deleted. */
  release(extents: readonly Extent[]): void {
    for (const extent of extents) {
      const segment = this.segments.get(extent.segment);
      if (!segment) continue;
      this.bytesOnDisk -= extent.length;
      segment.users--;
      if (segment.users === 0 && this.current?.id !== extent.segment) this.remove(extent.segment);
    }
  }

  private remove(id: number): void {
    const segment = this.segments.get(id);
    if (!segment) return;
    this.segments.delete(id);
    try {
      unlinkSync(segment.path);
    } catch {
      // Already gone with its directory.
    }
  }

  /**
   * The messages in `extents`, in order, a read block's worth at a time (a reader then handles
   * each block without an await per message); `keep` filters them. Everything asked for is
   * written first.
   */
  async *read(extents: readonly Extent[], keep: (payload: Buffer) => boolean): AsyncGenerator<Buffer[]> {
    let index = 0;
    while (index < extents.length) {
      const segmentId = extents[index]!.segment;
      const segment = this.segments.get(segmentId);
      if (!segment) throw new Error(`spool: segment ${segmentId} is gone while a transaction still uses it`);
      if (this.current?.id === segmentId) this.writeGathered();
      const handle = await open(segment.path, 'r');
      try {
        for (; index < extents.length && extents[index]!.segment === segmentId; index++) {
          yield* this.readExtent(handle, extents[index]!, keep);
        }
      } finally {
        await handle.close();
      }
    }
  }

  private async *readExtent(
    handle: import('node:fs/promises').FileHandle,
    extent: Extent,
    keep: (payload: Buffer) => boolean,
  ): AsyncGenerator<Buffer[]> {
    let position = extent.offset;
    const end = extent.offset + extent.length;
    let carry: Buffer | undefined;
    while (position < end) {
      const size = Math.min(READ_BLOCK, end - position);
      const block = Buffer.allocUnsafe(size);
      let filled = 0;
      while (filled < size) {
        const { bytesRead } = await handle.read(block, filled, size - filled, position + filled);
        if (bytesRead === 0) throw new Error(`spool: a segment ends early at ${position + filled}, expected ${end}`);
        filled += bytesRead;
      }
      position += size;
      const data = carry === undefined ? block : Buffer.concat([carry, block]);
      let offset = 0;
      const messages: Buffer[] = [];
      while (offset + 4 <= data.length) {
        const length = data.readUInt32BE(offset);
        if (offset + 4 + length > data.length) break;
        const payload = data.subarray(offset + 4, offset + 4 + length);
        offset += 4 + length;
        if (keep(payload)) messages.push(payload);
      }
      if (messages.length > 0) yield messages;
      carry = offset < data.length ? data.subarray(offset) : undefined;
    }
    if (carry !== undefined) throw new Error(`spool: ${carry.length} bytes at the end of an extent are no whole message`);
  }

  /** Closes and deletes everything: the process is done with the stream. */
  close(): void {
    if (this.current) {
      closeSync(this.current.fd);
      this.current = undefined;
    }
    this.gathered = [];
    this.gatheredBytes = 0;
    this.segments.clear();
    this.bytesOnDisk = 0;
    if (this.directory !== undefined) rmSync(this.directory, { recursive: true, force: true });
    this.directory = undefined;
  }
}

/**
 * Spool directories of pgferry processes that no longer run (killed, crashed): they hold row
 * data nobody will read again. Removed when a new stream starts.
 */
export function removeAbandonedSpools(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir()).filter((name) => name.startsWith(DIRECTORY_PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(name.slice(DIRECTORY_PREFIX.length).split('-')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || isRunning(pid)) continue;
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return systemErrorCode(error) === 'EPERM';
  }
}
