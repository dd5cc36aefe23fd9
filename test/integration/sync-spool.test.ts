/**
 * The change stream under a small --memory-limit: committed transactions waiting in the queue
 * or in the batch being applied must never be applied partly or empty once the budget is
 * exceeded (review A1), and the spool must not hold a file open per transaction.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { useSyncPair } from '../harness/sync-fixture.js';

const PAIRS = [
  [13, 17],
  [17, 18],
] as const;

for (const [from, to] of PAIRS) {
  describe(`sync ${from} → ${to} under a small memory limit`, () => {
    const pair = useSyncPair(from, to);

    it('applies a backlog of 20,000 committed transactions whole with --memory-limit 1MB', async () => {
      const db = await pair.cloned('spool', `CREATE TABLE spill (id bigint PRIMARY KEY, pad text)`);
      // Single-row transactions with 2 KB each: the backlog (about 40 MB) is far past the budget.
      await pair.change(db, [
        `DO $$BEGIN FOR i IN 1..20000 LOOP INSERT INTO spill VALUES (i, repeat(md5(i::text), 64)); COMMIT; END LOOP; END$$`,
        // One big transaction too, spilled while it arrives and read back whole.
        `INSERT INTO spill SELECT g, repeat(md5(g::text), 8) FROM generate_series(100001, 160000) g`,
      ]);
      const run = await pair.sync(db, ['--memory-limit', '1MB', '--batch-changes', '5000']);
      const [counts] = await pair.rows<{ n: string }>(pair.target, db, 'SELECT count(*)::text AS n FROM spill');
      assert.equal(counts?.n, '80000', run.stderr.slice(-2000));
      await pair.assertSame(db);
    });

    it('replays in source order a batch whose transactions were spilled, reading exactly what it first applied', async () => {
      // Both halves of the swap must land in one batch, which depends on how fast the apply
      // and the walsender go: each attempt must end equal, and one of them (almost always the
      // first) must have replayed.
      const replays: boolean[] = [];
      for (let attempt = 1; attempt <= 4 && !replays.includes(true); attempt++) {
        const db = await pair.cloned(
          'spoolreplay',
          `CREATE TABLE u (id int PRIMARY KEY, code text UNIQUE, pad text); INSERT INTO u VALUES (1, 'a', ''), (2, 'b', '');
           CREATE TABLE filler (id int PRIMARY KEY, pad text);`,
        );
        // A swap of a unique value across two transactions makes the coalesced batch fail, so the
        // batch is read a second time; the filler in front spills everything behind it.
        await pair.change(db, [
          `INSERT INTO filler SELECT g, repeat(md5(g::text), 16) FROM generate_series(1, 30000) g`,
          `BEGIN; UPDATE u SET code = 'tmp' WHERE id = 1; UPDATE u SET code = 'a', pad = repeat('p', 3000) WHERE id = 2; COMMIT`,
          `UPDATE u SET code = 'b', pad = repeat('q', 3000) WHERE id = 1`,
          `DO $$BEGIN FOR i IN 3..2000 LOOP INSERT INTO u VALUES (i, 'c' || i, repeat('r', 1000)); COMMIT; END LOOP; END$$`,
        ]);
        const run = await pair.sync(db, ['--memory-limit', '1MB']);
        await pair.assertSame(db);
        // The filler keeps the apply busy while the swap arrives, so both halves land in one batch.
        replays.push(/replayed in source order/.test(run.stderr));
      }
      assert.ok(replays.includes(true), `no attempt put both halves of the swap in one batch: ${JSON.stringify(replays)}`);
    });
  });
}
