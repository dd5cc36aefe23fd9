import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { compareTables, startClusters, type Cluster } from '../harness/index.js';
import { runPgferry, spawnPgferry } from '../harness/cli.js';

/*
 * Issue 22: sync's copy is resumable. Each table is copied at a snapshot of its own whose
 * position the target records; the stream applies a table's changes from there. Killed at
 * random moments of the copy (a split table half copied, an index being built, anywhere) and
 * with the source restarted once, under a writer touching every table, sync started again keeps
 * what was finished, copies the rest, and ends with every table equal to the source.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const BIG_ROWS = 150_000;

async function createSchema(source: Cluster, db: string): Promise<void> {
  await source.sql(
    db,
    `CREATE TABLE big (id bigint PRIMARY KEY, grp int NOT NULL, filler text NOT NULL) WITH (fillfactor = 100);
     INSERT INTO big SELECT g, g % 97, repeat(md5(g::text), 5) FROM generate_series(1, ${BIG_ROWS}) g;
     CREATE INDEX big_grp ON big (grp, id);
     CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, score int NOT NULL);
     INSERT INTO customers SELECT g, 'c' || g, g % 50 FROM generate_series(1, 5000) g;
     CREATE TABLE orders (id int PRIMARY KEY, customer int NOT NULL REFERENCES customers (id) ON DELETE CASCADE, amount numeric NOT NULL);
     INSERT INTO orders SELECT g, 1 + g % 5000, g * 1.5 FROM generate_series(1, 20000) g;
     CREATE INDEX orders_customer ON orders (customer);
     CREATE TABLE notes (a int, b text);
     ALTER TABLE notes REPLICA IDENTITY FULL;
     INSERT INTO notes SELECT g % 300, 'n' || (g % 300) FROM generate_series(1, 3000) g;
     CREATE TABLE events (id bigint NOT NULL, day int NOT NULL, what text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day);
     CREATE TABLE events_a PARTITION OF events FOR VALUES FROM (0) TO (50);
     CREATE TABLE events_b PARTITION OF events FOR VALUES FROM (50) TO (100);
     INSERT INTO events SELECT g, g % 100, 'e' || g FROM generate_series(1, 20000) g;
     ANALYZE;`,
  );
}

/** A writer touching every table: inserts, updates moving rows to other pages, deletes, key changes, rows moving partition. */
function startWriter(url: string): { stop(): Promise<{ committed: number; failures: number }> } {
  let stopping = false;
  let committed = 0;
  let failures = 0;
  let next = 10_000_000;
  const rnd = (n: number) => 1 + Math.floor(Math.random() * n);
  const statements = (): string[] => {
    const id = rnd(BIG_ROWS);
    switch (rnd(7)) {
      case 1:
        return [`UPDATE big SET filler = repeat(md5(random()::text), 6) WHERE id BETWEEN ${id} AND ${id + 20}`];
      case 2:
        return [`DELETE FROM big WHERE id = ${id}`, `INSERT INTO big VALUES (${next++}, ${id % 97}, 'new ' || ${id})`];
      case 3:
        return [`UPDATE big SET id = id + 20000000 WHERE id = ${id}`];
      case 4:
        return [
          `UPDATE customers SET score = score + 1, name = name || 'x' WHERE id = ${rnd(5000)}`,
          `INSERT INTO orders VALUES (${next++}, ${rnd(5000)}, ${id})`,
          `DELETE FROM orders WHERE id = ${rnd(20000)}`,
        ];
      case 5:
        return [`UPDATE orders SET id = id + 30000000, amount = amount + 1 WHERE id = ${rnd(20000)}`];
      case 6:
        return [
          `UPDATE notes SET b = b || '+' WHERE ctid = (SELECT ctid FROM notes WHERE a = ${rnd(300) - 1} LIMIT 1)`,
          `INSERT INTO notes VALUES (${rnd(300)}, 'w')`,
        ];
      default:
        return [`UPDATE events SET day = (day + 50) % 100 WHERE id = ${rnd(20000)}`, `DELETE FROM events WHERE id = ${rnd(20000)}`];
    }
  };
  const running = (async () => {
    let client: pg.Client | undefined;
    while (!stopping) {
      try {
        if (!client) {
          client = new pg.Client({ connectionString: url });
          client.on('error', () => undefined);
          await client.connect();
        }
        await client.query('BEGIN');
        for (const sql of statements()) await client.query(sql);
        await client.query('COMMIT');
        committed++;
      } catch {
        // The source restarting, or a key moved by another statement: a new connection, on we go.
        failures++;
        await client?.end().catch(() => undefined);
        client = undefined;
        await sleep(50);
      }
      await sleep(2);
    }
    await client?.end().catch(() => undefined);
  })();
  return {
    async stop() {
      stopping = true;
      await running;
      return { committed, failures };
    },
  };
}

