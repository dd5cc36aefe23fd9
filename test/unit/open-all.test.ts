import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openAll } from '../../src/plumbing/index.js';

/** Stands in for a session: openAll only ever closes what it was given. */
class Fake {
  closed = 0;
  constructor(readonly name: string) {}
  async close(): Promise<void> {
    this.closed++;
  }
}

class Other {
  ended = 0;
  async end(): Promise<void> {
    this.ended++;
  }
}

const later = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));
const failLater = (ms: number, message: string) => new Promise<never>((_, reject) => setTimeout(() => reject(new Error(message)), ms));

describe('openAll: all of the sessions or none', () => {
  it('gives every session back in the order asked, each with its own type, and closes none', async () => {
    const a = new Fake('a');
    const b = new Other();
    const [first, second] = await openAll([later(5, a), Promise.resolve(b)], async (s) => {
      if (s instanceof Fake) await s.close();
      else await s.end();
    });
    // The tuple's types survive: these compile only if first is a Fake and second an Other.
    assert.equal(first.name, 'a');
    assert.equal(second.ended, 0);
    assert.equal(a.closed, 0);
  });

  it('closes those that opened and throws the failure of the first to fail in order asked', async () => {
    const a = new Fake('a');
    const c = new Fake('c');
    await assert.rejects(
      openAll([later(1, a), failLater(10, 'second failed'), later(5, c), failLater(1, 'fourth failed')], (s) => s.close()),
      /second failed/,
    );
    assert.equal(a.closed, 1);
    assert.equal(c.closed, 1);
  });

  it('waits for a slow opener before it throws, so nothing opens after the caller gave up', async () => {
    const slow = new Fake('slow');
    await assert.rejects(
      openAll([Promise.reject(new Error('refused')), later(20, slow)], (s) => s.close()),
      /refused/,
    );
    assert.equal(slow.closed, 1);
  });

  it('opens nothing for nothing', async () => {
    assert.deepEqual(await openAll([], async () => undefined), []);
  });
});
