/**
 * The way back (issue 17), on real servers: a cut-over under a writer prepares a slot on the new
 * primary; the application writes there (inserts with sequence and identity ids, updates,
 * deletes, a truncate, a large transaction, a schema change); `pgferry sync` with the sides
 * swapped keeps the old primary current, through a SIGKILL; the cut-over back returns the
 * application, lifts the old primary's freeze and prepares the way forward again, which then
 * streams. Every write a client saw committed ends on the side it ends on, no id is handed out
 * twice, and the sides are identical by content at each cut-over.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CutoverReport } from '../../src/cutover/index.js';
import {
  compareTables,
  newSessionCanWrite as canWrite,
  migrationUnderWay,
  runPgferry,
  spawnPgferry,
  startWriter,
  stopSync,
  useClusterPair,
  waitUntilStreaming,
  type Cluster,
  type PgferryProcess,
  type Writer,
  type WriterReport,
} from '../harness/index.js';

/** Whether a new session may write to `scratch` (false under a read-only freeze). */
function newSessionCanWrite(cluster: Cluster, db: string): Promise<boolean> {
  return canWrite(cluster, db, 'scratch', 'v');
}

async function assertEqual(a: Cluster, b: Cluster, db: string, when: string): Promise<void> {
  const comparison = await compareTables(a.url(db), b.url(db));
  assert.ok(comparison.equal, `${when}: ${JSON.stringify(comparison.tables.filter((t) => !t.equal))}`);
}

async function slots(cluster: Cluster, db: string): Promise<string[]> {
  const { rows } = await cluster.sql('postgres', `SELECT slot_name FROM pg_replication_slots WHERE database = $1 ORDER BY 1`, [db]);
  return (rows as Array<{ slot_name: string }>).map((r) => r.slot_name);
}

async function ledgerIds(cluster: Cluster, db: string): Promise<Set<string>> {
  const { rows } = await cluster.sql(db, `SELECT coalesce(array_agg(id::text), '{}') AS ids FROM ledger`);
  return new Set((rows[0] as { ids: string[] }).ids);
}

function lostWrites(report: WriterReport, present: Set<string>): string[] {
  return report.committed.flatMap((c) => c.ledgerIds).filter((id) => !present.has(id));
}

async function cutover(args: readonly string[], extra: readonly string[] = []): Promise<CutoverReport> {
  const cut = await runPgferry(['cutover', ...args, '--json', ...extra], {}, 120_000);
  assert.equal(cut.code, 0, cut.stderr);
  return JSON.parse(cut.stdout) as CutoverReport;
}

