/**
 * A migration driven from a TypeScript program, through pgferry's published entry point only:
 * the preflight, `sync` until the target has caught up, a cut-over with the way back left out,
 * and a last verification of every row. It is what `pgferry check`, `sync`, `cutover` and
 * `verify` do, with the reports as typed values.
 *
 *   PGFERRY_SOURCE=postgres://… PGFERRY_TARGET=postgres://… node dist/examples/migrate.js
 *
 * Connection strings come from the environment (or a .pgpass), never from argv, where `ps`
 * would show a password. Exit status 0 when the target holds exactly the source's rows.
 */
import {
  createLogger,
  cutover,
  EVERYTHING,
  LogProgress,
  PgferryError,
  readStatusReport,
  resolveConnection,
  runCheck,
  sync,
  verify,
  withConnection,
  type CheckReport,
  type ConnectionSpec,
  type CutoverReport,
  type SyncOptions,
} from 'pgferry';

async function main(): Promise<number> {
  const logger = createLogger({ level: 'warn' });
  const source = await resolveConnection('source', undefined);
  const target = await resolveConnection('target', undefined);

  // 1. Preflight: read-only, nothing changes. Errors block; warnings are worth a look.
  const check: CheckReport = await runCheck({ source, target, filter: EVERYTHING, logger });
  for (const finding of check.findings.filter((f) => f.severity !== 'info')) console.log(`${finding.severity}: ${finding.message}`);
  if (!check.ready) return 3;

  // 2. The copy at a slot's snapshot, then every change since, until caught up.
  const options: SyncOptions = {
    source,
    target,
    filter: EVERYTHING,
    name: undefined,
    untilCaughtUp: true,
    dropExisting: false,
    maxRetainedWal: 10 * 1024 ** 3,
    memoryLimit: 256 * 1024 ** 2,
    maxBatchChanges: 100_000,
    ddl: 'apply',
    skipDdlAt: undefined,
    clone: {
      jobs: 2,
      indexJobs: 2,
      splitThreshold: 256 * 1024 ** 2,
      noOwner: false,
      noAcl: false,
      createRoles: false,
      targetSetup: undefined,
      progress: new LogProgress(logger),
    },
    logger,
  };
  const synced = await sync(options);
  console.log(`synced migration ${synced.name}: ${synced.cloned ? `${synced.cloned.tables.length} tables copied, ` : ''}caught up`);

  // 3. The cut-over needs sync streaming beside it: a second sync runs until the cut-over stops it.
  const streaming = sync({ ...options, untilCaughtUp: false });
  await untilStreaming(target);
  const report: CutoverReport = await cutover({
    source,
    target,
    filter: EVERYTHING,
    freeze: 'read-only',
    roles: [],
    maxLagSeconds: 5,
    catchUpTimeoutMs: 120_000,
    drainTimeoutMs: 10_000,
    fenceTimeoutMs: 30_000,
    sequenceMargin: 0n,
    verify: 'counts',
    unfreezeSource: true,
    fallback: false,
    logger,
  });
  await streaming;
  console.log(`cut over: writes frozen ${Math.round(report.downtimeMs)} ms, fence ${report.fenceLsn}`);

  // 4. Every row, by content.
  const verified = await verify({ source, target, filter: EVERYTHING, mode: 'full', logger });
  console.log(verified.identical ? 'verified: identical' : 'verified: DIFFERENT');
  return verified.identical ? 0 : 4;
}

/** Waits (at most a minute) until the target records a sync streaming with its lag measured. */
async function untilStreaming(target: ConnectionSpec): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const report = await withConnection(target, ({ client }) => readStatusReport(client));
    if (report?.json.syncRunning && report.json.phase === 'streaming' && report.json.lagSeconds !== null) return;
    if (Date.now() > deadline) throw new Error('sync did not start streaming within a minute');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof PgferryError ? `${error.code}: ${error.message}${error.fix ? ` — ${error.fix}` : ''}` : error);
    process.exit(1);
  },
);
