import type { Socket } from 'node:net';
import type pg from 'pg';
import { BACKEND, SocketLoan, type PgConnection } from '../plumbing/index.js';
import type { Side } from '../errors.js';

/**
 * One table's rows from the source's COPY TO into the target's COPY FROM, as bytes.
 *
 * Both servers speak the same message, CopyData ('d', length, payload), for a row going out
 * and a row coming in. So the source's socket chunks are forwarded to the target's socket as
 * they arrive, CopyData messages and all: the relay only walks the five-byte headers to find
 * where the copy ends, and forwards views into the chunk (no copy, no allocation per row).
 * pg-copy-streams, used before, cut out each row's payload (a Buffer per row), joined them
 * again, pushed them through two streams and framed them anew: most of pgferry's CPU in a
 * copy (a profile of a scale-30 clone: buffer allocation, its parser and GC, ~85 % of the
 * process's busy time).
 *
 * As pg-copy-streams and replication/copy-both.ts do, the relay borrows the source's socket
 * from node-postgres for the copy (pg's parser is detached and given the bytes back at the
 * end: CopyDone, or an ErrorResponse that pg turns into the query's error); the target's
 * socket is only written to, and pg keeps reading its answers (CopyInResponse, an error,
 * CommandComplete).
 */

export interface RelayResult {
  /** Rows the target loaded (its CommandComplete). */
  readonly rows: number;
  /** CopyData payload bytes, as the source sent them (message headers not counted). */
  readonly bytes: number;
}

/** Which side failed first, with what. */
export class RelayFailure extends Error {
  constructor(
    readonly side: Side,
    readonly error: unknown,
  ) {
    super(error instanceof Error ? error.message : String(error), { cause: error });
  }
}

const { copyOutResponse: COPY_OUT_RESPONSE, copyData: COPY_DATA, copyDone: COPY_DONE } = BACKEND;
const { noticeResponse: NOTICE_RESPONSE, parameterStatus: PARAMETER_STATUS, notificationResponse: NOTIFICATION_RESPONSE } = BACKEND;
const HEADER = 5;
const COPY_DONE_MESSAGE = Buffer.from([COPY_DONE, 0, 0, 0, 4]);

/**
 * Runs `sourceSql` (a COPY … TO STDOUT) on `source` and `targetSql` (a COPY … FROM STDIN in the
 * same format) on `target`, relaying the rows; `onBytes` hears of payload bytes per socket
 * chunk. Rejects with a RelayFailure naming the side that failed first; the caller then ends
 * the source session (it may be left inside COPY OUT) and rolls the target back (its COPY IN
 * is ended with CopyFail here, so the ROLLBACK is not queued behind it).
 */
export async function relayCopy(
  source: pg.Client,
  target: pg.Client,
  sourceSql: string,
  targetSql: string,
  onBytes: (bytes: number) => void,
): Promise<RelayResult> {
  const into = new CopyIn(targetSql);
  void target.query(into);
  try {
    await into.ready;
  } catch (error) {
    throw new RelayFailure('target', error);
  }
  const out = new CopyOutRelay(sourceSql, into, onBytes);
  void source.query(out);
  // The target may refuse a row while the source still sends: whichever ends first decides.
  const targetFailed = into.done.then(
    () => undefined,
    (error: unknown) => new RelayFailure('target', error),
  );
  const sourceEnded = out.done.then(
    () => undefined,
    (error: unknown) => new RelayFailure('source', error),
  );
  const first = await Promise.race([sourceEnded, targetFailed.then((failure) => failure ?? sourceEnded)]);
  if (first !== undefined) {
    out.stop();
    // The target's answer to CopyFail is awaited by the caller's ROLLBACK, under its deadline.
    into.fail(`the source failed: ${first.message}`);
    throw first;
  }
  into.finish();
  const failed = await targetFailed;
  if (failed) throw failed;
  return { rows: into.rowCount, bytes: out.payloadBytes };
}

/** The target's COPY FROM STDIN: a node-postgres Submittable whose data is written by the relay. */
export class CopyIn {
  rowCount = 0;
  stream: Socket | undefined;
  /** Settles when the server is ready for data (CopyInResponse), or refused the COPY. */
  readonly ready: Promise<void>;
  /** Settles when the server has answered the end of the copy (ReadyForQuery), or failed it. */
  readonly done: Promise<void>;
  private resolveReady!: () => void;
  private rejectReady!: (error: unknown) => void;
  private resolveDone!: () => void;
  private rejectDone!: (error: unknown) => void;
  private ended = false;
  private failed = false;

  constructor(readonly text: string) {
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // Either may be left unawaited on a failure path; the caller reads the one that matters.
    this.ready.catch(() => undefined);
    this.done.catch(() => undefined);
  }

  submit(connection: PgConnection): void {
    this.stream = connection.stream;
    connection.query(this.text);
  }

  /** Sends bytes that are whole or partial CopyData messages; false: wait for 'drain'. */
  write(bytes: Buffer): boolean {
    return this.ended ? true : this.stream!.write(bytes);
  }

