import { LogProgress } from '../copy/index.js';
import { usageError } from '../errors.js';
import { carryGlobals, type DatabaseFilter, type GlobalsReport } from '../instance/index.js';
import type { Logger } from '../log/index.js';
import { InstanceMetrics, parseListen, StatusServer } from '../observe/index.js';
import { Permits } from '../plumbing/index.js';
import { syncAllDatabases, type DatabaseSync, type DatabaseSyncOutcome, type SyncOptions } from '../sync/index.js';
import { databasePairs, type DatabasePair } from './all-databases.js';
import { EXIT } from './exit-codes.js';
import { metered } from './listen.js';
import { syncOptionsFrom, syncSummaryJson, type SyncFlags } from './sync-options.js';
import { printOut } from './terminal.js';

/**
 * `sync --all-databases`: one sync per database of the source's instance, in this process. Each
 * has its own slot, publication and state (named after its database); they share the process's
 * limits: `--memory-limit` is split evenly between the databases' streams, `--jobs` COPY pipes
 * are shared by the copies running at once, `--index-jobs` is split between the databases.
 */
export async function syncEveryDatabase(flags: SyncFlags, filter: DatabaseFilter, log: Logger, signal: AbortSignal): Promise<number> {
  const instance = await everyDatabaseSync(flags, filter, log, signal);
  try {
    printSyncSummaries(await syncAllDatabases(instance.runs, signal, log), flags.json === true);
  } finally {
    await instance.close();
  }
  return EXIT.ok;
}

/** The syncs of `--all-databases` (sync's and migrate's), with the status server of `--listen` serving them all. */
export interface EveryDatabaseSync {
  readonly runs: readonly DatabaseSync[];
  /** Stops the status server, if any. */
  close(): Promise<void>;
}

export async function everyDatabaseSync(
  flags: SyncFlags,
  filter: DatabaseFilter,
  log: Logger,
  signal: AbortSignal,
): Promise<EveryDatabaseSync> {
  if (flags.name !== undefined)
    throw usageError(
      '--name names one migration: with --all-databases each database has its own, named after the database',
      'leave --name out',
    );
  const base = await syncOptionsFrom(flags, log, signal);
  const pairs = await databasePairs(base.source, base.target, filter);
  // The target's databases and the roles that own them exist before any sync connects to them (a rerun does nothing).
  const globals = await carryGlobals(
    base.source,
    base.target,
    pairs.map((p) => p.database),
    { tablespaceLocations: flags.tablespaceLocation ?? [] },
  );
  logGlobals(globals, log);
  log.info({ databases: pairs.map((p) => p.database) }, 'one sync per database');
  const metrics = flags.listen === undefined ? undefined : new InstanceMetrics(pairs.map((p) => p.database));
  const permits = new Permits(base.clone.jobs);
  const runs: DatabaseSync[] = pairs.map((pair) => {
    const options = shareOf(base, pair, pairs.length, permits, log.child({ database: pair.database }));
    return { database: pair.database, options: metered(options, metrics?.of(pair.database)) };
  });
  const server =
    metrics && flags.listen !== undefined
      ? await StatusServer.listenAll(parseListen(flags.listen), new Map(pairs.map((p) => [p.database, p.target])), metrics, log)
      : undefined;
  return { runs, close: async () => server?.close() };
}

/** One database's sync: its connections, its logger, and its share of the process's limits. */
function shareOf(base: SyncOptions, pair: DatabasePair, count: number, permits: Permits, logger: Logger): SyncOptions {
  return {
    ...base,
    source: pair.source,
    target: pair.target,
    memoryLimit: Math.max(1, Math.floor(base.memoryLimit / count)),
    logger,
    clone: {
      ...base.clone,
      indexJobs: Math.max(1, Math.ceil(base.clone.indexJobs / count)),
      permits,
      // Progress bars of several copies would overwrite each other: each database logs its own.
      progress: new LogProgress(logger),
    },
  };
}

export function printSyncSummaries(outcomes: readonly DatabaseSyncOutcome[], json: boolean): void {
  if (json) {
    printOut(`${JSON.stringify({ databases: syncOutcomesJson(outcomes) }, null, 2)}\n`);
    return;
  }
  const lines = outcomes.map((o) =>
    o.stopped
      ? `${o.database}: sync ${o.summary.name} stopped (${o.summary.stoppedBecause}) at ${o.summary.appliedLsn}: ${o.summary.transactions} transactions, ${o.summary.rows} row changes applied${o.summary.reconnects > 0 ? `, ${o.summary.reconnects} reconnects` : ''}.`
      : `${o.database}: did not stop in time (the next sync continues where it was).`,
  );
  printOut(`${lines.join('\n')}\n`);
}

function logGlobals(report: GlobalsReport, log: Logger): void {
  if (report.created.length + report.altered.length > 0)
    log.info({ created: report.created, altered: report.altered }, "the instance's global objects carried to the target");
  for (const warning of report.warnings) log.warn(warning);
  if (report.passwordsToSet.length > 0)
    log.warn(
      { roles: report.passwordsToSet },
      "the source's password verifiers are not readable (pg_authid): set these roles' passwords on the target",
    );
}

/** Each database's sync summary as `--json` prints it. */
export function syncOutcomesJson(outcomes: readonly DatabaseSyncOutcome[]): Array<Record<string, unknown>> {
  return outcomes.map((o) =>
    o.stopped ? { database: o.database, ...syncSummaryJson(o.summary) } : { database: o.database, stopped: false },
  );
}
