import type { Logger } from '../log/index.js';

/** What a second signal does while the first one's clean stop is under way. */
export type SecondSignal =
  /** Stop at once: the clean stop is a courtesy, and nothing is lost without it (sync). */
  | 'exit'
  /** Ignored, and said so: what the first one started must finish (the cut-over lifting a freeze). */
  | 'ignore';

/**
 * SIGINT, SIGTERM and SIGHUP (a closed terminal, an SSH session gone) turn into an abort the
 * running step handles itself (a clean stop, an unfreeze), instead of killing the process with
 * half the work done.
 */
const STOPPING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const EXIT_CODES: Record<(typeof STOPPING_SIGNALS)[number], number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

export function abortOnSignals(log: Logger, what: string, second: SecondSignal): { signal: AbortSignal; release: () => void } {
  const stop = new AbortController();
  const onSignal = (signal: (typeof STOPPING_SIGNALS)[number]) => {
    if (!stop.signal.aborted) {
      log.info({ signal }, what);
      stop.abort();
      return;
    }
    if (second === 'ignore') {
      log.warn(
        { signal },
        'already stopping: this signal is ignored until the source is safe (SIGKILL would stop at once and could leave it frozen)',
      );
      return;
    }
    log.warn(
      { signal },
      'second signal: stopping at once, without finishing cleanly (nothing is lost: the next run continues from the position the target recorded)',
    );
    process.exit(EXIT_CODES[signal]);
  };
  for (const name of STOPPING_SIGNALS) process.on(name, onSignal);
  return {
    signal: stop.signal,
    release: () => {
      for (const name of STOPPING_SIGNALS) process.off(name, onSignal);
    },
  };
}
