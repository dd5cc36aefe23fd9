/**
 * The change stream's memory bound: one backlog of about `walMB` MB of WAL (pgbench transactions
 * from several clients, plus large single-transaction UPDATEs of hundreds of thousands of rows,
 * well past a 16 MB limit), applied by `pgferry sync --until-caught-up` once per --memory-limit
 * variant. For each run: catch-up time and rate, the pgferry process's peak RSS and open file
 * descriptors, and the peak bytes of its spool ($TMPDIR/pgferry-spool-<pid>-*), all sampled
 * every 50 ms from /proc; then the target is compared with the source by content.
 *
 *   npm run build && node dist/bench/sync-memory.js [walMB=1024] [rounds=1] [limits=256MB,16MB] [scale=10]
 *
 * Every variant consumes the same backlog: each has its own target database and its own
 * migration (--name, so its own slot and publication), cloned by a first `sync --until-caught-up`
 * before any backlog is written; a round then writes one backlog and every variant applies all of
 * it from its slot (the order alternates between rounds). Each round also times pg_recvlogical
 * draining the same backlog into /dev/null from a slot of its own, with pgferry's protocol
 * options: the source's walsender alone, a floor no subscriber can go under.
 *
 * Time: pgbench's TPC-B transaction writes only ~0.5 kB of WAL once the full-page images after a
 * checkpoint are out, so most of the time goes into writing the backlog: on 2 busy cores the
 * default size took ~10 minutes to write (~460,000 transactions) and ~25 minutes in all.
 *
 * PG 15 source and target with durable settings, as bench/sync-catchup.ts. Needs pgbench and
 * pg_recvlogical 15 (postgresql-15). PGFERRY_ARGS adds options to every measured sync (e.g.
 * "--batch-changes 10000"), PGFERRY_NODE_ARGS options to pgferry's node, PGFERRY_DEBUG=1 prints
 * each run's log. The pgferry bundle (dist/pgferry.mjs) is copied when the
 * benchmark starts, so every variant runs the same build even if dist/ is rebuilt meanwhile.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { compareTables, startClusters, type Cluster } from '../test/harness/index.js';

const run = promisify(execFile);

function positive(given: string | undefined, fallback: number, what: string): number {
  const value = Number(given ?? fallback);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`bench/sync-memory: ${what} "${given}" is not a positive whole number`);
    process.exit(2);
  }
  return value;
}

const walMB = positive(process.argv[2], 1024, 'walMB');
const rounds = positive(process.argv[3], 1, 'rounds');
const limits = (process.argv[4] ?? '256MB,16MB')
  .split(',')
  .map((l) => l.trim())
  .filter((l) => l !== '');
const scale = positive(process.argv[5], 10, 'scale');
for (const limit of limits) {
  if (!/^\d+(kB|MB|GB)$/i.test(limit)) {
    console.error(`bench/sync-memory: memory limit "${limit}" is not a size like 256MB`);
    process.exit(2);
  }
}
if (limits.length === 0 || new Set(limits.map((l) => l.toLowerCase())).size !== limits.length) {
  console.error('bench/sync-memory: give distinct memory limits, e.g. 256MB,16MB');
  process.exit(2);
}
/** pgferry's own default: the variant the others are compared with (else the first given). */
const DEFAULT_LIMIT = limits.find((l) => l.toLowerCase() === '256mb') ?? limits[0]!;

const PG_BIN = '/usr/lib/postgresql/15/bin';
for (const tool of ['pgbench', 'pg_recvlogical']) {
  if (!existsSync(join(PG_BIN, tool))) {
    console.log(`bench/sync-memory: not run: no ${join(PG_BIN, tool)} (apt-get install postgresql-15)`);
    process.exit(0);
  }
}
const CLIENTS = 4;
const THREADS = 2;
const SOURCE_DB = 'bench';
const TABLES = ['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history'];
const PROBE = 'memory_probe';
const ACCOUNTS = scale * 100_000;
/**
 * The large transactions, one UPDATE of pgbench_accounts each, alternating: about 125 bytes of
 * pgoutput per row, so ~25 MB (sent whole: under the source's logical_decoding_work_mem of 64 MB)
 * and ~75 MB (over it: streamed by the source in pieces while still running). Both exceed 16 MB.
 */
