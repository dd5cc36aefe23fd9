/**
 * An application stand-in for cut-over tests, the freeze benchmark and the demo: one session
 * writing transactions back to back (an insert drawing its id from a sequence, an update, now
 * and then a delete, and a ledger row with an identity id for each), first to the source,
 * then, once told, to the target. It remembers every transaction whose COMMIT it saw succeed,
 * and the longest time it went without a successful commit: the write freeze as the
 * application lived it.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { errorCode, errorMessage } from './errors.js';
import { isDisconnect } from './load.js';

export const WRITER_SCHEMA_SQL = `
  CREATE TABLE items (
    id         bigserial PRIMARY KEY,
    payload    text NOT NULL,
    counter    integer NOT NULL DEFAULT 0,
    updated_at timestamptz
  );
  CREATE TABLE ledger (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id bigint NOT NULL,
    op      text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now()
  );`;

export interface CommittedWrite {
  readonly side: 'source' | 'target';
  /** Ledger ids this transaction inserted. */
  readonly ledgerIds: readonly string[];
  readonly insertedItem: string;
  readonly deletedItem: string | undefined;
}

export interface WriterReport {
  readonly committed: readonly CommittedWrite[];
  /** Errors that are not the freeze (read-only, ended session) or a disconnect: a duplicate key would show here. */
  readonly unexpectedErrors: readonly string[];
  /** Attempts refused by the freeze. */
  readonly refused: number;
  /** Longest gap between two successful commits, in ms; across the switch this is the freeze the application saw. */
  readonly longestGapMs: number;
  /** Gap between the last commit on the source and the first on the target. */
  readonly switchGapMs: number | undefined;
}

export interface Writer {
  /** Point the writer at the target, as an operator points the application after a cut-over. */
  switchTo(url: string): void;
  readonly committedCount: number;
  /** Resolves once this many transactions committed on the current side. */
  waitForCommits(count: number, side: 'source' | 'target'): Promise<void>;
  stop(): Promise<WriterReport>;
}

/** SQLSTATE 25006: read_only_sql_transaction. */
const READ_ONLY = '25006';

export function startWriter(sourceUrl: string, options: { pauseMs?: number } = {}): Writer {
  let url = sourceUrl;
  let side: 'source' | 'target' = 'source';
  let stopping = false;
  const committed: CommittedWrite[] = [];
  const unexpected: string[] = [];
  let refused = 0;
  let lastCommitAt: number | undefined;
  let lastSourceCommitAt: number | undefined;
  let firstTargetCommitAt: number | undefined;
  let longestGap = 0;
  const recentItems: string[] = [];
  const waiters: Array<{ count: number; side: 'source' | 'target'; resolve: () => void }> = [];

  const countOn = (s: 'source' | 'target') => committed.filter((c) => c.side === s).length;
  const wake = () => {
    for (const w of [...waiters]) {
      if (countOn(w.side) >= w.count) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };

  async function oneTransaction(client: pg.Client, onSide: 'source' | 'target'): Promise<void> {
    await client.query('BEGIN');
    const ledgerIds: string[] = [];
    const inserted = await client.query<{ id: string }>(`INSERT INTO items (payload) VALUES (md5(random()::text)) RETURNING id::text`);
    const item = inserted.rows[0]!.id;
    ledgerIds.push(
      (await client.query<{ id: string }>(`INSERT INTO ledger (item_id, op) VALUES ($1, 'insert') RETURNING id::text`, [item])).rows[0]!.id,
    );
    const updateTarget = recentItems[Math.floor(Math.random() * recentItems.length)];
    if (updateTarget !== undefined) {
      await client.query(`UPDATE items SET counter = counter + 1, updated_at = now() WHERE id = $1`, [updateTarget]);
      ledgerIds.push(
        (await client.query<{ id: string }>(`INSERT INTO ledger (item_id, op) VALUES ($1, 'update') RETURNING id::text`, [updateTarget]))
          .rows[0]!.id,
      );
    }
    let deleted: string | undefined;
    if (recentItems.length > 20 && Math.random() < 0.2) {
      deleted = recentItems.splice(Math.floor(Math.random() * (recentItems.length - 10)), 1)[0]!;
      await client.query(`DELETE FROM items WHERE id = $1`, [deleted]);
      ledgerIds.push(
        (await client.query<{ id: string }>(`INSERT INTO ledger (item_id, op) VALUES ($1, 'delete') RETURNING id::text`, [deleted]))
          .rows[0]!.id,
      );
    }
    const result = await client.query('COMMIT');
    if (result.command === 'ROLLBACK') throw new Error('rolled back at COMMIT');
    const now = performance.now();
    if (lastCommitAt !== undefined) longestGap = Math.max(longestGap, now - lastCommitAt);
    lastCommitAt = now;
    if (onSide === 'source') lastSourceCommitAt = now;
    else firstTargetCommitAt ??= now;
    recentItems.push(item);
    if (recentItems.length > 200) recentItems.shift();
    committed.push({ side: onSide, ledgerIds, insertedItem: item, deletedItem: deleted });
    wake();
  }

  const running = (async () => {
    while (!stopping) {
      const onSide: 'source' | 'target' = side;
      const client = new pg.Client({ connectionString: url, application_name: 'pgferry-writer' });
      client.on('error', () => undefined);
      try {
        await client.connect();
      } catch (error) {
        if (!isDisconnect(error)) unexpected.push(`connect: ${describe(error)}`);
        await sleep(5);
        continue;
      }
      try {
        while (!stopping && side === onSide) {
          try {
            await oneTransaction(client, onSide);
          } catch (error) {
            await client.query('ROLLBACK').catch(() => undefined);
            const code = errorCode(error);
            if (code === READ_ONLY || isDisconnect(error)) {
              refused++;
              // A deleted item whose transaction failed is still there.
              break;
            }
            unexpected.push(describe(error));
            break;
          }
          if (options.pauseMs) await sleep(options.pauseMs);
        }
      } finally {
        await client.end().catch(() => undefined);
      }
      if (!stopping && side === onSide) await sleep(5);
    }
  })();

  return {
    switchTo(next: string) {
      url = next;
      side = 'target';
    },
    get committedCount() {
      return committed.length;
    },
    waitForCommits(count, onSide) {
      return new Promise((resolve) => {
        waiters.push({ count, side: onSide, resolve });
        wake();
      });
    },
    async stop() {
      stopping = true;
      await running;
      return {
        committed,
        unexpectedErrors: unexpected,
        refused,
        longestGapMs: longestGap,
        switchGapMs:
          lastSourceCommitAt !== undefined && firstTargetCommitAt !== undefined ? firstTargetCommitAt - lastSourceCommitAt : undefined,
      };
    },
  };
}

function describe(error: unknown): string {
  return `${errorCode(error) ?? ''} ${errorMessage(error)}`.trim();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
