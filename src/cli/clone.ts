import { Command } from 'commander';
import { Scope } from '../catalog/index.js';
import { resolveConnection } from '../config/index.js';
import { clone as runClone, LogProgress, TerminalProgress, type CloneSummary } from '../copy/index.js';
import { createLogger, type Logger } from '../log/index.js';
import { carryRolesOf, createSection, readSourceSchema, roleNotes, type SectionResult } from '../schema/index.js';
import { addListenOption, observing } from './listen.js';
import { MeteredProgress } from '../observe/index.js';
import { EXIT } from './exit-codes.js';
import {
  addConnectionOptions,
  addCopyOptions,
  addFilterOptions,
  copySettingsFrom,
  filterFrom,
  type ConnectionFlags,
  type CopyFlags,
  type CopySettings,
  type FilterFlags,
} from './options.js';
import { printErr, printOut } from './terminal.js';

interface CloneFlags extends ConnectionFlags, FilterFlags, CopyFlags {
  schemaOnly?: boolean;
  listen?: string;
  json?: boolean;
  debug?: boolean;
  resume?: boolean;
  dropExisting?: boolean;
}

export function cloneCommand(): Command {
  const command = new Command('clone')
    .description('copy the schema and the rows of the source database to the target, at one consistent snapshot')
    .option(
      '--schema-only',
      'create the schema only: pre-data (types, tables, functions, views) and post-data (indexes, keys, constraints, triggers)',
    )
    .option('--resume', 'continue an interrupted clone: finished tables and ranges are kept')
    .option('--drop-existing', "drop the tables in scope on the target (and pgferry's state) and copy again")
    .option('--json', 'print the summary as JSON');
  addCopyOptions(command);
  addListenOption(command);
  addConnectionOptions(command);
  addFilterOptions(command);
  return command;
}

export async function clone(flags: CloneFlags): Promise<number> {
  const copy = copySettingsFrom(flags);
  const source = await resolveConnection('source', flags.source);
  const target = await resolveConnection('target', flags.target);
  const log = createLogger({ level: flags.debug ? 'debug' : 'info' });
  const filter = filterFrom(flags);
  if (flags.schemaOnly) return schemaOnly(flags, copy, source, target, filter, log);

  const progress = process.stderr.isTTY && !flags.json ? new TerminalProgress() : new LogProgress(log);
  const summary = await observing(flags.listen, target, log, (metrics) =>
    runClone({
      source,
      target,
      filter,
      ...copy,
      resume: flags.resume === true,
      dropExisting: flags.dropExisting === true,
      progress: metrics ? new MeteredProgress(progress, metrics) : progress,
      logger: log,
    }),
  );
  if (flags.json) printOut(`${JSON.stringify(summary, null, 2)}\n`);
  else printOut(formatSummary(summary));
  reportWarnings(summary);
  return EXIT.ok;
}

function reportWarnings(summary: Pick<CloneSummary, 'notes' | 'unsupported' | 'skipped'>): void {
  for (const note of summary.notes) printErr(`pgferry: note: ${note}\n`);
  for (const u of summary.unsupported) printErr(`pgferry: warning: ${u.kind} ${u.name} not copied: ${u.reason}\n`);
  for (const s of summary.skipped) printErr(`pgferry: warning: ${s.name} not copied: ${s.because}\n`);
}

const MB = 1024 * 1024;

function formatSummary(summary: CloneSummary): string {
  const lines: string[] = [];
  const width = Math.max(5, ...summary.tables.map((t) => t.table.length));
  lines.push(
    `${'TABLE'.padEnd(width)}  ${'ROWS'.padStart(12)}  ${'MB'.padStart(9)}  ${'SECONDS'.padStart(8)}  ${'MB/S'.padStart(7)}  FORMAT  UNITS`,
  );
  for (const t of [...summary.tables].sort((a, b) => b.bytes - a.bytes)) {
    const mb = t.bytes / MB;
    lines.push(
      `${t.table.padEnd(width)}  ${String(t.rows).padStart(12)}  ${mb.toFixed(1).padStart(9)}  ${t.seconds.toFixed(2).padStart(8)}  ${(t.seconds > 0 ? mb / t.seconds : 0).toFixed(1).padStart(7)}  ${t.format.padEnd(6)}  ${t.units}`,
    );
  }
  lines.push('');
  for (const p of summary.phases) lines.push(`${p.phase.padEnd(20)} ${p.seconds.toFixed(2).padStart(8)} s`);
  const total = summary.phases.reduce((sum, p) => sum + p.seconds, 0);
  lines.push(`${'total'.padEnd(20)} ${total.toFixed(2).padStart(8)} s`);
  lines.push(
    `${summary.tables.length} tables, ${summary.tables.reduce((s, t) => s + t.rows, 0)} rows copied, ${summary.sequences} sequences set${summary.resumed ? ' (resumed)' : ''}.`,
  );
  return `${lines.join('\n')}\n`;
}

async function schemaOnly(
  flags: CloneFlags,
  copy: CopySettings,
  source: Awaited<ReturnType<typeof resolveConnection>>,
  target: Awaited<ReturnType<typeof resolveConnection>>,
  filter: ReturnType<typeof filterFrom>,
  log: Logger,
): Promise<number> {
  const scope = new Scope(filter);
  const schema = await readSourceSchema(source, scope);
  const tables = schema.objects.filter((o) => o.kind === 'table' && o.table).map((o) => o.table!);
  scope.assertPatternsMatch(tables, 'the source database');
  const roles = copy.createRoles ? await carryRolesOf(source, target, schema) : undefined;
  const results: SectionResult[] = [];
  for (const section of ['pre-data', 'post-data'] as const) {
    results.push(
      await createSection(target, schema, section, scope, {
        onObject: (o) => log.debug({ kind: o.kind, name: o.name }, 'creating'),
        noOwner: copy.noOwner,
        noAcl: copy.noAcl,
      }),
    );
  }
  const summary = {
    sections: results.map((r) => ({
      section: r.section,
      created: r.created,
      alreadyThere: r.alreadyThere,
      seconds: Number(r.seconds.toFixed(3)),
    })),
    unsupported: schema.unsupported,
    skipped: schema.skipped,
    notes: [...(roles ? roleNotes(roles) : []), ...results.flatMap((r) => r.notes)],
  };
  if (flags.json) {
    printOut(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    for (const r of summary.sections) {
      printOut(
        `${r.section.padEnd(10)} ${String(r.created).padStart(5)} created, ${String(r.alreadyThere).padStart(5)} already there  (${r.seconds.toFixed(2)} s)\n`,
      );
    }
  }
  if (!flags.json) reportWarnings(summary);
  return EXIT.ok;
}
