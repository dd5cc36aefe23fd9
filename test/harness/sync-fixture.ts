import assert from 'node:assert/strict';
import { after, afterEach, before } from 'node:test';
import type pg from 'pg';
import type { MajorVersion } from './binaries.js';
import { killStrayPgferry, runPgferry, type CliResult, type PgferryProcess } from './cli.js';
import { startClusters, type Cluster, type ClusterOptions } from './cluster.js';
import { compareTables } from './compare.js';
import { asClusterOptions } from './pair.js';

const SYNC_TIMEOUT_MS = 120_000;

/**
 * A source and a target server for a describe block of sync tests, and the steps those tests
 * repeat: a fresh database of the same name on both, `sync --until-caught-up` with the slot
 * checked after every run, changes committed on the source, and a comparison by content.
 */
export interface SyncPair {
  readonly source: Cluster;
  readonly target: Cluster;
  /** Rows of a query on one side. */
  rows<T extends pg.QueryResultRow>(cluster: Cluster, db: string, text: string, values?: unknown[]): Promise<T[]>;
  /** A database of the same name on both servers (UTF8 unless told), `schema` run on the source. */
  freshDatabase(prefix: string, schema?: string, options?: { readonly encoding?: string }): Promise<string>;
  /** The arguments of `pgferry sync --until-caught-up` for `db`, plus `extra`. */
  syncArgs(db: string, extra?: readonly string[]): string[];
  /** `sync --until-caught-up`, which must exit 0; the slot is then checked against the target. */
  sync(db: string, extra?: readonly string[]): Promise<CliResult>;
  /** The slot never confirms more than the target committed (invariant 3). */
  assertSlotBehindTarget(db: string): Promise<void>;
  /** The target holds exactly the source's rows, table by table. */
  assertSame(db: string): Promise<void>;
  /**
   * Source transactions, one query each, committed with synchronous_commit = on (the test
   * servers run with it off, and sync --until-caught-up does not wait for unwritten WAL).
   */
  change(db: string, transactions: readonly string[]): Promise<void>;
  /** `freshDatabase`, a first sync (the clone), and the target checked equal. */
  cloned(prefix: string, schema: string): Promise<string>;
  /** The slot of the migration into `db`, read from the target's state. */
  slotOf(db: string): Promise<string>;
  /**
   * Waits until the target holds `count` rows in `table` while `sync` streams into it; fails
   * with sync's output when sync exits first or `timeoutMs` passes.
   */
  waitForRows(db: string, table: string, count: number, sync: PgferryProcess, timeoutMs?: number): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** How the tests of a describe block use the pair. */
export interface SyncPairOptions {
  /**
   * The block runs its tests at once (describe's `concurrency`): the slots of finished tests are
   * then not dropped after each (one test's end would drop the slot of another's sync between
   * two runs); they go with the servers.
   */
  readonly concurrentTests?: boolean;
}

/** Call inside `describe`: starts the two servers before its tests, drops the tests' slots after each. */
export function useSyncPair(
  from: MajorVersion | ClusterOptions,
  to: MajorVersion | ClusterOptions,
  options: SyncPairOptions = {},
): SyncPair {
  let source: Cluster | undefined;
  let target: Cluster | undefined;
  const started = () => {
    assert.ok(source && target, 'the servers are started by the before() hook');
    return { source, target };
  };
  before(async () => {
    [source, target] = await startClusters([asClusterOptions(from), asClusterOptions(to)]);
  });
  after(async () => {
    killStrayPgferry();
    await Promise.all([source?.stop(), target?.stop()]);
  });
  /** Databases of the tests run so far: their slots are dropped after each test (a server has 10). */
  const used: string[] = [];
  afterEach(async () => {
    if (options.concurrentTests === true) return;
    const databases = used.splice(0);
    if (!source || databases.length === 0) return;
    await source.sql(
      'postgres',
      `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = ANY ($1) AND slot_name LIKE 'pgferry%' AND NOT active`,
      [databases],
    );
  });

  const pair: SyncPair = {
    get source() {
      return started().source;
    },
    get target() {
      return started().target;
    },
    async rows<T extends pg.QueryResultRow>(cluster: Cluster, db: string, text: string, values?: unknown[]): Promise<T[]> {
      return cluster.withClient(db, async (client) => {
        // A test may set timeouts on its database for pgferry to cope with; the checks must not trip on them.
        await client.query('SET statement_timeout = 0');
        return (await client.query<T>(text, values)).rows;
      });
    },
    async freshDatabase(prefix, schema, options = {}) {
      const { source, target } = started();
      const encoding = options.encoding ?? 'UTF8';
      const db = await source.createDatabase({ prefix, encoding });
      used.push(db);
      await target.sql('postgres', `CREATE DATABASE ${db} TEMPLATE template0 ENCODING '${encoding}' LC_COLLATE 'C' LC_CTYPE 'C'`);
      if (schema) await source.sql(db, schema);
      return db;
    },
    syncArgs(db, extra = []) {
      const { source, target } = started();
      return ['sync', '--source', source.url(db), '--target', target.url(db), '--until-caught-up', ...extra];
    },
    async sync(db, extra = []) {
      const result = await runPgferry(pair.syncArgs(db, extra), {}, SYNC_TIMEOUT_MS);
      assert.equal(result.code, 0, `sync exited ${result.code}:\n${result.stderr.slice(-4000)}`);
      await pair.assertSlotBehindTarget(db);
      return result;
    },
    async slotOf(db) {
      const [state] = await pair.rows<{ slot: string }>(started().target, db, 'SELECT slot_name AS slot FROM pgferry.sync');
      assert.ok(state, 'pgferry.sync has its row on the target');
      return state.slot;
    },
    async assertSlotBehindTarget(db) {
      const { source, target } = started();
      const [state] = await pair.rows<{ lsn: string; slot: string }>(
        target,
        db,
        'SELECT applied_lsn::text AS lsn, slot_name AS slot FROM pgferry.sync',
      );
      assert.ok(state, 'pgferry.sync has its row on the target');
      const [slot] = await pair.rows<{ confirmed: string | null; ok: boolean | null }>(
        source,
        db,
        `SELECT confirmed_flush_lsn::text AS confirmed, confirmed_flush_lsn <= $1::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $2`,
        [state.lsn, state.slot],
      );
      assert.ok(slot, `slot ${state.slot} exists on the source`);
      assert.equal(slot.ok, true, `slot confirmed_flush_lsn ${slot.confirmed} is past the target's applied_lsn ${state.lsn}`);
    },
    async assertSame(db) {
      const { source, target } = started();
      const comparison = await compareTables(source.url(db), target.url(db));
      assert.ok(comparison.tables.length > 0, 'there were tables to compare');
      assert.ok(
        comparison.equal,
        `target differs from source:\n${JSON.stringify(
          comparison.tables.filter((t) => !t.equal),
          null,
          1,
        )}`,
      );
    },
    async change(db, transactions) {
      await started().source.withClient(db, async (client) => {
        await client.query('SET synchronous_commit = on');
        for (const transaction of transactions) await client.query(transaction);
      });
    },
    async waitForRows(db, table, count, sync, timeoutMs = 90_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const [row] = await pair.rows<{ n: number }>(started().target, db, `SELECT count(*)::int AS n FROM ${table}`);
        if (row?.n === count) return;
        if (sync.child.exitCode !== null)
          throw new Error(`sync exited (${sync.child.exitCode}) before the rows arrived:\n${sync.output().slice(-3000)}`);
        if (Date.now() > deadline)
          throw new Error(
            `the target holds ${row?.n} of ${count} rows of ${table} after ${Math.round(timeoutMs / 1000)} s:\n${sync.output().slice(-3000)}`,
          );
        await sleep(200);
      }
    },
    async cloned(prefix, schema) {
      const db = await pair.freshDatabase(prefix, schema);
      await pair.sync(db);
      await pair.assertSame(db);
      return db;
    },
  };
  return pair;
}
