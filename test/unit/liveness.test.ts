import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluateInbound } from '../../src/replication/liveness.js';
import { applyConnectionLost, livenessTimings } from '../../src/sync/liveness.js';

describe('liveness: when a silent peer is taken for gone', () => {
  it("takes a peer silent for its side's peer timeout (at least 5 s) for gone, and asks the walsender for a word before", () => {
    const timings = livenessTimings(60_000, 90_000);
    assert.equal(timings.silenceLimitMs, 60_000, "the walsender's silence: the source's timeout, as wal_receiver_timeout");
    assert.equal(timings.applyStallMs, 90_000, "the apply's wait: the target's");
    assert.equal(timings.monitorDeadlineMs, 90_000, 'a monitor round asks both');
    assert.ok(timings.askAfterMs < timings.silenceLimitMs);
    assert.equal(livenessTimings(100, 100).silenceLimitMs, 5_000);
  });

  it("judges the walsender's silence: fine, then ask for an answer, then lost; never while reading is paused", () => {
    const timings = livenessTimings(5_000, 5_000);
    assert.equal(evaluateInbound(0, false, timings), 'fine');
    assert.equal(evaluateInbound(timings.askAfterMs, false, timings), 'ask');
    assert.equal(evaluateInbound(timings.silenceLimitMs - 1, false, timings), 'ask');
    assert.equal(evaluateInbound(timings.silenceLimitMs, false, timings), 'lost');
    assert.equal(evaluateInbound(10 * timings.silenceLimitMs, true, timings), 'fine');
  });

  it('takes the apply connection for dead only when both ends wait on each other past the limit', () => {
    const timings = livenessTimings(5_000, 5_000);
    const long = timings.applyStallMs + 1;
    assert.equal(applyConnectionLost(undefined, undefined, timings), undefined, 'not waiting: nothing to judge');
    assert.equal(applyConnectionLost(1000, undefined, timings), undefined, 'a short wait is a wait');
    assert.match(applyConnectionLost(long, undefined, timings) ?? '', /gone/);
    assert.match(applyConnectionLost(long, { state: 'idle in transaction', sinceMs: long }, timings) ?? '', /dead/);
    assert.match(applyConnectionLost(long, { state: 'idle', sinceMs: long }, timings) ?? '', /dead/);
    assert.equal(
      applyConnectionLost(long, { state: 'active', sinceMs: long }, timings),
      undefined,
      'a statement at work (or on a lock) is not a dead connection',
    );
    assert.equal(
      applyConnectionLost(long, { state: 'idle in transaction', sinceMs: 500 }, timings),
      undefined,
      'the backend just answered',
    );
  });
});

describe("lag in seconds against the source's WAL position", () => {
  it('counts from when the source was where the target is, also for a backlog never received, on one clock', async () => {
    const { SourcePositions } = await import('../../src/sync/monitor.js');
    const positions = new SourcePositions();
    // The source writes; the target has applied nothing of it yet (still decoding on the source).
    const fresh = new SourcePositions();
    assert.equal(fresh.lagSeconds(500n, 100n, 0), undefined, 'started behind a backlog: unknown, not small');
    assert.equal(fresh.lagSeconds(600n, 400n, 1000), undefined);
    assert.equal(fresh.lagSeconds(700n, 500n, 2000), 2, 'the first reading is reached: the source was there 2 s ago');
    assert.equal(positions.lagSeconds(100n, 100n, 0), 0, 'caught up');
    assert.equal(positions.lagSeconds(200n, 100n, 1000), 1, 'the source passed the target after the reading at 0 s');
    assert.equal(positions.lagSeconds(300n, 100n, 2000), 2);
    assert.equal(positions.lagSeconds(400n, 100n, 5000), 5, 'still nothing applied: the lag grows with the clock');
    // The target reaches what the source held at 2 s: the source passed it after that reading.
    assert.equal(positions.lagSeconds(500n, 300n, 6000), 4);
    assert.equal(positions.lagSeconds(500n, 500n, 7000), 0, 'caught up again');
    assert.equal(positions.lagSeconds(600n, 500n, 7500), 0.5);
  });
});

describe('the WAL guard: a stuck apply past --max-retained-wal stops sync', () => {
  it('stops only when the slot holds more than the limit and nothing was applied for a minute', async () => {
    const { walGuardVerdict, STALLED_AFTER_MS } = await import('../../src/sync/wal-guard.js');
    const gb = 1024 ** 3;
    assert.equal(walGuardVerdict('s', undefined, gb, 10 * STALLED_AFTER_MS), undefined, 'unknown retained WAL: go on');
    assert.equal(walGuardVerdict('s', gb / 2, gb, 10 * STALLED_AFTER_MS), undefined, 'under the limit');
    assert.equal(walGuardVerdict('s', 2 * gb, gb, STALLED_AFTER_MS - 1), undefined, 'over it, but the apply moves');
    const stop = walGuardVerdict('pgferry_x', 2 * gb, gb, STALLED_AFTER_MS);
    assert.match(
      stop?.message ?? '',
      /pgferry_x holds 2048 MB of WAL, above --max-retained-wal \(1024 MB\), and nothing was applied for 60 s/,
    );
    assert.match(stop?.fix ?? '', /pgferry cleanup/);
  });
});
