import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { compareTables, startClusters, type Cluster } from '../harness/index.js';
import { runPgferry } from '../harness/cli.js';

/*
 * A big table is cut by its integer key where the copy needs key ranges: always under sync
 * (a row keeps its key range whatever page an update moves it to, so a resumed copy keeps the
 * ranges it finished), and for clone before PostgreSQL 14 (no TID range scans). Keys are often
 * skewed: a block of ids moved far up, a sequence that jumped. Ranges of equal width between
 * the lowest and highest key put nearly every row in one range, and the copy runs on one job;
 * the ranges must hold about equal numbers of rows.
 */

const ROWS = 120_000;

async function skewedTable(source: Cluster, db: string): Promise<void> {
  await source.sql(
    db,
    `CREATE TABLE skewed (id bigint PRIMARY KEY, filler text NOT NULL) WITH (fillfactor = 100);
     INSERT INTO skewed SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, ${ROWS}) g;
     -- One row in a hundred moved far up, and a few time-based ids higher still.
     UPDATE skewed SET id = id + 20000000 WHERE id % 100 = 0;
     INSERT INTO skewed SELECT 1700000000000000 + g * 4096, 'late' FROM generate_series(1, 50) g;
     ANALYZE skewed;`,
  );
}

/** Rows per unit of public.skewed, from the copy's "unit copied" log lines. */
function rowsPerUnit(output: string): number[] {
  return output
    .split('\n')
    .filter((line) => line.includes('"msg":"unit copied"') && line.includes('"table":"public.skewed"'))
    .map((line) => (JSON.parse(line) as { rows: number }).rows);
}

function assertEvenRanges(units: number[], output: string): void {
  assert.ok(units.length >= 4, `public.skewed was copied in ${units.length} unit(s), expected key ranges:\n${output.slice(-3000)}`);
  const total = units.reduce((a, b) => a + b, 0);
  assert.equal(total, ROWS + 50);
  const mean = total / units.length;
  const largest = Math.max(...units);
  assert.ok(largest <= 3 * mean, `a key range holds ${largest} of ${total} rows (${units.length} ranges, rows each: ${units.join(', ')})`);
}

describe('key ranges of a table with skewed keys hold about equal rows', () => {
  let clusters: [Cluster, Cluster];
  before(async () => {
    clusters = await startClusters([{ version: 13 }, { version: 17 }]);
  });
  after(async () => {
    await Promise.all(clusters.map((c) => c.stop()));
  });

  it('sync: the copy a stream completes, cut by key', async () => {
    const [source, target] = clusters;
    const db = await source.createDatabase({ prefix: 'skew_sync' });
    await target.sql('postgres', `CREATE DATABASE ${db}`);
    await skewedTable(source, db);
    const args = ['--source', source.url(db), '--target', target.url(db)];
    const run = await runPgferry(['sync', ...args, '--split-tables-larger-than', '1MB', '--jobs', '2', '--until-caught-up'], {}, 120_000);
    const output = run.stdout + run.stderr;
    assert.equal(run.code, 0, output.slice(-3000));
    assertEvenRanges(rowsPerUnit(output), output);
    const comparison = await compareTables(source.url(db), target.url(db));
    assert.ok(comparison.equal, JSON.stringify(comparison.tables.filter((t) => !t.equal)));
    await runPgferry(['cleanup', ...args]);
  });

  it('clone from PostgreSQL 13: key ranges where 14 would use TID ranges', async () => {
    const [source, target] = clusters;
    const db = await source.createDatabase({ prefix: 'skew_clone' });
    await target.sql('postgres', `CREATE DATABASE ${db}`);
    await skewedTable(source, db);
    const run = await runPgferry(
      ['clone', '--source', source.url(db), '--target', target.url(db), '--split-tables-larger-than', '1MB', '--jobs', '2'],
      {},
      120_000,
    );
    const output = run.stdout + run.stderr;
    assert.equal(run.code, 0, output.slice(-3000));
    assertEvenRanges(rowsPerUnit(output), output);
    const comparison = await compareTables(source.url(db), target.url(db));
    assert.ok(comparison.equal, JSON.stringify(comparison.tables.filter((t) => !t.equal)));
  });
});
