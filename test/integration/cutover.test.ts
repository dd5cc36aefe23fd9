/**
 * The cut-over, end to end on real servers: `pgferry sync` in its own process, an application
 * stand-in writing continuously, `pgferry cutover` in another process, then the application
 * pointed at the target. And the ways a cut-over must fail safely: a fence that never
 * arrives, a transaction that holds the drain, a freeze by revoke with a hole in it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import type { CutoverReport } from '../../src/cutover/index.js';
import { PhaseListener, readSyncPhase, requestSyncStop } from '../../src/state/index.js';
import {
  compareTables,
  newSessionCanWrite as canWrite,
  runPgferry,
  spawnPgferry,
  startWriter,
  stopSync,
  useClusterPair,
  WRITER_SCHEMA_SQL,
  type Cluster,
  type PgferryProcess,
  type WriterReport,
  migrationUnderWay as underWay,
} from '../harness/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** 1,000 items with their ledger rows, and sync streaming them. */
function migrationUnderWay(source: Cluster, target: Cluster, prefix: string): ReturnType<typeof underWay> {
  return underWay(
    source,
    target,
    prefix,
    `INSERT INTO items (payload) SELECT md5(g::text) FROM generate_series(1, 1000) g;
     INSERT INTO ledger (item_id, op) SELECT id, 'insert' FROM items`,
  );
}

/** Whether a new session may write to `items` (false under a read-only freeze). */
function newSessionCanWrite(cluster: Cluster, db: string): Promise<boolean> {
  return canWrite(cluster, db, 'items', 'payload');
}

