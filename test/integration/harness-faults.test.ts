/**
 * The harness's fault injection does what it says, against a real server: the proxy's reset,
 * silent cut and stranding, and the cluster's fast and immediate restarts. Every wait has a
 * short deadline, so a fault that misbehaves fails a test instead of hanging the suite.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, afterEach, before, describe, test } from 'node:test';
import pg from 'pg';
import {
  describeError,
  errorCode,
  isDisconnect,
  startClusters,
  startProxy,
  type Cluster,
  type FaultProxy,
  type RestartMode,
} from '../harness/index.js';

/** How long "silent" must last to count: long enough for a local round trip many times over. */
const SILENCE_MS = 1_000;
/** How long a local answer may take once nothing stands in its way. */
const ANSWER_MS = 5_000;

type Outcome<T> =
  { readonly kind: 'value'; readonly value: T } | { readonly kind: 'error'; readonly error: unknown } | { readonly kind: 'pending' };

/** What `promise` came to within `ms`; 'pending' when it neither answered nor failed. */
async function within<T>(promise: Promise<T>, ms: number): Promise<Outcome<T>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Outcome<T>>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'pending' }), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        (value): Outcome<T> => ({ kind: 'value', value }),
        (error: unknown): Outcome<T> => ({ kind: 'error', error }),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function answered<T>(promise: Promise<T>, what: string, ms = ANSWER_MS): Promise<T> {
  const outcome = await within(promise, ms);
  if (outcome.kind === 'value') return outcome.value;
  if (outcome.kind === 'error') throw outcome.error;
  assert.fail(`${what}: no answer within ${ms} ms`);
}

async function failed(promise: Promise<unknown>, what: string, ms = ANSWER_MS): Promise<unknown> {
  const outcome = await within(promise, ms);
  if (outcome.kind === 'error') return outcome.error;
  assert.fail(`${what}: ${outcome.kind === 'value' ? 'answered' : `neither answered nor failed within ${ms} ms`}`);
}

async function silent(promise: Promise<unknown>, what: string, ms = SILENCE_MS): Promise<void> {
  const outcome = await within(promise, ms);
  assert.equal(outcome.kind, 'pending', `${what}: expected silence, got ${outcome.kind === 'error' ? String(outcome.error) : 'an answer'}`);
}

async function waitUntil(condition: () => boolean | Promise<boolean>, what: string, ms = ANSWER_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`timed out after ${ms} ms waiting until ${what}`);
}

/** A client, and the errors it emitted while idle: pg emits those instead of throwing them. */
interface Session {
  readonly client: pg.Client;
  readonly errors: unknown[];
  readonly connected: Promise<unknown>;
}

