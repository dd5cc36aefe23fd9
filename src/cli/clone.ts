import { Command } from 'commander';
import { Scope } from '../catalog/index.js';
import { resolveConnection } from '../config/index.js';
import { usageError } from '../errors.js';
import { createLogger } from '../log/index.js';
import { createSection, readSourceSchema, type SectionResult } from '../schema/index.js';
import { EXIT } from './exit-codes.js';
import { addConnectionOptions, addFilterOptions, filterFrom, type ConnectionFlags, type FilterFlags } from './options.js';
import { printErr, printOut } from './terminal.js';

interface CloneFlags extends ConnectionFlags, FilterFlags {
  schemaOnly?: boolean;
  owner?: boolean;
  acl?: boolean;
  json?: boolean;
  debug?: boolean;
}

export function cloneCommand(): Command {
  const command = new Command('clone')
    .description('copy the schema (and, with the data copy, the rows) of the source database to the target')
    .option('--schema-only', 'create the schema only: pre-data (types, tables, functions, views) and post-data (indexes, keys, constraints, triggers)')
    .option('--no-owner', 'leave every object owned by the target role instead of the source owner')
    .option('--no-acl', 'leave privileges at their defaults instead of copying GRANTs')
    .option('--json', 'print the summary as JSON');
  addConnectionOptions(command);
  addFilterOptions(command);
  return command;
}

export async function clone(flags: CloneFlags): Promise<number> {
  if (!flags.schemaOnly) {
    throw usageError('this version of pgferry clone copies the schema only', 'pass --schema-only; the data copy is being built');
  }
  const source = await resolveConnection('source', flags.source);
  const target = await resolveConnection('target', flags.target);
  const log = createLogger({ level: flags.debug ? 'debug' : 'warn' });
  const scope = new Scope(filterFrom(flags));

  const schema = await readSourceSchema(source, scope);
  const tables = schema.objects.filter((o) => o.kind === 'table').map((o) => ({ schema: o.schema, name: o.name.split('.').pop()! }));
  scope.assertPatternsMatch(tables.map((t) => ({ schema: t.schema, name: t.name.replace(/^"|"$/g, '') })), 'the source database');
  const results: SectionResult[] = [];
  for (const section of ['pre-data', 'post-data'] as const) {
    results.push(
      await createSection(target, schema, section, scope, {
        onObject: (o) => log.debug({ kind: o.kind, name: o.name }, 'creating'),
        noOwner: flags.owner === false,
        noAcl: flags.acl === false,
      }),
    );
  }

  const summary = {
    sections: results.map((r) => ({ section: r.section, created: r.created, alreadyThere: r.alreadyThere, seconds: Number(r.seconds.toFixed(3)) })),
    unsupported: schema.unsupported,
    skipped: schema.skipped,
    notes: results.flatMap((r) => r.notes),
  };
  if (flags.json) {
    printOut(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    for (const r of summary.sections) {
      printOut(`${r.section.padEnd(10)} ${String(r.created).padStart(5)} created, ${String(r.alreadyThere).padStart(5)} already there  (${r.seconds.toFixed(2)} s)\n`);
    }
    for (const note of summary.notes) printErr(`pgferry: note: ${note}\n`);
    for (const u of summary.unsupported) printErr(`pgferry: warning: ${u.kind} ${u.name} not copied: ${u.reason}\n`);
    for (const s of summary.skipped) printErr(`pgferry: warning: ${s.name} not copied: ${s.because}\n`);
  }
  return EXIT.ok;
}
