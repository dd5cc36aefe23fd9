/**
 * The cut-over as clients see it through PgBouncer, beside today's freeze without it, on the
 * same two servers (17 → 18): `rounds` cut-overs each way, alternating in direction through the
 * way back, with pgbench at a steady rate (4 clients, 100 transactions/s) and a client writing
 * back to back (the harness writer: the longest time it went without a commit is the pause it
 * lived). Through PgBouncer both go through the pool, which pgferry pauses, repoints and
 * resumes; without it the writer connects to the source and is pointed at the target by hand
 * once the cut-over returns, as today. Errors and lost writes are counted in both.
 *
 *   npm run build && node dist/bench/pgbouncer.js [rounds=10]
 */
import { execFile } from 'node:child_process';
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
const rounds = Number(process.argv[2] ?? 10);
const APP = { user: 'app', password: 'app-bench-1' };
const DB = 'shop';

interface Sample {
  readonly way: 'through PgBouncer' | 'without PgBouncer';
  readonly direction: 'forward' | 'back';
  readonly clientPauseMs: number;
  readonly reportedMs: number;
  readonly errors: number;
  readonly lost: number;
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

/** pgbench at a steady rate through the pool, for the whole round; resolves to its failed transactions (an abort counts). */
function steadyLoad(bouncer: Bouncer, seconds: number): Promise<number> {
  return pgbenchThroughPool(bouncer, DB, APP, { seconds, rate: 100 }).then(
    ({ stdout }) => Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? NaN) + (/aborted/i.test(stdout) ? 1 : 0),
    () => 1,
  );
}

async function round(way: Sample['way'], direction: Sample['direction'], bouncer: Bouncer | undefined): Promise<Sample> {
  const [from, to] = direction === 'forward' ? [old, now] : [now, old];
  const args = ['--source', from.url(DB), '--target', to.url(DB)];
  const sync = spawnPgferry(['sync', ...args]);
  await waitUntilStreaming(to, DB, sync);
  const load = bouncer ? steadyLoad(bouncer, 6) : undefined;
  const writer = startWriter(
    bouncer ? bouncer.url(DB).replace(/^postgres:\/\/[^@]+@/, `postgres://${APP.user}:${APP.password}@`) : appUrl(from.host, from.port),
  );
  try {
    await writer.waitForCommits(200, 'source');
    const extra = bouncer ? ['--pgbouncer', bouncer.adminUrl, '--pgbouncer-ini', bouncer.ini] : [];
    const cut = await runPgferry(['cutover', ...args, '--json', ...extra], {}, 120_000);
    if (cut.code !== 0) throw new Error(`cutover failed: ${cut.stderr}\n${sync.output()}`);
    if (!bouncer) writer.switchTo(appUrl(to.host, to.port));
    await (bouncer ? writer.waitForCommits(writer.committedCount + 100, 'source') : writer.waitForCommits(100, 'target'));
    const report = await writer.stop();
    const failed = load ? await load : 0;
    if (bouncer && report.unexpectedErrors.length + report.refused + failed > 0)
      console.error(
        `errors through PgBouncer: ${JSON.stringify({ unexpected: report.unexpectedErrors, refused: report.refused, pgbenchFailed: failed })}`,
      );
    const parsed = JSON.parse(cut.stdout) as { downtimeMs: number; pgbouncer: { pausedMs: number } | null };
    return {
      way,
      direction,
      clientPauseMs: bouncer ? report.longestGapMs : (report.switchGapMs ?? NaN),
      reportedMs: parsed.pgbouncer?.pausedMs ?? parsed.downtimeMs,
      // Every error a client saw: the freeze's refusals and ended sessions too (none is expected through the pool).
      errors: report.unexpectedErrors.length + report.refused + failed,
      lost: await lostWrites(to, report),
    };
  } finally {
    await writer.stop();
    await stopSync(sync);
  }
}

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
  const bouncer = await startPgbouncer(old, DB, { users: { [APP.user]: APP.password } });
  const samples: Sample[] = [];
  console.log('| round | way | direction | client pause ms | pgferry-reported ms | errors | lost writes |');
  console.log('|---:|---|---|---:|---:|---:|---:|');
  let n = 0;
  for (let i = 0; i < rounds * 2; i++) {
    // Each way makes a full trip (forward then back) before the other has its turn, alternating.
    const way: Sample['way'] = Math.floor(i / 2) % 2 === 0 ? 'through PgBouncer' : 'without PgBouncer';
    const direction: Sample['direction'] = i % 2 === 0 ? 'forward' : 'back';
    const sample = await round(way, direction, way === 'through PgBouncer' ? bouncer : undefined);
    samples.push(sample);
    console.log(
      `| ${++n} | ${sample.way} | ${sample.direction} | ${Math.round(sample.clientPauseMs)} | ${Math.round(sample.reportedMs)} | ${sample.errors} | ${sample.lost} |`,
    );
  }
  await bouncer.stop();
  console.log('');
  console.log('| way | cut-overs | client pause p50 ms | p99 ms | max ms | errors | lost writes |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const way of ['through PgBouncer', 'without PgBouncer'] as const) {
    const of = samples.filter((s) => s.way === way);
    const pauses = of.map((s) => s.clientPauseMs);
    console.log(
      `| ${way} | ${of.length} | ${Math.round(percentile(pauses, 50))} | ${Math.round(percentile(pauses, 99))} | ${Math.round(Math.max(...pauses))} | ${of.reduce((a, s) => a + s.errors, 0)} | ${of.reduce((a, s) => a + s.lost, 0)} |`,
    );
  }
} finally {
  await Promise.all([old.stop(), now.stop()]);
}
