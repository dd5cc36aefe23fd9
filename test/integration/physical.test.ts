import assert from 'node:assert/strict';
import { chownSync, copyFileSync, existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import {
  compareTables,
  errorCode,
  createPgbenchTables,
  pgbenchThroughPool,
  servedBy,
  startCluster,
  startClusters,
  startLoad,
  startPgbouncer,
  type Cluster,
} from '../harness/index.js';
import { runPgferry, runPgferryAsServerUser, spawnPgferry, spawnPgferryAsServerUser } from '../harness/cli.js';
import { unprivilegedUser } from '../harness/binaries.js';
import { freePort } from '../harness/cluster.js';
import { physicalBinDir, serverUserDirectory, startServer, stopServer } from '../harness/physical.js';

/*
 * Issue 21: physical mode for a same-version move. pg_basebackup (Debian's, of the client
 * package .ci/run installs) through a physical slot, a standby started with pg_ctl that
 * streams from the source, and a cut-over that freezes the whole source, waits for the
 * standby to replay its last WAL and promotes it, under a writer. Every write the writer saw
 * committed is on the new primary, which accepts writes; the old one stays frozen; roles,
 * large objects and every database arrive. And the refusals: another major version, no
 * replication entry in pg_hba.conf, a non-empty data directory, a standby gone before the
 * promotion (the freeze is lifted, nothing is promoted).
 *
 * Issue 31: the source runs with settings on its postmaster's command line (as the official
 * Docker image does), above what its copied postgresql.conf says; a hot standby refuses to
 * start below the primary's max_connections or max_wal_senders. check --physical names them,
 * sync --physical writes them into the standby's postgresql.auto.conf, and a standby that does
 * not start is reported with the server's own FATAL line.
 */

const MAJOR = 15;
/** On the source's command line, above the harness's postgresql.conf (max_connections 60) and the defaults. */
const COMMAND_LINE = { max_connections: 120, max_wal_senders: 20, max_prepared_transactions: 5, work_mem: '7MB' } as const;

async function count(url: string, sql: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return Number((await client.query<{ n: string }>(sql)).rows[0]!.n);
  } finally {
    await client.end();
  }
}

