import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RowChange } from '../../src/apply/changes.js';
import {
  copyRows,
  deleteByKeys,
  insertRows,
  moveIdentityRows,
  singleChange,
  truncate,
  updateByKeys,
  updateStaged,
  type Statement,
} from '../../src/apply/statements.js';
import type { TargetTable } from '../../src/apply/target-tables.js';
import { UNCHANGED, type Tuple } from '../../src/replication/index.js';

interface TableSpec {
  readonly name?: string;
  /** Unquoted column names, in the order the source sends them. */
  readonly columns: readonly string[];
  readonly types?: readonly string[];
  /** Positions of the key columns, in key order; 'full' for REPLICA IDENTITY FULL without a usable key. */
  readonly key: readonly number[] | 'full';
  /** Positions of GENERATED ALWAYS AS IDENTITY columns. */
  readonly alwaysIdentity?: readonly number[];
  readonly partitioned?: boolean;
  /** Unquoted target columns that can be written; defaults to `columns`. */
  readonly writable?: readonly string[];
}

const quote = (name: string): string => `"${name}"`;

function table(spec: TableSpec): TargetTable {
  const name = spec.name ?? 't';
  const always = new Set(spec.alwaysIdentity ?? []);
  return {
    relationId: 1,
    qname: `"public".${quote(name)}`,
    display: `public.${name}`,
    partitioned: spec.partitioned ?? false,
    columns: spec.columns.map(quote),
    types: spec.types ?? spec.columns.map(() => 'text'),
    writable: (spec.writable ?? spec.columns).map(quote),
    alwaysIdentity: spec.columns.map((_, i) => always.has(i)),
    identity: spec.key === 'full' ? { kind: 'full' } : { kind: 'key', columns: spec.key },
  };
}

const origin = { xid: 7, commitLsn: 100n };
const insert = (t: TargetTable, newRow: Tuple): RowChange => ({ kind: 'insert', table: t, newRow, origin });
const update = (t: TargetTable, oldRow: Tuple | undefined, newRow: Tuple): RowChange => ({
  kind: 'update',
  table: t,
  oldRow,
  newRow,
  origin,
});
const remove = (t: TargetTable, oldRow: Tuple): RowChange => ({ kind: 'delete', table: t, oldRow, origin });

/** The parameter numbers a statement's text uses, sorted, each once. */
function placeholders(text: string): number[] {
  return [...new Set([...text.matchAll(/\$(\d+)/g)].map((m) => Number(m[1])))].sort((a, b) => a - b);
}

/** Every value is a parameter of the text and every parameter has a value: $1 … $n, n = values.length. */
function assertParametersMatch(statement: Statement): void {
  assert.deepEqual(
    placeholders(statement.text),
    statement.values.map((_, i) => i + 1),
    `parameters of: ${statement.text}`,
  );
}

/** Same elements, any order (the order of parameters is the statement's own business). */
function assertSameMembers(actual: readonly unknown[], expected: readonly unknown[]): void {
  const sorted = (list: readonly unknown[]) => list.map((v) => JSON.stringify(v)).sort();
  assert.deepEqual(sorted(actual), sorted(expected));
}

/** The value bound to the parameter the text names right after `marker` (e.g. the value a column is set to). */
function valueAfter(statement: Statement, marker: string): unknown {
  const at = statement.text.indexOf(marker);
  assert.ok(at >= 0, `"${marker}" in: ${statement.text}`);
  const match = /\$(\d+)/.exec(statement.text.slice(at + marker.length));
  assert.ok(match, `a parameter after "${marker}" in: ${statement.text}`);
  return statement.values[Number(match[1]) - 1];
}

/** The SET list of an UPDATE. */
function setClause(text: string): string {
  const match = / SET (.*?) (FROM|WHERE) /.exec(text);
  assert.ok(match, `a SET clause in: ${text}`);
  return match[1]!;
}

