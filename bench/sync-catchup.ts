/**
 * The catch-up half of bench/sync.ts alone, for working on apply speed: one PG 15 source
 * (`pgbench -i`) and target with durable settings, then `rounds` times a backlog of pgbench
 * transactions applied by `pgferry sync --until-caught-up`. Each round also times
 * pg_recvlogical draining the same backlog from a second slot into /dev/null: how fast the
 * source's walsender alone decodes and sends it, a floor no subscriber can go under.
 *
 *   node dist/bench/sync-catchup.js [transactions=20000] [scale=5] [rounds=3]
 *
 * PGFERRY_NODE_ARGS adds options to pgferry's node (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof");
 * PGFERRY_DEBUG=1 prints pgferry's batch log of each round; PGFERRY_ARGS adds options to its
 * sync command, and PGFERRY_ARGS_B too, for the rounds of a second variant (A/B alternating).
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { compareTables, startClusters, type Cluster } from '../test/harness/index.js';

const run = promisify(execFile);
const [transactions, scale, rounds] = [20_000, 5, 3].map((fallback, i) => Number(process.argv[2 + i] ?? fallback)) as [
  number,
  number,
  number,
];
const PG_BIN = '/usr/lib/postgresql/15/bin';
const BIN = fileURLToPath(new URL('../../bin/pgferry.js', import.meta.url));
const CLIENTS = 4;
const PROBE = 'probe';
const TABLES = ['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history'];
const DURABLE = { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on', shared_buffers: '256MB', max_wal_size: '4GB' } as const;

const [source, target] = await startClusters([
  { version: 15, settings: DURABLE },
  { version: 15, settings: DURABLE },
]);
const env = { ...process.env, PGPASSWORD: source.password };
const conn = ['-h', source.host, '-p', String(source.port), '-U', source.superuser];
const sourceUrl = source.url('bench');
// Named, so the probe below can read the same publication (the default name carries a fingerprint of the target).
const SYNC = ['sync', '--source', sourceUrl, '--target', target.url('ferry'), '--name', 'ferry', '--until-caught-up', '--json'];

interface FerryRun {
  readonly seconds: number;
  /** User and system CPU seconds of the pgferry process. */
  readonly cpu: number;
  readonly spawnedAt: number;
  readonly exitedAt: number;
  readonly log: Array<{ msg: string; time: number; [key: string]: unknown }>;
}

/**
 * CPU seconds a server's processes used so far: the postmaster's own and its reaped children's
 * (a backend's time lands there when it exits), plus the children still running.
 */
function serverCpu(cluster: Cluster): number {
  const postmaster = Number(readFileSync(join(cluster.directory, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const ticks = (pid: number, withChildren: boolean): number => {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
      .replace(/^.*\) /, '')
      .split(' ');
    // After the name: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    const own = Number(fields[11]) + Number(fields[12]);
    return withChildren ? own + Number(fields[13]) + Number(fields[14]) : own;
  };
  let total = ticks(postmaster, true);
  const children = readFileSync(`/proc/${postmaster}/task/${postmaster}/children`, 'utf8')
    .trim()
    .split(' ')
    .filter((c) => c !== '');
  for (const child of children) {
    try {
      total += ticks(Number(child), false);
    } catch {
      // exited meanwhile: counted in the postmaster's children time next time
    }
  }
  return total / 100;
}

function pgferry(extra: string[]): Promise<FerryRun> {
  const started = performance.now();
  const spawnedAt = Date.now();
  const nodeArgs = (process.env.PGFERRY_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const child = spawn('/usr/bin/time', ['-f', 'CPU %U %S', process.execPath, ...nodeArgs, BIN, ...SYNC, ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdout.resume();
  return new Promise((resolve, reject) =>
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`pgferry exited ${code}: ${stderr.slice(-3000)}`));
      const log = stderr
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg: string; time: number });
      const cpu = /CPU ([\d.]+) ([\d.]+)/.exec(stderr);
      resolve({
        seconds: (performance.now() - started) / 1000,
        cpu: cpu ? Number(cpu[1]) + Number(cpu[2]) : NaN,
        spawnedAt,
        exitedAt: Date.now(),
        log,
      });
    }),
  );
}

