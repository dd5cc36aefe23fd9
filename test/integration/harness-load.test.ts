/**
 * The harness's write load and content comparison, on real servers: the pgbench-shaped load
 * commits what it reports and nothing else, keeps to its rate, stops cleanly and ends quietly
 * when its server goes away; compareTables sees through column order, generated and dropped
 * columns, encodings and output settings, and catches a changed row and a duplicated one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LOAD_APPLICATION_NAME, compareTables, createPgbenchTables, startClusters, startLoad, type Cluster } from '../harness/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(20);
  }
}

async function count(cluster: Cluster, db: string, table: string): Promise<number> {
  return Number((await cluster.sql(db, `SELECT count(*) AS n FROM ${table}`)).rows[0].n);
}

let pg17: Cluster;
let pg18: Cluster;
/** A server of its own for the test that shuts it down under the load. */
let doomed: Cluster;

before(async () => {
  [pg17, pg18, doomed] = await startClusters([{ version: 17 }, { version: 18 }, { version: 17 }]);
});

after(async () => {
  await Promise.all([pg17, pg18, doomed].map((c) => c?.stop()));
});

describe('pgbench-shaped load', () => {
  it('makes the tables pgbench -i makes', async () => {
    const db = await pg17.createDatabase({ prefix: 'init' });
    await createPgbenchTables(pg17, db, 2);
    assert.equal(await count(pg17, db, 'pgbench_branches'), 2);
    assert.equal(await count(pg17, db, 'pgbench_tellers'), 20);
    assert.equal(await count(pg17, db, 'pgbench_accounts'), 200_000);
    assert.equal(await count(pg17, db, 'pgbench_history'), 0);
    const { rows } = await pg17.sql(
      db,
      `SELECT c.relname, EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p') AS keyed
         FROM pg_class c WHERE c.relname LIKE 'pgbench%' AND c.relkind = 'r' ORDER BY 1`,
    );
    assert.deepEqual(
      rows.map((r) => `${r.relname}:${r.keyed}`),
      ['pgbench_accounts:true', 'pgbench_branches:true', 'pgbench_history:false', 'pgbench_tellers:true'],
    );
  });

  it('commits at the rate asked, each commit one history row, and stops once', async () => {
    const db = await pg17.createDatabase({ prefix: 'load' });
    await createPgbenchTables(pg17, db, 1);
    const rate = 150;
    const load = startLoad(pg17.url(db), { clients: 3, scale: 1, ratePerSecond: rate });
    await until(() => load.committed > 0, 'the load commits');
    await sleep(1000);
    const stopping = load.stop();
    assert.equal(load.stop(), stopping, 'a second stop() is the same stop');
    const report = await stopping;
    assert.deepEqual(report.errors, []);
    assert.equal(report.errorCount, 0);
    assert.deepEqual(report.disconnects, []);
    assert.equal(report.inDoubt, 0);
    assert.ok(report.committed > 0);
    assert.equal(load.committed, report.committed);
    // Not a timing assertion: the limiter hands out one start every 1/rate s from the start,
    // so no run can ever commit more than this, however slow or fast the machine.
    assert.ok(report.committed <= Math.floor(report.seconds * rate) + 1, `${report.committed} commits in ${report.seconds} s at ${rate}/s`);
    // stop() waited for the transactions in flight: nothing commits after it.
    assert.equal(await count(pg17, db, 'pgbench_history'), report.committed);
    const sessions = await pg17.sql('postgres', `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1`, [
      LOAD_APPLICATION_NAME,
    ]);
    assert.equal(sessions.rows[0].n, 0, 'every loader session is closed');
    // pgbench's invariant: every delta went to one account, one teller and one branch.
    const sums = await pg17.sql(
      db,
      `SELECT (SELECT sum(delta) FROM pgbench_history)::text AS history, (SELECT sum(abalance) FROM pgbench_accounts)::text AS accounts,
              (SELECT sum(tbalance) FROM pgbench_tellers)::text AS tellers, (SELECT sum(bbalance) FROM pgbench_branches)::text AS branches`,
    );
    const { history, accounts, tellers, branches } = sums.rows[0];
    assert.deepEqual([accounts, tellers, branches], [history, history, history]);
    assert.deepEqual(await load.stop(), report);
  });

  it('runs extra work inside each transaction and records its errors without stopping', async () => {
    const db = await pg17.createDatabase({ prefix: 'extra' });
    await createPgbenchTables(pg17, db, 1);
    await pg17.sql(db, 'CREATE TABLE side (aid int, client int)');
    let calls = 0;
    const load = startLoad(pg17.url(db), {
      clients: 2,
      scale: 1,
      extra: async (client, tx) => {
        calls += 1;
        if (calls === 5) await client.query('SELECT 1/0');
        await client.query('INSERT INTO side VALUES ($1, $2)', [tx.aid, tx.client]);
      },
    });
    await until(() => load.committed >= 20, 'the load commits 20 transactions');
    const report = await load.stop();
    assert.equal(report.errors.length, 1);
    assert.match(report.errors[0] ?? '', /^22012: division by zero/);
    assert.equal(await count(pg17, db, 'side'), report.committed, 'the failed transaction was rolled back whole');
    assert.equal(await count(pg17, db, 'pgbench_history'), report.committed);
  });

  it('ends quietly when its sessions are terminated', async () => {
    const db = await pg17.createDatabase({ prefix: 'terminated' });
    await createPgbenchTables(pg17, db, 1);
    const load = startLoad(pg17.url(db), { clients: 2, scale: 1 });
    await until(() => load.committed >= 10, 'the load commits');
    await pg17.sql(db, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [LOAD_APPLICATION_NAME]);
    const report = await load.stop();
    assert.deepEqual(report.errors, []);
    assert.equal(report.disconnects.length, 2, report.disconnects.join('\n'));
    assert.match(report.disconnects.join('\n'), /57P01/);
    const history = await count(pg17, db, 'pgbench_history');
    assert.ok(
      history >= report.committed && history <= report.committed + report.inDoubt,
      `${history} history rows, ${report.committed} commits, ${report.inDoubt} in doubt`,
    );
  });

  it('ends quietly when its server shuts down', async () => {
    const db = await doomed.createDatabase({ prefix: 'doomed' });
    await createPgbenchTables(doomed, db, 1);
    const load = startLoad(doomed.url(db), { clients: 3, scale: 1 });
    // Every session connected first: one still connecting when the server stops never had a
    // server to lose, and the load reports that as an error (a server that was never there).
    await until(() => load.committed >= 10 && load.connected === 3, 'the load commits on all three sessions');
    await doomed.stop();
    const report = await load.stop();
    assert.deepEqual(report.errors, []);
    assert.equal(report.disconnects.length, 3, report.disconnects.join('\n'));
  });
});

