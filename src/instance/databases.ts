import picomatch from 'picomatch';
import type pg from 'pg';
import { withConnection, type ConnectionSpec } from '../config/index.js';
import { usageError } from '../errors.js';

/**
 * Which databases of an instance a `--all-databases` command works on. Patterns are globs on
 * the database name; excludes win. Templates and the maintenance database (`postgres`) hold no
 * application's data by convention: they are left out unless an include pattern names them.
 */
export interface DatabaseFilter {
  readonly include: readonly string[];
  readonly exclude: readonly string[];
}

/** Databases left out unless named: the templates and the maintenance database every instance has. */
export const MAINTENANCE_DATABASES: readonly string[] = ['template0', 'template1', 'postgres'];

export interface DatabaseEntry {
  readonly name: string;
  /** template0 allows no connection: it can be named, never moved. */
  readonly allowsConnections: boolean;
  readonly isTemplate: boolean;
}

/**
 * The databases the filter selects, in name order (so every command, on any machine, walks them
 * in the same order). Pure: the decision is unit-tested without a server.
 */
export function selectDatabases(all: readonly DatabaseEntry[], filter: DatabaseFilter): string[] {
  const included = filter.include.map((pattern) => ({ pattern, test: picomatch(pattern, { dot: true }) }));
  const excluded = filter.exclude.map((pattern) => picomatch(pattern, { dot: true }));
  for (const { pattern, test } of included) {
    if (!all.some((d) => test(d.name))) {
      throw usageError(`--include-database "${pattern}" matches no database on the source`, 'check the spelling of the database name');
    }
  }
  const chosen: string[] = [];
  for (const database of all) {
    const named = included.some(({ test, pattern }) => test(database.name) && (pattern === database.name || !isMaintenance(database)));
    const byDefault = included.length === 0 && !isMaintenance(database);
    if (!(named || byDefault) || excluded.some((test) => test(database.name))) continue;
    if (!database.allowsConnections) {
      throw usageError(
        `database "${database.name}" allows no connections (datallowconn is false): it cannot be migrated`,
        `leave it out with --exclude-database ${database.name}`,
      );
    }
    chosen.push(database.name);
  }
  if (chosen.length === 0) {
    throw usageError(
      'no database on the source is left to migrate by --all-databases and its filters',
      'templates and the maintenance database "postgres" are left out unless named: name one with --include-database',
    );
  }
  return chosen.sort();
}

/** A template or `postgres`: moved only when an include pattern names it exactly (a glob like `*` does not). */
function isMaintenance(database: DatabaseEntry): boolean {
  return database.isTemplate || MAINTENANCE_DATABASES.includes(database.name);
}

/** Every database of the instance `client` is connected to. */
export async function readDatabases(client: pg.Client): Promise<DatabaseEntry[]> {
  const { rows } = await client.query<{ name: string; allows: boolean; template: boolean }>(
    'SELECT datname AS name, datallowconn AS allows, datistemplate AS template FROM pg_catalog.pg_database ORDER BY datname',
  );
  return rows.map((r) => ({ name: r.name, allowsConnections: r.allows, isTemplate: r.template }));
}

/** The databases an `--all-databases` command works on, read from the source instance. */
export async function databasesToMigrate(source: ConnectionSpec, filter: DatabaseFilter): Promise<string[]> {
  return withConnection(source, async ({ client }) => selectDatabases(await readDatabases(client), filter));
}
