import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CopyPositions, NOT_COPIED_YET, parseKeyRange } from '../../src/apply/copy-positions.js';
import type { RowChange } from '../../src/apply/changes.js';
import type { TargetTable } from '../../src/apply/target-tables.js';
import type { UnitPosition } from '../../src/state/index.js';

function whole(oid: number, table: string, position: bigint | null, done = true): UnitPosition {
  return { oid, table, unit: 'whole', predicate: null, done, position };
}

function table(relationId: number, columns: string[] = ['"id"', '"v"']): TargetTable {
  return {
    relationId,
    qname: `"public"."t${relationId}"`,
    display: `public.t${relationId}`,
    partitioned: false,
    columns,
    types: columns.map(() => 'text'),
    writable: columns,
    alwaysIdentity: columns.map(() => false),
    identity: { kind: 'key', columns: [0] },
  };
}

const origin = (commitLsn: bigint) => ({ xid: 1, commitLsn });
const insert = (t: TargetTable, id: number, commit: bigint): RowChange => ({
  kind: 'insert',
  table: t,
  newRow: [String(id), 'x'],
  origin: origin(commit),
});
const move = (t: TargetTable, from: number, to: number, commit: bigint): RowChange => ({
  kind: 'update',
  table: t,
  oldRow: [String(from), null],
  newRow: [String(to), 'x'],
  origin: origin(commit),
});

describe('CopyPositions: which changes a table copied at its own snapshot still needs', () => {
  const positions = CopyPositions.from([whole(1, 'public.a', 100n), whole(2, 'public.b', 300n), whole(3, 'public.c', null, false)], 0n);

  it('skips a change committed before the table’s position and applies one at or past it', () => {
    assert.equal(positions.decide(insert(table(1), 1, 99n)), 'skip');
    assert.equal(positions.decide(insert(table(1), 1, 100n)), 'apply');
    assert.equal(positions.decide(insert(table(2), 1, 150n)), 'skip');
    assert.equal(positions.decide(insert(table(2), 1, 300n)), 'apply');
  });

  it('applies every change of a table the copy never planned, or one the stream has passed', () => {
    assert.equal(positions.decide(insert(table(42), 1, 1n)), 'apply');
    assert.equal(positions.countsTable('public.new', 1n), true);
    assert.equal(CopyPositions.from([whole(1, 'public.a', 100n)], 100n).decide(insert(table(1), 1, 50n)), 'apply');
  });

  it('skips every change of a table whose copy is still to come', () => {
    assert.equal(positions.decide(insert(table(3), 1, 10n ** 12n)), 'skip');
    assert.equal(positions.countsTable('public.c', 10n ** 12n), false);
    assert.equal(positions.consistentFrom, NOT_COPIED_YET);
  });

  it('reads the key ranges the plan writes', () => {
    assert.deepEqual(parseKeyRange('aid >= 5 AND aid < 10'), { column: 'aid', lower: 5n, upper: 10n });
    assert.deepEqual(parseKeyRange('"Key" < -3'), { column: 'Key', lower: undefined, upper: -3n });
    assert.equal(parseKeyRange(`ctid >= '(5,0)'::tid`), undefined);
  });

  // A table split by key into [..10) at 200, [10..20) at 100, [20..) at 300.
  const ranged = CopyPositions.from(
    [
      { oid: 5, table: 'public.t5', unit: 'key 1 of 3', predicate: 'id < 10', done: true, position: 200n },
      { oid: 5, table: 'public.t5', unit: 'key 2 of 3', predicate: 'id >= 10 AND id < 20', done: true, position: 100n },
      { oid: 5, table: 'public.t5', unit: 'key 3 of 3', predicate: 'id >= 20', done: true, position: 300n },
    ],
    0n,
  );

  it('counts a change of a key-split table by the range of the key it touches', () => {
    assert.equal(ranged.decide(insert(table(5), 5, 150n)), 'skip');
    assert.equal(ranged.decide(insert(table(5), 15, 150n)), 'apply');
    assert.equal(ranged.decide(insert(table(5), 25, 250n)), 'skip');
    // A key moved out of a range whose copy lacks the move into one whose copy has it: only the old key goes.
    assert.equal(ranged.decide(move(table(5), 15, 25, 150n)), 'delete-old');
    assert.equal(ranged.decide(move(table(5), 25, 15, 150n)), 'insert-new');
    assert.equal(ranged.decide(move(table(5), 5, 25, 150n)), 'skip');
    assert.equal(ranged.decide(move(table(5), 5, 15, 250n)), 'apply');
  });

  it('truncates only the ranges whose copies are older than the TRUNCATE', () => {
    assert.deepEqual(ranged.truncate(5, 250n), {
      kind: 'ranges',
      column: '"id"',
      ranges: [
        { lower: undefined, upper: 10n, position: 200n },
        { lower: 10n, upper: 20n, position: 100n },
      ],
    });
    assert.deepEqual(ranged.truncate(5, 50n), { kind: 'none' });
    assert.deepEqual(ranged.truncate(5, 300n), { kind: 'all' });
  });

  it('property: every change is in its range’s copy or applied, never both, never neither; a key move splits right', () => {
    fc.assert(
      fc.property(
        fc.array(fc.bigInt({ min: 1000n, max: 5000n }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.record({ from: fc.nat({ max: 99 }), to: fc.nat({ max: 99 }), commit: fc.bigInt({ min: 900n, max: 6000n }) }), {
          maxLength: 50,
        }),
        (rangePositions, changes) => {
          const width = Math.ceil(100 / rangePositions.length);
          const units: UnitPosition[] = rangePositions.map((position, i) => ({
            oid: 9,
            table: 'public.t9',
            unit: `key ${i + 1} of ${rangePositions.length}`,
            predicate:
              [i === 0 ? '' : `id >= ${i * width}`, i === rangePositions.length - 1 ? '' : `id < ${(i + 1) * width}`]
                .filter(Boolean)
                .join(' AND ') || 'id >= 0',
            done: true,
            position,
          }));
          const copy = CopyPositions.from(units, 0n);
          const inCopy = (key: number, commit: bigint) =>
            commit < rangePositions[Math.min(rangePositions.length - 1, Math.floor(key / width))]!;
          for (const c of changes) {
            const verdict = copy.decide(move(table(9), c.from, c.to, c.commit));
            const oldNeeds = !inCopy(c.from, c.commit);
            const newNeeds = !inCopy(c.to, c.commit);
            const expected = oldNeeds && newNeeds ? 'apply' : !oldNeeds && !newNeeds ? 'skip' : oldNeeds ? 'delete-old' : 'insert-new';
            if (verdict !== expected) return false;
          }
          return true;
        },
      ),
    );
  });
});
