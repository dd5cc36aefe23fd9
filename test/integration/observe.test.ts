/**
 * Watching a migration (issue 20): `sync --listen` serves Prometheus metrics, /status.json and
 * a status page, on real servers under a write load. The metrics are parsed by a real
 * Prometheus text parser and checked against the target's own state; /status.json is what
 * `status --json` prints; the page is opened in headless Chromium, which must render the phase,
 * the lag and a row per table (a screenshot is saved); nothing served holds a password.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { PgferryError } from '../../src/errors.js';
import pg from 'pg';
import { parseListen } from '../../src/observe/index.js';
import { ProgressListener, wantProgress, type SyncProgress } from '../../src/state/index.js';
import {
  renderPage,
  runPgferry,
  spawnPgferry,
  startWriter,
  stopSync,
  useClusterPair,
  waitUntilStreaming,
  writerDatabases,
  type Cluster,
} from '../harness/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function appliedOnTarget(target: Cluster, db: string): Promise<{ transactions: number; inserted: number }> {
  const { rows } = await target.sql(
    db,
    `SELECT (SELECT applied_transactions FROM pgferry.sync)::float8 AS transactions,
            coalesce((SELECT sum(inserted) FROM pgferry.sync_tables WHERE table_name IN ('public.items', 'items')), 0)::float8 AS inserted`,
  );
  return rows[0] as { transactions: number; inserted: number };
}

describe('sync --listen: metrics, status.json and the status page, 17 → 18', () => {
  const pair = useClusterPair(17, 18);

  it('serve what the target records, under a writer, and show no secret', async () => {
    const { db, args } = await writerDatabases(
      pair.source,
      pair.target,
      'watch',
      `INSERT INTO items (payload) SELECT md5(g::text) FROM generate_series(1, 1000) g`,
    );
    const sync = spawnPgferry(['sync', ...args, '--listen', '127.0.0.1:0']);
    await waitUntilStreaming(pair.target, db, sync).catch(async (error: unknown) => {
      await stopSync(sync);
      throw error;
    });
    const writer = startWriter(pair.source.url(db));
    try {
      const url = /"url":"(http:\/\/127\.0\.0\.1:\d+\/)"/.exec(sync.output())?.[1];
      assert.ok(url, `sync did not say where it listens:\n${sync.output()}`);
      await writer.waitForCommits(300, 'source');
      // Let the monitor measure the lag a few times.
      await sleep(2500);

      const before = await appliedOnTarget(pair.target, db);
      const scrape = await fetch(`${url}metrics`);
      assert.equal(scrape.status, 200);
      assert.match(scrape.headers.get('content-type') ?? '', /text\/plain; version=0\.0\.4/);
      const text = await scrape.text();
      const after = await appliedOnTarget(pair.target, db);
      const families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
      const value = (name: string, labels: Record<string, string> = {}) => {
        const family = families.get(name);
        assert.ok(family, `${name} is missing from /metrics`);
        const sample = family.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
        assert.ok(sample, `${name}${JSON.stringify(labels)} is missing from /metrics`);
        return Number(sample.value);
      };
      assert.equal(families.get('pgferry_applied_transactions_total')?.type, 'COUNTER');
      const transactions = value('pgferry_applied_transactions_total');
      assert.ok(
        transactions >= before.transactions && transactions <= after.transactions,
        `${transactions} not within ${before.transactions}..${after.transactions}`,
      );
      const inserted = value('pgferry_applied_rows_total', { table: 'public.items', operation: 'inserted' });
      assert.ok(
        inserted >= before.inserted && inserted <= after.inserted && inserted > 0,
        `${inserted} not within ${before.inserted}..${after.inserted}`,
      );
      assert.equal(value('pgferry_copy_rows_total', { table: 'public.items' }), 1000);
      assert.ok(value('pgferry_copy_bytes_total', { table: 'public.items' }) > 1000 * 32);
      assert.ok(value('pgferry_lag_bytes') >= 0);
      assert.ok(value('pgferry_lag_seconds') >= 0);
      // The stream's own lag, in seconds to the millisecond (Prometheus's unit), measured at the monitor's last tick.
      const streamLag = value('pgferry_stream_lag_seconds');
      assert.ok(Number.isFinite(streamLag) && streamLag >= 0, `pgferry_stream_lag_seconds ${streamLag}`);
      assert.ok(value('pgferry_source_retained_wal_bytes') > 0);
      assert.equal(value('pgferry_phase', { phase: 'streaming' }), 1);
      assert.ok(value('pgferry_spool_memory_bytes') >= 0);
      assert.ok(value('pgferry_catch_up_eta_seconds') >= 0);
      assert.ok(value('pgferry_process_resident_memory_bytes') > 0);

      // /status.json is status --json (both read now, so only what moves between them may differ).
      const served = (await (await fetch(`${url}status.json`)).json()) as Record<string, unknown>;
      const printed = JSON.parse((await runPgferry(['status', '--json', '--target', pair.target.url(db)])).stdout) as Record<
        string,
        unknown
      >;
      assert.deepEqual(Object.keys(served).sort(), Object.keys(printed).sort());
      for (const key of ['phase', 'direction', 'name', 'slot', 'syncRunning', 'cutover']) assert.deepEqual(served[key], printed[key], key);
      // The stream's lag as sync records it at each batch: under the writer, a measured figure in milliseconds.
      for (const status of [served, printed]) {
        assert.ok(typeof status.lagMs === 'number' && Number.isFinite(status.lagMs) && status.lagMs >= 0, `lagMs ${String(status.lagMs)}`);
        assert.ok(typeof status.lagMeasuredAt === 'string' && typeof status.walsenderLsn === 'string', JSON.stringify(status));
      }

      // The page, as a browser renders it after its scripts ran.
      const shots = join(process.cwd(), 'test-output');
      mkdirSync(shots, { recursive: true });
      const dom = await renderPage(url, { screenshot: join(shots, 'status-page.png') });
      assert.match(dom, /<span id="phase">streaming<\/span>/);
      assert.match(dom, /<div class="big" id="lag">\d+(\.\d+)? (ms|s)<\/div>/);
      assert.match(dom, /<tr data-table="public\.items"><td>public\.items<\/td><td>copied 1\/1<\/td>/);
      assert.match(dom, /<tr data-table="public\.ledger">/);
      const phone = await renderPage(url, { width: 390, height: 844, screenshot: join(shots, 'status-page-phone.png') });
      assert.match(phone, /id="phase">streaming</);

      // Nothing served shows a password or a connection string.
      for (const body of [text, JSON.stringify(served), dom, await (await fetch(`${url}lag.json`)).text()]) {
        assert.ok(!body.includes(pair.source.password) && !body.includes(pair.target.password), 'a password was served');
        assert.doesNotMatch(body, /postgres:\/\//);
      }
      assert.equal((await fetch(`${url}nothing-here`)).status, 404);

      // A cut-over's wish for sync's progress: each batch's commit then notifies it, with the
      // applied position and the stream's lag (what the catch-up and the fence's waits wake on).
      const watcher = new pg.Client({ connectionString: pair.target.url(db) });
      await watcher.connect();
      try {
        assert.equal(await wantProgress(watcher, 30_000), true);
        const listener = await ProgressListener.open(watcher);
        const notified: SyncProgress[] = [];
        for (const until = Date.now() + 20_000; notified.length < 3 && Date.now() < until;) {
          const progress = await listener.next(1000);
          if (progress) notified.push(progress);
        }
        assert.ok(notified.length >= 3, `sync notified ${notified.length} batches under a writer in 20 s`);
        for (const progress of notified) assert.ok(progress.lagMs !== null && Number.isFinite(progress.lagMs) && progress.lagMs >= 0);
        assert.ok(notified[2]!.applied > notified[0]!.applied, 'the applied position moves from one notification to the next');
        await listener.close();
        await wantProgress(watcher, 0);
      } finally {
        await watcher.end();
      }

      // The writer stops: once sync has caught up, nothing waits (a lag of 0, however old the last
      // commit) and the applied position is the source's WAL end, as the walsender reports it.
      await writer.stop();
      const deadline = Date.now() + 60_000;
      let last: Record<string, unknown> = {};
      for (;;) {
        last = (await (await fetch(`${url}status.json`)).json()) as Record<string, unknown>;
        const { rows } = await pair.source.sql(db, 'SELECT pg_current_wal_insert_lsn()::text AS lsn');
        const sourceLsn = (rows[0] as { lsn: string }).lsn;
        if (last.lagMs === 0 && last.appliedLsn === sourceLsn && last.walsenderLsn === sourceLsn) break;
        if (Date.now() > deadline) assert.fail(`sync did not catch up with an idle source (at ${sourceLsn}): ${JSON.stringify(last)}`);
        await sleep(200);
      }
    } finally {
      await writer.stop();
      await stopSync(sync);
    }
  });

  it('clone --listen serves while it copies and lets the process end when done', async () => {
    const db = await pair.source.createDatabase({ prefix: 'watchclone' });
    await pair.target.sql('postgres', `CREATE DATABASE ${db}`);
    await pair.source.sql(db, `CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000)`);
    const cloned = await runPgferry(['clone', '--source', pair.source.url(db), '--target', pair.target.url(db), '--listen', '0', '--json']);
    assert.equal(cloned.code, 0, cloned.stderr);
    assert.match(cloned.stderr, /"url":"http:\/\/127\.0\.0\.1:\d+\/","msg":"status page and \/metrics listening"/);
  });

  it('binds to 127.0.0.1 unless told otherwise, and refuses what is not an address', () => {
    assert.deepEqual(parseListen('9187'), { host: '127.0.0.1', port: 9187 });
    assert.deepEqual(parseListen('0.0.0.0:9187'), { host: '0.0.0.0', port: 9187 });
    assert.deepEqual(parseListen('[::1]:9187'), { host: '::1', port: 9187 });
    assert.throws(() => parseListen('localhost:99999'), /--listen "localhost:99999" is not an address to listen on/);
    assert.throws(
      () => parseListen('http://x'),
      (error: unknown) =>
        error instanceof PgferryError && error.code === 'usage' && /give a port \(9187, bound to 127\.0\.0\.1\)/.test(error.fix ?? ''),
    );
  });
});
