import type { Command } from 'commander';
import type { ScopeFilter } from '../catalog/index.js';

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
