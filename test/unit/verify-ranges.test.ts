import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  MAX_INITIAL_RANGES,
  WHOLE,
  describeRange,
  initialRangeCount,
  pickBounds,
  rangePredicate,
  samplePercent,
  splitRange,
  splitStep,
} from '../../src/verify/ranges.js';

const keys = (...values: number[]) => values.map((v) => [String(v)]);

describe('verify range planning', () => {
  test('tables up to rowsPerRange are one range; bigger ones are cut, up to a cap', () => {
    assert.equal(initialRangeCount(0, 1_000_000), 1);
    assert.equal(initialRangeCount(1_000_000, 1_000_000), 1);
    assert.equal(initialRangeCount(1_000_001, 1_000_000), 2);
    assert.equal(initialRangeCount(10_500_000, 1_000_000), 11);
    assert.equal(initialRangeCount(1e12, 1_000_000), MAX_INITIAL_RANGES);
  });

  test('the sample is about 100 keys per range, never over 100 % or at 0', () => {
    assert.equal(samplePercent(0, 4), 100);
    assert.equal(samplePercent(200, 4), 100);
    assert.ok(Math.abs(samplePercent(1_000_000, 10) - 0.1) < 1e-9);
    assert.ok(samplePercent(1e15, 2) > 0);
  });

  test('bounds cut sorted keys into even groups', () => {
    assert.deepEqual(pickBounds(keys(1, 2, 3, 4, 5, 6, 7, 8), 4), keys(3, 5, 7));
    assert.deepEqual(pickBounds(keys(1, 2, 3), 1), []);
    assert.deepEqual(pickBounds([], 5), []);
  });

  test('repeated keys make no empty ranges', () => {
    assert.deepEqual(pickBounds(keys(1, 1, 1, 1, 1, 1, 2, 2), 4), keys(1, 2));
    assert.deepEqual(
      pickBounds(
        [
          ['a', '1'],
          ['a', '1'],
          ['a', '2'],
          ['b', '1'],
        ],
        4,
      ),
      [
        ['a', '1'],
        ['a', '2'],
        ['b', '1'],
      ],
    );
  });

  test('a split covers the range exactly: open ends stay open, bounds are shared', () => {
    assert.deepEqual(splitRange(WHOLE, []), [WHOLE]);
    assert.deepEqual(splitRange(WHOLE, keys(10, 20)), [
      { lo: null, hi: ['10'] },
      { lo: ['10'], hi: ['20'] },
      { lo: ['20'], hi: null },
    ]);
    assert.deepEqual(splitRange({ lo: ['5'], hi: ['50'] }, keys(10)), [
      { lo: ['5'], hi: ['10'] },
      { lo: ['10'], hi: ['50'] },
    ]);
    assert.equal(describeRange({ lo: ['5'], hi: null }), '[5, )');
  });

  test('the split step gives at most fanout parts', () => {
    assert.equal(splitStep(1_000_000, 16), 62_500);
    assert.equal(splitStep(17, 16), 2);
    assert.equal(splitStep(1, 16), 1);
  });

  test('predicates: one column compared directly, several as a row, bounds as typed parameters', () => {
    const id = [{ sql: '"id"', type: 'integer' }];
    assert.deepEqual(rangePredicate(id, WHOLE), { sql: 'true', values: [] });
    assert.deepEqual(rangePredicate(id, { lo: ['10'], hi: ['20'] }), {
      sql: '"id" >= $1::integer AND "id" < $2::integer',
      values: ['10', '20'],
    });
    assert.deepEqual(rangePredicate(id, { lo: null, hi: ['20'] }, 3), { sql: '"id" < $3::integer', values: ['20'] });
    const pair = [
      { sql: '"a"', type: 'text' },
      { sql: '"b"', type: 'bigint' },
    ];
    assert.deepEqual(rangePredicate(pair, { lo: ['x', '1'], hi: ['y', '2'] }), {
      sql: '("a", "b") >= ($1::text, $2::bigint) AND ("a", "b") < ($3::text, $4::bigint)',
      values: ['x', '1', 'y', '2'],
    });
  });
});
