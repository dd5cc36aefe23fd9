import type pg from 'pg';
import { messageOf } from '../errors.js';
import { decodePgoutput, formatLsn, type Lsn } from '../replication/index.js';
import { flushSourceWal } from './fence.js';

/**
 * Writes the source committed that sync never applied: every transaction with changes to a
 * published table whose commit lies at or past sync's final applied position.
 *
 * A read-only freeze is a default, and a session may set it off for itself (or open
 * `BEGIN READ WRITE`); with `--freeze none` the operator's word is all there is. What such a
 * session commits after sync stopped would be on the source only, and nothing else would ever
 * say so. The slot still holds it: sync has let go of the slot, so the cut-over reads what the
 * slot would send next without consuming it (pg_logical_slot_peek_binary_changes).
 */
export interface LateWrites {
  readonly transactions: number;
  /** Changed rows per table (a TRUNCATE counts one per table). */
  readonly tables: ReadonlyMap<string, number>;
}

/** How long to wait for the walsender of the stopped sync to let go of the slot. */
const SLOT_RELEASE_TIMEOUT_MS = 10_000;
const SLOT_IN_USE = '55006';

export async function lateWrites(source: pg.Client, slot: string, publication: string, applied: Lsn): Promise<LateWrites> {
  const deadline = Date.now() + SLOT_RELEASE_TIMEOUT_MS;
  for (;;) {
    try {
      // What a client saw commit may not be flushed yet, and the slot shows flushed WAL only.
      await flushSourceWal(source);
      const { rows } = await source.query<{ data: Buffer }>(
        `SELECT data FROM pg_catalog.pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)`,
        [slot, publication],
      );
      return countLate(rows.map((r) => r.data), applied);
    } catch (error) {
      if ((error as { code?: string }).code !== SLOT_IN_USE || Date.now() > deadline) {
        throw new Error(`source: reading slot ${slot} for writes after sync's position ${formatLsn(applied)} failed: ${messageOf(error)}`, { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** Counts the changes of the transactions committed at or after `applied`, from pgoutput messages in order. */
export function countLate(messages: readonly Buffer[], applied: Lsn): LateWrites {
  const names = new Map<number, string>();
  const tables = new Map<string, number>();
  const add = (relationId: number) => {
    const name = names.get(relationId) ?? `relation ${relationId}`;
    tables.set(name, (tables.get(name) ?? 0) + 1);
  };
  let transactions = 0;
  let late = false;
  let changed = false;
  for (const buffer of messages) {
    const message = decodePgoutput(buffer, { inStream: false, abortInfo: false });
    switch (message.tag) {
      case 'begin':
        // The begin message carries the commit's position: a transaction whose commit record
        // starts at or past sync's final position was never applied.
        late = message.finalLsn >= applied;
        changed = false;
        break;
      case 'relation':
        names.set(message.relationId, `${message.schema}.${message.name}`);
        break;
      case 'insert':
      case 'update':
      case 'delete':
        if (late) {
          add(message.relationId);
          changed = true;
        }
        break;
      case 'truncate':
        if (late) {
          for (const id of message.relationIds) add(id);
          changed = true;
        }
        break;
      case 'commit':
        if (late && changed) transactions++;
        late = false;
        break;
      default:
        break;
    }
  }
  return { transactions, tables };
}

export function describeLateWrites(late: LateWrites): string {
  const tables = [...late.tables].sort((a, b) => b[1] - a[1]);
  const shown = tables.slice(0, 5).map(([name, rows]) => `${name} (${rows} ${rows === 1 ? 'row' : 'rows'})`);
  return `${late.transactions} ${late.transactions === 1 ? 'transaction' : 'transactions'} changing ${shown.join(', ')}${tables.length > 5 ? ` and ${tables.length - 5} more tables` : ''}`;
}
