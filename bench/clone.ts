/**
 * The initial copy, pgferry against what users run today, on the same two servers in one run:
 * a pgbench-shaped database (scale as argument) plus a table of wide text, jsonb and bytea rows.
 *
 *   npm run build && node dist/bench/clone.js [scale=10] [wideRows=200000] [jobs=2]
 *
 * Tools that are not installed are reported as not run. The floor is what two psql COPY pipes
 * in parallel plus the post-data section take: the cost of moving the bytes and building the
 * indexes, with no tool around it.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createPgbenchTables, startClusters, type Cluster } from '../test/harness/index.js';

const run = promisify(execFile);
const scale = Number(process.argv[2] ?? 10);
const wideRows = Number(process.argv[3] ?? 200_000);
const jobs = Number(process.argv[4] ?? 2);
const PG_BIN = '/usr/lib/postgresql/15/bin';
const BIN = fileURLToPath(new URL('../../bin/pgferry.js', import.meta.url));

function tool(name: string): string | undefined {
  const candidates = [join(PG_BIN, name), `/usr/bin/${name}`];
  return candidates.find((c) => existsSync(c));
}

async function sh(script: string, env: Record<string, string>): Promise<void> {
  await run('bash', ['-o', 'pipefail', '-c', script], { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 });
}

async function buildSource(source: Cluster, db: string): Promise<void> {
  // The tables and keys `pgbench -i -s scale` makes, filled the same way, without needing pgbench.
  await createPgbenchTables(source, db, scale);
  await source.sql(
    db,
    `CREATE TABLE wide (id bigint PRIMARY KEY, title text NOT NULL, body text, doc jsonb, blob bytea, created timestamptz DEFAULT now());
     INSERT INTO wide (id, title, body, doc, blob)
       SELECT g, 'title ' || g, repeat(md5(g::text), 12),
              jsonb_build_object('id', g, 'tags', jsonb_build_array('a' || (g % 7), 'b' || (g % 11)), 'note', md5((g * 7)::text)),
              decode(repeat(md5((g * 3)::text), 4), 'hex')
         FROM generate_series(1, ${wideRows}) g;
     CREATE INDEX wide_title_idx ON wide (title);`,
  );
  await source.sql(db, 'VACUUM ANALYZE');
}

interface Result {
  name: string;
  seconds?: number;
  why?: string;
}

async function timeIt(name: string, work: () => Promise<void>): Promise<Result> {
  const started = performance.now();
  try {
    await work();
    return { name, seconds: (performance.now() - started) / 1000 };
  } catch (error) {
    return { name, why: `failed: ${String(error).split('\n').slice(0, 3).join(' ')}` };
  }
}

// Durable settings, as on a real server: the harness's test defaults turn fsync off.
const DURABLE = { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on', shared_buffers: '256MB', max_wal_size: '4GB' } as const;
const [source, target] = await startClusters([
  { version: 15, settings: DURABLE },
  { version: 15, settings: DURABLE },
]);
try {
  const db = 'bench';
  await source.sql('postgres', `CREATE DATABASE ${db}`);
  const built = performance.now();
  await buildSource(source, db);
  const size = (await source.sql(db, `SELECT pg_size_pretty(pg_database_size(current_database())) AS s`)).rows[0].s;
  console.log(
    `source: PostgreSQL 15, scale ${scale} + ${wideRows} wide rows = ${size} (built in ${((performance.now() - built) / 1000).toFixed(1)} s); jobs ${jobs}`,
  );

  const env = { PGPASSWORD: source.password };
  const conn = (c: Cluster, database: string) => `-h ${c.host} -p ${c.port} -U ${c.superuser} -d ${database}`;
  let n = 0;
  const freshTarget = async () => {
    const name = `t${++n}`;
    await target.sql('postgres', `CREATE DATABASE ${name}`);
    return name;
  };
  const targetEnv = { PGPASSWORD: target.password };
  const results: Result[] = [];
  const pgDump = tool('pg_dump');
  const psql = tool('psql');
  const pgRestore = tool('pg_restore');
  const pgcopydb = tool('pgcopydb');

  const pgferryTarget = await freshTarget();
  results.push(
    await timeIt('pgferry clone', async () => {
      const { stdout } = await run(
        process.execPath,
        [
          BIN,
          'clone',
          '--json',
          '--jobs',
          String(jobs),
          '--index-jobs',
          String(jobs),
          '--source',
          source.url(db),
          '--target',
          target.url(pgferryTarget),
        ],
        {
          maxBuffer: 64 * 1024 * 1024,
        },
      );
      const summary = JSON.parse(stdout) as { phases: Array<{ phase: string; seconds: number }> };
      console.log(`pgferry phases: ${summary.phases.map((p) => `${p.phase} ${p.seconds.toFixed(2)} s`).join(', ')}`);
    }),
  );

  if (pgDump && psql) {
    const t = await freshTarget();
    results.push(
      await timeIt('pg_dump piped to psql', () =>
        sh(
          `PGPASSWORD=${source.password} ${pgDump} ${conn(source, db)} | PGPASSWORD=${target.password} ${psql} -q -v ON_ERROR_STOP=1 ${conn(target, t)} > /dev/null`,
          {},
        ),
      ),
    );
  } else results.push({ name: 'pg_dump piped to psql', why: 'not run: no pg_dump/psql 15 (apt-get install postgresql-client-15)' });

  if (pgDump && pgRestore) {
    const t = await freshTarget();
    const dir = mkdtempSync(join(tmpdir(), 'pgferry-bench-dump-'));
    rmSync(dir, { recursive: true });
    results.push(
      await timeIt(`pg_dump -Fd -j${jobs} + pg_restore -j${jobs}`, async () => {
        await sh(`${pgDump} -Fd -j${jobs} -f ${dir} ${conn(source, db)}`, env);
        await sh(`${pgRestore} -j${jobs} ${conn(target, t)} ${dir}`, targetEnv);
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  } else results.push({ name: 'pg_dump -Fd + pg_restore', why: 'not run: no pg_dump/pg_restore 15' });

  if (pgcopydb && pgDump) {
    const t = await freshTarget();
    const dir = mkdtempSync(join(tmpdir(), 'pgferry-bench-pgcopydb-'));
    results.push(
      await timeIt(`pgcopydb clone (${jobs} table jobs, ${jobs} index jobs)`, () =>
        sh(
          `PATH=${PG_BIN}:$PATH ${pgcopydb} clone --dir ${dir} --table-jobs ${jobs} --index-jobs ${jobs} --source "${source.url(db)}" --target "${target.url(t)}" > ${dir}/log 2>&1 || (tail -5 ${dir}/log; exit 1)`,
          {},
        ),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  } else results.push({ name: 'pgcopydb clone', why: 'not run: pgcopydb is not installed (apt-get install pgcopydb)' });

  if (pgDump && psql) {
    const t = await freshTarget();
    const tables = ['pgbench_accounts', 'wide', 'pgbench_branches', 'pgbench_tellers', 'pgbench_history'];
    results.push(
      await timeIt(`floor: ${jobs} psql COPY pipes + post-data`, async () => {
        await sh(
          `${pgDump} --section=pre-data ${conn(source, db)} | PGPASSWORD=${target.password} ${psql} -q -v ON_ERROR_STOP=1 ${conn(target, t)} > /dev/null`,
          env,
        );
        // The tables, biggest first, over `jobs` parallel pipes.
        const queue = [...tables];
        await Promise.all(
          Array.from({ length: jobs }, async () => {
            for (let table = queue.shift(); table; table = queue.shift()) {
              await sh(
                `${psql} ${conn(source, db)} -c "\\copy ${table} TO STDOUT" | PGPASSWORD=${target.password} ${psql} ${conn(target, t)} -c "\\copy ${table} FROM STDIN" > /dev/null`,
                env,
              );
            }
          }),
        );
        await sh(
          `${pgDump} --section=post-data ${conn(source, db)} | PGPASSWORD=${target.password} ${psql} -q -v ON_ERROR_STOP=1 ${conn(target, t)} > /dev/null`,
          env,
        );
      }),
    );
  }

  const pgferry = results[0]?.seconds;
  console.log('');
  console.log('| tool | seconds | ratio to pgferry |');
  console.log('|---|---:|---:|');
  for (const r of results) {
    if (r.seconds === undefined) console.log(`| ${r.name} | ${r.why} | |`);
    else console.log(`| ${r.name} | ${r.seconds.toFixed(2)} | ${pgferry ? (r.seconds / pgferry).toFixed(2) : '-'} |`);
  }
} finally {
  await Promise.all([source.stop(), target.stop()]);
}
