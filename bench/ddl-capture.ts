/**
 * What the schema-change capture (issue 16) costs the source: 1,000 CREATE TABLE transactions
 * and 10,000 single-row DML transactions, each in its own transaction from one session, in a
 * database without the capture and in one with it (event triggers installed, tables joining the
 * publication as they are made), alternating, on one PostgreSQL server with durable settings.
 *
 *   node dist/bench/ddl-capture.js [creates=1000] [dml=10000] [rounds=3] [major=17]
 */
import pg from 'pg';
import { installCapture } from '../src/ddl/index.js';
import { EVERYTHING } from '../src/catalog/index.js';
import { startClusters } from '../test/harness/index.js';

const [creates, dml, rounds, major] = [1000, 10_000, 3, 17].map((fallback, i) => Number(process.argv[2 + i] ?? fallback)) as [
  number,
  number,
  number,
  number,
];
const DURABLE = { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on', shared_buffers: '256MB', max_wal_size: '4GB' } as const;
const [server] = await startClusters([{ version: major as 17, settings: DURABLE }]);

async function database(name: string, captured: boolean): Promise<pg.Client> {
  await server.sql('postgres', `CREATE DATABASE ${name}`);
  const client = new pg.Client({ connectionString: server.url(name) });
  await client.connect();
  await client.query(`CREATE TABLE events (id int PRIMARY KEY, n int)`);
  if (captured) {
    await client.query(`CREATE PUBLICATION pgferry_bench FOR TABLE events`);
    await installCapture(client, { migration: 'bench', publication: 'pgferry_bench', filter: EVERYTHING, sourceMajor: major });
  }
  return client;
}

async function timed(work: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await work();
  return (performance.now() - started) / 1000;
}

const results: Record<'without' | 'with', { create: number[]; dml: number[] }> = {
  without: { create: [], dml: [] },
  with: { create: [], dml: [] },
};
try {
  for (let round = 0; round < rounds; round++) {
    for (const variant of round % 2 === 0 ? (['without', 'with'] as const) : (['with', 'without'] as const)) {
      const client = await database(`bench_${variant}_${round}`, variant === 'with');
      try {
        results[variant].create.push(
          await timed(async () => {
            for (let i = 0; i < creates; i++)
              await client.query(`CREATE TABLE t_${i} (id bigint PRIMARY KEY, at timestamptz DEFAULT now(), body text)`);
          }),
        );
        results[variant].dml.push(
          await timed(async () => {
            for (let i = 0; i < dml; i++) {
              if (i % 2 === 0) await client.query(`INSERT INTO events VALUES ($1, 0)`, [i]);
              else await client.query(`UPDATE events SET n = n + 1 WHERE id = $1`, [i - 1]);
            }
          }),
        );
      } finally {
        await client.end();
      }
    }
  }
} finally {
  await server.stop();
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const rate = (count: number, seconds: number) => Math.round(count / seconds).toLocaleString('en-US');
console.log(`PostgreSQL ${major}, durable settings; ${rounds} rounds alternating; medians\n`);
console.log('| workload | without capture s | with capture s | with / without | per command without | per command with |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const [label, key, count] of [
  [`${creates} CREATE TABLE transactions`, 'create', creates],
  [`${dml} INSERT/UPDATE transactions`, 'dml', dml],
] as const) {
  const a = median(results.without[key]);
  const b = median(results.with[key]);
  console.log(
    `| ${label} | ${a.toFixed(2)} | ${b.toFixed(2)} | ${(b / a).toFixed(2)}× | ${((a / count) * 1000).toFixed(2)} ms (${rate(count, a)}/s) | ${((b / count) * 1000).toFixed(2)} ms (${rate(count, b)}/s) |`,
  );
}
console.log(`\nall rounds (s): ${JSON.stringify(results)}`);
