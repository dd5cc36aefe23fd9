import { PgferryError } from '../errors.js';
import { quoteIdent } from '../plumbing/index.js';
import { formatLsn, type Lsn, type Tuple } from '../replication/index.js';
import type { UnitPosition } from '../state/index.js';
import type { RowChange } from './changes.js';

/**
 * A table copied at a snapshot of its own already holds every change of the transactions that
 * committed before that snapshot's position; the stream applies its changes only from there
 * on. A transaction is in a snapshot exactly when its commit record starts before the
 * snapshot's position (the slot that made the snapshot decodes from there), so a change
 * counts when its transaction's commit LSN is at or past the position. Tables not listed
 * (made on the source after the copy's plan) count from the start.
 *
 * A table split into key ranges keeps the ranges a resumed copy finished, each at its own
 * position: a row belongs to the range its key falls in, whatever page it moves to, so a
 * change counts by the range of the key it touches. An update that moves a key out of a range
 * whose copy holds it into one whose copy does not (or back) counts for one side only: it
 * becomes the delete of the old key, or the insert of the new row.
 */

/** A table whose copy is not finished: every change to it is in the copy still to come. */
export const NOT_COPIED_YET: Lsn = 0xffff_ffff_ffff_ffffn;

interface KeyRange {
  readonly lower: bigint | undefined;
  readonly upper: bigint | undefined;
  readonly position: Lsn;
}

interface TablePositions {
  readonly table: string;
  /** From here every change counts (the newest position of its units). */
  readonly last: Lsn;
  /** Before here no change counts (the oldest). */
  readonly first: Lsn;
  /** Key ranges at positions of their own; undefined when the table has one position. */
  readonly key: { readonly column: string; readonly ranges: readonly KeyRange[] } | undefined;
}

/** What the stream does with one row change. */
export type ChangeVerdict = 'apply' | 'skip' | 'delete-old' | 'insert-new';

/** What the stream does with one table of a TRUNCATE. */
export type TruncateVerdict =
  | { readonly kind: 'all' }
  | { readonly kind: 'none' }
  /** Only the rows of these key ranges (their copies are older than the TRUNCATE). */
  | { readonly kind: 'ranges'; readonly column: string; readonly ranges: ReadonlyArray<Pick<KeyRange, 'lower' | 'upper'>> };

export class CopyPositions {
  private readonly until: Lsn;

  private constructor(
    private readonly byRelation: ReadonlyMap<number, TablePositions>,
    private readonly byName: ReadonlyMap<string, TablePositions>,
  ) {
    let highest = 0n;
    for (const t of byRelation.values()) if (t.last > highest) highest = t.last;
    this.until = highest;
  }

  /** From the copy's units as the target records them; tables the stream has passed are left out. */
  static from(units: readonly UnitPosition[], appliedLsn: Lsn): CopyPositions {
    const byOid = new Map<number, UnitPosition[]>();
    for (const u of units) byOid.set(u.oid, [...(byOid.get(u.oid) ?? []), u]);
    const byRelation = new Map<number, TablePositions>();
    const byName = new Map<string, TablePositions>();
    for (const [oid, mine] of byOid) {
      const table = tablePositions(mine);
      if (table === undefined || table.last <= appliedLsn) continue;
      byRelation.set(oid, table);
      byName.set(table.table, table);
    }
    return new CopyPositions(byRelation, byName);
  }

  static readonly none = new CopyPositions(new Map(), new Map());

  /** Whether every change of this relation at `commitLsn` counts (the whole table's view; a split table answers for its newest range). */
  counts(relationId: number, commitLsn: Lsn): boolean {
    if (commitLsn >= this.until) return true;
    const table = this.byRelation.get(relationId);
    return table === undefined || commitLsn >= table.last;
  }

  /** The same, for a table named as format('%I.%I') writes it (a PostgreSQL 10 source's TRUNCATE payloads). */
  countsTable(table: string, commitLsn: Lsn): boolean {
    if (commitLsn >= this.until) return true;
    const positions = this.byName.get(table);
    return positions === undefined || commitLsn >= positions.last;
  }

