/**
 * A whole server moved three ways, on the same servers in one run (issue 32): `databases`
 * databases of pgbench-shaped data at `scale`, a writer on each at `rate` transactions a second
 * throughout, PostgreSQL 15 → 17:
 *  - one at a time: a `pgferry migrate` per database, run one after another (today's way: the
 *    target databases made by hand first), each with its own freeze;
 *  - the server at once: one `pgferry migrate --all-databases` (databases and roles made by
 *    pgferry), one freeze;
 *  - offline: `pg_dumpall | psql`, the tool a user picks for a whole server, writes stopped for
 *    all of it (its downtime is its duration).
 * Reported per way: the time until every database has cut over, each freeze, and the window in
 * which the application sees its databases on different servers (from the first cut-over's end
 * to the last one's).
 *
 *   npm run build && node dist/bench/all-databases.js [scale=5] [databases=3] [rate=100]
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createPgbenchTables, runPgferry, startClusters, startLoad, type Cluster, type Load } from '../test/harness/index.js';
import { findPgDump } from '../test/harness/pg-dump.js';

const scale = Number(process.argv[2] ?? 5);
const count = Number(process.argv[3] ?? 3);
const rate = Number(process.argv[4] ?? 100);
const DATABASES = Array.from({ length: count }, (_, i) => `app${i + 1}`);

interface Way {
  readonly way: string;
  readonly seconds: number;
  readonly freezesMs: readonly number[];
  /** From the first cut-over's end to the last one's: databases on different servers meanwhile. */
  readonly splitSeconds: number;
}

async function pgferry(args: readonly string[]): Promise<string> {
  const result = await runPgferry(args, {}, 3_600_000);
  if (result.code !== 0) throw new Error(`pgferry ${args.join(' ')} exited ${result.code}: ${result.stderr.slice(-3000)}`);
  return result.stdout;
}

/** Every `downtimeMs` in a report, however deeply the per-database reports nest it: the outermost first. */
function downtimes(value: unknown): number[] {
  if (value === null || typeof value !== 'object') return [];
  const own = (value as { downtimeMs?: unknown }).downtimeMs;
  const nested = Object.values(value).flatMap(downtimes);
  return typeof own === 'number' ? [own, ...nested] : nested;
}

