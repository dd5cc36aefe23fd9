/**
 * The cut-over as clients see it through PgBouncer, beside today's freeze without it, on the
 * same two servers (17 → 18): `rounds` cut-overs each way, alternating in direction through the
 * way back, with a client writing back to back (the harness writer: the longest time it went
 * without a commit is the pause it lived) and pgbench through the pool, either at a steady rate
 * (4 clients, 100 transactions/s) or at full speed (8 clients, no rate: as many transactions as
 * the machine runs). pgbench logs each transaction's latency: its longest is the longest any of
 * its clients waited. Through PgBouncer everything goes through the pool, which pgferry pauses,
 * repoints and resumes; without it the writer connects to the source and is pointed at the
 * target by hand once the cut-over returns, as today. Errors and lost writes are counted in all.
 * `ways` picks which of `rate`, `full` and `direct` (without PgBouncer) run, comma-separated.
 *
 *   npm run build && node dist/bench/pgbouncer.js [rounds=10] [ways=rate,full,direct]
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  PGBENCH,
  pgbenchThroughPool,
  runPgferry,
  spawnPgferry,
  startClusters,
  startPgbouncer,
  startWriter,
  stopSync,
  waitUntilStreaming,
  WRITER_SCHEMA_SQL,
  type Bouncer,
  type Cluster,
  type WriterReport,
} from '../test/harness/index.js';

const run = promisify(execFile);
/** The cut-over's steps taken with writes frozen (and clients paused). */
const FROZEN_STEPS = ['freeze', 'drain', 'fence', 'large objects', 'verify', 'stop sync', 'late writes', 'hand over', 'unfreeze target'];
const rounds = Number(process.argv[2] ?? 10);
const WAYS = {
  rate: 'PgBouncer, pgbench 100 tx/s',
  full: 'PgBouncer, pgbench full speed',
  direct: 'without PgBouncer',
} as const;
type WayKey = keyof typeof WAYS;
const chosen = (process.argv[3] ?? 'rate,full,direct').split(',') as WayKey[];
for (const key of chosen) if (!(key in WAYS)) throw new Error(`unknown way "${key}": rate, full or direct`);
const APP = { user: 'app', password: 'app-bench-1' };
const DB = 'shop';

interface Sample {
  readonly way: WayKey;
  readonly direction: 'forward' | 'back';
  /** The writer's longest gap between commits. */
  readonly clientPauseMs: number;
  /** pgbench's longest transaction running during the cut-over command (NaN without pgbench). */
  readonly longestTransactionMs: number;
  /** pgbench's longest transaction that ended before the cut-over began, while sync streamed. */
  readonly longestBeforeMs: number;
  /** pgbench's transactions per second over the round. */
  readonly tps: number;
  readonly reportedMs: number;
  /** The pause's own steps as pgferry timed them: pause, repoint, resume. */
  readonly pauseSteps: string;
  /** The freeze's own steps that took 10 ms or more: where a long pause went. */
  readonly frozenSteps: string;
  readonly errors: number;
  readonly lost: number;
  /** What the check inside the freeze compared: keys, pages of the record, keyless tables and how each side read them. */
  readonly inFreeze: string;
}

/** The part of the cut-over's report that says what its check inside the freeze compared. */
interface InsideFreeze {
  keysChecked: number;
  pages: number;
  ms: number;
  wholeTables: Array<{ table: string }>;
  keyless: Array<{ table: string; images: number; index: { source: string | null; target: string | null } }>;
}

function describeInFreeze(inside: InsideFreeze | null): string {
  if (inside === null) return '';
  const keyless = inside.keyless.map(
    (k) =>
      `${k.table} ${k.images} images (${k.index.source === null ? 'source read whole' : 'source by index'}, ${k.index.target === null ? 'target read whole' : 'target by index'})`,
  );
  const whole = inside.wholeTables.map((w) => `${w.table} whole`);
  return [`${inside.keysChecked} keys`, `${inside.pages} pages`, `${inside.ms} ms`, ...keyless, ...whole].join('; ');
}

/**
 * What a server logged since `offset` of its log that says where time or a cut-over went: statements
 * over log_min_duration_statement, and every deadlock with the processes and statements it names.
 */
