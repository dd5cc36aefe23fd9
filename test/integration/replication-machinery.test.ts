/**
 * A source that is also a pglogical provider (issue 35): pglogical's extension, schema and node
 * rows are the source's own replication, left out by check, clone and sync; the target here
 * has no pglogical at all (npm's server), as a new primary usually has not.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CheckReport } from '../../src/check/index.js';
import { DEBIAN_MAJOR, runPgferry, useClusterPair, type Cluster } from '../harness/index.js';

const DB = 'provider';

async function pglogicalOn(cluster: Cluster, db: string): Promise<{ extension: number; schema: number }> {
  const { rows } = await cluster.sql(
    db,
    `SELECT (SELECT count(*)::int FROM pg_extension WHERE extname = 'pglogical') AS extension,
            (SELECT count(*)::int FROM pg_namespace WHERE nspname = 'pglogical') AS schema`,
  );
  return rows[0] as { extension: number; schema: number };
}

describe('replication machinery on the source (pglogical)', () => {
  const pair = useClusterPair(
    { version: DEBIAN_MAJOR, distribution: 'debian', extensions: ['pglogical'], settings: { shared_preload_libraries: 'pglogical' } },
    { version: DEBIAN_MAJOR },
  );

  it('check says pglogical is left out; clone and sync leave out its extension, schema and rows and copy the rest', async () => {
    const { source, target } = pair;
    await source.sql('postgres', `CREATE DATABASE ${DB}`);
    await source.sql(
      DB,
      `CREATE EXTENSION pglogical;
       SELECT pglogical.create_node(node_name := 'provider', dsn := 'host=${source.host} port=${source.port} dbname=${DB}');
       CREATE TABLE orders (id int PRIMARY KEY, note text);
       INSERT INTO orders SELECT g, 'note ' || g FROM generate_series(1, 1000) g;
       SELECT pglogical.replication_set_add_table('default', 'orders');`,
    );
    assert.deepEqual(await pglogicalOn(source, DB), { extension: 1, schema: 1 });

    const check = await runPgferry(['check', '--json', '--source', source.url(DB), '--target', target.url('postgres')]);
    const report = JSON.parse(check.stdout) as CheckReport;
    const about = report.findings.filter((f) => f.message.includes('pglogical'));
    assert.deepEqual(
      about.map((f) => [f.id, f.severity]),
      [['extensions.replication-machinery-left-out', 'info']],
      check.stdout,
    );

    for (const command of ['clone', 'sync'] as const) {
      const db = `${command}_target`;
      await target.sql('postgres', `CREATE DATABASE ${db}`);
      const args = [command, '--source', source.url(DB), '--target', target.url(db), ...(command === 'sync' ? ['--until-caught-up'] : [])];
      const result = await runPgferry(args, {}, 180_000);
      assert.equal(result.code, 0, `${command}: ${result.stderr.split('\n').slice(-6).join('\n')}`);
      assert.deepEqual(await pglogicalOn(target, db), { extension: 0, schema: 0 }, command);
      const { rows } = await target.sql(db, 'SELECT count(*)::int AS n, sum(id)::int AS s FROM orders');
      assert.deepEqual(rows[0], { n: 1000, s: 500_500 }, command);
      if (command === 'sync') await runPgferry(['cleanup', '--source', source.url(DB), '--target', target.url(db)]);
    }
    // The provider is untouched.
    assert.deepEqual(await pglogicalOn(source, DB), { extension: 1, schema: 1 });
    const node = await source.sql(DB, 'SELECT node_name FROM pglogical.node');
    assert.deepEqual(node.rows, [{ node_name: 'provider' }]);
  });
});
