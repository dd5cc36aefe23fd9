/**
 * `npm run demo`: two throwaway PostgreSQL servers on this machine (17 as the source, 18 as
 * the target), a small shop database on the source, and pgferry check between them — first
 * finding what blocks the migration, then, after the fix it prints, finding it ready — and
 * then pgferry clone copying it over.
 */
import { readFileSync } from 'node:fs';
import { runPgferry, startClusters } from '../test/harness/index.js';

const sampleSql = readFileSync(new URL('../../demo/sample.sql', import.meta.url), 'utf8');

function banner(text: string): void {
  const bold = process.stdout.isTTY ? (t: string) => `\x1b[1m${t}\x1b[0m` : (t: string) => t;
  process.stdout.write(`\n${bold(`== ${text}`)}\n\n`);
}

async function main(): Promise<number> {
  banner('Starting PostgreSQL 17 (source) and PostgreSQL 18 (target)');
  const [source, target] = await startClusters([{ version: 17 }, { version: 18 }]);
  try {
    await source.sql('postgres', 'CREATE DATABASE shop');
    await target.sql('postgres', 'CREATE DATABASE shop');
    await source.sql('shop', sampleSql);
    const sourceUrl = source.url('shop');
    const targetUrl = target.url('shop');
    process.stdout.write(`source ${sourceUrl.replace(/:[^:@/]+@/, ':******@')}\ntarget ${targetUrl.replace(/:[^:@/]+@/, ':******@')}\n`);

    banner('pgferry check --source … --target …');
    const first = await runPgferry(['check', '--source', sourceUrl, '--target', targetUrl]);
    process.stdout.write(first.stdout + first.stderr);
    process.stdout.write(`\n(exit status ${first.code}: ${first.code === 3 ? 'something blocks the migration' : 'see above'})\n`);

    banner('Applying the fix check printed: ALTER TABLE public.audit_log REPLICA IDENTITY FULL');
    await source.sql('shop', 'ALTER TABLE public.audit_log REPLICA IDENTITY FULL');

    banner('pgferry check again');
    const second = await runPgferry(['check', '--source', sourceUrl, '--target', targetUrl]);
    process.stdout.write(second.stdout + second.stderr);
    process.stdout.write(`\n(exit status ${second.code}${second.code === 0 ? ': ready to migrate' : ''})\n`);

    banner('pgferry clone --source … --target …  (schema, rows at one snapshot, indexes, sequences)');
    const cloned = await runPgferry(['clone', '--source', sourceUrl, '--target', targetUrl]);
    process.stdout.write(cloned.stdout + cloned.stderr.split('\n').filter((l) => !l.includes('"unit copied"')).join('\n'));
    const counts = `SELECT (SELECT count(*) FROM public.orders) AS orders, (SELECT count(*) FROM public.order_lines) AS lines,
                           (SELECT count(*) FROM public.daily_revenue) AS revenue_days, (SELECT last_value FROM public.orders_id_seq) AS next_order`;
    const [onSource, onTarget] = await Promise.all([source.sql('shop', counts), target.sql('shop', counts)]);
    process.stdout.write(`\nsource: ${JSON.stringify(onSource.rows[0])}\ntarget: ${JSON.stringify(onTarget.rows[0])}\n`);
    return first.code === 3 && second.code === 0 && cloned.code === 0 ? 0 : 1;
  } finally {
    banner('Stopping both servers');
    await Promise.all([source.stop(), target.stop()]);
  }
}

process.exitCode = await main();
