/**
 * Docs that stay true (issue 34): every shell block of README.md and docs/ is run, command by
 * command, against real servers, as a reader would type it. The hosts a page names (old-db,
 * new-db, paths on a server) are replaced by this machine's test servers and directories: each
 * replacement must find its text in the page, so a page that changes what it shows fails here
 * until this test follows. `pgferry sync` without --until-caught-up is what a reader leaves
 * running in another terminal: it runs in the background until the cut-over stops it, or until
 * a cleanup, which a reader runs after stopping it (Ctrl-C: SIGINT). Every command must exit 0.
 * A shell block no scenario below runs fails the first test: add it to one.
 *
 * PGFERRY_DOCS_OUTPUT=<dir> writes what each command printed to <dir>/<page>.txt: the README's
 * tour shows that output, trimmed.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import {
  runPgferry,
  runPgferryAsServerUser,
  spawnPgferry,
  startClusters,
  startWriter,
  useClusterPair,
  WRITER_SCHEMA_SQL,
  type CliResult,
  type Cluster,
  type PgferryProcess,
  type Writer,
} from '../harness/index.js';
import { spawnPgferryAsServerUser } from '../harness/cli.js';
import { freePort } from '../harness/cluster.js';
import { physicalBinDir, serverUserDirectory, stopServer } from '../harness/physical.js';
import { commandLines, shellBlocks, type ShellBlock } from './docs-shell.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const QUICK_START = 'npm ci && npm run demo';
const SAMPLE_SQL = readFileSync(join(root, 'demo', 'sample.sql'), 'utf8');
/** The sample shop, ready to migrate (check's fix applied), with the writer's tables. */
const SHOP_SQL = `${SAMPLE_SQL}\nALTER TABLE public.audit_log REPLICA IDENTITY FULL;\n${WRITER_SCHEMA_SQL}`;
const COMMAND_TIMEOUT_MS = 300_000;
const STREAMING_TIMEOUT_MS = 120_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function markdownFiles(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.md') ? [join(dir, e.name)] : [],
    );
  return [join(root, 'README.md'), ...walk(join(root, 'docs'))].map((f) => relative(root, f));
}

/** The README's quick-start block is run by test/integration/demo.test.ts and checked by test/unit/readme.test.ts. */
function isQuickStart(block: ShellBlock): boolean {
  return block.text.includes(QUICK_START);
}

function blocksOf(file: string): ShellBlock[] {
  return shellBlocks(readFileSync(join(root, file), 'utf8')).filter((b) => !isQuickStart(b));
}

/** Pages whose blocks the scenarios below run; runbooks/README.md is the environment every runbook starts from. */
const SCENARIOS = [
  'README.md',
  'docs/runbooks/README.md',
  'docs/runbooks/new-host.md',
  'docs/runbooks/one-schema-at-a-time.md',
  'docs/runbooks/citus.md',
  'docs/runbooks/physical.md',
];

interface Scenario {
  /** Pages whose blocks run in order, as one session of one reader. */
  readonly pages: readonly string[];
  /** [text in the page, what replaces it here]. */
  readonly replace: ReadonlyArray<readonly [string, string]>;
  readonly asServerUser?: boolean;
  /** The application: writes to `url` from before the first sync, moved to `movedTo` at the first cut-over. */
  readonly writer?: { readonly url: string; readonly movedTo: string };
}

interface Transcript {
  readonly command: string;
  readonly output: string;
}

