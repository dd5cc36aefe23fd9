import { Command } from 'commander';
import { migrate as runMigrate, migrateAllDatabases, type MigrateCutoverSettings } from '../migrate/index.js';
import { createLogger } from '../log/index.js';
import { addCutoverOptions, cutoverSettingsFrom, printCutoverReport, type CutoverFlags } from './cutover.js';
import { EXIT } from './exit-codes.js';
import {
  addConnectionOptions,
  addFilterOptions,
  addGlobalsOptions,
  addInstanceOptions,
  instanceFrom,
  parseChoice,
  type InstanceFlags,
} from './options.js';
import type { Logger } from '../log/index.js';
import type { DatabaseFilter } from '../instance/index.js';
import { everyDatabaseSync, printSyncSummaries, syncOutcomesJson } from './sync-all.js';
import { printInstanceCutoverReport } from './cutover.js';
import { abortOnSignals } from './signals.js';
import { addListenOption, metered, observing } from './listen.js';
import { addSyncOptions, printSyncSummary, syncOptionsFrom, syncSummaryJson, type SyncFlags } from './sync-options.js';
import { printOut } from './terminal.js';

interface MigrateFlags extends SyncFlags, CutoverFlags, InstanceFlags {
  cutover: string;
}

export function migrateCommand(): Command {
  const command = new Command('migrate')
    .description(
      'the whole migration: clone, sync, and cut over by itself once caught up (or wait for pgferry cutover with --cutover manual)',
    )
    .option(
      '--cutover <when>',
      'auto: cut over as soon as sync is within --max-lag; manual: keep syncing until pgferry cutover is run',
      'auto',
    )
    .option('--json', 'print the reports as JSON');
  addSyncOptions(command);
  addCutoverOptions(command);
  addListenOption(command);
  addConnectionOptions(command);
  addFilterOptions(command);
  addInstanceOptions(command);
  addGlobalsOptions(command);
  return command;
}

export async function migrate(flags: MigrateFlags): Promise<number> {
  const when = parseChoice(flags.cutover, '--cutover', ['auto', 'manual'] as const);
  const settings = cutoverSettingsFrom(flags);
  const log = createLogger({ level: flags.debug ? 'debug' : 'info' });
  // A second signal must not cut the cut-over's lift of the freeze short: it is ignored here.
  const signals = abortOnSignals(log, 'stopping: sync stops cleanly, a cut-over under way lifts its freeze', 'ignore');
  try {
    const instance = instanceFrom(flags);
    if (instance) return await migrateEveryDatabase(flags, instance, when === 'auto' ? settings : undefined, log, signals.signal);
    const sync = await syncOptionsFrom({ ...flags, untilCaughtUp: false }, log, signals.signal);
    if (when === 'manual') log.info('--cutover manual: syncing until pgferry cutover is run against this target');
    const report = await observing(flags.listen, sync.target, log, (metrics) =>
      runMigrate({ sync: metered(sync, metrics), cutover: when === 'auto' ? settings : undefined }),
    );
    if (flags.json) {
      printOut(`${JSON.stringify({ sync: syncSummaryJson(report.sync), cutover: report.cutover ?? null }, null, 2)}\n`);
      return EXIT.ok;
    }
    printSyncSummary(report.sync, false);
    if (report.cutover) printCutoverReport(report.cutover, false, log);
    return EXIT.ok;
  } finally {
    signals.release();
  }
}

/** `migrate --all-databases`: the globals and every database's sync (as sync --all-databases), then one cut-over of them all. */
async function migrateEveryDatabase(
  flags: MigrateFlags,
  filter: DatabaseFilter,
  settings: MigrateCutoverSettings | undefined,
  log: Logger,
  signal: AbortSignal,
): Promise<number> {
  const instance = await everyDatabaseSync({ ...flags, untilCaughtUp: false }, filter, log, signal);
  try {
    if (!settings) log.info('--cutover manual: syncing every database until pgferry cutover --all-databases is run against this target');
    const report = await migrateAllDatabases({ runs: instance.runs, cutover: settings, logger: log, signal });
    if (flags.json) {
      printOut(`${JSON.stringify({ syncs: syncOutcomesJson(report.syncs), cutover: report.cutover ?? null }, null, 2)}\n`);
      return EXIT.ok;
    }
    printSyncSummaries(report.syncs, false);
    if (report.cutover) printInstanceCutoverReport(report.cutover, false, log);
    return EXIT.ok;
  } finally {
    await instance.close();
  }
}
