/**
 * Two plain-format pg_dump outputs compared entry by entry: what legitimately differs between
 * a source and its target (a newer server spelling the same object another way) is normalised,
 * each rule naming why; anything else is a difference, shown as a unified diff.
 */
import { dumpSchema } from './pg-dump.js';
import type { Cluster } from './cluster.js';

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

/**
 * What legitimately differs between a source and the target for the same objects. Each rule
 * names the server behaviour that causes it; nothing else is touched. The same rules run on
 * both dumps; they rewrite how an entry is spelled, and drop only the one entry that carries
 * nothing but an owner, so no object can disappear from the comparison.
 */
export function normalise(entries: DumpEntry[], sourceMajor: number, options: { readonly owners?: boolean } = {}): DumpEntry[] {
  return entries
    .filter((e) => !isPgferryMachinery(e))
    .filter((e) => options.owners === true || !isPublicSchemaOwnership(e))
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
 * pgferry's own objects outside its schemas: the publication (and its tables), the event
 * triggers that capture schema changes, and the TRUNCATE triggers of a PostgreSQL 10 source.
 * They exist only while a migration runs; they are not the application's schema.
 */
function isPgferryMachinery(entry: DumpEntry): boolean {
  return (
    /^"?pgferry_[^;]*; Type: (PUBLICATION|PUBLICATION TABLE|PUBLICATION TABLES IN SCHEMA|EVENT TRIGGER|TRIGGER);/.test(entry.header) ||
    /^[^;]* "?pgferry_truncate_[^;]*; Type: TRIGGER;/.test(entry.header)
  );
}

/**
 * pg_dump 15 writes an entry for the public schema whose only content, under --no-owner, is
 * the comment "*not* creating schema, since initdb creates it": it is there to carry an
 * ALTER SCHEMA public OWNER TO, and is left out when public is owned by pg_database_owner,
 * the initdb default since PostgreSQL 15. Before 15 initdb made the bootstrap superuser its
 * owner, so a 13 source always has the entry; pagila (itself a dump) sets the owner to
 * postgres, so a 15 source has it too, and the copy gives the target's public that owner.
 * Without owners in the comparison (--no-owner), an entry that says nothing but who owns public
 * is dropped on both sides. A COMMENT ON SCHEMA public is a separate entry and still compared.
 */
function isPublicSchemaOwnership(entry: DumpEntry): boolean {
  return entry.header === 'public; Type: SCHEMA; Schema: -; Owner: -' && entry.body.trim() === '';
}

export function sameEntries(a: readonly DumpEntry[], b: readonly DumpEntry[]): boolean {
  const key = (entries: readonly DumpEntry[]) => entries.map((e) => `${e.header}\n${e.body}`).sort();
  return JSON.stringify(key(a)) === JSON.stringify(key(b));
}

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

/** What schemaDifference compares: a database on a server, and how to name it in a diff. */
export interface DumpSide {
  readonly cluster: Cluster;
  readonly database: string;
}

/**
 * pg_dump --schema-only of both sides (pgferry's own schemas left out), normalised; undefined
 * when they hold the same entries (in any order: OIDs on the target follow pgferry's creation
 * order, and pg_dump falls back to OID order for entries it cannot otherwise tell apart),
 * else a unified diff of the first differences. With `owners`, ownership and privileges are
 * compared too (the roles must exist on both servers).
 */
export async function schemaDifference(
  source: DumpSide,
  target: DumpSide,
  options: { readonly owners?: boolean } = {},
): Promise<string | undefined> {
  const extra = ['--exclude-schema=pgferry', '--exclude-schema=pgferry_capture'];
  const [sourceDump, targetDump] = await Promise.all([
    dumpSchema(source.cluster, source.database, extra, options),
    dumpSchema(target.cluster, target.database, extra, options),
  ]);
  const sourceEntries = normalise(parseDump(sourceDump), source.cluster.version, options);
  const targetEntries = normalise(parseDump(targetDump), source.cluster.version, options);
  if (sourceEntries.length === 0) return `the source dump of ${source.database} holds no entries`;
  const expected = render(sourceEntries);
  const actual = render(targetEntries);
  if (expected === actual || sameEntries(sourceEntries, targetEntries)) return undefined;
  return unifiedDiff(
    expected,
    actual,
    `source (PostgreSQL ${source.cluster.version}) ${source.database}, normalised`,
    `target (PostgreSQL ${target.cluster.version}) ${target.database}, normalised`,
  );
}
