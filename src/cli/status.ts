import { Command } from 'commander';
import { resolveConnection, withConnection } from '../config/index.js';
import { usageError } from '../errors.js';
import { readStatusReport, type StatusReport } from '../observe/index.js';
import type { ConnectionSpec } from '../config/index.js';
import type { DatabaseFilter } from '../instance/index.js';
import { databasePairs, eachDatabase } from './all-databases.js';
import { addInstanceOptions, instanceFrom, type InstanceFlags } from './options.js';
import { EXIT } from './exit-codes.js';
import { printOut } from './terminal.js';
import { addPhysicalOptions, statusPhysicalCommand, type PhysicalFlags } from './physical.js';

interface StatusFlags extends PhysicalFlags, InstanceFlags {
  target?: string;
  json?: boolean;
  debug?: boolean;
}

export function statusCommand(): Command {
  const command = new Command('status')
    .description('show where a migration stands: phase, copy per table, applied position, lag and rates (read from the target)')
    .option('--target <conninfo>', 'target database: postgres:// URL or libpq "key=value" string (default: $PGFERRY_TARGET)')
    .option('--json', 'print as JSON');
  addInstanceOptions(command);
  command.addHelpText(
    'after',
    "\nWith --all-databases: the databases of the target's instance (status reads the target only), each under its name.",
  );
  return addPhysicalOptions(command, 'status');
}

export async function status(flags: StatusFlags): Promise<number> {
  if (flags.physical) return statusPhysicalCommand(flags);
  const instance = instanceFrom(flags);
  const target = await resolveConnection('target', flags.target);
  if (instance) return statusOfEveryDatabase(target, instance, flags.json === true);
  const report = await withConnection(target, ({ client }) => readStatusReport(client));
  if (!report) {
    throw usageError(
      'the target holds no pgferry migration',
      'run pgferry clone or pgferry sync against it first (or check the --target connection)',
    );
  }
  if (flags.json) {
    printOut(`${JSON.stringify(report.json, null, 2)}\n`);
    return EXIT.ok;
  }
  printOut(formatStatus(report));
  return EXIT.ok;
}

/**
 * `status --all-databases`: the databases of the target's instance the filter selects (the
 * target holds the state; its databases bear the source's names), one after another; one with
 * no migration says so instead of failing the others.
 */
async function statusOfEveryDatabase(target: ConnectionSpec, filter: DatabaseFilter, json: boolean): Promise<number> {
  const reports = await eachDatabase(await databasePairs(undefined, target, filter), (pair) =>
    withConnection(pair.target, ({ client }) => readStatusReport(client)),
  );
  if (json) {
    const databases = reports.map(({ database, result }) => ({ database, ...(result ? result.json : { phase: 'none' }) }));
    printOut(`${JSON.stringify({ databases }, null, 2)}\n`);
    return EXIT.ok;
  }
  const sections = reports.map(
    ({ database, result }) =>
      `== database ${database}\n${result ? formatStatus(result) : 'no pgferry migration in this database (run pgferry sync --all-databases first)\n'}`,
  );
  printOut(sections.join('\n'));
  return EXIT.ok;
}

function formatStatus(report: StatusReport): string {
  const { json, heartbeatAgeSeconds: heartbeatAge, lagAgeMs, cutoverText } = report;
  const live = json.syncRunning;
  const lines = [
    `phase        ${json.phase}${json.name ? ` (migration ${json.name}, slot ${json.slot})` : ''}`,
    `direction    ${json.direction.text}`,
    ...(json.name
      ? [
          `applied      ${json.appliedLsn}${json.appliedAt ? ` at ${json.appliedAt}` : ''}`,
          `lag          ${streamLagText(json.lagMs, lagAgeMs, live)}`,
          `             ${json.lagBytes ?? '?'} bytes, ${json.lagSeconds === null ? "unknown (catching up on a backlog older than sync's first look)" : `${json.lagSeconds.toFixed(1)} s`} by the source's WAL position${live ? '' : heartbeatAge === undefined ? ' (no heartbeat recorded yet)' : ` (as of ${Math.round(heartbeatAge)} s ago: sync is not running)`}`,
          `rate         ${Math.round(json.transactionsPerSecond ?? 0)} transactions/s, ${Math.round(json.rowsPerSecond ?? 0)} rows/s`,
          `applied      ${json.appliedTransactions} transactions, ${json.appliedRows} row changes since the copy`,
          ...(json.problem ? [`problem      ${json.problem.message} (at ${json.problem.at})`] : []),
          ...(json.copySnapshot
            ? [
                `snapshot     oldest held by the copy: ${json.copySnapshot.name} at ${json.copySnapshot.position}, ${json.copySnapshot.ageSeconds} s old (${json.copySnapshot.held} held)`,
              ]
            : []),
        ]
      : []),
    ...(cutoverText ? [`cutover      ${cutoverText}`] : []),
    '',
  ];
  const width = Math.max(5, ...json.tables.map((t) => t.name.length));
  lines.push(`${'TABLE'.padEnd(width)}  COPY     ${'INSERTED'.padStart(10)} ${'UPDATED'.padStart(10)} ${'DELETED'.padStart(10)}`);
  for (const t of json.tables) {
    lines.push(
      `${t.name.padEnd(width)}  ${t.copy.padEnd(7)}  ${String(t.inserted).padStart(10)} ${String(t.updated).padStart(10)} ${String(t.deleted).padStart(10)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The stream's lag in words: milliseconds below a second, seconds above; how fresh the figure is while sync runs. */
export function streamLagText(lagMs: number | null, ageMs: number | undefined, live: boolean): string {
  if (lagMs === null) return 'not measured yet (sync records it once it streams)';
  const figure =
    lagMs === 0 ? '0 ms: nothing committed on the source waits to be applied' : `${formatMs(lagMs)} behind the source's commits`;
  if (ageMs === undefined) return figure;
  return `${figure} (recorded ${formatMs(Math.max(0, ageMs))} ago${live ? '' : ', sync is not running'})`;
}

function formatMs(ms: number): string {
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.round(ms / 1000)} s`;
}
