import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster } from './cluster.js';

/**
 * The schema copy's first oracle is pg_dump itself, and one pg_dump version must read both
 * sides: 15 is the version CI installs (Debian's postgresql-client-15). npm ships servers
 * but no pg_dump, so this one comes from the system.
 */
export const PG_DUMP_MAJOR = 15;

const DEBIAN_PATH = `/usr/lib/postgresql/${PG_DUMP_MAJOR}/bin/pg_dump`;
const INSTALL_HINT =
  `install Debian's postgresql-client-${PG_DUMP_MAJOR} (as root: DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql-client-${PG_DUMP_MAJOR}; ` +
  `.ci/run does this when ${DEBIAN_PATH} is missing), or set PGFERRY_PG_DUMP to a PostgreSQL ${PG_DUMP_MAJOR} pg_dump`;
/** A home without ~/.pgpass or ~/.pg_service.conf, so the developer's own files never change a dump. */
const EMPTY_HOME = mkdtempSync(join(tmpdir(), 'pgferry-pgdump-home-'));

export interface PgDump {
  readonly path: string;
  /** What `pg_dump --version` printed, e.g. "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)". */
  readonly version: string;
}

let found: PgDump | undefined;

/**
 * Finds a PostgreSQL 15 pg_dump: $PGFERRY_PG_DUMP, else Debian's path, else `pg_dump` on PATH
 * when it is version 15. Throws, naming how to install one, when there is none: a missing
 * oracle must fail the suite, never let it pass without comparing anything.
 */
export function findPgDump(): PgDump {
  if (found) return found;
  const fromEnv = process.env.PGFERRY_PG_DUMP;
  if (fromEnv) {
    // Asked for explicitly: a wrong one is an error, not a reason to look elsewhere.
    const version = versionOf(fromEnv);
    if (version === undefined || majorOf(version) !== PG_DUMP_MAJOR) {
      throw new Error(
        `PGFERRY_PG_DUMP=${fromEnv} is not a PostgreSQL ${PG_DUMP_MAJOR} pg_dump (${version ?? 'it does not run'}); ${INSTALL_HINT}`,
      );
    }
    return (found = { path: fromEnv, version });
  }
  const tried: string[] = [];
  for (const candidate of [DEBIAN_PATH, 'pg_dump']) {
    if (candidate.startsWith('/') && !existsSync(candidate)) {
      tried.push(`${candidate}: not there`);
      continue;
    }
    const version = versionOf(candidate);
    if (version !== undefined && majorOf(version) === PG_DUMP_MAJOR) return (found = { path: candidate, version });
    tried.push(`${candidate}: ${version ?? 'not found'}`);
  }
  throw new Error(`no PostgreSQL ${PG_DUMP_MAJOR} pg_dump found (${tried.join('; ')}); ${INSTALL_HINT}`);
}

function versionOf(command: string): string | undefined {
  const result = spawnSync(command, ['--version'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  if (result.status !== 0) return undefined;
  return result.stdout.trim();
}

function majorOf(version: string): number | undefined {
  const match = /\(PostgreSQL\)\s+(\d+)/.exec(version);
  return match ? Number(match[1]) : undefined;
}

/**
 * `pg_dump --schema-only --no-owner --no-privileges` of one database, as text. The password
 * travels in PGPASSWORD, never on the command line where `ps` would show it; the rest of the
 * environment is left out so the caller's PG* variables cannot point the dump elsewhere.
 */
export function dumpSchema(cluster: Cluster, database: string, extraArgs: readonly string[] = []): Promise<string> {
  const pgDump = findPgDump();
  const args = [
    '--schema-only',
    '--no-owner',
    '--no-privileges',
    `--host=${cluster.host}`,
    `--port=${cluster.port}`,
    `--username=${cluster.superuser}`,
    '--no-password',
    ...extraArgs,
    database,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(pgDump.path, args, {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: EMPTY_HOME,
        PGPASSWORD: cluster.password,
        PGSSLMODE: 'disable',
        PGCONNECT_TIMEOUT: '10',
        LC_ALL: 'C',
        TZ: 'UTC',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else
        reject(new Error(`${pgDump.path} of database ${database} on PostgreSQL ${cluster.version} exited ${code ?? signal}:\n${stderr}`));
    });
  });
}

/** One TOC entry of a plain-format dump: its "Name: …; Type: …; Schema: …; Owner: …" line and its SQL. */
export interface DumpEntry {
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
export function parseDump(text: string): DumpEntry[] {
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

/** The same entries, in any order. */
export function sameEntries(a: readonly DumpEntry[], b: readonly DumpEntry[]): boolean {
  const key = (entries: readonly DumpEntry[]) => entries.map((e) => `${e.header}\n${e.body}`).sort();
  return JSON.stringify(key(a)) === JSON.stringify(key(b));
}

/** Entries as text again, one after the other, for a diff. */
export function render(entries: readonly DumpEntry[]): string {
  return entries.map((e) => `-- ${e.header}\n${e.body}`).join('\n\n');
}

/**
 * A unified diff (3 lines of context) of the first differences, cut after MAX_DIFF_LINES. The
 * common head and tail are stripped first, so the longest-common-subsequence table only
 * covers the region that differs.
 */
const MAX_DIFF_LINES = 200;
const CONTEXT = 3;

export function unifiedDiff(expected: string, actual: string, expectedName: string, actualName: string): string {
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

/**
 * pgferry's own objects in a dump, never part of what is compared: its publications (and their
 * tables), its schema-change event triggers, and its schemas (pgferry, the target's state;
 * pgferry_capture, the capture's function on whichever side a sync streams from). The schemas
 * are best left out with --exclude-schema (PGFERRY_SCHEMAS); this drops what pg_dump lists
 * outside them.
 */
export const PGFERRY_SCHEMAS = ['pgferry', 'pgferry_capture'] as const;

export function withoutPgferryObjects(entries: readonly DumpEntry[]): DumpEntry[] {
  return entries.filter((e) => !/^pgferry_\S*( \S+)?; Type: (PUBLICATION|PUBLICATION TABLE|EVENT TRIGGER);/.test(e.header));
}

/** How two dumps compare: equal, equal but for the order of entries pg_dump can't tell apart, or a diff. */
export type DumpComparison =
  { readonly kind: 'equal' } | { readonly kind: 'reordered' } | { readonly kind: 'different'; readonly diff: string };

/**
 * pg_dump orders entries by kind, schema and name, then by dependencies; only entries it cannot
 * tell apart that way fall back to OID order, and OIDs on a target follow pgferry's creation
 * order, not the source's. So the same entries in another order are the same schema; the diff
 * of a difference is in pg_dump's order, which reads best.
 */
export function compareDumps(
  source: readonly DumpEntry[],
  target: readonly DumpEntry[],
  names: { readonly source: string; readonly target: string },
): DumpComparison {
  const expected = render(source);
  const actual = render(target);
  if (expected === actual) return { kind: 'equal' };
  if (sameEntries(source, target)) return { kind: 'reordered' };
  return { kind: 'different', diff: unifiedDiff(expected, actual, names.source, names.target) };
}
