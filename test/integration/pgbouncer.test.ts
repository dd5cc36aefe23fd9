/**
 * The cut-over through PgBouncer (issue 18), on real servers with Debian's PgBouncer in
 * transaction pooling in front of the source and pgbench running through it at a steady rate:
 * no client sees an error, every transaction pgbench counted is on the target, and the ones after
 * the cut-over land there. And the ways it must fail: a transaction that outlives
 * --drain-timeout, a fence that never arrives, a pause past --max-pause, a file pgferry cannot
 * replace, a wrong admin password; each leaves PgBouncer resumed on the source. And the switch
 * itself (issue 33), against a real PgBouncer: two pooled databases moved by one pause, an undo
 * that leaves both on the source, and a file edited during a cut-over left as it is.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { resolveConnection } from '../../src/config/index.js';
import type { CutoverReport } from '../../src/cutover/index.js';
import { createLogger } from '../../src/log/index.js';
import { PoolSwitch, type PoolMove } from '../../src/pgbouncer/index.js';
import {
  PGBENCH,
  pgbenchThroughPool,
  servedBy,
  runPgferry,
  spawnPgferry,
  startPgbouncer,
  stopSync,
  useClusterPair,
  waitUntilStreaming,
  type Bouncer,
  type Cluster,
  type PgferryProcess,
} from '../harness/index.js';

const run = promisify(execFile);
const APP = { user: 'app', password: 'app-secret-1' };

/** A pgbench database on the source, the application's role on both sides, sync streaming, PgBouncer in front of the source. */
async function underWay(
  source: Cluster,
  target: Cluster,
  prefix: string,
): Promise<{ db: string; args: string[]; sync: PgferryProcess; bouncer: Bouncer }> {
  for (const cluster of [source, target]) {
    await cluster.sql(
      'postgres',
      `DO $$BEGIN CREATE ROLE ${APP.user} LOGIN PASSWORD '${APP.password}'; EXCEPTION WHEN duplicate_object THEN NULL; END$$`,
    );
  }
  const db = await source.createDatabase({ prefix });
  await target.sql('postgres', `CREATE DATABASE ${db}`);
  await run(PGBENCH, ['-i', '-q', '-s', '1', '-h', source.host, '-p', String(source.port), '-U', source.superuser, db], {
    env: { ...process.env, PGPASSWORD: source.password },
  });
  await source.sql(
    db,
    `ALTER TABLE pgbench_history REPLICA IDENTITY FULL;
     GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${APP.user};`,
  );
  const args = ['--source', source.url(db), '--target', target.url(db)];
  const sync = spawnPgferry(['sync', ...args]);
  await waitUntilStreaming(target, db, sync);
  const bouncer = await startPgbouncer(source, db, { users: { [APP.user]: APP.password } });
  return { db, args, sync, bouncer };
}

function pool(bouncer: Bouncer): string[] {
  return ['--pgbouncer', bouncer.adminUrl, '--pgbouncer-ini', bouncer.ini];
}

/** Where the pooled database's connections go now, as PgBouncer shows it. */
async function poolPort(bouncer: Bouncer, db: string): Promise<{ port: number; paused: number }> {
  const row = (await bouncer.admin<{ name: string; port: number; paused: number }>('SHOW DATABASES')).find((d) => d.name === db)!;
  return { port: Number(row.port), paused: Number(row.paused) };
}

async function sourceFrozen(source: Cluster, db: string): Promise<boolean> {
  const { rows } = await source.sql(
    'postgres',
    `SELECT EXISTS (SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase CROSS JOIN unnest(s.setconfig) c
                     WHERE d.datname = $1 AND c = 'default_transaction_read_only=on') AS frozen`,
    [db],
  );
  return (rows[0] as { frozen: boolean }).frozen;
}

