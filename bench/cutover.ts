/**
 * The write freeze of a cut-over as the application sees it: the longest time a client writing
 * continuously goes without a successful commit, from its last commit on the source to its
 * first on the target, over several cut-overs on the same two servers (17 → 18).
 *
 *   npm run build && node dist/bench/cutover.js [rounds=5]   (PGFERRY_CUTOVER_ARGS="--no-fallback" to leave the way back out)
 *
 * Two ways to cut over, alternating:
 * - pgferry: `pgferry sync` running, then `pgferry cutover` (read-only freeze, fence, sequences,
 *   row counts, sync stopped); the client is pointed at the target as soon as it returns.
 * - by hand on a native subscription, as the usual runbook goes, scripted with 10 ms polls (a
 *   person at a prompt is far slower): database read-only, other sessions terminated, wait
 *   until the slot has confirmed the source's WAL position, copy each sequence value, drop the
 *   subscription; then the client is pointed at the target. It checks no row counts.
 * Both sides are checked for a lost write: every transaction the client saw commit must be on
 * the target.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import {
  runPgferry,
  spawnPgferry,
  startClusters,
  startWriter,
  WRITER_SCHEMA_SQL,
  type Cluster,
  type WriterReport,
} from '../test/harness/index.js';

const rounds = Number(process.argv[2] ?? 5);
/** PGFERRY_CUTOVER_ARGS adds options to pgferry's cutover (e.g. "--no-fallback" to time it without the way back). */
const CUTOVER_ARGS = (process.env.PGFERRY_CUTOVER_ARGS ?? '').split(' ').filter((a) => a !== '');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Round {
  readonly way: 'pgferry' | 'native';
  /** The client's own gap between its last source commit and first target commit. */
  readonly clientGapMs: number;
  /** What the tool itself reports (pgferry), or the script's own freeze-to-dropped time (native). */
  readonly reportedMs: number;
  readonly lost: number;
  /** Where the tool's time went. */
  readonly detail?: string;
}

async function prepare(source: Cluster, target: Cluster, prefix: string): Promise<string> {
  const db = await source.createDatabase({ prefix });
  await target.sql('postgres', `CREATE DATABASE ${db}`);
  await source.sql(db, WRITER_SCHEMA_SQL);
  await source.sql(
    db,
    `INSERT INTO items (payload) SELECT md5(g::text) FROM generate_series(1, 100000) g;
                        INSERT INTO ledger (item_id, op) SELECT id, 'insert' FROM items`,
  );
  return db;
}

async function lostWrites(target: Cluster, db: string, report: WriterReport): Promise<number> {
  const { rows } = await target.sql(db, `SELECT array_agg(id::text) AS ids FROM ledger`);
  const present = new Set((rows[0] as { ids: string[] }).ids);
  return report.committed.flatMap((c) => c.ledgerIds).filter((id) => !present.has(id)).length;
}

async function pgferryRound(source: Cluster, target: Cluster): Promise<Round> {
  const db = await prepare(source, target, 'ferry');
  const args = ['--source', source.url(db), '--target', target.url(db)];
  const sync = spawnPgferry(['sync', ...args]);
  while (!/"msg":"streaming"/.test(sync.output())) {
    if (sync.child.exitCode !== null) throw new Error(sync.output());
    await sleep(100);
  }
  const writer = startWriter(source.url(db));
  await writer.waitForCommits(300, 'source');
  const cut = await runPgferry(['cutover', ...args, '--json', ...CUTOVER_ARGS], {}, 120_000);
  writer.switchTo(target.url(db));
  if (cut.code !== 0) throw new Error(`cutover failed: ${cut.stderr}\n${sync.output()}`);
  await writer.waitForCommits(50, 'target');
  const report = await writer.stop();
  await sync.exited();
  await runPgferry(['cleanup', ...args, '--unfreeze-source', '--force']);
  const parsed = JSON.parse(cut.stdout) as { downtimeMs: number; steps: Array<{ step: string; ms: number }> };
  const steps = parsed.steps
    .filter((s) => s.step !== 'catch up')
    .map((s) => `${s.step} ${s.ms.toFixed(0)}`)
    .join(', ');
  return {
    way: 'pgferry',
    clientGapMs: report.switchGapMs ?? NaN,
    reportedMs: parsed.downtimeMs,
    lost: await lostWrites(target, db, report),
    detail: steps,
  };
}

