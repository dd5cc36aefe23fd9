/**
 * Issue 22's measure: what an interrupted sync copy costs. A pgbench-shaped database (scale as
 * argument) is copied by `pgferry sync --until-caught-up` uninterrupted, and again killed with
 * SIGKILL once `killAt` of its planned units are copied, then started again. Printed: the time
 * to the kill, the resumed run, the uninterrupted run, and the resumed run as a share of the
 * uninterrupted one (ideally the share of the work left plus the start-up). Before issue 22 a
 * resumed sync copied everything again: its share was at least 100 %.
 *
 *   npm run build && node dist/bench/resume-copy.js [scale=50] [rounds=2] [killAt=0.8] [shape=pgbench|tables]
 *
 * `pgbench`: the pgbench tables, where pgbench_accounts is nine tenths of the bytes and split
 * into ranges; a split table interrupted half-way is copied again whole (ranges copied at two
 * snapshots don't add up), so this shape shows the limit. `tables`: the same rows spread over
 * ten accounts tables, the shape of most databases (many tables, none dominant).
 */
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import pg from 'pg';
import { createPgbenchTables, startClusters, type Cluster } from '../test/harness/index.js';

const scale = Number(process.argv[2] ?? 50);
const rounds = Number(process.argv[3] ?? 2);
const killAt = Number(process.argv[4] ?? 0.8);
const shape = process.argv[5] ?? 'pgbench';
const BIN = fileURLToPath(new URL('../../bin/pgferry.js', import.meta.url));
const SPLIT = ['--split-tables-larger-than', '32MB', '--jobs', '2'];

function pgferry(args: readonly string[]): { exited: Promise<number>; kill(): void } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err = (err + c).slice(-4000)));
  const exited = new Promise<number>((resolve) =>
    child.once('close', (code) => {
      if (code !== 0 && code !== null) process.stderr.write(err);
      resolve(code ?? 137);
    }),
  );
  return { exited, kill: () => child.kill('SIGKILL') };
}

async function freshTarget(target: Cluster, db: string): Promise<void> {
  await target.sql('postgres', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  await target.sql('postgres', `CREATE DATABASE ${db}`);
}

async function dropSlots(source: Cluster, db: string): Promise<void> {
  await source.sql(
    db,
    `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'pgferry%' AND NOT active`,
  );
}

/** Units done and planned, read on a session kept open (a new connection per look would miss the moment). */
async function unitsDone(client: pg.Client): Promise<{ done: number; total: number } | undefined> {
  try {
    const { rows } = await client.query<{ done: number; total: number }>(
      `SELECT count(*) FILTER (WHERE done)::int AS done, count(*)::int AS total FROM pgferry.copy_units`,
    );
    return rows[0];
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const [source, target] = await startClusters([{ version: 17 }, { version: 17 }]);
  try {
    const db = await source.createDatabase({ prefix: 'resume_bench' });
    if (shape === 'tables') {
      for (let i = 0; i < 10; i++)
        await source.sql(
          db,
          `CREATE TABLE accounts_${i} (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84));
           INSERT INTO accounts_${i} SELECT g, 1 + g / 100000, 0, '' FROM generate_series(1, ${scale * 10_000}) g;`,
        );
    } else {
      await createPgbenchTables(source, db, scale);
      await source.sql(db, 'ALTER TABLE pgbench_history REPLICA IDENTITY FULL');
    }
    await source.sql(db, 'VACUUM ANALYZE');
    const size = (await source.sql(db, `SELECT pg_size_pretty(pg_database_size(current_database())) AS s`)).rows[0] as { s: string };
    const args = ['sync', '--source', source.url(db), '--target', target.url(db), ...SPLIT, '--until-caught-up'];
    console.log(
      `${shape} shape, scale ${scale} (${size.s}), PostgreSQL 17 → 17, ${SPLIT.join(' ')}, killed at ${Math.round(killAt * 100)} % of units\n`,
    );
    console.log('| round | uninterrupted s | killed after s (units) | resumed run s | resumed / uninterrupted |');
    console.log('|---:|---:|---:|---:|---:|');
    for (let round = 1; round <= rounds; round++) {
      await freshTarget(target, db);
      await dropSlots(source, db);
      let started = performance.now();
      const full = pgferry(args);
      if ((await full.exited) !== 0) throw new Error('the uninterrupted sync failed');
      const fullSeconds = (performance.now() - started) / 1000;

      await freshTarget(target, db);
      await dropSlots(source, db);
      started = performance.now();
      const killed = pgferry(args);
      const watcher = new pg.Client({ connectionString: target.url(db) });
      await watcher.connect();
      let at: { done: number; total: number } | undefined;
      for (;;) {
        at = await unitsDone(watcher);
        if (at && at.total > 0 && at.done >= Math.ceil(at.total * killAt)) break;
        await new Promise((resolve) => setTimeout(resolve, 5));
        if (performance.now() - started > 600_000) throw new Error('the copy never got to the kill point');
      }
      killed.kill();
      await killed.exited;
      await watcher.end();
      const killedSeconds = (performance.now() - started) / 1000;
      started = performance.now();
      const resumed = pgferry(args);
      if ((await resumed.exited) !== 0) throw new Error('the resumed sync failed');
      const resumedSeconds = (performance.now() - started) / 1000;
      console.log(
        `| ${round} | ${fullSeconds.toFixed(1)} | ${killedSeconds.toFixed(1)} (${at.done}/${at.total}) | ${resumedSeconds.toFixed(1)} | ${Math.round((100 * resumedSeconds) / fullSeconds)} % |`,
      );
    }
  } finally {
    await Promise.all([source.stop(), target.stop()]);
  }
}

await main();
