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
 * Sync's progress notifications on one session: LISTEN once, then `next` waits for the next
 * one. A notification that arrives between two waits is kept (the latest), so none is missed
 * once `open` returned; what was committed before it is for the caller to read.
 */
export class ProgressListener {
  private latest: SyncProgress | undefined;
  private wake: (() => void) | undefined;
  private readonly onNotification = (message: pg.Notification) => {
    if (message.channel !== PROGRESS_CHANNEL) return;
    const progress = parseProgress(message.payload);
    if (!progress) return;
    this.latest = progress;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  };

  private constructor(private readonly client: pg.Client) {}

  /** Listening once this returns (LISTEN is committed by itself, so a read that follows sees every earlier commit). */
  static async open(client: pg.Client): Promise<ProgressListener> {
    const listener = new ProgressListener(client);
    client.on('notification', listener.onNotification);
    try {
      await client.query(`LISTEN ${PROGRESS_CHANNEL}`);
    } catch (error) {
      client.off('notification', listener.onNotification);
      throw error;
    }
    return listener;
  }

  /**
   * The progress notified since the last call, at once if there is one, else the next within
   * `ms` (undefined if none came: the caller looks for itself then). An abort ends the wait.
   */
  next(ms: number, signal?: AbortSignal): Promise<SyncProgress | undefined> {
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
        const progress = this.latest;
        this.latest = undefined;
        resolve(progress);
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  /** Stops listening; the session stays usable. */
  async close(): Promise<void> {
    this.stopListening();
    await this.client.query(`UNLISTEN ${PROGRESS_CHANNEL}`);
  }

  /** Stops waking anyone, without a round trip: for a session about to be closed (what still arrives is ignored). */
  stopListening(): void {
    this.client.off('notification', this.onNotification);
    this.wake?.();
  }
}