  decide(change: RowChange): ChangeVerdict {
    const commit = change.origin.commitLsn;
    if (commit >= this.until) return 'apply';
    const table = this.byRelation.get(change.table.relationId);
    if (table === undefined || commit >= table.last) return 'apply';
    if (commit < table.first) return 'skip';
    const key = table.key;
    if (key === undefined) return 'skip';
    const index = change.table.columns.indexOf(key.column);
    const counted = (row: Tuple | undefined): boolean => {
      const value = index < 0 ? undefined : row?.[index];
      if (typeof value !== 'string') throw keyUnknown(change, key.column);
      return commit >= positionOf(key.ranges, BigInt(value));
    };
    if (change.kind === 'insert') return counted(change.newRow) ? 'apply' : 'skip';
    if (change.kind === 'delete') return counted(change.oldRow) ? 'apply' : 'skip';
    const toNew = counted(change.newRow);
    const oldKey = change.oldRow !== undefined && index >= 0 && typeof change.oldRow[index] === 'string';
    const fromOld = oldKey ? counted(change.oldRow) : toNew;
    if (toNew && fromOld) return 'apply';
    if (!toNew && !fromOld) return 'skip';
    return fromOld ? 'delete-old' : 'insert-new';
  }

  truncate(relationId: number, commitLsn: Lsn): TruncateVerdict {
    const table = this.byRelation.get(relationId);
    if (commitLsn >= this.until || table === undefined || commitLsn >= table.last) return { kind: 'all' };
    if (commitLsn < table.first || table.key === undefined) return { kind: 'none' };
    const older = table.key.ranges.filter((r) => r.position <= commitLsn);
    return older.length === 0 ? { kind: 'none' } : { kind: 'ranges', column: table.key.column, ranges: older };
  }

  /** The stream's position from which the target is consistent as one database: past every table's own. */
  get consistentFrom(): Lsn {
    return this.until;
  }
}

function tablePositions(units: readonly UnitPosition[]): TablePositions | undefined {
  const table = units[0]!.table;
  // Copied at the migration's one snapshot (an earlier pgferry): the stream starts after it.
  if (units.some((u) => u.done && u.position === null)) return undefined;
  const position = (u: UnitPosition): Lsn => (u.done ? u.position! : NOT_COPIED_YET);
  const positions = units.map(position);
  const last = positions.reduce((a, b) => (b > a ? b : a));
  const first = positions.reduce((a, b) => (b < a ? b : a));
  const ranges = units.map((u) => parseKeyRange(u.predicate));
  const column = ranges[0]?.column;
  const byKey = units.length > 1 && column !== undefined && ranges.every((r) => r !== undefined && r.column === column);
  if (first === last) return { table, last, first, key: undefined };
  // Other ranges than key ranges are copied again whole when a copy resumes: until then, nothing of the table counts.
  if (!byKey) {
    if (units.every((u) => u.done))
      throw new PgferryError('state-tampered', `target: the ranges of ${table} were copied at different positions but are not key ranges`, {
        side: 'target',
        fix: 'run pgferry sync --drop-existing to copy again',
      });
    return { table, last: NOT_COPIED_YET, first: NOT_COPIED_YET, key: undefined };
  }
  return {
    table,
    last,
    first,
    key: {
      column: quoteIdent(column),
      ranges: units.map((u, i) => ({ lower: ranges[i]!.lower, upper: ranges[i]!.upper, position: position(u) })),
    },
  };
}

/** A key range as the copy plan writes it: `k >= a AND k < b`, `k < b` or `k >= a`; the column as format('%I') writes it. */
export function parseKeyRange(
  predicate: string | null,
): { readonly column: string; readonly lower: bigint | undefined; readonly upper: bigint | undefined } | undefined {
  if (predicate === null) return undefined;
  let column: string | undefined;
  let lower: bigint | undefined;
  let upper: bigint | undefined;
  for (const part of predicate.split(' AND ')) {
    const match = /^("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*) (>=|<) (-?\d+)$/.exec(part);
    if (!match) return undefined;
    const name = match[1]!.startsWith('"') ? match[1]!.slice(1, -1).replace(/""/g, '"') : match[1]!;
    if (column !== undefined && column !== name) return undefined;
    column = name;
    if (match[2] === '>=') lower = BigInt(match[3]!);
    else upper = BigInt(match[3]!);
  }
  return column === undefined ? undefined : { column, lower, upper };
}

function positionOf(ranges: readonly KeyRange[], key: bigint): Lsn {
  for (const r of ranges) if ((r.lower === undefined || key >= r.lower) && (r.upper === undefined || key < r.upper)) return r.position;
  // The plan's ranges cover every key (the first and last are open): a gap is a broken plan.
  return NOT_COPIED_YET;
}

function keyUnknown(change: RowChange, column: string): PgferryError {
  return new PgferryError(
    'change-rejected',
    `target: a change to ${change.table.display} committed at ${formatLsn(change.origin.commitLsn)} carries no value of ${column}, the key its copy was split by, so sync cannot tell whether the copy holds it`,
    { side: 'target', fix: 'run pgferry sync --drop-existing to copy the table again' },
  );
}
