/**
 * One cut-over for several databases of a server (issue 32): three databases, each with its own
 * `pgferry sync` process, writers on two of them, one `cutover --all-databases` that freezes them
 * together. And what a failure in one database must do to all of them: lift every freeze and
 * leave every sync streaming; and what a SIGKILL inside the freeze leaves for cleanup.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import type { InstanceCutoverReport } from '../../src/cutover/index.js';
import {
  compareTables,
  newSessionCanWrite,
  readOnlyDefault,
  servedBy,
  startPgbouncer,
  runPgferry,
  spawnPgferry,
  startWriter,
  stopSync,
  useClusterPair,
  waitUntilStreaming,
  writerDatabases,
  type Cluster,
  type PgferryProcess,
  type Writer,
  type WriterReport,
} from '../harness/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Beside the writer's tables (keys, a serial and an identity): a table with no key at all, and a sequence of its own. */
const SEED = `
  INSERT INTO items (payload) SELECT md5(g::text) FROM generate_series(1, 300) g;
  INSERT INTO ledger (item_id, op) SELECT id, 'insert' FROM items;
  CREATE TABLE notes (body text, n int);
  ALTER TABLE notes REPLICA IDENTITY FULL;
  INSERT INTO notes SELECT 'note ' || g, g % 7 FROM generate_series(1, 200) g, generate_series(1, 2);
  CREATE SEQUENCE tickets;
  SELECT setval('tickets', 1000);`;

interface Instance {
  /** The three databases, in name order (as --all-databases walks them). */
  readonly dbs: readonly string[];
  readonly syncs: readonly PgferryProcess[];
  /** The cut-over's flags: the instance, and only this test's databases. */
  readonly args: readonly string[];
}

/** Three databases named `<prefix>_…`, each followed by its own pgferry sync, started one after another. */
async function instanceUnderWay(source: Cluster, target: Cluster, prefix: string): Promise<Instance> {
  const dbs: string[] = [];
  const syncs: PgferryProcess[] = [];
  for (let i = 0; i < 3; i++) {
    const { db, args } = await writerDatabases(source, target, prefix, SEED);
    const sync = spawnPgferry(['sync', ...args]);
    syncs.push(sync);
    dbs.push(db);
    await waitUntilStreaming(target, db, sync);
  }
  return {
    dbs,
    syncs,
    args: ['--source', source.url('postgres'), '--target', target.url('postgres'), '--all-databases', '--include-database', `${prefix}_*`],
  };
}

/** Changes to the keyless table and the sequence while sync streams, so the cut-over has them to carry. */
async function touchKeylessAndSequence(source: Cluster, db: string): Promise<void> {
  await source.sql(db, `UPDATE notes SET n = n + 1 WHERE body IN ('note 1', 'note 2'); DELETE FROM notes WHERE body = 'note 3'`);
  await source.sql(db, `SELECT nextval('tickets') FROM generate_series(1, 25)`);
}

/** A new session's write refused: the database is frozen read-only. */
async function frozen(source: Cluster, db: string): Promise<boolean> {
  return !(await newSessionCanWrite(source, db, 'items'));
}

/** Every transaction the writer saw commit is on the target: its ledger rows, its items unless it deleted them. */
async function assertNothingLost(target: Cluster, db: string, report: WriterReport): Promise<void> {
  assert.deepEqual(report.unexpectedErrors, [], db);
  const ledger = new Set(((await target.sql(db, `SELECT array_agg(id::text) AS ids FROM ledger`)).rows[0] as { ids: string[] }).ids);
  const lost = report.committed.flatMap((c) => c.ledgerIds).filter((id) => !ledger.has(id));
  assert.deepEqual(lost, [], `${db}: transactions the writer saw commit are missing on the target`);
  const present = new Set(((await target.sql(db, `SELECT array_agg(id::text) AS ids FROM items`)).rows[0] as { ids: string[] }).ids);
  const deleted = new Set(report.committed.flatMap((c) => (c.deletedItem ? [c.deletedItem] : [])));
  for (const c of report.committed)
    assert.equal(present.has(c.insertedItem), !deleted.has(c.insertedItem), `${db}: item ${c.insertedItem}`);
}

