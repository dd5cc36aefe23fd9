/**
 * The way back beside the way forward, on the same two PostgreSQL 15 servers with durable
 * settings: a pgbench database cloned once, then `rounds` cut-overs alternating in direction
 * (forward, back, forward, …). Each round, while no sync runs, a backlog of pgbench
 * transactions lands on the side the application writes to; `pgferry sync --until-caught-up`
 * carries it over (the catch-up rate), then sync streams and `pgferry cutover` moves the
 * application to the other side (the freeze, and within it the hand-over that prepares the
 * next way back). Forward, sync continues from the state the clone left; back, from the state
 * the last cut-over prepared, with no copy.
 *
 *   npm run build && node dist/bench/way-back.js [transactions=20000] [scale=5] [rounds=4]
 */
import { execFile } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { compareTables, runPgferry, spawnPgferry, startClusters, waitUntilStreaming, type Cluster } from '../test/harness/index.js';

const run = promisify(execFile);
const [transactions, scale, rounds] = [20_000, 5, 4].map((fallback, i) => Number(process.argv[2 + i] ?? fallback)) as [
  number,
  number,
  number,
];
const PG_BIN = '/usr/lib/postgresql/15/bin';
const CLIENTS = 4;
const DB = 'bench';
const DURABLE = { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on', shared_buffers: '256MB', max_wal_size: '4GB' } as const;

const [old, now] = await startClusters([
  { version: 15, settings: DURABLE },
  { version: 15, settings: DURABLE },
]);

function pgbench(cluster: Cluster, args: readonly string[]): Promise<unknown> {
  return run(`${PG_BIN}/pgbench`, [...args, '-h', cluster.host, '-p', String(cluster.port), '-U', cluster.superuser, DB], {
    env: { ...process.env, PGPASSWORD: cluster.password },
  });
}

function sides(from: Cluster, to: Cluster): string[] {
  return ['--source', from.url(DB), '--target', to.url(DB)];
}

async function timed(args: readonly string[]): Promise<number> {
  const started = performance.now();
  const result = await runPgferry(args, {}, 600_000);
  if (result.code !== 0) throw new Error(`pgferry ${args[0]} exited ${result.code}: ${result.stderr.slice(-3000)}`);
  return (performance.now() - started) / 1000;
}

interface Round {
  readonly direction: 'forward' | 'back';
  readonly catchUpSeconds: number;
  readonly freezeMs: number;
  readonly handOverMs: number;
  readonly prepareMs: number;
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

try {
  await old.sql('postgres', `CREATE DATABASE ${DB}`);
  await now.sql('postgres', `CREATE DATABASE ${DB}`);
  await pgbench(old, ['-i', '-q', '-s', String(scale)]);
  await old.sql(DB, 'ALTER TABLE pgbench_history REPLICA IDENTITY FULL');
  await timed(['sync', ...sides(old, now), '--until-caught-up']);
  const results: Round[] = [];
  console.log(
    '| round | direction | backlog txns | catch-up s | txns/s | freeze ms | of it hand-over ms | way back made before the freeze, ms |',
  );
  console.log('|---|---|---:|---:|---:|---:|---:|---:|');
  for (let round = 1; round <= rounds; round++) {
    const direction = round % 2 === 1 ? 'forward' : 'back';
    const [from, to] = direction === 'forward' ? [old, now] : [now, old];
    await pgbench(from, ['-n', '-c', String(CLIENTS), '-j', '2', '-t', String(Math.ceil(transactions / CLIENTS))]);
    await Promise.all([old.sql(DB, 'CHECKPOINT'), now.sql(DB, 'CHECKPOINT')]);
    const catchUpSeconds = await timed(['sync', ...sides(from, to), '--until-caught-up']);
    const sync = spawnPgferry(['sync', ...sides(from, to)]);
    await waitUntilStreaming(to, DB, sync);
    const cut = await runPgferry(['cutover', ...sides(from, to), '--json'], {}, 300_000);
    if (cut.code !== 0) throw new Error(`cutover failed: ${cut.stderr}\n${sync.output()}`);
    await sync.exited();
    const report = JSON.parse(cut.stdout) as { downtimeMs: number; steps: Array<{ step: string; ms: number }> };
    const step = (name: string) => report.steps.find((s) => s.step === name)?.ms ?? NaN;
    const comparison = await compareTables(from.url(DB), to.url(DB));
    if (!comparison.equal) throw new Error(`round ${round}: the sides differ after the cut-over`);
    const result = {
      direction,
      catchUpSeconds,
      freezeMs: report.downtimeMs,
      handOverMs: step('hand over'),
      prepareMs: step('way back'),
    } as const;
    results.push(result);
    console.log(
      `| ${round} | ${direction} | ${transactions} | ${catchUpSeconds.toFixed(2)} | ${Math.round(transactions / catchUpSeconds)} | ${Math.round(result.freezeMs)} | ${result.handOverMs.toFixed(1)} | ${Math.round(result.prepareMs)} |`,
    );
  }
  const of = (direction: 'forward' | 'back', key: 'catchUpSeconds' | 'freezeMs' | 'handOverMs') =>
    median(results.filter((r) => r.direction === direction).map((r) => r[key]));
  console.log('');
  console.log('| median | catch-up s | txns/s | freeze ms | hand-over ms |');
  console.log('|---|---:|---:|---:|---:|');
  for (const direction of ['forward', 'back'] as const) {
    console.log(
      `| ${direction} | ${of(direction, 'catchUpSeconds').toFixed(2)} | ${Math.round(transactions / of(direction, 'catchUpSeconds'))} | ${Math.round(of(direction, 'freezeMs'))} | ${of(direction, 'handOverMs').toFixed(1)} |`,
    );
  }
  console.log(
    `back / forward: catch-up ${(of('back', 'catchUpSeconds') / of('forward', 'catchUpSeconds')).toFixed(2)}×, freeze ${(of('back', 'freezeMs') / of('forward', 'freezeMs')).toFixed(2)}×`,
  );
} finally {
  await Promise.all([old.stop(), now.stop()]);
}
