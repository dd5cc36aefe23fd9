import { quoteIdent } from '../plumbing/index.js';
import type { ColumnDefinition, DroppedObject, PartitionBound, TableDefinition, TouchedObject } from './payload.js';

/** A table on the target as it stands: its columns in order, and its own constraints. */
export interface TargetShape {
  readonly exists: boolean;
  readonly columns: readonly ColumnDefinition[];
  readonly constraints: readonly { readonly name: string; readonly definition: string }[];
  readonly partitionOf: string | null;
  /** Its partitions, when it is partitioned. */
  readonly partitions: readonly PartitionBound[] | null;
  /** Which of the source's partitions of it are tables on the target, attached or not. */
  readonly tablesOnTarget: ReadonlySet<string>;
}

/** A table the target does not have. */
export const ABSENT: TargetShape = {
  exists: false,
  columns: [],
  constraints: [],
  partitionOf: null,
  partitions: null,
  tablesOnTarget: new Set(),
};

/** Thrown when a captured change can't be rebuilt: the caller names the command and the way on. */
export class CannotRebuild extends Error {}

/**
 * The commands a rebuild from definitions reproduces exactly. Any other (COMMENT, GRANT, ALTER
 * TYPE, a rename of a function, …) inside a DO block or a function stops sync, named, rather than
 * leave the target silently different.
 */
const REBUILT_TAGS: ReadonlySet<string> = new Set([
  'CREATE TABLE',
  'ALTER TABLE',
  'DROP TABLE',
  'CREATE INDEX',
  'DROP INDEX',
  'CREATE VIEW',
  'DROP VIEW',
  'DROP MATERIALIZED VIEW',
  'CREATE FUNCTION',
  'DROP FUNCTION',
  'CREATE PROCEDURE',
  'DROP PROCEDURE',
  'CREATE TRIGGER',
  'DROP TRIGGER',
  'CREATE SEQUENCE',
  'DROP SEQUENCE',
  'DROP TYPE',
  'CREATE SCHEMA',
  'DROP SCHEMA',
]);

export function assertRebuildable(tag: string): void {
  if (!REBUILT_TAGS.has(tag)) throw new CannotRebuild(`${tag} run inside another statement is not rebuilt from the catalog`);
}

/**
 * The statements that turn the target's table into the source's definition. Columns match by
 * position: both sides were made from the same definition and every change since arrived in
 * order, and a column added goes to the end on both; dropped columns are gone already (the
 * command's sql_drop ran first), so a name that differs at a position is a rename.
 */