  /** All rows sent: CopyDone. */
  finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.stream!.write(COPY_DONE_MESSAGE);
  }

  /** Abandons the copy (CopyFail): the server answers with an error and is ready again. */
  fail(why: string): void {
    if (this.ended) return;
    this.ended = true;
    const text = Buffer.from(`${why}\0`, 'utf8');
    const message = Buffer.allocUnsafe(HEADER + text.length);
    message[0] = 0x66; // f
    message.writeUInt32BE(4 + text.length, 1);
    text.copy(message, HEADER);
    this.stream?.write(message);
  }

  // node-postgres calls these on the active query.
  handleCopyInResponse(): void {
    this.resolveReady();
  }

  handleCommandComplete(message: { text?: string }): void {
    const match = /COPY (\d+)/.exec(message.text ?? '');
    if (match) this.rowCount = Number(match[1]);
  }

  handleError(error: Error): void {
    this.failed = true;
    this.ended = true;
    this.rejectReady(error);
    this.rejectDone(error);
  }

  handleReadyForQuery(): void {
    if (this.failed) return;
    // Ready again without CopyInResponse: the server ran something else than a COPY FROM.
    this.rejectReady(new Error('the target did not start COPY FROM STDIN'));
    this.resolveDone();
  }

  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}

/** The source's COPY TO STDOUT: a node-postgres Submittable that forwards its CopyData messages. */
export class CopyOutRelay {
  /** CopyData payload bytes forwarded so far. */
  payloadBytes = 0;
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private rejectDone!: (error: unknown) => void;
  private loan: SocketLoan | undefined;
  private readonly onDrain = () => {
    this.waitingForDrain = false;
    if (this.loan?.isHeld && !this.stopped) this.loan.stream.resume();
  };
  private waitingForDrain = false;
  /** The start of a message whose five-byte header is not complete yet (rare: < 5 bytes). */
  private headerPart: Buffer | undefined;
  /** Bytes of the current message still to come in later chunks, and whether they are forwarded. */
  private rest = 0;
  private restForwarded = false;
  private stopped = false;

  constructor(
    readonly text: string,
    private readonly into: CopyIn,
    private readonly onBytes: (bytes: number) => void,
  ) {
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.done.catch(() => undefined);
  }

  submit(connection: PgConnection): void {
    this.loan = SocketLoan.take(connection, (chunk) => this.relay(chunk), 'source');
    connection.query(this.text);
  }

  /** Stops forwarding (the other side failed); the caller ends this session. */
  stop(): void {
    this.stopped = true;
    if (this.loan?.isHeld) this.loan.stream.pause();
  }

  private relay(received: Buffer): void {
    if (this.stopped) return;
    let chunk = received;
    if (this.headerPart) {
      // Joined with the whole chunk: rare enough (a header cut by the chunk's end) to cost nothing.
      chunk = Buffer.concat([this.headerPart, received]);
      this.headerPart = undefined;
    }
    let offset = 0;
    /** Start of the run of CopyData bytes not forwarded yet, or -1. */
    let run = -1;
    let payload = 0;
    if (this.rest > 0) {
      offset = Math.min(this.rest, chunk.length);
      this.rest -= offset;
      if (this.restForwarded) {
        run = 0;
        payload += offset;
      }
    }
    while (offset < chunk.length) {
      if (chunk.length - offset < HEADER) {
        this.headerPart = chunk.subarray(offset);
        break;
      }
      const code = chunk[offset]!;
      const end = offset + 1 + chunk.readUInt32BE(offset + 1);
      if (code === COPY_DATA) {
        if (run < 0) run = offset;
      } else {
        if (run >= 0) this.forward(chunk.subarray(run, offset));
        run = -1;
        if (code !== COPY_OUT_RESPONSE && code !== NOTICE_RESPONSE && code !== PARAMETER_STATUS && code !== NOTIFICATION_RESPONSE) {
          // CopyDone (pg reads CommandComplete and ReadyForQuery after it), or an ErrorResponse
          // (pg parses it and fails this query), or anything unexpected (pg's to judge).
          this.onBytes(payload);
          this.payloadBytes += payload;
          this.detach(chunk.subarray(code === COPY_DONE ? Math.min(end, chunk.length) : offset));
          return;
        }
      }
      if (end > chunk.length) {
        // The message goes on in the next chunks: a row's payload is forwarded as it comes.
        this.rest = end - chunk.length;
        this.restForwarded = code === COPY_DATA;
        if (code === COPY_DATA) payload += chunk.length - offset - HEADER;
        offset = chunk.length;
        break;
      }
      if (code === COPY_DATA) payload += end - offset - HEADER;
      offset = end;
    }
    if (run >= 0) this.forward(chunk.subarray(run, offset));
    this.onBytes(payload);
    this.payloadBytes += payload;
  }

  private forward(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (!this.into.write(bytes) && !this.waitingForDrain) {
      // The target reads slower than the source sends: stop reading the source until it drains.
      this.waitingForDrain = true;
      this.loan!.stream.pause();
      this.into.stream!.once('drain', this.onDrain);
    }
  }

  private detach(rest: Buffer): void {
    if (!this.loan?.isHeld) return;
    this.into.stream?.removeListener('drain', this.onDrain);
    this.waitingForDrain = false;
    this.loan.giveBack(rest);
  }

  // node-postgres calls these on the active query once its parser has the socket back.
  handleError(error: Error): void {
    this.stopped = true;
    // The connection broke while the relay held it: pg gets its listener back.
    this.detach(Buffer.alloc(0));
    this.rejectDone(error);
  }

  handleReadyForQuery(): void {
    this.resolveDone();
  }

  handleCommandComplete(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
  handleCopyInResponse(): void {}
}