async function nativeRound(source: Cluster, target: Cluster): Promise<Round> {
  const db = await prepare(source, target, 'native');
  // The schema by pgferry (no pg_dump needed), the rows by the subscription's own initial copy.
  const schema = await runPgferry(['clone', '--schema-only', '--source', source.url(db), '--target', target.url(db)]);
  if (schema.code !== 0) throw new Error(schema.stderr);
  await target.sql(db, 'DROP SCHEMA pgferry CASCADE');
  await source.sql(db, `CREATE PUBLICATION bench_pub FOR ALL TABLES`);
  await target.sql(db, `CREATE SUBSCRIPTION bench_sub CONNECTION '${source.url(db).replace(/'/g, "''")}' PUBLICATION bench_pub`);
  for (;;) {
    const { rows } = await target.sql(db, `SELECT count(*) FILTER (WHERE srsubstate <> 'r')::int AS pending FROM pg_subscription_rel`);
    if ((rows[0] as { pending: number }).pending === 0) break;
    await sleep(100);
  }
  const writer = startWriter(source.url(db));
  await writer.waitForCommits(300, 'source');

  const s = new pg.Client({ connectionString: source.url(db) });
  const t = new pg.Client({ connectionString: target.url(db) });
  await Promise.all([s.connect(), t.connect()]);
  const started = performance.now();
  await s.query(`ALTER DATABASE ${db} SET default_transaction_read_only = on`);
  await s.query(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
  );
  const { rows: at } = await s.query<{ lsn: string }>(`SELECT pg_current_wal_insert_lsn()::text AS lsn`);
  for (;;) {
    const { rows } = await s.query<{ done: boolean }>(
      `SELECT confirmed_flush_lsn >= $1::pg_lsn AS done FROM pg_replication_slots WHERE slot_name = 'bench_sub'`,
      [at[0]!.lsn],
    );
    if (rows[0]?.done) break;
    await sleep(10);
  }
  const { rows: sequences } = await s.query<{ name: string; value: string }>(
    `SELECT format('%I.%I', schemaname, sequencename) AS name, last_value::text AS value FROM pg_sequences WHERE last_value IS NOT NULL`,
  );
  for (const seq of sequences) await t.query(`SELECT setval($1::regclass, $2::bigint)`, [seq.name, seq.value]);
  await t.query(`ALTER SUBSCRIPTION bench_sub DISABLE`);
  await t.query(`ALTER SUBSCRIPTION bench_sub SET (slot_name = NONE)`);
  await t.query(`DROP SUBSCRIPTION bench_sub`);
  const reported = performance.now() - started;
  writer.switchTo(target.url(db));
  await writer.waitForCommits(50, 'target');
  const report = await writer.stop();
  await s.query(`SELECT pg_drop_replication_slot('bench_sub')`);
  await s.query(`ALTER DATABASE ${db} RESET default_transaction_read_only`);
  await Promise.all([s.end(), t.end()]);
  return { way: 'native', clientGapMs: report.switchGapMs ?? NaN, reportedMs: reported, lost: await lostWrites(target, db, report) };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  const [source, target] = await startClusters([{ version: 17 }, { version: 18 }]);
  const results: Round[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      for (const way of i % 2 === 0 ? (['pgferry', 'native'] as const) : (['native', 'pgferry'] as const)) {
        const round = way === 'pgferry' ? await pgferryRound(source, target) : await nativeRound(source, target);
        results.push(round);
        process.stdout.write(
          `round ${i + 1} ${way.padEnd(8)} client saw ${round.clientGapMs.toFixed(0).padStart(6)} ms without a commit; tool ${round.reportedMs.toFixed(0).padStart(6)} ms; lost ${round.lost}${round.detail ? ` (${round.detail} ms)` : ''}\n`,
        );
      }
    }
  } finally {
    await Promise.all([source.stop(), target.stop()]);
  }
  process.stdout.write(
    `\n| way | rounds | client freeze median ms | client freeze max ms | tool-reported median ms | lost writes |\n|---|---:|---:|---:|---:|---:|\n`,
  );
  const summary: Record<string, number> = {};
  for (const way of ['pgferry', 'native'] as const) {
    const mine = results.filter((r) => r.way === way);
    summary[way] = median(mine.map((r) => r.clientGapMs));
    process.stdout.write(
      `| ${way} | ${mine.length} | ${summary[way]!.toFixed(0)} | ${Math.max(...mine.map((r) => r.clientGapMs)).toFixed(0)} | ${median(mine.map((r) => r.reportedMs)).toFixed(0)} | ${mine.reduce((s, r) => s + r.lost, 0)} |\n`,
    );
  }
  process.stdout.write(`\npgferry / native client freeze (median): ${(summary.pgferry! / summary.native!).toFixed(2)}×\n`);
}

await main();
