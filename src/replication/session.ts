import { EventEmitter } from 'node:events';
import type pg from 'pg';
import { connect, type ConnectionSpec } from '../config/index.js';
import { asError, PgferryError, messageOf } from '../errors.js';
import { closeClient, destroyClient, quoteIdent, quoteLiteral, SQLSTATE, sqlState, TEXT_VALUE_SETTINGS } from '../plumbing/index.js';
import { CopyBothQuery } from './copy-both.js';
import { evaluateInbound, type InboundTimings } from './liveness.js';
import { dateToPostgresTime, formatLsn, parseLsn, type Lsn } from './lsn.js';

/**
 * Settings of the walsender that decodes for pgferry. pgoutput prints every value with the
 * output function of its type in that session, so these decide the text pgferry receives: the
 * pinned value settings (plumbing/value-settings.ts), and an empty search_path so regclass,
 * regtype and the other OID aliases are printed schema-qualified (pg_catalog's objects
 * excepted), and the target resolves them whatever its own search_path.
 */
export const DECODING_SETTINGS: Readonly<Record<string, string>> = {
  ...TEXT_VALUE_SETTINGS,
  search_path: '',
};

/**
 * The streaming replication protocol's messages inside CopyData (pgoutput's own messages travel
 * inside XLogData):
 *   XLogData                 'w' u64(wal_start) u64(wal_end) i64(send_time) byte*(pgoutput message)
 *   Primary keepalive        'k' u64(wal_end) i64(send_time) u8(reply_requested)
 *   Standby status update    'r' u64(written) u64(flushed) u64(applied) i64(send_time) u8(reply_requested)
 */
const XLOG_DATA = 0x77; // w
const XLOG_DATA_HEADER = 25;
const PRIMARY_KEEPALIVE = 0x6b; // k
const PRIMARY_KEEPALIVE_LENGTH = 18;
const KEEPALIVE_REPLY_REQUESTED = 17;
const STANDBY_STATUS_UPDATE = 'r';
const STANDBY_STATUS_LENGTH = 34;

export interface CreatedSlot {
  readonly name: string;
  readonly consistentPoint: Lsn;
  /** Valid while this session stays idle: the next command on the session ends it. */
  readonly snapshot: string | undefined;
}

/** How a slot is made: kept or gone with its session; exporting its snapshot or not. */
export interface SlotKind {
  readonly temporary: boolean;
  readonly snapshot: 'export' | 'none';
}

/**
 * Takes what the server sends on the CopyBoth stream of START_REPLICATION, called directly
 * (no event, no object per message): a backlog is a hundred thousand messages a second.
 */
export interface StreamReceiver {
  /** The pgoutput message of an XLogData message: a view into the socket's chunk. */
  xlogData(payload: Buffer): void;
  /**
   * A primary keepalive: the server's WAL end as the walsender reports it (how far it has read),
   * and its clock when it sent the message (microseconds since 2000-01-01).
   */
  keepalive(walEnd: Lsn, sentAt: bigint): void;
}

export interface StreamTiming {
  /** How often the position is reported (well inside the source's wal_sender_timeout). */
  readonly statusIntervalMs: number;
  readonly inbound: InboundTimings;
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
  private paused = false;
  /** Set by every message; the status timer turns it into `lastHeard` (no clock read per message). */
  private heard = false;
  private lastHeard = Date.now();

  private constructor(private readonly client: pg.Client) {
    super();
  }

  static async open(spec: ConnectionSpec): Promise<ReplicationSession> {
    const { client } = await connect(spec, { replication: 'logical', settings: DECODING_SETTINGS });
    return new ReplicationSession(client);
  }

  /**
   * Creates a logical slot with pgoutput. `persistent` with `export`: the migration's slot and a
   * snapshot exactly at its consistent point. `temporary` (gone with this session) with
   * `export`: a snapshot whose position is known exactly, for copying tables at (the slot itself
   * is never streamed from). `noExport`: the slot alone, holding no snapshot open.
   */
  async createSlot(name: string, kind: SlotKind = { temporary: false, snapshot: 'export' }): Promise<CreatedSlot> {
    // The pre-15 spelling, which every server since 10 accepts.
    const { rows } = await this.command<{ slot_name: string; consistent_point: string; snapshot_name: string | null }>(
      `CREATE_REPLICATION_SLOT ${quoteIdent(name)}${kind.temporary ? ' TEMPORARY' : ''} LOGICAL pgoutput ${kind.snapshot === 'export' ? 'EXPORT_SNAPSHOT' : 'NOEXPORT_SNAPSHOT'}`,
    );
    const row = rows[0]!;
    return { name: row.slot_name, consistentPoint: parseLsn(row.consistent_point), snapshot: row.snapshot_name ?? undefined };
  }

  private async command<R extends pg.QueryResultRow>(text: string): Promise<pg.QueryResult<R>> {
    try {
      return await this.client.query<R>(text);
    } catch (error) {
      throw new PgferryError('query', `source: ${text.split(' ').slice(0, 2).join(' ')} failed: ${messageOf(error)}`, {
        side: 'source',
        cause: error,
      });
    }
  }

