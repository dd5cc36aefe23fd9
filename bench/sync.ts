/**
 * Change streaming, pgferry against a native PostgreSQL 15 subscription, on the same servers in
 * one run (source PG 15; both targets are databases of one PG 15 server; durable settings):
 *
 *   npm run build && node dist/bench/sync.js [transactions=20000] [rate=500] [seconds=20]
 *
 * 1. Catch-up: a backlog of pgbench transactions (scale 5; 3 updates and 1 insert each) waits in
 *    both slots; each side applies it alone. pgferry is timed as a whole process (start-up,
 *    connections and all) and by its own log (first streamed message to caught up).
 * 2. Steady state: both follow a `pgbench -R` load; lag is sampled every 100 ms on each target as
 *    the age of the newest pgbench_history row (pgbench stamps it with the commit's time).
 * Both targets are compared with the source by content at the end: a fast wrong answer is worthless.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { compareTables, startClusters, type Cluster } from '../test/harness/index.js';

const transactions = Number(process.argv[2] ?? 20_000);
const rate = Number(process.argv[3] ?? 500);
const seconds = Number(process.argv[4] ?? 20);
const PG_BIN = '/usr/lib/postgresql/15/bin';
const BIN = fileURLToPath(new URL('../../bin/pgferry.js', import.meta.url));
const run = promisify(execFile);

for (const tool of ['pgbench', 'pg_dump']) {
  if (!existsSync(`${PG_BIN}/${tool}`)) {
    console.error(`bench/sync: ${PG_BIN}/${tool} is missing; install it with: apt-get install postgresql-15 (pgbench) postgresql-client-15 (pg_dump)`);
    process.exit(2);
  }
}

const DURABLE = { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on', shared_buffers: '256MB', max_wal_size: '4GB' } as const;
const [source, target] = await startClusters([
  { version: 15, settings: DURABLE },
  { version: 15, settings: DURABLE },
]);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function pgbench(cluster: Cluster, args: string[]): Promise<unknown> {
  return run(`${PG_BIN}/pgbench`, [...args, '-h', cluster.host, '-p', String(cluster.port), '-U', cluster.superuser, 'bench'], {
    env: { ...process.env, PGPASSWORD: cluster.password },
    maxBuffer: 16 * 1024 * 1024,
  });
}

function pgferry(args: string[]): Promise<{ code: number; stderr: string; seconds: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('close', (code) => resolve({ code: code ?? 1, stderr, seconds: (performance.now() - started) / 1000 }));
  });
}

/** Milliseconds between pgferry's "streaming changes" and "caught up" log lines. */
function streamingMs(stderr: string): number {
  const times = stderr
    .split('\n')
    .filter((l) => l.includes('"streaming changes"') || l.includes('caught up'))
    .map((l) => (JSON.parse(l) as { time: number }).time);
  return times.length >= 2 ? times[times.length - 1]! - times[0]! : NaN;
}

/**
 * The subscription applies in commit order, so it has caught up when the target holds as many
 * history rows as the source (one per transaction). Polled on one open session: a new
 * connection per poll would add its own start-up to the measurement.
 */
