/**
 * The slot's position against the target's (review A2, C1, D7): a slot must never confirm, or
 * be found at, a position the target has not durably applied; two targets never share a slot by
 * default; slot creation blocked by a prepared transaction names it and gives up in time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runPgferry, spawnPgferry, startCluster, type Cluster } from '../harness/index.js';
import { useSyncPair } from '../harness/sync-fixture.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('sync 13 → 17: slots and positions', () => {
  const pair = useSyncPair(
    { version: 13, settings: { max_prepared_transactions: 5 } },
    { version: 17, settings: { wal_writer_delay: '10s' } },
  );
  /** A second target server: a rehearsal beside production, with the same database names. */
  let rehearsal: Cluster;
  before(async () => {
    rehearsal = await startCluster({ version: 17 });
  });
  after(async () => {
    await rehearsal?.stop();
  });

  it('gives two targets with the same database name their own slots, so neither skips changes', async () => {
    const db = await pair.cloned('twins', `CREATE TABLE t (id int PRIMARY KEY)`);
    await rehearsal.sql('postgres', `CREATE DATABASE ${db}`);
    const intoRehearsal = ['sync', '--source', pair.source.url(db), '--target', rehearsal.url(db), '--until-caught-up'];
    await pair.change(db, [`INSERT INTO t SELECT g FROM generate_series(1000, 1999) g`]);
    const second = await runPgferry(intoRehearsal, {}, 120_000);
    assert.equal(second.code, 0, second.stderr);
    await pair.change(db, [`INSERT INTO t SELECT g FROM generate_series(2000, 2999) g`]);
    // The first target continues: all of 1000-2999 reach it.
    await pair.sync(db);
    await pair.assertSame(db);
    const again = await runPgferry(intoRehearsal, {}, 120_000);
    assert.equal(again.code, 0, again.stderr);
    const [count] = (await rehearsal.sql(db, `SELECT count(*)::int AS n FROM t`)).rows as Array<{ n: number }>;
    assert.equal(count?.n, 2000);
    const slots = (await pair.source.sql('postgres', `SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = $1`, [db]))
      .rows[0] as { n: number };
    assert.equal(slots.n, 2, 'one slot per target');
  });

  it('refuses to take over a slot a name given by hand shares with another target', async () => {
    const db = await pair.freshDatabase('byhand', `CREATE TABLE t (id int PRIMARY KEY)`);
    await pair.sync(db, ['--name', `${db}_shared`]);
    const other = await pair.freshDatabase('byhandother', `CREATE TABLE t (id int PRIMARY KEY)`);
    // The second database on the source gets the same slot name by hand: the first target's slot.
    const taken = await runPgferry(
      ['sync', '--source', pair.source.url(db), '--target', pair.target.url(other), '--name', `${db}_shared`, '--until-caught-up'],
      {},
      60_000,
    );
    assert.notEqual(taken.code, 0, taken.stdout);
    assert.match(taken.stderr, /already exists .*this target has no record of it/);
    assert.match(taken.stderr, /--name/);
  });

  it('refuses to continue from a slot that confirmed more than the target applied, naming both positions', async () => {
    const db = await pair.cloned('ahead', `CREATE TABLE t (id int PRIMARY KEY)`);
    await pair.change(db, [`INSERT INTO t SELECT g FROM generate_series(1, 100) g`]);
    const slot = await pair.slotOf(db);
    // What another migration sharing the slot, or a restored target, leaves behind.
    await pair.source.sql(db, `SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())`, [slot]);
    const refused = await runPgferry(pair.syncArgs(db), {}, 60_000);
    assert.notEqual(refused.code, 0, `sync continued past changes the slot no longer holds:\n${refused.stderr}`);
    assert.match(refused.stderr, /has confirmed [0-9A-F]+\/[0-9A-F]+, past the [0-9A-F]+\/[0-9A-F]+ the target applied/);
    assert.match(refused.stderr, /--drop-existing/);
  });

  it('never confirms on restart a position the target has not flushed: a target crash right after loses nothing', async () => {
    const db = await pair.cloned('flush', `CREATE TABLE t (id int PRIMARY KEY, v text)`);
    await pair.change(db, [`INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 500) g`]);
    const [goal] = await pair.rows<{ lsn: string }>(pair.source, db, `SELECT pg_current_wal_insert_lsn()::text AS lsn`);
    // A sync applies the rows (committed asynchronously on the target, whose WAL writer waits
    // 10 s) and is killed before it could flush them.
    const first = spawnPgferry(pair.syncArgs(db).filter((a) => a !== '--until-caught-up'));
    const deadline = Date.now() + 60_000;
    for (;;) {
      const [state] = await pair
        .rows<{ ok: boolean }>(pair.target, db, `SELECT applied_lsn >= $1::pg_lsn AS ok FROM pgferry.sync`, [goal!.lsn])
        .catch(() => []);
      if (state?.ok) break;
      assert.ok(Date.now() < deadline, `sync did not apply the rows within 60 s:\n${first.output()}`);
      await sleep(50);
    }
    first.child.kill('SIGKILL');
    await first.exited();
    // Restarted at once, it reads the applied position (committed, not yet flushed) and talks to the slot.
    const second = spawnPgferry(pair.syncArgs(db).filter((a) => a !== '--until-caught-up'));
    await sleep(2500);
    second.child.kill('SIGKILL');
    await second.exited();
    await pair.target.restart('immediate');
    await pair.assertSlotBehindTarget(db);
    await pair.sync(db);
    await pair.assertSame(db);
  });

  it('names the prepared transaction a new slot waits for, and gives up after --slot-timeout', async () => {
    const db = await pair.freshDatabase('prepared', `CREATE TABLE t (id int PRIMARY KEY)`);
    await pair.source.sql(db, `BEGIN; INSERT INTO t VALUES (1); PREPARE TRANSACTION 'stuck_${db}'`);
    try {
      const started = Date.now();
      const waited = await runPgferry(pair.syncArgs(db, ['--slot-timeout', '3']), {}, 60_000);
      assert.notEqual(waited.code, 0, waited.stdout);
      assert.ok(Date.now() - started < 30_000, 'sync gave up in time');
      assert.match(waited.stderr, new RegExp(`prepared transaction 'stuck_${db}'`));
      assert.match(waited.stderr, /ROLLBACK PREPARED/);
      const slots = (await pair.source.sql('postgres', `SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = $1`, [db]))
        .rows[0] as { n: number };
      assert.equal(slots.n, 0, 'no half-made slot left behind');
    } finally {
      await pair.source.sql(db, `ROLLBACK PREPARED 'stuck_${db}'`);
    }
    await pair.sync(db);
    await pair.assertSame(db);
  });
});
