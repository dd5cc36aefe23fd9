import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RowChange } from '../../src/apply/changes.js';
import { ChangedRows, ChangeRecording } from '../../src/apply/recording.js';
import type { TargetTable } from '../../src/apply/target-tables.js';
import { CutoverSteps } from '../../src/cutover/steps.js';
import { UNCHANGED, type Tuple } from '../../src/replication/index.js';
import { narrowImages, planChangeCheck } from '../../src/verify/change-plan.js';
import { mergeChangeReports, type ChangeCheckReport } from '../../src/verify/check-changes.js';
import type { ChangedRow } from '../../src/state/index.js';
import type { TableToVerify } from '../../src/verify/tables.js';

function table(relationId: number, identity: TargetTable['identity']): TargetTable {
  return {
    relationId,
    qname: `"public"."t${relationId}"`,
    display: `public.t${relationId}`,
    partitioned: false,
    columns: ['"id"', '"a"', '"b"'],
    types: ['integer', 'text', 'text'],
    writable: ['"id"', '"a"', '"b"'],
    alwaysIdentity: [false, false, false],
    identity,
  };
}
const names = () => ['id', 'a', 'b'];
const origin = { xid: 1, commitLsn: 1n };
const insert = (t: TargetTable, newRow: Tuple): RowChange => ({ kind: 'insert', table: t, newRow, origin });
const update = (t: TargetTable, oldRow: Tuple | undefined, newRow: Tuple): RowChange => ({
  kind: 'update',
  table: t,
  oldRow,
  newRow,
  origin,
});
const remove = (t: TargetTable, oldRow: Tuple): RowChange => ({ kind: 'delete', table: t, oldRow, origin });

describe('the rows a batch records for a cut-over', () => {
  const keyed = table(1, { kind: 'key', columns: [0] });
  const composite = table(2, { kind: 'key', columns: [1, 0] });

  it('names each changed row once by its key: inserted, updated (old and new key of a move), deleted', () => {
    const rows = new ChangedRows(names);
    rows.change(insert(keyed, ['1', 'x', null]));
    rows.change(update(keyed, undefined, ['1', 'y', null]));
    rows.change(update(keyed, ['2', null, null], ['3', 'z', null]));
    rows.change(remove(keyed, ['4', null, null]));
    rows.change(insert(composite, ['7', 'k', 'v']));
    assert.deepEqual(rows.list(), [
      { table: 'public.t1', kind: 'key', columns: ['id'], key: ['1'] },
      { table: 'public.t1', kind: 'key', columns: ['id'], key: ['3'] },
      { table: 'public.t1', kind: 'key', columns: ['id'], key: ['2'] },
      { table: 'public.t1', kind: 'key', columns: ['id'], key: ['4'] },
      { table: 'public.t2', kind: 'key', columns: ['a', 'id'], key: ['k', '7'] },
    ]);
  });

  it('names rows of a table without a key by their whole image, before and after; a value not sent makes the table compared whole', () => {
    const rows = new ChangedRows(names);
    const full = table(3, { kind: 'full' });
    rows.change(insert(full, ['1', 'x', 'y']));
    rows.change(remove(full, ['1', 'x', 'y']));
    rows.change(update(full, ['1', 'x', 'y'], ['1', UNCHANGED, 'z']));
    rows.change(insert(table(4, { kind: 'none' }), ['2', null, 'w']));
    rows.change(update(table(5, { kind: 'full' }), undefined, ['1', UNCHANGED, 'z']));
    rows.change(update(keyed, undefined, [UNCHANGED, 'x', null]));
    assert.deepEqual(rows.list(), [
      { table: 'public.t3', kind: 'row', columns: ['id', 'a', 'b'], key: ['1', 'x', 'y'] },
      { table: 'public.t3', kind: 'row', columns: ['id', 'a', 'b'], key: ['1', 'x', 'z'] },
      { table: 'public.t4', kind: 'row', columns: ['id', 'a', 'b'], key: ['2', null, 'w'] },
      { table: 'public.t5', kind: 'table', reason: 'a row was sent without all its values' },
      { table: 'public.t1', kind: 'table', reason: 'a key value was not sent' },
    ]);
  });

  it('a schema change marks everything, once', () => {
    const rows = new ChangedRows(names);
    rows.everything('a schema change was applied');
    rows.everything('a schema change was applied');
    assert.deepEqual(rows.list(), [{ kind: 'everything', reason: 'a schema change was applied' }]);
  });
});