/** (id key, ident GENERATED ALWAYS AS IDENTITY, a, b), and a column "note" only the target has. */
const withIdentity = table({
  name: 'ident',
  columns: ['id', 'ident', 'a', 'b'],
  types: ['integer', 'bigint', 'text', 'jsonb'],
  key: [0],
  alwaysIdentity: [1],
  writable: ['id', 'ident', 'a', 'b', 'note'],
});
/** (k1, v, k2) keyed by (k2, k1): key order differs from column order. */
const composite = table({ name: 'comp', columns: ['k1', 'v', 'k2'], types: ['integer', 'text', 'text'], key: [2, 0] });
/** (id, a, b) keyed by id, no identity columns. */
const plainKeyed = table({ name: 'plain', columns: ['id', 'a', 'b'], types: ['integer', 'text', 'text'], key: [0] });
/** (x, y, z) under REPLICA IDENTITY FULL with no key. */
const keyless = table({ name: 'bag', columns: ['x', 'y', 'z'], types: ['integer', 'json', 'text'], key: 'full' });
const keylessPartitioned = table({ name: 'pbag', columns: ['x', 'y', 'z'], key: 'full', partitioned: true });

/** A set-based statement: every parameter a text array, one element per row. */
function assertTextArrays(statement: Statement, rows: number): void {
  assertParametersMatch(statement);
  assert.doesNotMatch(statement.text, /\$\d+(?!\d|::text\[\])/, `every parameter is a text array: ${statement.text}`);
  for (const value of statement.values) {
    assert.ok(Array.isArray(value), 'one array per column');
    assert.equal(value.length, rows, 'one element per row');
  }
}

