/**
 * A cut-over must never leave the source frozen without saying so (review D4, D5, D8): its
 * own session to the source killed mid-freeze, a SIGHUP, a SIGKILL, a role whose own setting
 * would write through the freeze; and it must find sync running the moment sync says it streams.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import {
  readOnlyDefault,
  runPgferry,
  spawnPgferry,
  stopSync,
  useClusterPair,
  type Cluster,
  type PgferryProcess,
  migrationUnderWay as underWay,
} from '../harness/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** 100 rows in the writer's items table, and sync streaming them. */
function migrationUnderWay(source: Cluster, target: Cluster, prefix: string): ReturnType<typeof underWay> {
  return underWay(source, target, prefix, `INSERT INTO items (payload) SELECT md5(g::text) FROM generate_series(1, 100) g`);
}

async function waitUntilFrozen(source: Cluster, db: string, cut: PgferryProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await readOnlyDefault(source, db))) {
    assert.ok(cut.child.exitCode === null, `the cut-over ended before freezing:\n${cut.output()}`);
    assert.ok(Date.now() < deadline, `the cut-over never froze the source:\n${cut.output()}`);
    await sleep(50);
  }
}

/** A transaction that began before the freeze holds the drain for as long as it stays open. */
async function holdTheDrain(source: Cluster, db: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: source.url(db) });
  client.on('error', () => undefined);
  await client.connect();
  await client.query(`BEGIN; INSERT INTO items (payload) VALUES ('holding')`);
  return client;
}