async function waitForNative(): Promise<void> {
  const expected = ((await source.sql('bench', 'SELECT count(*)::int AS n FROM pgbench_history')).rows[0] as { n: number }).n;
  await target.withClient('native', async (client) => {
    for (;;) {
      const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM pgbench_history');
      if (rows[0]!.n >= expected) return;
      await sleep(5);
    }
  });
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

try {
  await source.sql('postgres', 'CREATE DATABASE bench');
  await target.sql('postgres', 'CREATE DATABASE ferry');
  await target.sql('postgres', 'CREATE DATABASE native');
  await pgbench(source, ['-i', '-s', '5', '-q']);
  // pgbench_history has no key; both sides get the same replica identity.
  await source.sql('bench', 'ALTER TABLE pgbench_history REPLICA IDENTITY FULL');
  const ferryArgs = ['sync', '--source', source.url('bench'), '--target', target.url('ferry'), '--name', 'bench'];
  const setup = await pgferry([...ferryArgs, '--until-caught-up']);
  if (setup.code !== 0) throw new Error(`pgferry sync (initial clone) failed: ${setup.stderr}`);

  const schema = execFileSync(`${PG_BIN}/pg_dump`, ['--schema-only', source.url('bench')]).toString();
  await target.sql('native', schema.split('\n').filter((line) => !line.startsWith('\\')).join('\n'));
  await source.sql('bench', 'CREATE PUBLICATION native FOR ALL TABLES');
  await target.sql('native', `CREATE SUBSCRIPTION native CONNECTION '${source.url('bench')}' PUBLICATION native`);
  for (;;) {
    const { rows } = await target.sql('native', `SELECT count(*) FILTER (WHERE srsubstate <> 'r')::int AS syncing, count(*)::int AS total FROM pg_subscription_rel`);
    const state = rows[0] as { syncing: number; total: number };
    if (state.total === 4 && state.syncing === 0) break;
    await sleep(200);
  }

  // 1. Catch-up
  const rounds: Array<{ native: number; process: number; streaming: number }> = [];
  for (let round = 0; round < 2; round++) {
    await target.sql('native', 'ALTER SUBSCRIPTION native DISABLE');
    await sleep(1000);
    await pgbench(source, ['-n', '-c', '4', '-j', '2', '-t', String(Math.ceil(transactions / 4))]);
    let started = performance.now();
    await target.sql('native', 'ALTER SUBSCRIPTION native ENABLE');
    await waitForNative();
    const native = (performance.now() - started) / 1000;
    started = performance.now();
    const ferry = await pgferry([...ferryArgs, '--until-caught-up']);
    if (ferry.code !== 0) throw new Error(`pgferry sync failed: ${ferry.stderr}`);
    rounds.push({ native, process: ferry.seconds, streaming: streamingMs(ferry.stderr) / 1000 });
  }

  // 2. Steady state
  const follower = spawn(process.execPath, [BIN, ...ferryArgs], { stdio: ['ignore', 'ignore', 'ignore'] });
  await sleep(2000);
  const lag = { ferry: [] as number[], native: [] as number[] };
  let loading = true;
  const load = pgbench(source, ['-n', '-R', String(rate), '-T', String(seconds), '-c', '4', '-j', '2']).finally(() => (loading = false));
  const age = `SELECT extract(epoch FROM clock_timestamp() - max(mtime))::float8 AS s FROM pgbench_history`;
  await sleep(1000);
  while (loading) {
    const [f, n] = await Promise.all([target.sql('ferry', age), target.sql('native', age)]);
    if (loading) {
      lag.ferry.push((f.rows[0] as { s: number }).s);
      lag.native.push((n.rows[0] as { s: number }).s);
    }
    await sleep(100);
  }
  await load;
  await sleep(3000);
  follower.kill('SIGTERM');
  const followerExit = await new Promise<number | null>((resolve) => follower.on('close', resolve));

  await waitForNative();
  const finalFerry = await pgferry([...ferryArgs, '--until-caught-up']);
  const [ferryEqual, nativeEqual] = await Promise.all([
    compareTables(source.url('bench'), target.url('ferry')),
    compareTables(source.url('bench'), target.url('native')),
  ]);

  console.log(`\nMachine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}; PostgreSQL 15 → 15, durable settings.`);
  console.log(`Command: node dist/bench/sync.js ${transactions} ${rate} ${seconds}\n`);
  console.log(`Catch-up of ${transactions} pgbench transactions (scale 5):\n`);
  console.log('| round | native s | native tx/s | pgferry process s | pgferry process tx/s | pgferry streaming s | pgferry streaming tx/s | ratio (process) | ratio (streaming) |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const [i, r] of rounds.entries()) {
    const tps = (s: number) => Math.round(transactions / s);
    console.log(
      `| ${i + 1} | ${r.native.toFixed(2)} | ${tps(r.native)} | ${r.process.toFixed(2)} | ${tps(r.process)} | ${r.streaming.toFixed(2)} | ${tps(r.streaming)} | ${(r.native / r.process).toFixed(2)}× | ${(r.native / r.streaming).toFixed(2)}× |`,
    );
  }
  console.log(`\nSteady state under pgbench -R ${rate} for ${seconds} s (lag = age of the newest applied history row, ${lag.ferry.length} samples):\n`);
  console.log('| | p50 s | p99 s | max s |');
  console.log('|---|---|---|---|');
  for (const [name, values] of [['native subscription', lag.native], ['pgferry sync', lag.ferry]] as const) {
    console.log(`| ${name} | ${percentile(values, 50).toFixed(3)} | ${percentile(values, 99).toFixed(3)} | ${Math.max(...values).toFixed(3)} |`);
  }
  console.log(`\npgferry sync stopped by SIGTERM with exit ${followerExit}; final catch-up exit ${finalFerry.code}.`);
  console.log(`Content equal to the source: pgferry ${ferryEqual.equal}, native ${nativeEqual.equal}.`);
} finally {
  await source.sql('bench', 'SELECT 1').catch(() => undefined);
  await target.sql('native', 'ALTER SUBSCRIPTION native DISABLE').catch(() => undefined);
  await target.sql('native', 'ALTER SUBSCRIPTION native SET (slot_name = NONE)').catch(() => undefined);
  await target.sql('native', 'DROP SUBSCRIPTION native').catch(() => undefined);
  await Promise.all([source.stop(), target.stop()]);
}