interface CopyProgressRow {
  readonly done: number;
  readonly total: number;
  readonly bigHalf: boolean;
  readonly building: boolean;
  readonly snapshots: number;
}

async function copyProgress(target: pg.Client): Promise<CopyProgressRow | undefined> {
  try {
    const { rows } = await target.query<{ done: number; total: number; big_half: boolean; building: boolean; snapshots: number }>(
      `SELECT count(*) FILTER (WHERE done)::int AS done, count(*)::int AS total,
              coalesce(bool_or(done) FILTER (WHERE table_name = 'public.big') AND NOT bool_and(done) FILTER (WHERE table_name = 'public.big'), false) AS big_half,
              EXISTS (SELECT 1 FROM pg_stat_progress_create_index) AS building,
              (SELECT count(*)::int FROM pgferry.copy_snapshots) AS snapshots
         FROM pgferry.copy_units`,
    );
    return {
      done: rows[0]!.done,
      total: rows[0]!.total,
      bigHalf: rows[0]!.big_half,
      building: rows[0]!.building,
      snapshots: rows[0]!.snapshots,
    };
  } catch {
    return undefined;
  }
}

/** Waits (polling every 10 ms, up to `withinMs`) until `when` holds for the copy's progress; false if it never did. */
async function waitFor(target: pg.Client, when: (p: CopyProgressRow) => boolean, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    const progress = await copyProgress(target);
    if (progress && when(progress)) return true;
    await sleep(10);
  }
  return false;
}

/** A source database with the schema, an empty target one, sync's arguments, and a session watching the target's copy state. */
async function migration(clusters: [Cluster, Cluster], prefix: string) {
  const [source, target] = clusters;
  const db = await source.createDatabase({ prefix });
  await target.sql('postgres', `CREATE DATABASE ${db}`);
  await createSchema(source, db);
  // Big enough to be split into ranges, small enough for a test.
  const args = ['sync', '--source', source.url(db), '--target', target.url(db), '--split-tables-larger-than', '1MB', '--jobs', '2'];
  const watcher = new pg.Client({ connectionString: target.url(db) });
  await watcher.connect();
  return { source, target, db, args, watcher };
}

