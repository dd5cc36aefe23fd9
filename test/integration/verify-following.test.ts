/**
 * Issue 34: verify on a database that follows its source. Its sequences are not carried by the
 * stream: the cut-over sets them (forward), or the return sets them (the old primary following
 * the new one through the way back). So while the target follows, a sequence behind is reported
 * as set at the cut-over or at the return, not as a difference, and verify exits 0 when the
 * rest is identical. Once nothing follows (the way back given up), the same sequence behind is a
 * difference again (exit 4): the rule is the target's state, not a blanket pass on sequences.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { VerifyReport } from '../../src/verify/index.js';
import { runPgferry, spawnPgferry, useClusterPair, waitUntilStreaming, writerDatabases } from '../harness/index.js';

const SEED = `INSERT INTO items (payload) SELECT md5(g::text) FROM generate_series(1, 300) g;`;

async function verifyJson(args: readonly string[]): Promise<{ code: number; report: VerifyReport; stdout: string }> {
  const run = await runPgferry(['verify', ...args, '--json'], {}, 120_000);
  assert.ok(run.code === 0 || run.code === 4, `verify failed (${run.code}): ${run.stderr}`);
  return { code: run.code, report: JSON.parse(run.stdout) as VerifyReport, stdout: run.stdout };
}

describe('verify on a database that follows its source', () => {
  const pair = useClusterPair(16, 17);

  it('reports sequences behind as set at the cut-over, then at the return, and as a difference once nothing follows', async () => {
    const { source: old, target: now } = pair;
    const { db, args } = await writerDatabases(old, now, 'follow', SEED);
    const back = ['--source', now.url(db), '--target', old.url(db)];

    // Forward, copied and caught up, sync not running: the target follows; ids drawn on the source since are set by the cut-over.
    const first = await runPgferry(['sync', ...args, '--until-caught-up'], {}, 120_000);
    assert.equal(first.code, 0, first.stderr);
    await old.sql(db, `SELECT nextval('items_id_seq') FROM generate_series(1, 5)`);
    const forward = await verifyJson(args);
    assert.equal(forward.code, 0, forward.stdout);
    const forwardSeq = forward.report.sequences.find((s) => s.name === 'public.items_id_seq');
    assert.equal(forwardSeq?.status, 'behind', 'the JSON keeps the status it always had');
    assert.equal(forwardSeq?.setAt, 'cutover');
    const forwardText = await runPgferry(['verify', ...args]);
    assert.equal(forwardText.code, 0, forwardText.stdout);
    assert.match(forwardText.stdout, /public\.items_id_seq {2}behind, set at the cut-over/);
    assert.match(forwardText.stdout, /^Identical: .*sequences/m);

    // The cut-over (sync streaming), then the application writes on the new primary; the way back brings the rows, not the sequences.
    const sync = spawnPgferry(['sync', ...args]);
    await waitUntilStreaming(now, db, sync);
    const cut = await runPgferry(['cutover', ...args], {}, 120_000);
    assert.equal(cut.code, 0, cut.stderr);
    assert.equal(await sync.exited(), 0, sync.output());
    await now.sql(db, `INSERT INTO items (payload) SELECT md5(g::text) FROM generate_series(1, 20) g`);
    await now.sql(db, `INSERT INTO ledger (item_id, op) SELECT id, 'insert' FROM items ORDER BY id DESC LIMIT 20`);
    const caughtUp = await runPgferry(['sync', ...back, '--until-caught-up'], {}, 120_000);
    assert.equal(caughtUp.code, 0, caughtUp.stderr);
    const status = JSON.parse((await runPgferry(['status', '--json', '--target', old.url(db)])).stdout) as { direction: { role: string } };
    assert.equal(status.direction.role, 'following');

    const returning = await verifyJson(back);
    assert.equal(returning.code, 0, returning.stdout);
    assert.equal(returning.report.identical, true);
    const behind = returning.report.sequences.filter((s) => s.status === 'behind');
    assert.deepEqual(behind.map((s) => s.name).sort(), ['public.items_id_seq', 'public.ledger_id_seq']);
    for (const s of behind) assert.equal(s.setAt, 'return', JSON.stringify(s));
    const text = await runPgferry(['verify', ...back]);
    assert.equal(text.code, 0, text.stdout);
    assert.match(text.stdout, /public\.ledger_id_seq {2}behind, set at the return/);
    assert.match(text.stdout, /^Identical: 2 tables .*, 2 sequences \(2 set at the return\)/m);

    // The way back given up: the old primary follows nothing, and a sequence behind is a difference.
    const cleaned = await runPgferry(['cleanup', ...args, '--force']);
    assert.equal(cleaned.code, 0, cleaned.stdout + cleaned.stderr);
    const alone = await verifyJson(back);
    assert.equal(alone.code, 4, alone.stdout);
    assert.equal(alone.report.identical, false);
    assert.ok(
      alone.report.sequences.every((s) => s.setAt === undefined),
      JSON.stringify(alone.report.sequences),
    );
  });
});
