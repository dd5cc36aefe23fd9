/**
 * A pgbench-shaped write load, in Node: CI has no pgbench binary. `createPgbenchTables` makes
 * and fills the four tables `pgbench -i -s scale` makes; `startLoad` runs pgbench's built-in
 * TPC-B-like transaction from several sessions until stopped.
 */
import pg from 'pg';
import type { Cluster } from './cluster.js';
import { describeError, errorCode, errorMessage } from './errors.js';

/** Accounts per unit of scale, as in pgbench. */
export const ACCOUNTS_PER_SCALE = 100_000;
/** Tellers per unit of scale, as in pgbench. */
export const TELLERS_PER_SCALE = 10;
/** The application_name every loader session carries, so a test can find them in pg_stat_activity. */
export const LOAD_APPLICATION_NAME = 'pgferry-load';

/** Error messages kept in a report; the rest are only counted. */
const MAX_RECORDED_ERRORS = 100;
/** Pause after a recorded error, so a persistent one cannot spin a client. */
const ERROR_BACKOFF_MS = 20;

/**
 * The tables, keys and rows of `pgbench -i -s scale` (scale 1 = 100,000 accounts), followed by
 * the VACUUM ANALYZE pgbench runs. pgbench_history has no key, as in pgbench.
 */
export async function createPgbenchTables(cluster: Cluster, db: string, scale: number): Promise<void> {
  assertScale(scale);
  await cluster.sql(
    db,
    `CREATE TABLE pgbench_branches (bid int NOT NULL, bbalance int, filler char(88)) WITH (fillfactor = 100);
     CREATE TABLE pgbench_tellers (tid int NOT NULL, bid int, tbalance int, filler char(84)) WITH (fillfactor = 100);
     CREATE TABLE pgbench_accounts (aid int NOT NULL, bid int, abalance int, filler char(84)) WITH (fillfactor = 100);
     CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
     INSERT INTO pgbench_branches SELECT g, 0, NULL FROM generate_series(1, ${scale}) g;
     INSERT INTO pgbench_tellers SELECT g, (g - 1) / ${TELLERS_PER_SCALE} + 1, 0, NULL FROM generate_series(1, ${scale * TELLERS_PER_SCALE}) g;
     INSERT INTO pgbench_accounts SELECT g, (g - 1) / ${ACCOUNTS_PER_SCALE} + 1, 0, '' FROM generate_series(1, ${scale * ACCOUNTS_PER_SCALE}) g;
     ALTER TABLE pgbench_branches ADD PRIMARY KEY (bid);
     ALTER TABLE pgbench_tellers ADD PRIMARY KEY (tid);
     ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid);`,
  );
  await cluster.sql(db, 'VACUUM ANALYZE pgbench_branches, pgbench_tellers, pgbench_accounts, pgbench_history');
}

/** The random values of one transaction, as pgbench draws them. */
export interface LoadTransaction {
  /** Which loader session runs it, 0 to clients - 1. */
  readonly client: number;
  readonly aid: number;
  readonly bid: number;
  readonly tid: number;
  readonly delta: number;
}

export interface LoadOptions {
  /** Sessions, each its own pg.Client running transactions one after another. */
  readonly clients: number;
  /** The scale the tables were made with; the random keys are drawn from its ranges. */
  readonly scale: number;
  /**
   * Transactions per second across all clients. Without it each client runs flat out. A client
   * that falls behind is not allowed to catch up in a burst: the schedule restarts from now.
   */
  readonly ratePerSecond?: number;
  /**
   * More work inside each transaction, run after the INSERT into pgbench_history and before
   * COMMIT, on the same session. An error it throws counts like any other error of the
   * transaction: it is rolled back and, unless the server went away, recorded.
   */
  readonly extra?: (client: pg.Client, transaction: LoadTransaction) => Promise<void>;
}

export interface LoadReport {
  /** Transactions whose COMMIT the server acknowledged. */
  readonly committed: number;
  /**
   * Transactions whose COMMIT was sent but whose connection broke before the answer came: the
   * server may or may not have committed them. A test checking that no write was lost allows
   * for these.
   */
  readonly inDoubt: number;
  /** Errors other than the server going away or the loader stopping, the first 100 of them. */
  readonly errors: string[];
  /** How many such errors there were in all. */
  readonly errorCount: number;
  /** One line per client that ended because its server went away (or its session was terminated). */
  readonly disconnects: string[];
  /** From start to the end of stop(). */
  readonly seconds: number;
}

export interface Load {
  /** Transactions committed so far. */
  readonly committed: number;
  /** Sessions connected so far (they connect in the background). */
  readonly connected: number;
  /**
   * Lets every transaction in flight finish, closes the sessions and reports. Calling it again
   * returns the same report.
   */
  stop(): Promise<LoadReport>;
}

/** The same as Load. */
export type LoadHandle = Load;

/**
 * Starts `clients` sessions on `url`, each running pgbench's TPC-B-like transaction in a loop:
 *
 *   BEGIN;
 *   UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
 *   SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
 *   UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
 *   UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
 *   INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
 *   COMMIT;
 *
 * The sessions connect in the background; a session that cannot connect at all is an error in
 * the report (a server that was never there did not "go away").
 */