  /**
   * Starts streaming from `start` (the first transaction sent is the first to commit after it)
   * with the pgoutput options given. Messages go to `receiver`; 'error' and 'end' events tell
   * that the stream is gone.
   */
  start(slot: string, start: Lsn, pluginOptions: Readonly<Record<string, string>>, timing: StreamTiming, receiver: StreamReceiver): void {
    const options = Object.entries(pluginOptions)
      .map(([key, value]) => `${quoteIdent(key)} ${quoteLiteral(value)}`)
      .join(', ');
    // Nothing is confirmed until the caller says what the target has flushed: `start` is
    // committed on the target, but may not be flushed yet (its commits are asynchronous), and a
    // target crash would then come back behind a slot that had already forgotten those changes.
    // The walsender ignores a position of 0.
    this.position = { flushed: 0n, applied: 0n };
    const stream = new CopyBothQuery(`START_REPLICATION SLOT ${quoteIdent(slot)} LOGICAL ${formatLsn(start)} (${options})`, {
      onData: (buffer, begin, end) => {
        this.heard = true;
        try {
          this.dispatch(buffer, begin, end, receiver);
        } catch (error) {
          this.finish(asError(error));
        }
      },
      onEnd: (error) => this.finish(error),
    });
    this.stream = stream;
    void this.client.query(stream);
    this.client.on('error', (error: Error) => this.finish(error));
    this.client.on('end', () => this.finish(new PgferryError('connection-lost', 'the replication connection closed', { side: 'source' })));
    this.lastHeard = Date.now();
    this.statusTimer = setInterval(() => this.onStatusTimer(timing.inbound), timing.statusIntervalMs);
    this.statusTimer.unref();
  }

  /** Reports the position, and judges the walsender's silence (replication/liveness.ts). */
  private onStatusTimer(timings: InboundTimings): void {
    const now = Date.now();
    if (this.heard) {
      this.heard = false;
      this.lastHeard = now;
    }
    const verdict = evaluateInbound(now - this.lastHeard, this.paused, timings);
    if (verdict === 'lost') {
      const seconds = Math.round((now - this.lastHeard) / 1000);
      this.destroy();
      this.emit(
        'error',
        new PgferryError(
          'connection-lost',
          `source: the replication connection sent nothing for ${seconds} s, not even an answer to a request for one: it is treated as lost`,
          {
            side: 'source',
            fix: 'check the network path to the source (a firewall or NAT may drop idle flows); sync reconnects by itself',
          },
        ),
      );
      return;
    }
    this.sendStatus(verdict === 'ask');
  }

  private finish(error: Error | undefined): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.statusTimer);
    if (error) this.emit('error', explainStreamError(error));
    else this.emit('end');
  }

  /** Stops reading from the server (backpressure); status updates still go out. */
  pause(): void {
    this.paused = true;
    this.stream?.pause();
  }

  resume(): void {
    this.paused = false;
    // Silence while paused was ours: it is judged from now.
    this.lastHeard = Date.now();
    this.stream?.resume();
  }

  /** Records how far the target has durably come; sent with the next status update. */
  acknowledge(position: StreamPosition): void {
    if (position.flushed > this.position.flushed || position.applied > this.position.applied) this.position = position;
  }

  /** A standby status update; with `replyRequested` the server answers with a keepalive at once. */
  sendStatus(replyRequested: boolean): void {
    if (!this.stream || this.ended) return;
    const message = Buffer.alloc(STANDBY_STATUS_LENGTH);
    message.write(STANDBY_STATUS_UPDATE, 0);
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
    await closeClient(this.client);
  }

  /** Closes the socket without a goodbye, for a session that is already broken. */
  destroy(): void {
    clearInterval(this.statusTimer);
    this.ended = true;
    destroyClient(this.client);
  }

  private dispatch(buffer: Buffer, begin: number, end: number, receiver: StreamReceiver): void {
    const kind = buffer[begin];
    if (kind === XLOG_DATA) {
      // Bytes 1-24 are the WAL start, the server's WAL end and its send time: the apply goes by
      // commit positions inside the payload instead.
      if (end - begin < XLOG_DATA_HEADER)
        throw new PgferryError('stream-undecodable', 'source: a short XLogData message', { side: 'source' });
      receiver.xlogData(buffer.subarray(begin + XLOG_DATA_HEADER, end));
      return;
    }
    if (kind === PRIMARY_KEEPALIVE) {
      if (end - begin < PRIMARY_KEEPALIVE_LENGTH)
        throw new PgferryError('stream-undecodable', 'source: a short keepalive message', { side: 'source' });
      if (buffer[begin + KEEPALIVE_REPLY_REQUESTED] === 1) this.sendStatus(false);
      receiver.keepalive(buffer.readBigUInt64BE(begin + 1), buffer.readBigInt64BE(begin + 9));
      return;
    }
    throw new PgferryError('stream-undecodable', `source: unexpected replication message '${String.fromCharCode(kind ?? 0)}'`, {
      side: 'source',
    });
  }
}

/**
 * Errors the walsender raises while decoding, in words a user can act on. A SQL_ASCII source
 * stores any bytes; the walsender converts values to pgferry's UTF-8 and refuses bytes that are
 * not UTF-8 (22021), every time it reaches that change again: sync cannot get past it.
 */
function explainStreamError(error: Error): Error {
  if (sqlState(error) !== SQLSTATE.characterNotInRepertoire) return error;
  const server = error as Error & { where?: string };
  return new PgferryError(
    'stream-undecodable',
    `source: the walsender cannot send a change to pgferry: ${server.message}${server.where ? ` (${server.where.split('\n')[0]})` : ''}`,
    {
      side: 'source',
      fix: 'the source database stores text that is not UTF-8 (a SQL_ASCII database): correct that value on the source, or leave its table out with --exclude-table; pgferry carries values as UTF-8 text and does not alter bytes',
      cause: error,
    },
  );
}
