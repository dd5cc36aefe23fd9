/**
 * Change streaming, pgferry against a native PostgreSQL 15 subscription, on the same servers in
 * one run: a PG 15 source (`pgbench -i`) and one PG 15 target server holding both replicas, as
 * the databases pgferry_target and native_target; durable settings everywhere.
 *
 *   npm run build && node dist/bench/sync.js [transactions=20000] [scale=5] [rate=500] [seconds=30]
 *
 * 1. Catch-up: a backlog of pgbench transactions (built-in TPC-B-like script: 3 updates and
 *    1 insert each) waits in both slots; each side then applies it alone, the other idle.
 *    Native: from ALTER SUBSCRIPTION ENABLE until it has received everything up to the source's
 *    WAL position after the backlog and holds every history row. pgferry: the whole
 *    `sync --until-caught-up` process, start-up and connections included.
 * 2. Steady state: both follow `pgbench -R rate -T seconds`; every 100 ms each target is asked
 *    the age of its newest pgbench_history row (pgbench stamps mtime with the transaction's
 *    start time; the servers share a clock). The source is asked the same: its figure is the
 *    floor, what a replica that applies instantly would show.
 * Both targets are compared with the source by content after every round and at the end: a
 * fast wrong answer is worthless.
 *
 * pgbench is required; without pg_dump and psql (postgresql-client-15) the native subscription
 * is reported as not run.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type pg from 'pg';
import { compareTables, startClusters, type Cluster } from '../test/harness/index.js';

const run = promisify(execFile);
const transactions = positive(process.argv[2], 20_000);
const scale = positive(process.argv[3], 5);
const rate = positive(process.argv[4], 500);
const seconds = positive(process.argv[5], 30);
const ROUNDS = 3;
const CLIENTS = 4;
const THREADS = 2;
const PG_BIN = '/usr/lib/postgresql/15/bin';
const BIN = fileURLToPath(new URL('../../bin/pgferry.js', import.meta.url));
const SOURCE_DB = 'bench';
const FERRY_DB = 'pgferry_target';
const NATIVE_DB = 'native_target';
/** Publication, subscription and slot of the native replica. */
const NATIVE = 'native_sub';
const TABLES = ['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history'];
/** Generous bound on any wait, so a replica that never catches up fails the run instead of hanging it. */
const WAIT_MS = 10 * 60_000;

function positive(given: string | undefined, fallback: number): number {
  const value = Number(given ?? fallback);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`bench/sync: "${given}" is not a positive whole number`);
    process.exit(2);
  }
  return value;
}

function tool(name: string): string | undefined {
  const candidates = [join(PG_BIN, name), `/usr/bin/${name}`];
  return candidates.find((c) => existsSync(c));
}

/** The one row a query returns. */
async function one<T>(cluster: Cluster, db: string, text: string, values?: unknown[]): Promise<T> {
  return (await cluster.sql(db, text, values)).rows[0] as T;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every `everyMs` until it holds; throws after WAIT_MS naming what never happened. */
async function waitFor(what: string, everyMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

const pgbenchBin = tool('pgbench');
if (!pgbenchBin) {
  console.log('bench/sync: not run: no pgbench 15 (apt-get install postgresql-15); both benchmarks need its load.');
  process.exit(0);
}
const pgDump = tool('pg_dump');
const psql = tool('psql');
/** Why the native subscription is not run, when it is not. */
const nativeMissing = pgDump && psql ? undefined : 'not run: no pg_dump/psql 15 (apt-get install postgresql-client-15)';

function pgbench(cluster: Cluster, args: string[]): Promise<string> {
  const connection = ['-h', cluster.host, '-p', String(cluster.port), '-U', cluster.superuser, SOURCE_DB];
  return run(pgbenchBin!, [...args, ...connection], {
    env: { ...process.env, PGPASSWORD: cluster.password },
    maxBuffer: 64 * 1024 * 1024,
  }).then((r) => r.stdout);
}

interface LogLine {
  level: number;
  time: number;
  msg: string;
}

/** Pino levels: 40 is warn, 50 error, 60 fatal. */
const WARN = 40;

/** One pgferry process, its stderr kept (structured log lines) and its stdout (the --json summary). */
class Pgferry {
  readonly child: ChildProcess;
  readonly startedAt = performance.now();
  stdout = '';
  stderr = '';
  /** Wall-clock seconds from spawn to exit, and the exit code. */
  readonly exited: Promise<{ code: number | null; seconds: number }>;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) =>
      this.child.on('close', (code) => resolve({ code, seconds: (performance.now() - this.startedAt) / 1000 })),
    );
  }

  get log(): LogLine[] {
    return this.stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as LogLine);
  }

  /** Milliseconds between two log messages (first of `from`, last of `to`), by pgferry's own clock. */
  between(from: string, to: string): number | undefined {
    const log = this.log;
    const start = log.find((l) => l.msg === from)?.time;
    const end = log.filter((l) => l.msg === to).pop()?.time;
    return start === undefined || end === undefined ? undefined : end - start;
  }

  /** Warnings and errors, for the report: a benchmark that logged one needs a look. */
  get complaints(): string[] {
    return this.log.filter((l) => l.level >= WARN).map((l) => JSON.stringify(l));
  }

  /** Runs to completion; throws with its log when it fails. */
  async finish(what: string): Promise<{ seconds: number }> {
    const { code, seconds } = await this.exited;
    if (code !== 0) throw new Error(`${what} exited ${code}:\n${this.stderr.slice(-4000)}`);
    return { seconds };
  }
}

