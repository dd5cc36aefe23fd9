/**
 * Schema changes during sync (issue 16, DESIGN decision 10): the source's event trigger puts
 * each DDL command into the stream and sync replays it on the target at its place among the
 * rows. One sync streams while a writer keeps committing; each scenario changes the source's
 * schema (with rows before and after), then the target must hold the same schema (by the
 * independent fingerprint of schema-fingerprint.ts) and the same rows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import {
  compareTables,
  runPgferry,
  spawnPgferry,
  startClusters,
  stopSync,
  waitUntilStreaming,
  type Cluster,
  type PgferryProcess,
} from '../harness/index.js';
import { diffFingerprints, readFingerprint } from './schema-fingerprint.js';

const PAIRS = [
  [13, 17],
  [17, 18],
] as const;

const BASE_SCHEMA = `
  CREATE TABLE load (id int PRIMARY KEY, n int NOT NULL, note text);
  INSERT INTO load SELECT g, 0, 'seed' FROM generate_series(1, 200) g;
  CREATE TABLE items (id int PRIMARY KEY, name text, price int);
  INSERT INTO items SELECT g, 'item ' || g, g FROM generate_series(1, 100) g;
  CREATE TABLE events (id int, at date, payload text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
  CREATE TABLE events_2026_12 PARTITION OF events FOR VALUES FROM ('2026-12-01') TO ('2027-01-01');
  INSERT INTO events SELECT g, DATE '2026-12-01' + (g % 28), 'e' FROM generate_series(1, 50) g;`;

/** Each: a name and the source transactions (one query string each) it commits while sync streams. */
const SCENARIOS: ReadonlyArray<readonly [string, readonly string[]]> = [
  [
    'add a column NOT NULL with a default, rows before and after',
    [
      `INSERT INTO items VALUES (101, 'before', 1)`,
      `ALTER TABLE items ADD COLUMN status text NOT NULL DEFAULT 'new'`,
      `INSERT INTO items VALUES (102, 'after', 2, 'shipped')`,
    ],
  ],
  ['rename a column', [`ALTER TABLE items RENAME COLUMN name TO title`, `UPDATE items SET title = title || '!' WHERE id <= 10`]],
  [
    'retype a column, change its default and NOT NULL',
    [
      `ALTER TABLE items ALTER COLUMN price TYPE bigint`,
      `ALTER TABLE items ALTER COLUMN price SET DEFAULT 5, ALTER COLUMN price SET NOT NULL`,
      `INSERT INTO items (id, title) VALUES (103, 'defaulted')`,
      `ALTER TABLE items ALTER COLUMN status DROP DEFAULT`,
    ],
  ],
  ['drop a column', [`ALTER TABLE items DROP COLUMN status`, `INSERT INTO items VALUES (104, 'no status', 4)`]],
  [
    'DDL and DML interleaved in one transaction',
    [
      `BEGIN;
         INSERT INTO items VALUES (105, 'x', 5);
         ALTER TABLE items ADD COLUMN weight numeric(8,2);
         INSERT INTO items VALUES (106, 'y', 6, 1.5);
         UPDATE items SET weight = 2 WHERE id = 105;
       COMMIT`,
    ],
  ],
  [
    'a new table created and filled in the same transaction',
    [
      `BEGIN; CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, item int REFERENCES items, qty int); INSERT INTO orders (item, qty) SELECT id, 1 FROM items WHERE id <= 20; COMMIT`,
      `INSERT INTO orders (item, qty) VALUES (1, 9)`,
    ],
  ],
  [
    'a table made by CREATE TABLE AS (its rows made on the target from its equal data), then given a key',
    [
      `CREATE TABLE snapshot AS SELECT id, title FROM items WHERE id <= 10`,
      `ALTER TABLE snapshot ADD PRIMARY KEY (id)`,
      `UPDATE snapshot SET title = 'changed after' WHERE id = 1`,
    ],
  ],
  [
    'monthly partitions created and written into',
    [
      `CREATE TABLE events_2027_01 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2027-02-01')`,
      `INSERT INTO events VALUES (1000, '2027-01-15', 'january')`,
      `CREATE TABLE events_2027_02 (LIKE events INCLUDING ALL)`,
      `INSERT INTO events_2027_02 VALUES (1001, '2027-02-03', 'standalone')`,
      `ALTER TABLE events ATTACH PARTITION events_2027_02 FOR VALUES FROM ('2027-02-01') TO ('2027-03-01')`,
      `INSERT INTO events VALUES (1002, '2027-02-10', 'attached')`,
    ],
  ],
  [
    'detach a partition',
    [`ALTER TABLE events DETACH PARTITION events_2026_12`, `UPDATE events_2026_12 SET payload = 'detached' WHERE id < 5`],
  ],
  [
    'indexes, views and functions',
    [
      `CREATE INDEX items_title ON items (title)`,
      `CREATE UNIQUE INDEX CONCURRENTLY orders_item_qty ON orders (item, qty)`,
      `CREATE VIEW cheap_items AS SELECT id, title FROM items WHERE price < 10`,
      `CREATE FUNCTION item_total(i int) RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT sum(qty) FROM orders WHERE item = i $$`,
      `DROP INDEX items_title`,
      `CREATE OR REPLACE VIEW cheap_items AS SELECT id, title, price FROM items WHERE price < 10`,
      `DROP FUNCTION item_total(int)`,
    ],
  ],
  [
    'a multi-statement query string mixing DDL and rows',
    [
      `INSERT INTO load VALUES (100001, 1, 'multi'); CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'one'); ALTER TABLE notes ADD COLUMN author text; INSERT INTO notes VALUES (2, 'two', 'me')`,
    ],
  ],
  [
    'a table dropped and recreated under the same name',
    [`DROP TABLE notes`, `CREATE TABLE notes (id bigint PRIMARY KEY, title text NOT NULL)`, `INSERT INTO notes VALUES (7, 'again')`],
  ],
  [
    "date, time and interval literals read in the source session's style and time zone",
    [
      `SET datestyle = 'SQL, DMY'; SET timezone = 'Asia/Kolkata';
       CREATE TABLE events_2027_04 PARTITION OF events FOR VALUES FROM ('01/04/2027') TO ('01/05/2027');
       ALTER TABLE items ADD COLUMN due timestamptz DEFAULT '13/12/2026 10:00', ADD COLUMN grace interval DEFAULT '1 day 02:00:00'`,
      `INSERT INTO events VALUES (3000, '2027-04-20', 'april')`,
      `INSERT INTO items (id, title) VALUES (107, 'due')`,
    ],
  ],
];

