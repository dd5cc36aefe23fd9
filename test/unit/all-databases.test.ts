import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { instanceFindings, type InstanceFacts } from '../../src/check/rules/instance.js';
import { Permits } from '../../src/plumbing/index.js';

describe('Permits: COPY jobs shared by the copies of several databases', () => {
  it('never lets more than its total run at once, and serves waiters in order', async () => {
    const permits = new Permits(2);
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const job = async (n: number) => {
      const release = await permits.acquire();
      running++;
      most = Math.max(most, running);
      order.push(n);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
      release();
      release(); // a second release gives back nothing more
    };
    await Promise.all(Array.from({ length: 7 }, (_, n) => job(n)));
    assert.equal(most, 2);
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5, 6]);
    // All permits are back: two can be taken at once again, a third waits.
    const [a, b] = [await permits.acquire(), await permits.acquire()];
    let third = false;
    const waiting = permits.acquire().then((release) => ((third = true), release));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(third, false);
    a();
    (await waiting)();
    b();
  });
});

describe('check --all-databases: the instance findings', () => {
  const facts = (over: Partial<InstanceFacts>): InstanceFacts => ({
    databases: ['crm', 'shop', 'analytics'],
    maxReplicationSlots: 10,
    maxWalSenders: 10,
    slotsUsed: 0,
    sendersUsed: 0,
    missingOnTarget: [],
    ...over,
  });

  it('wants a slot and a WAL sender per database, and one more each for its copy', () => {
    assert.deepEqual(instanceFindings(facts({ maxReplicationSlots: 6, maxWalSenders: 6 })), []);
    const short = instanceFindings(facts({ maxReplicationSlots: 8, slotsUsed: 3, maxWalSenders: 5 }));
    assert.deepEqual(
      short.map((f) => [f.id, f.severity]),
      [
        ['instance.replication-slots', 'error'],
        ['instance.wal-senders', 'error'],
      ],
    );
    assert.match(short[0]!.message, /3 databases \(6 needed\).*max_replication_slots = 8, 3 in use/);
    assert.match(short[0]!.fix, /^postgresql\.conf: max_replication_slots = 9, then restart/);
  });

  it('names the databases the target lacks', () => {
    const [missing] = instanceFindings(facts({ missingOnTarget: ['crm', 'shop'] }));
    assert.equal(missing?.id, 'instance.target-databases');
    assert.match(missing.message, /no database "crm", "shop" yet: checked as the new, empty database/);
    assert.equal(missing.severity, 'info');
  });
});
