import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { catchUpSeconds } from '../../src/sync/monitor.js';

const MB = 1024 * 1024;

describe('catchUpSeconds: the time left on a backlog, from how fast it shrank', () => {
  it('divides the backlog by the rate it shrank at over the window', () => {
    // 100 MB → 80 MB in 10 s: 2 MB/s net, 80 MB left: 40 s.
    assert.equal(
      catchUpSeconds([
        { at: 0, lagBytes: 100 * MB },
        { at: 5_000, lagBytes: 90 * MB },
        { at: 10_000, lagBytes: 80 * MB },
      ]),
      40,
    );
  });

  it('says nothing when the lag grows or holds, when it is under a megabyte, or from one sample', () => {
    assert.equal(
      catchUpSeconds([
        { at: 0, lagBytes: 10 * MB },
        { at: 1000, lagBytes: 12 * MB },
      ]),
      undefined,
    );
    assert.equal(
      catchUpSeconds([
        { at: 0, lagBytes: 10 * MB },
        { at: 1000, lagBytes: 10 * MB },
      ]),
      undefined,
    );
    assert.equal(
      catchUpSeconds([
        { at: 0, lagBytes: 3 * MB },
        { at: 1000, lagBytes: 0.5 * MB },
      ]),
      undefined,
    );
    assert.equal(catchUpSeconds([{ at: 0, lagBytes: 10 * MB }]), undefined);
    assert.equal(catchUpSeconds([]), undefined);
  });
});
