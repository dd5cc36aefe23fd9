/**
 * Does the write freeze grow with the database? The same live migration at two sizes of
 * pgbench-shaped data (scale 10: 1 M accounts; scale 100: 10 M), a pgbench-like writer running
 * through every cut-over, each `--verify` level in turn: `counts` (count(*) of every table inside
 * the freeze, the old default) and `changes` (every row compared before the freeze while sync
 * streams, and inside it only the rows sync applied since).
 *
 *   npm run build && node dist/bench/cutover-size.js [rounds=3] [scales=10,100] [rate=200]
 *
 * One database per scale: its tables are made on one server (17) and cloned to the other (18)
 * once; then cut-overs alternate in direction (forward, back through the way back each one
 * prepares, …), so every round moves the same database without copying it again. The rounds
 * interleave the scales and the levels (scale 10 counts, scale 100 counts, scale 10 changes,
 * scale 100 changes, …): a machine whose load drifts weighs on every size and level alike.
 * Each round: sync streams, the writer runs `rate` transactions a second on the side the
 * application writes to, the cut-over runs, the writer stops; both sides are compared by
 * content afterwards. Reported: the freeze (`downtimeMs`) and its steps, per scale and level,
 * and the ratio of the medians between the largest and the smallest scale.
 */
import { performance } from 'node:perf_hooks';
import os from 'node:os';
import {
  compareTables,
  createPgbenchTables,
  runPgferry,
  spawnPgferry,
  startClusters,
  startLoad,
  waitUntilStreaming,
  type Cluster,
} from '../test/harness/index.js';

const rounds = Number(process.argv[2] ?? 3);
const scales = (process.argv[3] ?? '10,100').split(',').map(Number);
const rate = Number(process.argv[4] ?? 200);
const LEVELS = ['counts', 'changes'] as const;
type Level = (typeof LEVELS)[number];
/** The steps taken with writes frozen, in the order they run. */
const FROZEN_STEPS = [
  'freeze',
  'drain',
  'fence',
  // Inside 'fence': its round trip, from emitted on the source to applied on the target (alongside 'sequences').
  'fence applied',
  'sequences',
  'large objects',
  'verify',
  'stop sync',
  'late writes',
  'hand over',
];
/** The last step before the freeze: the wait for sync to be within --max-lag (reported apart: no write is frozen yet). */
const CATCH_UP = 'catch up';

