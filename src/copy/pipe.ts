import type pg from 'pg';
import { messageOf, PgferryError, type Side } from '../errors.js';
import { markUnitDone } from '../state/index.js';
import type { CopyUnit } from './plan.js';
import type { Lsn } from '../replication/index.js';
import { relayCopy, RelayFailure } from './copy-relay.js';
import { checkTableAtSnapshot, type PlannedTable } from './table-at-snapshot.js';
import { destroyClient, quoteLiteral, sqlState, SQLSTATE, withDeadline } from '../plumbing/index.js';

export interface UnitCopy {
  readonly unit: CopyUnit;
  /** Column list, quoted, in source order; generated columns left out (the target computes them). */
  readonly columns: readonly string[];
  readonly binary: boolean;
}

export interface UnitResult {
  readonly rows: number;
  readonly bytes: number;
  readonly seconds: number;
  /** Set when the table changed since the plan and was not copied (see table-at-snapshot.ts). */
  readonly deferred?: string;
}

/** The snapshot a unit is read at. */
export interface CopyAt {
  readonly snapshot: string;
  /**
   * The snapshot's position, when the table has its own (sync): recorded with the unit, and the
   * table is checked against its plan first.
   */
  readonly position?: Lsn;
  readonly table?: PlannedTable;
}

/**
 * Relays one unit straight from the source's COPY TO into the target's COPY FROM (copy-relay.ts:
 * the source's CopyData messages are forwarded as they arrive, nothing parsed or held beyond
 * a socket chunk), so memory stays flat whatever the row size. The source reads under the migration snapshot; the target loads in one
 * transaction that also marks the unit done, so a unit is either entirely there or not at all.
 * A whole-table unit truncates first, which also lets COPY FREEZE skip later hint-bit and
 * freeze writes.
 */
export async function copyUnit(
  source: pg.Client,
  target: pg.Client,
  job: UnitCopy,
  at: CopyAt,
  onBytes: (bytes: number) => void,
): Promise<UnitResult> {
  const started = performance.now();
  const { unit } = job;
  // A table with no column to copy (none at all, or only generated ones) still has rows: its
  // COPY names no column (an empty list is a syntax error), and SELECT FROM … reads rows of none.
  const columns = job.columns.join(', ');
  const columnList = job.columns.length > 0 ? ` (${columns})` : '';
  const format = job.binary ? 'binary' : 'text';
  let failedSide: Side | undefined = 'source';
  try {
    await source.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await source.query(`SET TRANSACTION SNAPSHOT ${quoteLiteral(at.snapshot)}`);
    const found = at.table ? await checkTableAtSnapshot(source, at.table) : ({ kind: 'same' } as const);
    if (found.kind === 'changed') {
      await source.query('COMMIT');
      return { rows: 0, bytes: 0, seconds: 0, deferred: found.why };
    }
    failedSide = 'target';
    await target.query('BEGIN');
    failedSide = undefined;
    if (found.kind === 'gone') {
      // Dropped before the snapshot: the stream replays the DROP; nothing of it is copied.
      await markUnitDone(target, unit.table, unit.unit, 0, 0, 0, at.position);
      await target.query('COMMIT');
      await source.query('COMMIT');
      return { rows: 0, bytes: 0, seconds: 0 };
    }
    if (unit.whole) await target.query(`TRUNCATE ONLY ${unit.table}`);
    // An extension's shipped rows stay; the user's rows are replaced (a resumed copy repeats them).
    if (unit.rowFilter !== undefined) await target.query(`DELETE FROM ONLY ${unit.table} ${unit.rowFilter}`);
    const sql =
      unit.rowFilter !== undefined
        ? `COPY (SELECT ${columns} FROM ONLY ${unit.table} ${unit.rowFilter}) TO STDOUT (FORMAT ${format})`
        : unit.predicate === null && columnList !== ''
          ? `COPY ${unit.table}${columnList} TO STDOUT (FORMAT ${format})`
          : `COPY (SELECT ${columns} FROM ONLY ${unit.table}${unit.predicate === null ? '' : ` WHERE ${unit.predicate}`}) TO STDOUT (FORMAT ${format})`;
    const copyIn = `COPY ${unit.table}${columnList} FROM STDIN (FORMAT ${format}${unit.whole ? ', FREEZE' : ''})`;
    const { rows, bytes } = await relayCopy(source, target, sql, copyIn, onBytes).catch((error: unknown) => {
      // Which side failed first decides what the error says.
      if (error instanceof RelayFailure) {
        failedSide = error.side;
        throw error.error;
      }
      throw error;
    });
    const seconds = (performance.now() - started) / 1000;
    failedSide = 'target';
    await markUnitDone(target, unit.table, unit.unit, rows, bytes, seconds, at.position);
    await target.query('COMMIT');
    failedSide = 'source';
    await source.query('COMMIT');
    return { rows, bytes, seconds };
  } catch (error) {
    // A source left in the middle of COPY OUT would queue the ROLLBACK behind a stream nobody
    // reads: close that session instead (the copy stops on a failure anyway).
    destroyClient(source);
    await withDeadline(target.query('ROLLBACK'), 10_000, 'rolling back the unit').catch(() => destroyClient(target));
    throw unitFailed(unit, failedSide ?? 'target', error);
  }
}

/** A unit's failure, naming the side that failed first and the way on. */
function unitFailed(unit: CopyUnit, side: Side, error: unknown): PgferryError {
  return new PgferryError(
    'copy-failed',
    `${side}: copying ${unit.table}${unit.unit === 'whole' ? '' : ` (${unit.unit})`} failed: ${messageOf(error)}`,
    {
      side,
      fix: isRowSecurityError(error)
        ? `the ${side} role is subject to the table's row-level security, which would hide rows: ALTER ROLE … BYPASSRLS (as a superuser), or ALTER TABLE ${unit.table} NO FORCE ROW LEVEL SECURITY if the role owns it; then run pgferry clone again with --resume`
        : 'fix the cause and run pgferry clone again with --resume: finished tables are kept',
      cause: error,
    },
  );
}

/** The server refused a query because row-level security would have filtered it (row_security = off). */
export function isRowSecurityError(error: unknown): boolean {
  const cause = error instanceof Error ? error.cause : undefined;
  return sqlState(error) === SQLSTATE.insufficientPrivilege && /row-level security/.test(messageOf(error) + messageOf(cause ?? ''));
}

/** Binary where every column is binary-safe and has the same type on both sides; text otherwise. */
export function chooseFormat(
  columns: ReadonlyArray<{ name: string; type: string; binarySafe: boolean }>,
  targetTypes: ReadonlyMap<string, string>,
): boolean {
  return columns.every((c) => c.binarySafe && targetTypes.get(c.name) === c.type);
}
