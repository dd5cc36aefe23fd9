import { Command } from 'commander';
import { resolveConnection } from '../config/index.js';
import {
  cutover as runCutover,
  cutoverDatabases,
  type CutoverOptions,
  type CutoverReport,
  type InstanceCutoverReport,
} from '../cutover/index.js';
import { usageError } from '../errors.js';
import type { PoolOptions } from '../pgbouncer/index.js';
import { createLogger, type Logger } from '../log/index.js';
import { databasePairs } from './all-databases.js';
import { EXIT } from './exit-codes.js';
import {
  addConnectionOptions,
  addFilterOptions,
  addInstanceOptions,
  filterFrom,
  instanceFrom,
  parseChoice,
  parseSeconds,
  type ConnectionFlags,
  type FilterFlags,
  type InstanceFlags,
} from './options.js';
import { abortOnSignals } from './signals.js';
import { addPhysicalOptions, cutoverPhysicalCommand, type PhysicalFlags } from './physical.js';
import { printOut } from './terminal.js';

export interface CutoverFlags {
  maxLag: string;
  catchUpTimeout: string;
  freeze: string;
  roles?: string;
  drainTimeout: string;
  fenceTimeout: string;
  sequenceMargin: string;
  verify: string;
  unfreezeSource?: boolean;
  /** Commander's `--no-fallback`: false when given. */
  fallback: boolean;
  /** Commander's `--no-check-indexes`: false when given. */
  checkIndexes: boolean;
  pgbouncer?: string;
  pgbouncerIni?: string;
  pgbouncerDatabase?: string;
  maxPause: string;
}

interface CutoverCommandFlags extends CutoverFlags, ConnectionFlags, FilterFlags, InstanceFlags, PhysicalFlags {
  json?: boolean;
  debug?: boolean;
}

/** The cut-over's own options, shared with `migrate`, which cuts over by itself. */
export function addCutoverOptions(command: Command): Command {
  return command
    .option('--max-lag <seconds>', 'freeze only once sync is at most this far behind', '1')
    .option('--catch-up-timeout <seconds>', 'give up if sync is not within --max-lag after this long', '600')
    .option(
      '--freeze <mode>',
      'how writes stop on the source: read-only (the database, and its sessions are drained), revoke (--roles lose write privileges), none (the application is already stopped)',
      'read-only',
    )
    .option('--roles <names>', 'with --freeze revoke: the roles the application writes as, comma-separated')
    .option('--drain-timeout <seconds>', 'how long running transactions may take to finish once writes are frozen', '10')
    .option('--fence-timeout <seconds>', 'how long sync may take to apply everything up to the freeze', '30')
    .option('--sequence-margin <n>', 'add this to every sequence value set on the target', '0')
    .option(
      '--verify <level>',
      'what is compared: changes (every row by content before the freeze while sync streams, and inside the freeze only the rows sync applied since), counts (rows per table, inside the freeze), full (every row by content, inside the freeze), none',
      'changes',
    )
    .option(
      '--unfreeze-source',
      'lift the freeze on the source once the cut-over is done (by default it stays read-only); no way back is prepared',
    )
    .option(
      '--pgbouncer <url>',
      "PgBouncer's admin console (postgres://user:password@host:6432/pgbouncer): paused before the freeze, repointed to the target and resumed, so clients wait instead of failing",
    )
    .option(
      '--pgbouncer-ini <file>',
      "with --pgbouncer: PgBouncer's configuration file, which pgferry rewrites (it must run where the file is)",
    )
    .option('--pgbouncer-database <name>', 'with --pgbouncer: the pooled database to move (default: the one pointing at the source)')
    .option('--max-pause <seconds>', 'with --pgbouncer: undo the cut-over rather than keep clients waiting longer than this', '5')
    .option(
      '--no-fallback',
      'do not prepare the way back (by default a slot on the target lets pgferry sync with the sides swapped keep the source current, so the application can return)',
    )
    .option(
      '--no-check-indexes',
      'with --verify changes: do not index the tables without a key or index for the check inside the freeze (by default an index is built concurrently on each side that lacks one, and dropped after; without it, the check reads such a table through, in proportion to its size)',
    );
}

