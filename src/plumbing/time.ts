/**
 * Waiting, always with an end: a sleep that an abort cuts short (and that leaves no listener
 * behind, however often it is called on one signal), a poll with a deadline, a deadline
 * around any promise, and a round of work repeated on a timer that never overlaps itself.
 */

/** Resolves after `ms`, or at once when `signal` aborts; never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Thrown by `pollUntil` and `withDeadline` when time runs out; `what` says what was awaited. */
export class DeadlineExceeded extends Error {
  constructor(
    readonly what: string,
    readonly ms: number,
  ) {
    super(`${what}: no answer within ${Math.round(ms / 100) / 10} s`);
    this.name = 'DeadlineExceeded';
  }
}

export interface PollOptions {
  readonly timeoutMs: number;
  readonly everyMs: number;
  /** For the error when time runs out. */
  readonly what?: string;
  readonly signal?: AbortSignal;
}

/** Asks `check` every `everyMs` until it says true; throws DeadlineExceeded past `timeoutMs`. */
export async function pollUntil(check: () => Promise<boolean>, options: PollOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (await check()) return;
    if (options.signal?.aborted) throw options.signal.reason instanceof Error ? options.signal.reason : new Error('aborted');
    if (Date.now() >= deadline) throw new DeadlineExceeded(options.what ?? 'waiting', options.timeoutMs);
    await sleep(Math.min(options.everyMs, Math.max(0, deadline - Date.now())), options.signal);
  }
}

/**
 * `work`, or DeadlineExceeded after `ms` (then `onExpired` runs, to cut what still waits: a
 * connection destroyed makes its query fail). The work's own later failure is not unhandled.
 */
export async function withDeadline<T>(work: Promise<T>, ms: number, what: string, onExpired?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onExpired?.();
      reject(new DeadlineExceeded(what, ms));
    }, ms);
  });
  work.catch(() => undefined);
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** A repetition started by `repeatEvery`. */
export interface Repetition {
  /** Ends the repetition and waits for a round in flight (bound that wait with a deadline of your own). */
  stop(): Promise<void>;
}

/**
 * Runs `work` every `ms`, never two at once: a tick that finds the last round still running is
 * skipped. The interval also goes into `timers`, for a caller that clears all its timers when
 * it fails without stopping. `work` handles its own failures: it must not reject.
 */
export function repeatEvery(ms: number, timers: NodeJS.Timeout[], work: () => Promise<void>): Repetition {
  let inFlight: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (inFlight) return;
    inFlight = work().finally(() => (inFlight = undefined));
  }, ms);
  timers.push(timer);
  return {
    async stop() {
      clearInterval(timer);
      await inFlight;
    },
  };
}