const BIG_ROWS = [200_000, 600_000].map((rows) => Math.min(rows, ACCOUNTS));
/** Share of the backlog's WAL the large transactions may take; pgbench writes the rest. */
const BIG_SHARE = 0.4;
const BIG_WAL_PER_ROW = 400;
const SAMPLE_MS = 50;
const EXTRA_ARGS = (process.env.PGFERRY_ARGS ?? '').split(' ').filter((a) => a !== '');
const RUN_TIMEOUT_MS = 60 * 60_000;
const DURABLE = { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on', shared_buffers: '256MB', max_wal_size: '4GB' } as const;
const MB = 1024 * 1024;

// A private copy of the bundle: other work may rebuild dist/ while this runs.
const bundleSource = fileURLToPath(new URL('../pgferry.mjs', import.meta.url));
const bundleDir = mkdtempSync(join(tmpdir(), 'pgferry-bench-bundle-'));
process.on('exit', () => rmSync(bundleDir, { recursive: true, force: true }));
const BUNDLE = join(bundleDir, 'pgferry.mjs');
copyFileSync(bundleSource, BUNDLE);
const bundleHash = createHash('sha256').update(readFileSync(BUNDLE)).digest('hex').slice(0, 12);

const variants = limits.map((limit, i) => {
  const name = `mem_${i + 1}_${limit.toLowerCase()}`;
  return { limit, name, db: name, slot: `pgferry_${name}` };
});
type Variant = (typeof variants)[number];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const [source, target] = await startClusters([
  { version: 15, settings: DURABLE },
  { version: 15, settings: DURABLE },
]);
const sourceUrl = source.url(SOURCE_DB);
const pgEnv = { ...process.env, PGPASSWORD: source.password };
const conn = ['-h', source.host, '-p', String(source.port), '-U', source.superuser];

async function one<T>(cluster: Cluster, db: string, text: string, values?: unknown[]): Promise<T> {
  return (await cluster.sql(db, text, values)).rows[0] as T;
}
const insertLsn = async () => (await one<{ lsn: string }>(source, SOURCE_DB, 'SELECT pg_current_wal_insert_lsn()::text AS lsn')).lsn;
const walSince = async (lsn: string) =>
  Number(
    (await one<{ b: string }>(source, SOURCE_DB, `SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::text AS b`, [lsn])).b,
  );

/** What /proc said about the pgferry process, at its highest. */
interface Peaks {
  rss: number;
  /** The kernel's own high-water mark of RSS (VmHWM), from the last sample. */
  hwm: number;
  fds: number;
  spool: number;
  /** User + system CPU seconds at the last sample. */
  cpu: number;
  samples: number;
}

const TMP = tmpdir();
const spoolDirs = (pid: number) =>
  readdirSync(TMP)
    .filter((name) => name.startsWith(`pgferry-spool-${pid}-`))
    .map((name) => join(TMP, name));

function spoolBytes(pid: number): number {
  let total = 0;
  for (const dir of spoolDirs(pid)) {
    let files: string[];
    try {
      files = readdirSync(dir);
    } catch {
      continue; // removed meanwhile
    }
    for (const file of files) {
      try {
        total += statSync(join(dir, file)).size;
      } catch {
        // a segment deleted meanwhile
      }
    }
  }
  return total;
}

function sample(pid: number, peaks: Peaks): void {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kB = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    const rss = kB('VmRSS') * 1024;
    const hwm = kB('VmHWM') * 1024;
    if (rss > peaks.rss) peaks.rss = rss;
    if (hwm > peaks.hwm) peaks.hwm = hwm;
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
      .replace(/^.*\) /, '')
      .split(' ');
    peaks.cpu = (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return; // exited (or a zombie with no memory left to report)
  }
  try {
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    if (fds > peaks.fds) peaks.fds = fds;
  } catch {
    // exited
  }
  const spool = spoolBytes(pid);
  if (spool > peaks.spool) peaks.spool = spool;
  peaks.samples++;
}

