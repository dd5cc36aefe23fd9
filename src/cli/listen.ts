import type { Command } from 'commander';
import type { ConnectionSpec } from '../config/index.js';
import type { Logger } from '../log/index.js';
import { MeteredProgress, MigrationMetrics, parseListen, StatusServer } from '../observe/index.js';
import type { SyncOptions } from '../sync/index.js';

/** `--listen` on clone, sync and migrate. */
export function addListenOption(command: Command): Command {
  return command.option(
    '--listen <[host:]port>',
    'serve a status page at /, Prometheus metrics at /metrics and /status.json (host 127.0.0.1 unless given)',
  );
}

/**
 * Runs `work` with the status server up when `--listen` was given (and its metrics handed to
 * the work), and closes the server when the work ends, however it ends.
 */
export async function observing<T>(
  listen: string | undefined,
  target: ConnectionSpec,
  log: Logger,
  work: (metrics: MigrationMetrics | undefined) => Promise<T>,
): Promise<T> {
  if (listen === undefined) return work(undefined);
  const address = parseListen(listen);
  const metrics = new MigrationMetrics();
  const server = await StatusServer.listen(address, target, metrics, log);
  try {
    return await work(metrics);
  } finally {
    await server.close();
  }
}

/** Sync's options with the metrics threaded through: its monitor and its initial copy's progress. */
export function metered(options: SyncOptions, metrics: MigrationMetrics | undefined): SyncOptions {
  if (!metrics) return options;
  return { ...options, metrics, clone: { ...options.clone, progress: new MeteredProgress(options.clone.progress, metrics) } };
}
