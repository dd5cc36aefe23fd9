import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { CopyPositions } from '../../src/apply/copy-positions.js';
import { NOT_COPIED_YET } from '../../src/state/copy.js';

describe('CopyPositions: which changes a table copied at its own snapshot still needs', () => {
  const positions = new CopyPositions([
    { oid: 1, table: 'public.a', position: 100n },
    { oid: 2, table: 'public.b', position: 300n },
    { oid: 3, table: 'public.c', position: NOT_COPIED_YET },
  ]);

  it('skips a change committed before the table’s position and applies one at or past it', () => {
    assert.equal(positions.counts(1, 99n), false);
    assert.equal(positions.counts(1, 100n), true);
    assert.equal(positions.counts(2, 150n), false);
    assert.equal(positions.counts(2, 300n), true);
  });

  it('applies every change of a table the copy never planned (made on the source later)', () => {
    assert.equal(positions.counts(42, 1n), true);
    assert.equal(positions.countsTable('public.new', 1n), true);
  });

  it('skips every change of a table whose copy is still to come', () => {
    assert.equal(positions.counts(3, 10n ** 12n), false);
    assert.equal(positions.countsTable('public.c', 10n ** 12n), false);
  });

  it('names the position the target is consistent from, and without positions every change counts', () => {
    assert.equal(new CopyPositions([{ oid: 1, table: 'public.a', position: 100n }]).consistentFrom, 100n);
    assert.equal(CopyPositions.none.counts(7, 0n), true);
  });

  it('property: a table ends holding each committed change exactly once, whatever the positions and commits', () => {
    // Model: each table's copy holds the changes committed before its position; the stream
    // delivers every change committed at or after the slot's start. Applied + copied = all, once.
    fc.assert(
      fc.property(
        fc.array(fc.bigInt({ min: 1000n, max: 5000n }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.record({ table: fc.nat({ max: 5 }), commit: fc.bigInt({ min: 1000n, max: 6000n }) }), { maxLength: 60 }),
        (tablePositions, changes) => {
          const copy = new CopyPositions(tablePositions.map((position, oid) => ({ oid, table: `t${oid}`, position })));
          for (const change of changes) {
            if (change.table >= tablePositions.length) continue;
            const inCopy = change.commit < tablePositions[change.table]!;
            const applied = copy.counts(change.table, change.commit);
            if (inCopy === applied) return false;
          }
          return true;
        },
      ),
    );
  });
});
