import { EventEmitter } from 'node:events';
import type pg from 'pg';
import { connect, type ConnectionSpec } from '../config/index.js';
import { PgferryError, messageOf } from '../errors.js';
import { CopyBothQuery } from './copy-both.js';
import { dateToPostgresTime, formatLsn, parseLsn, type Lsn } from './lsn.js';

/**
 * Settings of the walsender that decodes for pgferry. pgoutput prints every value with the
 * output function of its type in that session, so these decide the text pgferry receives:
 * ISO dates, PostgreSQL interval style and floats printed exactly parse the same on any target;
 * money is printed without a locale's symbols and separators; and with an empty search_path,
 * regclass, regtype and the other OID aliases are printed schema-qualified (pg_catalog's
 * objects excepted), so the target resolves them whatever its own search_path.
 */
export const DECODING_SETTINGS: Readonly<Record<string, string>> = {
  datestyle: 'ISO, YMD',
  intervalstyle: 'postgres',
  extra_float_digits: '3',
  bytea_output: 'hex',
  timezone: 'UTC',
  lc_monetary: 'C',
  search_path: '',
};

export interface CreatedSlot {
  readonly name: string;
  readonly consistentPoint: Lsn;
  /** Valid while this session stays idle: the next command on the session ends it. */
  readonly snapshot: string | undefined;
}

/**
 * Takes what the server sends on the CopyBoth stream of START_REPLICATION, called directly
 * (no event, no object per message): a backlog is a hundred thousand messages a second.
 */
export interface StreamReceiver {
  /** The pgoutput message of an XLogData message: a view into the socket's chunk. */
  xlogData(payload: Buffer): void;
  /** The server's WAL end, from a primary keepalive message. */
  keepalive(walEnd: Lsn): void;
}

export interface StreamPosition {
  /** Everything up to here is committed (and flushed) on the target. */
  readonly flushed: Lsn;
  readonly applied: Lsn;
}

export interface ReplicationEvents {
  error: [Error];
  end: [];
}

/**
 * A walsender session on the source: creates the slot, then streams from it. The session
 * never acknowledges anything by itself: the caller says what is flushed on the target, and
 * the session reports exactly that, on its own timer well inside wal_sender_timeout.
 */
export class ReplicationSession extends EventEmitter<ReplicationEvents> {
  private stream: CopyBothQuery | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private position: StreamPosition = { flushed: 0n, applied: 0n };
  private ended = false;

  private constructor(private readonly client: pg.Client) {
    super();
  }

  static async open(spec: ConnectionSpec): Promise<ReplicationSession> {
    const { client } = await connect(spec, { replication: true, settings: DECODING_SETTINGS });
    return new ReplicationSession(client);
  }

  /** Creates a persistent logical slot with pgoutput and exports its snapshot. */
  async createSlot(name: string): Promise<CreatedSlot> {
    // The pre-15 spelling, which every server since 10 accepts.
    const { rows } = await this.command<{ slot_name: string; consistent_point: string; snapshot_name: string | null }>(
      `CREATE_REPLICATION_SLOT "${name}" LOGICAL pgoutput EXPORT_SNAPSHOT`,
    );
    const row = rows[0]!;
    return { name: row.slot_name, consistentPoint: parseLsn(row.consistent_point), snapshot: row.snapshot_name ?? undefined };
  }

  private async command<R extends pg.QueryResultRow>(text: string): Promise<pg.QueryResult<R>> {
    try {
      return await this.client.query<R>(text);
    } catch (error) {
      throw new PgferryError('query', `source: ${text.split(' ').slice(0, 2).join(' ')} failed: ${messageOf(error)}`, { side: 'source', cause: error });
    }
  }