interface FerryRun {
  readonly seconds: number;
  /** From pgferry's log: 'streaming changes' to 'caught up; stopping'. */
  readonly streamingSeconds: number;
  readonly transactions: number;
  readonly peaks: Peaks;
  /** Bytes in spool directories of this process still there after it exited. */
  readonly spoolLeft: number;
  readonly warnings: string[];
}

function pgferry(variant: Variant, extra: string[] = []): Promise<FerryRun> {
  const nodeArgs = (process.env.PGFERRY_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const args = [
    'sync',
    '--source',
    sourceUrl,
    '--target',
    target.url(variant.db),
    '--name',
    variant.name,
    '--memory-limit',
    variant.limit,
    '--until-caught-up',
    '--json',
    ...extra,
  ];
  const started = performance.now();
  const child = spawn(process.execPath, [...nodeArgs, BUNDLE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid!;
  const peaks: Peaks = { rss: 0, hwm: 0, fds: 0, spool: 0, cpu: 0, samples: 0 };
  sample(pid, peaks);
  const sampler = setInterval(() => sample(pid, peaks), SAMPLE_MS);
  const killer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', () => {
      // The last sample, as close to the exit as we get: the process is a zombie until reaped.
      clearInterval(sampler);
      clearTimeout(killer);
    });
    child.on('close', (code, signal) => {
      const seconds = (performance.now() - started) / 1000;
      let spoolLeft = 0;
      const left = spoolDirs(pid);
      if (left.length > 0) {
        spoolLeft = spoolBytes(pid);
        for (const dir of left) rmSync(dir, { recursive: true, force: true });
      }
      if (code !== 0) {
        reject(new Error(`pgferry sync (--memory-limit ${variant.limit}) exited ${code ?? signal}:\n${stderr.slice(-4000)}`));
        return;
      }
      const log = stderr
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: number; msg: string; time: number });
      if (process.env.PGFERRY_DEBUG) for (const line of log) console.error(JSON.stringify(line));
      const at = (msg: string) => log.find((l) => l.msg === msg)?.time ?? NaN;
      const summary = JSON.parse(stdout) as { transactions: number };
      resolve({
        seconds,
        streamingSeconds: (at('caught up; stopping') - at('streaming changes')) / 1000,
        transactions: summary.transactions,
        peaks,
        spoolLeft,
        warnings: log.filter((l) => l.level >= 40).map((l) => JSON.stringify(l)),
      });
    });
  });
}

interface SlotStats {
  total_txns: number;
  total_bytes: number;
  stream_txns: number;
  stream_bytes: number;
  spill_txns: number;
  spill_bytes: number;
}

