import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { NamedKeyed } from '../../src/verify/check-table.js';
import {
  changedColumns,
  copiesOf,
  diffKeyedRows,
  diffMultisets,
  mergeAcrossRanges,
  persistingKeyed,
  persistingMultiset,
  type KeyedDifference,
} from '../../src/verify/differences.js';
import { parseLsn } from '../../src/replication/index.js';
import { laterPosition } from '../../src/verify/recheck.js';
import { tableResult } from '../../src/verify/report.js';
import { comparable, diffSchemaObjects } from '../../src/verify/schema-diff.js';
import { sequenceStatus } from '../../src/verify/sequences.js';
import type { TableToVerify } from '../../src/verify/tables.js';

const row = (id: string, hash: string) => ({ key: [id], hash });

describe('verify: naming rows', () => {
  test('rows of a range are matched by key: missing, extra, changed, and equal rows are not reported', () => {
    const source = [row('1', 'a'), row('2', 'b'), row('3', 'c')];
    const target = [row('1', 'a'), row('3', 'x'), row('4', 'd')];
    assert.deepEqual(diffKeyedRows(source, target), [
      { kind: 'missing', key: ['2'], sourceHash: 'b', targetHash: null },
      { kind: 'changed', key: ['3'], sourceHash: 'c', targetHash: 'x' },
      { kind: 'extra', key: ['4'], sourceHash: null, targetHash: 'd' },
    ]);
    assert.deepEqual(diffKeyedRows(source, source), []);
  });

  test('a row placed in different ranges on the two sides is one row: equal is nothing, different is a change', () => {
    const found: KeyedDifference[] = [
      { kind: 'missing', key: ['é'], sourceHash: 'h1', targetHash: null },
      { kind: 'extra', key: ['é'], sourceHash: null, targetHash: 'h1' },
      { kind: 'missing', key: ['z'], sourceHash: 'h2', targetHash: null },
      { kind: 'extra', key: ['z'], sourceHash: null, targetHash: 'h3' },
      { kind: 'missing', key: ['q'], sourceHash: 'h4', targetHash: null },
    ];
    assert.deepEqual(mergeAcrossRanges(found), [
      { kind: 'changed', key: ['z'], sourceHash: 'h2', targetHash: 'h3' },
      { kind: 'missing', key: ['q'], sourceHash: 'h4', targetHash: null },
    ]);
  });

  test('changed columns compare text output, NULL apart from the empty string', () => {
    assert.deepEqual(changedColumns(['id', 'note', 'body'], { id: '1', note: null, body: 'x' }, { id: '1', note: '', body: 'x' }), [
      'note',
    ]);
    assert.deepEqual(changedColumns(['id'], { id: '1' }, { id: '1' }), []);
  });

  test('keyless tables: hashes whose copies differ, each surplus copy once', () => {
    const source = new Map([
      ['a', 2],
      ['b', 1],
    ]);
    const target = new Map([
      ['a', 1],
      ['c', 1],
      ['b', 1],
    ]);
    const diff = diffMultisets(source, target);
    assert.deepEqual(diff, [
      { hash: 'a', source: 2, target: 1 },
      { hash: 'c', source: 0, target: 1 },
    ]);
    assert.deepEqual(diff.map(copiesOf), [
      { kind: 'missing', copies: 1 },
      { kind: 'extra', copies: 1 },
    ]);
  });
});

describe('verify: rechecks while sync streams', () => {
  const first: KeyedDifference = { kind: 'changed', key: ['1'], sourceHash: 's1', targetHash: 't1' };

  test('a difference the target has since caught up with is gone', () => {
    assert.equal(persistingKeyed(first, 's1', 's1'), null);
  });

  test('a difference with the source row unchanged and the target still other persists, as it now is', () => {
    assert.deepEqual(persistingKeyed(first, 's1', 't2'), { kind: 'changed', key: ['1'], sourceHash: 's1', targetHash: 't2' });
    assert.deepEqual(persistingKeyed(first, 's1', null), { kind: 'missing', key: ['1'], sourceHash: 's1', targetHash: null });
    const extra: KeyedDifference = { kind: 'extra', key: ['9'], sourceHash: null, targetHash: 'x' };
    assert.deepEqual(persistingKeyed(extra, null, 'x'), extra);
  });

  test('a source row that moved in between is not judged', () => {
    assert.equal(persistingKeyed(first, 's2', 't1'), null);
    assert.equal(persistingKeyed(first, null, 't1'), null);
  });

  test('keyless: the same rule on copies', () => {
    const h = { hash: 'h', source: 2, target: 1 };
    assert.deepEqual(persistingMultiset(h, 2, 1), h);
    assert.equal(persistingMultiset(h, 2, 2), null);
    assert.equal(persistingMultiset(h, 3, 1), null);
  });

  test('the later WAL position compares numerically, not as text', () => {
    const at = parseLsn;
    assert.equal(laterPosition(at('0/9FFFFFF'), at('0/10000000')), at('0/10000000'));
    assert.equal(laterPosition(at('1/0'), at('F/FFFFFFFF')), at('F/FFFFFFFF'));
    assert.equal(laterPosition(null, at('0/1')), at('0/1'));
    assert.equal(laterPosition(at('0/1'), null), at('0/1'));
  });
});

