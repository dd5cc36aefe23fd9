/**
 * pgferry's own sessions on a real server (issue 31): each carries this run's mark and the
 * migration in its application_name and asks the server for keepalives within the peer
 * timeout (accepted, and ignored, over a Unix socket); the backends of sessions pgferry lost are
 * ended, and no other: not an open session of its own, not another run's, not anybody else's.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { connect, forMigration, resolveConnection, type Connection } from '../../src/config/index.js';
import { closeClient, destroyClient, endLostOwnSessions, OWN_RUN } from '../../src/plumbing/index.js';
import { startClusters, startProxy, type Cluster, type FaultProxy } from '../harness/index.js';

let cluster: Cluster;
let db: string;
const opened: Connection[] = [];
const others: pg.Client[] = [];
const proxies: FaultProxy[] = [];

before(async () => {
  [cluster] = await startClusters([{ version: 17 }]);
  db = await cluster.createDatabase({ prefix: 'own' });
  await cluster.sql(db, `CREATE TABLE kept (id int PRIMARY KEY, note text); INSERT INTO kept VALUES (1, 'one')`);
  await cluster.sql('postgres', `CREATE ROLE plain LOGIN PASSWORD 'plain-pw'; GRANT ALL ON DATABASE ${db} TO plain`);
});

after(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  await Promise.all(opened.map((c) => closeClient(c.client)));
  await Promise.all(others.map((c) => c.end().catch(() => undefined)));
  await cluster?.stop();
});

async function open(url: string, migration?: string, peerTimeoutMs?: number): Promise<Connection> {
  const spec = await resolveConnection('target', url, {});
  const tuned = { ...spec, ...(peerTimeoutMs === undefined ? {} : { peerTimeoutMs }) };
  const connection = await connect(migration === undefined ? tuned : forMigration(tuned, migration));
  opened.push(connection);
  return connection;
}

/** A session that is not pgferry's, named as the test says. */
async function foreign(applicationName: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: cluster.url(db), application_name: applicationName });
  await client.connect();
  others.push(client);
  return client;
}

async function settingsOf(client: pg.Client): Promise<Record<string, string>> {
  const { rows } = await client.query<Record<string, string>>(
    `SELECT current_setting('application_name') AS application, current_setting('tcp_keepalives_idle') AS idle,
            current_setting('tcp_keepalives_interval') AS interval, current_setting('tcp_keepalives_count') AS count`,
  );
  return rows[0]!;
}

