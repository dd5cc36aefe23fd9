/**
 * `cutover --verify changes`, the default: every row compared before the freeze while sync
 * streams, and inside the freeze only the rows sync applied since (sync records their keys at
 * the cut-over's request). On real servers: a pgbench-shaped load through the cut-over; a row
 * applied wrongly in the last moments before the freeze, which only the check inside the freeze
 * can see; and a cut-over killed half-way, whose request to record must not outlive it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { EVERYTHING, Scope } from '../../src/catalog/index.js';
import { resolveConnection } from '../../src/config/index.js';
import { narrowingIndexName, type CutoverReport } from '../../src/cutover/index.js';
import { imageCountQuery, leadingIndexes, narrowImages } from '../../src/verify/index.js';
import { chooseHashFunction } from '../../src/verify/hash-sql.js';
import { closeLane, openLane } from '../../src/verify/session.js';
import { readTablesToVerify } from '../../src/verify/tables.js';
import {
  compareTables,
  createPgbenchTables,
  migrationUnderWay,
  newSessionCanWrite,
  runPgferry,
  spawnPgferry,
  startLoad,
  stopSync,
  useClusterPair,
  waitUntilStreaming,
  type Cluster,
} from '../harness/index.js';

/** A table without a key or an index: the check inside the freeze counts its changed rows by their images. */
const KEYLESS_NOTES = `CREATE TABLE notes (body text, n int);
       ALTER TABLE notes REPLICA IDENTITY FULL;
       INSERT INTO notes SELECT 'note ' || g, g FROM generate_series(1, 500) g`;

/** The indexes a cut-over made for its check (pgferry_narrow_…) still in the database. */
async function ownIndexes(cluster: Cluster, db: string): Promise<string[]> {
  const { rows } = await cluster.sql(
    db,
    `SELECT relname FROM pg_class WHERE relkind = 'i' AND relname LIKE 'pgferry\\_narrow\\_%' ORDER BY 1`,
  );
  return rows.map((r: { relname: string }) => r.relname);
}

/** A node of EXPLAIN (FORMAT JSON)'s plan, as far as the tests read it. */
interface PlanNode {
  readonly 'Node Type': string;
  readonly 'Relation Name'?: string;
  readonly 'Actual Loops'?: number;
  readonly 'Rows Removed by Join Filter'?: number;
  readonly Plans?: readonly PlanNode[];
}

function planNodes(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(planNodes)];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The recording request and what was recorded for it, as left on the target. */
async function recordingLeft(target: Cluster, db: string): Promise<{ request: string | null; rows: number }> {
  const { rows } = await target.sql(
    db,
    `SELECT (SELECT recording_id FROM pgferry.sync) AS request,
            CASE WHEN to_regclass('pgferry.changed_rows') IS NULL THEN 0 ELSE (SELECT count(*)::int FROM pgferry.changed_rows) END AS rows`,
  );
  return rows[0] as { request: string | null; rows: number };
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number, context: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `${what} did not happen within ${timeoutMs / 1000} s\n${context()}`);
    await sleep(20);
  }
}

