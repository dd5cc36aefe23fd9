/**
 * `pgferry clone` (issue 4) against real servers, 13 → 17 (key ranges) and 17 → 18 (TID
 * ranges): every type arrives with the same text output, in the COPY format each table needs;
 * a 2M-row table split into ranges equals its source; sequences, materialized views, indexes
 * and constraints after the copy; refusals of non-empty and finished targets; a target table
 * with a widened column; a clone killed mid-copy, or after its last unit, and resumed equals
 * its source; rows written while the clone runs stay out of the target; rows changed between
 * a kill and --resume are neither lost nor duplicated.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runPgferry, startClusters, type CliResult, type Cluster } from '../harness/index.js';
import { BIG_ROWS, BIG_SQL, TYPES_SPLIT, chunkHashes, rowsAsText, typesSql, typesTables, type ChunkHash } from './clone-fixtures.js';

const BIN = fileURLToPath(new URL('../../../bin/pgferry.js', import.meta.url));
const EMPTY_HOME = mkdtempSync(join(tmpdir(), 'pgferry-home-'));

interface CloneSummary {
  tables: Array<{ table: string; rows: number; bytes: number; seconds: number; format: 'binary' | 'text'; units: number }>;
  phases: Array<{ phase: string; seconds: number }>;
  sequences: number;
  notes: string[];
  unsupported: Array<{ kind: string; name: string; reason: string }>;
  skipped: Array<{ name: string; because: string }>;
  resumed: boolean;
}

let pg13: Cluster;
let pg17: Cluster;
let pg18: Cluster;

/** Per source version: the database holding the big table, and its chunk hashes before any test writes to it. */
const bigSources = new Map<number, { db: string; hashes: ChunkHash[] }>();

before(async () => {
  [pg13, pg17, pg18] = await startClusters([{ version: 13 }, { version: 17 }, { version: 18 }]);
  await Promise.all(
    [pg13, pg17].map(async (cluster) => {
      const db = await cluster.createDatabase({ prefix: 'big' });
      await cluster.sql(db, BIG_SQL);
      await cluster.sql(db, 'VACUUM ANALYZE');
      const hashes = await cluster.withClient(db, (c) => chunkHashes(c, 'public.big'));
      bigSources.set(cluster.version, { db, hashes });
    }),
  );
});

after(async () => {
  await Promise.all([pg13, pg17, pg18].map((c) => c?.stop()));
});

function cloneArgs(sourceUrl: string, targetUrl: string, extra: readonly string[]): string[] {
  return ['clone', '--json', '--source', sourceUrl, '--target', targetUrl, ...extra];
}

async function runClone(sourceUrl: string, targetUrl: string, ...extra: string[]): Promise<CliResult & { summary?: CloneSummary }> {
  const result = await runPgferry(cloneArgs(sourceUrl, targetUrl, extra), {}, 100_000);
  if (result.code !== 0) return result;
  return { ...result, summary: JSON.parse(result.stdout) as CloneSummary };
}

function assertOk(run: CliResult, what: string): void {
  assert.equal(run.code, 0, `${what}: pgferry clone exited ${run.code}:\n${run.stderr.slice(-3000)}`);
}

/** The CLI in its own process, as runPgferry runs it, but handed back so the test can kill it. */
function startPgferry(args: readonly string[]): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: EMPTY_HOME },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
  return { child, done };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function summaryOf(summary: CloneSummary, table: string) {
  const found = summary.tables.find((t) => t.table === table);
  assert.ok(found, `the summary names ${table}; it has ${summary.tables.map((t) => t.table).join(', ')}`);
  return found;
}

function assertSameHashes(target: ChunkHash[], source: ChunkHash[], what: string): void {
  const rows = (h: ChunkHash[]) => h.reduce((sum, c) => sum + c.rows, 0);
  assert.equal(rows(target), rows(source), `${what}: row count`);
  const differing = source.filter((s, i) => target[i]?.chunk !== s.chunk || target[i]?.md5 !== s.md5 || target[i]?.rows !== s.rows);
  assert.deepEqual(
    differing.map((c) => c.chunk),
    [],
    `${what}: chunks of ${250_000} ids that differ (source ${JSON.stringify(source.map((c) => c.rows))}, target ${JSON.stringify(target.map((c) => c.rows))})`,
  );
  assert.equal(target.length, source.length, `${what}: chunk count`);
}

