/**
 * Edges of pgferry clone found in review: failures mid-COPY end promptly and name the side;
 * partitioned parents' triggers don't act on copied rows; sequences and objects out of scope
 * are left alone; a resume must cover the same tables.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { compareTables, runPgferry, startClusters, type Cluster } from '../harness/index.js';

let source: Cluster;
let target: Cluster;

before(async () => {
  [source, target] = await startClusters([{ version: 16 }, { version: 17 }]);
});

after(async () => {
  await Promise.all([source?.stop(), target?.stop()]);
});

async function databases(sourceSql: string, targetSql = ''): Promise<{ s: string; t: string }> {
  const s = await source.createDatabase();
  const t = await target.createDatabase();
  await source.sql(s, sourceSql);
  if (targetSql) await target.sql(t, targetSql);
  return { s, t };
}

const clone = (s: string, t: string, ...extra: string[]) =>
  runPgferry(['clone', '--source', source.url(s), '--target', target.url(t), ...extra], {}, 90_000);

describe('pgferry clone edges', () => {
  test('a value the target rejects mid-COPY ends the clone promptly, naming the target and the table', async () => {
    const { s, t } = await databases(
      `CREATE TABLE public.m (id int PRIMARY KEY, v int); INSERT INTO public.m SELECT g, CASE WHEN g = 150000 THEN 100000 ELSE 1 END FROM generate_series(1, 200000) g;`,
      `CREATE TABLE public.m (id int PRIMARY KEY, v smallint)`,
    );
    const run = await clone(s, t, '--jobs', '1');
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /pgferry: target: copying public\.m failed: .*out of range/);
  });

  test("a partitioned parent's trigger does not fire on copied rows", async () => {
    const { s, t } = await databases(`
      CREATE TABLE public.p (id int, part int, note text) PARTITION BY LIST (part);
      CREATE TABLE public.p1 PARTITION OF public.p FOR VALUES IN (1);
      CREATE TABLE public.p2 PARTITION OF public.p FOR VALUES IN (2);
      CREATE FUNCTION public.mark() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.note := 'TRIGGERED'; RETURN NEW; END$$;
      INSERT INTO public.p SELECT g, 1 + g % 2, 'copied' FROM generate_series(1, 2000) g;
      CREATE TRIGGER mark BEFORE INSERT ON public.p FOR EACH ROW EXECUTE FUNCTION public.mark();`);
    const run = await clone(s, t, '--jobs', '1', '--index-jobs', '1');
    assert.equal(run.code, 0, run.stderr);
    const { rows } = await target.sql(
      t,
      `SELECT count(*) FILTER (WHERE note = 'TRIGGERED')::int AS fired, count(*)::int AS n FROM public.p`,
    );
    assert.deepEqual(rows[0], { fired: 0, n: 2000 });
  });

  test('a table whose only columns are generated keeps its rows: there is no column to name in COPY', async () => {
    const { s, t } = await databases(`
      CREATE TABLE public.computed (one int GENERATED ALWAYS AS (1) STORED, two text GENERATED ALWAYS AS ('two') STORED);
      INSERT INTO public.computed SELECT FROM generate_series(1, 5);
      CREATE TABLE public.computed_big (one int GENERATED ALWAYS AS (1) STORED);
      INSERT INTO public.computed_big SELECT FROM generate_series(1, 300000);`);
    // computed_big is cut into page ranges: the ranged COPY names no column either.
    const run = await clone(s, t, '--split-tables-larger-than', '1MB');
    assert.equal(run.code, 0, run.stderr);
    const comparison = await compareTables(source.url(s), target.url(t));
    assert.ok(comparison.equal, JSON.stringify(comparison.tables));
    assert.deepEqual(
      comparison.tables.map((c) => [c.table, c.targetRows]),
      [
        ['public.computed', 5],
        ['public.computed_big', 300000],
      ],
    );
  });

  test('a table without columns keeps its rows, made so or by dropping its columns', async () => {
    const { s, t } = await databases(`
      CREATE TABLE public.nothing ();
      INSERT INTO public.nothing SELECT FROM generate_series(1, 7);
      CREATE TABLE public.emptied (gone int);
      INSERT INTO public.emptied SELECT g FROM generate_series(1, 3) g;
      ALTER TABLE public.emptied DROP COLUMN gone;`);
    const run = await clone(s, t);
    assert.equal(run.code, 0, run.stderr);
    const comparison = await compareTables(source.url(s), target.url(t));
    assert.ok(comparison.equal, JSON.stringify(comparison.tables));
    assert.deepEqual(
      comparison.tables.map((c) => [c.table, c.targetRows]),
      [
        ['public.emptied', 3],
        ['public.nothing', 7],
      ],
    );
  });

  test('sequences out of scope are left alone', async () => {
    const { s, t } = await databases(
      `CREATE TABLE public.a (id serial PRIMARY KEY); INSERT INTO public.a DEFAULT VALUES; INSERT INTO public.a DEFAULT VALUES;
       CREATE TABLE public.other (id serial PRIMARY KEY); INSERT INTO public.other DEFAULT VALUES;`,
      `CREATE TABLE public.other (id serial PRIMARY KEY); SELECT setval('public.other_id_seq', 100);`,
    );
    const run = await clone(s, t, '--include-table', 'public.a');
    assert.equal(run.code, 0, run.stderr);
    const seqs = await target.sql(
      t,
      `SELECT (SELECT last_value FROM public.a_id_seq)::int AS a, (SELECT last_value FROM public.other_id_seq)::int AS other`,
    );
    assert.deepEqual(seqs.rows[0], { a: 2, other: 100 });
  });

  test("an identity column of a partitioned table: its sequence goes on past the copied rows (pg_partman's tables)", async () => {
    const { s, t } = await databases(
      `CREATE TABLE public.r (id bigint GENERATED BY DEFAULT AS IDENTITY, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
       CREATE TABLE public.r_2026 PARTITION OF public.r FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') PARTITION BY RANGE (at);
       CREATE TABLE public.r_2026_h1 PARTITION OF public.r_2026 FOR VALUES FROM ('2026-01-01') TO ('2026-07-01');
       CREATE TABLE public.r_2026_h2 PARTITION OF public.r_2026 FOR VALUES FROM ('2026-07-01') TO ('2027-01-01');
       INSERT INTO public.r (at) SELECT DATE '2026-01-01' + g FROM generate_series(0, 299) g;`,
    );
    const run = await clone(s, t);
    assert.equal(run.code, 0, run.stderr);
    const next = await target.sql(t, `INSERT INTO public.r (at) VALUES ('2026-12-31') RETURNING id::int AS id`);
    assert.deepEqual(next.rows[0], { id: 301 });
  });

  test('--drop-existing refuses to drop what depends on the tables from outside the scope', async () => {
    const { s, t } = await databases(
      `CREATE TABLE public.a (id int PRIMARY KEY); INSERT INTO public.a VALUES (1)`,
      `CREATE TABLE public.a (id int PRIMARY KEY); INSERT INTO public.a VALUES (7); CREATE VIEW public.keep_me AS SELECT id FROM public.a`,
    );
    const run = await clone(s, t, '--drop-existing');
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /depend on tables in scope/);
    assert.equal((await target.sql(t, `SELECT count(*)::int AS n FROM public.keep_me`)).rows[0].n, 1, 'nothing was dropped');
  });

  test('a resume must cover the same tables as the interrupted clone', async () => {
    const { s, t } = await databases(`CREATE TABLE public.a (id int PRIMARY KEY); CREATE TABLE public.b (id int PRIMARY KEY)`);
    // An interrupted clone of public.a alone, as its state records it.
    const first = await clone(s, t, '--include-table', 'public.a');
    assert.equal(first.code, 0, first.stderr);
    await target.sql(t, `UPDATE pgferry.clone SET finished_at = NULL`);
    const resumed = await clone(s, t, '--resume');
    assert.equal(resumed.code, 2, resumed.stderr);
    assert.match(resumed.stderr, /other tables than this run \(new: public\.b\)/);
  });
});