describe(`physical mode, PostgreSQL ${MAJOR}`, () => {
  let source: Cluster;
  let other: Cluster;
  let pgBin: string;
  let home: string;
  let pgdata: string;
  let standbyPort: number;
  let standbyRunning = false;

  before(async () => {
    [source, other] = await startClusters([{ version: MAJOR, commandLine: COMMAND_LINE }, { version: 17 }]);
    pgBin = physicalBinDir(MAJOR);
    home = serverUserDirectory('pgferry-physical-');
    pgdata = join(home, 'standby');
    standbyPort = await freePort();
  });
  after(async () => {
    if (standbyRunning) stopServer(pgBin, pgdata, 'immediate');
    await Promise.all([source, other].map((c) => c.stop()));
  });

  const standbyUrl = (db = 'postgres') => source.url(db, { port: standbyPort });
  /** A physical-mode command line against `on` (the source by default). */
  const physicalOn = (on: Cluster, command: string, ...extra: string[]) => [
    command,
    '--physical',
    '--source',
    on.url('postgres'),
    ...extra,
  ];
  const physical = (command: string, ...extra: string[]) => physicalOn(source, command, ...extra);

  it('refuses a source of another major version, naming the binaries to use', async () => {
    const check = await runPgferryAsServerUser(physicalOn(other, 'check', '--pg-bin', pgBin, '--pgdata', pgdata));
    assert.equal(check.code, 3, check.stdout + check.stderr);
    assert.match(check.stdout, /target\.version .*is PostgreSQL 15\.\d+; the source runs PostgreSQL 17/);
    const sync = await runPgferryAsServerUser(physicalOn(other, 'sync', '--pg-bin', pgBin, '--pgdata', pgdata));
    assert.equal(sync.code, 2, sync.stderr);
    assert.match(sync.stderr, /the source runs PostgreSQL 17.* is PostgreSQL 15/);
    assert.match(sync.stderr, /--pg-bin the binaries of PostgreSQL 17/);
  });

  it('refuses a source whose pg_hba.conf lets no replication connection in', async () => {
    const hba = join(source.directory, 'data', 'pg_hba.conf');
    const original = readFileSync(hba, 'utf8');
    writeFileSync(
      hba,
      original
        .split('\n')
        .filter((line) => !/^\s*(host|local)\S*\s+replication\s/.test(line))
        .join('\n'),
    );
    await source.sql('postgres', 'SELECT pg_reload_conf()');
    try {
      const check = await runPgferryAsServerUser(physical('check', '--pg-bin', pgBin, '--pgdata', pgdata));
      assert.equal(check.code, 3, check.stdout + check.stderr);
      assert.match(check.stdout, /source\.replication-connection .*refused: .*pg_hba\.conf/);
      assert.match(check.stdout, /replication postgres/);
      const sync = await runPgferryAsServerUser(physical('sync', '--pg-bin', pgBin, '--pgdata', pgdata));
      assert.notEqual(sync.code, 0);
      assert.match(sync.stderr, /pg_basebackup exited 1: .*pg_hba\.conf/);
      assert.doesNotMatch(sync.stderr + sync.stdout, new RegExp(source.password));
    } finally {
      writeFileSync(hba, original);
      await source.sql('postgres', 'SELECT pg_reload_conf()');
    }
    // The slot made for the failed run stays for the next (it reserves WAL), and is dropped by cleanup.
    const slots = await count(
      source.url('postgres'),
      `SELECT count(*) AS n FROM pg_replication_slots WHERE slot_name = 'pgferry_phys_standby'`,
    );
    assert.equal(slots, 1);
  });

  it('refuses a data directory that holds anything, and leaves it as it was', async () => {
    const occupied = join(home, 'occupied');
    mkdirSync(occupied);
    writeFileSync(join(occupied, 'PG_VERSION'), '15\n');
    const sync = await runPgferryAsServerUser(physical('sync', '--pg-bin', pgBin, '--pgdata', occupied));
    assert.equal(sync.code, 2, sync.stderr);
    assert.match(sync.stderr, /--pgdata .*occupied: not empty \(PG_VERSION\)/);
    assert.equal(readFileSync(join(occupied, 'PG_VERSION'), 'utf8'), '15\n');
  });

  it("a standby that does not start is reported with the server's own FATAL line", async () => {
    // The source's own port: the copy cannot listen there while the source does.
    const clash = join(home, 'clash');
    const sync = await runPgferryAsServerUser(
      physical('sync', '--pg-bin', pgBin, '--pgdata', clash, '--port', String(source.port), '--start'),
      {},
      300_000,
    );
    assert.equal(sync.code, 1, sync.stdout + sync.stderr);
    assert.match(
      sync.stderr,
      /the standby in .*clash did not start: FATAL: +(could not create any TCP\/IP sockets|lock file .* already exists)/,
    );
    assert.match(sync.stderr, /pgferry_start\.log/);
    assert.ok(existsSync(join(clash, 'standby.signal')), 'the copy is kept, ready to start once fixed');
  });

  it('a sync --physical killed during its base backup leaves no data directory, and runs again to the end', async () => {
    const db = await source.createDatabase({ prefix: 'phys_bulk' });
    await source.sql(db, `CREATE TABLE bulk AS SELECT g AS id, repeat(md5(g::text), 16) AS filler FROM generate_series(1, 300000) g`);
    const killedDir = join(home, 'killed');
    const run = spawnPgferryAsServerUser(physical('sync', '--pg-bin', pgBin, '--pgdata', killedDir));
    await until(async () => existsSync(join(`${killedDir}.pgferry-partial`, 'base')), 'the base backup to write');
    run.child.kill('SIGKILL');
    await run.exited();
    assert.ok(!existsSync(killedDir), 'a killed base backup left a data directory');
    // Its pg_basebackup's WAL stream outlives it and holds the slot: the next run stops it.
    const again = await runPgferryAsServerUser(physical('sync', '--pg-bin', pgBin, '--pgdata', killedDir), {}, 300_000);
    assert.equal(again.code, 0, again.stdout + again.stderr);
    assert.match(again.stderr + again.stdout, /removing the partial copy an interrupted sync --physical left/);
    assert.equal(await count(source.url('postgres'), `SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'walsender'`), 0);
    assert.ok(existsSync(join(killedDir, 'standby.signal')));
    assert.ok(!existsSync(`${killedDir}.pgferry-partial`));
    await source.sql('postgres', `DROP DATABASE ${db}`);
  });

  it('copies the whole server under a writer, streams, and promotes with every committed write on the new primary', async () => {
    const db = await source.createDatabase({ prefix: 'phys' });
    await createPgbenchTables(source, db, 2);
    await source.sql(db, `CREATE TABLE marks (id serial PRIMARY KEY, what text)`);
    const second = await source.createDatabase({ prefix: 'phys_other' });
    await source.sql(
      second,
      `CREATE TABLE kept (id int PRIMARY KEY, what text); INSERT INTO kept SELECT g, 'k' || g FROM generate_series(1, 1000) g`,
    );
    await source.sql('postgres', `CREATE ROLE phys_app LOGIN PASSWORD 'app-secret'`);
    await source.sql(db, `SELECT lo_from_bytea(424242, 'a large object')`);
    const mark = (what: string) => pgQuery(source.url(db), `INSERT INTO marks (what) VALUES ('${what}')`);

    const check = await runPgferryAsServerUser(physical('check', '--pg-bin', pgBin, '--pgdata', pgdata));
    assert.equal(check.code, 0, check.stdout + check.stderr);
    // The settings of the source's command line, named with where they come from.
    const named = /source\.settings-not-copied .*/.exec(check.stdout)?.[0] ?? '';
    for (const name of Object.keys(COMMAND_LINE)) assert.match(named, new RegExp(`\\b${name}\\b`), check.stdout);
    assert.match(named, /command line/);
    assert.doesNotMatch(named, /\bport\b|unix_socket/);

    // A writer through the base backup and the standby's catching up (the cut-overs below end its sessions).
    const during = startLoad(source.url(db), { clients: 2, scale: 2, ratePerSecond: 200 });
    let duringReport: Awaited<ReturnType<typeof during.stop>>;
    try {
      const sync = await runPgferryAsServerUser(
        physical('sync', '--pg-bin', pgBin, '--pgdata', pgdata, '--port', String(standbyPort), '--start', '--until-caught-up'),
        {},
        300_000,
      );
      standbyRunning = sync.code === 0 || standbyRunning;
      assert.equal(sync.code, 0, sync.stdout + sync.stderr);
      assert.match(sync.stdout, /The standby runs\./);
      assert.match(sync.stdout, /Caught up/);
      assert.doesNotMatch(sync.stdout + sync.stderr, new RegExp(source.password));
      // No password in clear in the standby's settings: a password file only its owner reads.
      const auto = readFileSync(join(pgdata, 'postgresql.auto.conf'), 'utf8');
      assert.doesNotMatch(auto, new RegExp(source.password));
      assert.match(auto, /primary_slot_name = 'pgferry_phys_standby'/);
      assert.match(auto, /passfile=/);
      // The command line's settings, which the copied postgresql.conf lacks, hold on the standby.
      assert.match(auto, /max_connections = '120'/);
      assert.match(auto, /max_wal_senders = '20'/);
      for (const [name, value] of Object.entries(COMMAND_LINE))
        assert.equal((await pgRows(standbyUrl(), `SHOW ${name}`))[0]![name], String(value), name);
      assert.match(
        sync.stdout,
        /Carried from the source's command line into postgresql\.auto\.conf: .*max_connections = 120.*max_wal_senders = 20/,
      );

      const status = await runPgferry(['status', '--physical', '--source', source.url('postgres'), '--json']);
      assert.equal(status.code, 0, status.stderr);
      const shown = JSON.parse(status.stdout) as { standby: { state: string; lagBytes: Record<string, string | null> } | null };
      assert.equal(shown.standby?.state, 'streaming');
      assert.ok(shown.standby?.lagBytes.replayed !== null);

      // A standby gone before the cut-over: refused, nothing frozen or promoted.
      stopServer(pgBin, pgdata, 'immediate');
      standbyRunning = false;
      const refused = await runPgferry(physical('cutover', '--target', standbyUrl()));
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /no standby streams from the slot pgferry_phys_standby; nothing was changed|target: .*connect/);
      await mark('standby down');
      startServer(pgBin, pgdata);
      standbyRunning = true;
      await streaming(source);

      // A failure after the freeze, before the promotion (a transaction begun before the freeze
      // outlives --drain-timeout): the freeze is lifted, the standby keeps streaming.
      const held = new pg.Client({ connectionString: source.url(db) });
      await held.connect();
      try {
        await held.query(`BEGIN; INSERT INTO marks (what) VALUES ('held')`);
        const timedOut = await runPgferry(physical('cutover', '--target', standbyUrl(), '--drain-timeout', '1'));
        assert.notEqual(timedOut.code, 0);
        assert.match(timedOut.stderr, /the drain timed out after 1\.0 s; still running: pid \d+/);
        await mark('after a failed cut-over');
        await streaming(source);
        assert.equal(await count(standbyUrl(), 'SELECT (NOT pg_is_in_recovery())::int AS n'), 0);

        // SIGKILLed in the drain: the source stays frozen until cleanup --unfreeze-source lifts it (the slot kept).
        const killed = spawnPgferry(physical('cutover', '--target', standbyUrl(), '--drain-timeout', '60'));
        await until(async () => (await readOnlyDefault(source.url(db))) === 'on', 'the freeze to take hold');
        killed.child.kill('SIGKILL');
        await killed.exited();
        await assert.rejects(mark('while frozen'), /read-only transaction/);
        const lifted = await runPgferryAsServerUser(physical('cleanup', '--unfreeze-source'));
        assert.equal(lifted.code, 0, lifted.stderr);
        assert.match(lifted.stdout, /slot kept \(a standby streams from it\)/);
        assert.match(lifted.stdout, /freeze lifted/);
        await mark('after cleanup --unfreeze-source');
        await held.query('COMMIT');
      } finally {
        await held.end().catch(() => undefined);
      }
    } finally {
      duringReport = await during.stop();
    }

    // Through the cut-over: a writer straight to the source (the freeze stops its writes, the
    // drain ends its sessions) and pgbench through PgBouncer, which is paused, repointed to the
    // new primary and resumed: its clients see no error.
    await source.sql('postgres', `CREATE ROLE ${APP.user} LOGIN PASSWORD '${APP.password}'`);
    await source.sql(db, `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${APP.user}`);
    const bouncer = await startPgbouncer(source, db, { users: { [APP.user]: APP.password } });
    let throughReport: Awaited<ReturnType<ReturnType<typeof startLoad>['stop']>>;
    let processed: number;
    try {
      const through = startLoad(source.url(db), { clients: 2, scale: 2, ratePerSecond: 200 });
      const bench = pgbenchThroughPool(bouncer, db, APP, { seconds: 8, rate: 150 });
      bench.catch(() => undefined); // awaited below, unless an assertion fails first
      await until(async () => through.committed >= 20, 'the second writer to commit');
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const cut = await runPgferry(
        physical(
          'cutover',
          '--target',
          standbyUrl(),
          '--json',
          '--catch-up-timeout',
          '60',
          '--pgbouncer',
          bouncer.adminUrl,
          '--pgbouncer-ini',
          bouncer.ini,
          // The whole server moves; the pooled database to repoint is named (--source names postgres).
          '--pgbouncer-database',
          db,
        ),
        {},
        120_000,
      );
      throughReport = await through.stop();
      assert.equal(cut.code, 0, `${cut.stdout}${cut.stderr}\n${bouncer.log().slice(-3000)}`);
      const done = JSON.parse(cut.stdout) as {
        downtimeMs: number;
        steps: Array<{ name: string; ms: number }>;
        pgbouncer: { database: string; pausedMs: number; pointsTo: string } | null;
      };
      assert.ok(done.downtimeMs > 0);
      assert.deepEqual(
        done.steps.map((s) => s.name),
        ['catch up', 'pause', 'freeze', 'drain', 'last WAL', 'replay', 'promote', 'writes', 'repoint', 'resume', 'tidy'],
      );
      assert.equal(done.pgbouncer?.database, db);
      assert.match(done.pgbouncer?.pointsTo ?? '', new RegExp(`:${standbyPort}/${db}$`));
      process.stdout.write(
        `# physical cut-over under a writer (${throughReport.committed} commits) and pgbench through PgBouncer: frozen ${done.downtimeMs} ms, paused ${done.pgbouncer?.pausedMs} ms; ${done.steps.map((s) => `${s.name} ${s.ms} ms`).join(', ')}\n`,
      );
      const { stdout } = await bench;
      assert.match(stdout, /number of failed transactions: 0 /);
      assert.doesNotMatch(stdout, /aborted/i);
      processed = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1]);
      assert.ok(processed > 0, stdout);
      assert.equal(await servedBy(bouncer, db, APP), standbyPort);
    } finally {
      await bouncer.stop();
    }
    // Every transaction the writers and pgbench saw committed is on the new primary (those in doubt may be).
    const committed = duringReport.committed + throughReport.committed + processed;
    const inDoubt = duringReport.inDoubt + throughReport.inDoubt;
    const history = await count(standbyUrl(db), 'SELECT count(*) AS n FROM pgbench_history');
    assert.ok(
      history >= committed && history <= committed + inDoubt,
      `${history} history rows on the new primary; ${committed} commits, ${inDoubt} in doubt`,
    );
    assert.deepEqual(
      (await pgRows(standbyUrl(db), 'SELECT what FROM marks ORDER BY what')).map((r) => r.what),
      ['after a failed cut-over', 'after cleanup --unfreeze-source', 'held', 'standby down'],
    );
    // pgbench went on writing on the new primary: every history row the source has is there.
    const comparison = await compareTables(source.url(db), standbyUrl(db));
    const historyRows = comparison.tables.find((t) => t.table === 'public.pgbench_history');
    assert.deepEqual(historyRows?.onlyOnSource, [], JSON.stringify(historyRows).slice(0, 2000));
    const other = await compareTables(source.url(second), standbyUrl(second));
    assert.ok(other.equal, JSON.stringify(other.tables.filter((t) => !t.equal)));
    // Every database, roles and large objects came along; the new primary writes.
    assert.equal(await count(standbyUrl(second), 'SELECT count(*) AS n FROM kept'), 1000);
    assert.equal(await count(standbyUrl(), `SELECT count(*) AS n FROM pg_roles WHERE rolname = 'phys_app'`), 1);
    assert.equal(await count(standbyUrl(db), `SELECT length(lo_get(424242)) AS n`), 14);
    await pgQuery(standbyUrl(db), `INSERT INTO marks (what) VALUES ('on the new primary')`);
    // The old primary stays frozen: a write there fails read-only.
    await assert.rejects(mark('on the old primary'), /read-only transaction/);

    const cleanup = await runPgferryAsServerUser(physical('cleanup', '--unfreeze-source', '--pgdata', pgdata));
    assert.equal(cleanup.code, 0, cleanup.stderr);
    assert.match(cleanup.stdout, /slot dropped/);
    assert.match(cleanup.stdout, /freeze lifted/);
    await mark('the old primary writable again');
    assert.equal(await count(source.url('postgres'), `SELECT count(*) AS n FROM pg_replication_slots`), 0);
  });
});

