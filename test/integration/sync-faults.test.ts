/**
 * Sync under faults (review D1, D2): server-side timeouts set for the role or database, TCP
 * connections reset or cut silently between pgferry and each server (through the harness's
 * fault proxy; connections stranded for good are sync-strand.test.ts's), and servers restarted. Sync must ride through each
 * without losing or repeating a change, and obey SIGTERM within 30 s whatever the peers do.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { spawnPgferry, startProxy, stopWithin30s, waitUntilStreaming, type FaultProxy, type PgferryProcess } from '../harness/index.js';
import { useSyncPair } from '../harness/sync-fixture.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Silent peers are taken for gone sooner than by default, so that each fault costs seconds. */
const PEER_TIMEOUT = ['--peer-timeout', '10s'];

describe('sync 17 → 18 under server-side timeouts', () => {
  const pair = useSyncPair(17, 18);

  it('copies and applies through statement and idle-in-transaction timeouts set on both databases', async () => {
    const db = await pair.freshDatabase(
      'timeouts',
      `CREATE TABLE big (id int PRIMARY KEY, pad text); INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 300000) g;`,
    );
    for (const cluster of [pair.source, pair.target]) {
      await cluster.sql('postgres', `ALTER DATABASE ${db} SET statement_timeout = '20ms'`);
      await cluster.sql('postgres', `ALTER DATABASE ${db} SET idle_in_transaction_session_timeout = '200ms'`);
      await cluster.sql('postgres', `ALTER DATABASE ${db} SET idle_session_timeout = '500ms'`);
      await cluster.sql('postgres', `ALTER DATABASE ${db} SET transaction_timeout = '1s'`);
    }
    await pair.sync(db);
    const untimed = `SET statement_timeout = 0; SET transaction_timeout = 0; SET idle_in_transaction_session_timeout = 0`;
    await pair.change(db, [
      untimed,
      `UPDATE big SET pad = pad || 'x'`,
      `INSERT INTO big SELECT g, 'new' FROM generate_series(300001, 400000) g`,
    ]);
    const sync = spawnPgferry(pair.syncArgs(db).filter((a) => a !== '--until-caught-up'));
    await pair.waitForRows(db, 'big', 400_000, sync);
    // Idle for longer than the idle-session timeout: sync's sessions must still be there.
    await sleep(1500);
    await pair.change(db, [untimed, `INSERT INTO big VALUES (0, 'after a quiet while')`]);
    await pair.waitForRows(db, 'big', 400_001, sync);
    await stopWithin30s(sync);
    assert.equal(await sync.exited(), 0, sync.output().slice(-3000));
    // The comparison's own long reads are not under test.
    for (const cluster of [pair.source, pair.target]) await cluster.sql('postgres', `ALTER DATABASE ${db} RESET ALL`);
    await pair.assertSame(db);
  });
});

describe('sync 17 → 18 through a faulty network', () => {
  // The source's walsenders give up on a silent client after 5 s; sync takes a server silent for
  // 10 s as gone (PEER_TIMEOUT).
  const pair = useSyncPair({ version: 17, settings: { wal_sender_timeout: '5s' } }, 18);
  let toSource: FaultProxy;
  let toTarget: FaultProxy;
  before(async () => {
    [toSource, toTarget] = await Promise.all([startProxy(pair.source), startProxy(pair.target)]);
  });
  after(async () => {
    await Promise.all([toSource?.close(), toTarget?.close()]);
  });

  /** A cloned database, and a sync streaming into it through both proxies. */
  async function streamingThroughProxies(prefix: string): Promise<{ db: string; sync: PgferryProcess }> {
    const db = await pair.cloned(prefix, `CREATE TABLE t (id int PRIMARY KEY, v text)`);
    const sync = spawnPgferry([
      'sync',
      '--source',
      toSource.url(pair.source, db),
      '--target',
      toTarget.url(pair.target, db),
      ...PEER_TIMEOUT,
    ]);
    await waitUntilStreaming(pair.target, db, sync);
    return { db, sync };
  }

  async function insert(db: string, from: number, to: number): Promise<void> {
    await pair.change(db, [`INSERT INTO t SELECT g, md5(g::text) FROM generate_series(${from}, ${to}) g`]);
  }

  /** Stops the spawned sync within 30 s, finishes with a direct --until-caught-up, and compares. */
  async function finish(db: string, sync: PgferryProcess): Promise<void> {
    await stopWithin30s(sync);
    await pair.sync(db);
    await pair.assertSame(db);
  }

  it('rides through connections reset on both sides', async () => {
    const { db, sync } = await streamingThroughProxies('reset');
    await insert(db, 1, 1000);
    await pair.waitForRows(db, 't', 1000, sync);
    assert.ok(toSource.reset() > 0 && toTarget.reset() > 0, 'there were connections to reset');
    await insert(db, 1001, 2000);
    await pair.waitForRows(db, 't', 2000, sync);
    await finish(db, sync);
  });

  it('takes a silent source for gone, and continues once the network heals', async () => {
    const { db, sync } = await streamingThroughProxies('cutsource');
    toSource.cut();
    await insert(db, 1, 1000);
    await sleep(15_000);
    toSource.heal();
    await pair.waitForRows(db, 't', 1000, sync);
    assert.match(sync.output(), /sent nothing for \d+ s|did not answer|reconnecting/);
    await finish(db, sync);
  });

  it('stops within 30 s of SIGTERM while the target is silent, and loses nothing', async () => {
    const { db, sync } = await streamingThroughProxies('termcut');
    await insert(db, 1, 50_000);
    await sleep(200);
    toTarget.cut();
    try {
      await stopWithin30s(sync);
    } finally {
      toTarget.heal();
    }
    await pair.sync(db);
    await pair.assertSame(db);
  });

  it('stops, saying what to do, when the slot holds more WAL than --max-retained-wal while the target stays unreachable', async () => {
    const db = await pair.cloned('walguard', `CREATE TABLE t (id int PRIMARY KEY, v text)`);
    const sync = spawnPgferry([
      'sync',
      '--source',
      toSource.url(pair.source, db),
      '--target',
      toTarget.url(pair.target, db),
      '--max-retained-wal',
      '1MB',
      ...PEER_TIMEOUT,
    ]);
    try {
      await waitUntilStreaming(pair.target, db, sync);
      toTarget.cut();
      await insert(db, 1, 50_000);
      const code = await Promise.race([sync.exited(), sleep(150_000).then(() => 'still running' as const)]);
      assert.notEqual(code, 'still running', `sync kept retrying while the slot filled the source:\n${sync.output().slice(-3000)}`);
      assert.notEqual(code, 0);
      assert.match(sync.output(), /holds \d+ MB of WAL, above --max-retained-wal \(1 MB\), and nothing was applied for \d+ s/);
      assert.match(sync.output(), /pgferry cleanup/);
    } finally {
      toTarget.heal();
      if (sync.child.exitCode === null) sync.child.kill('SIGKILL');
    }
    await pair.sync(db);
    await pair.assertSame(db);
  });

  it('rides through a restart of the source and a crash of the target', async () => {
    const { db, sync } = await streamingThroughProxies('restarts');
    await insert(db, 1, 1000);
    await pair.waitForRows(db, 't', 1000, sync);
    await pair.source.restart('fast');
    await insert(db, 1001, 2000);
    await pair.waitForRows(db, 't', 2000, sync);
    await pair.target.restart('immediate');
    await insert(db, 2001, 3000);
    await pair.waitForRows(db, 't', 3000, sync);
    await finish(db, sync);
  });
});
