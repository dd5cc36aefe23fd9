import type pg from 'pg';
import { displayName, NON_USER_SCHEMAS_SQL, serverMajor, tablesOnTarget, type QualifiedName, type Scope } from '../catalog/index.js';
import { describeConnection, type ConnectionSpec } from '../config/index.js';
import { PgferryError, messageOf, usageError } from '../errors.js';
import { inTransaction, quoteQualified, serverDetail, sqlState, SQLSTATE } from '../plumbing/index.js';
import { cloneState, dropStateSchema, resetTableUnits, startClone, storedPlan, type CloneState } from '../state/index.js';
import { checkedPredicate, EXTENSION_ROWS_UNIT, extensionRowsUnit, partsFor, planUnits, type CopyUnit, type TableToCopy } from './plan.js';
import { splitFor, type SourceTable } from './source-tables.js';

/**
 * How a clone starts: afresh into empty tables (after --drop-existing dropped the old ones, if
 * asked), or continuing an interrupted clone from the plan it stored on the target. Every
 * refusal here protects data already on the target.
 */

export type StartState = 'fresh' | 'interrupted';

/** What a run asks of the start: the flags that decide it, and the target (for messages). */
export interface StartOptions {
  readonly target: ConnectionSpec;
  readonly resume: boolean;
  readonly dropExisting: boolean;
}

/** Whether this run starts afresh or continues, and the refusals that protect data already on the target. */
export async function decideStart(
  admin: pg.Client,
  options: StartOptions,
  tables: readonly SourceTable[],
  scope: Scope,
): Promise<StartState> {
  let state = await cloneState(admin);
  if (options.dropExisting) {
    await dropExisting(admin, tables, scope);
    state = 'none';
  }
  const start = startFromState(state, options.resume, describeConnection(options.target));
  if (start === 'fresh') refuseOccupiedTables(await tablesOnTarget(admin, tables));
  return start;
}

/**
 * What the clone's state on the target (after --drop-existing, 'none') lets this run do:
 * continue an interrupted clone, or start afresh once the tables in scope prove empty. A
 * finished clone, and an interrupted one without --resume, are refused.
 */
export function startFromState(state: CloneState, resume: boolean, target: string): StartState {
  if (state === 'finished') {
    throw usageError(
      `the target (${target}) already holds a finished clone`,
      'use an empty target database, or pass --drop-existing to drop the tables in scope and copy again',
      'target-not-empty',
    );
  }
  if (state === 'interrupted') {
    if (!resume) {
      throw usageError(
        'the target holds an interrupted clone',
        'pass --resume to continue it (finished tables and ranges are kept), or --drop-existing to start over',
        'target-not-empty',
      );
    }
    return 'interrupted';
  }
  return 'fresh';
}

/** A fresh clone never writes into a table in scope that the target role can't read or that already holds rows. */
export function refuseOccupiedTables(onTarget: {
  readonly nonEmptyTables: readonly QualifiedName[];
  readonly unreadableTables: readonly QualifiedName[];
}): void {
  const { nonEmptyTables, unreadableTables } = onTarget;
  if (unreadableTables.length > 0) {
    throw usageError(
      `the target role cannot read ${unreadableTables.length} table(s) in scope: ${unreadableTables.slice(0, 10).map(displayName).join(', ')}`,
      'GRANT SELECT (and INSERT, TRUNCATE) on them to the target role, or leave them out with --exclude-table',
    );
  }
  const nonEmpty = nonEmptyTables.map(displayName);
  if (nonEmpty.length > 0) {
    throw usageError(
      `${nonEmpty.length} table(s) in scope already hold rows on the target: ${nonEmpty.slice(0, 10).join(', ')}${nonEmpty.length > 10 ? ', …' : ''}`,
      'use an empty target database, leave them out with --exclude-table, or pass --drop-existing to drop the tables in scope and copy again',
      'target-not-empty',
    );
  }
}