/** The source's decoding counters of a slot (cumulative), once its walsender has let go of it. */
async function slotStats(slot: string): Promise<SlotStats> {
  for (let i = 0; i < 100; i++) {
    const { active } = await one<{ active: boolean }>(source, SOURCE_DB, 'SELECT active FROM pg_replication_slots WHERE slot_name = $1', [
      slot,
    ]);
    if (!active) break;
    await sleep(50);
  }
  const row = await one<Record<keyof SlotStats, string>>(
    source,
    SOURCE_DB,
    `SELECT total_txns::text, total_bytes::text, stream_txns::text, stream_bytes::text, spill_txns::text, spill_bytes::text FROM pg_stat_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  return {
    total_txns: Number(row?.total_txns ?? 0),
    total_bytes: Number(row?.total_bytes ?? 0),
    stream_txns: Number(row?.stream_txns ?? 0),
    stream_bytes: Number(row?.stream_bytes ?? 0),
    spill_txns: Number(row?.spill_txns ?? 0),
    spill_bytes: Number(row?.spill_bytes ?? 0),
  };
}
const minus = (a: SlotStats, b: SlotStats): SlotStats => ({
  total_txns: a.total_txns - b.total_txns,
  total_bytes: a.total_bytes - b.total_bytes,
  stream_txns: a.stream_txns - b.stream_txns,
  stream_bytes: a.stream_bytes - b.stream_bytes,
  spill_txns: a.spill_txns - b.spill_txns,
  spill_bytes: a.spill_bytes - b.spill_bytes,
});

/** Compares a variant's target with the source; throws, naming the differences, if they differ. */
async function verify(variant: Variant, when: string): Promise<void> {
  const result = await compareTables(sourceUrl, target.url(variant.db), TABLES);
  if (result.equal) return;
  const detail = result.tables
    .filter((t) => !t.equal)
    .map(
      (t) =>
        `${t.table}: source ${t.sourceRows} rows, target ${t.targetRows}${t.problem ? `, ${t.problem}` : ''}; only on source: ${t.onlyOnSource.join(' ')}; only on target: ${t.onlyOnTarget.join(' ')}`,
    )
    .join('\n  ');
  throw new Error(
    `CONTENT DIFFERS: target ${variant.db} (--memory-limit ${variant.limit}) is not equal to the source ${when}:\n  ${detail}`,
  );
}

interface Backlog {
  readonly walBytes: number;
  readonly pgbenchTransactions: number;
  /** Rows of each large UPDATE, in the order they ran. */
  readonly big: number[];
  readonly bigWalBytes: number;
  readonly seconds: number;
}

/** One large UPDATE in one transaction; returns the WAL it wrote (EXPLAIN's own count, concurrent pgbench WAL excluded). */
async function bigUpdate(rows: number, k: number): Promise<number> {
  const lo = 1 + ((k * 137_777) % (ACCOUNTS - rows + 1));
  const { rows: plan } = await source.sql(
    SOURCE_DB,
    `EXPLAIN (ANALYZE, WAL, TIMING OFF, FORMAT JSON) UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid BETWEEN ${lo} AND ${lo + rows - 1}`,
  );
  const root = (plan[0] as { 'QUERY PLAN': Array<{ Plan: { 'WAL Bytes': number } }> })['QUERY PLAN'][0]!;
  return root.Plan['WAL Bytes'];
}

/**
 * Writes about walMB MB of WAL: pgbench in chunks (CLIENTS clients), each chunk with a large
 * UPDATE running alongside while the large ones are under BIG_SHARE of the WAL so far. Each
 * chunk's length is chosen from the rate so far, so the total lands near the goal.
 */
async function buildBacklog(round: number): Promise<Backlog> {
  const goal = walMB * MB;
  const started = performance.now();
  const start = await insertLsn();
  let done = 0;
  let pgbenchTransactions = 0;
  let bigWalBytes = 0;
  const big: number[] = [];
  /** pgbench's own WAL per second, measured, and the WAL of each large size so far. */
  let pgbenchRate: number | undefined;
  const bigWalOf = new Map<number, number>();
  while (done < goal) {
    // The sizes take turns (from a different one each round); a large UPDATE writes some 300-450
    // bytes of WAL a row (full-page images included), and one that would overshoot the goal
    // gives way to a smaller one, or to none.
    const guess = (rows: number) => bigWalOf.get(rows) ?? rows * BIG_WAL_PER_ROW;
    const rows = BIG_ROWS.map((_, j) => BIG_ROWS[(round - 1 + big.length + j) % BIG_ROWS.length]!).find((r) => guess(r) <= goal - done);
    const doBig = rows !== undefined && bigWalBytes <= BIG_SHARE * done;
    const expectedBig = doBig ? guess(rows) : 0;
    const seconds = pgbenchRate === undefined ? 5 : Math.max(2, Math.min(60, Math.ceil((goal - done - expectedBig) / pgbenchRate)));
    const chunkStart = await insertLsn();
    const bench = run(
      join(PG_BIN, 'pgbench'),
      ['-n', '-c', String(CLIENTS), '-j', String(THREADS), '-T', String(seconds), ...conn, SOURCE_DB],
      { env: pgEnv, maxBuffer: 16 * MB },
    );
    // Started a moment after pgbench, so it is decoded interleaved with pgbench's commits.
    const update = doBig ? sleep(500).then(() => bigUpdate(rows, big.length + round * 7)) : Promise.resolve(0);
    const [report, bigWal] = await Promise.all([bench, update]);
    const processed = /number of transactions actually processed: (\d+)/.exec(report.stdout);
    if (!processed) throw new Error(`pgbench printed no transaction count:\n${report.stdout}`);
    pgbenchTransactions += Number(processed[1]);
    const chunkWal = await walSince(chunkStart);
    if (doBig) {
      big.push(rows);
      bigWalBytes += bigWal;
      bigWalOf.set(rows, bigWal);
    }
    pgbenchRate = Math.max(1, chunkWal - bigWal) / seconds;
    done = await walSince(start);
    process.stderr.write(
      `  backlog: ${(done / MB).toFixed(0)} / ${walMB} MB of WAL (${pgbenchTransactions} pgbench transactions, ${big.length} large)\n`,
    );
  }
  return { walBytes: done, pgbenchTransactions, big, bigWalBytes, seconds: (performance.now() - started) / 1000 };
}

interface RoundResult {
  readonly round: number;
  readonly backlog: Backlog;
  readonly walsender: number;
  readonly runs: Array<{ variant: Variant; ferry: FerryRun; slot: SlotStats; load: number }>;
}

const results: RoundResult[] = [];
const notes: string[] = [];

try {
  await source.sql('postgres', `CREATE DATABASE ${SOURCE_DB}`);
  for (const v of variants) await target.sql('postgres', `CREATE DATABASE ${v.db}`);
  process.stderr.write(`pgbench -i -s ${scale}\n`);
  await run(join(PG_BIN, 'pgbench'), ['-i', '-q', '-s', String(scale), ...conn, SOURCE_DB], { env: pgEnv, maxBuffer: 16 * MB });
  // pgferry refuses a table with no key; pgbench only inserts into history.
  await source.sql(SOURCE_DB, 'ALTER TABLE pgbench_history REPLICA IDENTITY FULL');
  // Each variant's clone and slot, all before any backlog: every slot then sees the same changes.
  for (const v of variants) {
    process.stderr.write(`initial sync of ${v.db}\n`);
    await pgferry(v);
    await verify(v, 'after the initial clone');
  }

  for (let round = 1; round <= rounds; round++) {
    // The walsender's own slot, on the first variant's publication (the same tables).
    await source.sql(SOURCE_DB, `SELECT pg_create_logical_replication_slot('${PROBE}', 'pgoutput')`);
    await source.sql(SOURCE_DB, 'CHECKPOINT');
    process.stderr.write(`round ${round}: building the backlog\n`);
    const backlog = await buildBacklog(round);
    const goal = await insertLsn();

    // The floor: the walsender decoding and sending the backlog, nobody applying it.
    await Promise.all([source.sql(SOURCE_DB, 'CHECKPOINT'), target.sql('postgres', 'CHECKPOINT')]);
    const probeStarted = performance.now();
    await run(
      join(PG_BIN, 'pg_recvlogical'),
      [
        ...conn,
        '-d',
        SOURCE_DB,
        '-S',
        PROBE,
        '--start',
        '-E',
        goal,
        '-o',
        'proto_version=3',
        '-o',
        'streaming=on',
        '-o',
        'messages=true',
        '-o',
        `publication_names=${variants[0]!.slot}`,
        '-f',
        '/dev/null',
        '--no-loop',
      ],
      { env: pgEnv, timeout: RUN_TIMEOUT_MS },
    );
    const walsender = (performance.now() - probeStarted) / 1000;
    await source.sql(SOURCE_DB, `SELECT pg_drop_replication_slot('${PROBE}')`);

    const order = round % 2 === 1 ? variants : [...variants].reverse();
    const runs: RoundResult['runs'] = [];
    for (const v of order) {
      await Promise.all([source.sql(SOURCE_DB, 'CHECKPOINT'), target.sql('postgres', 'CHECKPOINT')]);
      const before = await slotStats(v.slot);
      const load = loadavg()[0]!;
      process.stderr.write(`round ${round}: pgferry sync --memory-limit ${v.limit}\n`);
      const ferry = await pgferry(v, [...(process.env.PGFERRY_DEBUG ? ['--debug'] : []), ...EXTRA_ARGS]);
      const slot = minus(await slotStats(v.slot), before);
      await verify(v, `after round ${round}`);
      if (ferry.warnings.length > 0)
        notes.push(
          `round ${round}, --memory-limit ${v.limit}: pgferry logged ${ferry.warnings.length} warning(s): ${ferry.warnings.join(' ')}`,
        );
      runs.push({ variant: v, ferry, slot, load });
    }
    results.push({ round, backlog, walsender, runs });
  }

  // The report.
  const cpu = cpus();
  let cgroupMemory = '';
  try {
    const max = readFileSync('/sys/fs/cgroup/memory.max', 'utf8').trim();
    if (max !== 'max') cgroupMemory = `, cgroup memory.max ${(Number(max) / MB / 1024).toFixed(1)} GiB`;
  } catch {
    // no cgroup v2 limit to report
  }
  const mb = (bytes: number) => (bytes / MB).toFixed(1);
  console.log(
    `\nMachine: ${cpu.length} cores (${cpu[0]?.model ?? 'unknown CPU'}), ${(totalmem() / MB / 1024).toFixed(1)} GiB memory${cgroupMemory}; shared with other work while this ran, so the figures are indicative.`,
  );
  console.log('PostgreSQL 15 → 15, durable settings (fsync, synchronous_commit, full_page_writes on; shared_buffers 256MB).');
  const envPrefix = ['PGFERRY_ARGS', 'PGFERRY_NODE_ARGS']
    .filter((k) => process.env[k])
    .map((k) => `${k}='${process.env[k]}' `)
    .join('');
  console.log(`Command: ${envPrefix}node dist/bench/sync-memory.js ${walMB} ${rounds} ${limits.join(',')} ${scale}`);
  console.log(`pgferry bundle: dist/pgferry.mjs as of the start (sha256 ${bundleHash}); spool in ${TMP}.\n`);
  for (const r of results) {
    const b = r.backlog;
    const txns = b.pgbenchTransactions + b.big.length;
    console.log(
      `Round ${r.round} backlog: ${mb(b.walBytes)} MB of WAL written in ${b.seconds.toFixed(0)} s: ${b.pgbenchTransactions} pgbench transactions (${CLIENTS} clients, scale ${scale}) ` +
        `and ${b.big.length} large UPDATEs of pgbench_accounts in one transaction each (rows: ${b.big.join(', ') || 'none'}; ${mb(b.bigWalBytes)} MB of the WAL), ${txns} transactions in all.`,
    );
  }
  console.log(
    '\n| round | run | catch-up s | streaming s (own log) | WAL MB/s | txn/s | × default time | × walsender time | peak RSS MB (50 ms samples) | VmHWM MB | peak fds | peak spool MB | spool left | CPU s | source: txns decoded, streamed (in pieces), spilled | equal |',
  );
  console.log('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---|');
  for (const r of results) {
    const wal = r.backlog.walBytes / MB;
    const txns = r.backlog.pgbenchTransactions + r.backlog.big.length;
    console.log(
      `| ${r.round} | pg_recvlogical → /dev/null (walsender alone) | ${r.walsender.toFixed(2)} | | ${(wal / r.walsender).toFixed(1)} | ${Math.round(txns / r.walsender)} | | 1.00 | | | | | | | | |`,
    );
    const base = r.runs.find((x) => x.variant.limit === DEFAULT_LIMIT)!.ferry.seconds;
    for (const { variant, ferry, slot } of r.runs) {
      const p = ferry.peaks;
      console.log(
        `| ${r.round} | pgferry --memory-limit ${variant.limit} | ${ferry.seconds.toFixed(2)} | ${ferry.streamingSeconds.toFixed(2)} | ${(wal / ferry.seconds).toFixed(1)} | ${Math.round(ferry.transactions / ferry.seconds)} | ` +
          `${(ferry.seconds / base).toFixed(2)} | ${(ferry.seconds / r.walsender).toFixed(2)} | ${mb(p.rss)} | ${mb(p.hwm)} | ${p.fds} | ${mb(p.spool)} | ${ferry.spoolLeft > 0 ? `${mb(ferry.spoolLeft)} MB LEFT` : 'none'} | ${p.cpu.toFixed(1)} | ` +
          `${slot.total_txns}, ${slot.stream_txns} (${mb(slot.stream_bytes)} MB), ${slot.spill_txns} | yes |`,
      );
      if (ferry.transactions !== txns)
        notes.push(
          `round ${r.round}, --memory-limit ${variant.limit}: pgferry applied ${ferry.transactions} transactions, the backlog had ${txns}`,
        );
      if (ferry.spoolLeft > 0)
        notes.push(
          `round ${r.round}, --memory-limit ${variant.limit}: ${mb(ferry.spoolLeft)} MB of spool left in $TMPDIR after pgferry exited (removed by the benchmark)`,
        );
      if (p.samples < 10) notes.push(`round ${r.round}, --memory-limit ${variant.limit}: only ${p.samples} samples of /proc`);
    }
  }
  if (results.length > 1) {
    const median = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      const mid = Math.floor(sorted.length / 2);
      return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
    };
    console.log(`\nMedians over ${results.length} rounds:\n`);
    console.log('| run | catch-up s | × default time | × walsender time | peak RSS MB | peak fds | peak spool MB |');
    console.log('|---|---:|---:|---:|---:|---:|---:|');
    console.log(`| pg_recvlogical → /dev/null | ${median(results.map((r) => r.walsender)).toFixed(2)} | | 1.00 | | | |`);
    for (const v of variants) {
      const runs = results.map((r) => ({ r, x: r.runs.find((x) => x.variant === v)! }));
      console.log(
        `| pgferry --memory-limit ${v.limit} | ${median(runs.map(({ x }) => x.ferry.seconds)).toFixed(2)} | ` +
          `${median(runs.map(({ r, x }) => x.ferry.seconds / r.runs.find((y) => y.variant.limit === DEFAULT_LIMIT)!.ferry.seconds)).toFixed(2)} | ` +
          `${median(runs.map(({ r, x }) => x.ferry.seconds / r.walsender)).toFixed(2)} | ${mb(Math.max(...runs.map(({ x }) => x.ferry.peaks.rss)))} (max) | ` +
          `${Math.max(...runs.map(({ x }) => x.ferry.peaks.fds))} (max) | ${mb(Math.max(...runs.map(({ x }) => x.ferry.peaks.spool)))} (max) |`,
      );
    }
  }
  console.log(
    `\nRuns in order within a round: ${variants.map((v) => v.limit).join(', ')} on odd rounds, reversed on even ones; each after a CHECKPOINT on both servers. 1-minute load average before each: ${results.flatMap((r) => r.runs.map((x) => `${x.variant.limit} ${x.load.toFixed(2)}`)).join('; ')}.`,
  );
  console.log(
    'catch-up s: the whole `pgferry sync --until-caught-up` process, start-up included; WAL MB/s and txn/s: the backlog over that time. Peak RSS, fds and spool: highest of the /proc samples ' +
      `every ${SAMPLE_MS} ms (VmHWM: the kernel's own peak RSS); the spool is the sum of file sizes under ${TMP}/pgferry-spool-<pid>-*. The pg_recvlogical row uses pgferry's protocol options (proto_version 3, streaming on).`,
  );
  console.log('Every target was compared with the source by content after every run: all equal.');
  if (notes.length > 0) console.log(`\nNotes:\n- ${notes.join('\n- ')}`);
} finally {
  await Promise.all([source.stop(), target.stop()]);
}
