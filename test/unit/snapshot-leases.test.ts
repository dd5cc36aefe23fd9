import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseLease, releasableAfterMs, SnapshotLeases, type Lease, type PositionedSnapshot } from '../../src/copy/snapshot-leases.js';

function lease(takenAt: number, users = 0, tables: string[] = []): Lease {
  return {
    held: { name: `s${takenAt}`, snapshot: `snap-${takenAt}`, position: BigInt(takenAt), release: () => Promise.resolve() },
    takenAt,
    users,
    tables: new Set(tables),
  };
}

describe('snapshot leases: a snapshot per table, shared while young, let go when nothing needs it', () => {
  it('keeps a table on its own lease (its ranges must share one snapshot), however old', () => {
    const own = lease(0, 1, ['big']);
    assert.deepEqual(chooseLease('big', new Map([['big', own]]), [own, lease(9_000)], 10_000, 5_000), { kind: 'table', lease: own });
  });

  it('shares the youngest lease made within the reuse window, and takes a new one past it', () => {
    const old = lease(1_000);
    const young = lease(8_000);
    assert.deepEqual(chooseLease('t', new Map(), [old, young], 10_000, 5_000), { kind: 'share', lease: young });
    assert.deepEqual(chooseLease('t', new Map(), [old], 10_000, 5_000), { kind: 'new' });
  });

  it('releases a lease only when no unit copies at it and no table waits for it, once it is too old to share', () => {
    assert.equal(releasableAfterMs(lease(0, 1), 10_000, 5_000), undefined);
    assert.equal(releasableAfterMs(lease(0, 0, ['big']), 10_000, 5_000), undefined);
    assert.equal(releasableAfterMs(lease(0), 10_000, 5_000), 0);
    assert.equal(releasableAfterMs(lease(8_000), 10_000, 5_000), 3_000);
  });

  it('takes one snapshot for two units of a table arriving together, and releases each once', async () => {
    const released: string[] = [];
    let made = 0;
    const source = {
      take: async (): Promise<PositionedSnapshot> => {
        const n = ++made;
        await new Promise((resolve) => setTimeout(resolve, 5));
        return { name: `s${n}`, snapshot: `snap${n}`, position: BigInt(n), release: () => Promise.resolve(void released.push(`s${n}`)) };
      },
    };
    const leases = new SnapshotLeases(source, 0);
    const [a, b] = await Promise.all([leases.acquire('big'), leases.acquire('big')]);
    assert.equal(a, b);
    assert.equal(made, 1);
    leases.unitDone(a, 'big', false);
    assert.deepEqual(released, []);
    leases.unitDone(b, 'big', true);
    await new Promise((resolve) => setTimeout(resolve, 1));
    assert.deepEqual(released, ['s1']);
    const c = await leases.acquire('small');
    assert.notEqual(c, a);
    await leases.close();
    assert.deepEqual(released, ['s1', 's2']);
  });
});