async function dropExisting(admin: pg.Client, tables: readonly SourceTable[], scope: Scope): Promise<void> {
  const { rows } = await admin.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN (${NON_USER_SCHEMAS_SQL})`,
  );
  const inScope = rows.filter((r) => scope.includes(r) || tables.some((t) => t.schema === r.schema && t.name === r.name));
  try {
    await inTransaction(admin, async () => {
      // No CASCADE: a view or a foreign key of a table out of scope is not pgferry's to drop.
      if (inScope.length > 0) await admin.query(`DROP TABLE IF EXISTS ${inScope.map(quoteQualified).join(', ')}`);
      await dropStateSchema(admin);
    });
  } catch (error) {
    if (sqlState(error) === SQLSTATE.dependentObjectsStillExist) {
      throw usageError(
        `--drop-existing: other objects on the target depend on tables in scope (${messageOf(error)}; ${serverDetail(error) ?? ''})`,
        'drop those objects first, or widen the scope to include them',
      );
    }
    throw error;
  }
}

/** The stored plan as units to copy, each stored range checked before it runs as SQL on the source. */
function plannedFromStore(stored: readonly StoredUnit[], tables: ReadonlyMap<string, SourceTable>): PlannedUnit[] {
  const counts = new Map<string, number>();
  for (const u of stored) counts.set(u.table, (counts.get(u.table) ?? 0) + 1);
  return stored.map((u) => ({
    table: u.table,
    unit: u.unit,
    // A table gone from the source by this name is checked by its OID before any range is read.
    predicate: tables.has(u.table) ? storedRange(u.predicate, tables.get(u.table)?.intKey) : null,
    whole: u.unit === 'whole',
    // Taken from the source again, never from the stored plan.
    ...(u.unit === EXTENSION_ROWS_UNIT ? { rowFilter: tables.get(u.table)?.extensionRows?.filter ?? '' } : {}),
    estimatedBytes: (tables.get(u.table)?.bytes ?? 0) / (counts.get(u.table) ?? 1),
    done: u.done,
    oid: u.oid,
  }));
}

function storedRange(predicate: string | null, intKey: string | undefined): string | null {
  try {
    return checkedPredicate(predicate, intKey);
  } catch (error) {
    throw new PgferryError('state-tampered', `target: ${messageOf(error)} (pgferry.copy_units was changed by hand?)`, {
      side: 'target',
      fix: 'run pgferry clone --drop-existing to copy again with a new plan',
    });
  }
}

type StoredUnit = Awaited<ReturnType<typeof storedPlan>>[number];

/**
 * Tables split into ranges of which some are done and some not, to be copied again whole:
 * ranges of one table copied at two snapshots don't add up (an UPDATE in between moves a row
 * to a page range, or changes its key into a range, not copied yet, and keeping the finished
 * ranges would copy it twice). Finished tables are kept. Key ranges are kept too when a stream
 * completes the copy: each has a position of its own, from which the stream applies its changes.
 */
export function halfDoneSplitTables(stored: readonly StoredUnit[], keepKeyRanges: boolean): Set<string> {
  const units = new Map<string, StoredUnit[]>();
  for (const u of stored) units.set(u.table, [...(units.get(u.table) ?? []), u]);
  const half = [...units].filter(
    ([, us]) =>
      us.some((u) => u.done) &&
      us.some((u) => !u.done) &&
      us.some((u) => u.unit !== 'whole') &&
      !(keepKeyRanges && us.some((u) => u.unit.startsWith('key '))),
  );
  return new Set(half.map(([table]) => table));
}

/** Empties the tables and marks their units not done, in one transaction. */
async function restartTables(admin: pg.Client, tables: ReadonlySet<string>): Promise<void> {
  if (tables.size === 0) return;
  await inTransaction(admin, async () => {
    for (const table of tables) {
      await admin.query(`TRUNCATE ONLY ${table}`);
      await resetTableUnits(admin, table);
    }
  });
}

export interface PlannedUnit extends CopyUnit {
  readonly done: boolean;
  /** The table's OID on the source, when the plan recorded it. */
  readonly oid: number | null;
}

/**
 * The units to copy: a new plan stored on the target for a fresh clone, or the stored plan of
 * the interrupted one, its half-done split tables restarted.
 */
export async function planOrResume(
  admin: pg.Client,
  planner: pg.Client,
  tables: readonly SourceTable[],
  splitThreshold: number,
  resumed: boolean,
  /**
   * Set when a change stream completes the copy (sync): the schema planned with, stored for a
   * resumption; tables made or dropped on the source since the plan are the stream's business.
   */
  followedWith: string | undefined,
): Promise<PlannedUnit[]> {
  const streamFollows = followedWith !== undefined;
  if (resumed) {
    const stored = await storedPlan(admin);
    if (!streamFollows)
      refuseOtherTables(
        stored.map((u) => u.table),
        tables.map((t) => t.qname),
      );
    // Key ranges keep positions of their own when a stream completes the copy (copy-positions.ts).
    const restarted = halfDoneSplitTables(stored, streamFollows);
    await restartTables(admin, restarted);
    return plannedFromStore(
      stored.map((u) => (restarted.has(u.table) ? { ...u, done: false } : u)),
      new Map(tables.map((t) => [t.qname, t])),
    );
  }

  const major = await serverMajor(planner);
  const toCopy: TableToCopy[] = [];
  for (const t of tables.filter((t) => t.extensionRows === undefined)) {
    const parts = partsFor(t.bytes, splitThreshold);
    toCopy.push({ qname: t.qname, bytes: t.bytes, splitBy: await splitFor(planner, t, parts, major, streamFollows) });
  }
  const units = [
    ...planUnits(toCopy, splitThreshold),
    ...tables.flatMap((t) => (t.extensionRows ? [extensionRowsUnit(t.qname, t.extensionRows.filter, t.bytes)] : [])),
  ];
  const oids = new Map(tables.map((t) => [t.qname, t.oid]));
  await startClone(
    admin,
    units.map((u, position) => ({ table: u.table, unit: u.unit, position, predicate: u.predicate, oid: oids.get(u.table) ?? null })),
    followedWith,
  );
  return units.map((u) => ({ ...u, done: false, oid: oids.get(u.table) ?? null }));
}

/** A resumed clone copies the tables the interrupted one planned, no more and no fewer. */
export function refuseOtherTables(planned: readonly string[], now: readonly string[]): void {
  const plannedSet = new Set(planned);
  const nowSet = new Set(now);
  const added = [...nowSet].filter((t) => !plannedSet.has(t));
  const gone = [...plannedSet].filter((t) => !nowSet.has(t));
  if (added.length > 0 || gone.length > 0) {
    throw usageError(
      `the interrupted clone covered other tables than this run (${[...added.map((t) => `new: ${t}`), ...gone.map((t) => `gone: ${t}`)].slice(0, 5).join(', ')})`,
      'resume with the same --include/--exclude filters, or pass --drop-existing to start over',
      'target-not-empty',
    );
  }
}