/** Runs a scenario's pages and returns what each command printed. */
async function runPages(scenario: Scenario): Promise<Transcript[]> {
  const blocks = scenario.pages.flatMap((page) => blocksOf(page).map((b) => ({ page, ...b })));
  for (const [text] of scenario.replace) {
    assert.ok(
      blocks.some((b) => b.text.includes(text)),
      `"${text}" is no longer in ${scenario.pages.join(', ')}: update the docs test's replacements`,
    );
  }
  const env: Record<string, string> = {};
  const transcript: Transcript[] = [];
  const background: Array<{ command: string; run: PgferryProcess; target: string }> = [];
  const run = scenario.asServerUser ? runPgferryAsServerUser : runPgferry;
  const spawnIt = scenario.asServerUser ? spawnPgferryAsServerUser : spawnPgferry;
  let writer: Writer | undefined;
  let movedTo: string | undefined;

  const stopBackground = async (why: string) => {
    for (const b of background.splice(0)) {
      if (b.run.child.exitCode === null) b.run.child.kill('SIGINT');
      const code = await b.run.exited();
      transcript.push({ command: `${b.command}   (${why})`, output: b.run.output() });
      assert.equal(code, 0, `${b.command} did not stop cleanly (${why}):\n${b.run.output()}`);
    }
  };

  try {
    for (const block of blocks) {
      let text = block.text;
      for (const [from, to] of scenario.replace) text = text.split(from).join(to);
      // Lines are split as they come: an export changes what the next lines expand.
      for (const raw of text.split(/(?<!\\)\n/)) {
        for (const line of commandLines(raw, env)) {
          if (line.kind === 'export') {
            env[line.name] = line.value;
            continue;
          }
          const where = `${block.page}:${block.line}: ${line.words.join(' ')}`;
          assert.equal(line.words[0], 'pgferry', `${where}: the docs test runs pgferry commands only`);
          const args = line.words.slice(1);
          const shown = `pgferry ${args.join(' ')}`;
          const target = valueOf(args, '--target') ?? env.PGFERRY_TARGET ?? '';
          if (args[0] === 'sync' && !args.includes('--until-caught-up') && !args.includes('--physical')) {
            if (scenario.writer && !writer) {
              writer = startWriter(scenario.writer.url, { pauseMs: 5 });
              await writer.waitForCommits(50, 'source');
            }
            const sync = spawnIt(args, env);
            background.push({ command: shown, run: sync, target });
            await untilStreaming(target, sync, where);
            continue;
          }
          if (args[0] === 'cleanup') await stopBackground('stopped with Ctrl-C before the cleanup');
          const result: CliResult = await run(args, env, COMMAND_TIMEOUT_MS);
          transcript.push({ command: shown, output: result.stdout + result.stderr });
          assert.equal(result.code, 0, `${where} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
          if (args[0] === 'cutover') {
            // The cut-over stops the sync that fed this target; that sync ends with 0.
            for (const b of background.filter((x) => x.target === target)) {
              const code = await b.run.exited();
              transcript.push({ command: `${b.command}   (stopped by the cut-over)`, output: b.run.output() });
              assert.equal(code, 0, `${b.command} after the cut-over:\n${b.run.output()}`);
              background.splice(background.indexOf(b), 1);
            }
            if (writer && scenario.writer && !movedTo) {
              movedTo = scenario.writer.movedTo;
              writer.switchTo(movedTo);
              await writer.waitForCommits(20, 'target');
            }
          }
        }
      }
    }
    await stopBackground('still running at the end of the page: stopped with Ctrl-C');
  } finally {
    for (const b of background) if (b.run.child.exitCode === null) b.run.child.kill('SIGKILL');
    if (writer) {
      const report = await writer.stop();
      assert.deepEqual(report.unexpectedErrors, [], 'the application met errors other than the freeze');
      if (movedTo)
        await assertOnTarget(
          movedTo,
          report.committed.flatMap((c) => c.ledgerIds),
        );
    }
    if (process.env.PGFERRY_DOCS_OUTPUT) {
      mkdirSync(process.env.PGFERRY_DOCS_OUTPUT, { recursive: true });
      const name = scenario.pages.at(-1)!.replace(/\//g, '_');
      writeFileSync(
        join(process.env.PGFERRY_DOCS_OUTPUT, `${basename(name, '.md')}.txt`),
        transcript.map((t) => `$ ${t.command}\n${t.output}`).join('\n'),
      );
    }
  }
  return transcript;
}

function valueOf(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

async function query<T>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** A sync left running streams once its target records phase 'streaming' and a measured lag. */
async function untilStreaming(target: string, sync: PgferryProcess, where: string): Promise<void> {
  const deadline = Date.now() + STREAMING_TIMEOUT_MS;
  for (;;) {
    const rows = await query<{ ok: boolean }>(
      target,
      `SELECT phase = 'streaming' AND heartbeat_at IS NOT NULL AND lag_seconds IS NOT NULL AS ok FROM pgferry.sync`,
    ).catch(() => []);
    if (rows[0]?.ok === true) return;
    if (sync.child.exitCode !== null) assert.fail(`${where}: sync exited before it streamed:\n${sync.output()}`);
    if (Date.now() > deadline) assert.fail(`${where}: sync did not stream within ${STREAMING_TIMEOUT_MS / 1000} s:\n${sync.output()}`);
    await sleep(250);
  }
}

/** Every ledger row the application saw committed is where it writes now. */
async function assertOnTarget(url: string, ids: readonly string[]): Promise<void> {
  const [row] = await query<{ n: number }>(url, `SELECT count(*)::int AS n FROM ledger WHERE id = ANY($1::bigint[])`, [ids]);
  assert.equal(row?.n, ids.length, 'a write the application saw committed is missing');
}

describe('the shell blocks of README.md and docs/', () => {
  it('every one belongs to a scenario this test runs', () => {
    const withBlocks = markdownFiles().filter((f) => blocksOf(f).length > 0);
    assert.deepEqual(
      withBlocks.filter((f) => !SCENARIOS.includes(f)),
      [],
      'these pages have shell blocks no scenario runs: add them to test/integration/docs.test.ts',
    );
    assert.ok(
      shellBlocks(readFileSync(join(root, 'README.md'), 'utf8')).some(isQuickStart),
      `README.md has no quick-start block with "${QUICK_START}"`,
    );
  });
});

describe('the documented commands, logical, PostgreSQL 17 → 18', () => {
  const pair = useClusterPair(17, 18);

  /** A shop on the source, ready to migrate, and an empty database of the same name on the target. */
  async function shop(prefix: string, extra = ''): Promise<{ source: string; target: string }> {
    const db = await pair.source.createDatabase({ prefix });
    await pair.target.sql('postgres', `CREATE DATABASE ${db}`);
    await pair.source.sql(db, `${SHOP_SQL}\n${extra}`);
    return { source: pair.source.url(db), target: pair.target.url(db) };
  }

  const runbookEnv = (urls: { source: string; target: string }) =>
    [
      ['postgres://migrator@old-db:5432/shop?sslmode=verify-full', urls.source],
      ['postgres://migrator@new-db:5432/shop?sslmode=verify-full', urls.target],
    ] as const;

  it('README.md: the tour (check, sync, status, cutover, cleanup) under a writer', async () => {
    const urls = await shop('tour');
    await runPages({
      pages: ['README.md'],
      replace: [
        ['postgres://migrator@old-db:5432/shop', urls.source],
        ['postgres://migrator@new-db:5432/shop', urls.target],
      ],
      writer: { url: urls.source, movedTo: urls.target },
    });
  });

  it('docs/runbooks/new-host.md: check, sync, verify, cutover, the way back, cleanup, under a writer', async () => {
    const urls = await shop('newhost');
    await runPages({
      pages: ['docs/runbooks/README.md', 'docs/runbooks/new-host.md'],
      replace: [...runbookEnv(urls), ['--listen 9187', `--listen ${await freePort()}`]],
      writer: { url: urls.source, movedTo: urls.target },
    });
  });

  it('docs/runbooks/one-schema-at-a-time.md: one schema synced and cut over', async () => {
    const urls = await shop(
      'billing',
      `CREATE SCHEMA billing;
       CREATE TABLE billing.invoices (id bigserial PRIMARY KEY, customer_id int NOT NULL, amount numeric(10,2) NOT NULL);
       INSERT INTO billing.invoices (customer_id, amount) SELECT g % 100, g FROM generate_series(1, 1000) g;`,
    );
    await runPages({ pages: ['docs/runbooks/README.md', 'docs/runbooks/one-schema-at-a-time.md'], replace: runbookEnv(urls) });
    const [copied] = await query<{ n: number }>(urls.target, `SELECT count(*)::int AS n FROM billing.invoices`);
    assert.equal(copied?.n, 1000);
    const [others] = await query<{ n: number }>(
      urls.target,
      `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public' AND tablename = 'orders'`,
    );
    assert.equal(others?.n, 0, 'a table outside the schema was moved');
  });

  it('docs/runbooks/citus.md: the command lines, with an ordinary setup file (no Citus server here)', async () => {
    const urls = await shop('citus');
    const setup = join(mkdtempIn(), 'distribute.sql');
    writeFileSync(setup, `COMMENT ON TABLE public.customers IS 'distributed here on a Citus coordinator';\n`);
    await runPages({
      pages: ['docs/runbooks/README.md', 'docs/runbooks/citus.md'],
      replace: [
        ...runbookEnv(urls),
        ['--target-setup-sql distribute.sql', `--target-setup-sql ${setup}`],
        ['--listen 9187', `--listen ${await freePort()}`],
      ],
    });
    const [comment] = await query<{ c: string | null }>(urls.target, `SELECT obj_description('public.customers'::regclass) AS c`);
    assert.equal(comment?.c, 'distributed here on a Citus coordinator', 'the setup file ran on the target');
  });
});

/** A scratch directory, removed when the test process ends. */
function mkdtempIn(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgferry-docs-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('the documented commands, physical, PostgreSQL 15', () => {
  const MAJOR = 15;
  let source: Cluster;
  let pgBin: string;
  let pgdata: string;
  let standbyPort: number;

  before(async () => {
    [source] = await startClusters([{ version: MAJOR }]);
    pgBin = physicalBinDir(MAJOR);
    pgdata = join(serverUserDirectory('pgferry-docs-physical-'), 'main');
    standbyPort = await freePort();
  });
  after(async () => {
    try {
      stopServer(pgBin, pgdata, 'immediate');
    } catch {
      // Not started (a step before it failed): nothing to stop.
    }
    await source?.stop();
  });

  it('docs/runbooks/physical.md: check, sync, cutover, cleanup, as the server account', async () => {
    const db = await source.createDatabase({ prefix: 'phys' });
    await source.sql(db, SHOP_SQL);
    await runPages({
      pages: ['docs/runbooks/physical.md'],
      asServerUser: true,
      replace: [
        ['postgres://postgres@old-db:5432/postgres?sslmode=verify-full', source.url('postgres')],
        ['postgres://postgres@new-db:5432/postgres', source.url('postgres', { port: standbyPort })],
        ['/usr/lib/postgresql/15/bin', pgBin],
        ['/var/lib/postgresql/15/main', pgdata],
        ['--port 5432', `--port ${standbyPort}`],
      ],
    });
    const [orders] = await query<{ n: number }>(source.url(db, { port: standbyPort }), `SELECT count(*)::int AS n FROM orders`);
    assert.equal(orders?.n, 10000, 'the promoted copy holds the rows');
  });
});
