/**
 * The corpus (issue 30): real schemas, data and extensions, each run through every path a user
 * takes — `clone`; `check`; `sync` while the application writes; `status` and `verify --mode
 * full` while it streams; `cutover --verify full`; the way back (sync and cut-over with the sides
 * swapped); `migrate`, the whole pipeline unattended — and judged
 * independently of pgferry's own reading of the catalogs: pg_dump --schema-only of both sides
 * equal, owners and privileges included, every table equal by content, and the large objects
 * equal. A fixture that fails is a defect to fix, not a fixture to drop.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it, type TestContext } from 'node:test';
import type { CutoverReport } from '../../src/cutover/index.js';
import { runPgferry, spawnPgferry, type CliResult, type PgferryProcess } from './cli.js';
import type { Cluster, ClusterOptions } from './cluster.js';
import { compareTables } from './compare.js';
import { schemaDifference } from './dump-compare.js';
import type { MajorVersion } from './binaries.js';
import { useClusterPair } from './pair.js';
import { stopSync, waitUntilStreaming } from './sync-process.js';

export interface CorpusFixture {
  readonly name: string;
  /** SQL files loaded into a fresh source database, in order (as one script each). */
  readonly files: readonly string[];
  /** Transactions the application commits on the source while sync streams. */
  readonly changes: readonly string[];
  /** Transactions it commits on the new primary while the way back streams. */
  readonly changesBack: readonly string[];
}

/** A changes file: transactions separated by lines that read exactly `-- transaction`. */
export function readTransactions(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split(/^-- transaction$/m)
    .map((chunk) => chunk.trim())
    .filter((chunk) => chunk.replace(/^--.*$/gm, '').trim() !== '');
}

export const COMMAND_TIMEOUT_MS = 300_000;

/**
 * Registers a describe block for `fixture` on a `from` → `to` pair of servers: one test per
 * path, in order, each starting where the one before left the databases.
 */
export function describeCorpus(fixture: CorpusFixture, from: MajorVersion | ClusterOptions, to: MajorVersion | ClusterOptions): void {
  const label = (side: MajorVersion | ClusterOptions) => (typeof side === 'number' ? side : side.version);
  describe(`corpus: ${fixture.name}, ${label(from)} → ${label(to)}`, () => {
    const pair = useClusterPair(from, to);
    let db = '';
    let loaded = false;
    const connection = (source: Cluster, target: Cluster, sourceDb = db, targetDb = db) => [
      '--source',
      source.url(sourceDb),
      '--target',
      target.url(targetDb),
    ];

    it('loads into the source', async () => {
      db = await pair.source.createDatabase({ prefix: 'corpus' });
      for (const path of fixture.files) {
        try {
          await pair.source.sql(db, readFileSync(path, 'utf8'));
        } catch (error) {
          assert.fail(`loading ${path} into PostgreSQL ${pair.source.version} failed: ${String(error)}`);
        }
      }
      await copyRoles(pair.source, pair.target);
      loaded = true;
    });

    it('clone: the same schema by pg_dump, the same rows, and verify --mode full agrees', async (t) => {
      assert.ok(loaded, 'the fixture did not load');
      const cloneDb = `${db}_clone`;
      await pair.target.sql('postgres', `CREATE DATABASE ${cloneDb}`);
      const args = connection(pair.source, pair.target, db, cloneDb);
      await succeeds(t, 'clone', await runPgferry(['clone', ...args], {}, COMMAND_TIMEOUT_MS));
      await assertSameDatabase(pair.source, db, pair.target, cloneDb, 'after clone');
      await succeeds(t, 'verify --mode full', await runPgferry(['verify', '--mode', 'full', ...args], {}, COMMAND_TIMEOUT_MS));
    });

    it('check, then sync: streams the application’s writes, status and verify --mode full while it streams, cutover --verify full', async (t) => {
      assert.ok(loaded, 'the fixture did not load');
      await pair.target.sql('postgres', `CREATE DATABASE ${db}`);
      const args = connection(pair.source, pair.target);
      // The preflight must find nothing that blocks this database (what it cannot carry by design, it names).
      await succeeds(t, 'check', await runPgferry(['check', ...args], {}, COMMAND_TIMEOUT_MS));
      const sync = spawnPgferry(['sync', ...args]);
      try {
        await waitUntilStreaming(pair.target, db, sync, COMMAND_TIMEOUT_MS);
        await commitEach(pair.source, db, fixture.changes);
        const status = await runPgferry(['status', '--json', ...args], {}, COMMAND_TIMEOUT_MS);
        await succeeds(t, 'status --json', status);
        assert.equal((JSON.parse(status.stdout) as { phase?: string }).phase, 'streaming', status.stdout);
        await succeeds(
          t,
          'verify --mode full (while sync streams)',
          await runPgferry(['verify', '--mode', 'full', ...args], {}, COMMAND_TIMEOUT_MS),
        );
        const cut = await runPgferry(['cutover', '--verify', 'full', '--json', ...args], {}, COMMAND_TIMEOUT_MS);
        await succeeds(t, 'cutover --verify full', cut);
        const report = JSON.parse(cut.stdout) as CutoverReport;
        assert.ok(report.wayBack, `the cut-over prepared no way back: ${report.wayBackSkipped ?? ''}`);
        assert.equal(await sync.exited(), 0, `sync after the cut-over:\n${sync.output()}`);
      } finally {
        await stopIfRunning(sync);
      }
      await assertSameDatabase(pair.source, db, pair.target, db, 'after the cut-over');
    });

    it('the way back: the new primary’s writes stream to the old one, and the cut-over back is equal', async (t) => {
      assert.ok(loaded, 'the fixture did not load');
      const back = connection(pair.target, pair.source);
      const reverse = spawnPgferry(['sync', ...back]);
      try {
        await waitUntilStreaming(pair.source, db, reverse, COMMAND_TIMEOUT_MS);
        assert.doesNotMatch(reverse.output(), /copying/i, 'the way back must not copy');
        await commitEach(pair.target, db, fixture.changesBack);
        await succeeds(t, 'cutover back --verify full', await runPgferry(['cutover', '--verify', 'full', ...back], {}, COMMAND_TIMEOUT_MS));
        assert.equal(await reverse.exited(), 0, `the way back after the cut-over:\n${reverse.output()}`);
      } finally {
        await stopIfRunning(reverse);
      }
      await assertSameDatabase(pair.target, db, pair.source, db, 'after the cut-over back');
      await succeeds(
        t,
        'cleanup',
        await runPgferry(['cleanup', '--force', ...connection(pair.source, pair.target)], {}, COMMAND_TIMEOUT_MS),
      );
    });

    it('migrate: the whole pipeline unattended into a new database, cut over with --verify full', async (t) => {
      assert.ok(loaded, 'the fixture did not load');
      const migratedDb = `${db}_migrated`;
      await pair.target.sql('postgres', `CREATE DATABASE ${migratedDb}`);
      const args = connection(pair.source, pair.target, db, migratedDb);
      await succeeds(t, 'migrate', await runPgferry(['migrate', '--verify', 'full', '--unfreeze-source', ...args], {}, COMMAND_TIMEOUT_MS));
      await assertSameDatabase(pair.source, db, pair.target, migratedDb, 'after migrate');
      await succeeds(t, 'cleanup', await runPgferry(['cleanup', '--force', ...args], {}, COMMAND_TIMEOUT_MS));
    });
  });
}