for (const [from, to] of PAIRS) {
  describe(`schema changes during sync ${from} → ${to}, under a write load`, () => {
    let source: Cluster;
    let target: Cluster;
    let db: string;
    let sync: PgferryProcess;
    let args: string[];
    before(async () => {
      [source, target] = await startClusters([{ version: from }, { version: to }]);
      db = await source.createDatabase({ prefix: 'ddl' });
      await target.sql('postgres', `CREATE DATABASE ${db}`);
      await source.sql(db, BASE_SCHEMA);
      args = ['--source', source.url(db), '--target', target.url(db)];
      sync = spawnPgferry(['sync', ...args]);
      await waitUntilStreaming(target, db, sync);
    });
    after(async () => {
      if (sync) await stopSync(sync);
      await Promise.all([source?.stop(), target?.stop()]);
    });

    /** Commits `transactions` on the source while a writer keeps changing `load`, then waits for the target and compares. */
    async function scenario(transactions: readonly string[]): Promise<void> {
      const writer = startWriter(source.url(db));
      try {
        // The schema changes while the writer commits: it has begun before the first of them.
        const deadline = Date.now() + 10_000;
        while (writer.committed() === 0) {
          assert.ok(Date.now() < deadline, 'the writer committed nothing in 10 s');
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        for (const text of transactions) await source.sql(db, text);
      } finally {
        await writer.stop();
      }
      assert.ok(writer.committed() > 0, 'the writer committed while the schema changed');
      await caughtUp();
      await assertSameSchemaAndRows();
    }

    async function caughtUp(): Promise<void> {
      const { rows } = await source.sql(db, `SELECT pg_current_wal_insert_lsn()::text AS lsn`);
      const goal = (rows[0] as { lsn: string }).lsn;
      const deadline = Date.now() + 60_000;
      for (;;) {
        const state = await target.sql(db, `SELECT applied_lsn >= $1::pg_lsn AS done FROM pgferry.sync`, [goal]);
        if ((state.rows[0] as { done: boolean }).done) return;
        if (sync.child.exitCode !== null) assert.fail(`sync exited:\n${sync.output().slice(-4000)}`);
        assert.ok(Date.now() < deadline, `sync did not catch up with ${goal}:\n${sync.output().slice(-4000)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }

    async function assertSameSchemaAndRows(): Promise<void> {
      const [a, b] = await Promise.all([source.withClient(db, readFingerprint), target.withClient(db, readFingerprint)]);
      const diff = diffFingerprints(a, b);
      assert.deepEqual(diff, [], `schemas differ:\n${diff.join('\n')}\n${sync.output().slice(-3000)}`);
      const comparison = await compareTables(source.url(db), target.url(db));
      const unequal = comparison.tables.filter((t) => !t.equal);
      assert.ok(comparison.equal, `tables differ: ${JSON.stringify(unequal).slice(0, 2000)}`);
    }

    for (const [name, transactions] of SCENARIOS) {
      it(name, () => scenario(transactions));
    }

    it('privileges: a grant to a role both servers have is carried; one to a role only the source has is said, not fatal', async () => {
      const shared = `${db}_reader`;
      const sourceOnly = `${db}_ghost`;
      for (const cluster of [source, target]) await cluster.sql('postgres', `CREATE ROLE ${shared}`);
      await scenario([
        `CREATE ROLE ${sourceOnly} LOGIN PASSWORD 'ghost-secret'; GRANT SELECT ON items TO ${sourceOnly}; GRANT SELECT, UPDATE ON items TO ${shared}`,
        `REVOKE SELECT ON items FROM ${sourceOnly}`,
      ]);
      // The fingerprint leaves privileges out: read them.
      const granted = `SELECT has_table_privilege('${shared}', 'items', 'UPDATE') AS shared`;
      assert.deepEqual((await target.sql(db, granted)).rows, (await source.sql(db, granted)).rows);
      assert.deepEqual((await target.sql(db, granted)).rows, [{ shared: true }]);
      assert.match(sync.output(), /names a role \(or a table\) the target lacks: not applied/);
      assert.match(sync.output(), /commands on global objects[^\n]*are not carried/);
      assert.doesNotMatch(sync.output(), /ghost-secret/);
    });

    it('a table made without a key is named as not streamed, and joins the stream once it has one', async () => {
      await scenario([`CREATE TABLE scratch (x int NOT NULL, note text)`]);
      const deadline = Date.now() + 30_000;
      while (!/without a primary key or replica identity are not streamed[^\n]*|"tables":\["public\.scratch"\]/.test(sync.output())) {
        assert.ok(Date.now() < deadline, `sync never named the keyless table:\n${sync.output().slice(-3000)}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      assert.match(sync.output(), /"tables":\["public\.scratch"\][^\n]*without a primary key or replica identity are not streamed/);
      await scenario([
        `ALTER TABLE scratch ADD PRIMARY KEY (x)`,
        `INSERT INTO scratch VALUES (1, 'keyed')`,
        `UPDATE scratch SET note = 'updated'`,
      ]);
    });

    it('a DDL statement inside a DO block and inside a function', async () => {
      await scenario([
        `DO $$ BEGIN
           IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'sku') THEN
             ALTER TABLE items ADD COLUMN sku text;
           END IF;
           UPDATE items SET sku = 'sku-' || id WHERE id <= 3;
         END $$`,
        `CREATE FUNCTION make_month(y int, m int) RETURNS void LANGUAGE plpgsql AS $$
         BEGIN
           EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                          format('events_%s_%s', y, lpad(m::text, 2, '0')), make_date(y, m, 1), make_date(y, m, 1) + interval '1 month');
         END $$`,
        `SELECT make_month(2027, 3)`,
        `DO $$ BEGIN
           CREATE TABLE tickets (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, code serial, note text DEFAULT 'n', total numeric GENERATED ALWAYS AS (id * 2) STORED);
           INSERT INTO tickets (note) VALUES ('first');
           ALTER TABLE tickets RENAME COLUMN note TO remark;
           CREATE INDEX tickets_remark ON tickets (remark);
         END $$`,
        `INSERT INTO tickets (remark) VALUES ('second')`,
        `DO $$ BEGIN ALTER TABLE items DROP COLUMN sku; ALTER TABLE tickets DROP COLUMN code; END $$`,
        `INSERT INTO tickets (remark) VALUES ('third')`,
        `INSERT INTO events VALUES (2000, '2027-03-09', 'march')`,
      ]);
    });

    it('a SIGKILL of sync right after a change was applied loses and repeats nothing', async () => {
      await scenario([`ALTER TABLE load ADD COLUMN tag text DEFAULT 'k'`, `UPDATE load SET tag = 'killed' WHERE id <= 5`]);
      sync.child.kill('SIGKILL');
      await sync.exited();
      await source.sql(db, `ALTER TABLE load ADD COLUMN later int`);
      await source.sql(db, `UPDATE load SET later = id WHERE id <= 50`);
      sync = spawnPgferry(['sync', ...args]);
      await waitUntilStreaming(target, db, sync);
      await scenario([`ALTER TABLE load RENAME COLUMN later TO after_kill`]);
    });

    it("verify finds the target identical, schema and rows, while sync streams; check does not take pgferry's capture for the user's", async () => {
      await caughtUp();
      // Sequences are not carried by sync (the cut-over sets them): verify's tables and schema are what must agree.
      const verified = await runPgferry(['verify', '--json', ...args], {}, 120_000);
      const report = JSON.parse(verified.stdout) as { tables: Array<{ status: string }>; schema: unknown[] };
      const acl = `SELECT relname, relacl::text FROM pg_class WHERE relname = 'items'`;
      assert.deepEqual(
        report.schema,
        [],
        `${JSON.stringify(report.schema)}: ${JSON.stringify((await source.sql(db, acl)).rows)} / ${JSON.stringify((await target.sql(db, acl)).rows)}`,
      );
      assert.ok(
        report.tables.every((t) => t.status === 'identical'),
        verified.stdout,
      );
      const checked = await runPgferry(['check', '--json', ...args], {}, 60_000);
      assert.doesNotMatch(checked.stdout, /pgferry_ddl_/);
    });

    it('cleanup removes the event triggers and their function', async () => {
      await stopSync(sync);
      const cleaned = await runPgferry(['cleanup', ...args]);
      assert.equal(cleaned.code, 0, cleaned.stderr);
      assert.match(cleaned.stdout + cleaned.stderr, /schema-change capture/);
      const { rows } = await source.sql(
        db,
        `SELECT (SELECT count(*) FROM pg_event_trigger)::int AS triggers, to_regnamespace('pgferry_capture') IS NULL AS schema_gone`,
      );
      assert.deepEqual(rows[0], { triggers: 0, schema_gone: true });
    });
  });
}

/** Keys the writer inserts: new ones across every scenario. */
let nextLoadId = 200_000;

/** Updates and inserts on `load` from one session, flat out, until stopped. */
function startWriter(url: string): { stop(): Promise<void>; committed(): number } {
  const client = new pg.Client({ connectionString: url });
  let committed = 0;
  let running = true;
  const loop = (async () => {
    await client.connect();
    while (running) {
      await client.query(`UPDATE load SET n = n + 1 WHERE id = $1`, [1 + (committed % 200)]);
      await client.query(`INSERT INTO load (id, n) VALUES ($1, 0)`, [nextLoadId++]);
      committed += 2;
    }
  })();
  return {
    committed: () => committed,
    async stop() {
      running = false;
      try {
        await loop;
      } finally {
        await client.end();
      }
    },
  };
}