export function cutoverCommand(): Command {
  const command = new Command('cutover')
    .description('while pgferry sync runs: freeze writes on the source, apply the last changes, set sequences, verify, and stop sync')
    .option('--json', 'print the report as JSON');
  addCutoverOptions(command);
  addConnectionOptions(command);
  addFilterOptions(command);
  addInstanceOptions(command);
  addPhysicalOptions(command, 'cutover');
  return command;
}

export function cutoverSettingsFrom(flags: CutoverFlags): Omit<CutoverOptions, 'source' | 'target' | 'filter' | 'logger' | 'signal'> {
  const freeze = parseChoice(flags.freeze, '--freeze', ['read-only', 'revoke', 'none'] as const);
  const roles = (flags.roles ?? '')
    .split(',')
    .map((r) => r.trim())
    .filter((r) => r !== '');
  if (freeze === 'revoke' && roles.length === 0)
    throw usageError('--freeze revoke needs the roles to revoke from', 'add --roles app_user[,other_role]');
  if (freeze !== 'revoke' && roles.length > 0)
    throw usageError('--roles only applies to --freeze revoke', 'add --freeze revoke, or drop --roles');
  if (!/^\d+$/.test(flags.sequenceMargin.trim()))
    throw usageError(`--sequence-margin "${flags.sequenceMargin}" is not a whole number`, 'use e.g. --sequence-margin 1000');
  return {
    maxLagSeconds: parseSeconds(flags.maxLag, '--max-lag') / 1000,
    catchUpTimeoutMs: parseSeconds(flags.catchUpTimeout, '--catch-up-timeout'),
    freeze,
    roles,
    drainTimeoutMs: parseSeconds(flags.drainTimeout, '--drain-timeout'),
    fenceTimeoutMs: parseSeconds(flags.fenceTimeout, '--fence-timeout'),
    sequenceMargin: BigInt(flags.sequenceMargin.trim()),
    verify: parseChoice(flags.verify, '--verify', ['changes', 'counts', 'full', 'none'] as const),
    unfreezeSource: flags.unfreezeSource === true,
    fallback: flags.fallback,
    checkIndexes: flags.checkIndexes,
    ...poolOptionsFrom(flags),
  };
}

function poolOptionsFrom(flags: CutoverFlags): { pgbouncer?: PoolOptions } {
  if (flags.pgbouncer === undefined && flags.pgbouncerIni === undefined) {
    if (flags.pgbouncerDatabase !== undefined)
      throw usageError('--pgbouncer-database needs --pgbouncer and --pgbouncer-ini', 'add them, or drop --pgbouncer-database');
    return {};
  }
  if (flags.pgbouncer === undefined || flags.pgbouncerIni === undefined)
    throw usageError(
      '--pgbouncer and --pgbouncer-ini go together: the console to pause and resume, and the file to repoint',
      'give both: --pgbouncer postgres://admin@host:6432/pgbouncer --pgbouncer-ini /etc/pgbouncer/pgbouncer.ini',
    );
  return {
    pgbouncer: {
      admin: flags.pgbouncer,
      ini: flags.pgbouncerIni,
      database: flags.pgbouncerDatabase,
      maxPauseMs: parseSeconds(flags.maxPause, '--max-pause'),
    },
  };
}

