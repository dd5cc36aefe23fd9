import { Command } from 'commander';
import { resolveConnection } from '../config/index.js';
import { carryGlobals, databasesToMigrate, parseTablespaceLocations, type GlobalsReport } from '../instance/index.js';
import { EXIT } from './exit-codes.js';
import {
  addConnectionOptions,
  addGlobalsOptions,
  addInstanceOptions,
  instanceFrom,
  type ConnectionFlags,
  type GlobalsFlags,
  type InstanceFlags,
} from './options.js';
import { printOut } from './terminal.js';

interface GlobalsCommandFlags extends ConnectionFlags, InstanceFlags, GlobalsFlags {
  dryRun?: boolean;
  json?: boolean;
}

export function globalsCommand(): Command {
  const command = new Command('globals')
    .description(
      "carry the source instance's global objects to the target instance: roles with their attributes, password verifiers (read from pg_authid by a superuser), memberships and settings, tablespaces, and with --all-databases the databases themselves (owner, encoding, locale, connection limit, comment, settings); creates what is missing, aligns what differs, never drops; can run again",
    )
    .option('--dry-run', 'say what would be done, do nothing')
    .option('--json', 'print the report as JSON');
  addGlobalsOptions(command);
  addConnectionOptions(command);
  addInstanceOptions(command);
  return command;
}

export async function globals(flags: GlobalsCommandFlags): Promise<number> {
  const filter = instanceFrom(flags);
  const locations = parseTablespaceLocations(flags.tablespaceLocation ?? []);
  const source = await resolveConnection('source', flags.source);
  const target = await resolveConnection('target', flags.target);
  // Without --all-databases only what the instance shares travels: no database is made.
  const databases = filter === undefined ? [] : await databasesToMigrate(source, filter);
  const report = await carryGlobals(source, target, databases, { tablespaceLocations: locations, dryRun: flags.dryRun === true });
  printOut(flags.json === true ? `${JSON.stringify(report, null, 2)}\n` : `${describeReport(report, flags.dryRun === true).join('\n')}\n`);
  return EXIT.ok;
}

/** The report as lines for a terminal. */
export function describeReport(report: GlobalsReport, dryRun: boolean): string[] {
  const lines: string[] = [];
  const verb = dryRun ? 'would create' : 'created';
  if (report.created.length > 0) lines.push(`${verb}: ${report.created.join(', ')}`);
  if (report.altered.length > 0) lines.push(`${dryRun ? 'would align' : 'aligned with the source'}: ${report.altered.join(', ')}`);
  if (report.created.length + report.altered.length === 0) lines.push('the target has every global object of the source already');
  for (const s of report.skipped) lines.push(`skipped ${s.object}: ${s.reason}`);
  for (const w of report.warnings) lines.push(`warning: ${w}`);
  if (report.passwordsToSet.length > 0) lines.push(`set these roles' passwords on the target by hand: ${report.passwordsToSet.join(', ')}`);
  return lines;
}
