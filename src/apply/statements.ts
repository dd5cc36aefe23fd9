import { UNCHANGED, type ColumnValue, type Tuple } from '../replication/index.js';
import type { RowChange } from './changes.js';
import { GROUP_COLUMN } from './staging.js';
import type { TargetTable } from './target-tables.js';

/**
 * SQL for the apply. Values travel as text, exactly as the source printed them, and are cast
 * to the target column's type inside the statement. Set-based statements take one text array
 * per column (`unnest`), so their text depends only on the table and the columns written and
 * can be prepared once.
 */
export interface Statement {
  readonly text: string;
  readonly values: unknown[];
}

type Value = string | null;

function plain(value: ColumnValue): Value {
  if (value === UNCHANGED) throw new Error('an unchanged TOAST value reached a statement');
  return value;
}

function column(rows: readonly Tuple[], index: number): Value[] {
  return rows.map((row) => plain(row[index]!));
}

function keyColumns(table: TargetTable): readonly number[] {
  if (table.identity.kind !== 'key') throw new Error(`${table.display} has no key`);
  return table.identity.columns;
}

/**
 * `DELETE … USING` the keys, sorted: rows that were there before the batch and are gone after it.
 * Set-based statements walk their rows in key order: the target's key index and heap are then
 * visited page after page instead of at random (a third less time for a pgbench batch).
 */
export function deleteByKeys(table: TargetTable, keys: readonly Tuple[]): Statement {
  const columns = keyColumns(table);
  const params = columns.map((_, i) => `$${i + 1}::text[]`).join(', ');
  const inputs = columns.map((_, i) => `i${i}`).join(', ');
  const typed = columns.map((c, i) => `i${i}::${table.types[c]} AS k${i}`).join(', ');
  const order = columns.map((_, i) => `k${i}`).join(', ');
  const match = columns.map((c, i) => `t.${table.columns[c]} = d.k${i}`).join(' AND ');
  return {
    text: `DELETE FROM ${table.qname} AS t USING (SELECT ${typed} FROM unnest(${params}) AS u(${inputs}) ORDER BY ${order}) AS d WHERE ${match}`,
    values: columns.map((_, i) => keys.map((key) => plain(key[i]!))),
  };
}

/** Columns an update writes: those in `mask`, except the key and GENERATED ALWAYS identity columns. */
function assignedColumns(table: TargetTable, mask: string): number[] {
  const keys = keyColumns(table);
  return table.columns.flatMap((_, i) => (mask[i] === '1' && !keys.includes(i) && !table.alwaysIdentity[i] ? [i] : []));
}

/** `UPDATE … FROM` the rows sorted by key: rows that were there and changed, setting the columns in `mask`. */
export function updateByKeys(table: TargetTable, mask: string, rows: readonly Tuple[]): Statement | undefined {
  const keys = keyColumns(table);
  const set = assignedColumns(table, mask);
  if (set.length === 0) return undefined;
  const sent = [...keys, ...set];
  const params = sent.map((_, i) => `$${i + 1}::text[]`).join(', ');
  const inputs = sent.map((c) => `i${c}`).join(', ');
  const typed = sent.map((c) => `i${c}::${table.types[c]} AS p${c}`).join(', ');
  const order = keys.map((c) => `p${c}`).join(', ');
  const assignments = set.map((c) => `${table.columns[c]} = v.p${c}`).join(', ');
  const match = keys.map((c) => `t.${table.columns[c]} = v.p${c}`).join(' AND ');
  return {
    text: `UPDATE ${table.qname} AS t SET ${assignments} FROM (SELECT ${typed} FROM unnest(${params}) AS u(${inputs}) ORDER BY ${order}) AS v WHERE ${match}`,
    values: sent.map((c) => column(rows, c)),
  };
}

/**
 * Rows among `rows` whose GENERATED ALWAYS identity columns (outside the key) hold another value
 * on the target: an UPDATE cannot set such a column, so each of those rows is deleted and
 * inserted again, with the identity values given and every other column as the target has it
 * (the UPDATE before this one already wrote them). Undefined when the table has no such column.
 */