export async function succeeds(t: TestContext, what: string, result: CliResult): Promise<void> {
  assert.equal(result.code, 0, `pgferry ${what} exited ${result.code}:\n${result.stderr}${result.stdout}`);
  // Warnings are worth reading in the test's output; the info lines of the log are not.
  const warnings = result.stderr.split('\n').filter((line) => line.trim() !== '' && !/"level":(10|20|30),/.test(line));
  if (warnings.length > 0) t.diagnostic(`pgferry ${what} warned: ${warnings.slice(-5).join(' | ')}`);
}

export async function stopIfRunning(sync: PgferryProcess): Promise<void> {
  if (sync.child.exitCode === null && sync.child.signalCode === null) await stopSync(sync);
}

/** Each transaction committed on its own, durably (the test servers run with synchronous_commit off). */
export async function commitEach(cluster: Cluster, db: string, transactions: readonly string[]): Promise<void> {
  await cluster.withClient(db, async (client) => {
    await client.query('SET synchronous_commit = on');
    for (const [i, sql] of transactions.entries()) {
      try {
        await client.query(`BEGIN; ${sql}; COMMIT`);
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        assert.fail(`transaction ${i + 1} of the fixture's changes failed on PostgreSQL ${cluster.version}: ${String(error)}\n${sql}`);
      }
    }
  });
}

/**
 * Roles are the instance's, not the database's: pg_dump leaves them out, and a migration of one
 * database expects them on the target. Every role of the source (its own, not the server's) is
 * made on the target as a bare NOLOGIN role, so owners and grants can be compared.
 */
async function copyRoles(source: Cluster, target: Cluster): Promise<void> {
  const { rows } = await source.sql('postgres', `SELECT format('%I', rolname) AS name FROM pg_roles WHERE oid >= 16384 ORDER BY oid`);
  for (const { name } of rows as Array<{ name: string }>) {
    await target.sql('postgres', `DO $$BEGIN CREATE ROLE ${name} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$`);
  }
}

/** The judgement: pg_dump's schema (owners and grants included), every table's rows, every large object. */
export async function assertSameDatabase(a: Cluster, aDb: string, b: Cluster, bDb: string, when: string): Promise<void> {
  const [schema, rows, aObjects, bObjects] = await Promise.all([
    schemaDifference({ cluster: a, database: aDb }, { cluster: b, database: bDb }, { owners: true }),
    compareTables(a.url(aDb), b.url(bDb)),
    largeObjects(a, aDb),
    largeObjects(b, bDb),
  ]);
  const problems = [
    ...(schema === undefined ? [] : [`pg_dump differs:\n${schema}`]),
    ...(rows.equal
      ? []
      : [
          `rows differ: ${JSON.stringify(
            rows.tables.filter((t) => !t.equal),
            null,
            1,
          )}`,
        ]),
    ...(JSON.stringify(aObjects) === JSON.stringify(bObjects)
      ? []
      : [`large objects differ: ${JSON.stringify(aObjects.slice(0, 5))} against ${JSON.stringify(bObjects.slice(0, 5))}`]),
  ];
  assert.deepEqual(problems, [], `${when}:\n${problems.join('\n\n')}`);
}

async function largeObjects(cluster: Cluster, db: string): Promise<string[]> {
  const { rows } = await cluster.sql(
    db,
    `SELECT m.oid::text || ' ' || md5(lo_get(m.oid)) || ' ' || pg_get_userbyid(m.lomowner) || ' ' || coalesce(m.lomacl::text, '') AS lo
       FROM pg_largeobject_metadata m ORDER BY m.oid`,
  );
  return (rows as Array<{ lo: string }>).map((r) => r.lo);
}