describe('set-based apply statements', () => {
  it('take one text array per column, and their text depends only on the table and mask, not on the rows (prepared once)', () => {
    const few: Tuple[] = [['1', '10', 'a', '{}']];
    const more: Tuple[] = [
      ['3', '30', 'c', null],
      ['2', '20', null, '[1]'],
      ['9', '90', "it's", '"x"'],
    ];
    const build = (rows: readonly Tuple[]) => [
      deleteByKeys(
        withIdentity,
        rows.map((r) => [r[0]!]),
      ),
      updateByKeys(withIdentity, '1111', rows)!,
      updateByKeys(withIdentity, '1010', rows)!,
      moveIdentityRows(withIdentity, rows)!,
      insertRows(withIdentity, rows),
    ];
    const a = build(few);
    const b = build(more);
    a.forEach((statement, i) => {
      const other = b[i]!;
      assert.equal(statement.text, other.text, 'the same text for other rows');
      assert.notDeepEqual(statement.values, other.values);
      assertTextArrays(statement, few.length);
      assertTextArrays(other, more.length);
    });
    // Texts of different masks differ: the mask is what selects the statement.
    assert.notEqual(a[1]!.text, a[2]!.text);
  });

  it('deleteByKeys: one array per key column, in key order, each value as the source printed it, NULL kept as null', () => {
    // Key tuples hold the key values in key order (k2, k1).
    const keys: Tuple[] = [
      ['b', '007'],
      [' spaced ', '2'],
      [null, '3'],
    ];
    const statement = deleteByKeys(composite, keys);
    assert.deepEqual(statement.values, [
      ['b', ' spaced ', null],
      ['007', '2', '3'],
    ]);
    assertParametersMatch(statement);
    assert.match(statement.text, /"k1"/);
    assert.match(statement.text, /"k2"/);
    assert.doesNotMatch(statement.text, /"v"/, 'the match is on the key columns only');
  });

  it('deleteByKeys refuses a table without a key', () => {
    assert.throws(() => deleteByKeys(keyless, [['1']]), /has no key/);
  });

  it('updateByKeys and updateStaged never assign a key column or a GENERATED ALWAYS identity column', () => {
    const rows: Tuple[] = [
      ['1', '10', 'a', '{}'],
      ['2', '20', 'b', null],
    ];
    const statement = updateByKeys(withIdentity, '1111', rows)!;
    const set = setClause(statement.text);
    assert.match(set, /"a"/);
    assert.match(set, /"b"/);
    assert.doesNotMatch(set, /"id"/);
    assert.doesNotMatch(set, /"ident"/);
    // The key is sent to find the rows, the identity values are not sent at all.
    assertSameMembers(statement.values, [
      ['1', '2'],
      ['a', 'b'],
      ['{}', null],
    ]);
    assertParametersMatch(statement);

    const staged = updateStaged(withIdentity, 'staging', '1111', 3)!;
    const stagedSet = setClause(staged.text);
    assert.match(stagedSet, /"a"/);
    assert.match(stagedSet, /"b"/);
    assert.doesNotMatch(stagedSet, /"id"/);
    assert.doesNotMatch(stagedSet, /"ident"/);
  });

  it('updateByKeys sets only the columns of the mask, and never reads an UNCHANGED value outside it', () => {
    const rows: Tuple[] = [['1', '10', 'new', UNCHANGED]];
    const statement = updateByKeys(withIdentity, '1010', rows)!;
    assert.doesNotMatch(setClause(statement.text), /"b"/);
    assertSameMembers(statement.values, [['1'], ['new']]);
  });

  it('updateByKeys and updateStaged return undefined when the mask writes nothing but key and identity columns', () => {
    const rows: Tuple[] = [['1', '10', 'a', 'b']];
    assert.equal(updateByKeys(withIdentity, '1100', rows), undefined);
    assert.equal(updateByKeys(withIdentity, '0000', rows), undefined);
    assert.equal(updateStaged(withIdentity, 'staging', '1100', 1), undefined);
    assert.notEqual(updateByKeys(withIdentity, '1110', rows), undefined, 'one other column is enough');
    assert.notEqual(updateStaged(withIdentity, 'staging', '0001', 1), undefined);
  });

  it('insertRows: one array per column in column order, NULL kept as null', () => {
    const statement = insertRows(plainKeyed, [
      ['1', null, 'x'],
      ['2', 'y', null],
    ]);
    assert.deepEqual(statement.values, [
      ['1', '2'],
      [null, 'y'],
      ['x', null],
    ]);
    assertParametersMatch(statement);
  });

  it('insertRows and an inserting singleChange use OVERRIDING SYSTEM VALUE exactly when the table has a GENERATED ALWAYS identity column', () => {
    const identityKey = table({ columns: ['id', 'a'], key: [0], alwaysIdentity: [0] });
    const cases: ReadonlyArray<readonly [TargetTable, boolean]> = [
      [plainKeyed, false],
      [keyless, false],
      [withIdentity, true],
      [identityKey, true],
    ];
    for (const [t, expected] of cases) {
      const row: Tuple = t.columns.map((_, i) => String(i + 1));
      for (const statement of [insertRows(t, [row]), singleChange(insert(t, row))]) {
        assert.equal(/OVERRIDING SYSTEM VALUE/.test(statement.text), expected, `${t.display}: ${statement.text}`);
      }
    }
  });

  it('moveIdentityRows is undefined unless the table has a GENERATED ALWAYS identity column outside the key, and there are rows', () => {
    const identityIsKey = table({ columns: ['id', 'a'], key: [0], alwaysIdentity: [0] });
    assert.equal(moveIdentityRows(plainKeyed, [['1', 'a', 'b']]), undefined);
    assert.equal(moveIdentityRows(identityIsKey, [['1', 'a']]), undefined);
    assert.equal(moveIdentityRows(withIdentity, []), undefined);
    assert.notEqual(moveIdentityRows(withIdentity, [['1', '10', 'a', 'b']]), undefined);
  });

  it('moveIdentityRows sends only keys and identity values, and re-inserts every writable target column with OVERRIDING SYSTEM VALUE', () => {
    const statement = moveIdentityRows(withIdentity, [
      ['1', '10', 'a', UNCHANGED],
      ['2', '20', null, 'b'],
    ])!;
    assertSameMembers(statement.values, [
      ['1', '2'],
      ['10', '20'],
    ]);
    assertParametersMatch(statement);
    assert.match(statement.text, /OVERRIDING SYSTEM VALUE/);
    for (const column of withIdentity.writable) assert.ok(statement.text.includes(column), `${column} kept in: ${statement.text}`);
    assert.ok(statement.text.includes('t."note"'), 'a column the source does not send is taken from the target row');
    assert.ok(statement.text.includes('t."b"'), 'a column the source sends is taken from the target row, which the UPDATE wrote');
    assert.match(statement.text, /IS DISTINCT FROM/, 'only rows whose identity value differs are moved');
  });

  it('refuse an UNCHANGED (TOAST) value rather than write a wrong one', () => {
    const toasted: Tuple = ['1', '10', UNCHANGED, 'b'];
    const attempts: ReadonlyArray<readonly [string, () => unknown]> = [
      ['deleteByKeys', () => deleteByKeys(withIdentity, [[UNCHANGED]])],
      ['updateByKeys', () => updateByKeys(withIdentity, '1111', [toasted])],
      ['moveIdentityRows', () => moveIdentityRows(withIdentity, [['1', UNCHANGED, 'a', 'b']])],
      ['insertRows', () => insertRows(withIdentity, [toasted])],
      ['copyRows', () => copyRows(withIdentity, [toasted])],
      ['singleChange insert', () => singleChange(insert(plainKeyed, ['1', UNCHANGED, 'x']))],
      ['singleChange delete by key', () => singleChange(remove(plainKeyed, [UNCHANGED, null, null]))],
      ['singleChange update by key', () => singleChange(update(plainKeyed, [UNCHANGED, null, null], ['1', 'a', 'b']))],
    ];
    for (const [name, attempt] of attempts) assert.throws(attempt, /unchanged TOAST/, name);
  });
});