export function moveIdentityRows(table: TargetTable, rows: readonly Tuple[]): Statement | undefined {
  const keys = keyColumns(table);
  const identity = table.columns.flatMap((_, i) => (table.alwaysIdentity[i] && !keys.includes(i) ? [i] : []));
  if (identity.length === 0 || rows.length === 0) return undefined;
  const sent = [...keys, ...identity];
  const params = sent.map((_, i) => `$${i + 1}::text[]`).join(', ');
  const inputs = sent.map((c) => `i${c}`).join(', ');
  const typed = sent.map((c) => `i${c}::${table.types[c]} AS p${c}`).join(', ');
  const match = keys.map((c) => `t.${table.columns[c]} = v.p${c}`).join(' AND ');
  const differs = identity.map((c) => `t.${table.columns[c]} IS DISTINCT FROM v.p${c}`).join(' OR ');
  const fromSource = new Map(identity.map((c) => [table.columns[c]!, `v.p${c}`]));
  const returning = table.writable.map((column) => `${fromSource.get(column) ?? `t.${column}`} AS ${column}`).join(', ');
  return {
    text:
      `WITH v AS (SELECT ${typed} FROM unnest(${params}) AS u(${inputs})), ` +
      `moved AS (DELETE FROM ${table.qname} AS t USING v WHERE ${match} AND (${differs}) RETURNING ${returning}) ` +
      `INSERT INTO ${table.qname} (${table.writable.join(', ')}) OVERRIDING SYSTEM VALUE SELECT ${table.writable.join(', ')} FROM moved`,
    values: sent.map((c) => column(rows, c)),
  };
}

/** `INSERT … SELECT FROM unnest(rows)`: a few new rows in one round trip (COPY takes two). */
export function insertRows(table: TargetTable, rows: readonly Tuple[]): Statement {
  if (table.columns.length === 0) {
    // Rows that carry no column (a table of none, or of generated ones only, which are not sent):
    // there are only so many of them.
    return { text: `INSERT INTO ${table.qname} SELECT FROM pg_catalog.generate_series(1, $1::int)`, values: [rows.length] };
  }
  const params = table.columns.map((_, i) => `$${i + 1}::text[]`).join(', ');
  const aliases = table.columns.map((_, i) => `p${i}`).join(', ');
  const casts = table.columns.map((_, i) => `p${i}::${table.types[i]}`).join(', ');
  return {
    text: `INSERT INTO ${table.qname} (${table.columns.join(', ')})${overriding(table)} SELECT ${casts} FROM unnest(${params}) AS v(${aliases})`,
    values: table.columns.map((_, i) => column(rows, i)),
  };
}

/** A `COPY … FROM STDIN` in text format and its data, in pieces of about COPY_PIECE characters. */
export interface CopyIn {
  readonly text: string;
  readonly data: readonly string[];
}

const COPY_PIECE = 256 * 1024;
const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_SPECIALS = /[\\\t\n\r]/g;
const COPY_ESCAPES: Readonly<Record<string, string>> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** One value in COPY's text format: the source's own text, with COPY's four special characters escaped. */
function copyValue(value: ColumnValue): string {
  if (value === null) return '\\N';
  if (value === UNCHANGED) throw new Error('an unchanged TOAST value reached a statement');
  return COPY_SPECIAL.test(value) ? value.replace(COPY_SPECIALS, (c) => COPY_ESCAPES[c]!) : value;
}

/**
 * `COPY … FROM STDIN`: whole new rows. Cheaper than INSERT … SELECT FROM unnest on both sides:
 * no text arrays to build and parse, and the server inserts in bulk. COPY writes the values
 * given into GENERATED ALWAYS identity columns as INSERT does with OVERRIDING SYSTEM VALUE,
 * computes generated columns and routes rows to partitions.
 */
export function copyRows(table: TargetTable, rows: readonly Tuple[]): CopyIn {
  const data: string[] = [];
  let piece = '';
  for (const row of rows) {
    let line = '';
    for (let i = 0; i < row.length; i++) line += (i === 0 ? '' : '\t') + copyValue(row[i]!);
    piece += line + '\n';
    if (piece.length >= COPY_PIECE) {
      data.push(piece);
      piece = '';
    }
  }
  if (piece !== '') data.push(piece);
  // COPY names no column for rows that carry none (an empty list is a syntax error): one empty line each.
  const columns = table.columns.length > 0 ? ` (${table.columns.join(', ')})` : '';
  return { text: `COPY ${table.qname}${columns} FROM STDIN`, data };
}

