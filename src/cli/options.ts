import { readFileSync } from 'node:fs';
import { DEFAULT_JOBS } from '../plumbing/index.js';
import type { Command } from 'commander';
import type { ScopeFilter } from '../catalog/index.js';
import { messageOf, usageError } from '../errors.js';
import { parseLsn, type Lsn } from '../replication/index.js';
import type { DatabaseFilter } from '../instance/index.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export interface ConnectionFlags {
  source?: string;
  target?: string;
}

export interface FilterFlags {
  includeSchema: string[];
  excludeSchema: string[];
  includeTable: string[];
  excludeTable: string[];
}

export function addConnectionOptions(command: Command): Command {
  return command
    .option('--source <conninfo>', 'source database: postgres:// URL or libpq "key=value" string (default: $PGFERRY_SOURCE)')
    .option('--target <conninfo>', 'target database: postgres:// URL or libpq "key=value" string (default: $PGFERRY_TARGET)');
}

export function addFilterOptions(command: Command): Command {
  return command
    .option('--include-schema <glob>', 'only schemas matching this pattern (repeatable)', collect, [])
    .option('--exclude-schema <glob>', 'leave out schemas matching this pattern (repeatable)', collect, [])
    .option('--include-table <glob>', 'only tables matching this pattern, as table or schema.table (repeatable)', collect, [])
    .option('--exclude-table <glob>', 'leave out tables matching this pattern (repeatable)', collect, []);
}

export function filterFrom(flags: FilterFlags): ScopeFilter {
  return {
    includeSchemas: flags.includeSchema,
    excludeSchemas: flags.excludeSchema,
    includeTables: flags.includeTable,
    excludeTables: flags.excludeTable,
  };
}

/** The initial copy's settings, shared by `clone` and by `sync` (which clones first). */
export interface CopyFlags {
  jobs?: string;
  indexJobs?: string;
  splitTablesLargerThan: string;
  owner?: boolean;
  acl?: boolean;
  createRoles?: boolean;
  targetSetupSql?: string;
}

export interface CopySettings {
  readonly jobs: number;
  readonly indexJobs: number;
  readonly splitThreshold: number;
  readonly noOwner: boolean;
  readonly noAcl: boolean;
  readonly createRoles: boolean;
  readonly targetSetup: { readonly file: string; readonly sql: string } | undefined;
}

export function addCopyOptions(command: Command): Command {
  return (
    command
      // No commander default: the help says how it is chosen, the same on every machine.
      .option('--jobs <n>', 'parallel COPY pipes (default: the number of CPUs, from 2 to 8)')
      .option('--index-jobs <n>', 'parallel index and constraint builds (default: as --jobs)')
      .option('--split-tables-larger-than <size>', 'split tables above this size into ranges of about this size (e.g. 256MB, 1GB)', '256MB')
      .option('--no-owner', 'leave every object owned by the target role instead of the source owner')
      .option('--no-acl', 'leave privileges at their defaults instead of copying GRANTs')
      .option(
        '--target-setup-sql <file>',
        'SQL run on the target after the tables are made and before any row is copied (e.g. Citus create_distributed_table)',
      )
      .option(
        '--create-roles',
        'create the roles the schema needs and the target lacks, with their attributes and memberships (never passwords)',
      )
  );
}

export function copySettingsFrom(flags: CopyFlags): CopySettings {
  return {
    jobs: positiveInteger(flags.jobs ?? String(DEFAULT_JOBS), '--jobs'),
    indexJobs: positiveInteger(flags.indexJobs ?? String(DEFAULT_JOBS), '--index-jobs'),
    splitThreshold: parseSize(flags.splitTablesLargerThan),
    noOwner: flags.owner === false,
    noAcl: flags.acl === false,
    createRoles: flags.createRoles === true,
    targetSetup: flags.targetSetupSql === undefined ? undefined : readSetupFile(flags.targetSetupSql),
  };
}

/** The hook's file, read once at the start: a file that can't be read is bad input, said before anything runs. */
function readSetupFile(file: string): { readonly file: string; readonly sql: string } {
  try {
    return { file, sql: readFileSync(file, 'utf8') };
  } catch (error) {
    throw usageError(`--target-setup-sql ${file} cannot be read: ${messageOf(error)}`, 'give the path of a readable SQL file');
  }
}

