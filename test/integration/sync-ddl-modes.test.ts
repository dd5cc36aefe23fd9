/**
 * The two other ways schema changes meet sync (issue 16): a source role that may not create
 * event triggers (a managed service's), where sync follows only the columns a table gains at
 * its end and stops, naming the change, on anything else; and --ddl stop, which stops before
 * the first captured change and lets --ddl apply carry it afterwards.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runPgferry, spawnPgferry, stopSync } from '../harness/index.js';
import { useSyncPair } from '../harness/sync-fixture.js';

describe('schema changes without event triggers, and --ddl stop, 16 → 17', () => {
  const pair = useSyncPair(16, 17);

  it('without the privilege, adds a column appended at the end and stops on a rename, naming it', async () => {
    const db = await pair.freshDatabase('noet', `CREATE TABLE t (id int PRIMARY KEY, a text); INSERT INTO t VALUES (1, 'a')`);
    const role = 'noet_mig';
    for (const cluster of [pair.source, pair.target]) {
      await cluster.sql(
        'postgres',
        `DO $$BEGIN CREATE ROLE ${role} LOGIN REPLICATION PASSWORD 'noet-pass'; EXCEPTION WHEN duplicate_object THEN NULL; END$$`,
      );
      await cluster.sql('postgres', `GRANT CREATE ON DATABASE ${db} TO ${role}`);
      await cluster.sql(db, `GRANT CREATE ON SCHEMA public TO ${role}`);
    }
    await pair.target.sql('postgres', `GRANT SET ON PARAMETER session_replication_role TO ${role}`);
    await pair.source.sql(db, `ALTER TABLE t OWNER TO ${role}`);
    const as = (cluster: typeof pair.source) => cluster.url(db, { user: role, password: 'noet-pass' });
    const args = ['--source', as(pair.source), '--target', as(pair.target)];

    const checked = await runPgferry(['check', '--json', ...args], {}, 60_000);
    const findings = (JSON.parse(checked.stdout) as { findings: Array<{ id: string; message: string }> }).findings;
    const mode = findings.find((f) => f.id === 'schema-changes.mode');
    assert.ok(mode, `check says how schema changes are followed: ${checked.stdout}`);
    assert.match(mode.message, /may not create event triggers/);

    const first = await runPgferry(['sync', '--until-caught-up', ...args], {}, 120_000);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /may not create event triggers/);
    await pair.change(db, [`ALTER TABLE t ADD COLUMN b int`, `INSERT INTO t VALUES (2, 'b', 2)`]);
    const added = await runPgferry(['sync', '--until-caught-up', ...args], {}, 120_000);
    assert.equal(added.code, 0, added.stderr);
    await pair.assertSame(db);

    // A table made while no capture runs can't join the stream: it is named.
    await pair.change(db, [`CREATE TABLE later (id int PRIMARY KEY)`, `INSERT INTO later VALUES (1)`]);
    const watching = spawnPgferry(['sync', ...args]);
    try {
      const deadline = Date.now() + 30_000;
      while (!/"tables":\["public\.later"\][^\n]*while no schema-change capture ran are not streamed/.test(watching.output())) {
        assert.ok(
          watching.child.exitCode === null && Date.now() < deadline,
          `sync never named the table:\n${watching.output().slice(-3000)}`,
        );
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    } finally {
      await stopSync(watching);
    }
    await pair.source.sql(db, `DROP TABLE later`);

    await pair.change(db, [`ALTER TABLE t RENAME COLUMN a TO renamed`, `INSERT INTO t VALUES (3, 'c', 3)`]);
    const renamed = await runPgferry(['sync', '--until-caught-up', ...args], {}, 120_000);
    assert.notEqual(renamed.code, 0, 'a rename is not followed without the capture');
    assert.match(renamed.stderr, /table public\.t changed on the source \("renamed" not on the target, a column renamed or dropped\)/);
    assert.match(renamed.stderr, /event trigger/);
  });

  it('a change inside a DO block that the rebuild cannot reproduce stops sync, named; --skip-ddl-at goes on once it is made by hand', async () => {
    const db = await pair.cloned('ddlskip', `CREATE TABLE c (id int PRIMARY KEY, v text)`);
    await pair.change(db, [
      `INSERT INTO c VALUES (1, 'before')`,
      `DO $$ BEGIN COMMENT ON TABLE c IS 'made in a DO block'; END $$`,
      `INSERT INTO c VALUES (2, 'after')`,
    ]);
    const stopped = await runPgferry(pair.syncArgs(db), {}, 120_000);
    assert.notEqual(stopped.code, 0);
    const named =
      /schema change COMMENT in transaction \d+ at ([0-9A-F]+\/[0-9A-F]+) ran inside another statement and can't be rebuilt \(COMMENT run inside another statement is not rebuilt from the catalog\)/.exec(
        stopped.stderr,
      );
    assert.ok(named, stopped.stderr);
    assert.match(stopped.stderr, new RegExp(`run sync with --skip-ddl-at ${named[1]!.replace('/', '\\/')}`));
    assert.deepEqual(
      (await pair.target.sql(db, `SELECT count(*)::int AS n FROM c`)).rows,
      [{ n: 1 }],
      'everything before the change was applied',
    );
    await pair.target.sql(db, `COMMENT ON TABLE c IS 'made in a DO block'`);
    await pair.sync(db, ['--skip-ddl-at', named[1]!]);
    await pair.assertSame(db);
  });

  it('--ddl stop stops before the first schema change, and --ddl apply carries it after', async () => {
    const db = await pair.cloned('ddlstop', `CREATE TABLE s (id int PRIMARY KEY, v text); INSERT INTO s VALUES (1, 'x')`);
    await pair.change(db, [
      `INSERT INTO s VALUES (2, 'before')`,
      `ALTER TABLE s ADD COLUMN w int DEFAULT 4`,
      `INSERT INTO s VALUES (3, 'after', 5)`,
    ]);
    const stopped = await runPgferry(pair.syncArgs(db, ['--ddl', 'stop']), {}, 120_000);
    assert.notEqual(stopped.code, 0);
    assert.match(
      stopped.stderr,
      /schema change ALTER TABLE in transaction \d+ at [0-9A-F]+\/[0-9A-F]+, and sync runs with --ddl stop: ALTER TABLE s ADD COLUMN w int DEFAULT 4/,
    );
    const { rows } = await pair.target.sql(db, `SELECT count(*)::int AS n FROM s`);
    assert.deepEqual(rows[0], { n: 2 }, 'the row before the change was applied, nothing after it');
    await pair.sync(db, ['--ddl', 'apply']);
    await pair.assertSame(db);
  });
});