/**
 * The rows a batch updates and deletes in one table, as COPY data for its staging table: the
 * group column first (`firstGroup` for deleted keys, then one group per set of updated
 * columns), then the table's columns (\\N where a group has no value: a deleted row's non-key
 * columns, a column an update leaves as it is).
 */
export function stageRows(
  table: TargetTable,
  staging: string,
  firstGroup: number,
  deletes: readonly Tuple[],
  updates: ReadonlyArray<readonly Tuple[]>,
): CopyIn {
  const keys = keyColumns(table);
  const data: string[] = [];
  let piece = '';
  const add = (line: string) => {
    piece += line + '\n';
    if (piece.length >= COPY_PIECE) {
      data.push(piece);
      piece = '';
    }
  };
  if (deletes.length > 0) {
    const group = String(firstGroup);
    const positions = table.columns.map((_, c) => keys.indexOf(c));
    for (const key of deletes) {
      let line = group;
      for (const position of positions) line += '\t' + (position < 0 ? '\\N' : copyValue(key[position]!));
      add(line);
    }
  }
  updates.forEach((rows, index) => {
    const group = String(firstGroup + 1 + index);
    for (const row of rows) {
      let line = group;
      for (const value of row) line += '\t' + (value === UNCHANGED ? '\\N' : copyValue(value));
      add(line);
    }
  });
  if (piece !== '') data.push(piece);
  return { text: `COPY ${staging} (${GROUP_COLUMN}, ${table.columns.join(', ')}) FROM STDIN`, data };
}

/** `DELETE … USING` the staged keys of one group, in key order. */
export function deleteStaged(table: TargetTable, staging: string, group: number): Statement {
  const keys = keyColumns(table);
  const order = keys.map((c) => table.columns[c]).join(', ');
  const match = keys.map((c) => `t.${table.columns[c]} = d.${table.columns[c]}`).join(' AND ');
  return {
    text: `DELETE FROM ${table.qname} AS t USING (SELECT ${order} FROM ${staging} WHERE ${GROUP_COLUMN} = $1 ORDER BY ${order}) AS d WHERE ${match}`,
    values: [group],
  };
}

/** `UPDATE … FROM` the staged rows of one group, in key order, setting the columns in `mask`. */
export function updateStaged(table: TargetTable, staging: string, mask: string, group: number): Statement | undefined {
  const keys = keyColumns(table);
  const set = assignedColumns(table, mask);
  if (set.length === 0) return undefined;
  const order = keys.map((c) => table.columns[c]).join(', ');
  const assignments = set.map((c) => `${table.columns[c]} = v.${table.columns[c]}`).join(', ');
  const match = keys.map((c) => `t.${table.columns[c]} = v.${table.columns[c]}`).join(' AND ');
  return {
    text: `UPDATE ${table.qname} AS t SET ${assignments} FROM (SELECT * FROM ${staging} WHERE ${GROUP_COLUMN} = $1 ORDER BY ${order}) AS v WHERE ${match}`,
    values: [group],
  };
}

/** The source's identity values are the rows' own: GENERATED ALWAYS columns take them only when told so. */
function overriding(table: TargetTable): string {
  return table.alwaysIdentity.includes(true) ? ' OVERRIDING SYSTEM VALUE' : '';
}

