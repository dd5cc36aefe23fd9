/**
 * `--target-setup-sql FILE` (issue 20, for Citus and the like): an ordinary SQL file runs on the
 * target after the tables exist and before any row is copied, in one transaction; a file that
 * fails or can't be read stops the command with one message naming it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runPgferry, useClusterPair } from '../harness/index.js';

describe('--target-setup-sql, 17 → 18', () => {
  const pair = useClusterPair(17, 18);
  const dir = mkdtempSync(join(tmpdir(), 'pgferry-setup-'));

  it('runs after pre-data and before the copy, for sync as for clone', async () => {
    const db = await pair.source.createDatabase({ prefix: 'setup' });
    await pair.target.sql('postgres', `CREATE DATABASE ${db}`);
    await pair.source.sql(
      db,
      `CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 5000) g`,
    );
    const file = join(dir, 'setup.sql');
    // What a Citus coordinator would get (create_distributed_table), as plain SQL that records when it ran.
    writeFileSync(
      file,
      `CREATE TABLE setup_log AS
         SELECT (SELECT count(*) FROM items)::int AS rows_then,
                (SELECT count(*) FROM pg_class WHERE relname = 'items')::int AS tables_then;
       ALTER TABLE items SET (fillfactor = 70);\n`,
    );
    const synced = await runPgferry(
      ['sync', '--until-caught-up', '--source', pair.source.url(db), '--target', pair.target.url(db), '--target-setup-sql', file],
      {},
      120_000,
    );
    assert.equal(synced.code, 0, synced.stderr);
    assert.deepEqual((await pair.target.sql(db, `SELECT rows_then, tables_then FROM setup_log`)).rows, [{ rows_then: 0, tables_then: 1 }]);
    assert.deepEqual((await pair.target.sql(db, `SELECT count(*)::int AS n FROM items`)).rows, [{ n: 5000 }]);
    assert.deepEqual((await pair.target.sql(db, `SELECT reloptions FROM pg_class WHERE relname = 'items'`)).rows, [
      { reloptions: ['fillfactor=70'] },
    ]);
    await runPgferry(['cleanup', '--source', pair.source.url(db), '--target', pair.target.url(db)]);
  });

  it('stops with the file named when it fails, and when it cannot be read', async () => {
    const db = await pair.source.createDatabase({ prefix: 'setupbad' });
    await pair.target.sql('postgres', `CREATE DATABASE ${db}`);
    await pair.source.sql(db, `CREATE TABLE items (id int PRIMARY KEY)`);
    const file = join(dir, 'broken.sql');
    writeFileSync(file, `CREATE TABLE half_done (id int); SELECT no_such_function();\n`);
    const args = ['clone', '--source', pair.source.url(db), '--target', pair.target.url(db)];
    const failed = await runPgferry([...args, '--target-setup-sql', file]);
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(
      failed.stderr,
      new RegExp(`target: ${file.replace(/[.]/g, '\\.')} failed: function no_such_function\\(\\) does not exist — fix`),
    );
    assert.deepEqual(
      (await pair.target.sql(db, `SELECT to_regclass('half_done') IS NULL AS gone`)).rows,
      [{ gone: true }],
      'the file ran half',
    );
    const missing = await runPgferry([...args, '--target-setup-sql', join(dir, 'nowhere.sql')]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /--target-setup-sql .*nowhere\.sql cannot be read: .*ENOENT.* — give the path of a readable SQL file/);
  });
});