function serverLogFindings(cluster: Cluster, offset: number): string[] {
  const lines = readFileSync(cluster.logFile, 'utf8').slice(offset).split('\n');
  const found: string[] = [];
  lines.forEach((line, i) => {
    if (line.includes('duration:')) found.push(line.replace(/\s+/g, ' ').slice(0, 300));
    if (line.includes('deadlock detected')) found.push(...lines.slice(i, i + 10).map((l) => l.replace(/\s+/g, ' ').slice(0, 400)));
  });
  return found;
}

interface Load {
  readonly failed: number;
  /** The longest transaction that was running at some moment of the cut-over command. */
  readonly longestMs: number;
  /**
   * The longest transaction that ended before the cut-over began: what pgbench's clients wait
   * anyway at this rate (at scale 1, eight clients queue on one branch row), to read the above against.
   */
  readonly longestBeforeMs: number;
  readonly tps: number;
}

/** When the cut-over command ran, on this machine's clock (ms since the epoch). */
interface Window {
  readonly from: number;
  readonly to: number;
}

const [old, now] = await startClusters([{ version: 17 }, { version: 18 }]);

function appUrl(host: string, port: number): string {
  return `postgres://${APP.user}:${APP.password}@${host}:${port}/${DB}`;
}

async function lostWrites(cluster: Cluster, report: WriterReport): Promise<number> {
  const { rows } = await cluster.sql(DB, `SELECT array_agg(id::text) AS ids FROM ledger`);
  const present = new Set((rows[0] as { ids: string[] }).ids);
  return report.committed.flatMap((c) => c.ledgerIds).filter((id) => !present.has(id)).length;
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface Running {
  /** Ends pgbench (SIGINT: it writes no summary, so everything is read from its per-transaction log). */
  stop(cutover: Window | undefined): Promise<Load>;
}

/**
 * pgbench through the pool at 100 tx/s or at full speed, from now until `stop`, however long the
 * cut-over takes (the steps ahead of the freeze take seconds, more under full load): its failed
 * transactions (an aborted client counts), its longest transaction and its rate.
 */
function load(bouncer: Bouncer, full: boolean): Running {
  const logs = mkdtempSync(join(tmpdir(), 'pgferry-bench-pgbench-'));
  const started = Date.now();
  const running = pgbenchThroughPool(bouncer, DB, APP, {
    seconds: 600,
    ...(full ? { clients: 8 } : { rate: 100 }),
    logPrefix: join(logs, 'tx'),
  });
  const ended = running.then(
    ({ stderr }) => stderr,
    (error: { stderr?: string }) => error.stderr ?? '',
  );
  let stopped: Promise<Load> | undefined;
  const stop = async (cutover: Window | undefined): Promise<Load> => {
    running.child.kill('SIGINT');
    const killer = setTimeout(() => running.child.kill('SIGKILL'), 10_000);
    const stderr = await ended;
    clearTimeout(killer);
    const seconds = (Date.now() - started) / 1000;
    try {
      // pgbench -l: client, transaction, latency in µs (or "failed"), script, end in s and µs since the epoch, …
      let longest = 0;
      let longestBefore = 0;
      let transactions = 0;
      let failed = 0;
      for (const file of readdirSync(logs))
        for (const line of readFileSync(join(logs, file), 'utf8').split('\n')) {
          const fields = line.split(' ');
          const field = fields[2];
          if (field === undefined) continue;
          if (field === 'failed') failed++;
          const latency = Number(field);
          transactions++;
          const endMs = Number(fields[4]) * 1000 + Number(fields[5]) / 1000;
          const startMs = endMs - latency / 1000;
          if (cutover === undefined || (endMs >= cutover.from && startMs <= cutover.to)) longest = Math.max(longest, latency);
          else if (endMs < cutover.from) longestBefore = Math.max(longestBefore, latency);
        }
      return {
        failed: failed + (stderr.match(/aborted/gi)?.length ?? 0),
        longestMs: longest / 1000,
        longestBeforeMs: longestBefore / 1000,
        tps: transactions / seconds,
      };
    } finally {
      rmSync(logs, { recursive: true, force: true });
    }
  };
  return { stop: (cutover) => (stopped ??= stop(cutover)) };
}

async function round(way: WayKey, direction: Sample['direction'], pooled: Bouncer): Promise<Sample> {
  const bouncer = way === 'direct' ? undefined : pooled;
  const [from, to] = direction === 'forward' ? [old, now] : [now, old];
  const args = ['--source', from.url(DB), '--target', to.url(DB)];
  const sync = spawnPgferry(['sync', ...args]);
  await waitUntilStreaming(to, DB, sync);
  const loaded = bouncer ? load(bouncer, way === 'full') : undefined;
  const writer = startWriter(
    bouncer ? bouncer.url(DB).replace(/^postgres:\/\/[^@]+@/, `postgres://${APP.user}:${APP.password}@`) : appUrl(from.host, from.port),
  );
  try {
    await writer.waitForCommits(200, 'source');
    const extra = bouncer ? ['--pgbouncer', bouncer.adminUrl, '--pgbouncer-ini', bouncer.ini] : [];
    const cutFrom = Date.now();
    const cut = await runPgferry(['cutover', ...args, '--json', ...extra], {}, 120_000);
    const cutover: Window = { from: cutFrom, to: Date.now() };
    if (cut.code !== 0) throw new Error(`cutover failed: ${cut.stderr}\n${sync.output()}`);
    if (!bouncer) writer.switchTo(appUrl(to.host, to.port));
    await (bouncer ? writer.waitForCommits(writer.committedCount + 100, 'source') : writer.waitForCommits(100, 'target'));
    const report = await writer.stop();
    const pgbench = await loaded?.stop(cutover);
    const failed = pgbench?.failed ?? 0;
    if (bouncer && report.unexpectedErrors.length + report.refused + failed > 0)
      console.error(
        `errors through PgBouncer: ${JSON.stringify({ unexpected: report.unexpectedErrors, refused: report.refused, pgbenchFailed: failed })}`,
      );
    const parsed = JSON.parse(cut.stdout) as {
      downtimeMs: number;
      pgbouncer: { pausedMs: number; timings?: Record<string, number> } | null;
      steps: Array<{ step: string; ms: number }>;
      checked?: { insideFreeze: InsideFreeze | null };
    };
    return {
      way,
      direction,
      clientPauseMs: bouncer ? report.longestGapMs : (report.switchGapMs ?? NaN),
      longestTransactionMs: pgbench?.longestMs ?? NaN,
      longestBeforeMs: pgbench?.longestBeforeMs ?? NaN,
      tps: pgbench?.tps ?? NaN,
      reportedMs: parsed.pgbouncer?.pausedMs ?? parsed.downtimeMs,
      // The switch's own timings where it reports them (after issue 33), else the cut-over's steps.
      pauseSteps: parsed.pgbouncer?.timings
        ? Object.entries(parsed.pgbouncer.timings)
            .map(([name, ms]) => `${name} ${ms}`)
            .join(', ')
        : parsed.steps
            .filter((step) => ['pause', 'repoint', 'resume'].includes(step.step))
            .map((step) => `${step.step} ${Math.round(step.ms * 10) / 10}`)
            .join(', '),
      frozenSteps: parsed.steps
        .filter((step) => FROZEN_STEPS.includes(step.step) && step.ms >= 10)
        .map((step) => `${step.step} ${Math.round(step.ms)}`)
        .join(', '),
      // Every error a client saw: the freeze's refusals and ended sessions too (none is expected through the pool).
      errors: report.unexpectedErrors.length + report.refused + failed,
      lost: await lostWrites(to, report),
      inFreeze: describeInFreeze(parsed.checked?.insideFreeze ?? null),
    };
  } finally {
    await loaded?.stop(undefined);
    await writer.stop();
    await stopSync(sync);
  }
}

let bouncer: Bouncer | undefined;
try {
  for (const cluster of [old, now]) {
    await cluster.sql('postgres', `CREATE ROLE ${APP.user} LOGIN PASSWORD '${APP.password}'`);
    await cluster.sql('postgres', `CREATE DATABASE ${DB}`);
  }
  await old.sql(DB, WRITER_SCHEMA_SQL);
  await old.sql(DB, `INSERT INTO items (payload) SELECT md5(g::text) FROM generate_series(1, 100000) g`);
  await run(PGBENCH, ['-i', '-q', '-s', '1', '-h', old.host, '-p', String(old.port), '-U', old.superuser, DB], {
    env: { ...process.env, PGPASSWORD: old.password },
  });
  await old.sql(
    DB,
    `ALTER TABLE pgbench_history REPLICA IDENTITY FULL;
     GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${APP.user};
     GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ${APP.user}`,
  );
  const cloned = await runPgferry(['sync', '--source', old.url(DB), '--target', now.url(DB), '--until-caught-up'], {}, 300_000);
  if (cloned.code !== 0) throw new Error(cloned.stderr);
  bouncer = await startPgbouncer(old, DB, { users: { [APP.user]: APP.password } });
  const pooled = bouncer;
  const samples: Sample[] = [];
  console.log(
    `load average before: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    '| round | way | direction | writer pause ms | pgbench longest tx ms (before the cut-over) | pgbench tps | pgferry-reported ms | pause steps ms | freeze steps ≥ 10 ms | errors | lost writes | checked inside the freeze |',
  );
  console.log('|---:|---|---|---:|---:|---:|---:|---|---|---:|---:|---|');
  let n = 0;
  let failures = 0;
  const logOffsets = new Map<Cluster, number>();
  for (const cluster of [old, now]) {
    await cluster.sql('postgres', `ALTER SYSTEM SET log_min_duration_statement = 300`);
    await cluster.sql('postgres', `SELECT pg_reload_conf()`);
    logOffsets.set(cluster, readFileSync(cluster.logFile, 'utf8').length);
  }
  for (let i = 0; i < rounds * 2 * chosen.length; i++) {
    // Each way makes a full trip (forward then back) before the next has its turn, in turn.
    const way = chosen[Math.floor(i / 2) % chosen.length]!;
    const direction: Sample['direction'] = i % 2 === 0 ? 'forward' : 'back';
    let sample: Sample | undefined;
    // A cut-over that fails leaves the data where it was: the same direction is tried again.
    for (let attempt = 1; sample === undefined; attempt++) {
      try {
        sample = await round(way, direction, pooled);
      } catch (error) {
        failures++;
        const first =
          String(error)
            .split('\n')
            .find((line) => line.startsWith('pgferry:')) ?? String(error).split('\n')[0];
        console.log(`| ${n + 1} | ${WAYS[way]} | ${direction} | cut-over failed (attempt ${attempt}): ${first} |`);
        if (attempt === 3) throw error;
      }
    }
    samples.push(sample);
    const ms = (value: number) => (Number.isNaN(value) ? '' : String(Math.round(value)));
    console.log(
      `| ${++n} | ${WAYS[sample.way]} | ${sample.direction} | ${ms(sample.clientPauseMs)} | ${ms(sample.longestTransactionMs)} (${ms(sample.longestBeforeMs)}) | ${ms(sample.tps)} | ${ms(sample.reportedMs)} | ${sample.pauseSteps} | ${sample.frozenSteps} | ${sample.errors} | ${sample.lost} | ${sample.inFreeze} |`,
    );
    // Statements either server took 300 ms or more over during the round, and deadlocks: where a long step or a failure went.
    for (const [name, cluster] of [
      ['17', old],
      ['18', now],
    ] as const) {
      for (const line of serverLogFindings(cluster, logOffsets.get(cluster) ?? 0)) console.log(`  on ${name}: ${line}`);
      logOffsets.set(cluster, readFileSync(cluster.logFile, 'utf8').length);
    }
  }
  console.log(`cut-overs that failed and were tried again: ${failures}`);
  console.log(
    `load average after: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log('');
  console.log(
    '| way | cut-overs | pgbench tps p50 | client pause p50 ms | max ms | pgbench longest tx p50 ms | max ms | pgbench longest tx before the cut-over p50 ms | PgBouncer pause (pgferry) p50 ms | errors | lost writes |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const way of chosen) {
    const of = samples.filter((s) => s.way === way);
    const pauses = of.map((s) => s.clientPauseMs);
    const longest = of.map((s) => s.longestTransactionMs);
    const ms = (value: number) => (Number.isNaN(value) ? '' : String(Math.round(value)));
    console.log(
      `| ${WAYS[way]} | ${of.length} | ${ms(
        percentile(
          of.map((s) => s.tps),
          50,
        ),
      )} | ${ms(percentile(pauses, 50))} | ${ms(Math.max(...pauses))} | ${ms(percentile(longest, 50))} | ${ms(Math.max(...longest))} | ${ms(
        percentile(
          of.map((s) => s.longestBeforeMs),
          50,
        ),
      )} | ${ms(
        percentile(
          of.map((s) => s.reportedMs),
          50,
        ),
      )} | ${of.reduce((a, s) => a + s.errors, 0)} | ${of.reduce((a, s) => a + s.lost, 0)} |`,
    );
  }
} finally {
  await bouncer?.stop();
  await Promise.all([old.stop(), now.stop()]);
}