describe('the switch sync turns when a cut-over asks it to record', () => {
  it('follows one request at a time, remembers that its start was written, and stops', () => {
    const recording = new ChangeRecording();
    assert.equal(recording.current, undefined);
    recording.follow('a', false);
    assert.deepEqual(recording.current, { id: 'a', acknowledged: false });
    recording.acknowledged('a');
    assert.deepEqual(recording.current, { id: 'a', acknowledged: true });
    // The poll reads the same request again (not yet acknowledged as it read it): the batch's word stands.
    recording.follow('a', false);
    assert.deepEqual(recording.current, { id: 'a', acknowledged: true });
    // An acknowledgement for another request changes nothing.
    recording.follow('b', false);
    recording.acknowledged('a');
    assert.deepEqual(recording.current, { id: 'b', acknowledged: false });
    // What a batch read when it began is its own: a stop after does not change it.
    const seen = recording.current;
    recording.stop();
    assert.equal(recording.current, undefined);
    assert.deepEqual(seen, { id: 'b', acknowledged: false });
  });
});

function verifyTable(name: string, columns: string[], key: string[]): TableToVerify {
  const column = (c: string) => ({ name: c, sql: `"${c}"`, type: 'integer', hashed: null });
  return {
    name: `public.${name}`,
    schema: 'public',
    table: name,
    sql: `"public"."${name}"`,
    bytes: 0,
    estimatedRows: 0,
    readable: true,
    columns: columns.map(column),
    key: key.map(column),
  };
}

describe('what a check of changed rows compares', () => {
  const accounts = verifyTable('accounts', ['aid', 'bid', 'abalance'], ['aid']);
  const pairs = verifyTable('pairs', ['a', 'b', 'v'], ['a', 'b']);
  const history = verifyTable('history', ['aid', 'delta'], []);
  const tables = [accounts, pairs, history];
  const key = (t: string, columns: string[], values: Array<string | null>): ChangedRow => ({
    table: `public.${t}`,
    kind: 'key',
    columns,
    key: values,
  });

  it('compares keyed tables by the keys recorded, each key once, with the key columns where the table has them', () => {
    const plans = planChangeCheck(
      [
        key('accounts', ['aid'], ['1']),
        key('accounts', ['aid'], ['2']),
        key('accounts', ['aid'], ['1']),
        key('pairs', ['b', 'a'], ['x', 'y']),
      ],
      tables,
    );
    assert.deepEqual(plans, [
      { kind: 'keys', table: accounts, columns: [0], keys: [['1'], ['2']] },
      { kind: 'keys', table: pairs, columns: [1, 0], keys: [['x', 'y']] },
    ]);
  });

  it('compares a table whole when sync said so, when a key does not fit the table, or when keys came under two definitions', () => {
    const plans = planChangeCheck(
      [
        key('accounts', ['aid'], ['1']),
        { table: 'public.accounts', kind: 'table', reason: 'truncated' },
        { table: 'public.history', kind: 'table', reason: 'no key names its rows' },
        key('pairs', ['a'], ['1']),
        key('pairs', ['a', 'b'], ['1', '2']),
      ],
      tables,
    );
    assert.deepEqual(
      plans.map((p) => (p.kind === 'whole' ? [p.table.name, p.reason] : p.kind)),
      [
        ['public.accounts', 'truncated'],
        ['public.history', 'no key names its rows'],
        ['public.pairs', 'keys were recorded under two definitions of the table'],
      ],
    );
    assert.deepEqual(
      planChangeCheck([key('accounts', ['gone'], ['1'])], tables).map((p) => (p.kind === 'whole' ? p.reason : p.kind)),
      ['a key column of the recorded keys is not in the table'],
    );
    assert.deepEqual(
      planChangeCheck([key('accounts', ['aid'], [null])], tables).map((p) => (p.kind === 'whole' ? p.reason : p.kind)),
      ['a recorded key holds NULL'],
    );
  });

  it('compares a table without a key by the copies of each recorded row image, NULLs kept; a key and an image of one table compare it whole', () => {
    const image = (values: Array<string | null>): ChangedRow => ({
      table: 'public.history',
      kind: 'row',
      columns: ['delta', 'aid'],
      key: values,
    });
    assert.deepEqual(planChangeCheck([image(['5', '1']), image(['5', '1']), image([null, '2'])], tables), [
      {
        kind: 'images',
        table: history,
        columns: [1, 0],
        images: [
          ['5', '1'],
          [null, '2'],
        ],
      },
    ]);
    assert.deepEqual(
      planChangeCheck([image(['5', '1']), key('history', ['aid'], ['1'])], tables).map((p) => (p.kind === 'whole' ? p.reason : p.kind)),
      ['keys were recorded under two definitions of the table'],
    );
  });

  it('after a schema change compares every table whole; a table not in scope is named, never skipped', () => {
    const everything = planChangeCheck(
      [key('accounts', ['aid'], ['1']), { kind: 'everything', reason: 'a schema change was applied' }],
      tables,
    );
    assert.deepEqual(
      everything.map((p) => (p.kind === 'whole' ? p.table.name : p.kind)),
      ['public.accounts', 'public.pairs', 'public.history'],
    );
    assert.deepEqual(planChangeCheck([key('elsewhere', ['id'], ['1'])], tables), [{ kind: 'unknown', name: 'public.elsewhere' }]);
    assert.deepEqual(planChangeCheck([], tables), []);
  });
});

