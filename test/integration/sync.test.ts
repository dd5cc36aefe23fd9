/**
 * `pgferry sync` against real servers, 13 → 17 and 17 → 18: each test makes a fresh database,
 * clones it with a first `sync --until-caught-up`, makes one kind of change on the source, runs
 * `sync --until-caught-up` again (it continues from the target's recorded position) and
 * compares the target with the source by content, every row and column. All the changes are
 * committed before the second sync starts; a batch takes whatever has arrived, so they are
 * usually applied in one or a few coalesced batches (a test that needs two transactions in
 * one batch puts a big transaction in front of them).
 *
 * After every sync: the slot's confirmed_flush_lsn on the source is at or before the target's
 * pgferry.sync.applied_lsn (the slot never passes what the target committed).
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import pg from 'pg';
import { compareTables, runPgferry, startClusters, type CliResult, type Cluster } from '../harness/index.js';

const PAIRS = [
  [13, 17],
  [17, 18],
] as const;

const SYNC_TIMEOUT_MS = 120_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Text of about 100 KB that pglz cannot shrink below the TOAST threshold: stored out of line. */
function bigText(seed: string): string {
  return `(SELECT string_agg(md5(i::text || '${seed}'), '') FROM generate_series(1, 3125) i)`;
}

for (const [from, to] of PAIRS) {
  describe(`sync ${from} → ${to}`, () => {
    let source: Cluster;
    let target: Cluster;

    before(async () => {
      [source, target] = await startClusters([{ version: from }, { version: to }]);
    });
    after(async () => {
      await Promise.all([source?.stop(), target?.stop()]);
    });

    /** Databases of the tests run so far: their slots are dropped after each test (a server has 10). */
    const used: string[] = [];
    afterEach(async () => {
      const slots = used.splice(0).map((db) => `pgferry_${db}`);
      await source.sql('postgres', `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = ANY ($1) AND NOT active`, [slots]);
    });

    async function rows<T extends pg.QueryResultRow>(cluster: Cluster, db: string, text: string, values?: unknown[]): Promise<T[]> {
      return cluster.withClient(db, async (client) => (await client.query<T>(text, values)).rows);
    }

    /** A database of the same name on both servers, `schema` run on the source. */
    async function freshDatabase(prefix: string, schema?: string): Promise<string> {
      const db = await source.createDatabase({ prefix });
      used.push(db);
      await target.sql('postgres', `CREATE DATABASE ${db} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`);
      if (schema) await source.sql(db, schema);
      return db;
    }

    function syncArgs(db: string, extra: readonly string[] = []): string[] {
      return ['sync', '--source', source.url(db), '--target', target.url(db), '--until-caught-up', ...extra];
    }

    /** The slot never confirms more than the target committed. */
    async function assertSlotBehindTarget(db: string): Promise<void> {
      const [state] = await rows<{ lsn: string }>(target, db, 'SELECT applied_lsn::text AS lsn FROM pgferry.sync');
      assert.ok(state, 'pgferry.sync has its row on the target');
      const [slot] = await rows<{ confirmed: string | null; ok: boolean | null }>(
        source,
        db,
        `SELECT confirmed_flush_lsn::text AS confirmed, confirmed_flush_lsn <= $1::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = $2`,
        [state.lsn, `pgferry_${db}`],
      );
      assert.ok(slot, `slot pgferry_${db} exists on the source`);
      assert.equal(slot.ok, true, `slot confirmed_flush_lsn ${slot.confirmed} is past the target's applied_lsn ${state.lsn}`);
    }

    /** `sync --until-caught-up`, which must exit 0; its stderr (the log) is returned. */
    async function sync(db: string, extra: readonly string[] = []): Promise<CliResult> {
      const result = await runPgferry(syncArgs(db, extra), {}, SYNC_TIMEOUT_MS);
      assert.equal(result.code, 0, `sync exited ${result.code}:\n${result.stderr.slice(-4000)}`);
      await assertSlotBehindTarget(db);
      return result;
    }

    async function assertSame(db: string): Promise<void> {
      const comparison = await compareTables(source.url(db), target.url(db));
      assert.ok(comparison.tables.length > 0, 'there were tables to compare');
      assert.ok(comparison.equal, `target differs from source:\n${JSON.stringify(comparison.tables.filter((t) => !t.equal), null, 1)}`);
    }

    /**
     * Changes on the source, one source transaction per element: each is sent as a query of its
     * own (a query of several statements outside BEGIN … COMMIT runs as one transaction, and
     * statements before a BEGIN join its transaction).
     *
     * They commit with synchronous_commit = on: the servers run with it off, and an asynchronous
     * commit can sit in unwritten WAL for a while after COMMIT returns, which sync
     * --until-caught-up does not wait for (its own test below). Flushing here keeps every other
     * test about the kind of change it makes.
     */
    async function change(db: string, transactions: readonly string[]): Promise<void> {
      await source.withClient(db, async (client) => {
        await client.query('SET synchronous_commit = on');
        for (const transaction of transactions) await client.query(transaction);
      });
    }

    /** The database prepared, cloned by a first sync, and equal to its source. */
    async function cloned(prefix: string, schema: string): Promise<string> {
      const db = await freshDatabase(prefix, schema);
      await sync(db);
      await assertSame(db);
      return db;
    }

    /**
     * Rows 1 and 2 of `table` swap their unique `code` across two transactions: row 1 parks
     * its code on 'tmp' and row 2 takes it, then row 1 takes row 2's old code. Applied in one
     * batch, coalesced per key, one row takes its new code while the other still holds it: the
     * unique index refuses and the batch is replayed in source order. A batch takes whatever
     * has arrived, so a big transaction in front keeps the apply busy while the two arrive;
     * they can still land in two batches, so this is tried up to three times, until a sync
     * says it replayed. Each sync must exit 0 and leave the target equal to the source.
     */
    async function swapUntilReplayed(db: string, table: string): Promise<void> {
      for (let attempt = 1; attempt <= 3; attempt++) {
        const codes = await rows<{ code: string }>(source, db, `SELECT code FROM ${table} WHERE id IN (1, 2) ORDER BY id`);
        const [one, two] = codes.map((r) => r.code);
        await change(db, [
          `INSERT INTO filler SELECT g, md5(g::text) FROM generate_series(${attempt * 100_000}, ${attempt * 100_000 + 19_999}) g`,
          `BEGIN; UPDATE ${table} SET code = 'tmp' WHERE id = 1; UPDATE ${table} SET code = '${one}' WHERE id = 2; COMMIT`,
          `UPDATE ${table} SET code = '${two}' WHERE id = 1`,
        ]);
        const run = await sync(db);
        await assertSame(db);
        assert.deepEqual(await rows(target, db, `SELECT id, code FROM ${table} WHERE id IN (1, 2) ORDER BY id`), [
          { id: 1, code: two },
          { id: 2, code: one },
        ]);
        if (/replayed in source order/.test(run.stderr)) return;
      }
      assert.fail('in three tries, the two transactions swapping a unique value never landed in one batch (the log never said "replayed in source order")');
    }

    it('applies multi-statement transactions across two tables, leaves out rolled-back work, and continues from its position', async () => {
      const db = await cloned(
        'multi',
        `CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance numeric(12, 2) NOT NULL);
         CREATE TABLE ledger (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, account_id int NOT NULL, amount numeric(12, 2) NOT NULL, note text);
         INSERT INTO accounts SELECT g, 'owner ' || g, g * 10 FROM generate_series(1, 50) g;
         INSERT INTO ledger (account_id, amount, note) SELECT g % 50 + 1, g, 'opening ' || g FROM generate_series(1, 100) g;`,
      );
      await change(db, [
        `BEGIN;
           INSERT INTO accounts VALUES (51, 'new one', 0), (52, 'new two', 5);
           UPDATE accounts SET balance = balance - 7.25 WHERE id BETWEEN 1 AND 10;
           INSERT INTO ledger (account_id, amount, note) SELECT g, -7.25, 'fee' FROM generate_series(1, 10) g;
           DELETE FROM ledger WHERE id IN (3, 4, 5);
           UPDATE ledger SET note = NULL WHERE id = 6;
         COMMIT`,
        `BEGIN;
           UPDATE accounts SET balance = balance + 100, owner = 'renamed' WHERE id IN (1, 51);
           DELETE FROM accounts WHERE id = 50;
           DELETE FROM ledger WHERE account_id = 50;
           INSERT INTO ledger (account_id, amount, note) VALUES (51, 100, 'deposit');
         COMMIT`,
        `BEGIN;
           UPDATE accounts SET balance = 0 WHERE id BETWEEN 11 AND 20;
           INSERT INTO ledger (account_id, amount, note) VALUES (11, 1, 'rolled back');
         ROLLBACK`,
        `BEGIN;
           UPDATE accounts SET owner = 'kept' WHERE id = 21;
           SAVEPOINT s;
           UPDATE accounts SET owner = 'undone' WHERE id = 22;
           DELETE FROM ledger WHERE id = 7;
           ROLLBACK TO SAVEPOINT s;
           INSERT INTO ledger (account_id, amount, note) VALUES (21, 2, 'after savepoint');
         COMMIT`,
      ]);
      await sync(db);
      await assertSame(db);
      const picked = await rows<{ id: number; owner: string; balance: string }>(target, db, `SELECT id, owner, balance::text FROM accounts WHERE id IN (1, 11, 21, 22, 50, 51) ORDER BY id`);
      assert.deepEqual(picked, [
        { id: 1, owner: 'renamed', balance: '102.75' },
        { id: 11, owner: 'owner 11', balance: '110.00' },
        { id: 21, owner: 'kept', balance: '210.00' },
        { id: 22, owner: 'owner 22', balance: '220.00' },
        { id: 51, owner: 'renamed', balance: '100.00' },
      ]);

      // More work, and a third run that continues from the second's position.
      await change(db, [
        `INSERT INTO accounts VALUES (60, 'third run', 1); UPDATE ledger SET amount = amount * 2 WHERE account_id = 2;`,
        `BEGIN; UPDATE accounts SET balance = balance + 1 WHERE id BETWEEN 30 AND 40; DELETE FROM ledger WHERE account_id = 30; COMMIT;`,
        `UPDATE accounts SET owner = 'small batches' WHERE id = 60;`,
      ]);
      // Batches of at most 3 row changes: whole transactions, so the 11-row one is a batch alone.
      await sync(db, ['--batch-changes', '3']);
      await assertSame(db);
      // A run with nothing new changes nothing.
      await sync(db);
      await assertSame(db);
    });

    describe('GENERATED ALWAYS AS IDENTITY columns (the source sends their values; the target must take them)', () => {
      it('inserts, updates and deletes rows of a table keyed by one', async () => {
        const db = await cloned(
          'identity',
          `CREATE TABLE ledger (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, amount numeric(12, 2) NOT NULL, note text);
           INSERT INTO ledger (amount, note) SELECT g, 'opening ' || g FROM generate_series(1, 20) g;`,
        );
        await change(db, [
          `INSERT INTO ledger (amount, note) VALUES (100, 'new'), (200, 'new');`,
          `UPDATE ledger SET note = 'updated' WHERE id IN (1, 21);`,
          `DELETE FROM ledger WHERE id = 2;`,
          `BEGIN; INSERT INTO ledger (amount, note) VALUES (300, 'in a transaction'); UPDATE ledger SET amount = -amount WHERE id = 3; COMMIT;`,
        ]);
        await sync(db);
        await assertSame(db);
        assert.deepEqual(await rows(target, db, `SELECT id::int, note FROM ledger WHERE id IN (1, 2, 21, 22, 23) ORDER BY id`), [
          { id: 1, note: 'updated' },
          { id: 21, note: 'updated' },
          { id: 22, note: 'new' },
          { id: 23, note: 'in a transaction' },
        ]);
      });

      it('updates a row of a keyless REPLICA IDENTITY FULL table that has one', async () => {
        const db = await cloned(
          'identityfull',
          `CREATE TABLE journal (seq int GENERATED ALWAYS AS IDENTITY, line text);
           ALTER TABLE journal REPLICA IDENTITY FULL;
           INSERT INTO journal (line) SELECT 'line ' || g FROM generate_series(1, 5) g;`,
        );
        await change(db, [`UPDATE journal SET line = 'edited' WHERE seq = 2`, `DELETE FROM journal WHERE seq = 1`]);
        await sync(db);
        await assertSame(db);
        assert.deepEqual(await rows(target, db, `SELECT seq, line FROM journal ORDER BY seq`), [
          { seq: 2, line: 'edited' },
          { seq: 3, line: 'line 3' },
          { seq: 4, line: 'line 4' },
          { seq: 5, line: 'line 5' },
        ]);
      });

      it('replays in source order a batch of a table keyed by one (a unique value swapped)', async () => {
        const db = await cloned(
          'identityreplay',
          `CREATE TABLE u (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, code text NOT NULL UNIQUE);
           INSERT INTO u (code) VALUES ('a'), ('b');
           CREATE TABLE filler (id int PRIMARY KEY, v text);`,
        );
        await swapUntilReplayed(db, 'u');
      });
    });

    it('applies key updates: a range moved by UPDATE, a swap and a rotation through a temporary key, a shift into a freed key', async () => {
      const db = await cloned(
        'keys',
        `CREATE TABLE k (id int PRIMARY KEY, v text NOT NULL, n int);
         INSERT INTO k SELECT g, 'v' || g, g FROM generate_series(1, 40) g;`,
      );
      await change(db, [
        `UPDATE k SET id = id + 1000 WHERE id BETWEEN 1 AND 5;`,
        `UPDATE k SET v = 'changed after its key moved' WHERE id = 1003;`,
        `BEGIN; UPDATE k SET id = -10 WHERE id = 10; UPDATE k SET id = 10 WHERE id = 11; UPDATE k SET id = 11 WHERE id = -10; COMMIT;`,
        `BEGIN; UPDATE k SET id = -1 WHERE id = 20; UPDATE k SET id = 20 WHERE id = 21; UPDATE k SET id = 21 WHERE id = 22; UPDATE k SET id = 22 WHERE id = -1; COMMIT;`,
        `BEGIN; DELETE FROM k WHERE id = 30; UPDATE k SET id = 30 WHERE id = 29; UPDATE k SET id = 29 WHERE id = 28; UPDATE k SET id = 28 WHERE id = 27; COMMIT;`,
        `UPDATE k SET id = 115 WHERE id = 15;`,
        `UPDATE k SET id = 15, v = 'back home' WHERE id = 115;`,
        `DELETE FROM k WHERE id = 16;`,
        `UPDATE k SET id = 16 WHERE id = 17;`,
        `BEGIN; UPDATE k SET id = 2000 WHERE id = 35; UPDATE k SET id = 2001, n = -1 WHERE id = 2000; COMMIT;`,
        `BEGIN; UPDATE k SET id = 3700 WHERE id = 37; ROLLBACK;`,
      ]);
      await sync(db);
      await assertSame(db);
      const picked = await rows<{ id: number; v: string }>(target, db, `SELECT id, v FROM k WHERE id IN (10, 11, 15, 16, 17, 20, 21, 22, 27, 28, 29, 30, 1003, 2001) ORDER BY id`);
      assert.deepEqual(picked, [
        { id: 10, v: 'v11' },
        { id: 11, v: 'v10' },
        { id: 15, v: 'back home' },
        { id: 16, v: 'v17' },
        { id: 20, v: 'v21' },
        { id: 21, v: 'v22' },
        { id: 22, v: 'v20' },
        { id: 28, v: 'v27' },
        { id: 29, v: 'v28' },
        { id: 30, v: 'v29' },
        { id: 1003, v: 'changed after its key moved' },
        { id: 2001, v: 'v35' },
      ]);
    });

    it('applies a delete and re-insert of one key in one transaction, and a row inserted and deleted within the batch', async () => {
      const db = await cloned(
        'reinsert',
        `CREATE TABLE r (id int PRIMARY KEY, v text, n int NOT NULL);
         INSERT INTO r SELECT g, 'v' || g, g FROM generate_series(1, 20) g;`,
      );
      await change(db, [
        `BEGIN; DELETE FROM r WHERE id = 3; INSERT INTO r VALUES (3, 'reinserted', 300); COMMIT;`,
        `BEGIN; DELETE FROM r WHERE id = 4; INSERT INTO r VALUES (4, NULL, 400); UPDATE r SET n = 401 WHERE id = 4; COMMIT;`,
        `BEGIN; INSERT INTO r VALUES (100, 'short-lived', 1); DELETE FROM r WHERE id = 100; COMMIT;`,
        `INSERT INTO r VALUES (101, 'first', 1);`,
        `DELETE FROM r WHERE id = 101;`,
        `INSERT INTO r VALUES (101, 'second', 2);`,
        `DELETE FROM r WHERE id = 5;`,
        `INSERT INTO r VALUES (5, 'back in a later transaction', 5);`,
        `BEGIN; UPDATE r SET v = 'updated, then deleted and re-inserted' WHERE id = 6; DELETE FROM r WHERE id = 6; INSERT INTO r VALUES (6, 'fresh', 6); COMMIT;`,
      ]);
      await sync(db);
      await assertSame(db);
      const picked = await rows<{ id: number; v: string | null; n: number }>(target, db, `SELECT id, v, n FROM r WHERE id IN (3, 4, 5, 6, 100, 101) ORDER BY id`);
      assert.deepEqual(picked, [
        { id: 3, v: 'reinserted', n: 300 },
        { id: 4, v: null, n: 401 },
        { id: 5, v: 'back in a later transaction', n: 5 },
        { id: 6, v: 'fresh', n: 6 },
        { id: 101, v: 'second', n: 2 },
      ]);
    });

    it('falls back to source order when two rows swap a unique value across two transactions of one batch, and still exits 0', async () => {
      const db = await cloned(
        'unique',
        `CREATE TABLE u (id int PRIMARY KEY, code text NOT NULL UNIQUE, n int);
         INSERT INTO u SELECT g, 'code-' || g, g FROM generate_series(1, 10) g;
         CREATE TABLE filler (id int PRIMARY KEY, v text);`,
      );
      await swapUntilReplayed(db, 'u');
      // The fallback leaves the stream usable: later batches apply as usual.
      await change(db, [`UPDATE u SET n = n + 100 WHERE id <= 5`, `INSERT INTO u VALUES (11, 'code-11', 11)`]);
      await sync(db);
      await assertSame(db);
    });

    it('applies parent and child rows under a foreign key, inserted and deleted in separate transactions', async () => {
      const db = await cloned(
        'fk',
        `CREATE TABLE parent (id int PRIMARY KEY, name text NOT NULL);
         CREATE TABLE child (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES parent (id), note text);
         INSERT INTO parent SELECT g, 'p' || g FROM generate_series(1, 10) g;
         INSERT INTO child SELECT g, g, 'c' || g FROM generate_series(1, 10) g;`,
      );
      await change(db, [
        `BEGIN; INSERT INTO parent VALUES (100, 'new parent'); INSERT INTO child VALUES (100, 100, 'new child'); COMMIT;`,
        `INSERT INTO parent VALUES (101, 'parent alone');`,
        `INSERT INTO child VALUES (101, 101, 'child in its own transaction');`,
        `DELETE FROM child WHERE id = 5;`,
        `DELETE FROM parent WHERE id = 5;`,
        `DELETE FROM child WHERE id = 100;`,
        `DELETE FROM parent WHERE id = 100;`,
        `BEGIN; UPDATE child SET parent_id = 101 WHERE id = 6; DELETE FROM parent WHERE id = 6; COMMIT;`,
      ]);
      await sync(db);
      await assertSame(db);
      const orphans = await rows<{ n: number }>(target, db, `SELECT count(*)::int AS n FROM child c LEFT JOIN parent p ON p.id = c.parent_id WHERE p.id IS NULL`);
      assert.deepEqual(orphans, [{ n: 0 }]);
      const fks = await rows<{ n: number }>(target, db, `SELECT count(*)::int AS n FROM pg_constraint WHERE conrelid = 'public.child'::regclass AND contype = 'f' AND convalidated`);
      assert.deepEqual(fks, [{ n: 1 }], 'the foreign key is on the target');
    });

    it('keeps unchanged TOASTed values: another column updated, inserted then updated in one batch, and a key change', async () => {
      const db = await cloned(
        'toast',
        `CREATE TABLE docs (id int PRIMARY KEY, title text NOT NULL, n int NOT NULL DEFAULT 0, body text NOT NULL);
         INSERT INTO docs SELECT g, 'doc ' || g, g, ${bigText("' || g || '")} FROM generate_series(1, 6) g;
         CREATE TABLE loose (tag text, body text);
         ALTER TABLE loose REPLICA IDENTITY FULL;
         INSERT INTO loose SELECT 'tag ' || g, ${bigText("loose' || g || '")} FROM generate_series(1, 2) g;`,
      );
      const toasted = await rows<{ n: number }>(
        source,
        db,
        `SELECT count(*)::int AS n FROM docs WHERE pg_column_size(body) > 8000 AND length(body) = 100000`,
      );
      assert.deepEqual(toasted, [{ n: 6 }], 'the bodies are 100 KB and stored out of line, not compressed inline');
      await change(db, [
        `UPDATE docs SET title = 'retitled' WHERE id = 1;`,
        `UPDATE docs SET n = n + 1 WHERE id = 1;`,
        `INSERT INTO docs VALUES (10, 'inserted', 0, ${bigText('ten')});`,
        `UPDATE docs SET title = 'inserted, then retitled' WHERE id = 10;`,
        `BEGIN; INSERT INTO docs VALUES (11, 'inserted', 0, ${bigText('eleven')}); UPDATE docs SET n = 11 WHERE id = 11; COMMIT;`,
        `UPDATE docs SET id = 1002 WHERE id = 2;`,
        `BEGIN; UPDATE docs SET id = 1003 WHERE id = 3; UPDATE docs SET title = 'moved, then retitled' WHERE id = 1003; COMMIT;`,
        `UPDATE docs SET title = 'retitled, then moved' WHERE id = 4;`,
        `UPDATE docs SET id = 1004 WHERE id = 4;`,
        `BEGIN; UPDATE docs SET id = -5 WHERE id = 5; UPDATE docs SET id = 5 WHERE id = 6; UPDATE docs SET id = 6 WHERE id = -5; COMMIT;`,
        `UPDATE loose SET tag = 'retagged' WHERE tag = 'tag 1';`,
      ]);
      await sync(db);
      await assertSame(db);
      const digest = `SELECT id, title, n, length(body) AS len, md5(body) AS md5 FROM docs ORDER BY id`;
      const onTarget = await rows<{ id: number; len: number }>(target, db, digest);
      assert.deepEqual(onTarget, await rows(source, db, digest));
      assert.deepEqual(
        onTarget.map((r) => [r.id, r.len]),
        [1, 5, 6, 10, 11, 1002, 1003, 1004].map((id) => [id, 100000]),
      );
      const loose = `SELECT tag, length(body) AS len, md5(body) AS md5 FROM loose ORDER BY tag`;
      assert.deepEqual(await rows(target, db, loose), await rows(source, db, loose));
    });

    it('changes one row at a time among identical rows of a keyless table with REPLICA IDENTITY FULL', async () => {
      const db = await cloned(
        'dups',
        `CREATE TABLE bag (x int, y text);
         ALTER TABLE bag REPLICA IDENTITY FULL;
         INSERT INTO bag VALUES (1, 'a'), (1, 'a'), (1, 'a'), (2, 'b'), (NULL, 'n'), (NULL, 'n'), (3, NULL), (3, NULL);`,
      );
      await change(db, [
        `UPDATE bag SET y = 'changed' WHERE ctid = (SELECT ctid FROM bag WHERE x = 1 AND y = 'a' LIMIT 1);`,
        `DELETE FROM bag WHERE ctid = (SELECT ctid FROM bag WHERE x = 1 AND y = 'a' LIMIT 1);`,
        `UPDATE bag SET y = 'm' WHERE ctid = (SELECT ctid FROM bag WHERE x IS NULL LIMIT 1);`,
        `DELETE FROM bag WHERE ctid = (SELECT ctid FROM bag WHERE x = 3 LIMIT 1);`,
      ]);
      await sync(db);
      await assertSame(db);
      const multiset = `SELECT x, y, count(*)::int AS n FROM bag GROUP BY x, y ORDER BY x NULLS LAST, y NULLS LAST`;
      const expected = [
        { x: 1, y: 'a', n: 1 },
        { x: 1, y: 'changed', n: 1 },
        { x: 2, y: 'b', n: 1 },
        { x: 3, y: null, n: 1 },
        { x: null, y: 'm', n: 1 },
        { x: null, y: 'n', n: 1 },
      ];
      assert.deepEqual(await rows(source, db, multiset), expected);
      assert.deepEqual(await rows(target, db, multiset), expected);
    });

    it('applies TRUNCATE, and TRUNCATE … RESTART IDENTITY CASCADE of a referenced parent, followed by new rows', async () => {
      const db = await cloned(
        'truncate',
        `CREATE TABLE plain (id int PRIMARY KEY, v text);
         CREATE TABLE parent (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text);
         CREATE TABLE child (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, parent_id int NOT NULL REFERENCES parent (id), note text);
         CREATE TABLE bystander (id int PRIMARY KEY, v text);
         INSERT INTO plain SELECT g, 'old ' || g FROM generate_series(1, 20) g;
         INSERT INTO parent (name) SELECT 'old parent ' || g FROM generate_series(1, 10) g;
         INSERT INTO child (parent_id, note) SELECT g, 'old child ' || g FROM generate_series(1, 10) g;
         INSERT INTO bystander SELECT g, 'kept ' || g FROM generate_series(1, 5) g;`,
      );
      await change(db, [
        `UPDATE plain SET v = 'updated before the truncate' WHERE id <= 5;`,
        `TRUNCATE plain;`,
        `INSERT INTO plain SELECT g, 'new ' || g FROM generate_series(1, 3) g;`,
        `BEGIN; TRUNCATE plain; INSERT INTO plain VALUES (1, 'truncated and refilled in one transaction'), (50, 'fifty'); COMMIT;`,
        `UPDATE child SET note = 'updated before the cascade' WHERE id = 1;`,
        `TRUNCATE parent RESTART IDENTITY CASCADE;`,
        `INSERT INTO parent (name) VALUES ('new parent 1'), ('new parent 2');`,
        `INSERT INTO child (parent_id, note) VALUES (1, 'new child 1'), (2, 'new child 2'), (2, 'new child 3');`,
        `UPDATE bystander SET v = 'still here' WHERE id = 1;`,
      ]);
      await sync(db);
      await assertSame(db);
      assert.deepEqual(await rows(target, db, `SELECT id, v FROM plain ORDER BY id`), [
        { id: 1, v: 'truncated and refilled in one transaction' },
        { id: 50, v: 'fifty' },
      ]);
      assert.deepEqual(await rows(target, db, `SELECT id, parent_id, note FROM child ORDER BY id`), [
        { id: 1, parent_id: 1, note: 'new child 1' },
        { id: 2, parent_id: 2, note: 'new child 2' },
        { id: 3, parent_id: 2, note: 'new child 3' },
      ]);
      assert.deepEqual(await rows(target, db, `SELECT count(*)::int AS n FROM bystander`), [{ n: 5 }]);
    });

    it('moves rows between partitions when the partition key is updated', async () => {
      const db = await cloned(
        'parts',
        `CREATE TABLE events (id int NOT NULL, region text NOT NULL, payload text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
         CREATE TABLE events_eu PARTITION OF events FOR VALUES IN ('eu');
         CREATE TABLE events_us PARTITION OF events FOR VALUES IN ('us');
         CREATE TABLE events_other PARTITION OF events DEFAULT;
         CREATE TABLE measures (id int NOT NULL, at date NOT NULL, v int, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
         CREATE TABLE measures_2024 PARTITION OF measures FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
         CREATE TABLE measures_2025 PARTITION OF measures FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
         INSERT INTO events SELECT g, (ARRAY['eu', 'us', 'apac'])[g % 3 + 1], 'e' || g FROM generate_series(1, 30) g;
         INSERT INTO measures SELECT g, date '2024-06-01' + g, g FROM generate_series(1, 20) g;`,
      );
      await change(db, [
        `UPDATE events SET region = 'eu' WHERE region = 'us' AND id <= 10;`,
        `UPDATE events SET region = 'us', payload = 'moved and changed' WHERE id = 3;`,
        `UPDATE events SET region = 'mars' WHERE id = 6;`,
        `BEGIN; UPDATE events SET region = 'us' WHERE id = 9; UPDATE events SET region = 'eu' WHERE id = 9 AND region = 'us'; COMMIT;`,
        `UPDATE events SET id = id + 100, region = 'apac' WHERE id = 12;`,
        `UPDATE measures SET at = at + 365 WHERE id <= 5;`,
        `UPDATE measures SET at = at + 365, v = -v WHERE id = 6;`,
        `TRUNCATE events_other;`,
        `INSERT INTO events VALUES (200, 'elsewhere', 'after the truncate');`,
      ]);
      await sync(db);
      await assertSame(db);
      const byPartition = `SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM events GROUP BY 1 ORDER BY 1`;
      assert.deepEqual(await rows(target, db, byPartition), await rows(source, db, byPartition));
      const measures = `SELECT tableoid::regclass::text AS part, id, at::text, v FROM measures ORDER BY id`;
      assert.deepEqual(await rows(target, db, measures), await rows(source, db, measures));
    });

    it('computes stored generated columns on the target, and applies to a target table whose column order differs', async () => {
      const db = await freshDatabase(
        'generated',
        `CREATE TABLE priced (id int PRIMARY KEY, qty int NOT NULL, price numeric(10, 2) NOT NULL, total numeric GENERATED ALWAYS AS (qty * price) STORED, note text);
         INSERT INTO priced (id, qty, price, note) SELECT g, g, g / 4.0, 'n' || g FROM generate_series(1, 20) g;
         CREATE TABLE shuffled (id int PRIMARY KEY, gone text, b int, c date, doubled int GENERATED ALWAYS AS (b * 2) STORED);
         ALTER TABLE shuffled DROP COLUMN gone;
         ALTER TABLE shuffled ADD COLUMN a text;
         INSERT INTO shuffled (id, b, c, a) SELECT g, g, date '2024-01-01' + g, 'a' || g FROM generate_series(1, 20) g;`,
      );
      // On the target, the same columns in another order, made before the first sync.
      await target.sql(db, `CREATE TABLE shuffled (c date, doubled int GENERATED ALWAYS AS (b * 2) STORED, a text, b int, id int PRIMARY KEY)`);
      await sync(db);
      await assertSame(db);
      await change(db, [
        `UPDATE priced SET qty = qty + 1 WHERE id <= 5;`,
        `UPDATE priced SET price = 99.99, note = NULL WHERE id = 6;`,
        `INSERT INTO priced (id, qty, price, note) VALUES (100, 3, 1.50, 'new');`,
        `DELETE FROM priced WHERE id = 7;`,
        `UPDATE priced SET id = 1008 WHERE id = 8;`,
        `UPDATE shuffled SET b = b + 1000, a = 'changed' WHERE id <= 3;`,
        `INSERT INTO shuffled (id, b, c, a) VALUES (100, 7, '2030-01-01', 'new');`,
        `UPDATE shuffled SET id = 1004, c = NULL WHERE id = 4;`,
        `DELETE FROM shuffled WHERE id = 5;`,
      ]);
      await sync(db);
      await assertSame(db);
      // compareTables compares the source's non-generated columns; the generated ones by hand.
      const priced = `SELECT id, qty, price::text, total::text, note FROM priced ORDER BY id`;
      assert.deepEqual(await rows(target, db, priced), await rows(source, db, priced));
      const shuffled = `SELECT id, a, b, c::text, doubled FROM shuffled ORDER BY id`;
      assert.deepEqual(await rows(target, db, shuffled), await rows(source, db, shuffled));
      const order = await rows<{ columns: string }>(
        target,
        db,
        `SELECT string_agg(attname, ',' ORDER BY attnum) AS columns FROM pg_attribute WHERE attrelid = 'public.shuffled'::regclass AND attnum > 0 AND NOT attisdropped`,
      );
      assert.deepEqual(order, [{ columns: 'c,doubled,a,b,id' }], 'the target table is the one made by hand');
    });

    it('applies every transaction committed before it started, also those committed with synchronous_commit = off', async () => {
      const db = await cloned('async', `CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a VALUES (1, 'cloned');`);
      // The WAL writer writes an asynchronous commit's WAL within wal_writer_delay: make that
      // long, so the commits below are still unwritten when sync starts (as they are for up to
      // 200 ms at the default, the window a cut-over script that starts sync right after the
      // last write falls into).
      await source.sql('postgres', `ALTER SYSTEM SET wal_writer_delay = '5s'`);
      await source.sql('postgres', 'SELECT pg_reload_conf()');
      await sleep(300);
      try {
        // Begin the commits near the start of a WAL page, flushed up to there: WAL that fills a
        // page wakes the WAL writer at once. A transactional logical message, committed
        // synchronously, pads the current page out.
        await source.withClient(db, async (client) => {
          await client.query('SET synchronous_commit = on');
          for (let attempt = 0; attempt < 3; attempt++) {
            const [page] = (await client.query<{ offset: number }>(`SELECT ((pg_current_wal_insert_lsn() - '0/0'::pg_lsn) % 8192)::int AS offset`)).rows;
            if (page === undefined || page.offset < 1024) break;
            await client.query(`SELECT pg_logical_emit_message(true, 'pgferry-test-padding', repeat('x', $1))`, [8192 - page.offset + 64]);
          }
        });
        await source.withClient(db, async (client) => {
          await client.query('SET synchronous_commit = off');
          await client.query(`INSERT INTO a SELECT g, 'committed asynchronously' FROM generate_series(2, 10) g`);
          await client.query(`UPDATE a SET v = 'updated asynchronously' WHERE id = 1`);
          await client.query(`DELETE FROM a WHERE id = 10`);
        });
        const [wal] = await rows<{ written: string; inserted: string; behind: boolean }>(
          source,
          db,
          `SELECT pg_current_wal_lsn()::text AS written, pg_current_wal_insert_lsn()::text AS inserted, pg_current_wal_lsn() < pg_current_wal_insert_lsn() AS behind`,
        );
        assert.equal(wal?.behind, true, `precondition: the commits are in WAL not yet written (${JSON.stringify(wal)})`);
        await sync(db);
      } finally {
        await source.sql('postgres', 'ALTER SYSTEM RESET wal_writer_delay');
        await source.sql('postgres', 'SELECT pg_reload_conf()');
      }
      await assertSame(db);
      assert.deepEqual(await rows(target, db, `SELECT count(*)::int AS n FROM a`), [{ n: 9 }]);
    });

    it('includes exactly once a transaction that was open on the source before the slot existed', async () => {
      const db = await freshDatabase(
        'open',
        `CREATE TABLE t (id int PRIMARY KEY, v text);
         CREATE TABLE seen (id int, v text);
         ALTER TABLE seen REPLICA IDENTITY FULL;
         INSERT INTO t VALUES (1, 'before'), (2, 'to be changed');
         INSERT INTO seen VALUES (1, 'before');`,
      );
      const open = new pg.Client({ connectionString: source.url(db) });
      await open.connect();
      let result: CliResult;
      try {
        await open.query('BEGIN');
        await open.query(`INSERT INTO t VALUES (3, 'open when the slot was made')`);
        await open.query(`UPDATE t SET v = 'changed by the open transaction' WHERE id = 2`);
        await open.query(`INSERT INTO seen VALUES (3, 'open when the slot was made')`);
        const running = runPgferry(syncArgs(db), {}, SYNC_TIMEOUT_MS);
        const early = await Promise.race([running.then((r) => r), sleep(1000).then(() => undefined)]);
        assert.equal(early, undefined, `sync did not wait for the open transaction:\n${early?.stderr ?? ''}`);
        await open.query('COMMIT');
        result = await running;
      } finally {
        await open.end();
      }
      assert.equal(result.code, 0, result.stderr);
      await assertSlotBehindTarget(db);
      await assertSame(db);
      assert.deepEqual(await rows(target, db, 'SELECT id, v FROM t ORDER BY id'), [
        { id: 1, v: 'before' },
        { id: 2, v: 'changed by the open transaction' },
        { id: 3, v: 'open when the slot was made' },
      ]);
      assert.deepEqual(await rows(target, db, 'SELECT id, v FROM seen ORDER BY id'), [
        { id: 1, v: 'before' },
        { id: 3, v: 'open when the slot was made' },
      ]);
      // And a later run does not bring it again.
      await change(db, [`INSERT INTO t VALUES (4, 'later')`]);
      await sync(db);
      await assertSame(db);
    });

    it('refuses tables without a primary key or replica identity, naming them and the fix, and creates nothing', async () => {
      const db = await freshDatabase(
        'keyless',
        `CREATE TABLE fine (id int PRIMARY KEY, v text);
         CREATE TABLE logbook (at timestamptz, line text);
         CREATE SCHEMA app;
         CREATE TABLE app.notes (id int NOT NULL, body text);
         CREATE UNIQUE INDEX ON app.notes (id);
         INSERT INTO fine VALUES (1, 'one');
         INSERT INTO logbook VALUES (now(), 'x');`,
      );
      const result = await runPgferry(syncArgs(db), {}, 60_000);
      assert.equal(result.code, 2, `exit code; stderr:\n${result.stderr}`);
      assert.match(result.stderr, /public\.logbook/);
      assert.match(result.stderr, /app\.notes/);
      assert.doesNotMatch(result.stderr, /public\.fine/);
      assert.match(result.stderr, /REPLICA IDENTITY FULL/);
      assert.match(result.stderr, /primary key/i);
      assert.deepEqual(await rows(target, db, `SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'pgferry'`), [{ n: 0 }], 'no pgferry schema on the target');
      assert.deepEqual(
        await rows(target, db, `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND s.nspname NOT IN ('pg_catalog', 'information_schema')`),
        [{ n: 0 }],
        'no table on the target',
      );
      assert.deepEqual(await rows(source, db, `SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1`, [`pgferry_${db}`]), [{ n: 0 }], 'no slot on the source');
      assert.deepEqual(await rows(source, db, `SELECT count(*)::int AS n FROM pg_publication`), [{ n: 0 }], 'no publication on the source');
      // The fix the message names works.
      await source.sql(db, `ALTER TABLE logbook REPLICA IDENTITY FULL; ALTER TABLE app.notes REPLICA IDENTITY USING INDEX notes_id_idx;`);
      await sync(db);
      await assertSame(db);
    });

    it('status --json reports the phase, the applied position, the lag and per-table counts', async () => {
      const db = await cloned(
        'status',
        `CREATE TABLE counted (id int PRIMARY KEY, v text);
         CREATE TABLE untouched (id int PRIMARY KEY);
         INSERT INTO counted SELECT g, 'v' || g FROM generate_series(1, 10) g;
         INSERT INTO untouched VALUES (1);`,
      );
      await change(db, [
        `INSERT INTO counted VALUES (11, 'a'), (12, 'b'), (13, 'c');`,
        `UPDATE counted SET v = 'updated' WHERE id IN (1, 2);`,
        `DELETE FROM counted WHERE id = 3;`,
      ]);
      await sync(db);
      const result = await runPgferry(['status', '--target', target.url(db), '--json']);
      assert.equal(result.code, 0, result.stderr);
      const status = JSON.parse(result.stdout) as Record<string, unknown>;
      for (const key of ['phase', 'appliedLsn', 'lagBytes', 'lagSeconds', 'tables']) assert.ok(key in status, `status has ${key}: ${result.stdout}`);
      const [state] = await rows<{ lsn: string }>(target, db, 'SELECT applied_lsn::text AS lsn FROM pgferry.sync');
      assert.equal(status.appliedLsn, state?.lsn);
      assert.equal(status.phase, 'stopped');
      assert.ok(status.lagBytes === null || typeof status.lagBytes === 'number', `lagBytes ${String(status.lagBytes)}`);
      assert.ok(status.lagSeconds === null || typeof status.lagSeconds === 'number', `lagSeconds ${String(status.lagSeconds)}`);
      const tables = status.tables as Array<{ name: string; copy: string; inserted: number; updated: number; deleted: number }>;
      const counted = tables.find((t) => t.name === 'public.counted');
      assert.ok(counted, `public.counted in ${JSON.stringify(tables)}`);
      assert.equal(counted.copy, 'copied');
      assert.deepEqual([counted.inserted, counted.updated, counted.deleted], [3, 2, 1]);
      const untouched = tables.find((t) => t.name === 'public.untouched');
      assert.ok(untouched, `public.untouched in ${JSON.stringify(tables)}`);
      assert.equal(untouched.copy, 'copied');
      assert.deepEqual([untouched.inserted, untouched.updated, untouched.deleted], [0, 0, 0]);
    });
  });
}
