import { Command } from 'commander';
import { migrate as runMigrate } from '../migrate/index.js';
import { createLogger } from '../log/index.js';
import { addCutoverOptions, cutoverSettingsFrom, printCutoverReport, type CutoverFlags } from './cutover.js';
import { EXIT } from './exit-codes.js';
import { addConnectionOptions, addFilterOptions, parseChoice } from './options.js';
import { abortOnSignals } from './signals.js';
import { addListenOption, metered, observing } from './listen.js';
import { addSyncOptions, printSyncSummary, syncOptionsFrom, syncSummaryJson, type SyncFlags } from './sync.js';
import { printOut } from './terminal.js';

interface MigrateFlags extends SyncFlags, CutoverFlags {
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
  return command;
}

export async function migrate(flags: MigrateFlags): Promise<number> {
  const when = parseChoice(flags.cutover, '--cutover', ['auto', 'manual'] as const);
  const settings = cutoverSettingsFrom(flags);
  const log = createLogger({ level: flags.debug ? 'debug' : 'info' });
  // A second signal must not cut the cut-over's lift of the freeze short: it is ignored here.
  const signals = abortOnSignals(log, 'stopping: sync stops cleanly, a cut-over under way lifts its freeze', 'ignore');
  try {
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