export async function cutover(flags: CutoverCommandFlags): Promise<number> {
  const instance = instanceFrom(flags);
  if (instance && flags.physical)
    throw usageError('--all-databases does not apply with --physical', 'drop --all-databases: a physical cut-over moves the whole server');
  if (flags.physical) return cutoverPhysicalCommand(flags, cutoverSettingsFrom(flags));
  const settings = cutoverSettingsFrom(flags);
  const source = await resolveConnection('source', flags.source);
  const target = await resolveConnection('target', flags.target);
  const log = createLogger({ level: flags.debug ? 'debug' : 'info' });
  // Listed before any signal handler: a refusal here changes nothing.
  const databases = instance ? await databasePairs(source, target, instance) : undefined;
  const signals = abortOnSignals(log, 'interrupted: lifting the freeze if there is one; sync keeps running', 'ignore');
  try {
    const common = { ...settings, filter: filterFrom(flags), logger: log, signal: signals.signal };
    if (databases) {
      const report = await cutoverDatabases({ ...common, databases });
      printInstanceCutoverReport(report, flags.json === true, log);
    } else printCutoverReport(await runCutover({ ...common, source, target }), flags.json === true, log);
    return EXIT.ok;
  } finally {
    signals.release();
  }
}

export function printCutoverReport(report: CutoverReport, json: boolean, log: Logger): void {
  if (json) {
    printOut(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const lines: string[] = [];
  for (const step of report.steps) lines.push(`${step.step.padEnd(19)} ${step.ms.toFixed(1).padStart(10)} ms`);
  lines.push('');
  lines.push(
    `Writes were frozen for ${report.downtimeMs.toFixed(0)} ms (freeze ${report.freeze}${report.sessionsEnded > 0 ? `, ${report.sessionsEnded} idle sessions ended` : ''}).`,
  );
  lines.push(`Fence at ${report.fenceLsn}: every transaction the source committed before the freeze is on the target.`);
  lines.push(...checkedLines(report));
  lines.push(
    report.sourceUnfrozen
      ? 'The source is writable again (--unfreeze-source).'
      : report.freeze === 'none'
        ? ''
        : 'The source stays frozen: pgferry cleanup --unfreeze-source lifts it.',
  );
  if (report.pgbouncer)
    lines.push(
      `PgBouncer: "${report.pgbouncer.database}" was paused for ${report.pgbouncer.pausedMs} ms (${report.pgbouncer.waitingClients} clients waiting when it resumed) and now points at ${report.pgbouncer.pointsTo}.`,
    );
  if (report.pgbouncer && report.pgbouncer.unresumed.length > 0)
    lines.push(
      `PgBouncer refused to resume ${report.pgbouncer.unresumed.map((d) => `"${d}"`).join(', ')}: pointed at the target, still paused. Run RESUME <name>; on its console for each.`,
    );
  if (report.targetFreezesLifted > 0) lines.push('The target, frozen since the cut-over away from it, is writable again.');
  lines.push('');
  if (report.wayBack) {
    lines.push(
      `The way back is ready: slot ${report.wayBack.slot} on the target starts at ${report.wayBack.from}, where both sides were equal.`,
      'Next: point the application at the target, and keep the source current with pgferry sync with --source and --target swapped;',
      'pgferry cutover with them swapped returns. pgferry cleanup --force gives the way back up.',
    );
  } else {
    lines.push(`No way back was prepared (${report.wayBackSkipped ?? 'not asked for'}).`);
    lines.push('Next: point the application at the target, then run pgferry cleanup to drop the slot, publication and pgferry state.');
  }
  printOut(`${lines.filter((l, i, all) => l !== '' || all[i - 1] !== '').join('\n')}\n`);
  log.debug({ report }, 'cut-over report');
}

/** `--all-databases`: what was checked in each database, then the one freeze they shared. */
export function printInstanceCutoverReport(report: InstanceCutoverReport, json: boolean, log: Logger): void {
  if (json) {
    printOut(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const lines: string[] = [];
  for (const db of report.databases) {
    lines.push(`Database ${db.database}:`);
    lines.push(`  steps: ${db.steps.map((s) => `${s.step} ${s.ms.toFixed(1)} ms`).join(', ')}`);
    lines.push(
      `  Fence at ${db.fenceLsn}: every transaction this source database committed before the freeze is on the target${db.sessionsEnded > 0 ? ` (${db.sessionsEnded} idle sessions ended)` : ''}.`,
    );
    lines.push(...checkedLines(db).map((l) => `  ${l}`));
    if (db.targetFreezesLifted > 0) lines.push('  The target, frozen since the cut-over away from it, is writable again.');
    lines.push(
      db.wayBack
        ? `  The way back is ready: slot ${db.wayBack.slot} on the target starts at ${db.wayBack.from}.`
        : `  No way back was prepared (${db.wayBackSkipped ?? 'not asked for'}).`,
    );
    lines.push('');
  }
  const [any] = report.databases;
  const freeze = any?.freeze ?? 'none';
  lines.push(
    `Writes were frozen for ${report.downtimeMs.toFixed(0)} ms on all ${report.databases.length} databases together (freeze ${freeze}).`,
  );
  lines.push(
    any?.sourceUnfrozen
      ? 'The source databases are writable again (--unfreeze-source).'
      : freeze === 'none'
        ? ''
        : 'The source databases stay frozen: pgferry cleanup --all-databases --unfreeze-source lifts them.',
  );
  lines.push(
    report.databases.every((d) => d.wayBack)
      ? 'Next: point the application at the target; pgferry sync with --source and --target swapped keeps each source database current, and pgferry cutover --all-databases with them swapped returns.'
      : 'Next: point the application at the target, then run pgferry cleanup --all-databases to drop the slots, publications and pgferry state.',
  );
  printOut(`${lines.filter((l, i, all) => l !== '' || all[i - 1] !== '').join('\n')}\n`);
  log.debug({ report }, 'cut-over report');
}

/** What one database's cut-over checked: its sequences, large objects, rows, sync's stop and the late writes. */
function checkedLines(report: CutoverReport): string[] {
  const lines: string[] = [];
  const moved = report.sequences.filter((s) => s.moved).length;
  lines.push(
    `${report.sequences.length} sequences checked, ${moved} set on the target to the source's value${
      report.sequences.some((s) => s.target === null)
        ? `; missing on the target: ${report.sequences
            .filter((s) => s.target === null)
            .map((s) => s.name)
            .join(', ')}`
        : ''
    }.`,
  );
  const lo = report.largeObjects;
  if (lo.objects > 0 || lo.removed > 0) {
    lines.push(
      `${lo.objects} large objects on both sides; inside the freeze ${lo.created} created, ${lo.changed} changed, ${lo.removed} removed on the target.`,
    );
  }
  const { beforeFreeze, insideFreeze } = report.checked;
  if (beforeFreeze && insideFreeze) {
    const rows = report.verified?.tables.reduce((sum, t) => sum + t.sourceRows, 0) ?? 0;
    const passed = beforeFreeze.passes.reduce((sum, p) => sum + p.keys, 0);
    lines.push(
      `Verified before the freeze, while sync streamed: ${beforeFreeze.verify.tables} tables, ${rows} rows by content, identical; then ${passed} rows changed meanwhile, in ${beforeFreeze.passes.length} passes.`,
    );
    const whole = insideFreeze.wholeTables.map((w) => `${w.table} (${w.reason})`);
    lines.push(
      `Verified inside the freeze: the ${insideFreeze.keysChecked} rows sync applied since, by key in ${insideFreeze.tables.length} tables${whole.length > 0 ? `, and whole: ${whole.join(', ')}` : ''}; identical.`,
    );
  } else if (report.verified) {
    const rows = report.verified.tables.reduce((sum, t) => sum + t.sourceRows, 0);
    lines.push(`Verified (${report.verified.mode}): ${report.verified.tables.length} tables, ${rows} rows, identical.`);
  } else lines.push('Not verified (--verify none).');
  lines.push(report.syncStopped ? 'pgferry sync stopped.' : 'pgferry sync did not confirm it stopped: stop it yourself.');
  lines.push(
    report.lateTransactions === 0
      ? "No write reached the source past sync's final position."
      : "Writes past sync's final position were not checked (see the warning above).",
  );
  return lines;
}