describe('what narrows the rows a keyless table is counted over', () => {
  const history: TableToVerify = {
    ...verifyTable('history', ['aid', 'mtime', 'delta'], []),
    columns: [
      { name: 'aid', sql: '"aid"', type: 'integer', hashed: 'int4' },
      { name: 'mtime', sql: '"mtime"', type: 'timestamp without time zone', hashed: null },
      { name: 'delta', sql: '"delta"', type: 'numeric', hashed: null },
    ],
  };
  const plan = { kind: 'images' as const, table: history, columns: [1, 2, 0], images: [['2024-01-01 00:00:00', '1.0', '7']] };

  it('on each side by the columns its own index leads with, and by its typed columns where the server hashes a list of values', () => {
    const none = { source: undefined, target: undefined };
    assert.deepEqual(narrowImages(plan, none, { source: false, target: false }), {
      source: { columns: [], index: null },
      target: { columns: [], index: null },
    });
    assert.deepEqual(narrowImages(plan, none, { source: true, target: false }), {
      source: { columns: [0], index: null },
      target: { columns: [], index: null },
    });
    const indexes = { source: [{ index: 'history_mtime', column: 'mtime' }], target: [{ index: 'history_gone', column: 'filler' }] };
    assert.deepEqual(narrowImages(plan, indexes, { source: false, target: true }), {
      source: { columns: [1], index: 'history_mtime' },
      target: { columns: [0], index: null },
    });
  });
});

describe('checks of recorded rows run page by page, reported as one', () => {
  const page = (over: Partial<ChangeCheckReport>): ChangeCheckReport => ({
    identical: true,
    seconds: 0.5,
    keysChecked: 0,
    wholeTables: [],
    keyless: [],
    tables: [],
    sequences: [],
    notes: [],
    ...over,
  });
  const table = (name: string, rows: number, differences: ChangeCheckReport['tables'][number]['differences'] = []) => ({
    name,
    status: differences.length > 0 ? ('different' as const) : ('identical' as const),
    sourceRows: rows,
    targetRows: rows,
    seconds: 0.25,
    differences,
  });

  it('sums a table over its pages, keeps its differences, names a whole table and a keyless read once', () => {
    const merged = mergeChangeReports([
      page({
        keysChecked: 10,
        tables: [table('public.a', 10)],
        keyless: [{ table: 'public.h', images: 2, index: { source: 'h_aid', target: 'h_aid' } }],
        notes: ['n'],
      }),
      page({
        identical: false,
        keysChecked: 5,
        tables: [table('public.a', 4, [{ kind: 'missing', key: { id: '40' } }]), table('public.b', 1)],
        wholeTables: [{ table: 'public.b', reason: 'truncated' }],
        keyless: [{ table: 'public.h', images: 3, index: { source: 'h_aid', target: 'h_aid' } }],
        notes: ['n'],
      }),
    ]);
    assert.equal(merged.identical, false);
    assert.equal(merged.seconds, 1);
    assert.equal(merged.keysChecked, 15);
    assert.deepEqual(merged.tables, [
      { ...table('public.a', 14, [{ kind: 'missing', key: { id: '40' } }]), seconds: 0.5 },
      table('public.b', 1),
    ]);
    assert.deepEqual(merged.wholeTables, [{ table: 'public.b', reason: 'truncated' }]);
    assert.deepEqual(merged.keyless, [{ table: 'public.h', images: 5, index: { source: 'h_aid', target: 'h_aid' } }]);
    assert.deepEqual(merged.notes, ['n']);
  });
});

describe('a cut-over step run alongside another', () => {
  it('is timed under its own name and leaves the current step as it was', async () => {
    let now = 0;
    const steps = new CutoverSteps(() => now);
    await steps.run('fence', async () => {
      now += 5;
      await steps.alongside('sequences', async () => {
        now += 2;
      });
      now += 3;
    });
    assert.equal(steps.current, 'fence');
    assert.deepEqual(steps.timed, [
      { step: 'sequences', ms: 2 },
      { step: 'fence', ms: 10 },
    ]);
  });
});