describe('cutover safety, 17 → 18', () => {
  const pair = useClusterPair(17, 18);

  it("refuses before freezing when a role's own setting would write through a read-only freeze", async () => {
    const { db, sync, args } = await migrationUnderWay(pair.source, pair.target, 'roleescape');
    try {
      await pair.source.sql('postgres', `DO $$BEGIN CREATE ROLE escapee LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$`);
      await pair.source.sql('postgres', `ALTER ROLE escapee IN DATABASE ${db} SET default_transaction_read_only = off`);
      const cut = await runPgferry(['cutover', ...args], {}, 60_000);
      assert.notEqual(cut.code, 0, cut.stdout);
      assert.match(
        cut.stderr,
        /role escapee sets default_transaction_read_only = off in this database .*RESET default_transaction_read_only/,
      );
      assert.equal(await readOnlyDefault(pair.source, db), false, 'nothing was frozen');
      await pair.source.sql('postgres', `ALTER ROLE escapee IN DATABASE ${db} RESET default_transaction_read_only`);
    } finally {
      await stopSync(sync);
    }
  });

  it('lifts the freeze through a fresh session when its own session to the source is killed mid-drain', async () => {
    const { db, sync, args } = await migrationUnderWay(pair.source, pair.target, 'killedsession');
    const holder = await holdTheDrain(pair.source, db);
    try {
      const cut = spawnPgferry(['cutover', ...args, '--drain-timeout', '60']);
      await waitUntilFrozen(pair.source, db, cut);
      const syncPid = (await pair.target.sql(db, `SELECT source_pid FROM pgferry.sync`)).rows[0].source_pid as number;
      // Every session of the cut-over (pgferry's, neither sync's monitor nor a walsender).
      await pair.source.sql(
        'postgres',
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'pgferry %' AND backend_type = 'client backend' AND pid <> $2`,
        [db, syncPid],
      );
      const code = await Promise.race([cut.exited(), sleep(60_000).then(() => 'hung' as const)]);
      assert.notEqual(code, 'hung', cut.output());
      assert.notEqual(code, 0, cut.output());
      assert.match(cut.output(), /the source is writable again/);
      assert.equal(await readOnlyDefault(pair.source, db), false, `the source was left frozen:\n${cut.output()}`);
    } finally {
      await holder.end().catch(() => undefined);
      await stopSync(sync);
    }
  });

  it('lifts the freeze on SIGHUP (a closed terminal), and ignores a second signal while it does', async () => {
    const { db, sync, args } = await migrationUnderWay(pair.source, pair.target, 'hangup');
    const holder = await holdTheDrain(pair.source, db);
    try {
      const cut = spawnPgferry(['cutover', ...args, '--drain-timeout', '60']);
      await waitUntilFrozen(pair.source, db, cut);
      cut.child.kill('SIGHUP');
      cut.child.kill('SIGINT');
      const code = await Promise.race([cut.exited(), sleep(60_000).then(() => 'hung' as const)]);
      assert.notEqual(code, 'hung', cut.output());
      assert.equal(await readOnlyDefault(pair.source, db), false, `the source was left frozen:\n${cut.output()}`);
    } finally {
      await holder.end().catch(() => undefined);
      await stopSync(sync);
    }
  });

  it('after a SIGKILL mid-freeze, status says the source is frozen and cleanup --unfreeze-source lifts it', async () => {
    const { db, sync, args } = await migrationUnderWay(pair.source, pair.target, 'sigkill');
    const holder = await holdTheDrain(pair.source, db);
    try {
      const cut = spawnPgferry(['cutover', ...args, '--drain-timeout', '60']);
      await waitUntilFrozen(pair.source, db, cut);
      cut.child.kill('SIGKILL');
      await cut.exited();
      const status = await runPgferry(['status', '--target', pair.target.url(db)]);
      assert.match(status.stdout, /the source is still frozen \(read-only\): pgferry cleanup --unfreeze-source lifts it/);
    } finally {
      await holder.end().catch(() => undefined);
      await stopSync(sync);
    }
    const cleanup = await runPgferry(['cleanup', '--unfreeze-source', ...args], {}, 60_000);
    assert.equal(cleanup.code, 0, cleanup.stderr);
    assert.equal(await readOnlyDefault(pair.source, db), false);
  });

  for (const step of [
    'preparing the way back',
    // --verify changes, before the freeze: sync records for the cut-over, then the rows recorded are compared.
    'sync records the rows it applies',
    'every row is equal while sync streams',
    'draining sessions',
    'carrying the large objects',
    'handing over',
  ] as const) {
    it(`SIGKILLed at "${step}", a cut-over leaves nothing cleanup cannot remove, on either side`, async () => {
      const { db, sync, args } = await migrationUnderWay(pair.source, pair.target, 'killway');
      const holder = step === 'draining sessions' ? await holdTheDrain(pair.source, db) : undefined;
      try {
        const cut = spawnPgferry(['cutover', ...args, '--drain-timeout', '60']);
        const deadline = Date.now() + 60_000;
        while (!cut.output().includes(step)) {
          assert.ok(Date.now() < deadline && cut.child.exitCode === null, cut.output());
          await sleep(5);
        }
        cut.child.kill('SIGKILL');
        await cut.exited();
      } finally {
        await holder?.end().catch(() => undefined);
        await stopSync(sync);
      }
      const cleanup = await runPgferry(['cleanup', '--unfreeze-source', '--force', ...args], {}, 60_000);
      assert.equal(cleanup.code, 0, cleanup.stderr);
      assert.equal(await readOnlyDefault(pair.source, db), false);
      for (const [side, cluster] of [
        ['source', pair.source],
        ['target', pair.target],
      ] as const) {
        const slots = await cluster.sql('postgres', `SELECT slot_name FROM pg_replication_slots WHERE database = $1`, [db]);
        assert.deepEqual(slots.rows, [], `slots left on the ${side}: ${cleanup.stdout}`);
        const schemas = await cluster.sql(db, `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'pgferry%'`);
        assert.deepEqual(schemas.rows, [], `schemas left on the ${side}: ${cleanup.stdout}`);
      }
    });
  }

  it('finds sync running the moment it says it streams, even after a stop that left an old heartbeat', async () => {
    const { db, sync, args } = await migrationUnderWay(pair.source, pair.target, 'race');
    await stopSync(sync);
    await sleep(6_000);
    const again = spawnPgferry(['sync', ...args]);
    try {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const [row] = (await pair.target.sql(db, `SELECT phase, source_pid FROM pgferry.sync`)).rows as Array<{
          phase: string;
          source_pid: number;
        }>;
        if (row?.phase === 'streaming') break;
        assert.ok(Date.now() < deadline, again.output());
        await sleep(20);
      }
      const cut = await runPgferry(['cutover', ...args, '--verify', 'none', '--unfreeze-source'], {}, 60_000);
      assert.doesNotMatch(cut.stderr, /sync is not running/);
      assert.equal(cut.code, 0, cut.stderr);
    } finally {
      await stopSync(again);
    }
  });
});
