import { Command } from 'commander';
import { resolveConnection } from '../config/index.js';
import { cleanup as runCleanup, type CleanupReport } from '../cutover/index.js';
import { failedIn } from '../instance/index.js';
import { createLogger } from '../log/index.js';
import { PgferryError, usageError } from '../errors.js';
import { databasePairs } from './all-databases.js';
import { EXIT } from './exit-codes.js';
import { addConnectionOptions, addInstanceOptions, instanceFrom, type ConnectionFlags, type InstanceFlags } from './options.js';
import { printOut } from './terminal.js';
import { addPhysicalOptions, cleanupPhysicalCommand, type PhysicalFlags } from './physical.js';

interface CleanupFlags extends ConnectionFlags, InstanceFlags, PhysicalFlags {
  name?: string;
  unfreezeSource?: boolean;
  force?: boolean;
  json?: boolean;
  debug?: boolean;
}

export function cleanupCommand(): Command {
  const command = new Command('cleanup')
    .description(
      'drop what a migration left: the slot, publication and capture on the source and the pgferry schema on the target, and (with --force) the way back a cut-over prepared in the other direction; can run again',
    )
    .option('--name <name>', 'migration name, when the target no longer records it (default: as sync names it for this target)')
    .option('--unfreeze-source', "lift a cut-over's freeze of the source (read-only or revoked privileges)")
    .option('--force', 'drop the slot even though it holds writes the source committed after the cut-over, and give up a prepared way back')
    .option('--json', 'print what was removed as JSON');
  addConnectionOptions(command);
  addInstanceOptions(command);
  addPhysicalOptions(command, 'cleanup');
  return command;
}

export async function cleanup(flags: CleanupFlags): Promise<number> {
  const instance = instanceFrom(flags);
  if (instance && flags.physical)
    throw usageError('--all-databases does not apply with --physical', 'drop --all-databases: a physical migration is of the whole server');
  if (flags.physical) return cleanupPhysicalCommand(flags);
  if (flags.pgdata !== undefined) throw usageError('--pgdata only applies with --physical', 'add --physical, or drop --pgdata');
  if (instance && flags.name !== undefined)
    throw usageError('--name names one migration; with --all-databases each database has its own', 'drop --name');
  const source = await resolveConnection('source', flags.source);
  const target = await resolveConnection('target', flags.target);
  const log = createLogger({ level: flags.debug ? 'debug' : 'info' });
  const settings = { name: flags.name, unfreezeSource: flags.unfreezeSource === true, force: flags.force === true, logger: log };
  if (!instance) {
    const report = await runCleanup({ ...settings, source, target });
    printOut(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${describeCleanup(report).join('\n')}\n`);
    return EXIT.ok;
  }
  // Each database's migration is its own: one that refuses (a way back kept, late writes) leaves the others cleaned.
  const reports: Array<{ database: string } & ({ report: CleanupReport } | { error: PgferryError })> = [];
  for (const { database, ...sides } of await databasePairs(source, target, instance)) {
    const cleaned = await runCleanup({ ...settings, ...sides }).then(
      (report) => ({ report }),
      (error: unknown) => ({ error: failedIn(database, error) }),
    );
    reports.push({ database, ...cleaned });
  }
  const failed = reports.flatMap((r) => ('error' in r ? [r] : []));
  if (flags.json)
    printOut(
      `${JSON.stringify(
        reports.map((r) => ('error' in r ? { database: r.database, error: r.error.message } : { database: r.database, ...r.report })),
        null,
        2,
      )}\n`,
    );
  else {
    const lines = reports.flatMap((r) => [
      `Database ${r.database}:`,
      ...('error' in r ? [`  failed: ${r.error.message}`] : describeCleanup(r.report).map((l) => `  ${l}`)),
    ]);
    printOut(`${lines.join('\n')}\n`);
  }
  if (failed.length === 1) throw failed[0]!.error;
  if (failed.length > 1)
    throw new PgferryError('query', `cleanup failed in ${failed.length} databases: ${failed.map((f) => f.error.message).join('; ')}`, {
      fix: failed[0]!.error.fix ?? 'fix the causes above and run pgferry cleanup --all-databases again',
    });
  return EXIT.ok;
}

function describeCleanup(report: CleanupReport): string[] {
  const lines = report.removed.length > 0 ? [...report.removed] : ['nothing left to remove'];
  for (const frozen of report.stillFrozen) {
    lines.push(
      `source: the ${frozen} is still in place; schema pgferry on the target is kept, as it records it — run cleanup --unfreeze-source to lift it and finish`,
    );
  }
  return lines;
}
