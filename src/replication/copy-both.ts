import { BACKEND, SocketLoan, type PgConnection } from '../plumbing/index.js';

/**
 * The CopyBoth exchange of START_REPLICATION, read straight off the connection's socket.
 *
 * pg-copy-streams' `both()` did this job as an object-mode Duplex: per message a buffer-list
 * take, a stream push and an event, which cost a catching-up sync more CPU than decoding the
 * changes. Here each socket chunk is cut into CopyData payloads in one loop and handed to a
 * callback; the payloads are views into the chunk (no copy) unless a message spans chunks.
 * Reading one chunk per 'data' event also leaves the event loop free between chunks, so the
 * apply session's answers are not held up behind a backlog arriving.
 *
 * Like pg-copy-streams, it borrows the socket from node-postgres for the duration of the copy:
 * pg's parser is detached, and given the bytes back when the copy ends (CopyDone, or an
 * ErrorResponse, which pg then turns into this query's error).
 */
export interface CopyBothHandlers {
  /**
   * One CopyData message's content: `buffer` from `start` to `end` (offsets, so that the
   * receiver makes the one view it keeps). It stays valid: the socket never reuses a chunk.
   */
  readonly onData: (buffer: Buffer, start: number, end: number) => void;
  /** The copy is over: the server ended it (error undefined) or refused or broke it. */
  readonly onEnd: (error: Error | undefined) => void;
}

const { copyBothResponse: COPY_BOTH_RESPONSE, copyData: COPY_DATA, copyDone: COPY_DONE, errorResponse: ERROR_RESPONSE } = BACKEND;
const { noticeResponse: NOTICE_RESPONSE, parameterStatus: PARAMETER_STATUS, notificationResponse: NOTIFICATION_RESPONSE } = BACKEND;

/** A node-postgres Submittable: `client.query(new CopyBothQuery(text, handlers))`. */
export class CopyBothQuery {
  private connection: PgConnection | undefined;
  private loan: SocketLoan | undefined;
  /** Bytes of a message begun in earlier chunks: a list, joined once the whole message is there. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** Total length (code and length field included) of the incomplete message, once known. */
  private partialNeed = 0;
  private started = false;
  private ended = false;
  private readonly pendingWrites: Buffer[] = [];
  private endedByUs: (() => void) | undefined;

  constructor(
    readonly text: string,
    private readonly handlers: CopyBothHandlers,
  ) {}

  submit(connection: PgConnection): void {
    this.connection = connection;
    this.loan = SocketLoan.take(connection, (chunk) => this.parse(chunk), 'replication');
    connection.query(this.text);
  }

  private parse(chunk: Buffer): void {
    let buffer = chunk;
    let offset = 0;
    if (this.partialBytes > 0) {
      // Finish the message begun in earlier chunks, copying only its own bytes, not the chunk.
      if (this.partialNeed === 0) {
        if (this.partialBytes + chunk.length < 5) {
          this.keepPartial(chunk);
          return;
        }
        const header = Buffer.concat([...this.partial, chunk.subarray(0, 5 - this.partialBytes)]);
        this.partialNeed = 1 + header.readUInt32BE(1);
      }
      const missing = this.partialNeed - this.partialBytes;
      if (chunk.length < missing) {
        this.keepPartial(chunk);
        return;
      }
      this.partial.push(chunk.subarray(0, missing));
      const message = Buffer.concat(this.partial, this.partialNeed);
      this.partial = [];
      this.partialBytes = 0;
      this.partialNeed = 0;
      if (message[0] === COPY_DATA) {
        this.handlers.onData(message, 5, message.length);
        offset = missing;
      } else {
        // Rare (the end of the copy split across chunks): parse the joined bytes the usual way.
        buffer = Buffer.concat([message, chunk.subarray(missing)]);
      }
    }
    while (this.attached) {
      if (buffer.length - offset < 5) break;
      const code = buffer[offset]!;
      const length = buffer.readUInt32BE(offset + 1);
      const end = offset + 1 + length;
      if (end > buffer.length) {
        this.partialNeed = 1 + length;
        break;
      }
      switch (code) {
        case COPY_DATA:
          this.handlers.onData(buffer, offset + 5, end);
          break;
        case COPY_BOTH_RESPONSE:
          this.started = true;
          for (const write of this.pendingWrites.splice(0)) this.connection!.stream.write(write);
          break;
        case NOTICE_RESPONSE:
        case PARAMETER_STATUS:
        case NOTIFICATION_RESPONSE:
          break;
        case COPY_DONE:
          // The server ended the copy; pg reads what follows (CommandComplete, ReadyForQuery).
          this.detach(buffer.subarray(end));
          return;
        case ERROR_RESPONSE:
        default:
          // pg parses the error and hands it to handleError, with the protocol state it expects.
          this.detach(buffer.subarray(offset));
          return;
      }
      offset = end;
    }
    if (offset < buffer.length && this.attached) this.keepPartial(buffer.subarray(offset));
  }

  private keepPartial(bytes: Buffer): void {
    this.partial.push(bytes);
    this.partialBytes += bytes.length;
  }

  private detach(rest: Buffer): void {
    this.loan?.giveBack(rest);
  }

  private get attached(): boolean {
    return this.loan?.isHeld === true;
  }

  /** Sends one CopyData message to the server (a standby status update). */
  write(payload: Buffer): void {
    if (this.ended || this.endedByUs) return;
    const frame = Buffer.allocUnsafe(5 + payload.length);
    frame[0] = COPY_DATA;
    frame.writeUInt32BE(4 + payload.length, 1);
    payload.copy(frame, 5);
    if (this.started) this.connection?.stream.write(frame);
    else this.pendingWrites.push(frame);
  }

  /** Stops reading from the server (backpressure); writes still go out. */
  pause(): void {
    if (this.attached) this.connection?.stream.pause();
  }

  resume(): void {
    if (this.attached) this.connection?.stream.resume();
  }

  /** Ends the copy from our side (CopyDone); resolves once the server has ended it too. */
  end(): Promise<void> {
    if (this.ended || !this.connection) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.endedByUs = resolve;
      this.connection!.stream.write(Buffer.from([COPY_DONE, 0, 0, 0, 4]));
    });
  }

  private finish(error: Error | undefined): void {
    if (this.ended) return;
    this.ended = true;
    if (this.attached) this.detach(Buffer.alloc(0));
    this.endedByUs?.();
    this.handlers.onEnd(error);
  }

  // node-postgres calls these on the active query once its parser has the socket back.
  handleError(error: Error): void {
    this.finish(error);
  }

  handleReadyForQuery(): void {
    this.finish(undefined);
  }

  handleCommandComplete(): void {}
  handleCopyData(): void {}
  handleCopyInResponse(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
}
