// pg-copy-streams ships `both()` (CopyBoth, used by START_REPLICATION); its published types don't.
import 'pg-copy-streams';
import type { Duplex, DuplexOptions } from 'node:stream';
import type { Connection, Submittable } from 'pg';

declare module 'pg-copy-streams' {
  export interface CopyBothOptions extends DuplexOptions {
    /** Push each CopyData payload as one chunk. */
    alignOnCopyDataFrame?: boolean;
  }
  export class CopyBothQueryStream extends Duplex implements Submittable {
    text: string;
    submit(connection: Connection): void;
  }
  export function both(txt: string, options?: CopyBothOptions): CopyBothQueryStream;
}
