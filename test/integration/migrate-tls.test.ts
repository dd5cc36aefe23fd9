/**
 * A whole migration with both sides requiring sslmode=verify-full: check, the copy, the
 * replication stream and the apply, verify and the cut-over, every one of pgferry's sessions
 * encrypted and the servers' certificates verified against the host they name.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runPgferry, spawnPgferry, startClusters, stopSync, waitUntilStreaming, type Cluster } from '../harness/index.js';

describe('a migration over verify-full TLS, 17 → 18', () => {
  let source: Cluster;
  let target: Cluster;
  let dir = '';
  before(async () => {
    [source, target] = await startClusters([
      { version: 17, tlsHostNames: ['localhost'] },
      { version: 18, tlsHostNames: ['localhost'] },
    ]);
    dir = mkdtempSync(join(tmpdir(), 'pgferry-tls-e2e-'));
  });
  after(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** The host the certificate names, the address the server listens on, and its own certificate as the root. */
  function verified(cluster: Cluster, db: string): string {
    const root = join(dir, `${cluster.port}.crt`);
    writeFileSync(root, cluster.certificate!.certificate);
    return cluster.url(db, { host: 'localhost', params: { sslmode: 'verify-full', sslrootcert: root, hostaddr: '127.0.0.1' } });
  }

  /** pgferry's sessions on a server right now, and how many of them are not encrypted. */
  async function sessions(cluster: Cluster, db: string): Promise<{ all: number; plain: number }> {
    const { rows } = await cluster.sql(
      'postgres',
      `SELECT count(*)::int AS all, count(*) FILTER (WHERE NOT s.ssl)::int AS plain
         FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.application_name LIKE 'pgferry %' AND a.datname = $1`,
      [db],
    );
    return rows[0] as { all: number; plain: number };
  }

  it('checks, copies, streams, verifies and cuts over with every session encrypted and verified', async () => {
    const db = await source.createDatabase({ prefix: 'tls' });
    await target.sql('postgres', `CREATE DATABASE ${db}`);
    await source.sql(
      db,
      `CREATE TABLE items (id serial PRIMARY KEY, payload text); INSERT INTO items (payload) SELECT md5(g::text) FROM generate_series(1, 5000) g;`,
    );
    const args = ['--source', verified(source, db), '--target', verified(target, db)];

    const checked = await runPgferry(['check', ...args], {}, 60_000);
    assert.equal(checked.code, 0, `${checked.stdout}\n${checked.stderr}`);

    const sync = spawnPgferry(['sync', ...args]);
    try {
      await waitUntilStreaming(target, db, sync);
      await source.sql(db, `INSERT INTO items (payload) SELECT 'streamed ' || g FROM generate_series(1, 1000) g`);
      const [onSource, onTarget] = await Promise.all([sessions(source, db), sessions(target, db)]);
      assert.ok(onSource.all >= 2 && onTarget.all >= 2, `pgferry's sessions: ${JSON.stringify({ onSource, onTarget })}`);
      assert.deepEqual([onSource.plain, onTarget.plain], [0, 0], 'every session of sync (walsender included) is encrypted');

      // Rows identical; the sequence is behind until the cut-over sets it (sync does not carry sequences).
      const verifiedRun = await runPgferry(['verify', '--json', ...args], {}, 120_000);
      const report = JSON.parse(verifiedRun.stdout) as { tables: Array<{ status: string }> };
      assert.deepEqual(
        report.tables.map((t) => t.status),
        ['identical'],
        verifiedRun.stdout,
      );
      const cut = await runPgferry(['cutover', ...args, '--verify', 'full', '--unfreeze-source', '--json'], {}, 120_000);
      assert.equal(cut.code, 0, cut.stderr);
      assert.equal((JSON.parse(cut.stdout) as { verified: { identical: boolean } }).verified.identical, true);
    } finally {
      await stopSync(sync);
    }
    const [count] = (await target.sql(db, `SELECT count(*)::int AS n FROM items`)).rows as Array<{ n: number }>;
    assert.equal(count?.n, 6000);
    const cleaned = await runPgferry(['cleanup', ...args], {}, 60_000);
    assert.equal(cleaned.code, 0, cleaned.stderr);
  });
});
