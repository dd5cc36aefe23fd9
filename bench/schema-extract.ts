/**
 * Schema extraction at scale: a source with 1,000 tables, 3,000 indexes and 200 views
 * (sizes as arguments), timed for pgferry's extraction and for `pg_dump --schema-only`, the
 * tool a user would otherwise run, on the same server in the same run.
 *
 *   npm run build && node dist/bench/schema-extract.js [tables=1000] [views=200] [major=17]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Scope, EVERYTHING } from '../src/catalog/index.js';
import { connect, resolveConnection } from '../src/config/index.js';
import { extractSchema } from '../src/schema/index.js';
import { startCluster, type MajorVersion } from '../test/harness/index.js';

const tables = Number(process.argv[2] ?? 1000);
const views = Number(process.argv[3] ?? 200);
const major = Number(process.argv[4] ?? 17) as MajorVersion;

function seconds(start: number): number {
  return (performance.now() - start) / 1000;
}

const cluster = await startCluster({ version: major });
try {
  const db = await cluster.createDatabase({ prefix: 'bench' });
  const build = performance.now();
  // Each table: a primary key, a unique constraint and an ordinary index = 3 indexes.
  await cluster.sql(
    db,
    `DO $$ BEGIN
       FOR i IN 1..${tables} LOOP
         EXECUTE format('CREATE TABLE public.t%s (id bigserial PRIMARY KEY, code text UNIQUE, amount numeric(12,2) DEFAULT 0, created timestamptz NOT NULL DEFAULT now(), note text)', i);
         EXECUTE format('CREATE INDEX t%s_created_idx ON public.t%s (created)', i, i);
         EXECUTE format('COMMENT ON TABLE public.t%s IS %L', i, 'table ' || i);
       END LOOP;
       FOR i IN 1..${views} LOOP
         EXECUTE format('CREATE VIEW public.v%s AS SELECT id, code, amount FROM public.t%s WHERE amount > 0', i, i);
       END LOOP;
     END $$`,
  );
  const { rows } = await cluster.sql(
    db,
    `SELECT (SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace) AS tables,
                                                 (SELECT count(*) FROM pg_class WHERE relkind = 'i' AND relnamespace = 'public'::regnamespace) AS indexes,
                                                 (SELECT count(*) FROM pg_class WHERE relkind = 'v' AND relnamespace = 'public'::regnamespace) AS views`,
  );
  console.log(
    `PostgreSQL ${major}: ${rows[0].tables} tables, ${rows[0].indexes} indexes, ${rows[0].views} views (built in ${seconds(build).toFixed(1)} s)`,
  );

  const spec = await resolveConnection('source', cluster.url(db));
  const { client } = await connect(spec);
  const runs: number[] = [];
  let objects = 0;
  for (let i = 0; i < 3; i++) {
    const start = performance.now();
    const schema = await extractSchema(client, new Scope(EVERYTHING));
    runs.push(seconds(start));
    objects = schema.objects.length;
  }
  await client.end();
  const pgferry = Math.min(...runs);

  const pgDump = ['/usr/lib/postgresql/15/bin/pg_dump', `/usr/lib/postgresql/${major}/bin/pg_dump`].find(existsSync);
  let dumpSeconds: number | undefined;
  if (pgDump && major <= 15) {
    const dumpRuns: number[] = [];
    for (let i = 0; i < 3; i++) {
      const start = performance.now();
      const result = spawnSync(
        pgDump,
        ['--schema-only', '-h', cluster.host, '-p', String(cluster.port), '-U', cluster.superuser, '-d', db, '-f', '/dev/null'],
        {
          env: { ...process.env, PGPASSWORD: cluster.password },
          encoding: 'utf8',
        },
      );
      if (result.status !== 0) throw new Error(`pg_dump failed: ${result.stderr}`);
      dumpRuns.push(seconds(start));
    }
    dumpSeconds = Math.min(...dumpRuns);
  }

  console.log('');
  console.log('| tool | seconds (best of 3) | ratio to pgferry |');
  console.log('|---|---:|---:|');
  console.log(`| pgferry extractSchema (${objects} objects) | ${pgferry.toFixed(2)} | 1.00 |`);
  if (dumpSeconds !== undefined)
    console.log(`| pg_dump --schema-only | ${dumpSeconds.toFixed(2)} | ${(dumpSeconds / pgferry).toFixed(2)} |`);
  else
    console.log(
      `| pg_dump --schema-only | not run: needs a pg_dump that can read PostgreSQL ${major} (15 is installed; run with major 13 or 15) | |`,
    );
} finally {
  await cluster.stop();
}