/** One change as one statement, in source order: the replay after a batch failed, and keyless tables. */
export function singleChange(change: RowChange): Statement {
  const table = change.table;
  const values: Value[] = [];
  const param = (value: ColumnValue, index: number) => {
    values.push(plain(value));
    return `$${values.length}::${table.types[index]}`;
  };
  switch (change.kind) {
    case 'insert': {
      if (table.columns.length === 0) return { text: `INSERT INTO ${table.qname} DEFAULT VALUES`, values };
      const casts = change.newRow.map((value, i) => param(value, i)).join(', ');
      return { text: `INSERT INTO ${table.qname} (${table.columns.join(', ')})${overriding(table)} VALUES (${casts})`, values };
    }
    case 'update': {
      const old = change.oldRow ?? change.newRow;
      if (table.alwaysIdentity.includes(true)) {
        // An UPDATE cannot set a GENERATED ALWAYS identity column: the row is moved instead,
        // with the new values sent and the target's own where a TOASTed value is unchanged.
        const match = rowMatch(table, old, param);
        const sent = new Map(change.newRow.flatMap((value, i) => (value === UNCHANGED ? [] : [[table.columns[i]!, i] as const])));
        const returning = table.writable
          .map((column) => {
            const index = sent.get(column);
            return `${index === undefined ? `t.${column}` : param(change.newRow[index]!, index)} AS ${column}`;
          })
          .join(', ');
        return {
          text:
            `WITH moved AS (DELETE FROM ${table.qname} AS t WHERE ${match} RETURNING ${returning}) ` +
            `INSERT INTO ${table.qname} (${table.writable.join(', ')}) OVERRIDING SYSTEM VALUE SELECT ${table.writable.join(', ')} FROM moved`,
          values,
        };
      }
      // A FULL identity sends the whole old row, so values left unchanged can be taken from it.
      const assignments = change.newRow.flatMap((value, i) => (value === UNCHANGED ? [] : [`${table.columns[i]} = ${param(value, i)}`]));
      if (assignments.length === 0) return { text: 'SELECT 1', values: [] };
      return { text: `UPDATE ${table.qname} AS t SET ${assignments.join(', ')} WHERE ${rowMatch(table, old, param)}`, values };
    }
    case 'delete':
      return { text: `DELETE FROM ${table.qname} AS t WHERE ${rowMatch(table, change.oldRow, param)}`, values };
  }
}

/**
 * Which row a change means: by key; or, under REPLICA IDENTITY FULL, the first row equal to the
 * whole old row (duplicates are interchangeable, and exactly one of them is changed). Equality
 * is by the target's text form, as some types (json, point, xml) have no equality operator.
 */
function rowMatch(table: TargetTable, old: Tuple, param: (value: ColumnValue, index: number) => string): string {
  if (table.identity.kind === 'key') {
    return table.identity.columns.map((c) => `t.${table.columns[c]} = ${param(old[c]!, c)}`).join(' AND ');
  }
  const equal = old
    .map((value, i) => (value === UNCHANGED ? undefined : `s.${table.columns[i]}::text IS NOT DISTINCT FROM (${param(value, i)})::text`))
    .filter((condition): condition is string => condition !== undefined)
    .join(' AND ');
  const where = equal === '' ? 'true' : equal;
  // ctid alone is not unique in a partitioned table: each partition has its own.
  return table.partitioned
    ? `(t.tableoid, t.ctid) = (SELECT s.tableoid, s.ctid FROM ${table.qname} AS s WHERE ${where} LIMIT 1)`
    : `t.ctid = (SELECT s.ctid FROM ${table.qname} AS s WHERE ${where} LIMIT 1)`;
}

/** The rows of key ranges (a TRUNCATE reaching only the ranges whose copies are older than it). */
export function deleteKeyRanges(
  table: TargetTable,
  column: string,
  ranges: ReadonlyArray<{ readonly lower: bigint | undefined; readonly upper: bigint | undefined }>,
): Statement {
  const each = ranges.map(
    (r) =>
      [r.lower === undefined ? '' : `${column} >= ${r.lower}`, r.upper === undefined ? '' : `${column} < ${r.upper}`]
        .filter((p) => p !== '')
        .join(' AND ') || 'true',
  );
  return { text: `DELETE FROM ONLY ${table.qname} WHERE ${each.map((c) => `(${c})`).join(' OR ')}`, values: [] };
}

export function truncate(tables: readonly TargetTable[], cascade: boolean, restartIdentity: boolean): Statement {
  // ONLY: the source lists every table it truncated, children included; a partitioned table has no rows of its own to truncate ONLY.
  const names = tables.map((t) => (t.partitioned ? t.qname : `ONLY ${t.qname}`)).join(', ');
  return { text: `TRUNCATE ${names}${restartIdentity ? ' RESTART IDENTITY' : ''}${cascade ? ' CASCADE' : ''}`, values: [] };
}
