/**
 * Oracle 1 of the schema copy (issue 3): after `pgferry clone --schema-only`, pg_dump sees the
 * same schema on the target as on the source. One pg_dump (15) reads both sides, so its own
 * version never makes a difference; a 13 and a 15 source are copied to a 15 target (pg_dump 15
 * refuses servers newer than itself). Only what may legitimately differ is normalised, and
 * each normalisation says why.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { runPgferry, startClusters, type Cluster } from '../harness/index.js';
import { dumpSchema, findPgDump, PG_DUMP_MAJOR } from '../harness/pg-dump.js';
import { normalise, parseDump, render, sameEntries, unifiedDiff } from '../harness/dump-compare.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PAGILA = join(REPO_ROOT, 'test', 'fixtures', 'pagila', 'pagila-schema.sql');
const ZOO_DIR = join(REPO_ROOT, 'test', 'fixtures');

interface Fixture {
  readonly name: string;
  /** Loaded in this order, each file only into servers at least as new as `since`. */
  readonly files: ReadonlyArray<{ readonly path: string; readonly since: number }>;
  readonly whereFrom: string;
}

const FIXTURES: readonly Fixture[] = [
  {
    name: 'pagila',
    files: [{ path: PAGILA, since: 13 }],
    whereFrom: "pagila ships in test/fixtures/pagila (a copy of the project's shared fixture)",
  },
  {
    name: 'schema zoo',
    // schema-zoo-18.sql is left out: no source here is newer than pg_dump 15.
    files: [
      { path: join(ZOO_DIR, 'schema-zoo.sql'), since: 13 },
      { path: join(ZOO_DIR, 'schema-zoo-14.sql'), since: 14 },
      { path: join(ZOO_DIR, 'schema-zoo-15.sql'), since: 15 },
    ],
    whereFrom: 'the schema zoo is part of the repository (test/fixtures)',
  },
];

let pg13: Cluster;
let pg15: Cluster;
let target: Cluster;

before(async () => {
  // Before any server starts: without the oracle every test below fails with how to install it.
  findPgDump();
  [pg13, pg15, target] = await startClusters([{ version: 13 }, { version: 15 }, { version: PG_DUMP_MAJOR }]);
});

after(async () => {
  await Promise.all([pg13, pg15, target].map((c) => c?.stop()));
});

describe(`pg_dump ${PG_DUMP_MAJOR} sees the same schema on the target as on the source`, () => {
  for (const sourceVersion of [13, 15] as const) {
    for (const fixture of FIXTURES) {
      test(`${fixture.name}, PostgreSQL ${sourceVersion} → ${PG_DUMP_MAJOR}`, async (t) => {
        const files = fixture.files.filter((f) => sourceVersion >= f.since);
        for (const { path } of files) assert.ok(existsSync(path), `fixture ${path} is missing: ${fixture.whereFrom}`);
        const source = sourceVersion === 13 ? pg13 : pg15;
        const sourceDb = await source.createDatabase({ prefix: 'src' });
        const targetDb = await target.createDatabase({ prefix: 'tgt' });
        for (const { path } of files) {
          try {
            await source.sql(sourceDb, readFileSync(path, 'utf8'));
          } catch (error) {
            assert.fail(`loading ${path} into PostgreSQL ${sourceVersion} failed: ${String(error)}`);
          }
        }

        await createRolesOnTarget(source, target);
        const clone = await runPgferry(
          ['clone', '--schema-only', '--source', source.url(sourceDb), '--target', target.url(targetDb)],
          {},
          180_000,
        );
        assert.equal(clone.code, 0, `pgferry clone --schema-only exited ${clone.code}:\n${clone.stderr}${clone.stdout}`);

        const [sourceDump, targetDump] = await Promise.all([
          dumpSchema(source, sourceDb, ['--exclude-schema=pgferry']),
          // pgferry's own state (decision 7) lives in the pgferry schema on the target only.
          dumpSchema(target, targetDb, ['--exclude-schema=pgferry']),
        ]);
        const keep = process.env.PGFERRY_ORACLE_DUMPS;
        if (keep) {
          // For reading the raw dumps by hand: PGFERRY_ORACLE_DUMPS=/some/dir.
          mkdirSync(keep, { recursive: true });
          const stem = `${fixture.name.replace(/\W+/g, '-')}-${sourceVersion}`;
          writeFileSync(join(keep, `${stem}-source.sql`), sourceDump);
          writeFileSync(join(keep, `${stem}-target.sql`), targetDump);
        }
        const sourceEntries = normalise(parseDump(sourceDump), sourceVersion);
        const targetEntries = normalise(parseDump(targetDump), sourceVersion);
        assert.ok(sourceEntries.length > 10, `the source dump holds only ${sourceEntries.length} entries`);

        const expected = render(sourceEntries);
        const actual = render(targetEntries);
        // pg_dump orders entries by kind, schema and name, then by dependencies; only entries
        // it cannot tell apart that way fall back to OID order, and OIDs on the target follow
        // pgferry's creation order, not the source's. So the same entries in another order are
        // the same schema; the diff below is in pg_dump's order, which reads best.
        if (expected !== actual && sameEntries(sourceEntries, targetEntries)) {
          t.diagnostic('the target dump holds the same entries as the source dump, in another order');
        } else if (expected !== actual) {
          const warnings = clone.stderr.trim() ? `\npgferry said:\n${clone.stderr.trim()}\n` : '';
          assert.fail(
            `pg_dump of the target differs from pg_dump of the source (${fixture.name}, PostgreSQL ${sourceVersion} → ${PG_DUMP_MAJOR}):${warnings}\n` +
              unifiedDiff(
                expected,
                actual,
                `source (PostgreSQL ${sourceVersion}) ${sourceDb}, normalised`,
                `target (PostgreSQL ${PG_DUMP_MAJOR}) ${targetDb}, normalised`,
              ),
          );
        }
      });
    }
  }
});

/**
 * Roles are global objects, outside any database's schema: pg_dump leaves them out too (they
 * come from pg_dumpall --roles-only), and pgferry expects them on the target. A fixture's
 * policies name roles, so the target gets every role the source has, as a bare NOLOGIN role.
 */
async function createRolesOnTarget(source: Cluster, target: Cluster): Promise<void> {
  const { rows } = await source.sql('postgres', `SELECT format('%I', rolname) AS name FROM pg_roles WHERE oid >= 16384 ORDER BY 1`);
  for (const { name } of rows as Array<{ name: string }>) {
    await target.sql('postgres', `DO $$BEGIN CREATE ROLE ${name} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$`);
  }
}
