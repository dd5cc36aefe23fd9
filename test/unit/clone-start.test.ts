import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { halfDoneSplitTables, refuseOccupiedTables, refuseOtherTables, startFromState } from '../../src/copy/resume.js';
import { PgferryError } from '../../src/errors.js';

const TARGET = 'postgres://app@db:5432/shop';
const refused = (code: string, message: RegExp) => (error: unknown) =>
  error instanceof PgferryError && error.code === code && error.kind === 'usage' && message.test(error.message);
const tables = (count: number) => Array.from({ length: count }, (_, i) => ({ schema: 'public', name: `t${i + 1}` }));

describe('clone start: what the state on the target allows', () => {
  it('refuses a finished clone, naming the target', () => {
    assert.throws(
      () => startFromState('finished', false, TARGET),
      refused('target-not-empty', /^the target \(postgres:\/\/app@db:5432\/shop\) already holds a finished clone$/),
    );
    assert.throws(
      () => startFromState('finished', true, TARGET),
      refused('target-not-empty', /finished clone/),
      '--resume does not reopen a finished clone',
    );
  });

  it('refuses an interrupted clone without --resume', () => {
    assert.throws(
      () => startFromState('interrupted', false, TARGET),
      refused('target-not-empty', /^the target holds an interrupted clone$/),
    );
  });

  it('continues an interrupted clone with --resume', () => {
    assert.equal(startFromState('interrupted', true, TARGET), 'interrupted');
  });

  it('starts afresh where there is no clone, with or without --resume', () => {
    assert.equal(startFromState('none', false, TARGET), 'fresh');
    assert.equal(startFromState('none', true, TARGET), 'fresh');
  });
});

describe('clone start: the tables in scope on the target', () => {
  it('lets empty, readable tables be', () => {
    assert.doesNotThrow(() => refuseOccupiedTables({ nonEmptyTables: [], unreadableTables: [] }));
  });

  it('refuses tables the target role cannot read, first', () => {
    assert.throws(
      () => refuseOccupiedTables({ nonEmptyTables: tables(1), unreadableTables: [{ schema: 'Sales', name: 'q1' }] }),
      refused('usage', /^the target role cannot read 1 table\(s\) in scope: "Sales"\.q1$/),
    );
  });

  it('refuses tables holding rows, naming ten at most', () => {
    assert.throws(
      () => refuseOccupiedTables({ nonEmptyTables: tables(2), unreadableTables: [] }),
      refused('target-not-empty', /^2 table\(s\) in scope already hold rows on the target: public\.t1, public\.t2$/),
    );
    assert.throws(
      () => refuseOccupiedTables({ nonEmptyTables: tables(11), unreadableTables: [] }),
      refused('target-not-empty', /^11 table\(s\) .*public\.t10, …$/),
    );
  });
});

describe('clone resume: the same tables as the interrupted clone', () => {
  it('lets the same tables be, in any order', () => {
    assert.doesNotThrow(() => refuseOtherTables(['a', 'b', 'b'], ['b', 'a']));
  });

  it('refuses new and gone tables, naming five at most', () => {
    assert.throws(() => refuseOtherTables(['a', 'gone'], ['a', 'new']), refused('target-not-empty', /\(new: new, gone: gone\)$/));
    assert.throws(
      () => refuseOtherTables([], ['1', '2', '3', '4', '5', '6']),
      refused('target-not-empty', /\(new: 1, new: 2, new: 3, new: 4, new: 5\)$/),
    );
  });
});

describe('clone start: which half-done tables a resume copies again', () => {
  const unit = (table: string, unit: string, done: boolean) => ({ table, unit, done, position: 0, predicate: null, oid: null });
  const stored = [
    unit('public.done', 'whole', true),
    unit('public.todo', 'whole', false),
    unit('public.pages', 'pages 0-99', true),
    unit('public.pages', 'pages 100-', false),
    unit('public.keys', 'key 1 of 2', true),
    unit('public.keys', 'key 2 of 2', false),
    unit('public.finished', 'key 1 of 2', true),
    unit('public.finished', 'key 2 of 2', true),
    unit('public.untouched', 'pages 0-99', false),
    unit('public.untouched', 'pages 100-', false),
  ];
  it('a clone copies every half-done split table again, by pages or by key', () => {
    assert.deepEqual([...halfDoneSplitTables(stored, false)].sort(), ['public.keys', 'public.pages']);
  });
  it('a copy a stream completes keeps finished key ranges: their positions are their own', () => {
    assert.deepEqual([...halfDoneSplitTables(stored, true)], ['public.pages']);
  });
});
