/**
 * Secrets and trust (review E1, E2): a password given on the command line is not in the
 * process list while sync runs; what pgferry reads back from the target's `pgferry` schema never
 * becomes SQL on the source, however it was changed.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import pg from 'pg';
import { ensureCutoverState } from '../../src/state/index.js';
import { runPgferry, spawnPgferry, stopSync, waitUntilStreaming } from '../harness/index.js';
import { useSyncPair } from '../harness/sync-fixture.js';

describe('secrets and trust, 17 → 18', () => {
  const pair = useSyncPair(17, 18);

  it('keeps the passwords of --source and --target out of the process list of a running sync', async () => {
    const db = await pair.cloned('argv', `CREATE TABLE t (id int PRIMARY KEY)`);
    const sync = spawnPgferry(['sync', '--source', pair.source.url(db), '--target', pair.target.url(db)]);
    try {
      await waitUntilStreaming(pair.target, db, sync);
      const shown = readFileSync(`/proc/${sync.child.pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      assert.ok(shown.includes('sync') && shown.includes('--source'), `the process list still says what runs: ${shown}`);
      for (const password of [pair.source.password, pair.target.password])
        assert.ok(!shown.includes(password), `the process list shows a password: ${shown}`);
    } finally {
      await stopSync(sync);
    }
  });

  it('does not run SQL smuggled into a recorded freeze: cleanup --unfreeze-source refuses it and grants nothing', async () => {
    const role = `app_${process.pid}`;
    const db = await pair.cloned('tamperfreeze', `CREATE TABLE t (id int PRIMARY KEY); CREATE ROLE ${role} LOGIN`);
    await pair.target.withClient(db, (client: pg.Client) => ensureCutoverState(client));
    const injected = [{ role, kind: 'table', object: `public.t TO ${role}; ALTER ROLE ${role} SUPERUSER; --`, privileges: ['INSERT'] }];
    await pair.target.sql(
      db,
      `INSERT INTO pgferry.cutover (freeze_mode, source_database, revoked, frozen) VALUES ('revoke', $1, $2::jsonb, true)`,
      [db, JSON.stringify(injected)],
    );
    const cleanup = await runPgferry(
      ['cleanup', '--unfreeze-source', '--source', pair.source.url(db), '--target', pair.target.url(db)],
      {},
      60_000,
    );
    assert.notEqual(cleanup.code, 0, cleanup.stdout);
    assert.match(cleanup.stderr, /no freeze revokes, or objects the source does not have/);
    const [superuser] = (await pair.source.sql('postgres', `SELECT rolsuper FROM pg_roles WHERE rolname = $1`, [role])).rows as Array<{
      rolsuper: boolean;
    }>;
    assert.equal(superuser?.rolsuper, false, 'the smuggled ALTER ROLE ran on the source');
  });

  it('does not run SQL smuggled into the stored copy plan: clone --resume refuses it', async () => {
    const db = await pair.freshDatabase(
      'tamperplan',
      `CREATE TABLE big (id int PRIMARY KEY, pad text); INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 100000) g;`,
    );
    const args = ['clone', '--source', pair.source.url(db), '--target', pair.target.url(db), '--split-tables-larger-than', '1MB'];
    const first = await runPgferry(args, {}, 60_000);
    assert.equal(first.code, 0, first.stderr);
    await pair.target.sql(
      db,
      `UPDATE pgferry.clone SET finished_at = NULL;
       UPDATE pgferry.copy_units SET done = false, predicate = predicate || ') TO STDOUT; CREATE TABLE public.pwned (x int); COPY (SELECT 1'
        WHERE unit = (SELECT min(unit) FROM pgferry.copy_units WHERE predicate IS NOT NULL)`,
    );
    const resumed = await runPgferry([...args, '--resume'], {}, 60_000);
    assert.notEqual(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /range pgferry never writes/);
    const [made] = (await pair.source.sql(db, `SELECT to_regclass('public.pwned') IS NOT NULL AS made`)).rows as Array<{ made: boolean }>;
    assert.equal(made?.made, false, 'the smuggled CREATE TABLE ran on the source');
  });
});
