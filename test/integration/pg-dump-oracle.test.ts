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

/** One TOC entry of a plain-format dump: its "Name: …; Type: …; Schema: …; Owner: …" line and its SQL. */
interface DumpEntry {
  readonly header: string;
  readonly body: string;
}

const HEADER = /^-- (?:Name|Data for Name): (.*)$/;

/**
 * Splits a plain dump into its entries. Dropped, because they describe the dump rather than
 * the schema: the preamble before the first entry (which server and pg_dump versions, the
 * session SETs, search_path), the SET lines pg_dump emits between entries when
 * default_tablespace or default_table_access_method change, the `\restrict` / `\unrestrict`
 * lines carrying a random key (pg_dump 15.14 and later), the "--" frames around each entry
 * header, and the closing "dump complete" comment.
 */
function parseDump(text: string): DumpEntry[] {
  const entries: DumpEntry[] = [];
  let header: string | undefined;
  let body: string[] = [];
  const flush = () => {
    if (header === undefined) return;
    while (body.length > 0 && isBetweenEntries(body[body.length - 1]!)) body.pop();
    while (body.length > 0 && body[0]!.trim() === '') body.shift();
    entries.push({ header, body: body.join('\n') });
  };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const match = HEADER.exec(line);
    if (match && lines[i - 1] === '--' && lines[i + 1] === '--') {
      flush();
      header = match[1]!;
      body = [];
      i++; // the closing "--" of the frame
      continue;
    }
    if (header !== undefined) body.push(line);
  }
  flush();
  return entries;
}

function isBetweenEntries(line: string): boolean {
  return line.trim() === '' || line.startsWith('--') || /^SET [a-z_]+ = .*;$/.test(line) || /^\\(un)?restrict /.test(line);
}

/**
 * What legitimately differs between a source and the target for the same objects. Each rule
 * names the server behaviour that causes it; nothing else is touched. The same rules run on
 * both dumps; they rewrite how an entry is spelled, and drop only the one entry that carries
 * nothing but an owner, so no object can disappear from the comparison.
 */
function normalise(entries: DumpEntry[], sourceMajor: number): DumpEntry[] {
  return entries
    .filter((e) => !isPublicSchemaOwnership(e))
    .map((e) => (sourceMajor < 14 ? { header: withoutInMode(e.header, /^PROCEDURE /), body: withoutPre14Differences(e.body) } : e));
}

/**
 * Two things PostgreSQL 14 changed in how the server describes the same object, seen when a
 * 13 source is dumped beside its 15 target:
 * - every range type got a multirange type, created with it by the server (there is no way
 *   not to): the target's CREATE TYPE … AS RANGE lists a multirange_type_name the source
 *   cannot have;
 * - pg_get_function_arguments writes the argument mode of procedure arguments ("IN a
 *   integer"), since procedures may have OUT arguments, in the CREATE and in the name of a
 *   COMMENT ON PROCEDURE; IN is the default mode, so "(IN a integer)" and "(a integer)"
 *   are the same procedure.
 */
function withoutPre14Differences(body: string): string {
  return body
    .replace(
      /^(CREATE TYPE \S+ AS RANGE \(\n)([\s\S]*?)(\n\);)$/m,
      (_, open: string, options: string, close: string) =>
        open +
        options
          .split(',\n')
          .filter((o) => !o.trimStart().startsWith('multirange_type_name = '))
          .join(',\n') +
        close,
    )
    .replace(/^(?:CREATE|COMMENT ON) PROCEDURE .*$/gm, (line) => withoutInMode(line, /^/));
}

