/**
 * The first copy of one database, four ways, on the same two servers, in alternating order:
 * `pgferry clone`, `pgferry sync --until-caught-up`, a native subscription's copy, and
 * pglogical's (when Debian's postgresql-15-pglogical is installed). For each run: the wall
 * time and the CPU seconds of every process involved: pgferry's node process (from
 * /usr/bin/time) and each server's processes (the postmaster and its children, from /proc,
 * counting backends that ended during the run through the postmaster's reaped-children times).
 *
 *   npm run build && node dist/bench/copy-race.js [scale=30] [rounds=2] [OTHER_PGFERRY_BIN]
 *
 * OTHER_PGFERRY_BIN (another build's bin/pgferry.js or dist/pgferry.mjs) adds its clone and
 * sync to the race, for a before/after of pgferry's CPU per GB. The native and pglogical runs
 * get the schema first, untimed (they do not copy it); pgferry's times include its schema,
 * indexes and ANALYZE. The servers keep the harness's fast settings (fsync off).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createPgbenchTables, startClusters, type Cluster } from '../test/harness/index.js';

const run = promisify(execFile);
const scale = Number(process.argv[2] ?? 30);
const rounds = Number(process.argv[3] ?? 2);
const other = process.argv[4];
const mine = fileURLToPath(new URL('../../bin/pgferry.js', import.meta.url));
const PG_BIN = '/usr/lib/postgresql/15/bin';
const TIME = '/usr/bin/time';
const CLOCK_TICKS = Number((await run('getconf', ['CLK_TCK'])).stdout.trim());
const withPglogical = existsSync('/usr/share/postgresql/15/extension/pglogical.control');
const DEADLINE_MS = 30 * 60_000;

if (!existsSync(TIME)) throw new Error(`${TIME} is needed to measure pgferry's CPU (apt-get install time)`);

/** CPU seconds of a server: its postmaster, the children alive now, and the children it reaped. */
function serverCpu(cluster: Cluster): number {
  const postmaster = Number(readFileSync(join(cluster.directory, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // ended since the listing
    }
    // Fields after "pid (comm) ": state, ppid, …; utime and stime are fields 14 and 15, the
    // reaped children's cutime and cstime 16 and 17.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pid = Number(entry);
    const ppid = Number(fields[1]);
    if (pid === postmaster) ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    else if (ppid === postmaster) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLOCK_TICKS;
}

interface Measured {
  readonly wall: number;
  readonly pgferryCpu?: number;
  readonly sourceCpu: number;
  readonly targetCpu: number;
  /** sync: seconds between "streaming changes" and "caught up" in its log. */
  readonly idle?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, test: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`${what}: not done within ${DEADLINE_MS / 60_000} minutes`);
    await sleep(100);
  }
}

/** Runs pgferry under /usr/bin/time; returns its CPU seconds and its log (stderr). */
function pgferry(bin: string, args: readonly string[]): Promise<{ cpu: number; log: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'pgferry-race-'));
  const timeFile = join(dir, 'time');
  return new Promise((resolve, reject) => {
    const child = spawn(TIME, ['-f', '%U %S', '-o', timeFile, process.execPath, bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
    child.once('close', (code) => {
      const times = existsSync(timeFile) ? readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number) : [];
      rmSync(dir, { recursive: true, force: true });
      if (code !== 0) reject(new Error(`pgferry ${args[0]} exited with ${code}: ${log.split('\n').slice(-5).join(' ')}`));
      else resolve({ cpu: (times[0] ?? NaN) + (times[1] ?? NaN), log });
    });
  });
}

/** Seconds between two messages of a pino log. */
function gap(log: string, from: string, to: string): number | undefined {
  const times = new Map<string, number>();
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { msg?: string; time?: number };
    if (entry.msg !== undefined && entry.time !== undefined && !times.has(entry.msg)) times.set(entry.msg, entry.time);
  }
  const a = times.get(from);
  const b = times.get(to);
  return a === undefined || b === undefined ? undefined : (b - a) / 1000;
}

