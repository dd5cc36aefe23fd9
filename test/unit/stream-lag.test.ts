import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { postgresTimeToMs, SourceClock, streamLagMs } from '../../src/sync/stream-lag.js';
import { parseProgress } from '../../src/state/notify.js';
import { streamLagText } from '../../src/cli/status.js';

/** A source time in wire form (microseconds since 2000-01-01) for a Unix time in milliseconds. */
const wire = (ms: number) => BigInt(Math.round((ms - Date.UTC(2000, 0, 1)) * 1000));
const T = Date.UTC(2026, 11, 7, 10, 0, 0);

describe("the stream's lag to the millisecond", () => {
  it('reads wire timestamps to the microsecond', () => {
    assert.equal(postgresTimeToMs(0n), Date.UTC(2000, 0, 1));
    assert.equal(postgresTimeToMs(wire(T) + 1_500n), T + 1.5);
  });

  it('is 0 when nothing waits, however old the last commit', () => {
    assert.equal(streamLagMs(undefined, T, undefined), 0, 'nothing pending, clocks not even compared yet');
    assert.equal(streamLagMs(undefined, T + 3_600_000, 5), 0);
  });

  it('is the age of the oldest commit waiting, in milliseconds, not whole seconds', () => {
    assert.equal(streamLagMs(wire(T), T + 7.25, 0), 7.25);
    assert.equal(streamLagMs(wire(T), T + 1_234.5, 0), 1_234.5);
    assert.equal(streamLagMs(wire(T) + 123n, T + 1, 0), 0.877, 'to the microsecond');
  });

  it('is unknown while something waits and the clocks were never compared', () => {
    assert.equal(streamLagMs(wire(T), T + 10, undefined), undefined);
  });

  it("reads the commit on this machine's clock: a source clock 2 s ahead adds nothing", () => {
    const clock = new SourceClock();
    // The source's clock runs 2,000 ms ahead; keepalives take 3, 0.5 and 1 ms to arrive.
    clock.observe(T + 2_000, T + 3);
    clock.observe(T + 2_100, T + 100.5);
    clock.observe(T + 2_200, T + 201);
    assert.equal(clock.offsetMs, -1_999.5, 'the quickest message: the offset plus 0.5 ms of travel');
    // Committed at T + 2,300 by the source's clock (T + 300 here), now T + 310 here: 10 ms late, less the 0.5 ms of travel.
    assert.equal(streamLagMs(wire(T + 2_300), T + 310, clock.offsetMs), 9.5);
    // Never below 0 (an offset from a quicker message than the commit's own).
    assert.equal(streamLagMs(wire(T + 2_300), T + 299, clock.offsetMs), 0);
  });

  it('follows a clock that moves: offsets older than a minute are forgotten, the last one kept', () => {
    const clock = new SourceClock();
    assert.equal(clock.offsetMs, undefined);
    // The source's clock runs 500 ms ahead.
    clock.observe(T + 500, T + 1);
    assert.equal(clock.offsetMs, -499);
    // Then it is stepped back to agree with this one: the older, smaller offset still counts for a while…
    clock.observe(T + 10_000, T + 10_001);
    assert.equal(clock.offsetMs, -499);
    // …and is forgotten once a minute has passed (the last minute's keepalives took 2 ms).
    for (let s = 20; s <= 70; s += 10) clock.observe(T + s * 1000, T + s * 1000 + 2);
    assert.equal(clock.offsetMs, 2);
    const lonely = new SourceClock();
    lonely.observe(T, T + 4);
    assert.equal(lonely.offsetMs, 4, 'one keepalive long ago is still the best known');
  });
});

describe('progress notifications', () => {
  it('carry the applied position, the last fence and the lag', () => {
    assert.deepEqual(parseProgress('0/16B3748 0/16B3700 3.25'), { applied: 0x16b3748n, fence: 0x16b3700n, lagMs: 3.25 });
    assert.deepEqual(parseProgress('1/0 - -'), { applied: 1n << 32n, fence: undefined, lagMs: null });
    assert.equal(parseProgress(''), undefined);
    assert.equal(parseProgress('0/1 -'), undefined);
    assert.equal(parseProgress('x/1 - 2'), undefined);
    assert.equal(parseProgress('0/1 - NaN'), undefined);
  });
});

describe('status: the lag in words', () => {
  it('milliseconds below a second, seconds above, 0 said plainly', () => {
    assert.match(streamLagText(0, 120, true), /^0 ms: nothing committed on the source waits to be applied \(recorded 120 ms ago\)$/);
    assert.equal(streamLagText(3.25, undefined, true), "3.3 ms behind the source's commits");
    assert.equal(streamLagText(412.4, undefined, true), "412 ms behind the source's commits");
    assert.equal(streamLagText(1234, 2000, false), "1.23 s behind the source's commits (recorded 2.00 s ago, sync is not running)");
    assert.match(streamLagText(null, undefined, true), /not measured yet/);
  });
});
