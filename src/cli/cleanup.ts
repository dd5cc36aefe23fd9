import { Command } from 'commander';
import { resolveConnection } from '../config/index.js';
import { cleanup as runCleanup } from '../cutover/index.js';
import { createLogger } from '../log/index.js';
import { usageError } from '../errors.js';
import { EXIT } from './exit-codes.js';
import { addConnectionOptions, type ConnectionFlags } from './options.js';
import { printOut } from './terminal.js';
import { addPhysicalOptions, cleanupPhysicalCommand, type PhysicalFlags } from './physical.js';

interface CleanupFlags extends ConnectionFlags, PhysicalFlags {
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
  addPhysicalOptions(command, 'cleanup');
  return command;
}

export async function cleanup(flags: CleanupFlags): Promise<number> {
  if (flags.physical) return cleanupPhysicalCommand(flags);
  if (flags.pgdata !== undefined) throw usageError('--pgdata only applies with --physical', 'add --physical, or drop --pgdata');
  const source = await resolveConnection('source', flags.source);
  const target = await resolveConnection('target', flags.target);
  const log = createLogger({ level: flags.debug ? 'debug' : 'info' });
  const report = await runCleanup({
    source,
    target,
    name: flags.name,
    unfreezeSource: flags.unfreezeSource === true,
    force: flags.force === true,
    logger: log,
  });
  if (flags.json) printOut(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const lines = report.removed.length > 0 ? [...report.removed] : ['nothing left to remove'];
    for (const frozen of report.stillFrozen) {
      lines.push(
        `source: the ${frozen} is still in place; schema pgferry on the target is kept, as it records it — run cleanup --unfreeze-source to lift it and finish`,
      );
    }
    printOut(`${lines.join('\n')}\n`);
  }
  return EXIT.ok;
}
