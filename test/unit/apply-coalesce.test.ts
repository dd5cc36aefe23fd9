import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { RowChange } from '../../src/apply/changes.js';
import { OrderedApplySignal } from '../../src/apply/changes.js';
import { Coalescer, setMask, type TableWork } from '../../src/apply/coalesce.js';
import type { TargetTable } from '../../src/apply/target-tables.js';
import { UNCHANGED, type Tuple } from '../../src/replication/index.js';

/** A keyed table (id, a, b) keyed by its first column; a composite-keyed one (k1, k2, v). */
function keyedTable(relationId = 1, keyColumns: readonly number[] = [0]): TargetTable {
  return {
    relationId,
    qname: `"public"."t${relationId}"`,
    display: `public.t${relationId}`,
    partitioned: false,
    columns: ['"id"', '"a"', '"b"'],
    types: ['integer', 'text', 'text'],
    writable: ['"id"', '"a"', '"b"'],
    alwaysIdentity: [false, false, false],
    identity: { kind: 'key', columns: keyColumns },
  };
}

const origin = { xid: 1, commitLsn: 1n };
const insert = (table: TargetTable, row: Tuple): RowChange => ({ kind: 'insert', table, newRow: row, origin });
const update = (table: TargetTable, oldRow: Tuple | undefined, newRow: Tuple): RowChange => ({
  kind: 'update',
  table,
  oldRow,
  newRow,
  origin,
});
const remove = (table: TargetTable, oldRow: Tuple): RowChange => ({ kind: 'delete', table, oldRow, origin });

/** The target after `work`, as the apply writes it: deletes, then updates (only the set columns), then inserts. */
function applyWork(rows: Map<string, Tuple>, work: readonly TableWork[]): Map<string, Tuple> {
  const out = new Map(rows);
  for (const item of work) {
    for (const key of item.deletes) out.delete(String(key[0]));
    for (const [mask, updated] of item.updates) {
      for (const row of updated) {
        const id = String(row[0]);
        const before = out.get(id);
        assert.ok(before, `an update of ${id}, which is not there`);
        out.set(
          id,
          row.map((v, i) => (mask[i] === '1' ? v : before[i]!)),
        );
      }
    }
    for (const row of item.inserts) {
      assert.ok(!out.has(String(row[0])), `an insert of ${String(row[0])}, which is there`);
      out.set(String(row[0]), row);
    }
  }
  return out;
}

describe('Coalescer', () => {
  it('reduces an insert, updates and a delete of one key in one batch to nothing', () => {
    const t = keyedTable();
    const c = new Coalescer();
    c.add(insert(t, ['1', 'x', 'y']));
    c.add(update(t, undefined, ['1', 'x2', 'y']));
    c.add(remove(t, ['1', null, null]));
    const [work] = c.drain();
    assert.deepEqual([work!.deletes, [...work!.updates], work!.inserts], [[], [], []]);
  });

  it('turns a delete and a re-insert of one key into an update, and keeps values left unchanged by TOAST from an earlier update', () => {
    const t = keyedTable();
    const c = new Coalescer();
    c.add(remove(t, ['1', null, null]));
    c.add(insert(t, ['1', 'new', 'big']));
    c.add(update(t, undefined, ['1', 'newer', UNCHANGED]));
    const [work] = c.drain();
    assert.deepEqual([...work!.updates], [['111', [['1', 'newer', 'big']]]]);
  });

  it('moves a key A → B → C as a delete of A and an insert of C', () => {
    const t = keyedTable();
    const c = new Coalescer();
    c.add(update(t, ['1', null, null], ['2', 'v', 'w']));
    c.add(update(t, ['2', null, null], ['3', 'v', 'w']));
    const [work] = c.drain();
    assert.deepEqual(work!.deletes, [['1']]);
    assert.deepEqual(work!.inserts, [['3', 'v', 'w']]);
  });

  it('needs the ordered replay for a key change that keeps values it does not hold, and for an unchanged key', () => {
    const t = keyedTable();
    assert.throws(() => new Coalescer().add(update(t, ['1', null, null], ['2', 'v', UNCHANGED])), OrderedApplySignal);
    assert.throws(() => new Coalescer().add(update(t, undefined, [UNCHANGED, 'v', 'w'])), OrderedApplySignal);
  });

  it('keeps composite keys apart whatever bytes they hold', () => {
    const t = keyedTable(2, [0, 1]);
    const c = new Coalescer();
    c.add(update(t, undefined, ['x', '\u0001y', '10']));
    c.add(remove(t, ['x\u0001', 'y', null]));
    const [work] = c.drain();
    assert.deepEqual(work!.deletes, [['x\u0001', 'y']]);
    assert.deepEqual(
      [...work!.updates].flatMap(([, rows]) => rows),
      [['x', '\u0001y', '10']],
    );
  });

  it('says which relations it holds changes of, until drained', () => {
    const c = new Coalescer();
    c.add(insert(keyedTable(7), ['1', 'a', 'b']));
    assert.equal(c.holds(7), true);
    assert.equal(c.holds(8), false);
    c.drain();
    assert.equal(c.holds(7), false);
  });

  it('for any valid sequence of changes, applying the coalesced work gives what applying them one by one gives', () => {
    const seed = Number(process.env.PGFERRY_PROPERTY_SEED ?? Date.now() % 2 ** 31);
    const step = fc.record({
      op: fc.constantFrom('insert', 'update', 'delete', 'move', 'toast'),
      key: fc.nat(6),
      to: fc.nat(6),
      value: fc.string({ maxLength: 3 }),
    });
    fc.assert(
      fc.property(fc.uniqueArray(fc.nat(6), { maxLength: 5 }), fc.array(step, { maxLength: 40 }), (initialKeys, steps) => {
        const t = keyedTable();
        const initial = new Map<string, Tuple>(initialKeys.map((k) => [String(k), [String(k), `a${k}`, `b${k}`]]));
        const model = new Map(initial);
        const c = new Coalescer();
        for (const s of steps) {
          const id = String(s.key);
          const row = model.get(id);
          if (s.op === 'insert' && !row) {
            const inserted: Tuple = [id, s.value, 'i'];
            model.set(id, inserted);
            c.add(insert(t, inserted));
          } else if (s.op === 'update' && row) {
            const updated: Tuple = [id, s.value, row[2]!];
            model.set(id, updated);
            c.add(update(t, undefined, updated));
          } else if (s.op === 'toast' && row) {
            // b is an unchanged TOASTed value: the stream does not send it.
            model.set(id, [id, s.value, row[2]!]);
            c.add(update(t, undefined, [id, s.value, UNCHANGED]));
          } else if (s.op === 'delete' && row) {
            model.delete(id);
            c.add(remove(t, [id, null, null]));
          } else if (s.op === 'move' && row && !model.has(String(s.to))) {
            const moved: Tuple = [String(s.to), row[1]!, row[2]!];
            model.delete(id);
            model.set(String(s.to), moved);
            c.add(update(t, [id, null, null], moved));
          }
        }
        assert.deepEqual(applyWork(initial, c.drain()), model);
      }),
      { seed, numRuns: 500 },
    );
  });
});

describe('setMask', () => {
  it('marks the columns an update writes', () => {
    assert.equal(setMask(['1', UNCHANGED, null]), '101');
    assert.equal(setMask(['1', 'a']), '11');
  });
});
