import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AckQueue } from '../../src/sync/ack-queue.js';
import { Queue } from '../../src/sync/queue.js';

describe('AckQueue: the slot never passes what the target flushed', () => {
  it('gives back the furthest source position whose commit the flush has passed, and nothing twice', () => {
    const acks = new AckQueue();
    acks.committed(100n, 10n);
    acks.committed(200n, 20n);
    acks.committed(300n, 30n);
    assert.equal(acks.flushed(9n), undefined, 'nothing durable yet');
    assert.equal(acks.flushed(25n), 200n);
    assert.equal(acks.flushed(25n), undefined, 'already given');
    assert.equal(acks.lastTarget, 30n);
    assert.equal(acks.flushed(30n), 300n);
    assert.equal(acks.lastTarget, undefined);
  });

  it('for any commits and flush readings: each answer is covered by a flush, and positions only grow', () => {
    const seed = Number(process.env.PGFERRY_PROPERTY_SEED ?? Date.now() % 2 ** 31);
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.record({ commit: fc.nat(1000) }), fc.record({ flush: fc.nat(1000) })), { maxLength: 200 }),
        (events) => {
          const acks = new AckQueue();
          let source = 0n;
          let target = 0n;
          const commits: Array<{ source: bigint; target: bigint }> = [];
          let acknowledged = -1n;
          for (const event of events) {
            if ('commit' in event) {
              source += BigInt(event.commit) + 1n;
              target += BigInt(event.commit % 37) + 1n;
              acks.committed(source, target);
              commits.push({ source, target });
            } else {
              const flushedTo = BigInt(event.flush) * 10n;
              const given = acks.flushed(flushedTo);
              if (given === undefined) continue;
              assert.ok(given > acknowledged, 'positions only grow');
              acknowledged = given;
              // The commit that covers it ended at or before the flushed position...
              const covering = commits.find((c) => c.source === given)!;
              assert.ok(covering.target <= flushedTo);
              // ...and no later commit that the flush also passed was held back.
              const next = commits.find((c) => c.source > given);
              assert.ok(next === undefined || next.target > flushedTo);
            }
          }
        },
      ),
      { seed, numRuns: 200 },
    );
  });
});

describe('Queue', () => {
  it('keeps order across its compaction of a long consumed prefix', () => {
    const queue = new Queue<number>();
    for (let i = 0; i < 20_000; i++) queue.push(i);
    for (let i = 0; i < 15_000; i++) assert.equal(queue.shift(), i);
    for (let i = 20_000; i < 21_000; i++) queue.push(i);
    assert.equal(queue.length, 6_000);
    assert.equal(queue.first, 15_000);
    for (let i = 15_000; i < 21_000; i++) assert.equal(queue.shift(), i);
    assert.equal(queue.shift(), undefined);
  });
});