describe('cut-over through PgBouncer, 17 → 18', () => {
  const pair = useClusterPair(17, 18);

  it('pgbench through the pool sees no error; every transaction it counted is on the target, and the pool points there', async () => {
    const { db, args, sync, bouncer } = await underWay(pair.source, pair.target, 'bouncer');
    let returning: PgferryProcess | undefined;
    try {
      const bench = pgbenchThroughPool(bouncer, db, APP, { seconds: 10, rate: 150 });
      await new Promise((resolve) => setTimeout(resolve, 3000));
      const cut = await runPgferry(['cutover', ...args, ...pool(bouncer), '--json'], {}, 120_000);
      assert.equal(cut.code, 0, `${cut.stderr}\n${bouncer.log().slice(-3000)}`);
      const report = JSON.parse(cut.stdout) as CutoverReport;
      const { stdout } = await bench;
      assert.match(stdout, /number of failed transactions: 0 /);
      assert.doesNotMatch(stdout, /aborted/i);
      const processed = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1]);
      assert.ok(processed > 0, stdout);
      const onTarget = (await pair.target.sql(db, `SELECT count(*)::int AS n FROM pgbench_history`)).rows[0].n as number;
      assert.equal(onTarget, processed, 'every transaction pgbench counted is on the target');
      const onSource = (await pair.source.sql(db, `SELECT count(*)::int AS n FROM pgbench_history`)).rows[0].n as number;
      assert.ok(onSource < processed, 'transactions after the cut-over went to the target');

      assert.equal(report.pgbouncer?.database, db);
      assert.match(report.pgbouncer?.pointsTo ?? '', new RegExp(`:${pair.target.port}/${db}$`));
      assert.deepEqual(await poolPort(bouncer, db), { port: pair.target.port, paused: 0 });
      assert.equal(await servedBy(bouncer, db, APP), pair.target.port);
      assert.equal(await sync.exited(), 0, sync.output());

      // The way back through the same pool: the return must resume clients only once the old
      // primary, frozen since the first cut-over, takes writes again.
      const back = ['--source', pair.target.url(db), '--target', pair.source.url(db)];
      returning = spawnPgferry(['sync', ...back]);
      await waitUntilStreaming(pair.source, db, returning);
      const again = pgbenchThroughPool(bouncer, db, APP, { seconds: 8, rate: 150 });
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const cutBack = await runPgferry(['cutover', ...back, ...pool(bouncer), '--json'], {}, 120_000);
      assert.equal(cutBack.code, 0, `${cutBack.stderr}\n${bouncer.log().slice(-3000)}`);
      const returnReport = JSON.parse(cutBack.stdout) as CutoverReport;
      assert.equal(returnReport.targetFreezesLifted, 1);
      // A client resumed onto the still-frozen old primary would fail (bench/pgbouncer.ts saw it 2 rounds in 5 before).
      const order = returnReport.steps.map((step) => step.step);
      assert.ok(order.includes('unfreeze target') && order.indexOf('unfreeze target') < order.indexOf('resume'), order.join(', '));
      const { stdout: returned } = await again;
      assert.match(returned, /number of failed transactions: 0 /);
      assert.doesNotMatch(returned, /aborted/i);
      const total = processed + Number(/number of transactions actually processed: (\d+)/.exec(returned)?.[1]);
      assert.equal((await pair.source.sql(db, `SELECT count(*)::int AS n FROM pgbench_history`)).rows[0].n, total);
      assert.equal(await servedBy(bouncer, db, APP), pair.source.port);
    } finally {
      await stopSync(sync);
      if (returning) await stopSync(returning);
      await bouncer.stop();
    }
  });

  it('a transaction that outlives --drain-timeout calls the pause off: PgBouncer resumed on the source, nothing frozen', async () => {
    const { db, args, sync, bouncer } = await underWay(pair.source, pair.target, 'bholds');
    const holder = new pg.Client({ host: '127.0.0.1', port: bouncer.port, database: db, user: APP.user, password: APP.password });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT count(*) FROM pgbench_accounts');
      const cut = await runPgferry(['cutover', ...args, ...pool(bouncer), '--drain-timeout', '1.5'], {}, 60_000);
      assert.equal(cut.code, 1, cut.stderr);
      assert.match(cut.stderr, /cut-over failed at the pause step: pgbouncer: PAUSE \S+ waited 1\.5 s/);
      assert.match(cut.stderr, /PgBouncer is resumed, pointing at the source/);
      await holder.query('COMMIT');
      assert.deepEqual(await poolPort(bouncer, db), { port: pair.source.port, paused: 0 });
      assert.equal(await servedBy(bouncer, db, APP), pair.source.port);
      assert.equal(await sourceFrozen(pair.source, db), false);
    } finally {
      await holder.end().catch(() => undefined);
      await stopSync(sync);
      await bouncer.stop();
    }
  });

  it('a fence that never arrives, and a pause past --max-pause, undo the cut-over: resumed on the source, freeze lifted', async () => {
    const { db, args, sync, bouncer } = await underWay(pair.source, pair.target, 'bfence');
    try {
      sync.child.kill('SIGSTOP');
      // The fence and the pause are what is tried here: with the default --verify changes, a stopped
      // sync would already fail the cut-over before the pause, by not starting to record.
      const fence = await runPgferry(['cutover', ...args, ...pool(bouncer), '--fence-timeout', '1', '--verify', 'counts'], {}, 60_000);
      assert.equal(fence.code, 1, fence.stderr);
      assert.match(fence.stderr, /failed at the fence step: .*PgBouncer is resumed, pointing at the source/);
      assert.deepEqual(await poolPort(bouncer, db), { port: pair.source.port, paused: 0 });
      assert.equal(await sourceFrozen(pair.source, db), false);

      const limited = await runPgferry(
        ['cutover', ...args, ...pool(bouncer), '--fence-timeout', '30', '--max-pause', '0.8', '--verify', 'counts'],
        {},
        60_000,
      );
      assert.equal(limited.code, 1, limited.stderr);
      assert.match(
        limited.stderr,
        /clients had waited 0\.8 s in PgBouncer's pause of "\S+" \(--max-pause\) at the fence step.*PgBouncer is resumed, pointing at the source/,
      );
      assert.deepEqual(await poolPort(bouncer, db), { port: pair.source.port, paused: 0 });
      assert.equal(await servedBy(bouncer, db, APP), pair.source.port);
      assert.equal(await sourceFrozen(pair.source, db), false);
    } finally {
      sync.child.kill('SIGCONT');
      await stopSync(sync);
      await bouncer.stop();
    }
  });

  it('SIGKILLed while the pool is paused, the cut-over leaves it resumed by its watchdog', async () => {
    const { db, args, sync, bouncer } = await underWay(pair.source, pair.target, 'bkill');
    // A transaction straight on the source, begun before the freeze, holds the drain.
    const holder = new pg.Client({ connectionString: pair.source.url(db) });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT count(*) FROM pgbench_accounts`);
      const cut = spawnPgferry(['cutover', ...args, ...pool(bouncer), '--drain-timeout', '60', '--max-pause', '60']);
      const deadline = Date.now() + 60_000;
      while (!cut.output().includes('draining sessions')) {
        assert.ok(Date.now() < deadline && cut.child.exitCode === null, cut.output());
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.equal((await poolPort(bouncer, db)).paused, 1);
      cut.child.kill('SIGKILL');
      await cut.exited();
      const resumedBy = Date.now() + 30_000;
      while ((await poolPort(bouncer, db)).paused !== 0) {
        assert.ok(Date.now() < resumedBy, `the pool stayed paused:\n${bouncer.log().slice(-2000)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(await servedBy(bouncer, db, APP), pair.source.port);
    } finally {
      await holder.end().catch(() => undefined);
      await stopSync(sync);
      await runPgferry(['cleanup', ...args, '--unfreeze-source', '--force']);
      await bouncer.stop();
    }
  });

  it('a file it cannot replace, and a wrong admin password, are refused before anything is paused or frozen', async () => {
    const { db, args, sync, bouncer } = await underWay(pair.source, pair.target, 'brefuse');
    try {
      const wrong = bouncer.adminUrl.replace(/:[^:@/]+@/, ':not-the-password@');
      const denied = await runPgferry(['cutover', ...args, '--pgbouncer', wrong, '--pgbouncer-ini', bouncer.ini], {}, 60_000);
      assert.equal(denied.code, 2, denied.stderr);
      assert.match(denied.stderr, /pgbouncer: cannot log in to the admin console: .*authentication failed/);
      assert.doesNotMatch(denied.stderr + denied.stdout, /not-the-password/);

      const ready = await runPgferry(['check', ...args, ...pool(bouncer), '--json'], {}, 60_000);
      const findings = (JSON.parse(ready.stdout) as { findings: Array<{ id: string; severity: string; message: string }> }).findings;
      assert.deepEqual(
        findings.filter((f) => f.id.startsWith('pgbouncer.')).map((f) => [f.id, f.severity]),
        [['pgbouncer.pool-mode', 'info']],
      );

      mkdirSync(`${bouncer.ini}.pgferry-new`);
      const blocked = await runPgferry(['check', ...args, ...pool(bouncer), '--json'], {}, 60_000);
      assert.equal(blocked.code, 3, blocked.stderr);
      const unusable = (JSON.parse(blocked.stdout) as { findings: Array<{ id: string; message: string }> }).findings.find(
        (f) => f.id === 'pgbouncer.unusable',
      );
      assert.match(unusable?.message ?? '', /cannot replace \S+pgbouncer\.ini/);
      const unwritable = await runPgferry(['cutover', ...args, ...pool(bouncer)], {}, 60_000);
      assert.equal(unwritable.code, 2, unwritable.stderr);
      assert.match(unwritable.stderr, /pgbouncer: cannot replace \S+pgbouncer\.ini: /);

      assert.deepEqual(await poolPort(bouncer, db), { port: pair.source.port, paused: 0 });
      assert.equal(await sourceFrozen(pair.source, db), false);
      assert.equal(sync.child.exitCode, null, 'sync keeps running');
    } finally {
      await stopSync(sync);
      await bouncer.stop();
    }
  });

  describe('the switch, several pooled databases at once', () => {
    const silent = createLogger({ level: 'silent' });

    /** Two databases on both servers, PgBouncer pooling both in front of the source, and the moves between them. */
    async function twoPooled(): Promise<{ dbs: string[]; bouncer: Bouncer; moves: PoolMove[] }> {
      for (const cluster of [pair.source, pair.target]) {
        await cluster.sql(
          'postgres',
          `DO $$BEGIN CREATE ROLE ${APP.user} LOGIN PASSWORD '${APP.password}'; EXCEPTION WHEN duplicate_object THEN NULL; END$$`,
        );
      }
      const dbs = [await pair.source.createDatabase({ prefix: 'bpair' }), await pair.source.createDatabase({ prefix: 'bpair' })];
      for (const db of dbs) await pair.target.sql('postgres', `CREATE DATABASE ${db}`);
      const bouncer = await startPgbouncer(pair.source, dbs, { users: { [APP.user]: APP.password } });
      const moves = await Promise.all(
        dbs.map(async (db) => ({
          source: await resolveConnection('source', pair.source.url(db), {}),
          target: await resolveConnection('target', pair.target.url(db), {}),
        })),
      );
      return { dbs, bouncer, moves };
    }

    async function servedThrough(bouncer: Bouncer, db: string): Promise<number> {
      return servedBy(bouncer, db, APP);
    }

    it('one pause moves both; an undo leaves both on the source, resumed, the file as it was', async () => {
      const { dbs, bouncer, moves } = await twoPooled();
      const original = readFileSync(bouncer.ini, 'utf8');
      try {
        const undone = await PoolSwitch.prepare({ admin: bouncer.adminUrl, ini: bouncer.ini, maxPauseMs: 5000 }, moves);
        try {
          assert.equal(undone.name, dbs.join(', '));
          await undone.pause(5000, silent);
          // (Pointed at the target already, or about to be: the switch reloads as soon as all are paused.)
          for (const db of dbs) assert.equal((await poolPort(bouncer, db)).paused, 1);
          await undone.repoint();
          for (const db of dbs) assert.deepEqual(await poolPort(bouncer, db), { port: pair.target.port, paused: 1 });
          assert.equal(await undone.undo(silent), undefined);
        } finally {
          await undone.close();
        }
        for (const db of dbs) {
          assert.deepEqual(await poolPort(bouncer, db), { port: pair.source.port, paused: 0 });
          assert.equal(await servedThrough(bouncer, db), pair.source.port);
        }
        assert.equal(readFileSync(bouncer.ini, 'utf8'), original);

        const moving = await PoolSwitch.prepare({ admin: bouncer.adminUrl, ini: bouncer.ini, maxPauseMs: 5000 }, moves);
        try {
          await moving.pause(5000, silent);
          // A client of each arriving in the pause waits, and goes on against the target.
          const waiting = dbs.map((db) => servedThrough(bouncer, db));
          await moving.repoint();
          const report = await moving.resume();
          assert.deepEqual(await Promise.all(waiting), [pair.target.port, pair.target.port]);
          assert.deepEqual(
            report.pools,
            dbs.map((db) => ({ database: db, pointsTo: `${pair.target.host}:${pair.target.port}/${db}` })),
          );
        } finally {
          await moving.close();
        }
        for (const db of dbs) {
          assert.deepEqual(await poolPort(bouncer, db), { port: pair.target.port, paused: 0 });
          assert.equal(await servedThrough(bouncer, db), pair.target.port);
        }
        assert.equal(readFileSync(`${bouncer.ini}.pgferry-previous`, 'utf8'), original);
      } finally {
        await bouncer.stop();
      }
    });

    it('a RESUME refused for one pool while the other resumes: the switch stands, and names the pool left paused', async () => {
      const { dbs, bouncer, moves } = await twoPooled();
      try {
        const moving = await PoolSwitch.prepare({ admin: bouncer.adminUrl, ini: bouncer.ini, maxPauseMs: 5000 }, moves);
        try {
          await moving.pause(5000, silent);
          await moving.repoint();
          // The first pooled database is taken out of PgBouncer meanwhile: its RESUME is refused, the second's accepted.
          const ini = readFileSync(bouncer.ini, 'utf8');
          writeFileSync(
            bouncer.ini,
            ini
              .split('\n')
              .filter((line) => !line.startsWith(`${dbs[0]!} `) && !line.startsWith(`${dbs[0]!}=`))
              .join('\n'),
          );
          await bouncer.admin('RELOAD');
          const report = await moving.resume();
          assert.deepEqual(report.unresumed, [dbs[0]!]);
        } finally {
          await moving.close();
        }
        // Nothing was put back: the second serves from the target, resumed.
        assert.deepEqual(await poolPort(bouncer, dbs[1]!), { port: pair.target.port, paused: 0 });
      } finally {
        await bouncer.stop();
      }
    });

    it('clients resumed are served at once, also where min_pool_size logins were cut short by the pause', async () => {
      const db = await pair.source.createDatabase({ prefix: 'bretry' });
      await pair.target.sql('postgres', `CREATE DATABASE ${db}`);
      for (const cluster of [pair.source, pair.target]) {
        await cluster.sql(
          'postgres',
          `DO $$BEGIN CREATE ROLE ${APP.user} LOGIN PASSWORD '${APP.password}'; EXCEPTION WHEN duplicate_object THEN NULL; END$$`,
        );
      }
      // A login PgBouncer opens for min_pool_size during the pause is closed by it, which marks the
      // pool as failing to connect: resumed, it would open nothing for server_login_retry (60 s here).
      const bouncer = await startPgbouncer(pair.source, db, {
        users: { [APP.user]: APP.password },
        settings: { min_pool_size: '2', server_login_retry: '60' },
      });
      const client = new pg.Client({ host: '127.0.0.1', port: bouncer.port, database: db, user: APP.user, password: APP.password });
      await client.connect();
      try {
        await client.query('SELECT 1');
        const move = {
          source: await resolveConnection('source', pair.source.url(db), {}),
          target: await resolveConnection('target', pair.target.url(db), {}),
        };
        const pool = await PoolSwitch.prepare({ admin: bouncer.adminUrl, ini: bouncer.ini, maxPauseMs: 10_000 }, [move]);
        let served: Promise<number | 'still waiting'>;
        try {
          await pool.pause(10_000, silent);
          const query = client.query<{ port: number }>(`SELECT current_setting('port')::int AS port`).then((r) => Number(r.rows[0]!.port));
          // The freeze, long enough for PgBouncer's janitor (three rounds a second) to try its logins.
          await new Promise((resolve) => setTimeout(resolve, 1500));
          await pool.repoint();
          await pool.resume();
          served = Promise.race([query, new Promise<'still waiting'>((resolve) => setTimeout(() => resolve('still waiting'), 20_000))]);
        } finally {
          await pool.close();
        }
        assert.equal(
          await served,
          pair.target.port,
          'the client was still waiting 20 s after RESUME (PgBouncer held its logins for server_login_retry)',
        );
        const retry = (await bouncer.admin<{ key: string; value: string }>('SHOW CONFIG')).find((r) => r.key === 'server_login_retry');
        assert.equal(retry?.value, '60', 'server_login_retry is put back');
      } finally {
        await client.end().catch(() => undefined);
        await bouncer.stop();
      }
    });

    it('a file edited after the switch is prepared, or while it pauses, is left as it is: resumed on the source', async () => {
      const { dbs, bouncer, moves } = await twoPooled();
      try {
        const pool = await PoolSwitch.prepare({ admin: bouncer.adminUrl, ini: bouncer.ini, maxPauseMs: 5000 }, moves);
        // The operator's edit while the cut-over verifies ahead of the freeze.
        appendFileSync(bouncer.ini, '; an operator was here\n');
        const edited = readFileSync(bouncer.ini, 'utf8');
        try {
          await assert.rejects(pool.pause(5000, silent), /pgbouncer\.ini changed since the cut-over began; nothing is paused/);
        } finally {
          assert.equal(await pool.undo(silent), undefined);
          await pool.close();
        }
        assert.equal(readFileSync(bouncer.ini, 'utf8'), edited);
        for (const db of dbs) assert.deepEqual(await poolPort(bouncer, db), { port: pair.source.port, paused: 0 });

        // Edited while the PAUSE waits for a transaction: the staged file is not renamed over the
        // edit; the undo resumes both on the source.
        const again = await PoolSwitch.prepare({ admin: bouncer.adminUrl, ini: bouncer.ini, maxPauseMs: 5000 }, moves);
        const holder = new pg.Client({ host: '127.0.0.1', port: bouncer.port, database: dbs[0], user: APP.user, password: APP.password });
        await holder.connect();
        try {
          await holder.query('BEGIN');
          await holder.query('SELECT 1');
          const pausing = again.pause(10_000, silent);
          const deadline = Date.now() + 10_000;
          while (!existsSync(`${bouncer.ini}.pgferry-new`)) {
            assert.ok(Date.now() < deadline, 'the new file was never staged');
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
          appendFileSync(bouncer.ini, '; and again\n');
          await holder.query('COMMIT');
          await pausing;
          await assert.rejects(again.repoint(), /pgbouncer\.ini changed during the cut-over; it is left as it is/);
          assert.equal(await again.undo(silent), undefined);
        } finally {
          await holder.end().catch(() => undefined);
          await again.close();
        }
        assert.equal(readFileSync(bouncer.ini, 'utf8'), `${edited}; and again\n`);
        assert.equal(existsSync(`${bouncer.ini}.pgferry-new`), false);
        for (const db of dbs) {
          assert.deepEqual(await poolPort(bouncer, db), { port: pair.source.port, paused: 0 });
          assert.equal(await servedThrough(bouncer, db), pair.source.port);
        }
      } finally {
        await bouncer.stop();
      }
    });
  });
});