export function tableStatements(table: string, target: TargetShape, source: TableDefinition, mayCreate: boolean): string[] {
  if (!target.exists) {
    // Only CREATE TABLE makes a table: one that appears otherwise was renamed or moved, and making
    // it anew would leave the old one behind, stale.
    if (!mayCreate) throw new CannotRebuild(`${table} is not on the target: a table renamed or moved to another schema can't be followed`);
    return createTable(table, source);
  }
  const statements: string[] = [];
  if (source.columns.length < target.columns.length) {
    throw new CannotRebuild(`${table} has ${source.columns.length} columns on the source and ${target.columns.length} on the target`);
  }
  const alter = (clause: string) => statements.push(`ALTER TABLE ${table} ${clause}`);
  source.columns.forEach((wanted, i) => {
    const have = target.columns[i];
    const column = quoteIdent(wanted.name);
    if (!have) {
      alter(`ADD COLUMN ${columnDefinition(wanted)}`);
      return;
    }
    if (have.name !== wanted.name) alter(`RENAME COLUMN ${quoteIdent(have.name)} TO ${column}`);
    if (have.generated !== wanted.generated || (wanted.generated !== '' && have.default !== wanted.default)) {
      throw new CannotRebuild(`column ${wanted.name} of ${table} changed how it is generated`);
    }
    if (have.type !== wanted.type) alter(`ALTER COLUMN ${column} TYPE ${wanted.type} USING ${column}::${wanted.type}`);
    if (wanted.generated === '' && have.default !== wanted.default) {
      alter(wanted.default === null ? `ALTER COLUMN ${column} DROP DEFAULT` : `ALTER COLUMN ${column} SET DEFAULT ${wanted.default}`);
    }
    if (have.identity !== wanted.identity) {
      if (wanted.identity === '') alter(`ALTER COLUMN ${column} DROP IDENTITY`);
      else if (have.identity === '') alter(`ALTER COLUMN ${column} ADD GENERATED ${identityKind(wanted.identity)} AS IDENTITY`);
      else alter(`ALTER COLUMN ${column} SET GENERATED ${identityKind(wanted.identity)}`);
    }
    if (have.notNull !== wanted.notNull) alter(`ALTER COLUMN ${column} ${wanted.notNull ? 'SET' : 'DROP'} NOT NULL`);
  });
  const wantedConstraints = new Map(source.constraints.map((k) => [k.name, k.definition]));
  const haveConstraints = new Map(target.constraints.map((k) => [k.name, k.definition]));
  for (const [name, definition] of haveConstraints) {
    if (wantedConstraints.get(name) !== definition) alter(`DROP CONSTRAINT ${quoteIdent(name)}`);
  }
  for (const [name, definition] of wantedConstraints) {
    if (haveConstraints.get(name) !== definition) alter(`ADD CONSTRAINT ${quoteIdent(name)} ${definition}`);
  }
  if (target.partitionOf !== null && target.partitionOf !== source.partitionOf) {
    statements.push(`ALTER TABLE ${target.partitionOf} DETACH PARTITION ${table}`);
  }
  if (source.partitionOf !== null && source.bound !== null && target.partitionOf !== source.partitionOf) {
    statements.push(`ALTER TABLE ${source.partitionOf} ATTACH PARTITION ${table} ${source.bound}`);
  }
  statements.push(...partitionStatements(table, target, source));
  return statements;
}

/**
 * ATTACH and DETACH PARTITION name the parent: the partition list says which partition came or
 * went. A partition the source detached is detached on the target; one it attached (pg_partman
 * makes each with CREATE TABLE … (LIKE …), then attaches it, inside one function) is attached
 * when the target has the table. One the target lacks is out of the migration's scope: left alone.
 * Detaching first frees a range a new partition may take.
 */
function partitionStatements(table: string, target: TargetShape, source: TableDefinition): string[] {
  if (source.partitions === null || target.partitions === null) return [];
  const wanted = new Set(source.partitions.map((p) => p.name));
  const have = new Set(target.partitions.map((p) => p.name));
  return [
    ...target.partitions.filter((p) => !wanted.has(p.name)).map((p) => `ALTER TABLE ${table} DETACH PARTITION ${p.name}`),
    ...source.partitions
      .filter((p) => !have.has(p.name) && target.tablesOnTarget.has(p.name))
      .map((p) => `ALTER TABLE ${table} ATTACH PARTITION ${p.name} ${p.bound}`),
  ];
}

function createTable(table: string, source: TableDefinition): string[] {
  const constraints = source.constraints.map((k) => `ALTER TABLE ${table} ADD CONSTRAINT ${quoteIdent(k.name)} ${k.definition}`);
  if (source.partitionOf !== null && source.bound !== null) {
    // The partition takes its columns from the parent; its own defaults and NOT NULLs follow.
    const own = source.columns.flatMap((c) => [
      ...(c.default === null ? [] : [`ALTER TABLE ${table} ALTER COLUMN ${quoteIdent(c.name)} SET DEFAULT ${c.default}`]),
      ...(c.notNull ? [`ALTER TABLE ${table} ALTER COLUMN ${quoteIdent(c.name)} SET NOT NULL`] : []),
    ]);
    return [`CREATE TABLE ${table} PARTITION OF ${source.partitionOf} ${source.bound}`, ...own, ...constraints];
  }
  const partitioned = source.partitionKey === null ? '' : ` PARTITION BY ${source.partitionKey}`;
  return [`CREATE TABLE ${table} (${source.columns.map(columnDefinition).join(', ')})${partitioned}`, ...constraints];
}