export function startLoad(url: string, options: LoadOptions): Load {
  assertScale(options.scale);
  if (!Number.isInteger(options.clients) || options.clients < 1)
    throw new Error(`clients must be a positive integer, not ${options.clients}`);
  if (options.ratePerSecond !== undefined && !(options.ratePerSecond > 0)) {
    throw new Error(`ratePerSecond must be positive, not ${options.ratePerSecond}`);
  }

  const started = performance.now();
  const state = { stopping: false, committed: 0, inDoubt: 0, errorCount: 0, connected: 0 };
  const errors: string[] = [];
  const disconnects: string[] = [];
  /** Sleeps in progress, each woken early by stop(). */
  const sleepers = new Set<() => void>();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      sleepers.add(done);
    });
  const interval = options.ratePerSecond === undefined ? 0 : 1000 / options.ratePerSecond;
  let nextSlot = performance.now();

  /** Waits for this transaction's turn under the rate limit; false when stopped meanwhile. */
  async function waitForSlot(): Promise<boolean> {
    if (interval === 0) return !state.stopping;
    const now = performance.now();
    const slot = Math.max(nextSlot, now);
    nextSlot = slot + interval;
    if (slot > now && !state.stopping) await sleep(slot - now);
    return !state.stopping;
  }

  function recordError(error: unknown): void {
    state.errorCount += 1;
    if (errors.length < MAX_RECORDED_ERRORS) errors.push(describeError(error));
  }

  async function runClient(index: number): Promise<void> {
    const client = new pg.Client({ connectionString: url, application_name: LOAD_APPLICATION_NAME });
    // A connection that breaks between queries is reported by an 'error' event; without a
    // listener it would crash the test process. The next query then fails and ends the loop.
    let brokenBy: unknown;
    client.on('error', (error) => (brokenBy ??= error));
    const randomInt = (low: number, high: number) => low + Math.floor(Math.random() * (high - low + 1));
    try {
      try {
        await client.connect();
        state.connected += 1;
      } catch (error) {
        if (!state.stopping) recordError(new Error(`client ${index} could not connect: ${describeError(error)}`));
        return;
      }
      while (await waitForSlot()) {
        const tx: LoadTransaction = {
          client: index,
          aid: randomInt(1, ACCOUNTS_PER_SCALE * options.scale),
          bid: randomInt(1, options.scale),
          tid: randomInt(1, TELLERS_PER_SCALE * options.scale),
          delta: randomInt(-5000, 5000),
        };
        let committing = false;
        try {
          await client.query('BEGIN');
          await client.query({
            name: 'pgferry_load_account',
            text: 'UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2',
            values: [tx.delta, tx.aid],
          });
          await client.query({
            name: 'pgferry_load_balance',
            text: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1',
            values: [tx.aid],
          });
          await client.query({
            name: 'pgferry_load_teller',
            text: 'UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2',
            values: [tx.delta, tx.tid],
          });
          await client.query({
            name: 'pgferry_load_branch',
            text: 'UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2',
            values: [tx.delta, tx.bid],
          });
          await client.query({
            name: 'pgferry_load_history',
            text: 'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)',
            values: [tx.tid, tx.bid, tx.aid, tx.delta],
          });
          if (options.extra) await options.extra(client, tx);
          committing = true;
          const result = await client.query('COMMIT');
          // COMMIT of a transaction that failed inside `extra` (its error swallowed) is a ROLLBACK.
          if (result.command === 'ROLLBACK')
            recordError(new Error('transaction was rolled back at COMMIT: an error inside it was swallowed'));
          else state.committed += 1;
        } catch (error) {
          if (isDisconnect(error) || brokenBy !== undefined) {
            if (committing) state.inDoubt += 1;
            disconnects.push(`client ${index}: ${describeError(brokenBy ?? error)}`);
            return;
          }
          recordError(error);
          try {
            await client.query('ROLLBACK');
          } catch (rollbackError) {
            if (isDisconnect(rollbackError) || brokenBy !== undefined) {
              disconnects.push(`client ${index}: ${describeError(brokenBy ?? rollbackError)}`);
              return;
            }
            recordError(rollbackError);
            return;
          }
          if (!state.stopping) await sleep(ERROR_BACKOFF_MS);
        }
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  const running = Promise.all(Array.from({ length: options.clients }, (_, index) => runClient(index).catch(recordError)));
  let report: Promise<LoadReport> | undefined;
  return {
    get committed() {
      return state.committed;
    },
    get connected() {
      return state.connected;
    },
    stop() {
      report ??= (async () => {
        state.stopping = true;
        for (const wake of [...sleepers]) wake();
        await running;
        return {
          committed: state.committed,
          inDoubt: state.inDoubt,
          errors: [...errors],
          errorCount: state.errorCount,
          disconnects: [...disconnects],
          seconds: (performance.now() - started) / 1000,
        };
      })();
      return report;
    },
  };
}

function assertScale(scale: number): void {
  if (!Number.isInteger(scale) || scale < 1) throw new Error(`scale must be a positive integer, not ${scale}`);
}

const DISCONNECT_ERRNOS = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTCONN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/**
 * The server went away, or ended this session: a network error, a connection_exception
 * (class 08), or admin_shutdown, crash_shutdown, cannot_connect_now, database_dropped or
 * idle_session_timeout (57P01–57P05); or pg saying the connection is gone.
 */
export function isDisconnect(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const code = errorCode(error);
  if (code !== undefined && (DISCONNECT_ERRNOS.has(code) || code.startsWith('08') || /^57P0[1-5]$/.test(code))) return true;
  return /Connection terminated|not queryable|Connection ended|connection is closed/i.test(errorMessage(error));
}
