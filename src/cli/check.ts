import { Command } from 'commander';
import { runCheck } from '../check/index.js';
import { resolveConnection } from '../config/index.js';
import { createLogger } from '../log/index.js';
import { usageError } from '../errors.js';
import { formatCheckReport } from './check-report.js';
import { EXIT } from './exit-codes.js';
import {
  addConnectionOptions,
  addFilterOptions,
  addInstanceOptions,
  addGlobalsOptions,
  filterFrom,
  instanceFrom,
  type ConnectionFlags,
  type FilterFlags,
  type InstanceFlags,
  type GlobalsFlags,
} from './options.js';
import { checkEveryDatabase } from './check-all.js';
import { printOut } from './terminal.js';
import { addPhysicalOptions, checkPhysicalCommand, refusePhysicalFlagsAlone, type PhysicalFlags } from './physical.js';

interface CheckFlags extends ConnectionFlags, FilterFlags, PhysicalFlags, InstanceFlags, GlobalsFlags {
  pgbouncer?: string;
  pgbouncerIni?: string;
  pgbouncerDatabase?: string;
  json?: boolean;
  debug?: boolean;
}

export function checkCommand(): Command {
  const command = new Command('check')
    .description('preflight: can these two databases be migrated, and what must change first')
    .option(
      '--pgbouncer <url>',
      'also check a cut-over through this PgBouncer: its admin console (postgres://user:password@host:6432/pgbouncer)',
    )
    .option('--pgbouncer-ini <file>', 'with --pgbouncer: the configuration file the cut-over would rewrite')
    .option('--pgbouncer-database <name>', 'with --pgbouncer: the pooled database to move (default: the one pointing at the source)')
    .option('--json', 'print the report as JSON')
    .addHelpText('after', '\nExit status: 0 ready, 3 something blocks the migration, 2 bad usage, 1 a side cannot be reached or queried.');
  addConnectionOptions(command);
  addFilterOptions(command);
  addInstanceOptions(command);
  addGlobalsOptions(command);
  addPhysicalOptions(command, 'check');
  return command;
}

export async function check(flags: CheckFlags): Promise<number> {
  if (flags.physical) return checkPhysicalCommand(flags);
  refusePhysicalFlagsAlone(flags);
  const instance = instanceFrom(flags);
  const source = await resolveConnection('source', flags.source);
  const target = await resolveConnection('target', flags.target);
  const logger = createLogger({ level: flags.debug ? 'debug' : 'warn' });
  if ((flags.pgbouncer === undefined) !== (flags.pgbouncerIni === undefined))
    throw usageError('--pgbouncer and --pgbouncer-ini go together', 'give both, or neither');
  const pgbouncer =
    flags.pgbouncer !== undefined && flags.pgbouncerIni !== undefined
      ? { admin: flags.pgbouncer, ini: flags.pgbouncerIni, database: flags.pgbouncerDatabase }
      : undefined;
  if (instance)
    return checkEveryDatabase(
      source,
      target,
      instance,
      { filter: filterFrom(flags), pgbouncer, logger, tablespaceLocations: flags.tablespaceLocation ?? [] },
      flags.json === true,
    );
  const report = await runCheck({ source, target, filter: filterFrom(flags), pgbouncer, logger });
  printOut(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatCheckReport(report));
  return report.ready ? EXIT.ok : EXIT.blocked;
}
