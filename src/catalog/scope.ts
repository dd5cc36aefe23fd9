import picomatch from 'picomatch';
import { usageError } from '../errors.js';

/**
 * Which tables a command works on. Patterns are globs; a table pattern with a dot matches
 * "schema.table", without one it matches the table name in any schema. Excludes win.
 */
export interface ScopeFilter {
  readonly includeSchemas: readonly string[];
  readonly excludeSchemas: readonly string[];
  readonly includeTables: readonly string[];
  readonly excludeTables: readonly string[];
}

export const EVERYTHING: ScopeFilter = { includeSchemas: [], excludeSchemas: [], includeTables: [], excludeTables: [] };

/**
 * Schemas that are never user data, as an SQL list: the catalogs, pgferry's state on the
 * target and its schema-change capture on the source.
 */
export const NON_USER_SCHEMAS_SQL = `'pg_catalog', 'information_schema', 'pgferry', 'pgferry_capture'`;

/**
 * The names of the indexes a cut-over makes on user tables for its check, and drops after it
 * (cutover/narrowing-indexes.ts): never part of the user's schema, so never copied nor compared.
 */
export const OWN_INDEX_PREFIX = 'pgferry_narrow_';

/** SQL true when the index named by `relname` (a name column or expression) is not one of those. */
export function notOwnIndexSql(relname: string): string {
  return `left(${relname}::text, ${OWN_INDEX_PREFIX.length}) <> '${OWN_INDEX_PREFIX}'`;
}

/**
 * Extensions that are replication machinery: their nodes, subscriptions, queues and origins
 * describe the source's own replication, which the target must not inherit (it would hold the
 * source's node identity and subscriptions, and CREATE EXTENSION pglogical fails on a server
 * that does not preload it). They are left out of every stage, and `check` says so.
 */
export const REPLICATION_EXTENSIONS = ['pglogical', 'pglogical_origin', 'pgl_ddl_deploy', 'bdr', 'spock', 'pgactive'] as const;

/** The names above as an SQL list, for `extname NOT IN (…)`. */
export const REPLICATION_EXTENSIONS_SQL = REPLICATION_EXTENSIONS.map((name) => `'${name}'`).join(', ');

/** pgferry's own functions on the source (the capture's event triggers and, on 10, its TRUNCATE triggers): never the user's. */
export const CAPTURE_FUNCTIONS_SQL = `SELECT p.oid FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace WHERE pn.nspname = 'pgferry_capture'`;

/** Schemas that are never user data: those above, TOAST and temporary schemas. */
export const SYSTEM_SCHEMA_SQL = `n.nspname NOT IN (${NON_USER_SCHEMAS_SQL})
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'`;

export interface QualifiedName {
  readonly schema: string;
  readonly name: string;
}

export class Scope {
  private readonly includeSchema: (s: string) => boolean;
  private readonly excludeSchema: (s: string) => boolean;
  private readonly tableMatchers: ReadonlyArray<{ pattern: string; test: (t: QualifiedName) => boolean }>;
  private readonly excludeTable: (t: QualifiedName) => boolean;

  constructor(readonly filter: ScopeFilter) {
    this.includeSchema = anyOf(filter.includeSchemas, true);
    this.excludeSchema = anyOf(filter.excludeSchemas, false);
    this.tableMatchers = filter.includeTables.map((pattern) => ({ pattern, test: tableMatcher(pattern) }));
    const excludes = filter.excludeTables.map(tableMatcher);
    this.excludeTable = (t) => excludes.some((test) => test(t));
  }

  /** Whether objects in this schema (types, functions, …) are in scope; table patterns don't apply. */
  includesSchema(schema: string): boolean {
    return this.includeSchema(schema) && !this.excludeSchema(schema);
  }

  includes(table: QualifiedName): boolean {
    if (!this.includeSchema(table.schema) || this.excludeSchema(table.schema)) return false;
    if (this.excludeTable(table)) return false;
    return this.tableMatchers.length === 0 || this.tableMatchers.some((m) => m.test(table));
  }

  /**
   * A pattern that names nothing is almost always a typo; going on would silently migrate
   * less than the user asked for.
   */
  assertPatternsMatch(tables: readonly QualifiedName[], where: string): void {
    for (const { pattern, test } of this.tableMatchers) {
      if (!tables.some(test)) {
        throw usageError(`--include-table "${pattern}" matches no table in ${where}`, 'check the spelling, or write it as schema.table');
      }
    }
    const schemas = new Set(tables.map((t) => t.schema));
    for (const pattern of this.filter.includeSchemas) {
      const matches = picomatch(pattern);
      if (![...schemas].some((schema) => matches(schema))) {
        throw usageError(
          `--include-schema "${pattern}" matches no schema with tables in ${where}`,
          'check the spelling of the schema name',
        );
      }
    }
  }
}

function anyOf(patterns: readonly string[], whenEmpty: boolean): (value: string) => boolean {
  if (patterns.length === 0) return () => whenEmpty;
  const matchers = patterns.map((p) => picomatch(p));
  return (value) => matchers.some((m) => m(value));
}

function tableMatcher(pattern: string): (t: QualifiedName) => boolean {
  const match = picomatch(pattern, { dot: true });
  return pattern.includes('.') ? (t) => match(`${t.schema}.${t.name}`) : (t) => match(t.name);
}
