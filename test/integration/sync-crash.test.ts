import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { compareTables, createPgbenchTables, startClusters, startLoad, type Cluster } from '../harness/index.js';
import { runPgferry, spawnPgferry } from '../harness/cli.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('sync: killed at random moments under load', () => {
  let clusters: [Cluster, Cluster];
  before(async () => {
    clusters = await startClusters([{ version: 17 }, { version: 18 }]);
  });
  after(async () => {
    await Promise.all(clusters.map((c) => c.stop()));
  });

  it('loses nothing and applies nothing twice across five SIGKILLs', async () => {
    const [source, target] = clusters;
    const db = await source.createDatabase({ prefix: 'crash' });
    await target.sql('postgres', `CREATE DATABASE ${db}`);
    await createPgbenchTables(source, db, 1);
    // pgbench_history has no key: every row counts, so a change applied twice shows up as a duplicate.
    await source.sql(db, 'ALTER TABLE pgbench_history REPLICA IDENTITY FULL');
    const args = ['sync', '--source', source.url(db), '--target', target.url(db), '--batch-changes', '2000'];

    const load = startLoad(source.url(db), { clients: 2, scale: 1, ratePerSecond: 400 });
    // Seeded moments would hide nothing here: every kill point is printed for a rerun by hand.
    const moments = Array.from({ length: 5 }, () => 300 + Math.floor(Math.random() * 2500));
    const logs: string[] = [];
    try {
      for (const [i, delay] of moments.entries()) {
        const run = spawnPgferry(args);
        await sleep(i === 0 ? delay + 1500 : delay);
        run.child.kill('SIGKILL');
        await run.exited();
        logs.push(`--- run ${i + 1}, killed after ${delay} ms\n${run.output()}`);
      }
    } finally {
      const report = await load.stop();
      assert.deepEqual(report.errors, []);
      assert.ok(report.committed > 100, `only ${report.committed} transactions committed under the load`);
    }
    const last = await runPgferry([...args, '--until-caught-up'], {}, 180_000);
    assert.equal(last.code, 0, `${logs.join('\n')}\n--- final run\n${last.stderr}`);

    const comparison = await compareTables(source.url(db), target.url(db));
    assert.ok(comparison.equal, `kills after ${moments.join(', ')} ms: ${JSON.stringify(comparison.tables.filter((t) => !t.equal))}`);
    // Invariant 3: the slot never confirms more than the target holds.
    const applied = (await target.sql(db, 'SELECT applied_lsn::text AS lsn, slot_name AS slot FROM pgferry.sync')).rows[0] as {
      lsn: string;
      slot: string;
    };
    const slot = (
      await source.sql(db, `SELECT confirmed_flush_lsn <= $1::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $2`, [
        applied.lsn,
        applied.slot,
      ])
    ).rows[0] as { ok: boolean };
    assert.equal(slot.ok, true);
  });
});
