/**
 * The first copy of `pgferry sync` (to caught up), two builds side by side on the same servers,
 * alternating: `node dist/bench/sync-copy-ab.js OTHER_BIN [scale=50] [rounds=3]`.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createPgbenchTables, startClusters } from '../test/harness/index.js';

const other = process.argv[2]!;
const scale = Number(process.argv[3] ?? 50);
const rounds = Number(process.argv[4] ?? 3);
const mine = fileURLToPath(new URL('../../bin/pgferry.js', import.meta.url));

function run(bin: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: 'ignore' });
    child.once('close', (code) => resolve(code ?? 1));
  });
}

const [source, target] = await startClusters([{ version: 17 }, { version: 17 }]);
try {
  const db = await source.createDatabase({ prefix: 'ab' });
  await createPgbenchTables(source, db, scale);
  await source.sql(db, 'ALTER TABLE pgbench_history REPLICA IDENTITY FULL');
  await source.sql(db, 'VACUUM ANALYZE');
  const args = [
    'sync',
    '--source',
    source.url(db),
    '--target',
    target.url(db),
    '--split-tables-larger-than',
    '32MB',
    '--jobs',
    '2',
    '--until-caught-up',
  ];
  const times: Record<string, number[]> = { other: [], this: [] };
  for (let round = 0; round < rounds; round++) {
    for (const [name, bin] of [
      ['other', other],
      ['this', mine],
    ] as const) {
      await target.sql('postgres', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await target.sql('postgres', `CREATE DATABASE ${db}`);
      await source.sql(
        db,
        `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'pgferry%' AND NOT active`,
      );
      const started = performance.now();
      if ((await run(bin, args)) !== 0) throw new Error(`${name} failed`);
      times[name]!.push((performance.now() - started) / 1000);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(
    `scale ${scale}, 17 → 17, sync to caught up: other ${times.other!.map((t) => t.toFixed(1)).join(' / ')} s (median ${median(times.other!).toFixed(1)}), this ${times.this!.map((t) => t.toFixed(1)).join(' / ')} s (median ${median(times.this!).toFixed(1)})`,
  );
} finally {
  await Promise.all([source.stop(), target.stop()]);
}