describe('truncate', () => {
  it('has CASCADE and RESTART IDENTITY exactly when asked, names every table, and ONLY for plain tables', () => {
    const tables = [plainKeyed, keylessPartitioned, composite];
    for (const cascade of [false, true]) {
      for (const restartIdentity of [false, true]) {
        const statement = truncate(tables, cascade, restartIdentity);
        assert.equal(/\bCASCADE\b/.test(statement.text), cascade, statement.text);
        assert.equal(/\bRESTART IDENTITY\b/.test(statement.text), restartIdentity, statement.text);
        assert.deepEqual(statement.values, []);
        assert.ok(statement.text.includes(`ONLY ${plainKeyed.qname}`), statement.text);
        assert.ok(statement.text.includes(`ONLY ${composite.qname}`), statement.text);
        // A partitioned table has no rows of its own: ONLY would truncate nothing.
        assert.ok(statement.text.includes(keylessPartitioned.qname), statement.text);
        assert.ok(!statement.text.includes(`ONLY ${keylessPartitioned.qname}`), statement.text);
      }
    }
  });
});

describe('singleChange on a keyed table', () => {
  it('insert: the parameters are the new row, NULL included', () => {
    const statement = singleChange(insert(plainKeyed, ['1', null, 'x']));
    assert.deepEqual(statement.values, ['1', null, 'x']);
    assertParametersMatch(statement);
  });

  it('update: sets the sent columns, skips UNCHANGED ones, and finds the row by its old key', () => {
    const statement = singleChange(update(plainKeyed, ['1', null, null], ['2', 'x', UNCHANGED]));
    assertSameMembers(statement.values, ['2', 'x', '1']);
    assertParametersMatch(statement);
    const set = setClause(statement.text);
    assert.doesNotMatch(set, /"b"/, 'an UNCHANGED value is left as the target has it');
    assert.equal(valueAfter(statement, '"id" = '), '2', 'the key is set to the new value');
    assert.equal(valueAfter(statement, 't."id" = '), '1', 'the row is found by the old key');
  });

  it('update without an old row: finds the row by the key of the new one', () => {
    const statement = singleChange(update(plainKeyed, undefined, ['5', 'x', 'y']));
    assertParametersMatch(statement);
    assert.equal(valueAfter(statement, 't."id" = '), '5');
  });

  it('delete: the parameters are the key values only', () => {
    const statement = singleChange(remove(composite, ['1', null, 'b']));
    assertSameMembers(statement.values, ['1', 'b']);
    assertParametersMatch(statement);
    assert.equal(valueAfter(statement, 't."k1" = '), '1');
    assert.equal(valueAfter(statement, 't."k2" = '), 'b');
  });

  it('update of a table with a GENERATED ALWAYS identity column moves the row instead of an UPDATE, keeping UNCHANGED values from the target', () => {
    const statement = singleChange(update(withIdentity, undefined, ['1', '11', 'a', UNCHANGED]));
    assert.doesNotMatch(statement.text, /^\s*UPDATE\b/, 'an UPDATE cannot set a GENERATED ALWAYS column');
    assert.match(statement.text, /OVERRIDING SYSTEM VALUE/);
    assertParametersMatch(statement);
    assertSameMembers(statement.values, ['1', '1', '11', 'a']);
    assert.equal(valueAfter(statement, 't."id" = '), '1', 'the row is found by its key');
    assert.ok(statement.text.includes('t."b"'), 'the UNCHANGED value is taken from the target row');
    assert.ok(statement.text.includes('t."note"'), 'a column the source does not send is taken from the target row');
    for (const column of withIdentity.writable) assert.ok(statement.text.includes(column), `${column} kept in: ${statement.text}`);
  });
});

