import type { Logger } from '../log/index.js';

/** What a second SIGINT or SIGTERM does while the first one's clean stop is under way. */
export type SecondSignal =
  /** Stop at once: the clean stop is a courtesy, and nothing is lost without it (sync). */
  | 'exit'
  /** The default action: the process ends (the cut-over's own handling comes with issue 14). */
  | 'default';

/**
 * SIGINT and SIGTERM turn into an abort the running step handles itself (a clean stop, an
 * unfreeze), instead of killing the process with half the work done.
 */
export function abortOnSignals(log: Logger, what: string, second: SecondSignal = 'default'): { signal: AbortSignal; release: () => void } {
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (!stop.signal.aborted) {
      log.info({ signal }, what);
      stop.abort();
      if (second === 'default') {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      return;
    }
    log.warn({ signal }, 'second signal: stopping at once, without finishing cleanly (nothing is lost: the next run continues from the position the target recorded)');
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: stop.signal,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
