import type { Command } from 'commander';
import { resolveConnection } from '../config/index.js';
import { usageError } from '../errors.js';
import type { PoolOptions } from '../pgbouncer/index.js';
import { createLogger } from '../log/index.js';
import {
  describeOrigin,
  checkedMigrationName,
  cleanupPhysical,
  cutoverPhysical,
  physicalStatus,
  runPhysicalCheck,
  syncPhysical,
  type PhysicalSyncSummary,
} from '../physical/index.js';
import { formatCheckReport } from './check-report.js';
import { EXIT } from './exit-codes.js';
import { parseSeconds } from './options.js';
import { abortOnSignals } from './signals.js';
import { printOut } from './terminal.js';

/**
 * Physical mode's flags on each command (`--physical` and what only it uses), and the commands
 * run with them. The logical commands hand over to these when --physical is given.
 */
export interface PhysicalFlags {
  physical?: boolean;
  pgdata?: string;
  pgBin?: string;
  port?: string;
  start?: boolean;
  standbyTimeout?: string;
  name?: string;
  source?: string;
  target?: string;
  json?: boolean;
  debug?: boolean;
  untilCaughtUp?: boolean;
  unfreezeSource?: boolean;
}

type Which = 'check' | 'sync' | 'cutover' | 'cleanup' | 'status';

const DEFAULT_NAME = 'standby';

export function addPhysicalOptions(command: Command, which: Which): Command {
  command.option(
    '--physical',
    'same major version only: a base backup and a streaming standby, promoted at the cut-over (see docs/runbooks/physical.md)',
  );
  if (which === 'check' || which === 'sync')
    command
      .option('--pgdata <dir>', 'with --physical: the new data directory on this host (new or empty)')
      .option('--pg-bin <dir>', "with --physical: the directory of the source major version's binaries (pg_basebackup, pg_ctl, postgres)");
  if (which === 'sync')
    command
      .option('--port <port>', "with --physical: the standby's port (set in its postgresql.auto.conf)")
      .option('--start', 'with --physical: start the standby with pg_ctl (else the start command is printed)')
      .option('--standby-timeout <seconds>', 'with --physical: how long the base backup or the standby may stand still', '300');
  if (which === 'cleanup')
    command.option(
      '--pgdata <dir>',
      "with --physical: the new primary's data directory: the copy of the source's password in it is removed",
    );
  if (which === 'check' || which === 'cutover' || which === 'status')
    command.option('--name <name>', `with --physical: the migration's name; its slot is pgferry_phys_<name> (default: ${DEFAULT_NAME})`);
  if (which === 'status') command.option('--source <conninfo>', 'with --physical: the source server (default: $PGFERRY_SOURCE)');
  return command;
}

/** Physical-only flags given without --physical are a mistake worth naming. */
export function refusePhysicalFlagsAlone(flags: PhysicalFlags): void {
  const given = (
    [
      ['--pgdata', flags.pgdata],
      ['--pg-bin', flags.pgBin],
      ['--port', flags.port],
      ['--start', flags.start],
    ] as const
  ).filter(([, value]) => value !== undefined);
  if (given.length > 0) throw usageError(`${given.map(([f]) => f).join(', ')} only apply with --physical`, 'add --physical, or drop them');
}

function required(value: string | undefined, flag: string, example: string): string {
  if (value === undefined || value === '') throw usageError(`--physical needs ${flag}`, `add ${flag} ${example}`);
  return value;
}

function nameOf(flags: PhysicalFlags): string {
  return checkedMigrationName(flags.name ?? DEFAULT_NAME);
}

function parsePort(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw usageError(`--port "${text}" is not a port number`, 'use e.g. --port 5433');
  return port;
}

export async function checkPhysicalCommand(flags: PhysicalFlags): Promise<number> {
  const source = await resolveConnection('source', flags.source);
  const report = await runPhysicalCheck({
    source,
    pgBin: required(flags.pgBin, '--pg-bin', '/usr/lib/postgresql/15/bin'),
    pgdata: required(flags.pgdata, '--pgdata', '/var/lib/postgresql/15/main'),
    name: nameOf(flags),
  });
  printOut(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatCheckReport(report));
  return report.ready ? EXIT.ok : EXIT.blocked;
}

export async function syncPhysicalCommand(flags: PhysicalFlags): Promise<number> {
  if (flags.target !== undefined)
    throw usageError('sync --physical makes the target itself (in --pgdata): --target does not apply', 'drop --target');
  const log = createLogger({ level: flags.debug ? 'debug' : 'info' });
  const signals = abortOnSignals(
    log,
    'stopping: pg_basebackup is stopped and removes what it wrote; the slot is kept for the next run',
    'exit',
  );
  try {
    const summary = await syncPhysical({
      source: await resolveConnection('source', flags.source),
      pgdata: required(flags.pgdata, '--pgdata', '/var/lib/postgresql/15/main'),
      pgBin: required(flags.pgBin, '--pg-bin', '/usr/lib/postgresql/15/bin'),
      name: nameOf(flags),
      port: parsePort(flags.port),
      start: flags.start === true,
      untilCaughtUp: flags.untilCaughtUp === true,
      standbyTimeoutMs: parseSeconds(flags.standbyTimeout ?? '300', '--standby-timeout'),
      logger: log,
      signal: signals.signal,
    });
    if (flags.json) printOut(`${JSON.stringify(summary, null, 2)}\n`);
    else
      printOut(
        [
          `Base backup of ${(summary.backupBytes / 1024 ** 2).toFixed(0)} MB in ${summary.backupSeconds.toFixed(1)} s into ${summary.pgdata}, streaming from the slot ${summary.slot}.`,
          ...carriedLines(summary),
          ...summary.notes,
          summary.started ? 'The standby runs.' : `Start the standby with: ${summary.startCommand}`,
          ...(summary.caughtUpAt ? [`Caught up: the standby has replayed the source's WAL to ${summary.caughtUpAt}.`] : []),
          '',
        ].join('\n'),
      );
    return EXIT.ok;
  } finally {
    signals.release();
  }
}