async function syncStreams(target: Cluster, db: string, sync: PgferryProcess): Promise<void> {
  assert.equal(sync.child.exitCode, null, `sync of ${db} ended:\n${sync.output().slice(-2000)}`);
  const [state] = (await target.sql(db, `SELECT phase, stop_requested_at FROM pgferry.sync`)).rows as Array<{
    phase: string;
    stop_requested_at: Date | null;
  }>;
  assert.deepEqual(state, { phase: 'streaming', stop_requested_at: null }, db);
}

describe('cutover --all-databases, 17 → 18', () => {
  const pair = useClusterPair(17, 18);

  it('freezes every database together, and leaves each equal to its source with no committed write lost', async () => {
    const { dbs, syncs, args } = await instanceUnderWay(pair.source, pair.target, 'whole');
    const writers: Writer[] = [startWriter(pair.source.url(dbs[0]!)), startWriter(pair.source.url(dbs[1]!))];
    const written: WriterReport[] = [];
    try {
      await Promise.all(writers.map((w) => w.waitForCommits(100, 'source')));
      for (const db of dbs) await touchKeylessAndSequence(pair.source, db);
      const cut = await runPgferry(['cutover', ...args, '--json'], {}, 180_000);
      assert.equal(cut.code, 0, `${cut.stderr}\n--- syncs\n${syncs.map((s) => s.output().slice(-1500)).join('\n')}`);
      const report = JSON.parse(cut.stdout) as InstanceCutoverReport;
      assert.deepEqual(
        report.databases.map((d) => d.database),
        dbs,
      );
      // One freeze: one downtime, recorded as such by every database's own cut-over record.
      assert.ok(report.downtimeMs > 0);
      for (const d of report.databases) {
        assert.equal(d.downtimeMs, report.downtimeMs, d.database);
        assert.equal(d.syncStopped, true, d.database);
        assert.equal(d.lateTransactions, 0, d.database);
        assert.equal(d.checked.level, 'changes');
        assert.ok(d.wayBack, `${d.database}: ${d.wayBackSkipped}`);
        assert.deepEqual(
          d.sequences.map((s) => s.name).sort(),
          ['public.items_id_seq', 'public.ledger_id_seq', 'public.tickets'],
          d.database,
        );
        const steps = d.steps.map((s) => s.step);
        for (const step of ['freeze', 'drain', 'fence', 'verify', 'stop sync', 'late writes', 'hand over'] as const)
          assert.ok(steps.includes(step), `${d.database}: ${steps.join(', ')}`);
      }
      for (const [i, db] of dbs.entries()) {
        // Frozen still: equal now by content, the keyless table included.
        const comparison = await compareTables(pair.source.url(db), pair.target.url(db));
        assert.ok(comparison.equal, `${db}: ${JSON.stringify(comparison.tables.filter((t) => !t.equal))}`);
        assert.equal(await frozen(pair.source, db), true, `${db} is writable after the cut-over`);
        for (const sequence of ['items_id_seq', 'ledger_id_seq', 'tickets']) {
          const [s, t] = await Promise.all(
            [pair.source, pair.target].map((c) => c.sql(db, `SELECT last_value::text AS v FROM ${sequence}`)),
          );
          assert.ok(BigInt((t!.rows[0] as { v: string }).v) >= BigInt((s!.rows[0] as { v: string }).v), `${db}.${sequence}`);
        }
        assert.equal(await syncs[i]!.exited(), 0, syncs[i]!.output());
        assert.match(syncs[i]!.output(), /"cause":"cut over"/);
      }
      const status = await runPgferry(['status', '--json', '--target', pair.target.url(dbs[2]!)]);
      assert.equal(
        Math.round((JSON.parse(status.stdout) as { cutover: { downtimeMs: number } }).cutover.downtimeMs),
        Math.round(report.downtimeMs),
      );
      for (const [i, w] of writers.entries()) w.switchTo(pair.target.url(dbs[i]!));
      await Promise.all(writers.map((w) => w.waitForCommits(30, 'target')));
    } finally {
      for (const w of writers) written.push(await w.stop());
      for (const sync of syncs) await stopSync(sync);
    }
    for (const [i, report] of written.entries()) {
      await assertNothingLost(pair.target, dbs[i]!, report);
      assert.ok(report.committed.some((c) => c.side === 'target'));
    }
    // Cleanup goes database by database: each one's freeze lifted, its way back given up.
    const cleanup = await runPgferry(['cleanup', ...args, '--unfreeze-source', '--force'], {}, 120_000);
    assert.equal(cleanup.code, 0, cleanup.stderr);
    for (const db of dbs) {
      assert.match(cleanup.stdout, new RegExp(`Database ${db}:\\n(  .*\\n)*  source: lifted the read-only freeze`));
      assert.equal(await frozen(pair.source, db), false, db);
    }
  });

  it('a difference in one database refuses before the freeze, removing every way back; at the fence, lifts the freeze on every database; every sync keeps streaming', async () => {
    const { dbs, syncs, args } = await instanceUnderWay(pair.source, pair.target, 'onefails');
    const writers: Writer[] = [startWriter(pair.source.url(dbs[0]!)), startWriter(pair.source.url(dbs[1]!))];
    try {
      await Promise.all(writers.map((w) => w.waitForCommits(50, 'source')));
      // A row of the keyless table lost on the third target: counted inside the freeze, it fails there.
      await pair.target.sql(dbs[2]!, `DELETE FROM notes WHERE ctid = (SELECT min(ctid) FROM notes)`);
      // With --verify changes it is found before the freeze, while sync streams: nothing frozen, every way back removed again.
      const early = await runPgferry(['cutover', ...args], {}, 180_000);
      assert.equal(early.code, 1, `${early.stdout}\n${early.stderr}`);
      assert.match(
        early.stderr,
        new RegExp(`database "${dbs[2]}": the target differs from the source before the freeze .*public\\.notes.*; nothing was frozen`),
      );
      for (const db of dbs) {
        const slots = await pair.target.sql('postgres', `SELECT slot_name FROM pg_replication_slots WHERE database = $1`, [db]);
        assert.deepEqual(slots.rows, [], `${db}: a way back is left on the target`);
      }
      // With --verify counts, inside the freeze.
      const cut = await runPgferry(['cutover', ...args, '--verify', 'counts'], {}, 180_000);
      assert.equal(cut.code, 1, `${cut.stdout}\n${cut.stderr}`);
      assert.match(
        cut.stderr,
        new RegExp(
          `cut-over of 3 databases failed at the verify step of database ${dbs[2]}: the target differs from the source at the fence: public\\.notes .*; every source database is writable again, and every sync keeps running`,
        ),
      );
      for (const [i, db] of dbs.entries()) {
        assert.equal(await frozen(pair.source, db), false, `${db} was left frozen:\n${cut.stderr}`);
        await syncStreams(pair.target, db, syncs[i]!);
        // No way back is left prepared on any target.
        const slots = await pair.target.sql('postgres', `SELECT slot_name FROM pg_replication_slots WHERE database = $1`, [db]);
        assert.deepEqual(slots.rows, [], db);
      }
      // The application went on writing through it all, and goes on now.
      const before = writers.map((w) => w.committedCount);
      await Promise.all(writers.map((w, i) => w.waitForCommits(before[i]! + 20, 'source')));
      for (const [i, db] of dbs.slice(0, 2).entries()) {
        const status = await runPgferry(['status', '--target', pair.target.url(db)]);
        assert.match(status.stdout, /cutover +failed at .*; the source is writable/, `${db}: ${status.stdout}`);
        assert.equal(syncs[i]!.child.exitCode, null);
      }
    } finally {
      for (const w of writers) await w.stop();
      for (const sync of syncs) await stopSync(sync);
    }
    // Their slots would crowd the next test's syncs.
    const cleanup = await runPgferry(['cleanup', ...args, '--force'], {}, 120_000);
    assert.equal(cleanup.code, 0, cleanup.stderr);
  });

  it('a late write in one database, found after every sync stopped, undoes the cut-over: every stop withdrawn, every freeze lifted', async () => {
    const { dbs, syncs, args } = await instanceUnderWay(pair.source, pair.target, 'late');
    const rogueDb = dbs[1]!;
    let writing = true;
    let rogueCommits = 0;
    // Opened during the freeze, it sets the read-only default off for itself, as any client may.
    const rogueWrites = async () => {
      const client = new pg.Client({ connectionString: pair.source.url(rogueDb), application_name: 'rogue' });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SET default_transaction_read_only = off');
        while (writing) {
          await client.query(`INSERT INTO items (payload) VALUES ('rogue')`);
          rogueCommits++;
          await sleep(3);
        }
      } catch {
        // Once the cut-over is undone it ends the sessions opened during the freeze.
      } finally {
        await client.end().catch(() => undefined);
      }
    };
    let rogue: Promise<void> | undefined;
    const resumed: PgferryProcess[] = [];
    try {
      // That database's sync held still (its heartbeat fresh): the freeze waits at its fence
      // until the rogue session writes steadily, so its writes go on past sync's final position.
      syncs[1]!.child.kill('SIGSTOP');
      const cut = spawnPgferry(['cutover', ...args, '--verify', 'none', '--no-fallback', '--fence-timeout', '60']);
      const deadline = Date.now() + 60_000;
      while (!(await readOnlyDefault(pair.source, rogueDb))) {
        assert.ok(Date.now() < deadline && cut.child.exitCode === null, cut.output());
        await sleep(20);
      }
      rogue = rogueWrites();
      while (rogueCommits < 20) {
        assert.ok(Date.now() < deadline, `the rogue session did not write: ${cut.output()}`);
        await sleep(10);
      }
      syncs[1]!.child.kill('SIGCONT');
      assert.equal(await cut.exited(), 1, cut.output());
      assert.match(
        cut.output(),
        new RegExp(
          `cut-over of 3 databases undone: database ${rogueDb}'s source committed \\d+ transactions? changing public\\.items .*; every source database is writable again, and sync stopped in ${dbs.join(', ')}: start it again there`,
        ),
      );
      writing = false;
      await rogue;
      for (const [i, db] of dbs.entries()) {
        assert.equal(await syncs[i]!.exited(), 0, syncs[i]!.output());
        assert.equal(await frozen(pair.source, db), false, db);
        const state = await pair.target.sql(db, `SELECT stop_requested_at FROM pgferry.sync`);
        assert.equal(state.rows[0].stop_requested_at, null, `${db}: its stop request stands`);
      }
      // Nothing is lost: each sync starts again from its target's position, the rogue writes carried.
      for (const db of dbs)
        resumed.push(spawnPgferry(['sync', '--source', pair.source.url(db), '--target', pair.target.url(db), '--until-caught-up']));
      for (const [i, db] of dbs.entries()) {
        assert.equal(await resumed[i]!.exited(), 0, resumed[i]!.output());
        const comparison = await compareTables(pair.source.url(db), pair.target.url(db));
        assert.ok(comparison.equal, `${db}: ${JSON.stringify(comparison.tables.filter((t) => !t.equal))}`);
      }
    } finally {
      writing = false;
      syncs[1]!.child.kill('SIGCONT');
      await rogue?.catch(() => undefined);
      for (const sync of [...resumed, ...syncs]) await stopSync(sync);
    }
    const cleanup = await runPgferry(['cleanup', ...args, '--force'], {}, 120_000);
    assert.equal(cleanup.code, 0, cleanup.stderr);
  });

  it('SIGKILLed while the databases are frozen together, leaves what cleanup --all-databases --unfreeze-source undoes', async () => {
    const { dbs, syncs, args } = await instanceUnderWay(pair.source, pair.target, 'killed');
    // A transaction begun before the freeze holds the second database's drain: the others wait for it, frozen.
    const holder = new pg.Client({ connectionString: pair.source.url(dbs[1]!) });
    holder.on('error', () => undefined);
    await holder.connect();
    await holder.query(`BEGIN; INSERT INTO items (payload) VALUES ('holding')`);
    try {
      const cut = spawnPgferry(['cutover', ...args, '--drain-timeout', '60']);
      const deadline = Date.now() + 90_000;
      for (;;) {
        const states = await Promise.all(dbs.map((db) => readOnlyDefault(pair.source, db)));
        if (states.every(Boolean)) break;
        assert.ok(Date.now() < deadline && cut.child.exitCode === null, `not every database froze:\n${cut.output()}`);
        await sleep(50);
      }
      cut.child.kill('SIGKILL');
      await cut.exited();
    } finally {
      await holder.end().catch(() => undefined);
      for (const sync of syncs) await stopSync(sync);
    }
    const cleanup = await runPgferry(['cleanup', ...args, '--unfreeze-source', '--force'], {}, 120_000);
    assert.equal(cleanup.code, 0, cleanup.stderr);
    for (const db of dbs) {
      assert.equal(await frozen(pair.source, db), false, `${db}: ${cleanup.stdout}`);
      for (const [side, cluster] of [
        ['source', pair.source],
        ['target', pair.target],
      ] as const) {
        const slots = await cluster.sql('postgres', `SELECT slot_name FROM pg_replication_slots WHERE database = $1`, [db]);
        assert.deepEqual(slots.rows, [], `${db}: slots left on the ${side}: ${cleanup.stdout}`);
        const schemas = await cluster.sql(db, `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'pgferry%'`);
        assert.deepEqual(schemas.rows, [], `${db}: schemas left on the ${side}: ${cleanup.stdout}`);
      }
    }
  });

  it('through PgBouncer: the pooled databases paused together, repointed and resumed in the one freeze, the unpooled one cut over beside them', async () => {
    const { dbs, syncs, args } = await instanceUnderWay(pair.source, pair.target, 'pooled');
    // Two of the three are pooled; the application writes to the first through the pool, as a
    // role with the same password on both servers (the pool logs in to either with it).
    const app = { user: 'pooled_app', password: 'pooled-app-pw' };
    for (const cluster of [pair.source, pair.target])
      await cluster.sql('postgres', `CREATE ROLE ${app.user} LOGIN SUPERUSER PASSWORD '${app.password}'`);
    const bouncer = await startPgbouncer(pair.source, [dbs[0]!, dbs[1]!], { users: { [app.user]: app.password } });
    const writer = startWriter(`postgres://${app.user}:${app.password}@127.0.0.1:${bouncer.port}/${dbs[0]!}`);
    let written: WriterReport | undefined;
    try {
      await writer.waitForCommits(50, 'source');
      const cut = await runPgferry(
        ['cutover', ...args, '--pgbouncer', bouncer.adminUrl, '--pgbouncer-ini', bouncer.ini, '--json'],
        {},
        180_000,
      );
      assert.equal(cut.code, 0, `${cut.stderr}\n--- syncs\n${syncs.map((s) => s.output().slice(-1500)).join('\n')}`);
      const report = JSON.parse(cut.stdout) as InstanceCutoverReport;
      const pooled = report.databases[0]!.pgbouncer;
      assert.ok(pooled, 'the report says how the pool was switched');
      assert.deepEqual(pooled.pools.map((p) => p.database).sort(), [dbs[0]!, dbs[1]!].sort(), JSON.stringify(pooled));
      for (const d of report.databases) assert.equal(d.downtimeMs, report.downtimeMs, d.database);
      // Both pooled databases now go to the target, resumed: a new client of either is served by it.
      for (const db of [dbs[0]!, dbs[1]!]) assert.equal(await servedBy(bouncer, db, app), pair.target.port, db);
      // Through the pool the writer never switches by itself: its commits after the cut-over still count as the source's.
      await writer.waitForCommits(writer.committedCount + 20, 'source');
    } finally {
      written = await writer.stop();
      await bouncer.stop();
      for (const sync of syncs) await stopSync(sync);
    }
    await assertNothingLost(pair.target, dbs[0]!, written);
    // The first took the writer's commits on the target after the cut-over; the others are as their sources left them.
    for (const db of dbs.slice(1)) assert.ok((await compareTables(pair.source.url(db), pair.target.url(db))).equal, db);
  });
});
