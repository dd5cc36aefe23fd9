/**
 * The corpus as one server (issue 32): several fixtures, each in a database of its own on one
 * source instance, with their roles, moved by the `--all-databases` commands — `check`; `sync`
 * while the application writes to every database; `status` and `verify --mode full` while it
 * streams; one `cutover --verify full` for the whole server; the way back; `migrate` into a third
 * instance — and judged as describeCorpus judges one database (pg_dump with owners and
 * privileges, every row, every large object), plus the instance's globals by `pg_dumpall
 * --globals-only` (roles with their password verifiers, memberships, role settings). pgferry makes
 * the target databases and roles itself: nothing is prepared on a target by the test.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { MajorVersion } from './binaries.js';
import { runPgferry, spawnPgferry } from './cli.js';
import { startCluster, type Cluster } from './cluster.js';
import { assertSameDatabase, commitEach, COMMAND_TIMEOUT_MS, stopIfRunning, succeeds, type CorpusFixture } from './corpus.js';
import { useClusterPair } from './pair.js';
import { dumpGlobals } from './pg-dump.js';
import { waitUntilStreaming } from './sync-process.js';

/** A fixture and the database of the source instance it is loaded into. */
export interface InstanceDatabase {
  readonly database: string;
  readonly fixture: CorpusFixture;
}

/** A login role with a SCRAM password: its verifier must reach every target, and log in there. */
const LOGIN_ROLE = 'corpus_login';
const LOGIN_PASSWORD = 'a-corpus-password';

export function describeInstanceCorpus(databases: readonly InstanceDatabase[], from: MajorVersion, to: MajorVersion): void {
  describe(`corpus as one server: ${databases.map((d) => d.database).join(', ')}, ${from} → ${to}`, () => {
    const pair = useClusterPair(from, to);
    // migrate --all-databases goes into an instance of its own: the pair's target is then the new primary.
    let third: Cluster | undefined;
    before(async () => {
      third = await startCluster({ version: to });
    });
    after(async () => {
      await third?.stop();
    });
    let loaded = false;
    // Connections to the instances: the database named is only where pgferry connects first.
    const instance = (source: Cluster, target: Cluster) => ['--all-databases', '--source', source.url(), '--target', target.url()];

    it('loads every fixture into a database of its own on the source', async () => {
      await pair.source.sql(
        'postgres',
        `SET password_encryption = 'scram-sha-256'; CREATE ROLE ${LOGIN_ROLE} LOGIN PASSWORD '${LOGIN_PASSWORD}' CONNECTION LIMIT 7`,
      );
      for (const { database, fixture } of databases) {
        await pair.source.sql('postgres', `CREATE DATABASE ${database} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`);
        for (const path of fixture.files) {
          try {
            await pair.source.sql(database, readFileSync(path, 'utf8'));
          } catch (error) {
            assert.fail(`loading ${path} into ${database} on PostgreSQL ${pair.source.version} failed: ${String(error)}`);
          }
        }
        await pair.source.sql(database, `GRANT CONNECT ON DATABASE ${database} TO ${LOGIN_ROLE}`);
      }
      await pair.source.sql('postgres', `ALTER ROLE ${LOGIN_ROLE} SET statement_timeout = '5min'`);
      loaded = true;
    });

    it('check, then one sync for the server: every database streams the application’s writes, status and verify while it streams, one cut-over', async (t) => {
      assert.ok(loaded, 'the fixtures did not load');
      const args = instance(pair.source, pair.target);
      await succeeds(t, 'check --all-databases', await runPgferry(['check', ...args], {}, COMMAND_TIMEOUT_MS));
      const sync = spawnPgferry(['sync', ...args]);
      try {
        for (const { database } of databases) await waitUntilStreaming(pair.target, database, sync, COMMAND_TIMEOUT_MS);
        await Promise.all(databases.map(({ database, fixture }) => commitEach(pair.source, database, fixture.changes)));
        const status = await runPgferry(['status', '--json', ...args], {}, COMMAND_TIMEOUT_MS);
        await succeeds(t, 'status --all-databases --json', status);
        for (const { database } of databases) assert.match(status.stdout, new RegExp(`"${database}"`), status.stdout);
        await succeeds(
          t,
          'verify --mode full --all-databases',
          await runPgferry(['verify', '--mode', 'full', ...args], {}, COMMAND_TIMEOUT_MS),
        );
        await succeeds(t, 'cutover --all-databases', await runPgferry(['cutover', '--verify', 'full', ...args], {}, COMMAND_TIMEOUT_MS));
        assert.equal(await sync.exited(), 0, `sync after the cut-over:\n${sync.output()}`);
      } finally {
        await stopIfRunning(sync);
      }
      await assertSameServer(pair.source, pair.target, databases, 'after the cut-over');
      await assertLogsIn(pair.target, databases[0]!.database);
    });

    it('the way back: the new primary’s writes stream to the old server, and one cut-over back', async (t) => {
      assert.ok(loaded, 'the fixtures did not load');
      const back = instance(pair.target, pair.source);
      const reverse = spawnPgferry(['sync', ...back]);
      try {
        for (const { database } of databases) await waitUntilStreaming(pair.source, database, reverse, COMMAND_TIMEOUT_MS);
        assert.doesNotMatch(reverse.output(), /copying/i, 'the way back must not copy');
        await Promise.all(databases.map(({ database, fixture }) => commitEach(pair.target, database, fixture.changesBack)));
        await succeeds(
          t,
          'cutover back --all-databases',
          await runPgferry(['cutover', '--verify', 'full', ...back], {}, COMMAND_TIMEOUT_MS),
        );
        assert.equal(await reverse.exited(), 0, `the way back after the cut-over:\n${reverse.output()}`);
      } finally {
        await stopIfRunning(reverse);
      }
      await assertSameServer(pair.target, pair.source, databases, 'after the cut-over back');
      await succeeds(
        t,
        'cleanup --all-databases',
        await runPgferry(['cleanup', '--force', ...instance(pair.source, pair.target)], {}, COMMAND_TIMEOUT_MS),
      );
    });

    it('migrate --all-databases: the whole server unattended into a new instance', async (t) => {
      assert.ok(loaded, 'the fixtures did not load');
      const args = instance(pair.source, third!);
      await succeeds(
        t,
        'migrate --all-databases',
        await runPgferry(['migrate', '--verify', 'full', '--unfreeze-source', ...args], {}, COMMAND_TIMEOUT_MS),
      );
      await assertSameServer(pair.source, third!, databases, 'after migrate');
      await assertLogsIn(third!, databases[0]!.database);
      await succeeds(t, 'cleanup --all-databases', await runPgferry(['cleanup', '--force', ...args], {}, COMMAND_TIMEOUT_MS));
    });
  });
}