describe('compareTables', () => {
  let source: string;
  let target: string;
  const sourceUrl = () => pg17.url(source);
  const targetUrl = () => pg18.url(target);

  before(async () => {
    source = await pg17.createDatabase({ prefix: 'cmp_src' });
    // Another encoding, another time zone and date style: none of it may show in the comparison.
    target = await pg18.createDatabase({ prefix: 'cmp_dst', encoding: 'LATIN1' });
    await pg18.sql('postgres', `ALTER DATABASE ${target} SET timezone = 'America/New_York'`);
    await pg18.sql('postgres', `ALTER DATABASE ${target} SET datestyle = 'SQL, DMY'`);
    await pg18.sql('postgres', `ALTER DATABASE ${target} SET extra_float_digits = 0`);

    await pg17.sql(
      source,
      `CREATE SCHEMA app;
       CREATE TABLE public.items (id int PRIMARY KEY, name text, price numeric(10,2), created timestamptz, tags text[], doc jsonb,
                                  raw bytea, ratio float8, span interval, doubled numeric GENERATED ALWAYS AS (price * 2) STORED);
       CREATE TABLE app.events (kind text, at date, payload text);
       CREATE TABLE app.readings (city int, day date, v float8) PARTITION BY RANGE (day);
       CREATE TABLE app.readings_2024 PARTITION OF app.readings FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
       CREATE TABLE app.readings_2025 PARTITION OF app.readings FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');`,
    );
    // Columns in another order, the generated one elsewhere, a dropped column, a partition
    // made on its own with its own column order and attached.
    await pg18.sql(
      target,
      `CREATE SCHEMA app;
       CREATE TABLE public.items (doubled numeric GENERATED ALWAYS AS (price * 2) STORED, gone int, ratio float8, id int PRIMARY KEY,
                                  span interval, doc jsonb, raw bytea, name text, tags text[], created timestamptz, price numeric(10,2));
       ALTER TABLE public.items DROP COLUMN gone;
       CREATE TABLE app.events (payload text, kind text, at date);
       CREATE TABLE app.readings (day date, v float8, city int) PARTITION BY RANGE (day);
       CREATE TABLE app.readings_2024 PARTITION OF app.readings FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
       CREATE TABLE app.readings_2025 (v float8, city int, day date);
       ALTER TABLE app.readings ATTACH PARTITION app.readings_2025 FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');`,
    );
    const fill = `
      INSERT INTO public.items (id, name, price, created, tags, doc, raw, ratio, span)
        SELECT g, 'item ' || g || ' café', g * 1.25, timestamptz '2024-03-01 12:00:00+00' + g * interval '7 hours',
               ARRAY['t' || g % 3, 'u'], jsonb_build_object('g', g, 'odd', g % 2 = 1), decode(md5(g::text), 'hex'),
               1.0 / g, g * interval '1 day 3 minutes'
          FROM generate_series(1, 200) g;
      INSERT INTO app.events (kind, at, payload) SELECT 'k' || g % 4, date '2024-01-01' + g, 'payload ' || g FROM generate_series(1, 50) g;
      INSERT INTO app.events (kind, at, payload) VALUES ('twice', '2024-05-05', 'same'), ('twice', '2024-05-05', 'same');
      INSERT INTO app.readings (city, day, v) SELECT g % 7, date '2024-06-01' + g, sqrt(g) FROM generate_series(1, 400) g;`;
    await pg17.sql(source, fill);
    await pg18.sql(target, fill);
  });

  it('finds equal contents equal, whatever the column order, generated columns and settings', async () => {
    const comparison = await compareTables(sourceUrl(), targetUrl());
    assert.ok(comparison.equal, JSON.stringify(comparison, null, 1));
    assert.deepEqual(
      comparison.tables.map((t) => `${t.table} ${t.sourceRows} ${t.targetRows}`),
      ['app.events 52 52', 'app.readings_2024 213 213', 'app.readings_2025 187 187', 'public.items 200 200'],
      'leaf tables of every user schema, never the partitioned parent',
    );
  });

  it('names the table and the row when one row differs', async () => {
    await pg18.sql(target, `UPDATE public.items SET name = 'changed' WHERE id = 7`);
    try {
      const comparison = await compareTables(sourceUrl(), targetUrl());
      assert.equal(comparison.equal, false);
      const unequal = comparison.tables.filter((t) => !t.equal);
      assert.deepEqual(
        unequal.map((t) => t.table),
        ['public.items'],
      );
      const [items] = unequal;
      assert.equal(items?.sourceRows, 200);
      assert.equal(items?.targetRows, 200);
      assert.equal(items?.onlyOnSource.length, 1);
      assert.equal(items?.onlyOnTarget.length, 1);
      assert.match(items?.onlyOnSource[0] ?? '', /^\(7,"item 7 café",8\.75,"2024-03-03 13:00:00\+00",/);
      assert.match(items?.onlyOnTarget[0] ?? '', /^\(7,changed,8\.75,/);
    } finally {
      await pg18.sql(target, `UPDATE public.items SET name = 'item 7 café' WHERE id = 7`);
    }
    assert.ok((await compareTables(sourceUrl(), targetUrl())).equal, 'equal again once the row is put back');
  });

  it('compares rows as a multiset: a duplicate is a difference, even with the counts equal', async () => {
    await pg18.sql(target, `INSERT INTO app.events (kind, at, payload) VALUES ('k1', '2024-01-02', 'payload 1')`);
    let comparison = await compareTables(sourceUrl(), targetUrl());
    let events = comparison.tables.find((t) => t.table === 'app.events');
    assert.equal(comparison.equal, false);
    assert.deepEqual(
      {
        equal: events?.equal,
        sourceRows: events?.sourceRows,
        targetRows: events?.targetRows,
        onlyOnSource: events?.onlyOnSource,
        onlyOnTarget: events?.onlyOnTarget,
      },
      { equal: false, sourceRows: 52, targetRows: 53, onlyOnSource: [], onlyOnTarget: ['(k1,2024-01-02,"payload 1")'] },
    );

    // Same count, same set of distinct rows on each side as before, different multiplicities.
    await pg18.sql(target, `DELETE FROM app.events WHERE ctid = (SELECT min(ctid) FROM app.events WHERE kind = 'twice')`);
    comparison = await compareTables(sourceUrl(), targetUrl());
    events = comparison.tables.find((t) => t.table === 'app.events');
    assert.deepEqual(
      {
        equal: events?.equal,
        sourceRows: events?.sourceRows,
        targetRows: events?.targetRows,
        onlyOnSource: events?.onlyOnSource,
        onlyOnTarget: events?.onlyOnTarget,
      },
      {
        equal: false,
        sourceRows: 52,
        targetRows: 52,
        onlyOnSource: ['(twice,2024-05-05,same)'],
        onlyOnTarget: ['(k1,2024-01-02,"payload 1")'],
      },
    );
    await pg18.sql(
      target,
      `DELETE FROM app.events WHERE ctid = (SELECT max(ctid) FROM app.events WHERE payload = 'payload 1');
       INSERT INTO app.events (kind, at, payload) VALUES ('twice', '2024-05-05', 'same');`,
    );
    assert.ok((await compareTables(sourceUrl(), targetUrl())).equal);
  });

  it('compares only the tables asked for, a partitioned one as its leaves, and reports missing ones', async () => {
    await pg17.sql(source, `CREATE TABLE app.only_here (id int); INSERT INTO app.only_here VALUES (1), (2)`);
    try {
      const comparison = await compareTables(sourceUrl(), targetUrl(), ['app.readings', 'items', 'app.only_here', 'app.nowhere']);
      assert.equal(comparison.equal, false);
      assert.deepEqual(
        comparison.tables.map((t) => `${t.table} ${t.equal} ${t.sourceRows} ${t.targetRows} ${t.problem ?? ''}`.trim()),
        [
          'app.only_here false 2 null missing on the target',
          'app.readings_2024 true 213 213',
          'app.readings_2025 true 187 187',
          'public.items true 200 200',
          'app.nowhere false null null no table by that name on either side',
        ],
      );
    } finally {
      await pg17.sql(source, 'DROP TABLE app.only_here');
    }
  });
});