describe('verify: reporting', () => {
  const table: TableToVerify = {
    name: 'public.t',
    schema: 'public',
    table: 't',
    sql: '"public"."t"',
    bytes: 0,
    estimatedRows: 0,
    readable: true,
    columns: [
      { name: 'a', sql: '"a"', type: 'text', hashed: null },
      { name: 'b', sql: '"b"', type: 'integer', hashed: null },
    ],
    key: [{ name: 'a', sql: '"a"', type: 'text', hashed: null }],
  };
  const check = { table, status: 'different' as const, sourceRows: 3, targetRows: 3, seconds: 0.1234, truncated: false, position: null };

  test('keys by column name, changed columns kept', () => {
    const keyed: NamedKeyed[] = [
      { kind: 'changed', key: ['x'], sourceHash: '1', targetHash: '2', columns: ['b'] },
      { kind: 'missing', key: ['y'], sourceHash: '1', targetHash: null },
    ];
    const result = tableResult({ ...check, keyed, keyless: [] }, 100);
    assert.deepEqual(result.differences, [
      { kind: 'changed', key: { a: 'x' }, columns: ['b'] },
      { kind: 'missing', key: { a: 'y' } },
    ]);
    assert.equal(result.seconds, 0.123);
    assert.equal(result.truncated, undefined);
  });

  test('keyless rows are named by their values, once per differing copy, cut at maxDifferences', () => {
    const keyless = [{ hash: 'h', source: 3, target: 0, row: { a: 'v', b: null } }];
    const result = tableResult({ ...check, keyed: [], keyless }, 2);
    assert.deepEqual(result.differences, [
      { kind: 'missing', key: { a: 'v', b: null } },
      { kind: 'missing', key: { a: 'v', b: null } },
    ]);
    assert.equal(result.truncated, true);
  });

  test('sequences: behind is a difference, ahead is not, a descending sequence is ahead when lower', () => {
    assert.equal(sequenceStatus('10', '10', 1n), 'identical');
    assert.equal(sequenceStatus('10', '5', 1n), 'behind');
    assert.equal(sequenceStatus('10', '15', 1n), 'ahead');
    assert.equal(sequenceStatus('-10', '-15', -1n), 'ahead');
    assert.equal(sequenceStatus('-10', '-5', -1n), 'behind');
    assert.equal(sequenceStatus(null, null, 1n), 'identical');
    assert.equal(sequenceStatus('3', null, 1n), 'behind');
    assert.equal(sequenceStatus(null, '3', 1n), 'ahead');
    assert.equal(sequenceStatus('9223372036854775806', '9223372036854775807', 1n), 'ahead');
  });

  test('schema objects: missing, extra, changed; layout whitespace is not a change', () => {
    const o = (identity: string, statement: string) => ({ identity, kind: 'view' as const, name: identity, statements: [statement] });
    assert.deepEqual(
      diffSchemaObjects(
        [o('v1', 'CREATE VIEW v1 AS\nSELECT 1;'), o('v2', 'CREATE VIEW v2 AS SELECT 2;'), o('v3', 'x')],
        [o('v1', 'CREATE VIEW v1 AS SELECT 1;'), o('v2', 'CREATE VIEW v2 AS SELECT 3;'), o('v4', 'y')],
      ),
      [
        { object: 'view v2', kind: 'changed' },
        { object: 'view v3', kind: 'missing' },
        { object: 'view v4', kind: 'extra' },
      ],
    );
  });

  test('schema objects: deparse differences of straddled majors only', () => {
    const view = {
      identity: 'view zoo.v',
      kind: 'view' as const,
      name: 'zoo.v',
      statements: ['CREATE VIEW zoo.v AS\nSELECT animal.id\n   FROM zoo.animal\n  WHERE (animal.id > 1);'],
    };
    assert.deepEqual(comparable(view, [13, 17]).statements, ['CREATE VIEW zoo.v AS\nSELECT id\n   FROM zoo.animal\n  WHERE (id > 1);']);
    assert.deepEqual(comparable(view, [17, 18]).statements, view.statements);
    const acl = {
      identity: 'privileges zoo.animal',
      kind: 'privileges' as const,
      name: 'zoo.animal',
      statements: ['GRANT SELECT ON TABLE zoo.animal TO keeper;', 'GRANT MAINTAIN ON TABLE zoo.animal TO owner;'],
    };
    assert.deepEqual(comparable(acl, [13, 17]).statements, ['GRANT SELECT ON TABLE zoo.animal TO keeper;']);
    assert.deepEqual(comparable(acl, [17, 18]).statements, acl.statements);
    const proc = {
      identity: 'function zoo.p(IN a integer, INOUT b text)',
      kind: 'function' as const,
      name: 'zoo.p(IN a integer, INOUT b text)',
      statements: ['CREATE PROCEDURE zoo.p(IN a integer, INOUT b text)'],
    };
    assert.equal(comparable(proc, [13, 17]).identity, 'function zoo.p(a integer, INOUT b text)');
    assert.equal(comparable(proc, [15, 17]).identity, proc.identity);
  });
});