function columnDefinition(column: ColumnDefinition): string {
  const name = `${quoteIdent(column.name)} ${column.type}`;
  if (column.generated !== '')
    return `${name} GENERATED ALWAYS AS (${column.default ?? 'NULL'}) ${column.generated === 'v' ? 'VIRTUAL' : 'STORED'}`;
  const value =
    column.identity !== ''
      ? ` GENERATED ${identityKind(column.identity)} AS IDENTITY`
      : column.default === null
        ? ''
        : ` DEFAULT ${column.default}`;
  return `${name}${value}${column.notNull ? ' NOT NULL' : ''}`;
}

function identityKind(identity: string): string {
  return identity === 'a' ? 'ALWAYS' : 'BY DEFAULT';
}

/** The statement that makes (or remakes) an object from its captured definition; tables go through tableStatements. */
export function objectStatements(object: TouchedObject): string[] {
  if (object.type === 'schema') return [`CREATE SCHEMA IF NOT EXISTS ${object.identity}`];
  const definition = object.definition;
  if (typeof definition !== 'string') throw new CannotRebuild(`no definition of ${object.type} ${object.identity} was captured`);
  switch (object.type) {
    case 'index':
      return [`DROP INDEX IF EXISTS ${object.identity}`, definition];
    case 'trigger': {
      const [name, table] = splitOn(object.identity);
      return [`DROP TRIGGER IF EXISTS ${name} ON ${table}`, definition];
    }
    case 'view':
    case 'function':
    case 'procedure':
      return [definition];
    default:
      throw new CannotRebuild(`${object.type} ${object.identity} can't be rebuilt from the catalog`);
  }
}

/** What a dropped object's removal is on the target; undefined where the table's rebuild covers it (defaults). */
export function dropStatement(dropped: DroppedObject): string | undefined {
  const { identity } = dropped;
  switch (dropped.type) {
    case 'table':
    case 'view':
    case 'materialized view':
    case 'sequence':
    case 'type':
    case 'schema':
      return `DROP ${dropped.type.toUpperCase()} IF EXISTS ${identity} CASCADE`;
    case 'index':
    case 'function':
    case 'procedure':
      return `DROP ${dropped.type.toUpperCase()} IF EXISTS ${identity}`;
    case 'trigger': {
      const [name, table] = splitOn(identity);
      return `DROP TRIGGER IF EXISTS ${name} ON ${table}`;
    }
    case 'table constraint': {
      const [name, table] = splitOn(identity);
      return `ALTER TABLE ${table} DROP CONSTRAINT IF EXISTS ${name}`;
    }
    case 'table column': {
      const parts = splitIdentifiers(identity);
      if (parts.length !== 3) throw new CannotRebuild(`dropped column ${identity} is not schema.table.column`);
      return `ALTER TABLE ${parts[0]}.${parts[1]} DROP COLUMN IF EXISTS ${parts[2]}`;
    }
    case 'default value':
    case 'index column':
      return undefined;
    default:
      throw new CannotRebuild(`dropped ${dropped.type} ${identity} can't be dropped on the target from its name`);
  }
}

/** "name on schema.table" (a trigger's or a constraint's identity) into its two halves, quotes kept. */
function splitOn(identity: string): [string, string] {
  let quoted = false;
  for (let i = 0; i < identity.length; i++) {
    if (identity[i] === '"') quoted = !quoted;
    else if (!quoted && identity.startsWith(' on ', i)) return [identity.slice(0, i), identity.slice(i + 4)];
  }
  throw new CannotRebuild(`"${identity}" does not name an object on a table`);
}

/** Dot-separated identifiers, quotes kept. */
function splitIdentifiers(identity: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < identity.length; i++) {
    if (identity[i] === '"') quoted = !quoted;
    else if (!quoted && identity[i] === '.') {
      parts.push(identity.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(identity.slice(start));
  return parts;
}
