/**
 * Sync after its connections are stranded (issue 31): a NAT or firewall forgets the flows
 * between pgferry and one server; nothing is closed, nothing more arrives either way, new
 * connections work. The server keeps the old backends (to it their client is still there),
 * and a backend caught in the middle of a batch keeps that batch's row locks. With the default
 * settings (the source's wal_sender_timeout, pgferry's own bounds), sync must apply again within
 * two minutes of the fault and end equal by content.
 *
 * The three cases run at once, each through proxies of its own: each waits on pgferry's
 * detection of a silent peer, which is the bulk of its time.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import pg from 'pg';
import { spawnPgferry, startProxy, stopWithin30s, waitUntilStreaming, type FaultProxy, type PgferryProcess } from '../harness/index.js';
import { useSyncPair } from '../harness/sync-fixture.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** What the issue asks: applying again within two minutes of the fault. */
const APPLY_AGAIN_WITHIN_MS = 120_000;

describe('sync 17 → 18 after its connections are stranded for good', { concurrency: true }, () => {
  const pair = useSyncPair(17, 18, { concurrentTests: true });

  interface Streaming {
    readonly db: string;
    readonly sync: PgferryProcess;
    readonly toSource: FaultProxy;
    readonly toTarget: FaultProxy;
  }

  /** A cloned database, and a sync with default settings streaming into it through proxies of its own. */
  async function streamingThroughProxies(prefix: string, schema: string): Promise<Streaming> {
    const [toSource, toTarget] = await Promise.all([startProxy(pair.source), startProxy(pair.target)]);
    const db = await pair.cloned(prefix, schema);
    const sync = spawnPgferry(['sync', '--source', toSource.url(pair.source, db), '--target', toTarget.url(pair.target, db)]);
    await waitUntilStreaming(pair.target, db, sync);
    return { db, sync, toSource, toTarget };
  }

  /**
   * Stops sync (within 30 s, whatever the strand left), closes the proxies (the stranded
   * backends then see their client gone, whatever pgferry did), and checks the end state with a
   * direct sync: every change on the target, nothing twice.
   */
  async function finish({ db, sync, toSource, toTarget }: Streaming): Promise<void> {
    try {
      await stopWithin30s(sync);
    } finally {
      await Promise.all([toSource.close(), toTarget.close()]);
    }
    await pair.sync(db);
    await pair.assertSame(db);
  }

  /** Runs `test` on a streaming sync; on failure the sync and proxies are still stopped and closed. */
  async function withStreaming(prefix: string, schema: string, test: (run: Streaming) => Promise<void>): Promise<void> {
    const run = await streamingThroughProxies(prefix, schema);
    try {
      await test(run);
    } catch (error) {
      if (run.sync.child.exitCode === null) run.sync.child.kill('SIGKILL');
      await Promise.all([run.toSource.close(), run.toTarget.close()]);
      throw error;
    }
    await finish(run);
  }

  const insert = (db: string, from: number, to: number) =>
    pair.change(db, [`INSERT INTO t SELECT g, md5(g::text) FROM generate_series(${from}, ${to}) g`]);

  /** Time left until the deadline counted from `fault`. */
  const leftOf = (fault: number) => Math.max(0, fault + APPLY_AGAIN_WITHIN_MS - Date.now());
  /** For the record (not asserted beyond the deadline): how long the apply stood still. */
  const sayHowLong = (t: TestContext, fault: number) =>
    t.diagnostic(`applied again ${((Date.now() - fault) / 1000).toFixed(1)} s after the fault`);

  it('applies again within two minutes when its target connections are stranded while idle', async (t) => {
    await withStreaming('strandtarget', `CREATE TABLE t (id int PRIMARY KEY, v text)`, async ({ db, sync, toTarget }) => {
      await insert(db, 1, 100);
      await pair.waitForRows(db, 't', 100, sync);
      const fault = Date.now();
      assert.ok(toTarget.strand() > 0, 'there were connections to strand');
      await insert(db, 101, 1100);
      await pair.waitForRows(db, 't', 1100, sync, leftOf(fault));
      sayHowLong(t, fault);
    });
  });

  it('applies again within two minutes when its target connections are stranded in the middle of a batch that holds row locks', async (t) => {
    const rows = 200_000;
    const schema = `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, ${rows}) g`;
    await withStreaming('strandbatch', schema, async ({ db, sync, toTarget }) => {
      // One source transaction updating every row: one batch, written in parts, each part's rows
      // locked until the batch commits. The apply after the reconnect updates the same rows.
      await pair.change(db, [`UPDATE t SET v = v || '+'`]);
      const holder = await pair.target.withClient(db, (client) => firstWriterOf(client, 't', sync));
      const fault = Date.now();
      assert.ok(toTarget.strand() > 0, 'there were connections to strand');
      await sleep(1000);
      const [held] = await pair.rows<{ n: number }>(
        pair.target,
        db,
        `SELECT count(*)::int AS n FROM pg_locks WHERE pid = $1 AND relation = 't'::regclass AND mode = 'RowExclusiveLock' AND granted`,
        [holder],
      );
      assert.equal(held?.n, 1, 'the strand caught the batch in flight: its backend still holds its rows');
      await insert(db, rows + 1, rows + 100);
      await pair.waitForRows(db, 't', rows + 100, sync, leftOf(fault));
      sayHowLong(t, fault);
      assert.match(said(sync), new RegExp(`ended pgferry's own session pid ${holder} `), 'pgferry ended the stranded backend itself');
      const [updated] = await pair.rows<{ n: number }>(pair.target, db, `SELECT count(*)::int AS n FROM t WHERE v LIKE '%+'`);
      assert.equal(updated?.n, rows, 'the update stranded in flight was applied again');
    });
  });

  it('applies again within two minutes when its source connections are stranded', async (t) => {
    await withStreaming('strandsource', `CREATE TABLE t (id int PRIMARY KEY, v text)`, async ({ db, sync, toSource }) => {
      await insert(db, 1, 100);
      await pair.waitForRows(db, 't', 100, sync);
      const fault = Date.now();
      assert.ok(toSource.strand() > 0, 'there were connections to strand');
      await insert(db, 101, 1100);
      await pair.waitForRows(db, 't', 1100, sync, leftOf(fault));
      sayHowLong(t, fault);
    });
  });

  it("names the session whose lock the apply waits on, and again when the apply's lock timeout gives up on it", async () => {
    await withStreaming(
      'strandnamed',
      `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')`,
      async ({ db, sync }) => {
        // Somebody else's transaction on the target holds the row the next change updates.
        const holder = new pg.Client({ connectionString: pair.target.url(db), application_name: 'rogue-holder' });
        await holder.connect();
        try {
          await holder.query(`BEGIN`);
          await holder.query(`UPDATE t SET v = 'held' WHERE id = 1`);
          const pid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
          await pair.change(db, [`UPDATE t SET v = 'new' WHERE id = 1`]);
          const named = `pid ${pid} \\(application "rogue-holder", user "${pair.target.superuser}", idle in transaction since `;
          await outputMatches(sync, new RegExp(`the apply waits on a lock held by ${named}`), 30_000);
          // The apply's lock_timeout is a minute: the retry then says whose lock it was.
          await outputMatches(sync, new RegExp(`the apply gave up waiting on a lock held by ${named}`), 90_000);
          await holder.query(`ROLLBACK`);
        } finally {
          await holder.end();
        }
        await pair.waitForRows(db, `t WHERE v = 'new'`, 1, sync, 60_000);
      },
    );
  });
});