  /**
   * Starts streaming from `start` (the first transaction sent is the first to commit after it)
   * with the pgoutput options given. Messages go to `receiver`; 'error' and 'end' events tell
   * that the stream is gone.
   */
  start(slot: string, start: Lsn, pluginOptions: Readonly<Record<string, string>>, statusIntervalMs: number, receiver: StreamReceiver): void {
    const options = Object.entries(pluginOptions)
      .map(([key, value]) => `"${key}" '${value.replace(/'/g, "''")}'`)
      .join(', ');
    // Nothing is confirmed until the caller says what the target has flushed: `start` is
    // committed on the target, but may not be flushed yet (its commits are asynchronous), and a
    // target crash would then come back behind a slot that had already forgotten those changes.
    // The walsender ignores a position of 0.
    this.position = { flushed: 0n, applied: 0n };
    const stream = new CopyBothQuery(`START_REPLICATION SLOT "${slot}" LOGICAL ${formatLsn(start)} (${options})`, {
      onData: (buffer, begin, end) => {
        try {
          this.dispatch(buffer, begin, end, receiver);
        } catch (error) {
          this.finish(error instanceof Error ? error : new Error(String(error)));
        }
      },
      onEnd: (error) => this.finish(error),
    });
    this.stream = stream;
    void this.client.query(stream as unknown as pg.Submittable);
    this.client.on('error', (error: Error) => this.finish(error));
    this.client.on('end', () => this.finish(new Error('the replication connection closed')));
    this.statusTimer = setInterval(() => this.sendStatus(false), statusIntervalMs);
    this.statusTimer.unref();
  }

  private finish(error: Error | undefined): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.statusTimer);
    if (error) this.emit('error', error);
    else this.emit('end');
  }

  /** Stops reading from the server (backpressure); status updates still go out. */
  pause(): void {
    this.stream?.pause();
  }

  resume(): void {
    this.stream?.resume();
  }

  /** Records how far the target has durably come; sent with the next status update. */
  acknowledge(position: StreamPosition): void {
    if (position.flushed > this.position.flushed || position.applied > this.position.applied) this.position = position;
  }

  /** A standby status update; with `replyRequested` the server answers with a keepalive at once. */
  sendStatus(replyRequested: boolean): void {
    if (!this.stream || this.ended) return;
    const message = Buffer.alloc(34);
    message.write('r', 0);
    message.writeBigUInt64BE(this.position.flushed, 1); // written
    message.writeBigUInt64BE(this.position.flushed, 9); // flushed
    message.writeBigUInt64BE(this.position.applied, 17); // applied
    message.writeBigInt64BE(dateToPostgresTime(new Date()), 25);
    message.writeUInt8(replyRequested ? 1 : 0, 33);
    this.stream.write(message);
  }

  /** Sends the last acknowledgement, ends the copy and closes the session. */
  async close(): Promise<void> {
    clearInterval(this.statusTimer);
    const stream = this.stream;
    if (stream && !this.ended) {
      this.sendStatus(false);
      this.ended = true;
      await Promise.race([stream.end(), new Promise<void>((resolve) => setTimeout(resolve, 5000).unref())]);
    }
    this.ended = true;
    await this.client.end().catch(() => undefined);
  }

  /** Closes the socket without a goodbye, for a session that is already broken. */
  destroy(): void {
    clearInterval(this.statusTimer);
    this.ended = true;
    (this.client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  }

  private dispatch(buffer: Buffer, begin: number, end: number, receiver: StreamReceiver): void {
    const kind = buffer[begin];
    if (kind === 0x77 /* w */) {
      // Bytes 1-24 are the WAL start, the server's WAL end and its send time: the apply goes by
      // commit positions inside the payload instead.
      if (end - begin < 25) throw new PgferryError('query', 'source: a short XLogData message', { side: 'source' });
      receiver.xlogData(buffer.subarray(begin + 25, end));
      return;
    }
    if (kind === 0x6b /* k */) {
      if (end - begin < 18) throw new PgferryError('query', 'source: a short keepalive message', { side: 'source' });
      if (buffer[begin + 17] === 1) this.sendStatus(false);
      receiver.keepalive(buffer.readBigUInt64BE(begin + 1));
      return;
    }
    throw new PgferryError('query', `source: unexpected replication message '${String.fromCharCode(kind ?? 0)}'`, { side: 'source' });
  }
}