async function targetBigHashes(target: Cluster, db: string): Promise<ChunkHash[]> {
  return target.withClient(db, (c) => chunkHashes(c, 'public.big'));
}

async function assertNoDuplicateIds(target: Cluster, db: string): Promise<void> {
  const { rows } = await target.sql(db, `SELECT id, count(*)::int AS n FROM public.big GROUP BY id HAVING count(*) > 1 LIMIT 5`);
  assert.deepEqual(rows, [], 'no id is on the target twice');
}

interface UnitProgress {
  done: number;
  total: number;
}

/**
 * Starts the clone, watches the target's pgferry.copy_units, and kills the process (SIGKILL)
 * as soon as `killWhen` holds. Returns what the units looked like at the kill and how the
 * process ended.
 */
async function cloneAndKill(
  args: readonly string[],
  target: Cluster,
  targetDb: string,
  killWhen: (p: UnitProgress) => boolean,
): Promise<{ progress: UnitProgress; run: CliResult }> {
  const started = startPgferry(args);
  let progress: UnitProgress = { done: 0, total: 0 };
  const deadline = Date.now() + 60_000;
  await target.withClient(targetDb, async (client) => {
    while (Date.now() < deadline && started.child.exitCode === null) {
      try {
        const { rows } = await client.query(
          `SELECT count(*) FILTER (WHERE done)::int AS done, count(*)::int AS total FROM pgferry.copy_units`,
        );
        progress = rows[0];
      } catch {
        // pgferry's state does not exist yet.
      }
      if (progress.total > 0 && killWhen(progress)) break;
      await sleep(15);
    }
  });
  started.child.kill('SIGKILL');
  return { progress, run: await started.done };
}

async function idsDigest(cluster: Cluster, db: string): Promise<{ n: number; md5: string }> {
  const { rows } = await cluster.sql(db, `SELECT count(*)::int AS n, md5(string_agg(id::text, ',' ORDER BY id)) AS md5 FROM public.big`);
  return rows[0];
}

const PAIRS: Array<[() => Cluster, () => Cluster, string]> = [
  [() => pg13, () => pg17, '13 → 17'],
  [() => pg17, () => pg18, '17 → 18'],
];