/** The settings sync --physical wrote into the standby's postgresql.auto.conf, grouped by where the source had them. */
function carriedLines(summary: PhysicalSyncSummary): string[] {
  const groups = new Map<string, string[]>();
  for (const s of summary.carried) {
    const heading =
      s.belowPrimary && s.origin.kind === 'in-copy'
        ? "Raised to the source's value (a standby refuses less)"
        : `Carried from ${describeOrigin(s.origin)}`;
    groups.set(heading, [...(groups.get(heading) ?? []), s.printable ? `${s.name} = ${s.shown}` : s.name]);
  }
  return [
    ...[...groups].map(([heading, settings]) => `${heading} into postgresql.auto.conf: ${settings.join(', ')}.`),
    ...(summary.notCarried.length > 0
      ? [
          `Not carried (ports, sockets, paths, TLS files and recovery settings are this host's and pgferry's to set): ${summary.notCarried.join(', ')}.`,
        ]
      : []),
  ];
}

export async function cutoverPhysicalCommand(
  flags: PhysicalFlags,
  settings: { drainTimeoutMs: number; catchUpTimeoutMs: number; pgbouncer?: PoolOptions },
): Promise<number> {
  const log = createLogger({ level: flags.debug ? 'debug' : 'info' });
  const signals = abortOnSignals(log, 'interrupted: lifting the freeze if the standby is not promoted yet', 'ignore');
  try {
    const report = await cutoverPhysical({
      source: await resolveConnection('source', flags.source),
      target: await resolveConnection('target', flags.target),
      name: nameOf(flags),
      drainTimeoutMs: settings.drainTimeoutMs,
      catchUpTimeoutMs: settings.catchUpTimeoutMs,
      ...(settings.pgbouncer ? { pgbouncer: settings.pgbouncer } : {}),
      logger: log,
      signal: signals.signal,
    });
    if (flags.json) printOut(`${JSON.stringify(report, null, 2)}\n`);
    else
      printOut(
        [
          ...report.steps.map((s) => `${s.name.padEnd(10)} ${String(s.ms).padStart(8)} ms`),
          '',
          `Writes were frozen for ${report.downtimeMs} ms${report.sessionsEnded > 0 ? ` (${report.sessionsEnded} sessions ended)` : ''}.`,
          `The standby replayed the source's WAL to ${report.lastLsn}, was promoted and commits writes.`,
          ...(report.pgbouncer
            ? [
                `PgBouncer: "${report.pgbouncer.database}" was paused for ${report.pgbouncer.pausedMs} ms (${report.pgbouncer.waitingClients} clients waiting when it resumed) and now points at ${report.pgbouncer.pointsTo}.`,
              ]
            : []),
          ...report.notes,
          '',
        ].join('\n'),
      );
    return EXIT.ok;
  } finally {
    signals.release();
  }
}

export async function cleanupPhysicalCommand(flags: PhysicalFlags): Promise<number> {
  const report = await cleanupPhysical({
    source: await resolveConnection('source', flags.source),
    name: nameOf(flags),
    unfreezeSource: flags.unfreezeSource === true,
    pgdata: flags.pgdata,
  });
  if (flags.json) printOut(`${JSON.stringify(report, null, 2)}\n`);
  else
    printOut(
      [
        report.slot === 'dropped'
          ? 'source: slot dropped'
          : report.slot === 'kept'
            ? 'source: slot kept (a standby streams from it)'
            : 'source: no slot left to drop',
        report.freeze === 'lifted'
          ? 'source: freeze lifted, writable again'
          : report.freeze === 'kept'
            ? 'source: still frozen (pass --unfreeze-source to lift it)'
            : 'source: not frozen',
        ...(report.passwordFile === 'removed' ? ["target: the copy of the source's password removed from the data directory"] : []),
        '',
      ].join('\n'),
    );
  return EXIT.ok;
}

export async function statusPhysicalCommand(flags: PhysicalFlags): Promise<number> {
  const report = await physicalStatus(await resolveConnection('source', flags.source), nameOf(flags));
  if (flags.json) {
    printOut(`${JSON.stringify(report, null, 2)}\n`);
    return EXIT.ok;
  }
  const s = report.standby;
  const lines = [
    `slot         ${report.slot}${report.slotExists ? `, holding ${report.retainedBytes ?? '?'} bytes of WAL` : ' (absent)'}`,
    s ? `standby      ${s.state} at source position ${s.sourceLsn}` : 'standby      not connected',
    ...(s
      ? [
          `behind       sent ${s.lagBytes.sent ?? '?'}, written ${s.lagBytes.written ?? '?'}, flushed ${s.lagBytes.flushed ?? '?'}, replayed ${s.lagBytes.replayed ?? '?'} bytes`,
          `lag          written ${s.lagSeconds.written ?? 0} s, flushed ${s.lagSeconds.flushed ?? 0} s, replayed ${s.lagSeconds.replayed ?? 0} s`,
        ]
      : []),
    `source       ${report.sourceFrozen ? 'frozen by a physical cut-over' : 'writable'}`,
    '',
  ];
  printOut(lines.join('\n'));
  return EXIT.ok;
}