for (const [from, to] of [
  [13, 17],
  [17, 18],
] as const) {
  describe(`sync: a copy killed and resumed, ${from} → ${to}`, () => {
    let clusters: [Cluster, Cluster];
    before(async () => {
      clusters = await startClusters([{ version: from }, { version: to }]);
    });
    after(async () => {
      await Promise.all(clusters.map((c) => c.stop()));
    });

    it('keeps finished tables, copies the rest at new snapshots, and ends equal to the source under a writer', async () => {
      const { source, target, db, args, watcher } = await migration(clusters, 'resume');
      const writer = startWriter(source.url(db));
      const logs: string[] = [];
      const moments: string[] = [];
      let sawSnapshot = false;
      let statusShowed: unknown;
      let killedMidCopy = false;
      let resumedMidCopy = 0;
      try {
        // Each run is killed at another moment of the copy; what it was is printed on failure.
        // `copied`: units this run copied so far (the state also holds the earlier runs').
        const extra = Math.floor(Math.random() * 4);
        const kills: Array<{ what: string; when: (p: CopyProgressRow, copied: number) => boolean; restartSource?: boolean }> = [
          { what: 'a split table half copied', when: (p) => p.bigHalf },
          { what: 'an index being built', when: (p, copied) => copied >= 1 && p.building && p.done < p.total },
          { what: 'the source restarted during the copy', when: (p, copied) => copied >= 1 && p.done < p.total, restartSource: true },
          { what: `a random moment (${extra + 1} units in)`, when: (p, copied) => copied >= 1 + extra || p.done === p.total },
        ];
        for (const [i, kill] of kills.entries()) {
          const run = spawnPgferry(args);
          // This run's copy, not what the run before left in the state.
          const hit = await waitFor(
            watcher,
            (p) => {
              if (p.snapshots > 0) sawSnapshot = true;
              const copied = run.output().split('"msg":"unit copied"').length - 1;
              // The first run has no earlier state to mistake for its own: it is killed the moment the
              // split table is half copied, not once its log says so (which, as fast as the copy is now,
              // came with 34 of 35 units done, leaving the later runs nothing to resume).
              return (i === 0 || run.output().includes('"phase":"copy and indexes"')) && kill.when(p, copied);
            },
            30_000,
          );
          if (kill.restartSource) {
            await source.restart('fast');
            const code = await Promise.race([run.exited(), sleep(30_000).then(() => 'still running')]);
            if (code === 'still running') run.child.kill('SIGKILL');
          } else {
            run.child.kill('SIGKILL');
          }
          await run.exited();
          // Read after the kill, not between the moment and the kill: a status run takes longer
          // than the rest of this copy, which then had nothing left for the later runs to resume.
          // The snapshots the killed run held are still recorded: status must show them.
          if (i === 0) {
            const status = await runPgferry(['status', '--json', '--target', target.url(db)]);
            statusShowed = (JSON.parse(status.stdout) as { copySnapshot: unknown }).copySnapshot;
          }
          const progress = await copyProgress(watcher);
          moments.push(
            `${kill.what}: ${hit ? 'hit' : 'not reached in 30 s'} (${progress?.done ?? '?'}/${progress?.total ?? '?'} units done after)`,
          );
          logs.push(`--- run ${i + 1} (${kill.what})\n${run.output()}`);
          if (killedMidCopy) {
            assert.match(run.output(), /continuing the interrupted copy: \d+ table\(s\) finished before are kept/, logs.join('\n'));
            resumedMidCopy++;
          }
          killedMidCopy = progress !== undefined && progress.done < progress.total;
        }
      } finally {
        const report = await writer.stop();
        await watcher.end();
        assert.ok(report.committed > 100, `only ${report.committed} transactions committed under the writer`);
      }
      const last = await runPgferry([...args, '--until-caught-up'], {}, 240_000);
      const finalOutput = last.stdout + last.stderr;
      assert.equal(last.code, 0, `${moments.join('\n')}\n${logs.join('\n')}\n--- final run\n${finalOutput}`);
      if (killedMidCopy) {
        assert.match(finalOutput, /continuing the interrupted copy/);
        resumedMidCopy++;
      }
      // Kills that all land after the copy would test nothing of its resumption.
      assert.ok(resumedMidCopy >= 2, `only ${resumedMidCopy} run(s) resumed a copy killed mid-way: ${moments.join('; ')}`);
      process.stdout.write(`# ${from} → ${to}: ${moments.join('; ')}\n`);

      const comparison = await compareTables(source.url(db), target.url(db));
      assert.ok(
        comparison.equal,
        `${moments.join('; ')}: ${JSON.stringify(comparison.tables.filter((t) => !t.equal)).slice(0, 3000)}\n${logs.join('\n').slice(-20000)}`,
      );
      // The split table kept the key ranges finished before the first kill: its ranges stand at several positions.
      const positions = await target.sql(
        db,
        `SELECT count(DISTINCT snapshot_lsn)::int AS n, bool_and(unit LIKE 'key %') AS by_key FROM pgferry.copy_units WHERE table_name = 'public.big'`,
      );
      assert.deepEqual(positions.rows[0], { n: (positions.rows[0] as { n: number }).n, by_key: true });
      assert.ok((positions.rows[0] as { n: number }).n >= 2, 'the split table was copied at one position: no finished range was kept');
      // The copy's snapshots were recorded while held, shown by status, and all let go at the end.
      assert.ok(sawSnapshot, 'no snapshot was recorded as held during the copy');
      assert.ok(statusShowed === null || typeof statusShowed === 'object');
      const held = await target.sql(db, 'SELECT count(*)::int AS n FROM pgferry.copy_snapshots');
      assert.equal((held.rows[0] as { n: number }).n, 0);
      const temporary = await source.sql(db, `SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name LIKE 'pgferry_copy_%'`);
      assert.equal((temporary.rows[0] as { n: number }).n, 0);
      // Indexes and keys were all built, the finished tables' and the redone ones'.
      const indexes = await target.sql(db, `SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = 'public'`);
      const sourceIndexes = await source.sql(db, `SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = 'public'`);
      assert.equal((indexes.rows[0] as { n: number }).n, (sourceIndexes.rows[0] as { n: number }).n);
      await runPgferry(['cleanup', '--source', source.url(db), '--target', target.url(db)]);
    });

    it('defers a table whose columns changed on the source while the copy was interrupted, and copies it once the stream has the change', async () => {
      const { source, target, db, args, watcher } = await migration(clusters, 'resume_ddl');
      try {
        const run = spawnPgferry(args);
        // Killed with the big table half copied: the small ones (copied after it) are not copied yet.
        const hit = await waitFor(watcher, (p) => p.bigHalf, 60_000);
        run.child.kill('SIGKILL');
        await run.exited();
        assert.ok(hit, run.output());
        const waiting = await watcher.query(
          `SELECT count(*)::int AS n FROM pgferry.copy_units WHERE table_name = 'public.customers' AND NOT done`,
        );
        assert.equal((waiting.rows[0] as { n: number }).n, 1, 'customers was copied before the kill: the test needs it still to come');
      } finally {
        await watcher.end();
      }
      // While no sync runs: a column added and filled, a row changed after; then the resume.
      await source.sql(db, `ALTER TABLE customers ADD COLUMN tier text; UPDATE customers SET tier = 'gold' WHERE id % 7 = 0`);
      await source.sql(db, `UPDATE customers SET tier = 'silver', score = score + 1 WHERE id = 3`);
      const last = await runPgferry([...args, '--until-caught-up'], {}, 240_000);
      const output = last.stdout + last.stderr;
      assert.equal(last.code, 0, output);
      assert.match(output, /tables changed on the source during the copy/);
      assert.match(output, /public\.customers/);
      const comparison = await compareTables(source.url(db), target.url(db));
      assert.ok(comparison.equal, JSON.stringify(comparison.tables.filter((t) => !t.equal)).slice(0, 3000));
      const tiers = await target.sql(
        db,
        `SELECT count(*) FILTER (WHERE tier = 'gold')::int AS gold, count(*) FILTER (WHERE tier = 'silver')::int AS silver FROM customers`,
      );
      assert.deepEqual(tiers.rows[0], { gold: 714, silver: 1 });
      await runPgferry(['cleanup', '--source', source.url(db), '--target', target.url(db)]);
    });

    it('defers a table a schema change reaches during the first copy, streams the change, then copies it, under a writer', async () => {
      const { source, target, db, args, watcher } = await migration(clusters, 'first_ddl');
      await watcher.end();
      const writer = startWriter(source.url(db));
      const alter = new pg.Client({ connectionString: source.url(db) });
      await alter.connect();
      const run = spawnPgferry([...args, '--until-caught-up']);
      let code: number;
      try {
        // Once the migration's slot exists, a schema change on a table the copy reaches later.
        const deadline = Date.now() + 60_000;
        while (!run.output().includes('slot created') && Date.now() < deadline) await sleep(5);
        assert.ok(run.output().includes('slot created'), run.output());
        await alter.query('BEGIN');
        await alter.query('ALTER TABLE customers ADD COLUMN tier text');
        await alter.query(`UPDATE customers SET tier = 'gold' WHERE id % 7 = 0`);
        await sleep(300);
        await alter.query('COMMIT');
        code = await Promise.race([run.exited(), sleep(240_000).then(() => -1)]);
      } finally {
        await alter.end();
        const report = await writer.stop();
        assert.ok(report.committed > 50, `only ${report.committed} transactions committed under the writer`);
      }
      const output = run.output();
      assert.equal(code, 0, output);
      assert.match(output, /tables changed on the source during the copy/);
      assert.match(output, /public\.customers/);
      // What the writer committed after the first run stopped.
      const last = await runPgferry([...args, '--until-caught-up'], {}, 240_000);
      assert.equal(last.code, 0, last.stdout + last.stderr);
      const comparison = await compareTables(source.url(db), target.url(db));
      assert.ok(comparison.equal, JSON.stringify(comparison.tables.filter((t) => !t.equal)).slice(0, 3000));
      await runPgferry(['cleanup', '--source', source.url(db), '--target', target.url(db)]);
    });
  });
}