for (const [from, to] of [
  [13, 17],
  [17, 18],
] as const) {
  describe(`the way back, ${from} → ${to} → ${from}`, () => {
    const pair = useClusterPair(from, to);

    it('keeps the old primary current through a SIGKILL, returns to it without losing a write or reusing an id, and goes forward again', async () => {
      const old = pair.source;
      const now = pair.target;
      const { db, sync, args } = await migrationUnderWay(
        old,
        now,
        'back',
        `CREATE TABLE scratch (id serial PRIMARY KEY, v text NOT NULL);
         INSERT INTO scratch (v) SELECT md5(g::text) FROM generate_series(1, 500) g;
         INSERT INTO items (payload) SELECT md5(g::text) FROM generate_series(1, 500) g;`,
      );
      const back = ['--source', now.url(db), '--target', old.url(db)];
      const writer = startWriter(old.url(db));
      let onNew: Writer | undefined;
      let reverse: PgferryProcess | undefined;
      let forwardAgain: PgferryProcess | undefined;
      const reports: WriterReport[] = [];
      try {
        // Forward: the cut-over prepares the way back.
        await writer.waitForCommits(150, 'source');
        const first = await cutover(args);
        assert.equal(await sync.exited(), 0, sync.output());
        assert.ok(first.wayBack, `no way back: ${first.wayBackSkipped}`);
        assert.equal(
          first.steps.some((s) => s.step === 'hand over'),
          true,
        );
        await assertEqual(old, now, db, 'at the first cut-over');
        assert.deepEqual(await slots(old, db), [], 'the old primary keeps no slot once it follows');
        assert.deepEqual(await slots(now, db), [first.wayBack.slot]);
        writer.switchTo(now.url(db));
        await writer.waitForCommits(100, 'target');

        // The application's writes on the new primary, of every kind.
        await now.sql(db, `TRUNCATE scratch`);
        await now.sql(db, `INSERT INTO scratch (v) SELECT md5(g::text) FROM generate_series(1, 60000) g`);
        await now.sql(db, `ALTER TABLE items ADD COLUMN note text`);
        await now.sql(db, `UPDATE items SET note = 'n' || id WHERE id % 7 = 0`);

        // The way back streams, is killed mid-way, and continues.
        reverse = spawnPgferry(['sync', ...back]);
        await waitUntilStreaming(old, db, reverse);
        assert.doesNotMatch(reverse.output(), /copying/i, 'the way back must not copy');
        reverse.child.kill('SIGKILL');
        await reverse.exited();
        await now.sql(db, `DELETE FROM scratch WHERE id % 3 = 0`);
        reverse = spawnPgferry(['sync', ...back]);
        await waitUntilStreaming(old, db, reverse);

        // status on either side says which is live; cleanup keeps the way back without --force.
        const onOld = JSON.parse((await runPgferry(['status', '--json', '--target', old.url(db)])).stdout) as {
          direction: { role: string };
        };
        assert.equal(onOld.direction.role, 'following');
        const live = JSON.parse((await runPgferry(['status', '--json', '--target', now.url(db)])).stdout) as {
          direction: { role: string; wayBack: { streaming: boolean } | null };
        };
        assert.equal(live.direction.role, 'live');
        assert.equal(live.direction.wayBack?.streaming, true);
        const kept = await runPgferry(['cleanup', ...args]);
        assert.notEqual(kept.code, 0, kept.stdout);
        assert.match(kept.stderr, /the way back from the target to the source is kept/);
        assert.deepEqual(await slots(now, db), [first.wayBack.slot], 'a refused cleanup changes nothing');
        assert.equal(await newSessionCanWrite(old, db), false, 'the old primary stays frozen for the application while it follows');

        // The return: the old primary is equal, writable, and its sequences are past every id handed out.
        await writer.waitForCommits(250, 'target');
        const second = await cutover(back, ['--verify', 'full']);
        assert.equal(await reverse.exited(), 0, reverse.output());
        assert.equal(second.targetFreezesLifted, 1);
        assert.ok(second.wayBack, `no way forward: ${second.wayBackSkipped}`);
        await assertEqual(now, old, db, 'at the cut-over back');
        assert.equal(await newSessionCanWrite(old, db), true, 'the old primary must be writable after the return');
        assert.equal(await newSessionCanWrite(now, db), false, 'the new primary is frozen once the application left it');
        reports.push(await writer.stop());
        onNew = startWriter(old.url(db));
        await onNew.waitForCommits(100, 'source');

        // Forward again, from the position the return recorded.
        forwardAgain = spawnPgferry(['sync', ...args]);
        await waitUntilStreaming(now, db, forwardAgain);
        await onNew.waitForCommits(200, 'source');
        reports.push(await onNew.stop());
        onNew = undefined;
        const third = await cutover(args, ['--no-fallback']);
        assert.equal(await forwardAgain.exited(), 0, forwardAgain.output());
        assert.equal(third.wayBack, null);
        assert.equal(third.targetFreezesLifted, 1, 'going forward again lifts the freeze the return left');
        await assertEqual(old, now, db, 'at the cut-over forward again');
      } finally {
        if (writer) await writer.stop().catch(() => undefined);
        if (onNew) reports.push(await onNew.stop());
        for (const process of [sync, reverse, forwardAgain]) if (process) await stopSync(process);
      }
      for (const report of reports)
        assert.deepEqual(report.unexpectedErrors, [], 'a duplicate id or another error reached the application');
      const present = await ledgerIds(now, db);
      assert.deepEqual(
        reports.flatMap((r) => lostWrites(r, present)),
        [],
        'writes a client saw committed are missing',
      );
      const cleaned = await runPgferry(['cleanup', ...args, '--unfreeze-source']);
      assert.equal(cleaned.code, 0, cleaned.stderr);
      assert.deepEqual([...(await slots(old, db)), ...(await slots(now, db))], []);
    });
  });
}