describe('test harness fault injection', () => {
  let cluster: Cluster;
  let database: string;
  const sessions: Session[] = [];
  const proxies: FaultProxy[] = [];

  /** Starts connecting to `url` without waiting; the session is ended after the test. */
  function open(url: string): Session {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
    const errors: unknown[] = [];
    client.on('error', (error) => errors.push(error));
    const connected = client.connect();
    // Settled here too, so a test that never awaits it leaves no unhandled rejection.
    connected.catch(() => undefined);
    const session = { client, errors, connected };
    sessions.push(session);
    return session;
  }

  async function connect(url: string): Promise<Session> {
    const session = open(url);
    await answered(session.connected, `connecting to ${url}`);
    return session;
  }

  async function proxy(): Promise<FaultProxy> {
    const started = await startProxy(cluster);
    proxies.push(started);
    return started;
  }

  /** Backends with this application_name, as the server sees them. */
  async function backends(applicationName: string): Promise<number> {
    const { rows } = await cluster.sql('postgres', 'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [
      applicationName,
    ]);
    return (rows[0] as { n: number }).n;
  }

  before(async () => {
    // LOG level, so the server's side of a reset (a COMMERROR, logged as LOG) can be read.
    [cluster] = await startClusters([{ version: 17, settings: { log_min_messages: 'log' } }]);
    database = await cluster.createDatabase({ prefix: 'faults' });
    await cluster.sql(database, 'CREATE TABLE kept (id int PRIMARY KEY, note text)');
  });

  afterEach(async () => {
    // Proxies first: a stranded session's end() would wait for a FIN the proxy swallows.
    await Promise.all(proxies.splice(0).map((p) => p.close()));
    await Promise.all(sessions.splice(0).map((s) => within(s.client.end(), ANSWER_MS)));
  });

  after(async () => {
    await cluster?.stop();
  });

  test('a query through the proxy is answered, and the proxy counts the connection', async () => {
    const faults = await proxy();
    const { client } = await connect(faults.url(cluster, database, { params: { application_name: 'faults-plain' } }));
    const { rows } = await answered(client.query('SELECT 1 AS n, inet_server_port() AS port'), 'SELECT 1');
    assert.deepEqual(rows[0], { n: 1, port: cluster.port });
    assert.deepEqual(faults.connections, { accepted: 1, open: 1 });
    await answered(client.end(), 'ending the session');
    await waitUntil(() => faults.connections.open === 0, 'the proxy sees the connection closed');
    assert.equal(faults.connections.accepted, 1);
  });

  test('reset() ends every open connection with an RST, seen as one by the client and by the server', async () => {
    const faults = await proxy();
    const busy = await connect(faults.url(cluster, database, { params: { application_name: 'faults-reset-busy' } }));
    const idle = await connect(faults.url(cluster, database, { params: { application_name: 'faults-reset-idle' } }));
    await answered(idle.client.query('SELECT 1'), 'SELECT 1 on the idle session');
    const sleeping = busy.client.query('SELECT pg_sleep(5)');
    await waitUntil(async () => (await backends('faults-reset-busy')) === 1, 'the busy session is on the server');

    const logBefore = readFileSync(cluster.logFile, 'utf8').length;
    const started = Date.now();
    assert.equal(faults.reset(), 2);
    // ECONNRESET, not 'Connection terminated': a FIN would give the latter, and would pass for a reset.
    const error = await failed(sleeping, 'the query in flight', 2_000);
    assert.ok(Date.now() - started < 2_000, 'the query failed because of the reset, not at its end');
    assert.equal(errorCode(error), 'ECONNRESET', describeError(error));

    await waitUntil(() => idle.errors.length > 0, 'the idle session reports its connection lost');
    assert.equal(errorCode(idle.errors[0]), 'ECONNRESET', describeError(idle.errors[0]));
    // The server was reset too: the idle backend, blocked reading, says so and exits at once.
    // (The busy one, inside pg_sleep, does not read its socket until the sleep ends.)
    await waitUntil(async () => (await backends('faults-reset-idle')) === 0, 'the idle backend has exited');
    await waitUntil(
      () => readFileSync(cluster.logFile, 'utf8').slice(logBefore).includes('could not receive data from client: Connection reset by peer'),
      'the server logs the reset',
    );
    await waitUntil(() => faults.connections.open === 0, 'the proxy has no connection left');
  });

  test('cut() silences open and new connections without closing them; heal() delivers what was held', async () => {
    const faults = await proxy();
    const early = await connect(faults.url(cluster, database));
    await answered(early.client.query('SELECT 1'), 'SELECT 1 before the cut');

    faults.cut();
    const held = early.client.query('SELECT 2 AS n');
    const late = open(faults.url(cluster, database));
    await silent(held, 'a query during the cut');
    await silent(late.connected, 'a connection made during the cut');
    assert.deepEqual(faults.connections, { accepted: 2, open: 2 }, 'the new connection was accepted');
    assert.deepEqual(early.errors, [], 'nothing was closed');

    faults.heal();
    const { rows } = await answered(held, 'the held query after heal()');
    assert.equal((rows[0] as { n: number }).n, 2);
    await answered(late.connected, 'the held connection after heal()');
    const third = await answered(late.client.query('SELECT 3 AS n'), 'a query on the held connection');
    assert.equal((third.rows[0] as { n: number }).n, 3);
    assert.deepEqual([...early.errors, ...late.errors], []);
  });

  test('cut(ms) heals by itself after ms', async () => {
    const faults = await proxy();
    const { client } = await connect(faults.url(cluster, database));
    await answered(client.query('SELECT 1'), 'SELECT 1 before the cut');
    const started = Date.now();
    faults.cut(400);
    await answered(client.query('SELECT 1'), 'a query across a 400 ms cut');
    // Timers may fire a little early, never much.
    assert.ok(Date.now() - started >= 350, `answered after ${Date.now() - started} ms, before the cut healed`);
  });

  test('strand() silences the open connections for good, while new ones work', async () => {
    const faults = await proxy();
    const old = await connect(faults.url(cluster, database));
    await answered(old.client.query('SELECT 1'), 'SELECT 1 before strand()');

    assert.equal(faults.strand(), 1);
    const lost = old.client.query('SELECT 2');
    await silent(lost, 'a query on the stranded connection');

    const fresh = await connect(faults.url(cluster, database));
    const { rows } = await answered(fresh.client.query('SELECT 4 AS n'), 'a query on a new connection');
    assert.equal((rows[0] as { n: number }).n, 4);

    // heal() ends cuts, not strandings.
    faults.heal();
    await silent(lost, 'the stranded query after heal()', 500);
    assert.deepEqual(old.errors, [], 'the stranded connection is never closed');
    assert.deepEqual(faults.connections, { accepted: 2, open: 2 });
  });

  for (const mode of ['fast', 'immediate'] as const satisfies readonly RestartMode[]) {
    test(`restart('${mode}') ends open sessions, keeps committed data and answers again`, async () => {
      const id = mode === 'fast' ? 1 : 2;
      // synchronous_commit is off in the harness: an immediate restart could lose this commit.
      await cluster.sql(database, `BEGIN; SET LOCAL synchronous_commit = on; INSERT INTO kept VALUES (${id}, '${mode}'); COMMIT`);
      // The inserting session has ended, so its statistics have reached shared memory.
      await waitUntil(
        async () =>
          (await cluster.sql(database, `SELECT n_tup_ins::int AS n FROM pg_stat_user_tables WHERE relname = 'kept'`)).rows[0]?.n > 0,
        'the insert is in the statistics',
      );
      const startedBefore = (await cluster.sql('postgres', 'SELECT pg_postmaster_start_time()::text AS t')).rows[0].t as string;

      const faults = await proxy();
      const direct = await connect(cluster.url(database));
      const proxied = await connect(faults.url(cluster, database));
      await answered(direct.client.query('SELECT 1'), 'SELECT 1 directly');
      await answered(proxied.client.query('SELECT 1'), 'SELECT 1 through the proxy');

      await cluster.restart(mode);

      for (const [name, session] of [
        ['direct', direct],
        ['proxied', proxied],
      ] as const) {
        await waitUntil(() => session.errors.length > 0, `the ${name} session reports its end`);
        assert.ok(isDisconnect(session.errors[0]), `the ${name} session ended with ${describeError(session.errors[0])}`);
        await failed(session.client.query('SELECT 1'), `a query on the ended ${name} session`);
      }
      await waitUntil(() => faults.connections.open === 0, 'the proxy saw the server close its connection');

      const startedAfter = (await cluster.sql('postgres', 'SELECT pg_postmaster_start_time()::text AS t')).rows[0].t as string;
      assert.notEqual(startedAfter, startedBefore, 'a new postmaster');
      const kept = await cluster.sql(database, 'SELECT note FROM kept WHERE id = $1', [id]);
      assert.deepEqual(kept.rows, [{ note: mode }]);
      // A clean shutdown saves the statistics; a crash (no shutdown checkpoint) discards them.
      const { rows } = await cluster.sql(database, `SELECT n_tup_ins::int AS n FROM pg_stat_user_tables WHERE relname = 'kept'`);
      if (mode === 'fast') assert.ok(rows[0].n > 0, 'statistics kept across a clean shutdown');
      else assert.equal(rows[0].n, 0, 'statistics discarded after crash recovery');

      const again = await connect(faults.url(cluster, database));
      const { rows: count } = await answered(
        again.client.query('SELECT count(*)::int AS n FROM kept'),
        'a query through the proxy after the restart',
      );
      assert.equal((count[0] as { n: number }).n, id);
    });
  }
});