for (const [from, to] of [
  [13, 17],
  [17, 18],
] as const) {
  describe(`cutover under a live writer, ${from} → ${to}`, () => {
    const pair = useClusterPair(from, to);

    it('loses no committed transaction, sets sequences past the pair.source, and leaves the target equal to the source at the fence', async () => {
      const { db, sync, args } = await migrationUnderWay(pair.source, pair.target, 'cut');
      const writer = startWriter(pair.source.url(db));
      let written: WriterReport;
      try {
        await writer.waitForCommits(200, 'source');
        const before = await pair.source.sql(db, 'SELECT pg_current_wal_insert_lsn()::text AS lsn');
        // Without the way back: the old source keeps its slot, the record of any write after the cut-over (below).
        const cut = await runPgferry(['cutover', ...args, '--json', '--no-fallback'], {}, 120_000);
        assert.equal(cut.code, 0, `${cut.stderr}\n--- sync\n${sync.output()}`);
        const report = JSON.parse(cut.stdout) as CutoverReport;
        // On 16+ the cut-over marks a restart point just before the freeze, which sync's last
        // acknowledgement makes the slot's: the late-writes read inside the freeze decoded from
        // there, not from the background writer's last one (up to 15 s back). Before 16 there is
        // no way to mark one.
        if (from >= 16) {
          const restart = await pair.source.sql(
            db,
            `SELECT restart_lsn >= $1::pg_lsn AS recent, restart_lsn::text AS restart FROM pg_replication_slots WHERE database = current_database() AND slot_type = 'logical'`,
            [(before.rows[0] as { lsn: string }).lsn],
          );
          assert.deepEqual(
            restart.rows.map((r) => (r as { recent: boolean }).recent),
            [true],
            `the slot restarts from ${JSON.stringify(restart.rows)}, before ${(before.rows[0] as { lsn: string }).lsn}, read before the cut-over began`,
          );
        }

        // Writes are frozen: the source has not moved since the fence, so the two must be equal now.
        const comparison = await compareTables(pair.source.url(db), pair.target.url(db));
        assert.ok(comparison.equal, JSON.stringify(comparison.tables.filter((t) => !t.equal)));
        assert.equal(await newSessionCanWrite(pair.source, db), false, 'a new session on the source could still write after the cut-over');
        assert.equal(await sync.exited(), 0, sync.output());
        assert.match(sync.output(), /"cause":"cut over"/);

        assert.equal(report.freeze, 'read-only');
        assert.match(report.fenceLsn, /^[0-9A-F]+\/[0-9A-F]+$/);
        assert.equal(report.syncStopped, true);
        assert.equal(report.lateTransactions, 0);
        assert.equal(report.sourceUnfrozen, false);
        assert.ok(report.downtimeMs > 0);
        assert.equal(report.verified?.identical, true);
        assert.deepEqual(report.sequences.map((s) => s.name).sort(), ['public.items_id_seq', 'public.ledger_id_seq']);

        // status tells what the cut-over did, and that the source is still frozen.
        const status = await runPgferry(['status', '--json', '--target', pair.target.url(db)]);
        assert.equal(status.code, 0, status.stderr);
        const shown = (
          JSON.parse(status.stdout) as {
            cutover: { outcome: string; freeze: string; sourceFrozen: boolean; fenceLsn: string; downtimeMs: number };
          }
        ).cutover;
        assert.deepEqual(
          { ...shown, downtimeMs: Math.round(shown.downtimeMs) },
          {
            ...shown,
            outcome: 'done',
            freeze: 'read-only',
            sourceFrozen: true,
            fenceLsn: report.fenceLsn,
            downtimeMs: Math.round(report.downtimeMs),
          },
        );
        const human = await runPgferry(['status', '--target', pair.target.url(db)]);
        assert.match(
          human.stdout,
          /cutover +done at .*, writes frozen for \d+ ms, fence [0-9A-F]+\/[0-9A-F]+; the source is still frozen \(read-only\): pgferry cleanup --unfreeze-source lifts it/,
        );

        // Invariant 6: every sequence on the target at or past the source's.
        for (const name of ['items_id_seq', 'ledger_id_seq']) {
          const [s, t] = await Promise.all([
            pair.source.sql(db, `SELECT last_value::text AS v FROM ${name}`),
            pair.target.sql(db, `SELECT last_value::text AS v FROM ${name}`),
          ]);
          assert.ok(
            BigInt((t.rows[0] as { v: string }).v) >= BigInt((s.rows[0] as { v: string }).v),
            `${name}: target ${JSON.stringify(t.rows[0])} behind source ${JSON.stringify(s.rows[0])}`,
          );
        }

        writer.switchTo(pair.target.url(db));
        await writer.waitForCommits(100, 'target');
      } finally {
        written = await writer.stop();
        await stopSync(sync);
      }
      const report = written;
      // No duplicate key on the target: its sequences were set past every id the source handed out.
      assert.deepEqual(report.unexpectedErrors, []);
      const onTarget = await pair.target.sql(db, `SELECT array_agg(id::text) AS ids FROM ledger`);
      const ledger = new Set((onTarget.rows[0] as { ids: string[] }).ids);
      const lost = report.committed.flatMap((c) => c.ledgerIds).filter((id) => !ledger.has(id));
      assert.deepEqual(lost, [], 'transactions the writer saw commit are missing on the target');
      const items = await pair.target.sql(db, `SELECT array_agg(id::text) AS ids FROM items`);
      const present = new Set((items.rows[0] as { ids: string[] }).ids);
      const deleted = new Set(report.committed.flatMap((c) => (c.deletedItem ? [c.deletedItem] : [])));
      for (const c of report.committed) {
        assert.equal(present.has(c.insertedItem), !deleted.has(c.insertedItem), `item ${c.insertedItem}`);
      }
      assert.ok(report.committed.filter((c) => c.side === 'source').length >= 200);
      assert.ok(report.committed.filter((c) => c.side === 'target').length >= 100);

      // A write that reaches the old source after the cut-over (a session past the freeze): the
      // slot is its only record, so cleanup refuses to drop it and changes nothing.
      await pair.source.sql(db, `BEGIN READ WRITE; INSERT INTO items (payload) VALUES ('after the cut-over'); COMMIT`);
      const refused = await runPgferry(['cleanup', '--source', pair.source.url(db), '--target', pair.target.url(db), '--unfreeze-source']);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(
        refused.stderr,
        /source: 1 transaction changing public\.items \(1 change\) committed on the source after the cut-over; the target lacks them/,
      );
      assert.match(refused.stderr, /cleanup again with --force/);
      assert.equal(await newSessionCanWrite(pair.source, db), false, 'a refused cleanup must change nothing');

      // Cleanup --force lifts the freeze, removes everything, and finds nothing the second time.
      const first = await runPgferry([
        'cleanup',
        '--source',
        pair.source.url(db),
        '--target',
        pair.target.url(db),
        '--unfreeze-source',
        '--force',
      ]);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /lifted the read-only freeze/);
      assert.match(first.stdout, /dropped replication slot pgferry_/);
      assert.match(first.stdout, /dropped publication pgferry_/);
      assert.match(first.stdout, /dropped schema pgferry/);
      assert.equal(await newSessionCanWrite(pair.source, db), true);
      const second = await runPgferry(['cleanup', '--source', pair.source.url(db), '--target', pair.target.url(db), '--unfreeze-source']);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(second.stdout.trim(), 'nothing left to remove');
    });
  });
}