// Durable settings, as on a real server (bench/clone.ts): the harness's test defaults turn fsync
// off, which would flatter whichever side commits more often. wal_level is logical by default.
const DURABLE = { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on', shared_buffers: '256MB', max_wal_size: '4GB' } as const;
const [source, target] = await startClusters([
  { version: 15, settings: DURABLE },
  { version: 15, settings: DURABLE },
]);
const sourceUrl = () => source.url(SOURCE_DB);
/** pgferry_target follows the source under the default migration name. */
const SYNC = ['sync', '--source', sourceUrl(), '--target', target.url(FERRY_DB)];
let follower: Pgferry | undefined;

try {
  await source.sql('postgres', `CREATE DATABASE ${SOURCE_DB}`);
  await target.sql('postgres', `CREATE DATABASE ${FERRY_DB}`);
  await target.sql('postgres', `CREATE DATABASE ${NATIVE_DB}`);
  await pgbench(source, ['-i', '-q', '-s', String(scale)]);
  // pgferry refuses a table with no key: once published, its UPDATEs and DELETEs would fail on the source.
  // pgbench only inserts into history, so a subscription would not need it; both get it anyway.
  await source.sql(SOURCE_DB, 'ALTER TABLE pgbench_history REPLICA IDENTITY FULL');
  // The lag query subtracts a `timestamp` written on the source from a timestamptz read on the
  // target: the two must read it in the same time zone.
  const zone = `SELECT current_setting('TimeZone') AS zone`;
  const [sourceZone, targetZone] = (
    await Promise.all([one<{ zone: string }>(source, SOURCE_DB, zone), one<{ zone: string }>(target, FERRY_DB, zone)])
  ).map((r) => r.zone);
  if (sourceZone !== targetZone)
    throw new Error(`the servers' time zones differ (${sourceZone}, ${targetZone}): lag would be off by hours`);

  // pgferry's set-up: slot, clone at its snapshot, stream to the end.
  await new Pgferry([...SYNC, '--until-caught-up']).finish('pgferry sync (initial clone)');

  // The native replica's set-up: schema, then the subscription's own initial copy.
  if (!nativeMissing) {
    const conn = (c: Cluster, database: string) => `-h ${c.host} -p ${c.port} -U ${c.superuser} -d ${database}`;
    // pgferry's publication is on the source by now: the subscriber must not get a copy of it.
    await run('bash', [
      '-o',
      'pipefail',
      '-c',
      `PGPASSWORD=${source.password} ${pgDump} -s --no-publications --no-subscriptions ${conn(source, SOURCE_DB)} | PGPASSWORD=${target.password} ${psql} -q -v ON_ERROR_STOP=1 ${conn(target, NATIVE_DB)} > /dev/null`,
    ]);
    await source.sql(SOURCE_DB, `CREATE PUBLICATION ${NATIVE} FOR TABLE ${TABLES.join(', ')}`);
    await target.sql(NATIVE_DB, `CREATE SUBSCRIPTION ${NATIVE} CONNECTION '${sourceUrl()}' PUBLICATION ${NATIVE} WITH (copy_data = true)`);
    await waitFor("the subscription's initial copy", 200, async () => {
      const { ready } = await one<{ ready: number }>(
        target,
        NATIVE_DB,
        `SELECT count(*) FILTER (WHERE srsubstate = 'r')::int AS ready FROM pg_subscription_rel`,
      );
      return ready === TABLES.length;
    });
  }

  /** Stops the native apply worker; its slot keeps everything from here as backlog. */
  async function disableNative(): Promise<void> {
    if (nativeMissing) return;
    await target.sql(NATIVE_DB, `ALTER SUBSCRIPTION ${NATIVE} DISABLE`);
    // The worker exits asynchronously: until its walsender is gone it could still take part of the backlog.
    await waitFor('the native slot to go idle', 50, async () => {
      const { active } = await one<{ active: boolean }>(
        source,
        SOURCE_DB,
        `SELECT bool_or(active) AS active FROM pg_replication_slots WHERE slot_name = $1`,
        [NATIVE],
      );
      return active === false;
    });
  }

  const historyRows = async (cluster: Cluster, db: string) =>
    (await one<{ n: number }>(cluster, db, 'SELECT count(*)::int AS n FROM pgbench_history')).n;
  const currentLsn = async () => (await one<{ lsn: string }>(source, SOURCE_DB, 'SELECT pg_current_wal_lsn()::text AS lsn')).lsn;

  /**
   * The native replica holds everything committed up to `goal`: its apply worker received a
   * keepalive at or past it (it applies each transaction as it reads it, so everything before
   * is committed) and it has every history row. The slot's confirmed_flush_lsn would say the
   * same later: the worker reports its flush only once the target's WAL writer has flushed and
   * its own loop wakes (up to a second), which would count against the native side.
   */
  const nativeHolds = async (client: pg.Client, goal: string, rows: number): Promise<boolean> => {
    const reached = await client.query<{ reached: boolean }>(
      `SELECT coalesce((SELECT latest_end_lsn >= $1::pg_lsn FROM pg_stat_subscription WHERE subname = $2 AND relid IS NULL), false) AS reached`,
      [goal, NATIVE],
    );
    if (!reached.rows[0]!.reached) return false;
    const count = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM pgbench_history');
    return count.rows[0]!.n === rows;
  };

  async function measureNative(goal: string, rows: number): Promise<number> {
    return target.withClient(NATIVE_DB, async (client) => {
      const started = performance.now();
      await client.query(`ALTER SUBSCRIPTION ${NATIVE} ENABLE`);
      // One open session polling every 10 ms: a connection per poll would add its own start-up.
      await waitFor('the native subscription to catch up', 10, () => nativeHolds(client, goal, rows));
      return (performance.now() - started) / 1000;
    });
  }

  interface FerryRun {
    seconds: number;
    streamingSeconds: number | undefined;
    applied: number;
    complaints: string[];
  }

  async function measurePgferry(): Promise<FerryRun> {
    const ferry = new Pgferry([...SYNC, '--until-caught-up', '--json']);
    const { seconds } = await ferry.finish('pgferry sync --until-caught-up');
    const streaming = ferry.between('streaming changes', 'caught up; stopping');
    const summary = JSON.parse(ferry.stdout) as { transactions: number };
    return {
      seconds,
      streamingSeconds: streaming === undefined ? undefined : streaming / 1000,
      applied: summary.transactions,
      complaints: ferry.complaints,
    };
  }

  /** Compares the four tables of a replica with the source; the words for the report. */
  async function verify(db: string): Promise<{ equal: boolean; detail: string }> {
    const result = await compareTables(sourceUrl(), target.url(db), TABLES);
    const detail = result.tables
      .map(
        (t) =>
          `${t.table} ${t.equal ? 'equal' : `DIFFERENT (source ${t.sourceRows} rows, target ${t.targetRows}${t.problem ? `, ${t.problem}` : ''}; only on source: ${t.onlyOnSource.join(' ')}; only on target: ${t.onlyOnTarget.join(' ')})`}`,
      )
      .join(', ');
    return { equal: result.equal, detail };
  }

  // 1. Catch-up
  const perClient = Math.ceil(transactions / CLIENTS);
  const backlog = perClient * CLIENTS;
  interface Round {
    native: number | undefined;
    ferry: FerryRun;
    nativeEqual: string;
    ferryEqual: string;
  }
  const rounds: Round[] = [];
  const complaints: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    await disableNative();
    await pgbench(source, ['-n', '-c', String(CLIENTS), '-j', String(THREADS), '-t', String(perClient)]);
    const goal = await currentLsn();
    const rows = await historyRows(source, SOURCE_DB);
    let native: number | undefined;
    let ferry: FerryRun | undefined;
    // Alternate who goes first, and start each from a fresh checkpoint on both servers, so that
    // neither systematically inherits the other's checkpoint or its full-page writes.
    const sides = [
      async () => {
        if (!nativeMissing) native = await measureNative(goal, rows);
      },
      async () => {
        ferry = await measurePgferry();
      },
    ];
    for (const side of round % 2 === 0 ? sides : sides.reverse()) {
      await Promise.all([source.sql(SOURCE_DB, 'CHECKPOINT'), target.sql('postgres', 'CHECKPOINT')]);
      await side();
    }
    complaints.push(...ferry!.complaints);
    const [nativeCheck, ferryCheck] = await Promise.all([nativeMissing ? undefined : verify(NATIVE_DB), verify(FERRY_DB)]);
    if (nativeCheck && !nativeCheck.equal) console.log(`round ${round + 1}, native: ${nativeCheck.detail}`);
    if (!ferryCheck.equal) console.log(`round ${round + 1}, pgferry: ${ferryCheck.detail}`);
    rounds.push({
      native,
      ferry: ferry!,
      nativeEqual: nativeCheck ? (nativeCheck.equal ? 'yes' : 'NO') : '-',
      ferryEqual: ferryCheck.equal ? 'yes' : 'NO',
    });
  }

  // 2. Steady state: both replicas follow the load live.
  if (!nativeMissing) await target.sql(NATIVE_DB, `ALTER SUBSCRIPTION ${NATIVE} ENABLE`);
  follower = new Pgferry(SYNC);
  const running = follower;
  await waitFor(
    'pgferry sync to start streaming',
    50,
    async () => running.log.some((l) => l.msg === 'streaming changes') || running.child.exitCode !== null,
  );
  if (running.child.exitCode !== null) await running.finish('pgferry sync (steady state)');
  const quietRows = await historyRows(source, SOURCE_DB);
  const quietLsn = await currentLsn();
  await waitFor('both replicas to be caught up before the load', 50, async () => {
    const ferryDone = (await historyRows(target, FERRY_DB)) === quietRows;
    return ferryDone && (nativeMissing !== undefined || (await target.withClient(NATIVE_DB, (c) => nativeHolds(c, quietLsn, quietRows))));
  });

  // Until a replica has applied a row of this run, its newest row is from the catch-up rounds,
  // minutes old: clamping at the run's start counts only the lag this load causes.
  const runStart = (await one<{ t: string }>(source, SOURCE_DB, 'SELECT clock_timestamp()::timestamp::text AS t')).t;
  let loading = true;
  const load = pgbench(source, ['-n', '-R', String(rate), '-T', String(seconds), '-c', String(CLIENTS), '-j', String(THREADS)]).finally(
    () => (loading = false),
  );
  const age = `SELECT extract(epoch FROM clock_timestamp() - greatest(max(mtime), $1::timestamp))::float8 AS s FROM pgbench_history`;
  const lag: Record<'source' | 'ferry' | 'native', number[]> = { source: [], ferry: [], native: [] };
  await source.withClient(SOURCE_DB, (s) =>
    target.withClient(FERRY_DB, (f) =>
      target.withClient(NATIVE_DB, async (n) => {
        const sample = async (client: pg.Client) => (await client.query<{ s: number }>(age, [runStart])).rows[0]!.s;
        while (loading) {
          const tick = performance.now();
          const [a, b, c] = await Promise.all([sample(s), sample(f), nativeMissing ? Promise.resolve(NaN) : sample(n)]);
          // A sample that straddles the end of the load would measure the quiet after it.
          if (!loading) break;
          lag.source.push(a);
          lag.ferry.push(b);
          lag.native.push(c);
          await sleep(Math.max(0, 100 - (performance.now() - tick)));
        }
      }),
    ),
  );
  const loadReport = await load;
  const achieved = /tps = ([\d.]+)/.exec(loadReport)?.[1] ?? '?';

  // Let both finish what the load left, stop pgferry the way an operator would, then verify.
  const endRows = await historyRows(source, SOURCE_DB);
  const endLsn = await currentLsn();
  await waitFor('pgferry to apply the load', 50, async () => (await historyRows(target, FERRY_DB)) === endRows);
  if (!nativeMissing)
    await target.withClient(NATIVE_DB, (c) => waitFor('the native replica to apply the load', 50, () => nativeHolds(c, endLsn, endRows)));
  follower.child.kill('SIGTERM');
  const stopped = await follower.exited;
  complaints.push(...follower.complaints);
  follower = undefined;
  const [nativeFinal, ferryFinal] = await Promise.all([nativeMissing ? undefined : verify(NATIVE_DB), verify(FERRY_DB)]);

  // The report.
  const cpu = cpus();
  console.log(
    `\nMachine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}; PostgreSQL 15 → 15, durable settings (fsync, synchronous_commit, full_page_writes on).`,
  );
  console.log(`Command: node dist/bench/sync.js ${transactions} ${scale} ${rate} ${seconds}\n`);
  console.log(
    `Catch-up: a backlog of ${backlog} pgbench transactions (scale ${scale}, ${CLIENTS} clients; 3 updates + 1 insert each), each side applying it alone:\n`,
  );
  console.log(
    '| round | native s | native tps | pgferry s (process) | pgferry tps | pgferry / native | pgferry streaming→caught up s (own log) | pgferry transactions applied | content equal: native / pgferry |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const [i, r] of rounds.entries()) {
    const ferryTps = backlog / r.ferry.seconds;
    const nativeCells =
      r.native === undefined
        ? [nativeMissing, '', '-']
        : [r.native.toFixed(2), Math.round(backlog / r.native), `${(ferryTps / (backlog / r.native)).toFixed(2)}×`];
    console.log(
      `| ${i + 1} | ${nativeCells[0]} | ${nativeCells[1]} | ${r.ferry.seconds.toFixed(2)} | ${Math.round(ferryTps)} | ${nativeCells[2]} | ${r.ferry.streamingSeconds?.toFixed(2) ?? '?'} | ${r.ferry.applied} | ${r.nativeEqual} / ${r.ferryEqual} |`,
    );
  }
  const percentile = (values: number[], p: number) =>
    [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.ceil((p / 100) * values.length) - 1)] ?? NaN;
  console.log(
    `\nSteady state: pgbench -R ${rate} -T ${seconds} -c ${CLIENTS} -j ${THREADS} (achieved ${achieved} tps); lag = age of the newest pgbench_history row, sampled every 100 ms (${lag.ferry.length} samples):\n`,
  );
  console.log('| | p50 s | p99 s | max s |');
  console.log('|---|---:|---:|---:|');
  const lagRows: Array<[string, number[]]> = [
    ['source itself (the floor: what a replica applying instantly would show)', lag.source],
    ['native subscription', lag.native],
    ['pgferry sync', lag.ferry],
  ];
  for (const [name, values] of lagRows) {
    if (name === 'native subscription' && nativeMissing) console.log(`| ${name} | ${nativeMissing} | | |`);
    else
      console.log(
        `| ${name} | ${percentile(values, 50).toFixed(3)} | ${percentile(values, 99).toFixed(3)} | ${Math.max(...values).toFixed(3)} |`,
      );
  }
  console.log(`\npgferry sync stopped by SIGTERM: exit ${stopped.code}${stopped.code === 0 ? '' : ' (expected 0)'}.`);
  console.log(`Content at the end, pgferry_target: ${ferryFinal.equal ? 'EQUAL' : 'NOT EQUAL'} to the source (${ferryFinal.detail}).`);
  if (nativeFinal)
    console.log(`Content at the end, native_target: ${nativeFinal.equal ? 'EQUAL' : 'NOT EQUAL'} to the source (${nativeFinal.detail}).`);
  console.log(
    complaints.length === 0
      ? 'pgferry logged no warnings or errors.'
      : `pgferry logged ${complaints.length} warning(s)/error(s):\n${complaints.join('\n')}`,
  );
  if (!ferryFinal.equal || (nativeFinal && !nativeFinal.equal) || stopped.code !== 0 || rounds.some((r) => r.ferryEqual !== 'yes'))
    process.exitCode = 1;
} finally {
  // A pgferry left running (the run failed mid-way) would hold the target open.
  if (follower && follower.child.exitCode === null) {
    follower.child.kill('SIGTERM');
    await Promise.race([follower.exited, sleep(10_000)]);
  }
  await Promise.all([source.stop(), target.stop()]);
}
