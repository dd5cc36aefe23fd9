/**
 * A whole server in one sync (issue 32): `sync --all-databases` runs one sync per database of the
 * source's instance in one process; `status`, `verify` and `check` walk every database. The
 * source has three databases with different owners and tables (and a fourth left out with
 * --exclude-database); the test makes the target databases itself (the instance's global objects
 * are another step).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  compareTables,
  renderPage,
  runPgferry,
  spawnPgferry,
  startClusters,
  startWriter,
  stopSync,
  stopWithin30s,
  waitUntilStreaming,
  WRITER_SCHEMA_SQL,
  type Cluster,
  type PgferryProcess,
} from '../harness/index.js';

/** Database → its owner; `scratch` is on the source only and always excluded. */
const DATABASES = { shop: 'alice', crm: 'bob', analytics: 'carol' } as const;
const MIGRATED = Object.keys(DATABASES).sort();

async function makeInstance(source: Cluster, target: Cluster | undefined): Promise<void> {
  for (const [database, owner] of Object.entries(DATABASES)) {
    for (const cluster of target ? [source, target] : [source]) {
      await cluster.sql('postgres', `CREATE ROLE ${owner} LOGIN`);
      await cluster.sql(
        'postgres',
        `CREATE DATABASE ${database} OWNER ${owner} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`,
      );
    }
    // Each owner makes its own tables: the copy must give them the same owner on the target.
    const tables =
      database === 'analytics'
        ? `CREATE SEQUENCE report_no START 500;
           CREATE TABLE reports (id bigint PRIMARY KEY DEFAULT nextval('report_no'), title text NOT NULL, body bytea);
           INSERT INTO reports (title, body) SELECT 'report ' || g, decode(md5(g::text), 'hex') FROM generate_series(1, 300) g;`
        : `${WRITER_SCHEMA_SQL}
           INSERT INTO items (payload) SELECT md5(g::text) FROM generate_series(1, ${database === 'shop' ? 2000 : 500}) g;
           CREATE TABLE ${database}_notes (id serial PRIMARY KEY, note text);`;
    await source.sql(database, `SET ROLE ${owner}; ${tables}`);
  }
  await source.sql('postgres', 'CREATE DATABASE scratch');
  await source.sql('scratch', 'CREATE TABLE never_moved (id int PRIMARY KEY)');
}

