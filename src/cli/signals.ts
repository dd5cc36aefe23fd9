import type { Logger } from '../log/index.js';

/**
 * SIGINT and SIGTERM turn into an abort the running step handles itself (a clean stop, an
 * unfreeze), instead of killing the process with half the work done.
 */
export function abortOnSignals(log: Logger, what: string): { signal: AbortSignal; release: () => void } {
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    log.info({ signal }, what);
    stop.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    signal: stop.signal,
    release: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
