import { Command } from 'commander';
import { createLogger, type Logger } from '../log/index.js';
import { sync as runSync } from '../sync/index.js';
import { addListenOption, metered, observing } from './listen.js';
import { EXIT } from './exit-codes.js';
import { addConnectionOptions, addFilterOptions, addGlobalsOptions, addInstanceOptions, instanceFrom } from './options.js';
import { syncEveryDatabase } from './sync-all.js';
import { addSyncOptions, printSyncSummary, syncOptionsFrom, type SyncFlags } from './sync-options.js';
import { abortOnSignals } from './signals.js';
import { addPhysicalOptions, refusePhysicalFlagsAlone, syncPhysicalCommand, type PhysicalFlags } from './physical.js';

export function syncCommand(): Command {
  const command = new Command('sync')
    .description(
      'copy the schema and each table at a snapshot of its own (when the target has no copy yet), then apply every committed change until stopped',
    )
    .option('--until-caught-up', 'stop once everything committed on the source when streaming began is on the target')
    .option('--json', 'print the summary as JSON when sync stops');
  addSyncOptions(command);
  addListenOption(command);
  addConnectionOptions(command);
  addFilterOptions(command);
  addInstanceOptions(command);
  addGlobalsOptions(command);
  addPhysicalOptions(command, 'sync');
  command.addHelpText(
    'after',
    '\nWith --all-databases: the instance’s roles (with their passwords), tablespaces and databases are carried first (as pgferry globals does), then one sync per database in this process, each with its own slot, publication and state; --memory-limit is split evenly between the databases, --jobs COPY pipes are shared by their copies, --index-jobs is split between them; a failure in one database stops them all (docs/steps/all-databases.md).',
  );
  return command;
}

/** SIGINT and SIGTERM stop cleanly: the batch in flight commits, then the slot is acknowledged. */
export function stopOnSignals(log: Logger): { signal: AbortSignal; release: () => void } {
  return abortOnSignals(
    log,
    'stopping: the batch in flight commits, then the slot is acknowledged (a second signal stops at once)',
    'exit',
  );
}

export async function sync(flags: SyncFlags & PhysicalFlags): Promise<number> {
  if (flags.physical) return syncPhysicalCommand(flags);
  refusePhysicalFlagsAlone(flags);
  const instance = instanceFrom(flags);
  const log = createLogger({ level: flags.debug ? 'debug' : 'info' });
  const signals = stopOnSignals(log);
  try {
    if (instance) return await syncEveryDatabase(flags, instance, log, signals.signal);
    const options = await syncOptionsFrom(flags, log, signals.signal);
    const summary = await observing(flags.listen, options.target, log, (metrics) => runSync(metered(options, metrics)));
    printSyncSummary(summary, flags.json === true);
    return EXIT.ok;
  } finally {
    signals.release();
  }
}