describe('cutover --verify changes, 17 → 18', () => {
  const pair = useClusterPair(17, 18);

  it('under a pgbench load, checks inside the freeze only the rows applied since the last look, and leaves the sides equal', async () => {
    const db = await pair.source.createDatabase({ prefix: 'chg' });
    await pair.target.sql('postgres', `CREATE DATABASE ${db}`);
    await createPgbenchTables(pair.source, db, 1);
    await pair.source.sql(db, 'ALTER TABLE pgbench_history REPLICA IDENTITY FULL');
    const args = ['--source', pair.source.url(db), '--target', pair.target.url(db)];
    const sync = spawnPgferry(['sync', ...args]);
    const load = startLoad(pair.source.url(db), { clients: 3, scale: 1, ratePerSecond: 150 });
    try {
      await waitUntilStreaming(pair.target, db, sync);
      await until(
        'the load committing',
        async () => load.committed >= 200,
        60_000,
        () => sync.output(),
      );
      // Pages of 50 recorded rows: the passes read and compare what sync recorded a page at a time.
      const cut = await runPgferry(['cutover', ...args, '--json', '--no-fallback'], { PGFERRY_RECORDED_PAGE_ROWS: '50' }, 180_000);
      assert.equal(cut.code, 0, `${cut.stderr}\n--- sync\n${sync.output()}`);
      const report = JSON.parse(cut.stdout) as CutoverReport;
      await load.stop();
      assert.equal(await sync.exited(), 0, sync.output());

      // The source is frozen at the fence: the sides must hold the same rows now.
      const comparison = await compareTables(pair.source.url(db), pair.target.url(db));
      assert.ok(comparison.equal, JSON.stringify(comparison.tables.filter((t) => !t.equal)));

      assert.equal(report.checked.level, 'changes');
      const before = report.checked.beforeFreeze;
      const inside = report.checked.insideFreeze;
      assert.ok(before && inside, JSON.stringify(report.checked));
      assert.equal(before.verify.identical, true);
      assert.equal(before.verify.tables, 4);
      assert.ok(before.passes.length >= 1 && before.passes[0]!.keys > 50, JSON.stringify(before.passes));
      assert.ok(before.passes[0]!.pages > 1, JSON.stringify(before.passes));
      assert.ok(inside.pages >= 1, JSON.stringify(inside));
      assert.equal(report.verified?.mode, 'full');
      // The history has no key: its rows are compared by their images; no table is read whole.
      for (const table of inside.tables) assert.match(table, /^public\.pgbench_(accounts|tellers|branches|history)$/);
      assert.deepEqual(inside.wholeTables, []);
      assert.deepEqual(
        report.steps.map((s) => s.step).filter((s) => ['record changes', 'verify ahead', 'changes ahead', 'freeze', 'verify'].includes(s)),
        ['record changes', 'verify ahead', 'changes ahead', 'freeze', 'verify'],
      );
      // The history has no index: the cut-over indexed it on both sides for its check, through
      // which its changed rows were counted inside the freeze, and dropped them after.
      const history = inside.keyless.find((k) => k.table === 'public.pgbench_history');
      assert.ok(history && history.images > 0, JSON.stringify(inside.keyless));
      assert.match(history.index.source ?? '', /^pgferry_narrow_/, JSON.stringify(history));
      assert.match(history.index.target ?? '', /^pgferry_narrow_/, JSON.stringify(history));
      assert.deepEqual(await ownIndexes(pair.source, db), []);
      assert.deepEqual(await ownIndexes(pair.target, db), []);
      // Recording ended with the cut-over, and what it recorded is gone.
      assert.deepEqual(await recordingLeft(pair.target, db), { request: null, rows: 0 });
    } finally {
      await load.stop();
      await stopSync(sync);
    }
  });

  it('a row applied wrongly just before the freeze is caught inside it: the cut-over fails, lifts the freeze, and sync runs on', async () => {
    // Row 7's payload is stored out of line, so an update that leaves it alone streams it as
    // "unchanged" and the target keeps what it has.
    const { db, sync, args } = await migrationUnderWay(
      pair.source,
      pair.target,
      'chgfault',
      `ALTER TABLE items ALTER COLUMN payload SET STORAGE EXTERNAL;
       INSERT INTO items (payload) SELECT md5(g::text) FROM generate_series(1, 1000) g;
       UPDATE items SET payload = repeat('a', 5000) WHERE id = 7`,
    );
    // A transaction open since before the freeze: the drain lets it commit, so its change is the
    // last the source makes, applied after everything before the freeze was compared.
    const late = new pg.Client({ connectionString: pair.source.url(db), application_name: 'last-writer' });
    late.on('error', () => undefined);
    await late.connect();
    try {
      await late.query(`BEGIN; UPDATE items SET counter = counter + 1 WHERE id = 7`);
      const cut = spawnPgferry(['cutover', ...args, '--no-fallback', '--drain-timeout', '60']);
      await until(
        'the freeze',
        async () => !(await newSessionCanWrite(pair.source, db, 'items', 'payload')),
        60_000,
        () => cut.output(),
      );
      // The fault: the target's copy of the row is damaged by hand; the stream's update then
      // touches the row but keeps the damaged payload. The counts stay equal: only a check of
      // the row's content after the stream applied it can see it.
      await pair.target.sql(db, `UPDATE items SET payload = repeat('b', 5000) WHERE id = 7`);
      await late.query('COMMIT');
      const code = await cut.exited();
      assert.equal(code, 1, cut.output());
      assert.match(
        cut.output(),
        /cut-over failed at the verify step: the target differs from the source at the fence, in rows sync applied: public\.items \(different: changed \{"id":"7"\} \(payload\)\)/,
      );
      assert.match(cut.output(), /the source is writable again and sync keeps running/);
      assert.equal((await pair.target.sql(db, `SELECT counter FROM items WHERE id = 7`)).rows[0].counter, 1, 'the update was applied');
      assert.equal(await newSessionCanWrite(pair.source, db, 'items', 'payload'), true);
      assert.equal((await pair.target.sql(db, `SELECT phase FROM pgferry.sync`)).rows[0].phase, 'streaming');
      assert.deepEqual(await recordingLeft(pair.target, db), { request: null, rows: 0 });
      // Nor does sync go on notifying each batch for a cut-over that has ended.
      assert.equal(
        (await pair.target.sql(db, `SELECT progress_wanted_until <= clock_timestamp() AS ended FROM pgferry.sync`)).rows[0].ended,
        true,
      );
    } finally {
      await late.end().catch(() => undefined);
      await stopSync(sync);
    }
  });

  it('in a table without a key, a row the stream failed to update just before the freeze is caught by its images inside it', async () => {
    const { db, sync, args } = await migrationUnderWay(
      pair.source,
      pair.target,
      'chgkeyless',
      `${KEYLESS_NOTES};
       CREATE TABLE stamped (body text, at timestamptz);
       ALTER TABLE stamped REPLICA IDENTITY FULL;
       INSERT INTO stamped SELECT 'stamp ' || g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' FROM generate_series(1, 5000) g;
       CREATE INDEX stamped_at ON stamped (at);
       CREATE TABLE pairs (a int, b text, v int, PRIMARY KEY (a, b));
       INSERT INTO pairs SELECT g % 10, 'b' || g, 0 FROM generate_series(1, 100) g`,
    );
    const late = new pg.Client({ connectionString: pair.source.url(db), application_name: 'last-writer' });
    late.on('error', () => undefined);
    await late.connect();
    try {
      // A composite key changed alongside (compared by its two columns, and equal).
      await late.query(
        `BEGIN; UPDATE notes SET body = 'rewritten' WHERE n = 9; UPDATE pairs SET v = v + 1 WHERE a = 1;
         UPDATE stamped SET body = 'restamped' WHERE at = timestamptz '2024-01-01 00:00:09+00'`,
      );
      const cut = spawnPgferry(['cutover', ...args, '--no-fallback', '--drain-timeout', '60']);
      await until(
        'the freeze',
        async () => !(await newSessionCanWrite(pair.source, db, 'items', 'payload')),
        60_000,
        () => cut.output(),
      );
      // The fault: the target's row is changed by hand, so the stream's update (which finds a
      // row of this table by its whole old image) finds none. One row on each side still.
      // The same in a keyless table with an index (on a column hashed by its text), through which it is counted.
      await pair.target.sql(
        db,
        `UPDATE notes SET body = 'damaged' WHERE n = 9;
         UPDATE stamped SET body = 'damaged' WHERE at = timestamptz '2024-01-01 00:00:09+00'`,
      );
      await late.query('COMMIT');
      assert.equal(await cut.exited(), 1, cut.output());
      assert.match(
        cut.output(),
        /cut-over failed at the verify step: the target differs from the source at the fence, in rows sync applied: public\.notes \(different: missing \{"body":"rewritten","n":"9"\}\), public\.stamped \(different: missing \{"body":"restamped","at":"2024-01-01 [0-9:+-]+"\}\)/,
      );
      assert.match(cut.output(), /the source is writable again and sync keeps running/);
      // notes has no index: the cut-over made one on each side for its check, and a failed cut-over drops them too.
      assert.match(cut.output(), /indexing public\.notes/);
      assert.deepEqual(await ownIndexes(pair.source, db), []);
      assert.deepEqual(await ownIndexes(pair.target, db), []);
    } finally {
      await late.end().catch(() => undefined);
      await stopSync(sync);
    }
  });

  it("takes over the check's index a killed cut-over left and drops it when it ends; cleanup drops any left", async () => {
    const { db, sync, args } = await migrationUnderWay(pair.source, pair.target, 'chgleft', KEYLESS_NOTES);
    // As a cut-over killed after its index builds leaves them: on both sides, valid, under the name a cut-over gives them.
    const leftover = narrowingIndexName('public.notes');
    try {
      // Made with the capture suspended, as a cut-over makes them: sync does not carry it.
      for (const side of [pair.source, pair.target])
        await side.sql(db, `SELECT set_config('pgferry.capturing', 'on', false); CREATE INDEX ${leftover} ON notes (n)`);
      await pair.source.sql(db, `UPDATE notes SET body = 'rewritten' WHERE n < 20`);
      const cut = await runPgferry(['cutover', ...args, '--json', '--no-fallback'], {}, 120_000);
      assert.equal(cut.code, 0, `${cut.stderr}\n--- sync\n${sync.output()}`);
      // Its own name: found valid and kept for the check, then dropped with the cut-over's own.
      assert.match(cut.stderr, /indexing public\.notes/);
      assert.doesNotMatch(cut.stderr, /could not index/);
      assert.deepEqual(await ownIndexes(pair.source, db), []);
      assert.deepEqual(await ownIndexes(pair.target, db), []);
    } finally {
      await stopSync(sync);
    }
    // The source is frozen now: written in a transaction opened READ WRITE, as pgferry's own sessions write.
    for (const side of [pair.source, pair.target])
      await side.sql(db, `BEGIN READ WRITE; SET LOCAL pgferry.capturing = 'on'; CREATE INDEX pgferry_narrow_left ON notes (n); COMMIT`);
    const cleanup = await runPgferry(['cleanup', ...args]);
    assert.equal(cleanup.code, 0, cleanup.stderr);
    assert.match(cleanup.stdout + cleanup.stderr, /source: dropped index public\.pgferry_narrow_left/);
    assert.deepEqual(await ownIndexes(pair.source, db), []);
    assert.deepEqual(await ownIndexes(pair.target, db), []);
  });

  it('with --no-check-indexes, makes no index: a keyless table is read through inside the freeze', async () => {
    const { db, sync, args } = await migrationUnderWay(pair.source, pair.target, 'chgnoidx', KEYLESS_NOTES);
    try {
      const cut = await runPgferry(['cutover', ...args, '--json', '--no-fallback', '--no-check-indexes'], {}, 120_000);
      assert.equal(cut.code, 0, `${cut.stderr}\n--- sync\n${sync.output()}`);
      const report = JSON.parse(cut.stdout) as CutoverReport;
      assert.ok(!report.steps.some((s) => s.step === 'index keyless tables'), JSON.stringify(report.steps));
      assert.doesNotMatch(cut.stderr, /indexing public\.notes/);
      assert.deepEqual(await ownIndexes(pair.source, db), []);
      assert.deepEqual(await ownIndexes(pair.target, db), []);
    } finally {
      await stopSync(sync);
    }
  });

  it('a row applied wrongly in a later page of the recorded rows is caught: every page is compared', async () => {
    // As above: the payloads are stored out of line, so an update of the counter streams them as
    // "unchanged" and the target keeps what it has.
    const { db, sync, args } = await migrationUnderWay(
      pair.source,
      pair.target,
      'chgpages',
      `ALTER TABLE items ALTER COLUMN payload SET STORAGE EXTERNAL;
       INSERT INTO items (payload) SELECT repeat(md5(g::text), 160) FROM generate_series(1, 40) g`,
    );
    const late = new pg.Client({ connectionString: pair.source.url(db), application_name: 'last-writer' });
    late.on('error', () => undefined);
    await late.connect();
    try {
      // 40 rows changed in order by the last transaction before the freeze: pages of 10, the
      // damaged row last.
      await late.query('BEGIN');
      for (let id = 1; id <= 40; id++) await late.query(`UPDATE items SET counter = counter + 1 WHERE id = ${id}`);
      const cut = spawnPgferry(['cutover', ...args, '--no-fallback', '--drain-timeout', '60'], { PGFERRY_RECORDED_PAGE_ROWS: '10' });
      await until(
        'the freeze',
        async () => !(await newSessionCanWrite(pair.source, db, 'items', 'payload')),
        60_000,
        () => cut.output(),
      );
      await pair.target.sql(db, `UPDATE items SET payload = 'damaged' WHERE id = 40`);
      await late.query('COMMIT');
      assert.equal(await cut.exited(), 1, cut.output());
      assert.match(
        cut.output(),
        /the target differs from the source at the fence, in rows sync applied: public\.items \(different: changed \{"id":"40"\} \(payload\)\)/,
      );
      assert.equal((await pair.target.sql(db, `SELECT sum(counter)::int AS n FROM items`)).rows[0].n, 40, 'the updates were applied');
    } finally {
      await late.end().catch(() => undefined);
      await stopSync(sync);
    }
  });

  it('a changed row too wide for an index entry (a keyless row of 6 kB) is recorded and compared: the cut-over goes through', async () => {
    const { db, sync, args } = await migrationUnderWay(
      pair.source,
      pair.target,
      'chgwide',
      `CREATE TABLE wide (body text, n int);
       ALTER TABLE wide REPLICA IDENTITY FULL;
       ALTER TABLE wide ALTER COLUMN body SET STORAGE EXTERNAL;
       INSERT INTO wide SELECT (SELECT string_agg(md5(g::text || '.' || i::text), '') FROM generate_series(1, 200) i), g FROM generate_series(1, 3) g`,
    );
    const late = new pg.Client({ connectionString: pair.source.url(db), application_name: 'last-writer' });
    late.on('error', () => undefined);
    await late.connect();
    try {
      await late.query(`BEGIN; UPDATE wide SET n = n + 10 WHERE n = 2`);
      const cut = spawnPgferry(['cutover', ...args, '--no-fallback', '--drain-timeout', '60', '--json']);
      await until(
        'the freeze',
        async () => !(await newSessionCanWrite(pair.source, db, 'items', 'payload')),
        60_000,
        () => cut.output(),
      );
      await late.query('COMMIT');
      assert.equal(await cut.exited(), 0, `${cut.output()}\n--- sync\n${sync.output()}`);
      assert.deepEqual((await pair.target.sql(db, `SELECT n, length(body) AS len FROM wide ORDER BY n`)).rows, [
        { n: 1, len: 6400 },
        { n: 3, len: 6400 },
        { n: 12, len: 6400 },
      ]);
    } finally {
      await late.end().catch(() => undefined);
      await stopSync(sync);
    }
  });

  /** The same tables made on both sides of a database, and a lane of verify's sessions on it with the tables read. */
  async function bothSidesWith(db: string, schema: string) {
    for (const side of [pair.source, pair.target]) await side.sql(db, schema);
    const lane = await openLane(
      await resolveConnection('source', pair.source.url(db)),
      await resolveConnection('target', pair.target.url(db)),
    );
    try {
      return { lane, tables: (await readTablesToVerify(lane.source, new Scope(EVERYTHING))).tables };
    } catch (error) {
      await closeLane(lane);
      throw error;
    }
  }

  it("counts a keyless table's changed rows through an index where either side has one, and reads one without an index through", async () => {
    const db = await pair.source.createDatabase({ prefix: 'chgplan' });
    await pair.target.sql('postgres', `CREATE DATABASE ${db}`);
    const schema = `CREATE TABLE stamped (body text, at timestamptz, amount numeric);
       INSERT INTO stamped SELECT 'row ' || g, timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', g FROM generate_series(1, 100000) g;
       CREATE INDEX stamped_at ON stamped (at);
       CREATE TABLE plain AS SELECT * FROM stamped;
       ANALYZE stamped, plain`;
    const { lane, tables } = await bothSidesWith(db, schema);
    try {
      const [onSource, onTarget, hash] = await Promise.all([
        leadingIndexes(lane.source, tables),
        leadingIndexes(lane.target, tables),
        chooseHashFunction(lane),
      ]);
      const images = [
        ['row 9', '2024-01-01 00:00:09+00', '9'],
        ['rewritten', '2024-01-01 00:00:09+00', '9'],
      ];
      for (const name of ['public.stamped', 'public.plain']) {
        const table = tables.find((t) => t.name === name)!;
        const plan = { kind: 'images' as const, table, columns: [0, 1, 2], images };
        const narrowing = narrowImages(plan, { source: onSource.get(name), target: onTarget.get(name) }, { source: true, target: true });
        const used = { source: narrowing.source.index, target: narrowing.target.index };
        for (const side of [lane.source, lane.target]) {
          const [text, values] = imageCountQuery(table, plan.columns, hash, images, narrowing[side.side].columns);
          assert.deepEqual(
            (await side.arrays('counting', text, values)).map((r) => Number(r[1])),
            [1, 0],
          );
          const explained = String((await side.arrays('explaining', `EXPLAIN (FORMAT JSON) ${text}`, values))[0]![0]);
          if (name === 'public.stamped') {
            assert.deepEqual(used, { source: 'stamped_at', target: 'stamped_at' });
            assert.match(explained, /"Index Name": "stamped_at"/, explained);
            assert.doesNotMatch(explained, /"Seq Scan"/, explained);
          } else {
            assert.deepEqual(used, { source: null, target: null });
            assert.match(explained, /"Node Type": "Seq Scan"/, explained);
          }
        }
      }
    } finally {
      await closeLane(lane);
    }
  });

  it('counts the changed rows of a keyless table the planner has no statistics for in one pass over it, however many images', async () => {
    // pgbench_history's shape, grown since its last ANALYZE: planned as a few rows, a join of the
    // images' values against it repeated the scan per value (seconds inside the freeze).
    const db = await pair.source.createDatabase({ prefix: 'chgstats' });
    await pair.target.sql('postgres', `CREATE DATABASE ${db}`);
    const schema = `CREATE TABLE history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22)) WITH (autovacuum_enabled = off);
       INSERT INTO history SELECT 1 + g % 10, 1, 1 + (g::bigint * 7919) % 100000, g % 5000 - 2500, timestamp '2024-01-01' + g * interval '1 ms', NULL
         FROM generate_series(1, 30000) g`;
    const { lane, tables } = await bothSidesWith(db, schema);
    try {
      const hash = await chooseHashFunction(lane);
      const table = tables.find((t) => t.name === 'public.history')!;
      const images = (
        await pair.source.sql(
          db,
          `SELECT ARRAY[tid::text, bid::text, aid::text, delta::text, mtime::text, filler::text] AS image FROM history ORDER BY aid, mtime LIMIT 3000`,
        )
      ).rows.map((r: { image: Array<string | null> }) => r.image);
      const plan = { kind: 'images' as const, table, columns: [0, 1, 2, 3, 4, 5], images };
      for (const hashedLists of [true, false]) {
        const narrowing = narrowImages(plan, { source: undefined, target: undefined }, { source: hashedLists, target: hashedLists });
        for (const side of [lane.source, lane.target]) {
          const [text, values] = imageCountQuery(table, plan.columns, hash, images, narrowing[side.side].columns);
          const counted = (await side.arrays('counting', text, values)).map((r) => Number(r[1]));
          assert.equal(counted.length, 3000);
          assert.ok(
            counted.every((n) => n === 1),
            `every image is there once on the ${side.side}`,
          );
          const explained = JSON.parse(
            String((await side.arrays('explaining', `EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values))[0]![0]),
          ) as [{ Plan: PlanNode }];
          const nodes = planNodes(explained[0].Plan);
          const scans = nodes.filter((n) => n['Relation Name'] === 'history');
          assert.equal(scans.length, 1, JSON.stringify(explained));
          assert.equal(scans[0]!['Actual Loops'], 1, `the table is read once on the ${side.side}: ${JSON.stringify(explained)}`);
          const removed = nodes.reduce((sum, n) => sum + (n['Rows Removed by Join Filter'] ?? 0), 0);
          assert.equal(removed, 0, `no join compares the table's rows with the images' values one by one: ${JSON.stringify(explained)}`);
        }
      }
    } finally {
      await closeLane(lane);
    }
  });

  it('a cut-over killed while it compares leaves no recording behind: sync drops the request once its lease runs out', async () => {
    const { db, sync, args } = await migrationUnderWay(
      pair.source,
      pair.target,
      'chgkill',
      `INSERT INTO items (payload) SELECT md5(g::text) FROM generate_series(1, 100) g`,
    );
    // The comparison before the freeze waits on this lock, so the cut-over is still running when killed.
    const blocker = new pg.Client({ connectionString: pair.target.url(db) });
    await blocker.connect();
    try {
      await blocker.query(`BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE`);
      const cut = spawnPgferry(['cutover', ...args, '--no-fallback']);
      await until(
        'sync recording',
        async () =>
          (
            await pair.target
              .sql(db, `SELECT recording_from_lsn IS NOT NULL AS on FROM pgferry.sync`)
              .catch(() => ({ rows: [{ on: false }] }))
          ).rows[0].on === true,
        60_000,
        () => `${cut.output()}\n--- sync\n${sync.output()}`,
      );
      cut.child.kill('SIGKILL');
      await cut.exited();
      await blocker.query('ROLLBACK');
      // Sync records while the lease lasts.
      await pair.source.sql(db, `UPDATE items SET counter = counter + 1 WHERE id = 3`);
      await until(
        'the change recorded',
        async () => (await recordingLeft(pair.target, db)).rows > 0,
        30_000,
        () => sync.output(),
      );
      // Then drops it: no request, nothing recorded, and nothing recorded of what follows.
      // Sync logs the drop once it has committed: its line may reach this process's pipe after
      // the drop is visible on the target, so both are waited for.
      await until(
        'the request dropped, and sync saying so',
        async () =>
          (await recordingLeft(pair.target, db)).request === null &&
          /request to record the rows applied lapsed \(the cut-over is gone\): recording stopped/.test(sync.output()),
        60_000,
        () => sync.output(),
      );
      await pair.source.sql(db, `UPDATE items SET counter = counter + 1 WHERE id = 4`);
      await until(
        'the update applied',
        async () => (await pair.target.sql(db, `SELECT counter FROM items WHERE id = 4`)).rows[0].counter === 1,
        30_000,
        () => sync.output(),
      );
      assert.deepEqual(await recordingLeft(pair.target, db), { request: null, rows: 0 });
      // Nothing was frozen, and the next cut-over goes through.
      assert.equal(await newSessionCanWrite(pair.source, db, 'items', 'payload'), true);
      const again = await runPgferry(['cutover', ...args, '--no-fallback', '--json'], {}, 120_000);
      assert.equal(again.code, 0, again.stderr);
      assert.equal((JSON.parse(again.stdout) as CutoverReport).checked.insideFreeze !== null, true);
    } finally {
      await blocker.end().catch(() => undefined);
      await stopSync(sync);
    }
  });
});
