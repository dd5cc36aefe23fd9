/**
 * Physical mode on one PostgreSQL 15 server (pgbench tables of the given scale):
 * - the base backup: `pgferry sync --physical` (slot, pg_basebackup, standby settings) beside a
 *   plain `pg_basebackup -X stream -c fast` of the same server, alternating, medians and ratio;
 * - the freeze: `pgferry cutover --physical` under a client committing continuously, over
 *   several cut-overs (a new standby each): what pgferry reports (freeze to the promoted
 *   server's first commit) and the client's own gap, from its last commit on the source to its
 *   first on the new primary (reconnecting included), p50 and max.
 *
 *   npm run build && node dist/bench/physical.js [scale=50] [rounds=5]
 *
 * pg_basebackup is Debian's (postgresql-client-15), the server npm's; as root, everything runs
 * as the account the servers run as.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import {
  createPgbenchTables,
  physicalBinDir,
  runPgferryAsServerUser,
  serverUserDirectory,
  startClusters,
  stopServer,
  unprivilegedUser,
  type Cluster,
} from '../test/harness/index.js';
import { freePort } from '../test/harness/cluster.js';

const scale = Number(process.argv[2] ?? 50);
const rounds = Number(process.argv[3] ?? 5);
const MAJOR = 15;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

function must(result: { code: number; stdout: string; stderr: string }, what: string): void {
  if (result.code !== 0) throw new Error(`${what} exited ${result.code}:\n${result.stdout}${result.stderr}`);
}

async function plainBaseBackup(source: Cluster, pgBin: string, dir: string): Promise<number> {
  const runAs = unprivilegedUser();
  const started = performance.now();
  const result = spawnSync(
    join(pgBin, 'pg_basebackup'),
    ['-D', dir, '-X', 'stream', '-c', 'fast', '-d', `host=${source.host} port=${source.port} user=${source.superuser}`],
    {
      env: { PATH: process.env.PATH ?? '', PGPASSWORD: source.password },
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
      encoding: 'utf8',
    },
  );
  if (result.status !== 0) throw new Error(`pg_basebackup failed: ${result.stderr}`);
  return (performance.now() - started) / 1000;
}

async function pgferryBaseBackup(source: Cluster, pgBin: string, dir: string): Promise<number> {
  const started = performance.now();
  must(
    await runPgferryAsServerUser(['sync', '--physical', '--source', source.url(), '--pg-bin', pgBin, '--pgdata', dir], {}, 600_000),
    'sync --physical',
  );
  const seconds = (performance.now() - started) / 1000;
  must(await runPgferryAsServerUser(['cleanup', '--physical', '--source', source.url()]), 'cleanup --physical');
  return seconds;
}

/** A client inserting continuously: into the source until it fails, then, once told, into the new primary. */
function startClient(sourceUrl: string) {
  let lastSourceCommit = 0;
  let stop = false;
  const running = (async () => {
    const client = new pg.Client({ connectionString: sourceUrl });
    client.on('error', () => undefined);
    await client.connect();
    while (!stop) {
      try {
        await client.query(`INSERT INTO pgbench_history (tid, bid, aid, delta) VALUES (1, 1, 1, 1)`);
        lastSourceCommit = performance.now();
      } catch {
        break;
      }
    }
    await client.end().catch(() => undefined);
  })();
  return {
    /** After the cut-over: the time from the last source commit to the first commit on the new primary. */
    async switchTo(targetUrl: string): Promise<number> {
      const target = new pg.Client({ connectionString: targetUrl });
      await target.connect();
      await target.query(`INSERT INTO pgbench_history (tid, bid, aid, delta) VALUES (2, 2, 2, 2)`);
      const gap = performance.now() - lastSourceCommit;
      await target.end();
      stop = true;
      await running;
      return gap;
    },
  };
}

async function main(): Promise<void> {
  const [source] = await startClusters([{ version: MAJOR, settings: { max_wal_senders: 10 } }]);
  const pgBin = physicalBinDir(MAJOR);
  const home = serverUserDirectory('pgferry-bench-physical-');
  try {
    const db = await source.createDatabase({ prefix: 'bench' });
    await createPgbenchTables(source, db, scale);
    await source.sql(db, 'CHECKPOINT');
    const size = await source.sql('postgres', `SELECT sum(pg_database_size(oid))::bigint AS bytes FROM pg_database`);
    const mb = Number((size.rows[0] as { bytes: string }).bytes) / 1024 ** 2;
    console.log(`# PostgreSQL ${MAJOR}, pgbench scale ${scale}: ${mb.toFixed(0)} MB in all databases; ${rounds} rounds`);

    const plain: number[] = [];
    const ours: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const a = join(home, `plain-${i}`);
      plain.push(await plainBaseBackup(source, pgBin, a));
      rmSync(a, { recursive: true, force: true });
      const b = join(home, `pgferry-${i}`);
      ours.push(await pgferryBaseBackup(source, pgBin, b));
      rmSync(b, { recursive: true, force: true });
      console.log(`  round ${i + 1}: pg_basebackup ${plain.at(-1)!.toFixed(2)} s, pgferry sync --physical ${ours.at(-1)!.toFixed(2)} s`);
    }
    console.log(
      `base backup, median: pg_basebackup ${median(plain).toFixed(2)} s, pgferry ${median(ours).toFixed(2)} s (${(median(ours) / median(plain)).toFixed(2)}×)`,
    );

    const reported: number[] = [];
    const gaps: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const dir = join(home, `standby-${i}`);
      const port = await freePort();
      must(
        await runPgferryAsServerUser(
          [
            'sync',
            '--physical',
            '--source',
            source.url(),
            '--pg-bin',
            pgBin,
            '--pgdata',
            dir,
            '--port',
            String(port),
            '--start',
            '--until-caught-up',
          ],
          {},
          600_000,
        ),
        'sync --physical --start',
      );
      const client = startClient(source.url(db));
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const cut = await runPgferryAsServerUser(
        ['cutover', '--physical', '--source', source.url(), '--target', source.url('postgres', { port }), '--json'],
        {},
        120_000,
      );
      must(cut, 'cutover --physical');
      const gap = await client.switchTo(source.url(db, { port }));
      const report = JSON.parse(cut.stdout) as { downtimeMs: number; steps: Array<{ name: string; ms: number }> };
      reported.push(report.downtimeMs);
      gaps.push(gap);
      console.log(
        `  cut-over ${i + 1}: reported ${report.downtimeMs} ms, client gap ${gap.toFixed(0)} ms (${report.steps.map((s) => `${s.name} ${s.ms}`).join(', ')})`,
      );
      stopServer(pgBin, dir, 'fast');
      rmSync(dir, { recursive: true, force: true });
      must(await runPgferryAsServerUser(['cleanup', '--physical', '--source', source.url(), '--unfreeze-source']), 'cleanup --physical');
    }
    console.log(
      `freeze over ${rounds} cut-overs: reported p50 ${median(reported).toFixed(0)} ms, max ${Math.max(...reported)} ms; client gap p50 ${median(gaps).toFixed(0)} ms, max ${Math.max(...gaps).toFixed(0)} ms`,
    );
  } finally {
    rmSync(home, { recursive: true, force: true });
    await source.stop();
  }
}

await main();