/** Every database as describeCorpus judges one, and the globals by pg_dumpall. */
async function assertSameServer(a: Cluster, b: Cluster, databases: readonly InstanceDatabase[], when: string): Promise<void> {
  for (const { database } of databases) await assertSameDatabase(a, database, b, database, `${database} ${when}`);
  const [aGlobals, bGlobals] = await Promise.all([dumpGlobals(a), dumpGlobals(b)]);
  assert.deepEqual(globalsOf(bGlobals, b.superuser), globalsOf(aGlobals, a.superuser), `the globals differ ${when}`);
}

/**
 * pg_dumpall's globals as a sorted list of statements, without its comments and settings and
 * without the bootstrap superuser's own lines (each server has its own, with its own password).
 */
function globalsOf(dump: string, superuser: string): string[] {
  const own = new RegExp(`^(CREATE|ALTER) ROLE ${superuser}[ ;]`);
  return dump
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('--') && !line.startsWith('SET ') && !line.startsWith('\\'))
    .filter((line) => !own.test(line))
    .sort();
}

/** The login role's old password opens a session on the new server. */
async function assertLogsIn(cluster: Cluster, database: string): Promise<void> {
  const pg = (await import('pg')).default;
  const client = new pg.Client({ host: cluster.host, port: cluster.port, user: LOGIN_ROLE, password: LOGIN_PASSWORD, database });
  await client.connect();
  try {
    const { rows } = await client.query<{ who: string }>('SELECT current_user AS who');
    assert.equal(rows[0]?.who, LOGIN_ROLE);
  } finally {
    await client.end();
  }
}
