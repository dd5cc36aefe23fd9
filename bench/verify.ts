/**
 * pgferry verify against what users do today to check a copy: SELECT count(*) over every
 * table on both sides. Two PostgreSQL 15 servers on this machine, the source built as
 * `pgbench -i -s scale` builds it and cloned to the target with pgferry clone; then rounds of
 * each measurement, the median reported.
 *
 *   npm run build && node dist/bench/verify.js [scale=10] [rounds=5]
 *
 * count(*): one session per side, every table in turn, both sides at once (as a user would
 * run two psql). text floor: the same, but producing each row's text form, sum(length(ROW(…)::text)),
 * what a comparison of text output costs done naively. hash floor: the same, with the row
 * hash pgferry verify computes (typed hashes, src/verify/hash-sql.ts) as one bare query per
 * table: what hashing every value costs in PostgreSQL before any of verify's own work.
 * pgferry verify: the command, as a user runs it (its own process), and the seconds it
 * reports itself (without Node's start).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { rowHashSql, typedHashOf } from '../src/verify/hash-sql.js';
import { createPgbenchTables, startClusters, type Cluster } from '../test/harness/index.js';

const run = promisify(execFile);
const scale = Number(process.argv[2] ?? 10);
const rounds = Number(process.argv[3] ?? 5);
const BIN = fileURLToPath(new URL('../../bin/pgferry.js', import.meta.url));
const TABLES = ['pgbench_accounts', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history'];

// Durable settings, as on a real server (the harness's test defaults turn fsync off), and
// shared_buffers as bench/clone uses.
const SETTINGS = { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on', shared_buffers: '256MB', max_wal_size: '4GB' } as const;

async function onBothSides(clusters: readonly Cluster[], db: string, query: (table: string) => string): Promise<void> {
  await Promise.all(
    clusters.map((c) =>
      c.withClient(db, async (client: pg.Client) => {
        for (const table of TABLES) await client.query(query(table));
      }),
    ),
  );
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return (performance.now() - started) / 1000;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const [source, target] = await startClusters([
  { version: 15, settings: SETTINGS },
  { version: 15, settings: SETTINGS },
]);
try {
  const db = 'bench';
  await source.sql('postgres', `CREATE DATABASE ${db}`);
  await target.sql('postgres', `CREATE DATABASE ${db}`);
  await createPgbenchTables(source, db, scale);
  await run(process.execPath, [BIN, 'clone', '--json', '--source', source.url(db), '--target', target.url(db)], {
    maxBuffer: 64 * 1024 * 1024,
  });
  await target.sql(db, 'VACUUM ANALYZE');
  const size = (await source.sql(db, `SELECT pg_size_pretty(pg_database_size(current_database())) AS s`)).rows[0].s as string;
  const columns = new Map<string, string>();
  const hashes = new Map<string, string>();
  for (const table of TABLES) {
    const { rows } = await source.sql(
      db,
      `SELECT quote_ident(attname) AS name, atttypid::int AS oid, atttypmod AS typmod FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
      [table],
    );
    const list = rows as Array<{ name: string; oid: number; typmod: number }>;
    columns.set(table, list.map((c) => c.name).join(', '));
    hashes.set(
      table,
      rowHashSql(
        list.map((c) => ({ sql: c.name, hashed: typedHashOf(c.oid, c.typmod) })),
        'typed',
      ),
    );
  }
  console.log(`PostgreSQL 15 → 15, pgbench scale ${scale} (${size} per side), ${rounds} rounds, median reported`);

  const count = (t: string) => `SELECT count(*) FROM ${t}`;
  const floor = (t: string) => `SELECT sum(length(ROW(${columns.get(t)})::text)) FROM ONLY ${t}`;
  const hashFloor = (t: string) => `SELECT count(*), coalesce(sum(${hashes.get(t)}), 0) FROM ONLY ${t}`;
  // Warm both sides' caches once, as every later round finds them.
  await onBothSides([source, target], db, count);

  const results = { count: [] as number[], floor: [] as number[], hash: [] as number[], cli: [] as number[], reported: [] as number[] };
  for (let round = 1; round <= rounds; round++) {
    results.count.push(await timed(() => onBothSides([source, target], db, count)));
    results.floor.push(await timed(() => onBothSides([source, target], db, floor)));
    results.hash.push(await timed(() => onBothSides([source, target], db, hashFloor)));
    let reported = 0;
    results.cli.push(
      await timed(async () => {
        const { stdout } = await run(process.execPath, [BIN, 'verify', '--json', '--source', source.url(db), '--target', target.url(db)], {
          maxBuffer: 64 * 1024 * 1024,
        });
        const report = JSON.parse(stdout) as { identical: boolean; seconds: number };
        if (!report.identical) throw new Error(`verify found differences on a fresh clone: ${stdout.slice(0, 2000)}`);
        reported = report.seconds;
      }),
    );
    results.reported.push(reported);
    console.log(
      `round ${round}: count ${results.count.at(-1)!.toFixed(3)} s, text floor ${results.floor.at(-1)!.toFixed(3)} s, hash floor ${results.hash.at(-1)!.toFixed(3)} s, verify ${results.cli.at(-1)!.toFixed(3)} s (reports ${reported.toFixed(3)} s)`,
    );
  }
  const base = median(results.count);
  console.log('');
  console.log('| what | seconds (median) | × count(*) |');
  console.log('|---|---:|---:|');
  for (const [name, values] of [
    ['SELECT count(*), every table, both sides at once', results.count],
    ['text floor: sum(length(ROW(…)::text)), both sides at once', results.floor],
    ["hash floor: verify's row hash as one bare query per table, both sides at once", results.hash],
    ['pgferry verify (full), as a command', results.cli],
    ['pgferry verify (full), its own reported seconds', results.reported],
  ] as const) {
    console.log(`| ${name} | ${median(values).toFixed(3)} | ${(median(values) / base).toFixed(2)} |`);
  }
} finally {
  await Promise.all([source.stop(), target.stop()]);
}
