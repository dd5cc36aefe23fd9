import { Command } from 'commander';
import { runCheck } from '../check/index.js';
import { resolveConnection } from '../config/index.js';
import { createLogger } from '../log/index.js';
import { formatCheckReport } from './check-report.js';
import { EXIT } from './exit-codes.js';
import { addConnectionOptions, addFilterOptions, filterFrom, type ConnectionFlags, type FilterFlags } from './options.js';
import { printOut } from './terminal.js';

interface CheckFlags extends ConnectionFlags, FilterFlags {
  json?: boolean;
  debug?: boolean;
}

export function checkCommand(): Command {
  const command = new Command('check')
    .description('preflight: can these two databases be migrated, and what must change first')
    .option('--json', 'print the report as JSON')
    .addHelpText('after', '\nExit status: 0 ready, 3 something blocks the migration, 2 bad usage, 1 a side cannot be reached or queried.');
  addConnectionOptions(command);
  addFilterOptions(command);
  return command;
}

export async function check(flags: CheckFlags): Promise<number> {
  const source = await resolveConnection('source', flags.source);
  const target = await resolveConnection('target', flags.target);
  const logger = createLogger({ level: flags.debug ? 'debug' : 'warn' });
  const report = await runCheck({ source, target, filter: filterFrom(flags), logger });
  printOut(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatCheckReport(report));
  return report.ready ? EXIT.ok : EXIT.blocked;
}
