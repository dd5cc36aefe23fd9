/**
 * The cut-over's large-object step (issue 19): large objects are in no change stream, so the
 * cut-over makes the target's equal to the source's by content digest, once before its freeze
 * and once inside it. How much of the freeze does the second pass cost with 10,000 objects?
 *
 *   npm run build && node dist/bench/large-objects.js [objects=10000] [rounds=3] [bytes=4096]
 *
 * PostgreSQL 15 → 15 (one pg_dump, Debian's 15, reads both). Each round: a fresh database with
 * `objects` large objects of `bytes` each and a table pointing at them, `pgferry sync` streaming
 * (its clone copies them), then 1 % of them written, 0.5 % unlinked and 0.5 % made, and
 * `pgferry cutover --no-fallback`; its report gives the freeze and the two large-object steps.
 *
 * The alternative a user has on native logical replication (which carries no large objects
 * either), in the same round on the same servers: with the source frozen, unlink the target's
 * large objects and pipe `pg_dump --blobs --data-only --exclude-table-data '*'` (--blobs: 15's name for --large-objects) of the source into `pg_restore`
 * on the target, timed.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { findPgDump } from '../test/harness/pg-dump.js';
import { runPgferry, spawnPgferry, startClusters, type Cluster } from '../test/harness/index.js';

const objects = Number(process.argv[2] ?? 10_000);
const rounds = Number(process.argv[3] ?? 3);
const bytes = Number(process.argv[4] ?? 4096);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Round {
  readonly freezeMs: number;
  readonly inFreezeMs: number;
  readonly aheadMs: number;
  readonly carriedAhead: string;
  readonly dumpRestoreMs: number;
}

async function prepare(source: Cluster, target: Cluster): Promise<string> {
  const db = await source.createDatabase({ prefix: 'lobs' });
  await target.sql('postgres', `CREATE DATABASE ${db}`);
  await source.sql(db, `CREATE TABLE documents (id int PRIMARY KEY, body oid NOT NULL)`);
  // In batches: each large object a transaction touches holds a lock until it ends.
  for (let from = 1; from <= objects; from += 1000) {
    await source.sql(
      db,
      `INSERT INTO documents SELECT g, lo_from_bytea(0, convert_to(repeat(md5(g::text), ${Math.ceil(bytes / 32)}), 'UTF8'))
         FROM generate_series(${from}, ${Math.min(objects, from + 999)}) g`,
    );
  }
  return db;
}

/** `pg_dump --blobs --data-only` of the source piped into `pg_restore` on the target; passwords in the environment only. */
async function dumpAndRestore(source: Cluster, target: Cluster, db: string): Promise<number> {
  const pgDump = findPgDump().path;
  const pgRestore = pgDump.includes('/') ? join(dirname(pgDump), 'pg_restore') : 'pg_restore';
  const environment = (cluster: Cluster) => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', PGPASSWORD: cluster.password });
  const started = performance.now();
  await target.sql(db, `SELECT count(lo_unlink(oid)) FROM pg_largeobject_metadata`);
  const dump = spawn(
    pgDump,
    [
      '-Fc',
      '--blobs',
      '--data-only',
      // Every table's rows left out: only the large objects (sync carried the rows).
      '--exclude-table-data',
      '*',
      '-h',
      source.host,
      '-p',
      String(source.port),
      '-U',
      source.superuser,
      db,
    ],
    { env: environment(source), stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const restore = spawn(pgRestore, ['-h', target.host, '-p', String(target.port), '-U', target.superuser, '-d', db], {
    env: environment(target),
    stdio: ['pipe', 'inherit', 'inherit'],
  });
  dump.stdout.pipe(restore.stdin);
  const exit = (child: ReturnType<typeof spawn>, name: string) =>
    new Promise<void>((resolve, reject) =>
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${name} exited ${code}`)))),
    );
  await Promise.all([exit(dump, 'pg_dump'), exit(restore, 'pg_restore')]);
  const ms = performance.now() - started;
  const { rows } = await target.sql(db, `SELECT count(*)::int AS n FROM pg_largeobject_metadata`);
  const { rows: expected } = await source.sql(db, `SELECT count(*)::int AS n FROM pg_largeobject_metadata`);
  if ((rows[0] as { n: number }).n !== (expected[0] as { n: number }).n) throw new Error('pg_restore did not bring every large object');
  return ms;
}

async function round(source: Cluster, target: Cluster): Promise<Round> {
  const db = await prepare(source, target);
  const args = ['--source', source.url(db), '--target', target.url(db)];
  const sync = spawnPgferry(['sync', ...args]);
  while (!/"msg":"streaming"/.test(sync.output())) {
    if (sync.child.exitCode !== null) throw new Error(sync.output());
    await sleep(100);
  }
  const changed = Math.max(1, Math.round(objects / 100));
  const moved = Math.max(1, Math.round(objects / 200));
  await source.sql(
    db,
    `SELECT lo_put(body, 0, '\\x00ff'::bytea) FROM documents WHERE id <= ${changed};
     SELECT lo_unlink(body) FROM documents WHERE id > ${objects - moved};
     UPDATE documents SET body = lo_from_bytea(0, 'made during sync') WHERE id > ${objects - moved}`,
  );
  const cut = await runPgferry(['cutover', ...args, '--json', '--no-fallback'], {}, 600_000);
  if (cut.code !== 0) throw new Error(`cutover failed: ${cut.stderr}\n${sync.output()}`);
  await sync.exited();
  const report = JSON.parse(cut.stdout) as { downtimeMs: number; steps: Array<{ step: string; ms: number }> };
  const stepMs = (name: string) => report.steps.find((s) => s.step === name)?.ms ?? NaN;
  const ahead = /"msg":"large objects brought up to date before the freeze"/.test(cut.stderr)
    ? (JSON.parse(cut.stderr.split('\n').find((l) => l.includes('brought up to date before the freeze'))!) as Record<string, number>)
    : undefined;
  const dumpRestoreMs = await dumpAndRestore(source, target, db);
  await runPgferry(['cleanup', ...args, '--unfreeze-source', '--force']);
  await Promise.all([source.sql('postgres', `DROP DATABASE ${db}`), target.sql('postgres', `DROP DATABASE ${db}`)]);
  return {
    freezeMs: report.downtimeMs,
    inFreezeMs: stepMs('large objects'),
    aheadMs: stepMs('large objects ahead'),
    carriedAhead: ahead ? `${ahead['created']}+${ahead['changed']}~${ahead['removed']}-` : '0',
    dumpRestoreMs,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  // pg_dump 15 holds a lock on every large object it dumps, in one transaction.
  const settings = { max_locks_per_transaction: Math.max(64, Math.ceil((2 * objects) / 60)) };
  const [source, target] = await startClusters([
    { version: 15, settings },
    { version: 15, settings },
  ]);
  const results: Round[] = [];
  try {
    process.stdout.write(`${objects} large objects of ${bytes} bytes, PostgreSQL 15 → 15, ${findPgDump().version}\n\n`);
    process.stdout.write(
      `| round | freeze ms | large objects in the freeze ms | share of the freeze | before the freeze ms (carried: made+changed~removed-) | unlink, pg_dump → pg_restore ms | pg_dump / pgferry in-freeze |\n|---:|---:|---:|---:|---:|---:|---:|\n`,
    );
    for (let i = 0; i < rounds; i++) {
      const r = await round(source, target);
      results.push(r);
      process.stdout.write(
        `| ${i + 1} | ${r.freezeMs.toFixed(0)} | ${r.inFreezeMs.toFixed(0)} | ${((100 * r.inFreezeMs) / r.freezeMs).toFixed(0)} % | ${r.aheadMs.toFixed(0)} (${r.carriedAhead}) | ${r.dumpRestoreMs.toFixed(0)} | ${(r.dumpRestoreMs / r.inFreezeMs).toFixed(1)}× |\n`,
      );
    }
  } finally {
    await Promise.all([source.stop(), target.stop()]);
  }
  const m = (f: (r: Round) => number) => median(results.map(f));
  process.stdout.write(
    `\nmedian: freeze ${m((r) => r.freezeMs).toFixed(0)} ms, large objects in it ${m((r) => r.inFreezeMs).toFixed(0)} ms (${((100 * m((r) => r.inFreezeMs)) / m((r) => r.freezeMs)).toFixed(0)} %), ` +
      `unlink, pg_dump → pg_restore ${m((r) => r.dumpRestoreMs).toFixed(0)} ms: ${(m((r) => r.dumpRestoreMs) / m((r) => r.inFreezeMs)).toFixed(1)}× pgferry's in-freeze step\n`,
  );
}

await main();
