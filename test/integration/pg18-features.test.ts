/**
 * A current schema with what PostgreSQL 18 added (issue 19): virtual generated columns (18's
 * default kind), and temporal keys (a primary key WITHOUT OVERLAPS and a foreign key with
 * PERIOD) with the btree_gist they need. Moved 18 → 18 by `sync` and `cutover --verify full`,
 * with rows changed while sync streams; the schema compared object by object through the
 * server's own deparsing (schema-fingerprint.ts), the rows by content, and the constraints
 * shown to hold on the target.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pg from 'pg';
import { compareTables, migrationUnderWay, runPgferry, stopSync, useClusterPair, type Cluster } from '../harness/index.js';
import { diffFingerprints, readFingerprint } from './schema-fingerprint.js';

const SCHEMA = `
  CREATE EXTENSION btree_gist;
  CREATE TABLE orders (
    id int PRIMARY KEY,
    price numeric(10, 2) NOT NULL,
    qty int NOT NULL,
    total numeric GENERATED ALWAYS AS (price * qty) VIRTUAL,
    taxed numeric GENERATED ALWAYS AS (price * qty * 1.2) STORED,
    label text GENERATED ALWAYS AS ('order ' || id)
  );
  CREATE TABLE rooms (
    id int,
    valid daterange NOT NULL,
    name text,
    PRIMARY KEY (id, valid WITHOUT OVERLAPS)
  );
  CREATE TABLE bookings (
    id int PRIMARY KEY,
    room_id int NOT NULL,
    valid daterange NOT NULL,
    FOREIGN KEY (room_id, PERIOD valid) REFERENCES rooms (id, PERIOD valid)
  );
  INSERT INTO orders (id, price, qty) SELECT g, g * 1.5, g % 7 + 1 FROM generate_series(1, 500) g;
  INSERT INTO rooms VALUES (1, '[2025-01-01,2025-07-01)', 'blue'), (1, '[2025-07-01,2026-01-01)', 'blue, painted'), (2, '[2025-01-01,2026-01-01)', 'red');
  INSERT INTO bookings VALUES (1, 1, '[2025-02-01,2025-02-05)'), (2, 2, '[2025-03-01,2025-09-01)')`;

async function fingerprint(cluster: Cluster, db: string) {
  const client = new pg.Client({ connectionString: cluster.url(db) });
  await client.connect();
  try {
    return await readFingerprint(client);
  } finally {
    await client.end();
  }
}

describe('PostgreSQL 18 features: virtual generated columns and temporal keys, 18 → 18', () => {
  const pair = useClusterPair(18, 18);

  it('are copied, streamed and cut over, and hold on the target', async () => {
    const { db, sync, args } = await migrationUnderWay(pair.source, pair.target, 'pg18', SCHEMA);
    try {
      await pair.source.sql(
        db,
        `UPDATE orders SET qty = qty + 1 WHERE id % 3 = 0;
         DELETE FROM orders WHERE id % 10 = 0;
         INSERT INTO orders (id, price, qty) VALUES (1000, 9.99, 3);
         UPDATE rooms SET name = 'red, rebuilt' WHERE id = 2;
         INSERT INTO rooms VALUES (3, '[2025-01-01,)', 'green');
         INSERT INTO bookings VALUES (3, 3, '[2025-05-01,2025-05-02)')`,
      );
      const cut = await runPgferry(['cutover', ...args, '--json', '--verify', 'full', '--no-fallback'], {}, 120_000);
      assert.equal(cut.code, 0, `${cut.stderr}\n--- sync\n${sync.output()}`);
      assert.deepEqual(diffFingerprints(await fingerprint(pair.source, db), await fingerprint(pair.target, db)), []);
      const rows = await compareTables(pair.source.url(db), pair.target.url(db));
      assert.ok(rows.equal, JSON.stringify(rows.tables.filter((t) => !t.equal)));
      const kinds = `SELECT attname, attgenerated FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attgenerated <> '' ORDER BY 1`;
      assert.deepEqual((await pair.target.sql(db, kinds)).rows, [
        { attname: 'label', attgenerated: 'v' },
        { attname: 'taxed', attgenerated: 's' },
        { attname: 'total', attgenerated: 'v' },
      ]);
      // Generated values are the target's own, and equal to the source's.
      const generated = `SELECT id, total::text, taxed::text, label FROM orders ORDER BY id`;
      assert.deepEqual((await pair.target.sql(db, generated)).rows, (await pair.source.sql(db, generated)).rows);
      // The temporal keys hold on the target: an overlapping period and a booking outside any room's period are refused.
      await assert.rejects(
        pair.target.sql(db, `INSERT INTO rooms VALUES (1, '[2025-06-01,2025-08-01)', 'overlaps')`),
        /conflicting key value|exclusion/,
      );
      await assert.rejects(pair.target.sql(db, `INSERT INTO bookings VALUES (9, 2, '[2026-02-01,2026-02-02)')`), /foreign key/);
    } finally {
      await stopSync(sync);
    }
  });
});