describe('cutover failure paths, 17 → 18', () => {
  const pair = useClusterPair(17, 18);

  it('refuses to start without a running sync, and changes nothing', async () => {
    const db = await pair.source.createDatabase({ prefix: 'nosync' });
    await pair.target.sql('postgres', `CREATE DATABASE ${db}`);
    await pair.source.sql(db, WRITER_SCHEMA_SQL);
    const result = await runPgferry(['cutover', '--source', pair.source.url(db), '--target', pair.target.url(db)]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /no pgferry sync state here/);
    assert.equal(await newSessionCanWrite(pair.source, db), true);
  });

  it("sync says it stopped at the commit that records it, which is what wakes the stop's wait inside the freeze", async () => {
    const { db, sync } = await migrationUnderWay(pair.source, pair.target, 'stopword');
    const target = new pg.Client({ connectionString: pair.target.url(db) });
    const watch = new pg.Client({ connectionString: pair.target.url(db) });
    await Promise.all([target.connect(), watch.connect()]);
    try {
      // As the cut-over does: listening before the freeze, the wait attached before the request.
      await PhaseListener.prepare(watch);
      const phases = PhaseListener.attach(watch);
      await requestSyncStop(target, 'a test asks');
      const said = await phases.next(30_000);
      phases.stopListening();
      assert.equal(said, 'stopped', `sync did not say it stopped within 30 s:\n${sync.output()}`);
      // Delivered at that commit, the phase is visible to whoever is woken.
      assert.equal(await readSyncPhase(target), 'stopped');
      assert.equal(await sync.exited(), 0, sync.output());
    } finally {
      await Promise.all([target.end(), watch.end()]);
      await stopSync(sync);
    }
  });

  it('when the fence never arrives (sync stopped), unfreezes the source and says so; sync then carries on', async () => {
    const { db, sync, args } = await migrationUnderWay(pair.source, pair.target, 'nofence');
    try {
      sync.child.kill('SIGSTOP');
      // The fence is what is tried here: with the default --verify changes, a stopped sync would
      // already fail the cut-over before the freeze, by not starting to record (cutover-changes tests).
      const result = await runPgferry(['cutover', ...args, '--fence-timeout', '1.5', '--verify', 'counts']);
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        /cut-over failed at the fence step: target: sync did not apply the fence within 1\.5 s; the source is writable again and sync keeps running/,
      );
      assert.equal(await newSessionCanWrite(pair.source, db), true);
      const status = await runPgferry(['status', '--target', pair.target.url(db)]);
      assert.match(status.stdout, /cutover +failed at .*; the source is writable/);
      sync.child.kill('SIGCONT');
      await pair.source.sql(db, `INSERT INTO items (payload) VALUES ('after the failed cut-over')`);
      const deadline = Date.now() + 30_000;
      while (
        (await pair.target.sql(db, `SELECT count(*)::int AS n FROM items WHERE payload = 'after the failed cut-over'`)).rows[0].n !== 1
      ) {
        assert.ok(Date.now() < deadline, `sync did not carry on after the failed cut-over:\n${sync.output()}`);
        await sleep(100);
      }
      const state = await pair.target.sql(db, `SELECT phase, stop_requested_at FROM pgferry.sync`);
      assert.deepEqual(state.rows[0], { phase: 'streaming', stop_requested_at: null });
    } finally {
      sync.child.kill('SIGCONT');
      await stopSync(sync);
    }
  });

  it('when a long transaction holds the drain, the timeout names it and the source is unfrozen', async () => {
    const { db, sync, args } = await migrationUnderWay(pair.source, pair.target, 'drain');
    const holder = new pg.Client({ connectionString: pair.source.url(db), application_name: 'long-report' });
    await holder.connect();
    try {
      await holder.query(`BEGIN; UPDATE items SET counter = counter + 1 WHERE id = 1`);
      const { rows } = await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const result = await runPgferry(['cutover', ...args, '--drain-timeout', '1']);
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        new RegExp(
          `the drain timed out after 1\\.0 s; still running: pid ${rows[0]!.pid} \\(user \\w+, application long-report, idle in transaction, transaction open`,
        ),
      );
      assert.match(result.stderr, /the source is writable again/);
      // The held transaction was never touched: it commits, and sync carries it over.
      await holder.query('COMMIT');
      assert.equal(await newSessionCanWrite(pair.source, db), true);
    } finally {
      await holder.end().catch(() => undefined);
      await stopSync(sync);
    }
  });

  it('interrupted mid-freeze (SIGINT), lifts the freeze and leaves sync running', async () => {
    const { db, sync, args } = await migrationUnderWay(pair.source, pair.target, 'sigint');
    const holder = new pg.Client({ connectionString: pair.source.url(db) });
    await holder.connect();
    try {
      await holder.query(`BEGIN; UPDATE items SET counter = counter + 1 WHERE id = 2`);
      const cut = spawnPgferry(['cutover', ...args, '--drain-timeout', '60']);
      const deadline = Date.now() + 30_000;
      while (!/draining sessions/.test(cut.output())) {
        assert.ok(Date.now() < deadline && cut.child.exitCode === null, cut.output());
        await sleep(50);
      }
      assert.equal(await newSessionCanWrite(pair.source, db), false, 'the freeze should hold during the drain');
      cut.child.kill('SIGINT');
      assert.notEqual(await cut.exited(), 0);
      assert.match(
        cut.output(),
        /cut-over failed at the drain step: interrupted during the drain; the source is writable again and sync keeps running/,
      );
      assert.equal(await newSessionCanWrite(pair.source, db), true);
      await holder.query('COMMIT');
      assert.equal((await pair.target.sql(db, `SELECT phase FROM pgferry.sync`)).rows[0].phase, 'streaming');
    } finally {
      await holder.end().catch(() => undefined);
      await stopSync(sync);
    }
  });

  for (const escape of [
    {
      freeze: 'read-only',
      what: 'a session that escapes the read-only freeze',
      // Opened during the freeze, it sets the read-only default off for itself, as any client may.
      setUp: 'SET default_transaction_read_only = off',
      source: 'the freeze is lifted',
    },
    {
      freeze: 'none',
      what: 'an application still writing under --freeze none',
      setUp: 'SELECT 1',
      source: 'the source was not frozen \\(--freeze none\\)',
    },
  ] as const) {
    it(`${escape.what} is caught in the slot: the cut-over is undone and a new sync carries its writes`, async () => {
      const { db, sync, args } = await migrationUnderWay(pair.source, pair.target, `escape_${escape.freeze.replace('-', '_')}`);
      // A session that writes back to back. The harness's servers run synchronous_commit = off,
      // so its last commits are not flushed when sync stops: the check must flush before it reads.
      let writing = true;
      let rogueCommits = 0;
      let rogueError: unknown;
      const rogueWrites = async () => {
        const client = new pg.Client({ connectionString: pair.source.url(db), application_name: 'rogue' });
        client.on('error', () => undefined);
        try {
          await client.connect();
          await client.query(escape.setUp);
          while (writing) {
            await client.query(`INSERT INTO items (payload) VALUES ('rogue')`);
            rogueCommits++;
            await sleep(3);
          }
        } catch (error) {
          // Once the cut-over is undone it ends the sessions opened during the freeze; before that, nothing may stop this one.
          rogueError = error;
        } finally {
          await client.end().catch(() => undefined);
        }
      };
      let rogue: Promise<void> | undefined;
      let resumed: PgferryProcess | undefined;
      try {
        // Sync held still (its heartbeat is fresh), so the cut-over freezes, then waits at the
        // fence until the rogue session writes steadily: its writes go on past sync's final position.
        sync.child.kill('SIGSTOP');
        const cut = spawnPgferry(['cutover', ...args, '--freeze', escape.freeze, '--verify', 'none', '--fence-timeout', '60']);
        const deadline = Date.now() + 30_000;
        while (!/draining sessions/.test(cut.output())) {
          assert.ok(Date.now() < deadline && cut.child.exitCode === null, cut.output());
          await sleep(20);
        }
        rogue = rogueWrites();
        while (rogueCommits < 20) {
          assert.ok(Date.now() < deadline, `the rogue session did not write: ${cut.output()}`);
          await sleep(10);
        }
        sync.child.kill('SIGCONT');
        const code = await cut.exited();
        assert.equal(
          code,
          1,
          `${cut.output()}\nrogue session: ${rogueCommits} commits, ${rogueError === undefined ? 'still writing' : String(rogueError)}`,
        );
        assert.match(
          cut.output(),
          new RegExp(
            `cut-over undone: the source committed \\d+ transactions? changing public\\.items \\(\\d+ changes?\\) after sync's final position, so the target lacks them; ${escape.source}, and sync may run again`,
          ),
        );
        assert.match(cut.output(), /set default_transaction_read_only off/);
        assert.equal(await sync.exited(), 0, sync.output());
        assert.equal(await newSessionCanWrite(pair.source, db), true);
        const state = await pair.target.sql(db, `SELECT stop_requested_at FROM pgferry.sync`);
        assert.equal(state.rows[0].stop_requested_at, null);
        assert.match((await runPgferry(['status', '--target', pair.target.url(db)])).stdout, /cutover +failed at /);

        // Nothing is lost: a new sync continues from the target's position and carries them.
        writing = false;
        await rogue;
        resumed = spawnPgferry(['sync', ...args, '--until-caught-up']);
        assert.equal(await resumed.exited(), 0, resumed.output());
        const comparison = await compareTables(pair.source.url(db), pair.target.url(db));
        assert.ok(comparison.equal, JSON.stringify(comparison.tables.filter((t) => !t.equal)));
      } finally {
        writing = false;
        sync.child.kill('SIGCONT');
        await rogue?.catch(() => undefined);
        if (resumed) await stopSync(resumed);
        await stopSync(sync);
      }
    });
  }

  it('after a cut-over, cleanup that cannot read the slot keeps it (nothing changed) until --force', async () => {
    const { db, sync, args } = await migrationUnderWay(pair.source, pair.target, 'unreadable');
    try {
      const cut = await runPgferry(['cutover', ...args, '--verify', 'none', '--unfreeze-source'], {}, 60_000);
      assert.equal(cut.code, 0, cut.stderr);
      assert.equal(await sync.exited(), 0, sync.output());
      // Without its publication the slot's next change can't be decoded: whether the slot holds
      // late writes is unknown.
      const { slot, publication } = (await pair.target.sql(db, `SELECT slot_name AS slot, publication FROM pgferry.sync`)).rows[0] as {
        slot: string;
        publication: string;
      };
      await pair.source.sql(db, `DROP PUBLICATION ${publication}; INSERT INTO items (payload) VALUES ('after the cut-over')`);
      const slots = async () =>
        (await pair.source.sql(db, `SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1`, [slot])).rows[0].n as number;
      const refused = await runPgferry(['cleanup', ...args]);
      assert.notEqual(refused.code, 0, refused.stdout);
      assert.match(refused.stderr, new RegExp(`cannot tell whether slot ${slot} holds writes committed after the cut-over`));
      assert.match(refused.stderr, /--force/);
      assert.equal(await slots(), 1);
      const forced = await runPgferry(['cleanup', ...args, '--force']);
      assert.equal(forced.code, 0, forced.stderr);
      assert.match(forced.stdout, /dropped replication slot/);
      assert.equal(await slots(), 0);
    } finally {
      await stopSync(sync);
    }
  });

  it("--freeze revoke takes the roles' write privileges for the freeze, and cleanup gives them back exactly", async () => {
    const { db, sync, args } = await migrationUnderWay(pair.source, pair.target, 'revoke');
    const role = `${db}_app`;
    await pair.source.sql(
      db,
      `CREATE ROLE ${role} LOGIN PASSWORD 'app-secret';
                          GRANT USAGE ON SCHEMA public TO ${role};
                          GRANT SELECT, INSERT, UPDATE ON items TO ${role};
                          GRANT DELETE ON items TO ${role} WITH GRANT OPTION;
                          GRANT SELECT, INSERT ON ledger TO ${role};
                          GRANT USAGE ON SEQUENCE items_id_seq TO ${role}`,
    );
    const app = new pg.Client({ connectionString: pair.source.url(db, { user: role, password: 'app-secret' }) });
    await app.connect();
    try {
      await app.query(`INSERT INTO items (payload) VALUES ('before the freeze')`);
      const result = await runPgferry(['cutover', ...args, '--freeze', 'revoke', '--roles', role, '--json'], {}, 60_000);
      assert.equal(result.code, 0, `${result.stderr}\n${sync.output()}`);
      await assert.rejects(app.query(`INSERT INTO items (payload) VALUES ('during the freeze')`), /permission denied/);
      assert.equal((await pair.target.sql(db, `SELECT count(*)::int AS n FROM items WHERE payload = 'before the freeze'`)).rows[0].n, 1);

      // The cut-over prepared the way back: --force gives it up with the freeze.
      const cleaned = await runPgferry(['cleanup', ...args, '--unfreeze-source', '--force']);
      assert.equal(cleaned.code, 0, cleaned.stderr);
      assert.match(cleaned.stdout, /target: dropped replication slot pgferry_/);
      assert.match(cleaned.stdout, /source: dropped schema pgferry \(the way back's state\)/);
      const privileges = await pair.source.sql(
        db,
        `SELECT c.relname, a.privilege_type, a.is_grantable FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
          WHERE a.grantee = $1::regrole AND c.relname IN ('items', 'ledger', 'items_id_seq') ORDER BY 1, 2`,
        [role],
      );
      assert.deepEqual(privileges.rows, [
        { relname: 'items', privilege_type: 'DELETE', is_grantable: true },
        { relname: 'items', privilege_type: 'INSERT', is_grantable: false },
        { relname: 'items', privilege_type: 'SELECT', is_grantable: false },
        { relname: 'items', privilege_type: 'UPDATE', is_grantable: false },
        { relname: 'items_id_seq', privilege_type: 'USAGE', is_grantable: false },
        { relname: 'ledger', privilege_type: 'INSERT', is_grantable: false },
        { relname: 'ledger', privilege_type: 'SELECT', is_grantable: false },
      ]);
      await app.query(`INSERT INTO items (payload) VALUES ('after the freeze')`);
    } finally {
      await app.end().catch(() => undefined);
      await stopSync(sync);
    }
  });

  it('--freeze revoke refuses a role that would still write (it owns a table), before freezing anything', async () => {
    const { db, sync, args } = await migrationUnderWay(pair.source, pair.target, 'hole');
    const role = `${db}_owner`;
    try {
      await pair.source.sql(db, `CREATE ROLE ${role}; ALTER TABLE ledger OWNER TO ${role}`);
      const result = await runPgferry(['cutover', ...args, '--freeze', 'revoke', '--roles', role]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, new RegExp(`--freeze revoke would leave writes open: ${role} on public.ledger`));
      assert.equal((await pair.target.sql(db, `SELECT phase FROM pgferry.sync`)).rows[0].phase, 'streaming');
    } finally {
      await stopSync(sync);
    }
  });

  it('rejects bad options with one line naming the fix', async () => {
    const cutoverWith = (...flags: string[]) =>
      runPgferry(['cutover', '--source', pair.source.url('postgres'), '--target', pair.target.url('postgres'), ...flags]);
    const revoke = await cutoverWith('--freeze', 'revoke');
    assert.equal(revoke.code, 2);
    assert.match(revoke.stderr, /--freeze revoke needs the roles to revoke from — add --roles/);
    const freeze = await cutoverWith('--freeze', 'lock');
    assert.equal(freeze.code, 2);
    assert.match(freeze.stderr, /--freeze "lock" is not one of read-only, revoke, none/);
    const lag = await cutoverWith('--max-lag', 'soon');
    assert.equal(lag.code, 2);
    assert.match(lag.stderr, /--max-lag "soon" is not a number of seconds/);
  });
});