describe(`physical mode, PostgreSQL ${MAJOR}, a source configured from outside its data directory (Debian's layout)`, () => {
  let source: Cluster;
  let pgBin: string;
  let pgdata: string;
  let standbyPort: number;
  let standbyRunning = false;

  before(async () => {
    source = await startCluster({ version: MAJOR, configOutside: true });
    pgBin = physicalBinDir(MAJOR);
    pgdata = join(serverUserDirectory('pgferry-physical-etc-'), 'standby');
    standbyPort = await freePort();
  });
  after(async () => {
    if (standbyRunning) stopServer(pgBin, pgdata, 'immediate');
    await source.stop();
  });

  it('names the outside files in check; sync makes a standby that starts once its pg_hba.conf is in place', async () => {
    const etc = join(source.directory, 'etc');
    const physical = (command: string, ...extra: string[]) => [command, '--physical', '--source', source.url('postgres'), ...extra];
    const check = await runPgferryAsServerUser(physical('check', '--pg-bin', pgBin, '--pgdata', pgdata));
    assert.equal(check.code, 0, check.stdout + check.stderr);
    const named = /source\.settings-not-copied .*/.exec(check.stdout)?.[0] ?? '';
    assert.match(named, new RegExp(`from ${etc}/postgresql\\.conf: .*\\bmax_connections\\b`), check.stdout);
    assert.match(check.stdout, new RegExp(`source\\.config-file .*is ${etc}/postgresql\\.conf, outside its data directory`));
    assert.match(check.stdout, new RegExp(`source\\.hba-file .*is ${etc}/pg_hba\\.conf, outside its data directory`));

    const sync = await runPgferryAsServerUser(
      physical('sync', '--pg-bin', pgBin, '--pgdata', pgdata, '--port', String(standbyPort)),
      {},
      300_000,
    );
    assert.equal(sync.code, 0, sync.stdout + sync.stderr);
    assert.match(sync.stdout, /postgresql\.conf was made empty/);
    assert.match(sync.stdout, new RegExp(`Carried from ${etc}/postgresql\\.conf into postgresql\\.auto\\.conf: .*max_connections = 60`));
    assert.match(sync.stdout, /Not carried .*: .*\bport\b.*\bunix_socket_directories\b/);
    assert.match(sync.stdout, new RegExp(`copy it to ${pgdata}/pg_hba\\.conf`));
    assert.ok(!existsSync(join(pgdata, 'pg_hba.conf')));

    // What the operator does on Debian: the source's pg_hba.conf beside the data.
    const hba = join(pgdata, 'pg_hba.conf');
    copyFileSync(join(etc, 'pg_hba.conf'), hba);
    const runAs = unprivilegedUser();
    if (runAs) chownSync(hba, runAs.uid, runAs.gid);
    startServer(pgBin, pgdata);
    standbyRunning = true;
    await streaming(source);
    const standby = source.url('postgres', { port: standbyPort });
    for (const [name, value] of [
      ['max_connections', '60'],
      ['wal_level', 'logical'],
      ['fsync', 'off'],
    ] as const)
      assert.equal((await pgRows(standby, `SHOW ${name}`))[0]![name], value, name);
  });
});

const APP = { user: 'phys_pooled', password: 'pooled-secret-1' };

async function readOnlyDefault(url: string): Promise<string> {
  try {
    return (await pgRows(url, 'SHOW default_transaction_read_only'))[0]!.default_transaction_read_only!;
  } catch (error) {
    // A probe that connected just before the freeze is one of the sessions its drain ends: look again.
    if (errorCode(error) === '57P01') return 'ended by the drain';
    throw error;
  }
}

async function until(check: () => Promise<boolean>, what: string, withinMs = 30_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${what}: not within ${withinMs / 1000} s`);
}

async function pgRows(url: string, sql: string): Promise<Array<Record<string, string>>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Record<string, string>>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** Waits (up to 60 s) until the migration's standby streams from the source. */
async function streaming(source: Cluster): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const n = await count(
      source.url('postgres'),
      `SELECT count(*) AS n FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid WHERE s.slot_name = 'pgferry_phys_standby' AND r.state = 'streaming'`,
    );
    if (n === 1) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('the restarted standby did not stream within 60 s');
}

async function pgQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
