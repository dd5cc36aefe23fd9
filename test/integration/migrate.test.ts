/**
 * `pgferry migrate`: clone, sync and cut-over in one process, under a live writer; and with
 * `--cutover manual`, syncing until a separate `pgferry cutover` stops it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { compareTables, runPgferry, spawnPgferry, startClusters, startWriter, WRITER_SCHEMA_SQL, type Cluster } from '../harness/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('migrate, 17 → 18', () => {
  let source: Cluster;
  let target: Cluster;
  before(async () => {
    [source, target] = await startClusters([{ version: 17 }, { version: 18 }]);
  });
  after(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
  });

  async function database(prefix: string): Promise<string> {
    const db = await source.createDatabase({ prefix });
    await target.sql('postgres', `CREATE DATABASE ${db}`);
    await source.sql(db, WRITER_SCHEMA_SQL);
    await source.sql(db, `INSERT INTO items (payload) SELECT md5(g::text) FROM generate_series(1, 5000) g`);
    return db;
  }

  it('clones, syncs and cuts over by itself while the application writes; nothing committed is lost', async () => {
    const db = await database('auto');
    const writer = startWriter(source.url(db));
    await writer.waitForCommits(50, 'source');
    const result = await runPgferry(['migrate', '--source', source.url(db), '--target', target.url(db), '--json'], {}, 180_000);
    const comparison = await compareTables(source.url(db), target.url(db));
    writer.switchTo(target.url(db));
    await writer.waitForCommits(20, 'target');
    const written = await writer.stop();
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as { sync: { stoppedBecause: string; cloned: { tables: number } }; cutover: { fenceLsn: string; verified: { identical: boolean } } };
    assert.equal(report.sync.stoppedBecause, 'cut over');
    assert.equal(report.sync.cloned.tables, 2);
    assert.equal(report.cutover.verified.identical, true);
    assert.ok(comparison.equal, JSON.stringify(comparison.tables.filter((t) => !t.equal)));
    assert.deepEqual(written.unexpectedErrors, []);
    const ledger = new Set(((await target.sql(db, `SELECT array_agg(id::text) AS ids FROM ledger`)).rows[0] as { ids: string[] }).ids);
    assert.deepEqual(written.committed.flatMap((c) => c.ledgerIds).filter((id) => !ledger.has(id)), []);
  });

  it('--cutover manual syncs until pgferry cutover, run separately, stops it', async () => {
    const db = await database('manual');
    const args = ['--source', source.url(db), '--target', target.url(db)];
    const migrating = spawnPgferry(['migrate', ...args, '--cutover', 'manual']);
    try {
      const deadline = Date.now() + 60_000;
      while (!/"msg":"streaming changes"/.test(migrating.output())) {
        assert.ok(Date.now() < deadline && migrating.child.exitCode === null, migrating.output());
        await sleep(100);
      }
      await source.sql(db, `UPDATE items SET counter = 7 WHERE id <= 100`);
      // Give sync's first heartbeat time to land, as an operator watching status would.
      await sleep(1500);
      const cut = await runPgferry(['cutover', ...args, '--verify', 'full', '--unfreeze-source'], {}, 60_000);
      assert.equal(cut.code, 0, `${cut.stderr}\n${migrating.output()}`);
      assert.match(cut.stdout, /Writes were frozen for \d+ ms/);
      assert.match(cut.stdout, /The source is writable again/);
      assert.equal(await migrating.exited(), 0, migrating.output());
      assert.match(migrating.output(), /stopped \(cut over\)/);
      assert.equal((await target.sql(db, `SELECT count(*)::int AS n FROM items WHERE counter = 7`)).rows[0].n, 100);
    } finally {
      if (migrating.child.exitCode === null) migrating.child.kill('SIGTERM');
      await migrating.exited();
    }
  });
});
