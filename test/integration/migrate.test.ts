/**
 * `pgferry migrate`: clone, sync and cut-over in one process, under a live writer; and with
 * `--cutover manual`, syncing until a separate `pgferry cutover` stops it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareTables, runPgferry, spawnPgferry, startWriter, useClusterPair, WRITER_SCHEMA_SQL } from '../harness/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('migrate, 17 → 18', () => {
  const pair = useClusterPair(17, 18);

  async function database(prefix: string): Promise<string> {
    const db = await pair.source.createDatabase({ prefix });
    await pair.target.sql('postgres', `CREATE DATABASE ${db}`);
    await pair.source.sql(db, WRITER_SCHEMA_SQL);
    await pair.source.sql(db, `INSERT INTO items (payload) SELECT md5(g::text) FROM generate_series(1, 5000) g`);
    return db;
  }

  it('clones, syncs and cuts over by itself while the application writes; nothing committed is lost', async () => {
    const db = await database('auto');
    const writer = startWriter(pair.source.url(db));
    await writer.waitForCommits(50, 'source');
    const result = await runPgferry(['migrate', '--source', pair.source.url(db), '--target', pair.target.url(db), '--json'], {}, 180_000);
    const comparison = await compareTables(pair.source.url(db), pair.target.url(db));
    writer.switchTo(pair.target.url(db));
    await writer.waitForCommits(20, 'target');
    const written = await writer.stop();
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as {
      sync: { stoppedBecause: string; cloned: { tables: number } };
      cutover: { fenceLsn: string; verified: { identical: boolean } };
    };
    assert.equal(report.sync.stoppedBecause, 'cut over');
    assert.equal(report.sync.cloned.tables, 2);
    assert.equal(report.cutover.verified.identical, true);
    assert.ok(comparison.equal, JSON.stringify(comparison.tables.filter((t) => !t.equal)));
    assert.deepEqual(written.unexpectedErrors, []);
    const ledger = new Set(((await pair.target.sql(db, `SELECT array_agg(id::text) AS ids FROM ledger`)).rows[0] as { ids: string[] }).ids);
    assert.deepEqual(
      written.committed.flatMap((c) => c.ledgerIds).filter((id) => !ledger.has(id)),
      [],
    );
  });

  it('--cutover manual syncs until pgferry cutover, run separately, stops it', async () => {
    const db = await database('manual');
    const args = ['--source', pair.source.url(db), '--target', pair.target.url(db)];
    const migrating = spawnPgferry(['migrate', ...args, '--cutover', 'manual']);
    try {
      const deadline = Date.now() + 60_000;
      while (!/"msg":"streaming changes"/.test(migrating.output())) {
        assert.ok(Date.now() < deadline && migrating.child.exitCode === null, migrating.output());
        await sleep(100);
      }
      await pair.source.sql(db, `UPDATE items SET counter = 7 WHERE id <= 100`);
      // Give sync's first heartbeat time to land, as an operator watching status would.
      await sleep(1500);
      const cut = await runPgferry(['cutover', ...args, '--verify', 'full', '--unfreeze-source'], {}, 60_000);
      assert.equal(cut.code, 0, `${cut.stderr}\n${migrating.output()}`);
      assert.match(cut.stdout, /Writes were frozen for \d+ ms/);
      assert.match(cut.stdout, /The source is writable again/);
      assert.equal(await migrating.exited(), 0, migrating.output());
      assert.match(migrating.output(), /stopped \(cut over\)/);
      assert.equal((await pair.target.sql(db, `SELECT count(*)::int AS n FROM items WHERE counter = 7`)).rows[0].n, 100);
    } finally {
      if (migrating.child.exitCode === null) migrating.child.kill('SIGTERM');
      await migrating.exited();
    }
  });
});