/** Waits until `process` has written `pattern` `count` times; fails with its output after 60 s or if it exits. */
async function outputSays(process: PgferryProcess, pattern: RegExp, count: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while ((process.output().match(pattern)?.length ?? 0) < count) {
    if (process.child.exitCode !== null || Date.now() > deadline)
      assert.fail(`waited for ${count} × ${pattern.source}:\n${process.output().slice(-4000)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('sync --all-databases: every database of an instance in one process, 17 → 17', () => {
  let source: Cluster;
  let target: Cluster;
  let crowded: Cluster;
  before(async () => {
    // `crowded` has room for the slots of two databases, not of three.
    [source, target, crowded] = await startClusters([
      { version: 17 },
      { version: 17 },
      { version: 17, settings: { max_replication_slots: 4 } },
    ]);
    await Promise.all([makeInstance(source, target), makeInstance(crowded, undefined)]);
  });
  after(async () => {
    await Promise.all([source, target, crowded].map((c) => c?.stop()));
  });

  const connection = () => ['--source', source.url('postgres'), '--target', target.url('postgres')];

  it('check --all-databases reports per database and for the instance, and refuses without slots for every database', async () => {
    const fine = await runPgferry(['check', ...connection(), '--all-databases', '--exclude-database', 'scratch', '--json']);
    const report = JSON.parse(fine.stdout) as {
      ready: boolean;
      instance: { findings: Array<{ id: string }> };
      databases: Array<{ database: string; ready: boolean; source: { database: string } }>;
    };
    assert.deepEqual(
      report.databases.map((d) => [d.database, d.source.database]),
      MIGRATED.map((d) => [d, d]),
      fine.stdout,
    );
    assert.equal(report.ready, true, fine.stdout);
    assert.equal(fine.code, 0, fine.stderr);

    const refused = await runPgferry([
      'check',
      '--source',
      crowded.url('postgres'),
      '--target',
      target.url('postgres'),
      '--all-databases',
      '--exclude-database',
      'scratch',
    ]);
    assert.equal(refused.code, 3, refused.stdout + refused.stderr);
    assert.match(refused.stdout, /== database analytics\n/);
    assert.match(
      refused.stdout,
      /instance\.replication-slots +no free replication slots for 3 databases \(6 needed\) on the source: max_replication_slots = 4/,
    );
    assert.match(refused.stdout, /max_replication_slots = 6/, 'the fix names the setting to give');
  });

  it('syncs every database under writers, survives SIGKILL without a new copy, and verifies', async () => {
    const args = ['sync', ...connection(), '--all-databases', '--exclude-database', 'scratch', '--memory-limit', '48MB'];
    const writers = [startWriter(source.url('shop')), startWriter(source.url('crm'))];
    let sync: PgferryProcess | undefined = spawnPgferry([...args, '--listen', '127.0.0.1:0']);
    try {
      for (const database of MIGRATED) await waitUntilStreaming(target, database, sync);
      assert.equal(sync.child.exitCode, null);
      // One migration per database, each with its own slot on the source; none for the excluded one.
      const slots = (await source.sql('postgres', `SELECT database FROM pg_replication_slots WHERE slot_name LIKE 'pgferry_%' ORDER BY 1`))
        .rows;
      assert.deepEqual(
        slots.map((r) => (r as { database: string }).database),
        MIGRATED,
      );
      const output = sync.output();
      for (const database of MIGRATED) assert.match(output, new RegExp(`"database":"${database}"`), 'every log line names its database');

      const status = await runPgferry(['status', '--target', target.url('postgres'), '--all-databases', '--json']);
      assert.equal(status.code, 0, status.stderr);
      const databases = (JSON.parse(status.stdout) as { databases: Array<{ database: string; phase: string; syncRunning: boolean }> })
        .databases;
      assert.deepEqual(
        databases.map((d) => [d.database, d.phase, d.syncRunning]),
        MIGRATED.map((d) => [d, 'streaming', true]),
      );
      const only = await runPgferry([
        'status',
        '--target',
        target.url('postgres'),
        '--all-databases',
        '--include-database',
        'sh*',
        '--json',
      ]);
      assert.deepEqual(
        (JSON.parse(only.stdout) as { databases: Array<{ database: string }> }).databases.map((d) => d.database),
        ['shop'],
      );

      const url = /"url":"(http:\/\/127\.0\.0\.1:\d+\/)"/.exec(sync.output())?.[1];
      assert.ok(url, `sync did not say where it listens:\n${sync.output()}`);
      const metrics = await (await fetch(`${url}metrics`)).text();
      for (const database of MIGRATED) {
        assert.match(metrics, new RegExp(`^pgferry_lag_bytes\\{database="${database}"\\} \\d+`, 'm'));
        const phase = metrics
          .split('\n')
          .find((line) => line.startsWith('pgferry_phase{') && line.includes(`database="${database}"`) && line.endsWith(' 1'));
        assert.match(phase ?? metrics, /phase="streaming"/);
      }
      assert.equal(metrics.match(/^# TYPE pgferry_lag_bytes /gm)?.length, 1, 'one family, a series per database');
      assert.match(metrics, /^pgferry_process_cpu_seconds_total \d/m, 'the process metrics, once and unlabelled');
      const served = (await (await fetch(`${url}status.json`)).json()) as { databases: Array<{ database: string }> };
      assert.deepEqual(
        served.databases.map((d) => d.database),
        MIGRATED,
      );
      const one = (await (await fetch(`${url}database/crm/status.json`)).json()) as { phase: string; tables: Array<{ name: string }> };
      assert.equal(one.phase, 'streaming');
      assert.ok(
        one.tables.some((t) => t.name === 'public.crm_notes'),
        JSON.stringify(one),
      );
      // The page as a browser draws it: a row per database, each linking to that database's page.
      const dom = await renderPage(url);
      for (const database of MIGRATED)
        assert.match(
          dom,
          new RegExp(`<tr data-database="${database}"><td><a href="database/${database}/">${database}</a></td><td>streaming</td>`),
        );

      await Promise.all(writers.map((w) => w.waitForCommits(200, 'source')));
      sync.child.kill('SIGKILL');
      await sync.exited();
      const restarted = spawnPgferry(args);
      sync = restarted;
      // The state says streaming from before the kill: it is the log that says the new process streams.
      await outputSays(restarted, /continuing from the position the target recorded/g, MIGRATED.length);
      await Promise.all(writers.map((w) => w.waitForCommits(400, 'source')));
      assert.doesNotMatch(restarted.output(), /slot created|copying each table/i, 'no database copies again');
      await stopWithin30s(sync);
      sync = undefined;
    } finally {
      const reports = await Promise.all(writers.map((w) => w.stop()));
      for (const report of reports) assert.deepEqual(report.unexpectedErrors, []);
      if (sync) await stopSync(sync);
    }

    const caughtUp = await runPgferry([...args, '--until-caught-up', '--json'], {}, 120_000);
    assert.equal(caughtUp.code, 0, caughtUp.stderr);
    const summaries = (JSON.parse(caughtUp.stdout) as { databases: Array<{ database: string; stoppedBecause: string; cloned?: unknown }> })
      .databases;
    assert.deepEqual(
      summaries.map((s) => [s.database, s.stoppedBecause, s.cloned]),
      MIGRATED.map((d) => [d, 'caught up', undefined]),
    );
    for (const database of MIGRATED) {
      const comparison = await compareTables(source.url(database), target.url(database));
      assert.ok(comparison.equal, `${database}: ${JSON.stringify(comparison.tables.filter((t) => !t.equal))}`);
      const owner = (await target.sql(database, `SELECT tableowner FROM pg_tables WHERE schemaname = 'public' ORDER BY 1 LIMIT 1`))
        .rows[0] as {
        tableowner: string;
      };
      assert.equal(owner.tableowner, DATABASES[database as keyof typeof DATABASES]);
    }
    const scratch = await target.sql('postgres', `SELECT count(*)::int AS n FROM pg_database WHERE datname = 'scratch'`);
    assert.deepEqual(scratch.rows, [{ n: 0 }]);

    const verified = await runPgferry(['verify', ...connection(), '--all-databases', '--exclude-database', 'scratch']);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    for (const database of MIGRATED) assert.match(verified.stdout, new RegExp(`== database ${database}\\n`));
    assert.match(verified.stdout, /Identical: all 3 databases\./);

    // A row changed behind sync's back on one target database: verify names it and exits 4.
    await target.sql('crm', `UPDATE items SET payload = 'tampered' WHERE id = 1`);
    const differs = await runPgferry(['verify', ...connection(), '--all-databases', '--exclude-database', 'scratch', '--json']);
    assert.equal(differs.code, 4, differs.stderr);
    const report = JSON.parse(differs.stdout) as { identical: boolean; databases: Array<{ database: string; identical: boolean }> };
    assert.deepEqual(
      report.databases.map((d) => [d.database, d.identical]),
      MIGRATED.map((d) => [d, d !== 'crm']),
    );
  });

  it('stops every database, naming the one whose sync failed', async () => {
    // The target's crm refuses a row the source accepts: that database's apply cannot go on.
    await target.sql('crm', `ALTER TABLE items ADD CONSTRAINT no_boom CHECK (payload <> 'boom') NOT VALID`);
    const sync = spawnPgferry(['sync', ...connection(), '--all-databases', '--exclude-database', 'scratch']);
    try {
      await outputSays(sync, /continuing from the position the target recorded/g, MIGRATED.length);
      await source.sql('crm', `INSERT INTO items (payload) VALUES ('boom')`);
      const code = await Promise.race([sync.exited(), new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 90_000))]);
      assert.notEqual(code, 'hung', `sync went on after crm failed:\n${sync.output().slice(-4000)}`);
      assert.notEqual(code, 0);
      assert.match(sync.output(), /pgferry: database "crm": /);
      assert.match(sync.output(), /the other databases were stopped/);
    } finally {
      await stopSync(sync);
      await target.sql('crm', 'ALTER TABLE items DROP CONSTRAINT no_boom');
    }
  });

  it('refuses --name; a database the target lacks is made from the source’s (owner, encoding) before its sync copies it', async () => {
    const named = await runPgferry(['sync', ...connection(), '--all-databases', '--name', 'x']);
    assert.equal(named.code, 2);
    assert.match(named.stderr, /--name names one migration/);
    const made = await runPgferry(['sync', ...connection(), '--all-databases', '--include-database', 'scratch', '--until-caught-up']);
    assert.equal(made.code, 0, made.stderr);
    const shape = `SELECT pg_get_userbyid(datdba) AS owner, pg_encoding_to_char(encoding) AS encoding FROM pg_database WHERE datname = 'scratch'`;
    assert.deepEqual((await target.sql('postgres', shape)).rows, (await source.sql('postgres', shape)).rows);
    assert.ok((await compareTables(source.url('scratch'), target.url('scratch'))).equal, 'scratch copied');
    await runPgferry(['cleanup', '--force', '--source', source.url('scratch'), '--target', target.url('scratch')]);
  });
});
