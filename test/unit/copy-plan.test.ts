import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkedPredicate, MAX_PARTS, partsFor, planUnits } from '../../src/copy/plan.js';

const MB = 1024 * 1024;

describe('planUnits', () => {
  test('small tables are copied whole, largest first', () => {
    const units = planUnits(
      [
        { qname: 'public.small', bytes: 1 * MB, splitBy: { kind: 'pages', pages: 128 } },
        { qname: 'public.big', bytes: 50 * MB, splitBy: { kind: 'pages', pages: 6400 } },
      ],
      64 * MB,
    );
    assert.deepEqual(
      units.map((u) => [u.table, u.unit, u.predicate, u.whole]),
      [
        ['public.big', 'whole', null, true],
        ['public.small', 'whole', null, true],
      ],
    );
  });

  test('a big table becomes TID ranges that cover every page, the last one open-ended', () => {
    const units = planUnits([{ qname: 'public.t', bytes: 100 * MB, splitBy: { kind: 'pages', pages: 1000 } }], 10 * MB);
    assert.equal(units.length, 10);
    const byStart = [...units].sort((a, b) => parseInt(a.unit.split(' ')[1]!) - parseInt(b.unit.split(' ')[1]!));
    assert.equal(byStart[0]!.predicate, `ctid < '(100,0)'::tid`);
    assert.equal(byStart[1]!.predicate, `ctid >= '(100,0)'::tid AND ctid < '(200,0)'::tid`);
    assert.equal(byStart[9]!.predicate, `ctid >= '(900,0)'::tid`);
    assert.equal(byStart[9]!.unit, 'pages 900-');
    assert.ok(units.every((u) => !u.whole));
  });

  test('key ranges on servers without TID range scans', () => {
    const units = planUnits(
      [{ qname: 'public.t', bytes: 40 * MB, splitBy: { kind: 'key', column: '"id"', boundaries: ['100', '200', '300'] } }],
      10 * MB,
    );
    assert.deepEqual(
      units.map((u) => u.predicate).sort(),
      ['"id" < 100', '"id" >= 100 AND "id" < 200', '"id" >= 200 AND "id" < 300', '"id" >= 300'].sort(),
    );
  });

  test('no way to split: whole; never more parts than pages or MAX_PARTS', () => {
    assert.equal(planUnits([{ qname: 'public.t', bytes: 100 * MB, splitBy: { kind: 'none' } }], MB).length, 1);
    assert.equal(planUnits([{ qname: 'public.t', bytes: 100 * MB, splitBy: { kind: 'pages', pages: 3 } }], MB).length, 3);
    assert.equal(partsFor(10_000 * MB, MB), MAX_PARTS);
    assert.equal(partsFor(5 * MB, 0), 1);
  });

  test('the same input gives the same plan', () => {
    const input = [
      { qname: 'public.a', bytes: 30 * MB, splitBy: { kind: 'pages', pages: 3000 } } as const,
      { qname: 'public.b', bytes: 30 * MB, splitBy: { kind: 'pages', pages: 3000 } } as const,
    ];
    assert.deepEqual(planUnits(input, 10 * MB), planUnits([...input].reverse(), 10 * MB));
  });
});

describe('checkedPredicate: ranges read back from the target before they run on the source', () => {
  test('every range planUnits writes is accepted as it is', () => {
    const units = [
      ...planUnits([{ qname: 'public.t', bytes: 1000, splitBy: { kind: 'pages', pages: 100 } }], 300),
      ...planUnits(
        [{ qname: 'public.k', bytes: 1000, splitBy: { kind: 'key', column: '"Id"', boundaries: ['-5', '10', '9000000000'] } }],
        300,
      ),
      ...planUnits([{ qname: 'public.j', bytes: 1000, splitBy: { kind: 'key', column: 'id', boundaries: ['7'] } }], 300),
    ];
    assert.ok(units.length > 4);
    for (const unit of units) {
      const key = unit.table === 'public.k' ? '"Id"' : unit.table === 'public.j' ? 'id' : undefined;
      assert.equal(checkedPredicate(unit.predicate, key), unit.predicate);
    }
  });

  test('anything else is refused: SQL after a range, another column, other operators, a subquery', () => {
    for (const tampered of [
      `ctid >= '(1,0)'::tid; DROP TABLE t; --`,
      `ctid < '(5,0)'::tid OR true`,
      `"id" >= 1 AND "id" < 5 AND pg_sleep(10) IS NOT NULL`,
      `"other" >= 1`,
      `other >= 1`,
      `"id" >= (SELECT 1)`,
      `ctid >= '(1,0)'::tid AND ctid < '(2,0)'::tid AND ctid < '(3,0)'::tid`,
      `ctid >= '(01,0)'::tid`,
    ]) {
      assert.throws(() => checkedPredicate(tampered, '"id"'), /never writes/, tampered);
    }
  });
});