async function emptyTarget(target: Cluster): Promise<void> {
  for (const db of DATABASES) await target.sql('postgres', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
}

/** The source as it was before a way ran: writable, without a slot or publication of pgferry's. */
async function resetSource(source: Cluster, target: Cluster): Promise<void> {
  for (const db of DATABASES) {
    await runPgferry(['cleanup', '--force', '--unfreeze-source', '--source', source.url(db), '--target', target.url(db)], {}, 600_000);
    await source.sql('postgres', `ALTER DATABASE ${db} RESET default_transaction_read_only`);
  }
}

function writers(source: Cluster): Load[] {
  return DATABASES.map((db) => startLoad(source.url(db), { clients: 2, scale, ratePerSecond: rate }));
}

async function oneAtATime(source: Cluster, target: Cluster): Promise<Way> {
  const started = performance.now();
  const freezes: number[] = [];
  const ends: number[] = [];
  for (const db of DATABASES) {
    await target.sql('postgres', `CREATE DATABASE ${db}`);
    const out = await pgferry(['migrate', '--json', '--unfreeze-source', '--source', source.url(db), '--target', target.url(db)]);
    freezes.push(downtimes(JSON.parse(out))[0] ?? NaN);
    ends.push(performance.now());
  }
  return {
    way: 'one migrate per database',
    seconds: (performance.now() - started) / 1000,
    freezesMs: freezes,
    splitSeconds: (ends.at(-1)! - ends[0]!) / 1000,
  };
}

async function serverAtOnce(source: Cluster, target: Cluster): Promise<Way> {
  const started = performance.now();
  const out = await pgferry([
    'migrate',
    '--all-databases',
    '--json',
    '--unfreeze-source',
    '--source',
    source.url(),
    '--target',
    target.url(),
  ]);
  return {
    way: 'migrate --all-databases',
    seconds: (performance.now() - started) / 1000,
    freezesMs: downtimes(JSON.parse(out)).slice(0, 1),
    splitSeconds: 0,
  };
}

/** pg_dumpall | psql, writes stopped throughout (by the caller): the whole run is downtime. */
async function dumpAll(source: Cluster, target: Cluster): Promise<Way> {
  const bin = dirname(findPgDump().path);
  const started = performance.now();
  const env = (cluster: Cluster) => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', PGPASSWORD: cluster.password, PGSSLMODE: 'disable' });
  await new Promise<void>((resolve, reject) => {
    // Without passwords: restored, the superuser's own would lock this script out of the target.
    const dump = spawn(
      join(bin, 'pg_dumpall'),
      ['-h', source.host, '-p', String(source.port), '-U', source.superuser, '--no-password', '--no-role-passwords'],
      {
        env: env(source),
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const restore = spawn(
      join(bin, 'psql'),
      ['-h', target.host, '-p', String(target.port), '-U', target.superuser, '-q', '-o', '/dev/null', 'postgres'],
      {
        env: env(target),
        stdio: ['pipe', 'ignore', 'pipe'],
      },
    );
    dump.stdout.pipe(restore.stdin);
    let errors = '';
    restore.stderr.setEncoding('utf8').on('data', (chunk: string) => (errors += chunk));
    restore.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`psql exited ${code}: ${errors.slice(-2000)}`))));
    dump.on('error', reject);
  });
  const seconds = (performance.now() - started) / 1000;
  return { way: 'pg_dumpall piped to psql (offline)', seconds, freezesMs: [seconds * 1000], splitSeconds: 0 };
}

const [source, target] = await startClusters([{ version: 15 }, { version: 17 }]);
const results: Way[] = [];
try {
  console.log(
    `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, load average at start ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  for (const db of DATABASES) {
    await source.sql('postgres', `CREATE DATABASE ${db}`);
    await createPgbenchTables(source, db, scale);
    await source.sql(db, 'ALTER TABLE pgbench_history REPLICA IDENTITY FULL');
  }
  console.log(`${count} databases of pgbench scale ${scale} on PostgreSQL 15; a writer on each at ${rate} transactions/s\n`);
  for (const way of [oneAtATime, serverAtOnce]) {
    const loads = writers(source);
    try {
      results.push(await way(source, target));
    } finally {
      await Promise.all(loads.map((l) => l.stop()));
    }
    console.log(`${results.at(-1)!.way}: ${results.at(-1)!.seconds.toFixed(1)} s; load average ${os.loadavg()[0]!.toFixed(1)}`);
    await resetSource(source, target);
    await emptyTarget(target);
  }
  // The offline way: writes stop for all of it (a dump taken under writes would still be consistent, but lose what follows).
  results.push(await dumpAll(source, target));
} finally {
  await Promise.all([source.stop(), target.stop()]);
}

console.log('\n| way | until every database is over, s | freezes, ms | databases on different servers for, s |');
console.log('|---|---:|---|---:|');
for (const r of results)
  console.log(`| ${r.way} | ${r.seconds.toFixed(1)} | ${r.freezesMs.map((f) => f.toFixed(0)).join(', ')} | ${r.splitSeconds.toFixed(1)} |`);
const [single, all, offline] = results;
if (single && all) console.log(`\none migrate --all-databases / ${count} migrates: time ${(all.seconds / single.seconds).toFixed(2)}`);
if (all && offline)
  console.log(`migrate --all-databases freeze / pg_dumpall-to-psql downtime: ${(all.freezesMs[0]! / offline.freezesMs[0]!).toFixed(4)}`);
console.log(
  `load average at the end ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