/** "(IN a integer, IN b text)" → "(a integer, b text)" in a line that names a procedure. */
function withoutInMode(line: string, when: RegExp): string {
  return when.test(line) ? line.replace(/(\(|, )IN (?=\S)/g, '$1') : line;
}

/**
 * pg_dump 15 writes an entry for the public schema whose only content, under --no-owner, is
 * the comment "*not* creating schema, since initdb creates it": it is there to carry an
 * ALTER SCHEMA public OWNER TO, and is left out when public is owned by pg_database_owner,
 * the initdb default since PostgreSQL 15. Before 15 initdb made the bootstrap superuser its
 * owner, so a 13 source always has the entry; pagila (itself a dump) sets the owner to
 * postgres, so a 15 source has it too, and the copy gives the target's public that owner.
 * Owners are outside this comparison (--no-owner), so an entry that says nothing but who owns
 * public is dropped on both sides. A COMMENT ON SCHEMA public is a separate entry and still compared.
 */
function isPublicSchemaOwnership(entry: DumpEntry): boolean {
  return entry.header === 'public; Type: SCHEMA; Schema: -; Owner: -' && entry.body.trim() === '';
}

function sameEntries(a: readonly DumpEntry[], b: readonly DumpEntry[]): boolean {
  const key = (entries: readonly DumpEntry[]) => entries.map((e) => `${e.header}\n${e.body}`).sort();
  return JSON.stringify(key(a)) === JSON.stringify(key(b));
}

function render(entries: readonly DumpEntry[]): string {
  return entries.map((e) => `-- ${e.header}\n${e.body}`).join('\n\n');
}

/**
 * A unified diff (3 lines of context) of the first differences, cut after MAX_DIFF_LINES. The
 * common head and tail are stripped first, so the longest-common-subsequence table only
 * covers the region that differs.
 */
const MAX_DIFF_LINES = 200;
const CONTEXT = 3;

function unifiedDiff(expected: string, actual: string, expectedName: string, actualName: string): string {
  const a = expected.split('\n');
  const b = actual.split('\n');
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const midA = a.slice(head, a.length - tail);
  const midB = b.slice(head, b.length - tail);

  // Edit script over the middle: ' ' kept, '-' only in expected, '+' only in actual.
  type Op = { op: ' ' | '-' | '+'; line: string };
  const ops: Op[] = [];
  for (let i = 0; i < head; i++) ops.push({ op: ' ', line: a[i]! });
  if (midA.length * midB.length <= 16_000_000) {
    const n = midA.length;
    const m = midB.length;
    const lcs = new Uint32Array((n + 1) * (m + 1));
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i * (m + 1) + j] =
          midA[i] === midB[j] ? lcs[(i + 1) * (m + 1) + j + 1]! + 1 : Math.max(lcs[(i + 1) * (m + 1) + j]!, lcs[i * (m + 1) + j + 1]!);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && midA[i] === midB[j]) {
        ops.push({ op: ' ', line: midA[i++]! });
        j++;
      } else if (i < n && (j === m || lcs[(i + 1) * (m + 1) + j]! >= lcs[i * (m + 1) + j + 1]!)) {
        ops.push({ op: '-', line: midA[i++]! });
      } else {
        ops.push({ op: '+', line: midB[j++]! });
      }
    }
  } else {
    for (const line of midA) ops.push({ op: '-', line });
    for (const line of midB) ops.push({ op: '+', line });
  }
  for (let i = a.length - tail; i < a.length; i++) ops.push({ op: ' ', line: a[i]! });

  const out = [`--- ${expectedName}`, `+++ ${actualName}`];
  let k = 0;
  let lineA = 1;
  let lineB = 1;
  const advance = (op: Op) => {
    if (op.op !== '+') lineA++;
    if (op.op !== '-') lineB++;
  };
  while (k < ops.length && out.length < MAX_DIFF_LINES) {
    if (ops[k]!.op === ' ') {
      advance(ops[k]!);
      k++;
      continue;
    }
    // A hunk: back up CONTEXT kept lines, run until CONTEXT*2 kept lines in a row.
    const start = Math.max(0, k - CONTEXT);
    for (let c = start; c < k; c++) {
      lineA--;
      lineB--;
    }
    let end = k;
    let kept = 0;
    while (end < ops.length && kept <= CONTEXT * 2) {
      kept = ops[end]!.op === ' ' ? kept + 1 : 0;
      end++;
    }
    end = Math.min(ops.length, end - Math.max(0, kept - CONTEXT));
    const hunk = ops.slice(start, end);
    const countA = hunk.filter((o) => o.op !== '+').length;
    const countB = hunk.filter((o) => o.op !== '-').length;
    out.push(`@@ -${lineA},${countA} +${lineB},${countB} @@`);
    for (const o of hunk) {
      out.push(`${o.op}${o.line}`);
      advance(o);
    }
    k = end;
  }
  if (k < ops.length && ops.slice(k).some((o) => o.op !== ' ')) out.push(`… (diff cut after ${MAX_DIFF_LINES} lines)`);
  return out.join('\n');
}
