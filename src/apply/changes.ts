import type { Lsn, Tuple } from '../replication/index.js';
import type { TargetTable } from './target-tables.js';

/** One row change of the stream, tied to its target table and to where it came from. */
export type RowChange =
  | { readonly kind: 'insert'; readonly table: TargetTable; readonly newRow: Tuple; readonly origin: ChangeOrigin }
  | {
      readonly kind: 'update';
      readonly table: TargetTable;
      readonly oldRow: Tuple | undefined;
      readonly newRow: Tuple;
      readonly origin: ChangeOrigin;
    }
  | { readonly kind: 'delete'; readonly table: TargetTable; readonly oldRow: Tuple; readonly origin: ChangeOrigin };

/** The source transaction a change belongs to, for error messages. */
export interface ChangeOrigin {
  readonly xid: number;
  readonly commitLsn: Lsn;
}

/**
 * A signal, not a failure: thrown while coalescing when a change can only be applied in exact
 * source order. The batch catches it, rolls back and replays its changes one by one.
 */
export class OrderedApplySignal extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'OrderedApplySignal';
  }
}
