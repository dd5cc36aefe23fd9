/**
 * Comparing two plain `pg_dump --schema-only` dumps entry by entry: what a dump holds beyond the
 * schema is dropped, the same entries in another order are the same schema, and a difference
 * is shown as a unified diff.
 */
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