interface Round {
  readonly scale: number;
  readonly level: Level;
  readonly freezeMs: number;
  readonly steps: ReadonlyMap<string, number>;
  /** Rows compared inside the freeze by key (changes), and before it. */
  readonly inFreeze: string;
  readonly before: string;
  readonly committed: number;
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length === 0 ? NaN : sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function pgferry(args: readonly string[]): Promise<string> {
  const result = await runPgferry(args, {}, 1_800_000);
  if (result.code !== 0) throw new Error(`pgferry ${args[0]} exited ${result.code}: ${result.stderr.slice(-3000)}`);
  return result.stdout;
}

async function cutOver(from: Cluster, to: Cluster, db: string, scale: number, level: Level): Promise<Round> {
  const sides = ['--source', from.url(db), '--target', to.url(db)];
  const sync = spawnPgferry(['sync', ...sides]);
  await waitUntilStreaming(to, db, sync, 600_000);
  const load = startLoad(from.url(db), { clients: 4, scale, ratePerSecond: rate });
  try {
    while (load.committed < rate * 2) await sleep(100);
    const out = await pgferry(['cutover', ...sides, '--json', '--verify', level]);
    const report = JSON.parse(out) as {
      downtimeMs: number;
      steps: Array<{ step: string; ms: number }>;
      checked: {
        beforeFreeze: { verify: { seconds: number }; passes: Array<{ keys: number; ms: number }> } | null;
        insideFreeze: { keysChecked: number; tables: string[]; wholeTables: Array<{ table: string }> } | null;
      };
      verified: { seconds: number } | null;
    };
    const steps = new Map<string, number>();
    for (const s of report.steps) steps.set(s.step, (steps.get(s.step) ?? 0) + s.ms);
    const inside = report.checked.insideFreeze;
    const before = report.checked.beforeFreeze;
    return {
      scale,
      level,
      freezeMs: report.downtimeMs,
      steps,
      inFreeze: inside
        ? `${inside.keysChecked} keys in ${inside.tables.length} tables${inside.wholeTables.length > 0 ? ` + whole ${inside.wholeTables.map((w) => w.table).join(', ')}` : ''}`
        : `count(*) of every table (${report.verified?.seconds ?? NaN} s)`,
      before: before
        ? `full verify ${before.verify.seconds.toFixed(1)} s, passes ${before.passes.map((p) => `${p.keys} keys/${Math.round(p.ms)} ms`).join(', ')}`
        : '-',
      committed: load.committed,
    };
  } finally {
    await load.stop();
    await sync.exited();
  }
}

const [a, b] = await startClusters([{ version: 17 }, { version: 18 }]);
const results: Round[] = [];
const started = performance.now();
try {
  console.log(
    `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, load average at start ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  console.log(`writer: 4 sessions, ${rate} pgbench transactions/s through every cut-over; rounds per scale and level: ${rounds}\n`);
  // Which way each scale's database goes next: it alternates with every cut-over.
  const direction = new Map<number, [Cluster, Cluster]>();
  for (const scale of scales) {
    const db = `bench_s${scale}`;
    await a.sql('postgres', `CREATE DATABASE ${db}`);
    await b.sql('postgres', `CREATE DATABASE ${db}`);
    let t = performance.now();
    await createPgbenchTables(a, db, scale);
    // As pgbench makes it, the history has no key: sync asks for REPLICA IDENTITY FULL (its rows are compared by their images).
    await a.sql(db, 'ALTER TABLE pgbench_history REPLICA IDENTITY FULL');
    console.log(`scale ${scale}: tables made in ${((performance.now() - t) / 1000).toFixed(0)} s`);
    t = performance.now();
    await pgferry(['sync', '--source', a.url(db), '--target', b.url(db), '--until-caught-up']);
    console.log(`scale ${scale}: cloned in ${((performance.now() - t) / 1000).toFixed(0)} s`);
    direction.set(scale, [a, b]);
  }
  for (let round = 0; round < rounds; round++)
    for (const level of LEVELS)
      for (const scale of scales) {
        const db = `bench_s${scale}`;
        const [from, to] = direction.get(scale)!;
        const result = await cutOver(from, to, db, scale, level);
        results.push(result);
        const comparison = await compareTables(from.url(db), to.url(db));
        if (!comparison.equal) throw new Error(`scale ${scale} round ${round + 1}: the sides differ after the cut-over`);
        console.log(
          `scale ${scale} ${level.padEnd(7)} catch up ${(result.steps.get(CATCH_UP) ?? 0).toFixed(0).padStart(4)} ms, freeze ${result.freezeMs.toFixed(0).padStart(5)} ms: ${FROZEN_STEPS.map((s) => `${s} ${(result.steps.get(s) ?? 0).toFixed(0)}`).join(', ')}; inside: ${result.inFreeze}; before: ${result.before}; load avg ${os.loadavg()[0]!.toFixed(1)}`,
        );
        direction.set(scale, [to, from]);
      }
} finally {
  await Promise.all([a.stop(), b.stop()]);
}

console.log(
  `\n| scale | --verify | rounds | catch up p50 ms | freeze p50 ms | freeze max ms | ${FROZEN_STEPS.map((s) => `${s} p50`).join(' | ')} |`,
);
console.log(`|---:|---|---:|---:|---:|---:|${FROZEN_STEPS.map(() => '---:').join('|')}|`);
for (const scale of scales)
  for (const level of LEVELS) {
    const mine = results.filter((r) => r.scale === scale && r.level === level);
    console.log(
      `| ${scale} | ${level} | ${mine.length} | ${median(mine.map((r) => r.steps.get(CATCH_UP) ?? 0)).toFixed(0)} | ${median(mine.map((r) => r.freezeMs)).toFixed(0)} | ${Math.max(...mine.map((r) => r.freezeMs)).toFixed(0)} | ${FROZEN_STEPS.map((s) => median(mine.map((r) => r.steps.get(s) ?? 0)).toFixed(1)).join(' | ')} |`,
    );
  }
if (scales.length > 1) {
  const [small, large] = [Math.min(...scales), Math.max(...scales)];
  for (const level of LEVELS) {
    const p50 = (scale: number) => median(results.filter((r) => r.scale === scale && r.level === level).map((r) => r.freezeMs));
    console.log(`${level}: freeze p50 at scale ${large} / scale ${small} = ${(p50(large) / p50(small)).toFixed(2)}`);
  }
}
console.log(
  `\n${((performance.now() - started) / 1000).toFixed(0)} s in all; load average at the end ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
