import type { Socket } from 'node:net';

/**
 * A COPY read straight off the wire: node-postgres's parser is detached from the connection's
 * socket for the copy, and given the socket back, with the bytes that follow the copy, when it
 * ends (CopyDone, or an ErrorResponse, which pg then turns into the query's error). The change
 * stream (replication/copy-both.ts) and the copy (copy/copy-relay.ts) read their CopyData this
 * way: pg-copy-streams made a Buffer and a stream push of every message.
 */

/** The slice of pg's Connection a Submittable that reads the socket itself uses. */
export interface PgConnection {
  readonly stream: Socket;
  query(text: string): void;
}

/** Backend message codes such a reader meets (PostgreSQL's protocol, section "Message Formats"). */
export const BACKEND = {
  copyData: 0x64, // d
  copyDone: 0x63, // c
  copyOutResponse: 0x48, // H
  copyBothResponse: 0x57, // W
  errorResponse: 0x45, // E
  noticeResponse: 0x4e, // N
  parameterStatus: 0x53, // S
  notificationResponse: 0x41, // A
} as const;

/** The socket of a pg connection, taken from pg's parser until `giveBack`. */
export class SocketLoan {
  private held = true;

  private constructor(
    readonly stream: Socket,
    private readonly pgDataHandler: (chunk: Buffer) => void,
    private readonly onChunk: (chunk: Buffer) => void,
  ) {}

  /** Takes the socket: its chunks go to `onChunk` instead of pg's parser. */
  static take(connection: PgConnection, onChunk: (chunk: Buffer) => void, what: string): SocketLoan {
    const stream = connection.stream;
    // Node types every listener as Function; pg's one 'data' listener takes the socket's chunks.
    // eslint-disable-next-line @typescript-eslint/no-unsafe-type-assertion -- see the line above
    const listeners = stream.listeners('data') as Array<(chunk: Buffer) => void>;
    if (listeners.length !== 1) throw new Error(`the ${what} connection has ${listeners.length} data listeners, expected pg's one`);
    const pgDataHandler = listeners[0]!;
    stream.removeListener('data', pgDataHandler);
    stream.on('data', onChunk);
    return new SocketLoan(stream, pgDataHandler, onChunk);
  }

  /** Whether the socket is still taken. */
  get isHeld(): boolean {
    return this.held;
  }

  /**
   * Gives pg its parser back, with `rest` (what followed the copy in the last chunk), and
   * resumes the socket, which may be paused for backpressure: pg needs to read the end of the
   * exchange. Once only.
   */
  giveBack(rest: Buffer): void {
    if (!this.held) return;
    this.held = false;
    this.stream.removeListener('data', this.onChunk);
    this.stream.on('data', this.pgDataHandler);
    if (rest.length > 0) this.pgDataHandler(rest);
    this.stream.resume();
  }
}