/** What sync's log says, a line each: every JSON line's message and error, unescaped. */
function said(sync: PgferryProcess): string {
  return sync
    .output()
    .split('\n')
    .map((line) => {
      try {
        const { msg, error } = JSON.parse(line) as { msg?: string; error?: string };
        return `${msg ?? ''} ${error ?? ''}`;
      } catch {
        return line;
      }
    })
    .join('\n');
}

/** Waits until sync's log says what `pattern` matches; fails with the output past `timeoutMs`. */
async function outputMatches(sync: PgferryProcess, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(said(sync))) {
    if (sync.child.exitCode !== null) throw new Error(`sync exited before saying ${pattern}:\n${sync.output().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`sync did not say ${pattern} within ${timeoutMs / 1000} s:\n${sync.output().slice(-3000)}`);
    await sleep(200);
  }
}

/** The backend that first holds a write lock on `table`: the apply, once its batch reaches the table. */
async function firstWriterOf(client: pg.Client, table: string, sync: PgferryProcess): Promise<number> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { rows } = await client.query<{ pid: number }>(
      `SELECT pid FROM pg_locks WHERE relation = $1::regclass AND mode = 'RowExclusiveLock' AND granted AND pid <> pg_backend_pid()`,
      [table],
    );
    if (rows[0]) return rows[0].pid;
    if (sync.child.exitCode !== null) throw new Error(`sync exited before applying:\n${sync.output().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`no backend wrote to ${table} within 60 s:\n${sync.output().slice(-3000)}`);
    await sleep(10);
  }
}