const settings = { max_wal_senders: 20, max_replication_slots: 20, max_worker_processes: 16, max_logical_replication_workers: 6 };
const [source, target] = await startClusters(
  withPglogical
    ? [
        {
          version: 15,
          distribution: 'debian',
          extensions: ['pglogical'],
          settings: { ...settings, shared_preload_libraries: 'pglogical' },
        },
        {
          version: 15,
          distribution: 'debian',
          extensions: ['pglogical'],
          settings: { ...settings, shared_preload_libraries: 'pglogical' },
        },
      ]
    : [
        { version: 15, settings },
        { version: 15, settings },
      ],
);
try {
  const db = 'race';
  await source.sql('postgres', `CREATE DATABASE ${db}`);
  await createPgbenchTables(source, db, scale);
  await source.sql(db, 'ALTER TABLE pgbench_history REPLICA IDENTITY FULL');
  await source.sql(db, 'VACUUM ANALYZE');
  const tableBytes = Number(
    (
      await source.sql(
        db,
        `SELECT sum(pg_table_size(c.oid))::bigint AS b FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'`,
      )
    ).rows[0].b,
  );
  const gb = tableBytes / 1024 ** 3;
  const psqlEnv = { ...process.env, PGPASSWORD: source.password };
  const conn = (c: Cluster, database: string) => ['-h', c.host, '-p', String(c.port), '-U', c.superuser, '-d', database];
  const dsn = (c: Cluster, database: string) =>
    `host=${c.host} port=${c.port} dbname=${database} user=${c.superuser} password=${c.password}`;

  // A new target database per run: DROP DATABASE waits on a ProcSignalBarrier that pglogical 2.4's
  // supervisor does not absorb for minutes. They are all dropped with the servers.
  let runs = 0;
  let targetDb = db;
  const freshTarget = async (withSchema: boolean) => {
    targetDb = `${db}_${++runs}`;
    await target.sql('postgres', `CREATE DATABASE ${targetDb}`);
    if (withSchema) {
      const { stdout } = await run(join(PG_BIN, 'pg_dump'), ['--schema-only', '--table=public.*', ...conn(source, db)], {
        env: psqlEnv,
        maxBuffer: 64 * 1024 * 1024,
      });
      // psql meta-commands (pg_dump's \restrict and \unrestrict lines) are not SQL.
      await target.sql(
        targetDb,
        stdout
          .split('\n')
          .filter((line) => !line.startsWith('\\'))
          .join('\n'),
      );
    }
    // pgferry's slots and publication from an earlier sync: each run starts as the first.
    await source.sql(
      db,
      `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'pgferry%' AND NOT active`,
    );
  };

  const serversAround = async (work: () => Promise<{ pgferryCpu?: number; idle?: number }>): Promise<Measured> => {
    const before = { source: serverCpu(source), target: serverCpu(target) };
    const started = performance.now();
    const extra = await work();
    const wall = (performance.now() - started) / 1000;
    return { wall, ...extra, sourceCpu: serverCpu(source) - before.source, targetCpu: serverCpu(target) - before.target };
  };

  const pgferryArgs = (command: 'clone' | 'sync') => [
    command,
    '--source',
    source.url(db),
    '--target',
    target.url(targetDb),
    '--jobs',
    '2',
    ...(command === 'sync' ? ['--until-caught-up'] : ['--index-jobs', '2']),
  ];
  const contenders: Array<{ name: string; go: () => Promise<Measured> }> = [];
  for (const [label, bin] of [['', mine] as const, ...(other ? [[' (other build)', other] as const] : [])]) {
    contenders.push({
      name: `pgferry clone${label}`,
      go: async () => {
        await freshTarget(false);
        return serversAround(async () => ({ pgferryCpu: (await pgferry(bin, pgferryArgs('clone'))).cpu }));
      },
    });
    contenders.push({
      name: `pgferry sync --until-caught-up${label}`,
      go: async () => {
        await freshTarget(false);
        return serversAround(async () => {
          const { cpu, log } = await pgferry(bin, pgferryArgs('sync'));
          return { pgferryCpu: cpu, idle: gap(log, 'streaming changes', 'caught up; stopping') };
        });
      },
    });
  }
  contenders.push({
    name: 'native subscription (copy_data)',
    go: async () => {
      await freshTarget(true);
      await source.sql(db, 'DROP PUBLICATION IF EXISTS race; CREATE PUBLICATION race FOR ALL TABLES');
      const measured = await serversAround(async () => {
        await target.sql(targetDb, `CREATE SUBSCRIPTION race CONNECTION '${dsn(source, db)}' PUBLICATION race WITH (copy_data = true)`);
        await waitFor('the native subscription', async () => {
          const { rows } = await target.sql(
            targetDb,
            `SELECT count(*) FILTER (WHERE srsubstate <> 'r')::int AS busy, count(*)::int AS n FROM pg_subscription_rel`,
          );
          return rows[0].n > 0 && rows[0].busy === 0;
        });
        return {};
      });
      await target.sql(targetDb, 'DROP SUBSCRIPTION race');
      await source.sql(db, 'DROP PUBLICATION race');
      return measured;
    },
  });
  if (withPglogical) {
    contenders.push({
      name: 'pglogical 2 (synchronize_data)',
      go: async () => {
        await freshTarget(true);
        await source.sql(db, 'CREATE EXTENSION pglogical');
        await source.sql(db, `SELECT pglogical.create_node(node_name := 'provider', dsn := '${dsn(source, db)}')`);
        // pgbench_history has no key: pglogical takes it in its insert-only set only.
        await source.sql(
          db,
          `SELECT pglogical.replication_set_add_table(CASE WHEN c.relname = 'pgbench_history' THEN 'default_insert_only' ELSE 'default' END, c.oid)
             FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'`,
        );
        await target.sql(targetDb, 'CREATE EXTENSION pglogical');
        await target.sql(targetDb, `SELECT pglogical.create_node(node_name := 'subscriber', dsn := '${dsn(target, targetDb)}')`);
        const measured = await serversAround(async () => {
          await target.sql(
            targetDb,
            `SELECT pglogical.create_subscription(subscription_name := 'race', provider_dsn := '${dsn(source, db)}', replication_sets := ARRAY['default', 'default_insert_only'], synchronize_structure := false, synchronize_data := true)`,
          );
          await waitFor('the pglogical subscription', async () => {
            const { rows } = await target.sql(
              targetDb,
              `SELECT (SELECT status FROM pglogical.show_subscription_status('race')) AS status,
                      (SELECT count(*)::int FROM pglogical.local_sync_status WHERE sync_status <> 'r') AS busy,
                      (SELECT count(*)::int FROM pglogical.local_sync_status) AS n`,
            );
            return rows[0].status === 'replicating' && rows[0].n > 0 && rows[0].busy === 0;
          });
          return {};
        });
        await target.sql(targetDb, `SELECT pglogical.drop_subscription('race')`);
        await source.sql(db, `SELECT pglogical.drop_node('provider')`);
        await source.sql(db, 'DROP EXTENSION pglogical');
        return measured;
      },
    });
  } else console.log('pglogical: not run (apt-get install postgresql-15-pglogical)');

  console.log(
    `source: PostgreSQL 15 (${withPglogical ? "Debian's" : "npm's"}), pgbench scale ${scale}, tables ${(tableBytes / 1024 ** 2).toFixed(0)} MB; ${rounds} rounds, order alternating`,
  );
  const results = new Map<string, Measured[]>(contenders.map((c) => [c.name, []]));
  console.log('| round | run | wall s | pgferry CPU s | source CPU s | target CPU s | all CPU s | load (1 min) |');
  console.log('|---:|---|---:|---:|---:|---:|---:|---:|');
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? contenders : [...contenders].reverse();
    for (const contender of order) {
      const load = loadavg()[0]!;
      const m = await contender.go();
      // Each copied the rows (untimed): a run that finished early by mistake would look fast.
      const copied = (await target.sql(targetDb, 'SELECT count(*)::int AS n FROM pgbench_accounts')).rows[0].n as number;
      if (copied !== scale * 100_000) throw new Error(`${contender.name}: the target has ${copied} accounts, not ${scale * 100_000}`);
      results.get(contender.name)!.push(m);
      const all = (m.pgferryCpu ?? 0) + m.sourceCpu + m.targetCpu;
      console.log(
        `| ${round} | ${contender.name}${m.idle === undefined ? '' : ` (streaming → caught up ${m.idle.toFixed(2)} s)`} | ${m.wall.toFixed(2)} | ${m.pgferryCpu?.toFixed(2) ?? '-'} | ${m.sourceCpu.toFixed(2)} | ${m.targetCpu.toFixed(2)} | ${all.toFixed(2)} | ${load.toFixed(1)} |`,
      );
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log('');
  console.log(`medians over ${rounds} rounds; pgferry's CPU per GB of table data (${gb.toFixed(2)} GB):`);
  for (const [name, ms] of results) {
    const cpu = ms.filter((m) => m.pgferryCpu !== undefined).map((m) => m.pgferryCpu!);
    console.log(
      `  ${name}: wall ${median(ms.map((m) => m.wall)).toFixed(2)} s, all processes ${median(ms.map((m) => (m.pgferryCpu ?? 0) + m.sourceCpu + m.targetCpu)).toFixed(2)} CPU s${cpu.length > 0 ? `, pgferry ${median(cpu).toFixed(2)} CPU s = ${(median(cpu) / gb).toFixed(2)} CPU s/GB` : ''}`,
    );
  }
} finally {
  await Promise.all([source.stop(), target.stop()]);
}
