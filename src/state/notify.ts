import type pg from 'pg';
import { parseLsn, type Lsn } from '../replication/index.js';

/** A running sync listens here (sync/requests.ts), so a cut-over's request reaches it at once rather than at its next poll. */
export const REQUESTS_CHANNEL = 'pgferry_sync_requests';

/**
 * While a cut-over asks for it (state/sync.ts wantProgress), sync notifies here at each batch it
 * commits, in the batch's own statement: the cut-over's waits on the lag and on the fence are
 * woken by the commit itself.
 */
export const PROGRESS_CHANNEL = 'pgferry_sync_progress';

/** Wakes a running sync to read its requests now (call it once the request is committed). */
export async function notifySync(client: pg.Client): Promise<void> {
  await client.query(`SELECT pg_notify($1, '')`, [REQUESTS_CHANNEL]);
}

/** What a progress notification says: sync's row as the batch's commit left it. */
export interface SyncProgress {
  readonly applied: Lsn;
  readonly fence: Lsn | undefined;
  readonly lagMs: number | null;
}

/** The payload state/sync.ts writes ("applied fence lag", '-' for none); undefined when it is not one. Pure. */
export function parseProgress(payload: string | undefined): SyncProgress | undefined {
  const [applied, fence, lag] = (payload ?? '').split(' ');
  if (applied === undefined || fence === undefined || lag === undefined) return undefined;
  try {
    const lagMs = lag === '-' ? null : Number(lag);
    if (lagMs !== null && !Number.isFinite(lagMs)) return undefined;
    return { applied: parseLsn(applied), fence: fence === '-' ? undefined : parseLsn(fence), lagMs };
  } catch {
    return undefined;
  }
}

/**
 * Sync says here when it has set its phase (state/sync.ts setSyncPhase): the cut-over's stop
 * wait (cutover/sync-watch.ts) is woken by the commit that records 'stopped'. The payload is
 * the phase.
 */
export const PHASE_CHANNEL = 'pgferry_sync_phase';

/**
 * One channel's notifications on one session: `next` waits for the next one. A notification
 * that arrives between two waits is kept (the latest), so none is missed from the moment the
 * wait exists on a session that listens; what was committed before it is for the caller to read.
 */
export class NotificationWait<T> {
  private latest: T | undefined;
  private wake: (() => void) | undefined;
  private readonly onNotification = (message: pg.Notification) => {
    if (message.channel !== this.channel) return;
    const parsed = this.parse(message.payload);
    if (parsed === undefined) return;
    this.latest = parsed;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  };

  private constructor(
    private readonly client: pg.Client,
    private readonly channel: string,
    private readonly parse: (payload: string | undefined) => T | undefined,
  ) {
    client.on('notification', this.onNotification);
  }

  /** Listening once this returns (LISTEN is committed by itself, so a read that follows sees every earlier commit). */
  static async listen<T>(
    client: pg.Client,
    channel: string,
    parse: (payload: string | undefined) => T | undefined,
  ): Promise<NotificationWait<T>> {
    const wait = new NotificationWait(client, channel, parse);
    try {
      await client.query(`LISTEN ${channel}`);
    } catch (error) {
      wait.stopListening();
      throw error;
    }
    return wait;
  }

  /**
   * On a session that already listens (`listenFor`, earlier): no round trip, for a wait inside
   * the freeze. Only what arrives from now on wakes it.
   */
  static attach<T>(client: pg.Client, channel: string, parse: (payload: string | undefined) => T | undefined): NotificationWait<T> {
    return new NotificationWait(client, channel, parse);
  }

  /**
   * What was notified since the last call, at once if there is one, else the next within `ms`
   * (undefined if none came: the caller looks for itself then). An abort ends the wait.
   */
  next(ms: number, signal?: AbortSignal): Promise<T | undefined> {
    const taken = this.latest;
    if (taken !== undefined) {
      this.latest = undefined;
      return Promise.resolve(taken);
    }
    if (signal?.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.wake = undefined;
        const value = this.latest;
        this.latest = undefined;
        resolve(value);
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  /** Stops listening; the session stays usable. */
  async close(): Promise<void> {
    this.stopListening();
    await this.client.query(`UNLISTEN ${this.channel}`);
  }

  /** Stops waking anyone, without a round trip: for a session about to be closed or listening on (what still arrives is ignored). */
  stopListening(): void {
    this.client.off('notification', this.onNotification);
    this.wake?.();
  }
}

/** Sync's progress notifications (PROGRESS_CHANNEL) on one session. */
export type ProgressListener = NotificationWait<SyncProgress>;

export const ProgressListener = {
  /** Listening once this returns. */
  open: (client: pg.Client): Promise<ProgressListener> => NotificationWait.listen(client, PROGRESS_CHANNEL, parseProgress),
};

/** Sync's phase notifications (PHASE_CHANNEL) on one session. */
export type PhaseListener = NotificationWait<string>;

export const PhaseListener = {
  /** Makes `client` listen for sync's phase, before the wait that needs it (one round trip). */
  prepare: async (client: pg.Client): Promise<void> => {
    await client.query(`LISTEN ${PHASE_CHANNEL}`);
  },
  /** A wait on a session `prepare` made listen: no round trip. */
  attach: (client: pg.Client): PhaseListener => NotificationWait.attach(client, PHASE_CHANNEL, (payload) => payload || undefined),
};