try {
  await source.sql('postgres', 'CREATE DATABASE bench');
  await target.sql('postgres', 'CREATE DATABASE ferry');
  await run(`${PG_BIN}/pgbench`, ['-i', '-q', '-s', String(scale), ...conn, 'bench'], { env });
  await source.sql('bench', 'ALTER TABLE pgbench_history REPLICA IDENTITY FULL');
  await pgferry([]);
  const perClient = Math.ceil(transactions / CLIENTS);
  console.log(
    '| round | pgferry s (process) | tps | CPU s: pgferry / source / target | spawn→streaming s | streaming→caught up s | caught up→exit s | batches | first batch txns | walsender alone s (pg_recvlogical), its CPU s |',
  );
  console.log('|---|---:|---:|---|---:|---:|---:|---:|---:|---:|');
  for (let round = 1; round <= rounds; round++) {
    await source.sql('bench', `SELECT pg_create_logical_replication_slot('${PROBE}', 'pgoutput')`);
    await run(`${PG_BIN}/pgbench`, ['-n', '-c', String(CLIENTS), '-j', '2', '-t', String(perClient), ...conn, 'bench'], { env });
    const goal = (await source.sql('bench', 'SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0].lsn as string;
    await Promise.all([source.sql('bench', 'CHECKPOINT'), target.sql('postgres', 'CHECKPOINT')]);
    const variant = process.env.PGFERRY_ARGS_B !== undefined && round % 2 === 0 ? 'B' : 'A';
    const extra = [
      ...(process.env.PGFERRY_DEBUG ? ['--debug'] : []),
      ...((variant === 'A' ? process.env.PGFERRY_ARGS : process.env.PGFERRY_ARGS_B) ?? '').split(' ').filter((a) => a !== ''),
    ];
    const cpuBefore = [serverCpu(source), serverCpu(target)];
    const ferry = await pgferry(extra);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const [sourceCpu, targetCpu] = [serverCpu(source) - cpuBefore[0]!, serverCpu(target) - cpuBefore[1]!];
    const at = (msg: string) => ferry.log.find((l) => l.msg === msg)?.time ?? NaN;
    const batches = ferry.log.filter((l) => l.msg === 'batch applied');
    if (process.env.PGFERRY_DEBUG) for (const line of ferry.log) console.error(JSON.stringify(line));
    const probeCpu = serverCpu(source);
    const probeStarted = performance.now();
    await run(
      `${PG_BIN}/pg_recvlogical`,
      [
        ...conn,
        '-d',
        'bench',
        '-S',
        PROBE,
        '--start',
        '-E',
        goal,
        '-o',
        'proto_version=1',
        '-o',
        'publication_names=pgferry_ferry',
        '-f',
        '/dev/null',
        '--no-loop',
      ],
      { env },
    );
    const walsender = (performance.now() - probeStarted) / 1000;
    await new Promise((resolve) => setTimeout(resolve, 200));
    const walsenderCpu = serverCpu(source) - probeCpu;
    await source.sql('bench', `SELECT pg_drop_replication_slot('${PROBE}')`);
    const equal = (await compareTables(sourceUrl, target.url('ferry'), TABLES)).equal;
    const first = batches[0]?.transactions;
    console.log(
      `| ${round}${process.env.PGFERRY_ARGS_B !== undefined ? ` (${variant})` : ''} | ${ferry.seconds.toFixed(2)} | ${Math.round((perClient * CLIENTS) / ferry.seconds)} | ${ferry.cpu.toFixed(2)} / ${sourceCpu.toFixed(2)} / ${targetCpu.toFixed(2)} | ${((at('streaming changes') - ferry.spawnedAt) / 1000).toFixed(2)} | ${((at('caught up; stopping') - at('streaming changes')) / 1000).toFixed(2)} | ${((ferry.exitedAt - at('caught up; stopping')) / 1000).toFixed(2)} | ${batches.length || '?'} | ${first ?? '?'} | ${walsender.toFixed(2)}, ${walsenderCpu.toFixed(2)} |${equal ? '' : ' CONTENT DIFFERS'}`,
    );
  }
} finally {
  await Promise.all([source.stop(), target.stop()]);
}