function positiveInteger(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 64)
    throw usageError(`${flag} "${text}" is not a number of jobs`, `use a whole number from 1 to 64`);
  return n;
}

const MB = 1024 * 1024;
const UNITS: Record<string, number> = { B: 1, KB: 1024, MB: MB, GB: 1024 * MB, TB: 1024 * 1024 * MB };

export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB)?\s*$/i.exec(text);
  if (!match) throw usageError(`size "${text}" is not understood`, 'write it like 256MB or 1GB');
  return Math.round(Number(match[1]) * UNITS[(match[2] ?? 'B').toUpperCase()]!);
}

/** A duration given in seconds on the command line (`--max-lag 0.5`), as milliseconds. */
export function parseSeconds(text: string, flag: string): number {
  const seconds = Number(text);
  if (text.trim() === '' || !Number.isFinite(seconds) || seconds < 0)
    throw usageError(`${flag} "${text}" is not a number of seconds`, `write it like ${flag} 1 or ${flag} 0.5`);
  return seconds * 1000;
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, min: 60_000 };

/** A duration with its unit (`--peer-timeout 90s`, `2min`, `500ms`; a bare number is seconds), as milliseconds, at least `minMs`. */
export function parseDuration(text: string, flag: string, minMs: number): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|min)?\s*$/.exec(text);
  const ms = match ? Number(match[1]) * DURATION_UNITS[match[2] ?? 's']! : Number.NaN;
  if (!Number.isFinite(ms) || ms < minMs)
    throw usageError(
      `${flag} "${text}" is not a duration of at least ${minMs / 1000} s`,
      `write it with its unit, like ${flag} 60s or ${flag} 2min`,
    );
  return Math.round(ms);
}

/** A WAL position as PostgreSQL writes it (`--skip-ddl-at 0/1A2B3C4`). */
export function parseLsnFlag(text: string, flag: string): Lsn {
  try {
    return parseLsn(text);
  } catch {
    throw usageError(`${flag} "${text}" is not a WAL position`, `copy it from the message that named it, like ${flag} 0/1A2B3C4`);
  }
}

/** One of a closed set of words (`--freeze read-only`). */
export function parseChoice<T extends string>(text: string, flag: string, choices: readonly T[]): T {
  const found = choices.find((c) => c === text);
  if (found === undefined) throw usageError(`${flag} "${text}" is not one of ${choices.join(', ')}`, `use ${flag} ${choices[0]}`);
  return found;
}

/** `--all-databases` and its filters, on every command that can work on a whole instance. */
export interface InstanceFlags {
  allDatabases?: boolean;
  includeDatabase: string[];
  excludeDatabase: string[];
}

export function addInstanceOptions(command: Command): Command {
  return command
    .option(
      '--all-databases',
      "every database of the source's instance (the database in --source/--target is only where pgferry connects first)",
    )
    .option('--include-database <glob>', 'with --all-databases: only databases matching this pattern (repeatable)', collect, [])
    .option('--exclude-database <glob>', 'with --all-databases: leave out databases matching this pattern (repeatable)', collect, []);
}

/** The database filter, or undefined for a one-database command; the filters alone are refused. */
export function instanceFrom(flags: InstanceFlags): DatabaseFilter | undefined {
  if (flags.allDatabases !== true) {
    if (flags.includeDatabase.length + flags.excludeDatabase.length > 0)
      throw usageError('--include-database and --exclude-database work with --all-databases', 'add --all-databases');
    return undefined;
  }
  return { include: flags.includeDatabase, exclude: flags.excludeDatabase };
}

/** What carrying the instance's global objects needs from the command line (globals, and sync/migrate --all-databases). */
export interface GlobalsFlags {
  tablespaceLocation?: string[];
}

export function addGlobalsOptions(command: Command): Command {
  return command.option(
    '--tablespace-location <name=dir>',
    "where a source tablespace (by name or by its directory on the source) goes on the target's machine (repeatable)",
    collect,
    [],
  );
}