for (const [sourceOf, targetOf, label] of PAIRS) {
  describe(`pgferry clone ${label}`, () => {
    /** The finished clone of the big database, shared by the tests that look at it. */
    let bigTarget: { db: string; summary: CloneSummary } | undefined;

    test('every type arrives with the same text output, in binary or text COPY as each table needs', async () => {
      const source = sourceOf();
      const target = targetOf();
      const sourceDb = await source.createDatabase({ prefix: 'types' });
      await source.sql(sourceDb, typesSql(source.version));
      const targetDb = await target.createDatabase({ prefix: 'types' });
      const run = await runClone(source.url(sourceDb), target.url(targetDb), '--split-tables-larger-than', TYPES_SPLIT);
      assertOk(run, 'types');
      const summary = run.summary!;
      const tables = typesTables(source.version);
      const mismatches: string[] = [];
      for (const { name: qname, format, orderBy, split } of tables) {
        const expected = await source.withClient(sourceDb, (c) => rowsAsText(c, qname, orderBy));
        const actual = await target.withClient(targetDb, (c) => rowsAsText(c, qname, orderBy));
        assert.ok(expected.length >= 3, `${qname} holds rows on the source`);
        if (actual.length !== expected.length)
          mismatches.push(`${qname}: ${actual.length} rows on the target, ${expected.length} on the source`);
        let shown = 0;
        for (let i = 0; i < Math.max(expected.length, actual.length) && shown < 5; i++) {
          if (expected[i] !== actual[i]) {
            shown++;
            mismatches.push(
              `${qname} row ${i + 1}:\n  source ${JSON.stringify(expected[i]?.slice(0, 600))}\n  target ${JSON.stringify(actual[i]?.slice(0, 600))}`,
            );
          }
        }
        const reported = summaryOf(summary, qname);
        if (reported.format !== format) mismatches.push(`${qname}: copied as ${reported.format}, expected ${format}`);
        if (reported.rows !== expected.length)
          mismatches.push(`${qname}: the summary says ${reported.rows} rows, the source holds ${expected.length}`);
        if (split && reported.units < 2) mismatches.push(`${qname}: copied in ${reported.units} unit(s), expected ranges`);
      }
      // The partitioned parent holds no rows of its own, and reads the same through it.
      const parent = async (cluster: Cluster, db: string) => cluster.withClient(db, (c) => rowsAsText(c, 'public.readings', 'id, at'));
      assert.deepEqual(await parent(target, targetDb), await parent(source, sourceDb), 'public.readings reads the same through its parent');
      assert.ok(!summary.tables.some((t) => t.table === 'public.readings'), 'the partitioned parent is no unit of its own');
      assert.deepEqual(mismatches, [], mismatches.join('\n'));
      // Sanity: the oracle compares real values, the awkward ones included.
      const special = await target.withClient(targetDb, (c) => rowsAsText(c, 'public.scalars'));
      assert.ok(
        special.some((r) => r.includes('NaN') && r.includes('-infinity')),
        'NaN and infinities are on the target',
      );
      if (source.version >= 14)
        assert.ok(
          special.some((r) => r.startsWith('(4,Infinity,')),
          'numeric Infinity is on the target',
        );
      const toast = await target.sql(targetDb, `SELECT sum(length(body))::bigint AS n FROM public.toasted`);
      assert.ok(Number(toast.rows[0].n) > 3_000_000, 'TOAST-sized values arrived whole');
    });

    test(`a ${BIG_ROWS}-row table split into at least 8 ranges equals its source`, async () => {
      const source = sourceOf();
      const target = targetOf();
      const big = bigSources.get(source.version)!;
      const targetDb = await target.createDatabase({ prefix: 'big' });
      const run = await runClone(source.url(big.db), target.url(targetDb), '--split-tables-larger-than', '8MB', '--jobs', '2');
      assertOk(run, 'big');
      const summary = run.summary!;
      const reported = summaryOf(summary, 'public.big');
      assert.ok(reported.units >= 8, `public.big was copied in ${reported.units} units, expected at least 8`);
      assert.equal(reported.rows, BIG_ROWS);
      assert.equal(reported.format, 'binary');
      const units = await target.sql(
        targetDb,
        `SELECT count(*)::int AS n, count(*) FILTER (WHERE done)::int AS done, sum(rows)::bigint AS rows FROM pgferry.copy_units WHERE table_name = 'public.big'`,
      );
      assert.equal(units.rows[0].n, reported.units, 'pgferry.copy_units holds the same units as the summary');
      assert.equal(units.rows[0].done, reported.units, 'every unit is done');
      assert.equal(Number(units.rows[0].rows), BIG_ROWS);
      assertSameHashes(await targetBigHashes(target, targetDb), big.hashes, 'public.big');
      const child = await target.sql(targetDb, `SELECT count(*)::int AS n FROM public.child`);
      assert.equal(child.rows[0].n, 1000);
      bigTarget = { db: targetDb, summary };
    });

    test('sequences are at or past the source, materialized views are populated, indexes and constraints exist', async (t) => {
      if (!bigTarget) return t.skip('the big clone failed');
      const source = sourceOf();
      const target = targetOf();
      const sourceDb = bigSources.get(source.version)!.db;
      const sequencesSql = `SELECT format('%I.%I', schemaname, sequencename) AS name, last_value::text AS last_value, increment_by::text AS inc
                              FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1`;
      const sourceSeqs = (await source.sql(sourceDb, sequencesSql)).rows as Array<{ name: string; last_value: string | null; inc: string }>;
      const targetSeqs = new Map(
        ((await target.sql(bigTarget.db, sequencesSql)).rows as Array<{ name: string; last_value: string | null }>).map((r) => [
          r.name,
          r.last_value,
        ]),
      );
      assert.deepEqual([...targetSeqs.keys()].sort(), sourceSeqs.map((s) => s.name).sort(), 'the same sequences exist');
      for (const s of sourceSeqs) {
        if (s.last_value === null) continue;
        const onTarget = targetSeqs.get(s.name);
        assert.ok(onTarget !== null && onTarget !== undefined, `${s.name} is set on the target (source last_value ${s.last_value})`);
        const ahead = BigInt(s.inc) > 0n ? BigInt(onTarget) >= BigInt(s.last_value) : BigInt(onTarget) <= BigInt(s.last_value);
        assert.ok(ahead, `${s.name}: target at ${onTarget}, source at ${s.last_value}`);
      }
      assert.ok(
        sourceSeqs.some((s) => s.name === 'public.big_id_seq' && s.last_value === String(BIG_ROWS)),
        'the identity sequence is among them',
      );
      assert.ok(
        sourceSeqs.some((s) => s.name === 'public.child_id_seq' && s.last_value === '1000'),
        'the serial sequence is among them',
      );
      assert.ok(bigTarget.summary.sequences >= 4, `the summary counts ${bigTarget.summary.sequences} sequences set`);
      // New rows get fresh ids, not ones the copied rows use.
      const fresh = await target.sql(bigTarget.db, `INSERT INTO public.big (n) VALUES (1) RETURNING id`);
      assert.ok(fresh.rows[0].id > BIG_ROWS, `a new identity value ${fresh.rows[0].id} is past the copied ids`);
      await target.sql(bigTarget.db, `DELETE FROM public.big WHERE id = $1`, [fresh.rows[0].id]);
      const child = await target.sql(bigTarget.db, `INSERT INTO public.child (big_id, label) VALUES (1, 'new') RETURNING id`);
      assert.ok(child.rows[0].id > 1000, `a new serial value ${child.rows[0].id} is past the copied ids`);
      await target.sql(bigTarget.db, `DELETE FROM public.child WHERE label = 'new'`);

      const matviewSql = `SELECT ispopulated FROM pg_matviews WHERE schemaname = 'public' AND matviewname = 'big_summary'`;
      assert.deepEqual((await target.sql(bigTarget.db, matviewSql)).rows, [{ ispopulated: true }], 'the materialized view is populated');
      const contentSql = `SELECT k, c::text, s::text FROM public.big_summary ORDER BY k`;
      assert.deepEqual(
        (await target.sql(bigTarget.db, contentSql)).rows,
        (await source.sql(sourceDb, contentSql)).rows,
        'the materialized view holds the source rows',
      );

      const indexesSql = `SELECT tablename || '.' || indexname AS name FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1`;
      const constraintsSql = `SELECT conrelid::regclass::text || '.' || conname || ' ' || contype::text AS name FROM pg_constraint
                               WHERE connamespace = 'public'::regnamespace AND contype <> 'n' ORDER BY 1`;
      const names = async (cluster: Cluster, db: string, sql: string) => (await cluster.sql(db, sql)).rows.map((r) => r.name as string);
      const sourceIndexes = await names(source, sourceDb, indexesSql);
      assert.deepEqual(await names(target, bigTarget.db, indexesSql), sourceIndexes, 'the same indexes');
      assert.ok(sourceIndexes.length >= 5, `indexes compared: ${sourceIndexes.join(', ')}`);
      const sourceConstraints = await names(source, sourceDb, constraintsSql);
      assert.deepEqual(await names(target, bigTarget.db, constraintsSql), sourceConstraints, 'the same constraints');
      assert.ok(sourceConstraints.length >= 5, `constraints compared: ${sourceConstraints.join(', ')}`);
      const invalid = await target.sql(
        bigTarget.db,
        `SELECT conname FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND NOT convalidated`,
      );
      assert.deepEqual(invalid.rows, [], 'every constraint is validated');
      const broken = await target.sql(
        bigTarget.db,
        `SELECT indexrelid::regclass::text AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
                                                      WHERE c.relnamespace = 'public'::regnamespace AND NOT (i.indisvalid AND i.indisready)`,
      );
      assert.deepEqual(broken.rows, [], 'every index is valid');
      const analyzed = await target.sql(
        bigTarget.db,
        `SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
                                                        WHERE s.schemaname = 'public' AND c.relkind = 'r' AND s.last_analyze IS NULL AND s.last_autoanalyze IS NULL ORDER BY 1`,
      );
      assert.deepEqual(analyzed.rows, [], 'every copied table was analyzed');
    });

    test('a target whose tables hold rows is refused; --drop-existing copies again; a finished clone is refused', async () => {
      const source = sourceOf();
      const target = targetOf();
      const sourceDb = await source.createDatabase({ prefix: 'small' });
      await source.sql(
        sourceDb,
        `CREATE TABLE public.items (id int PRIMARY KEY, name text NOT NULL);
        INSERT INTO public.items SELECT g, 'item ' || g FROM generate_series(1, 100) g;
        CREATE TABLE public.other (id bigserial PRIMARY KEY, at timestamptz DEFAULT now());
        INSERT INTO public.other DEFAULT VALUES;`,
      );
      const targetDb = await target.createDatabase({ prefix: 'busy' });
      await target.sql(
        targetDb,
        `CREATE TABLE public.items (id int PRIMARY KEY, name text NOT NULL); INSERT INTO public.items VALUES (1, 'precious')`,
      );

      const refused = await runClone(source.url(sourceDb), target.url(targetDb));
      assert.equal(refused.code, 2, `a non-empty target is refused with exit 2; got ${refused.code}:\n${refused.stderr}`);
      assert.match(refused.stderr, /public\.items/, 'the message names the table');
      assert.match(refused.stderr, /--drop-existing/, 'the message names the way out');
      assert.deepEqual(
        (await target.sql(targetDb, `SELECT id, name FROM public.items`)).rows,
        [{ id: 1, name: 'precious' }],
        'the target rows are untouched',
      );
      assert.equal(
        (await target.sql(targetDb, `SELECT to_regclass('public.other') AS t`)).rows[0].t,
        null,
        'nothing was created before the refusal',
      );

      const dropped = await runClone(source.url(sourceDb), target.url(targetDb), '--drop-existing');
      assertOk(dropped, '--drop-existing');
      const itemsSql = `SELECT id, name FROM public.items ORDER BY id`;
      assert.deepEqual(
        (await target.sql(targetDb, itemsSql)).rows,
        (await source.sql(sourceDb, itemsSql)).rows,
        'the target holds the source rows',
      );
      assert.equal((await target.sql(targetDb, `SELECT count(*)::int AS n FROM public.other`)).rows[0].n, 1);

      const again = await runClone(source.url(sourceDb), target.url(targetDb));
      assert.equal(again.code, 2, `a second clone onto a finished target is refused with exit 2; got ${again.code}:\n${again.stderr}`);
      assert.match(again.stderr, /finished clone/);
      const resumeFinished = await runClone(source.url(sourceDb), target.url(targetDb), '--resume');
      assert.equal(
        resumeFinished.code,
        2,
        `--resume onto a finished target is refused with exit 2; got ${resumeFinished.code}:\n${resumeFinished.stderr}`,
      );
      assert.deepEqual(
        (await target.sql(targetDb, itemsSql)).rows,
        (await source.sql(sourceDb, itemsSql)).rows,
        'the refused runs left the rows alone',
      );

      if (bigTarget) {
        const big = await runClone(source.url(bigSources.get(source.version)!.db), target.url(bigTarget.db));
        assert.equal(big.code, 2, `the finished big clone is refused too; got ${big.code}:\n${big.stderr}`);
      }
    });

    test('a target table with wider column types is accepted while empty and filled through text COPY', async () => {
      const source = sourceOf();
      const target = targetOf();
      const sourceDb = await source.createDatabase({ prefix: 'narrow' });
      await source.sql(
        sourceDb,
        `CREATE TABLE public.widen (id int PRIMARY KEY, v int NOT NULL, label text);
        INSERT INTO public.widen SELECT g, g * 1000, 'row ' || g FROM generate_series(1, 1000) g;
        INSERT INTO public.widen VALUES (1001, 2147483647, NULL), (1002, -2147483648, E'tab\\there')`,
      );
      const targetDb = await target.createDatabase({ prefix: 'wide' });
      await target.sql(targetDb, `CREATE TABLE public.widen (id bigint PRIMARY KEY, v bigint NOT NULL, label text)`);
      const run = await runClone(source.url(sourceDb), target.url(targetDb));
      assertOk(run, 'widened column');
      assert.equal(summaryOf(run.summary!, 'public.widen').format, 'text');
      const rowsSql = `SELECT id::text, v::text, label FROM public.widen ORDER BY id`;
      assert.deepEqual((await target.sql(targetDb, rowsSql)).rows, (await source.sql(sourceDb, rowsSql)).rows);
      const type = await target.sql(
        targetDb,
        `SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'public.widen'::regclass AND attname = 'v'`,
      );
      assert.equal(type.rows[0].t, 'bigint', 'the wider column stays as it was');
    });

    test('a clone killed mid-copy is refused without --resume, and resumed equals its source', async () => {
      const source = sourceOf();
      const target = targetOf();
      const big = bigSources.get(source.version)!;
      const targetDb = await target.createDatabase({ prefix: 'resume' });
      const args = cloneArgs(source.url(big.db), target.url(targetDb), ['--split-tables-larger-than', '3MB', '--jobs', '1']);
      const { progress, run: killed } = await cloneAndKill(args, target, targetDb, (p) => p.done >= 3);
      assert.ok(
        progress.done >= 3,
        `units were done before the kill (${progress.done} of ${progress.total}); pgferry said:\n${killed.stderr.slice(-2000)}`,
      );
      assert.equal(killed.code, 128, `pgferry was killed mid-copy, not finished (exit ${killed.code})`);
      const left = (
        await target.sql(
          targetDb,
          `SELECT count(*) FILTER (WHERE done)::int AS done, count(*)::int AS total, coalesce(sum(rows) FILTER (WHERE done), 0)::bigint AS rows FROM pgferry.copy_units`,
        )
      ).rows[0];
      assert.ok(left.total >= 8 && left.done < left.total, `the kill left work to do: ${left.done} of ${left.total} units done`);

      const kept = (
        await target.sql(
          targetDb,
          `SELECT coalesce(sum(rows), 0)::bigint AS rows FROM pgferry.copy_units
            WHERE done AND table_name IN (SELECT table_name FROM pgferry.copy_units GROUP BY 1 HAVING bool_and(done))`,
        )
      ).rows[0];
      assert.ok(Number(kept.rows) < Number(left.rows), 'the half-done split table is not kept');

      const refused = await runPgferry(args, {}, 60_000);
      assert.equal(refused.code, 2, `a rerun without --resume is refused with exit 2; got ${refused.code}:\n${refused.stderr}`);
      assert.match(refused.stderr, /--resume/);
      const stillThere = (await target.sql(targetDb, `SELECT count(*) FILTER (WHERE done)::int AS done FROM pgferry.copy_units`)).rows[0];
      assert.equal(stillThere.done, left.done, 'the refused run kept the finished units');

      const resumed = await runPgferry([...args, '--resume'], {}, 100_000);
      assertOk(resumed, '--resume');
      const summary = JSON.parse(resumed.stdout) as CloneSummary;
      assert.equal(summary.resumed, true);
      const units = summary.tables.reduce((sum, t) => sum + t.units, 0);
      assert.equal(units, left.total, 'the resumed clone kept the stored plan');
      // Kept: finished tables. A half-done split table is copied again: rows updated in
      // between may have moved to another page range or key range.
      const copied = summary.tables.reduce((sum, t) => sum + t.rows, 0);
      assert.equal(copied, BIG_ROWS + 1000 - Number(kept.rows), 'the resumed clone copied only what it could not keep');
      const open = (await target.sql(targetDb, `SELECT count(*) FILTER (WHERE NOT done)::int AS open FROM pgferry.copy_units`)).rows[0];
      assert.equal(open.open, 0, 'every unit is done');
      await assertNoDuplicateIds(target, targetDb);
      assertSameHashes(await targetBigHashes(target, targetDb), big.hashes, 'public.big after resume');
      assert.equal((await target.sql(targetDb, `SELECT count(*)::int AS n FROM public.child`)).rows[0].n, 1000);
      const pkey = await target.sql(
        targetDb,
        `SELECT count(*)::int AS n FROM pg_indexes WHERE schemaname = 'public' AND indexname IN ('big_pkey', 'big_n_idx', 'child_pkey')`,
      );
      assert.equal(pkey.rows[0].n, 3, 'indexes exist after the resume');
    });

    test('a clone killed after its last unit landed, while post-data runs, resumes to a complete target', async () => {
      const source = sourceOf();
      const target = targetOf();
      const big = bigSources.get(source.version)!;
      const targetDb = await target.createDatabase({ prefix: 'postkill' });
      const args = cloneArgs(source.url(big.db), target.url(targetDb), ['--split-tables-larger-than', '16MB']);
      const { progress, run: killed } = await cloneAndKill(args, target, targetDb, (p) => p.done === p.total);
      assert.equal(killed.code, 128, `pgferry was killed before it finished (exit ${killed.code}):\n${killed.stderr.slice(-2000)}`);
      assert.equal(progress.done, progress.total, 'every unit was done at the kill');
      const state = (await target.sql(targetDb, `SELECT finished_at IS NULL AS open FROM pgferry.clone`)).rows;
      assert.deepEqual(state, [{ open: true }], 'the clone was not finished at the kill');

      const resumed = await runPgferry([...args, '--resume'], {}, 100_000);
      assertOk(resumed, '--resume after every unit landed');
      const summary = JSON.parse(resumed.stdout) as CloneSummary;
      assert.equal(
        summary.tables.reduce((sum, t) => sum + t.rows, 0),
        0,
        'no rows were copied again',
      );
      const indexesSql = `SELECT tablename || '.' || indexname AS name FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1`;
      const constraintsSql = `SELECT conrelid::regclass::text || '.' || conname AS name FROM pg_constraint
                               WHERE connamespace = 'public'::regnamespace AND contype <> 'n' AND convalidated ORDER BY 1`;
      const names = async (cluster: Cluster, db: string, sql: string) => (await cluster.sql(db, sql)).rows.map((r) => r.name as string);
      assert.deepEqual(await names(target, targetDb, indexesSql), await names(source, big.db, indexesSql), 'the same indexes');
      assert.deepEqual(
        await names(target, targetDb, constraintsSql),
        await names(source, big.db, constraintsSql),
        'the same valid constraints',
      );
      const matview = await target.sql(targetDb, `SELECT ispopulated FROM pg_matviews WHERE matviewname = 'big_summary'`);
      assert.deepEqual(matview.rows, [{ ispopulated: true }]);
      const seq = await target.sql(targetDb, `SELECT last_value::text AS v FROM pg_sequences WHERE sequencename = 'big_id_seq'`);
      assert.ok(BigInt(seq.rows[0]?.v ?? '0') >= BigInt(BIG_ROWS), `the identity sequence is set (${seq.rows[0]?.v})`);
      assertSameHashes(await targetBigHashes(target, targetDb), big.hashes, 'public.big after resuming post-data');
    });

    // After the tests that compare with the hashes taken at the start: it writes to the big source database.
    test('rows written to the source while the clone runs are not on the target', async () => {
      const source = sourceOf();
      const target = targetOf();
      const big = bigSources.get(source.version)!;
      const targetDb = await target.createDatabase({ prefix: 'snap' });
      const cloning = startPgferry(
        cloneArgs(source.url(big.db), target.url(targetDb), ['--split-tables-larger-than', '8MB', '--jobs', '2']),
      );
      const started = Date.now();
      let finished = false;
      let finishedAt = 0;
      void cloning.done.then(() => {
        finished = true;
        finishedAt = Date.now() - started;
      });

      const writer = new pg.Client({ connectionString: source.url(big.db) });
      await writer.connect();
      const stats = { transactions: 0, duringCopy: 0, seenAt: 0, writerDoneAt: 0 };
      try {
        // Writes begin once a copy job reads at the snapshot: the COPY statements run only after it was exported.
        const copying = `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'pgferry %' AND datname = current_database()
                            AND state = 'active' AND query ILIKE 'COPY %TO STDOUT%'`;
        const deadline = Date.now() + 60_000;
        while (!finished && Date.now() < deadline && (await writer.query(copying)).rows[0].n === 0) await sleep(10);
        if (finished) assert.fail(`the clone finished before its COPY was seen:\n${(await cloning.done).stderr.slice(-2000)}`);

        stats.seenAt = Date.now() - started;
        for (let i = 0; !finished; i++) {
          const id = 1 + ((i * 7919) % BIG_ROWS);
          await writer.query('BEGIN');
          await writer.query(`INSERT INTO public.big (n, note) VALUES ($1, 'after')`, [i % 1000]);
          await writer.query(`UPDATE public.big SET note = 'after', n = n + 1 WHERE id = $1`, [id]);
          await writer.query(`DELETE FROM public.big WHERE id = $1`, [BIG_ROWS - ((i * 104729) % 100000)]);
          await writer.query('COMMIT');
          stats.transactions++;
          // Once: a bulk update that moves many row versions, in the pages the first ranges cover.
          if (i === 20) await writer.query(`UPDATE public.big SET note = 'after', n = n + 1 WHERE id BETWEEN 1 AND 20000`);
          if (i % 5 === 0 && (await writer.query(copying)).rows[0].n > 0) stats.duringCopy++;
        }
        stats.writerDoneAt = Date.now() - started;
      } finally {
        await writer.end();
      }
      const run = await cloning.done;
      assertOk(run, 'clone under writes');
      assert.ok(
        stats.duringCopy >= 2,
        `writes committed while COPY ran (${stats.duringCopy} checks saw it, ${stats.transactions} write transactions; COPY seen at ${stats.seenAt} ms, writer stopped at ${stats.writerDoneAt} ms, clone ended at ${finishedAt} ms)\n${run.stderr.slice(-3000)}`,
      );
      const changed = (
        await source.sql(
          big.db,
          `SELECT count(*) FILTER (WHERE note = 'after')::int AS after, max(id) AS max, count(*)::int AS n FROM public.big`,
        )
      ).rows[0];
      assert.ok(
        changed.after > 20000 && changed.max > BIG_ROWS,
        `the source did change (${changed.after} rows 'after', max id ${changed.max})`,
      );

      const onTarget = (
        await target.sql(
          targetDb,
          `SELECT count(*) FILTER (WHERE note = 'after')::int AS after, max(id) AS max, count(*)::int AS n FROM public.big`,
        )
      ).rows[0];
      assert.equal(onTarget.after, 0, 'no update made after the snapshot is on the target');
      assert.equal(onTarget.max, BIG_ROWS, 'no row inserted after the snapshot is on the target');
      assert.equal(onTarget.n, BIG_ROWS, 'every row deleted after the snapshot is still on the target');
      await assertNoDuplicateIds(target, targetDb);
      assertSameHashes(await targetBigHashes(target, targetDb), big.hashes, 'public.big at the snapshot');
    });
    // Last: it changes rows the first run already copied.
    test('rows changed on the source between the kill and --resume are neither lost nor duplicated', async () => {
      const source = sourceOf();
      const target = targetOf();
      const big = bigSources.get(source.version)!;
      const targetDb = await target.createDatabase({ prefix: 'between' });
      const args = cloneArgs(source.url(big.db), target.url(targetDb), ['--split-tables-larger-than', '3MB', '--jobs', '1']);
      const { progress, run: killed } = await cloneAndKill(args, target, targetDb, (p) => p.done >= 3);
      assert.equal(killed.code, 128, `pgferry was killed mid-copy (exit ${killed.code}):\n${killed.stderr.slice(-2000)}`);
      assert.ok(progress.done >= 3 && progress.done < progress.total, `killed with ${progress.done} of ${progress.total} units done`);

      // Rows the finished ranges already hold get a new version on the source: on 14+ it lands at the
      // end of the heap, in a TID range still to copy. Keys never change.
      const onTarget = (
        await target.sql(targetDb, `SELECT array_agg(id ORDER BY id) AS ids FROM (SELECT id FROM public.big ORDER BY id LIMIT 20000) s`)
      ).rows[0].ids as number[];
      const moved = await source.sql(big.db, `UPDATE public.big SET note = 'between', n = n + 1 WHERE id = ANY($1::int[])`, [onTarget]);
      assert.equal(moved.rowCount, onTarget.length, 'rows already copied were updated on the source');

      const resumed = await runPgferry([...args, '--resume'], {}, 100_000);
      const sourceIds = await idsDigest(source, big.db);
      const targetIds = await idsDigest(target, targetDb);
      const duplicates = (
        await target.sql(
          targetDb,
          `SELECT coalesce(sum(n - 1), 0)::int AS n FROM (SELECT count(*) AS n FROM public.big GROUP BY id HAVING count(*) > 1) d`,
        )
      ).rows[0].n;
      const missing = sourceIds.n - (targetIds.n - duplicates);
      assert.ok(
        resumed.code === 0 && duplicates === 0 && missing === 0 && targetIds.md5 === sourceIds.md5,
        `--resume exited ${resumed.code}; the target must hold every source row exactly once: ${targetIds.n} rows on the target, ` +
          `${sourceIds.n} on the source, ${duplicates} duplicate(s), ${missing} missing\n${resumed.stderr
            .split('\n')
            .filter((l) => !l.startsWith('{'))
            .join('\n')}`,
      );
    });
  });
}