async function pidOf(client: pg.Client): Promise<number> {
  return (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
}

async function present(pid: number): Promise<boolean> {
  const { rows } = await cluster.sql('postgres', 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1', [pid]);
  return (rows[0] as { n: number }).n === 1;
}

describe("pgferry's sessions as the server sees them", () => {
  test("carry this run's mark and the migration, and the server's keepalives give up within the peer timeout", async () => {
    const { client } = await open(cluster.url(db), 'orders_3fa9c2e1', 20_000);
    const settings = await settingsOf(client);
    assert.match(settings.application!, new RegExp(`^pgferry ${OWN_RUN}/\\d+ orders_3fa9c2e1$`));
    // Over TCP the server reads back what the socket holds: the settings took effect.
    assert.deepEqual(
      { idle: settings.idle, interval: settings.interval, count: settings.count },
      { idle: '11', interval: '3', count: '3' },
    );
  });

  test("keepalives the connection string's options set are the user's, and stay", async () => {
    const { client } = await open(
      `host=${cluster.host} port=${cluster.port} dbname=${db} user=${cluster.superuser} password=${cluster.password} sslmode=disable options='-c tcp_keepalives_idle=100'`,
    );
    assert.equal((await settingsOf(client)).idle, '100');
  });

  test('over a Unix socket the keepalive settings are accepted and ignored: the session works', async () => {
    const { client } = await open(`host=${cluster.directory} port=${cluster.port} dbname=${db} user=${cluster.superuser}`);
    const settings = await settingsOf(client);
    assert.match(settings.application!, new RegExp(`^pgferry ${OWN_RUN}/\\d+$`));
    assert.equal(settings.idle, '0', 'a Unix socket has no TCP keepalives');
  });
});

describe("ending pgferry's own lost sessions", () => {
  test('a statement still running when pgferry closed its socket ends on the server, without waiting for what it waits on', async () => {
    const holder = await foreign('lock holder');
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE kept IN ACCESS EXCLUSIVE MODE');
    try {
      const gone = await open(cluster.url(db));
      const pid = await pidOf(gone.client);
      const waiting = gone.client.query('SELECT count(*) FROM kept').catch(() => undefined);
      const deadline = Date.now() + 10_000;
      while (
        (await cluster.sql('postgres', `SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1`, [pid])).rows[0]?.wait_event_type !==
        'Lock'
      ) {
        assert.ok(Date.now() < deadline, 'the statement never waited on the lock');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      // As a pgferry that died or gave up leaves it: the socket closed, the statement still running.
      destroyClient(gone.client);
      await waiting;
      const until = Date.now() + 30_000;
      while (await present(pid)) {
        assert.ok(Date.now() < until, `backend ${pid} still waits for the lock 30 s after its client went away`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    } finally {
      await holder.query('ROLLBACK');
    }
  });

  test('ends the backend a stranded connection left holding a row lock, and no other session', async () => {
    const proxy = await startProxy(cluster);
    proxies.push(proxy);
    const lost = await open(proxy.url(cluster, db), 'orders');
    await lost.client.query(`BEGIN`);
    await lost.client.query(`UPDATE kept SET note = 'lost' WHERE id = 1`);
    const lostPid = await pidOf(lost.client);
    proxy.strand();
    destroyClient(lost.client);
    const stillOpen = await open(cluster.url(db), 'orders');
    const openPid = await pidOf(stillOpen.client);
    const otherRun = await foreign('pgferry zzzzzz/1 orders');
    const stranger = await foreign('psql');
    const keptPids = await Promise.all([otherRun, stranger].map(pidOf));
    assert.ok(await present(lostPid), 'the stranded backend is still there: to the server its client is');

    const cleaner = await open(cluster.url(db));
    const outcome = await endLostOwnSessions(cleaner.client);
    assert.deepEqual(
      outcome.ended.map((s) => s.pid),
      [lostPid],
    );
    assert.deepEqual(outcome.refused, []);
    assert.equal(await present(lostPid), false, 'ended, and waited for');
    for (const pid of [openPid, ...keptPids]) assert.ok(await present(pid), `pid ${pid} is left alone`);
    // Its row is free again: a writer needs no wait.
    await cleaner.client.query(`SET lock_timeout = '2s'`);
    await cleaner.client.query(`UPDATE kept SET note = 'after' WHERE id = 1`);
  });

  test('a role the server does not let end the lost session gets it back as refused, not as a failure', async () => {
    const proxy = await startProxy(cluster);
    proxies.push(proxy);
    // Lost as the superuser; the cleanup runs as a plain role, which may not end a superuser's session.
    const lost = await open(proxy.url(cluster, db), 'orders');
    const lostPid = await pidOf(lost.client);
    proxy.strand();
    destroyClient(lost.client);
    const plain = await open(cluster.url(db, { user: 'plain', password: 'plain-pw' }));
    const outcome = await endLostOwnSessions(plain.client);
    assert.deepEqual(outcome.ended, []);
    assert.deepEqual(
      outcome.refused.map((r) => r.session.pid),
      [lostPid],
    );
    assert.match(outcome.refused[0]!.reason, /permission denied|must be a superuser/);
    assert.ok(await present(lostPid));
    // A superuser ends it, for the next test's sake and as the log line says to.
    assert.deepEqual(
      (await endLostOwnSessions((await open(cluster.url(db))).client)).ended.map((s) => s.pid),
      [lostPid],
    );
  });
});