describe('singleChange on a keyless (REPLICA IDENTITY FULL) table', () => {
  const notDistinct = (text: string) => [...text.matchAll(/IS NOT DISTINCT FROM/g)].length;

  it('delete: matches one row on every column, NULL included, by ctid', () => {
    const old: Tuple = ['1', null, 'z'];
    const statement = singleChange(remove(keyless, old));
    assert.deepEqual(statement.values, ['1', null, 'z']);
    assertParametersMatch(statement);
    assert.equal(notDistinct(statement.text), keyless.columns.length, 'NULL-safe equality on every column');
    for (const column of keyless.columns) assert.ok(statement.text.includes(`s.${column}`), `${column} compared in: ${statement.text}`);
    assert.match(statement.text, /\bctid\b/);
    assert.match(statement.text, /LIMIT 1/, 'of duplicates, exactly one row is deleted');
    assert.doesNotMatch(statement.text, /tableoid/);
  });

  it('delete on a partitioned table: matches by (tableoid, ctid), as ctid alone repeats across partitions', () => {
    const statement = singleChange(remove(keylessPartitioned, ['1', '2', '3']));
    assertParametersMatch(statement);
    assert.equal(notDistinct(statement.text), 3);
    assert.match(statement.text, /tableoid/);
    assert.match(statement.text, /ctid/);
  });

  it('update: new values in the SET, the whole old row in the match', () => {
    const statement = singleChange(update(keyless, ['1', '{"a":1}', null], ['2', '{"a":1}', 'new']));
    assertParametersMatch(statement);
    assertSameMembers(statement.values, ['2', '{"a":1}', 'new', '1', '{"a":1}', null]);
    assert.equal(notDistinct(statement.text), 3);
    assert.equal(valueAfter(statement, 'SET "x" = '), '2');
    assert.equal(valueAfter(statement, 's."x"::text IS NOT DISTINCT FROM ('), '1');
  });
});

describe('copyRows', () => {
  /** COPY's text format read back: lines, tab-separated fields, \N for NULL, backslash escapes. */
  function parseCopy(data: readonly string[]): (string | null)[][] {
    const unescape: Readonly<Record<string, string>> = { '\\': '\\', t: '\t', n: '\n', r: '\r' };
    return data
      .join('')
      .split('\n')
      .slice(0, -1)
      .map((line) =>
        line.split('\t').map((field) => (field === '\\N' ? null : field.replace(/\\(.)/g, (_, c: string) => unescape[c] ?? c))),
      );
  }

  it("writes each value as COPY reads it back: tab, newline, carriage return and backslash escaped, NULL as \\N, the text '\\N' kept", () => {
    const rows: Tuple[] = [
      ['1', 'a\tb', 'line\nnext\r', 'C:\\dir'],
      ['2', null, '\\N', ''],
    ];
    const copy = copyRows(withIdentity, rows);
    assert.deepEqual(parseCopy(copy.data), rows);
  });
});
