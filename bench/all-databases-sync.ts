/**
 * A server of three databases brought to "caught up": three single-database syncs run one after
 * another (what a user does without --all-databases) against one `sync --all-databases`, same
 * `--jobs`, on the same two servers, each run into fresh target databases. Measures the time
 * until every database is caught up (the cut-over's freeze is the cut-over benchmark's).
 *
 *   npm run build && node dist/bench/all-databases-sync.js [scale=5] [jobs=2]
 */
import { execFile } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createPgbenchTables, startClusters, type Cluster } from '../test/harness/index.js';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/pgferry.js', import.meta.url));
const scale = Number(process.argv[2] ?? 5);
const jobs = Number(process.argv[3] ?? 2);
const DATABASES = ['crm', 'shop', 'analytics'];

async function pgferry(args: readonly string[]): Promise<void> {
  await run(process.execPath, [BIN, ...args], { maxBuffer: 64 * 1024 * 1024, timeout: 30 * 60_000 });
}

/** Empty target databases named like the source's (each run has a target server of its own, so its own slot names). */
async function emptyTargets(target: Cluster): Promise<void> {
  for (const db of DATABASES) await target.sql('postgres', `CREATE DATABASE ${db}`);
}

async function timed(work: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await work();
  return (performance.now() - started) / 1000;
}

const [source, first, second] = await startClusters([{ version: 17 }, { version: 17 }, { version: 17 }]);
try {
  for (const db of DATABASES) {
    await source.sql('postgres', `CREATE DATABASE ${db}`);
    await createPgbenchTables(source, db, scale);
    await source.sql(db, 'ALTER TABLE pgbench_history REPLICA IDENTITY FULL');
  }
  const conn = (target: Cluster, db: string) => ['--source', source.url(db), '--target', target.url(db)];
  const common = ['--until-caught-up', '--jobs', String(jobs), '--index-jobs', String(jobs)];

  await Promise.all([emptyTargets(first), emptyTargets(second)]);
  const oneByOne = await timed(async () => {
    for (const db of DATABASES) await pgferry(['sync', ...conn(first, db), ...common]);
  });
  const allAtOnce = await timed(() => pgferry(['sync', ...conn(second, 'postgres'), '--all-databases', ...common]));
  console.log(`3 databases of pgbench scale ${scale}, --jobs ${jobs}, PostgreSQL 17 → 17, time until every database is caught up:`);
  console.log(`  three single-database syncs, one after another: ${oneByOne.toFixed(1)} s`);
  console.log(`  one sync --all-databases:                      ${allAtOnce.toFixed(1)} s`);
} finally {
  await Promise.all([source.stop(), first.stop(), second.stop()]);
}
