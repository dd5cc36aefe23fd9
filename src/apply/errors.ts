import { PgferryError, messageOf } from '../errors.js';
import { sqlState } from '../plumbing/index.js';
import { formatLsn, UNCHANGED, type Tuple } from '../replication/index.js';
import type { RowChange } from './changes.js';

/** A change the target refuses even in exact source order: stop, saying which. */
export class ChangeRejected extends PgferryError {
  constructor(
    message: string,
    readonly sqlState: string | undefined,
    cause: unknown,
    detail: string,
  ) {
    super('change-rejected', message, {
      side: 'target',
      fix: 'make the target accept the change (a constraint, trigger or column type that differs from the source), then run pgferry sync again: it continues from this transaction',
      cause,
      detail,
    });
  }
}

/** The identifying columns of the changed row, by name only: their values are row data. */
function identifyingColumns(change: RowChange): string {
  const { table } = change;
  if (table.identity.kind === 'key') return `key ${table.identity.columns.map((i) => table.columns[i]).join(', ')}`;
  return 'the whole row';
}

/** The row's values, for --debug only. */
function describeRow(change: RowChange): string {
  const { table } = change;
  const row: Tuple = change.kind === 'insert' ? change.newRow : change.kind === 'update' ? (change.oldRow ?? change.newRow) : change.oldRow;
  const shown = (value: Tuple[number]) =>
    value === null ? 'NULL' : value === UNCHANGED ? '(unchanged)' : JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  const columns: readonly number[] = table.identity.kind === 'key' ? table.identity.columns : row.map((_, i) => i);
  return columns.map((i) => `${table.columns[i]}=${shown(row[i]!)}`).join(', ');
}

/** The error for a change the target refused in the exact-order replay: which change, where from, and why. */
export function rejected(change: RowChange, error: unknown): ChangeRejected {
  return new ChangeRejected(
    `target: ${change.kind.toUpperCase()} on ${change.table.display} (by ${identifyingColumns(change)}) from source transaction ${change.origin.xid} committed at ${formatLsn(change.origin.commitLsn)} was rejected: ${messageOf(error)}`,
    sqlState(error),
    error,
    `the rejected row (${change.kind}): ${describeRow(change)}`,
  );
}
