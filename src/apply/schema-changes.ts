import type pg from 'pg';
import type { ChangeOrigin } from './changes.js';

/**
 * Where the apply hands the schema changes it meets in a transaction (ddl/ implements it):
 * the apply writes every row change before one, and learns the target's tables again after.
 */
export interface SchemaChangeSink {
  /** Prefix of the logical messages that carry them. */
  readonly messagePrefix: string;
  /** The table whose inserted rows carry them on sources whose pgoutput has no messages (before 14). */
  readonly queueTable: { readonly schema: string; readonly name: string } | undefined;
  /** One per reading of a source transaction (a replayed batch reads it again from the start). */
  forTransaction(): SchemaChangeReader;
}

export interface SchemaChangeReader {
  /** Runs one captured change on the target, inside the batch's transaction. */
  apply(target: pg.Client, payload: string, origin: ChangeOrigin): Promise<void>;
}
