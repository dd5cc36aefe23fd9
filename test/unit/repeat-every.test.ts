import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { repeatEvery, sleep } from '../../src/plumbing/index.js';

describe('repeatEvery: a round every ms, never two at once', () => {
  it('skips the ticks that find a round still running', async () => {
    const timers: NodeJS.Timeout[] = [];
    let running = 0;
    let most = 0;
    let rounds = 0;
    const repetition = repeatEvery(5, timers, async () => {
      running++;
      most = Math.max(most, running);
      await sleep(30);
      running--;
      rounds++;
    });
    assert.equal(timers.length, 1, 'the interval is handed to the caller');
    await sleep(200);
    await repetition.stop();
    assert.equal(most, 1, 'never two rounds at once');
    assert.ok(rounds >= 2, `${rounds} rounds of 30 ms in 200 ms`);
  });

  it('stop waits for the round in flight, and no round starts after it', async () => {
    const timers: NodeJS.Timeout[] = [];
    let finished = 0;
    let started = 0;
    const repetition = repeatEvery(5, timers, async () => {
      started++;
      await sleep(50);
      finished++;
    });
    while (started === 0) await sleep(1);
    await repetition.stop();
    assert.equal(finished, 1, 'the round in flight finished before stop returned');
    await sleep(30);
    assert.equal(started, 1, 'nothing ran after stop');
  });

  it('stops at once when no round is running', async () => {
    const timers: NodeJS.Timeout[] = [];
    let rounds = 0;
    const repetition = repeatEvery(1000, timers, async () => {
      rounds++;
    });
    const before = Date.now();
    await repetition.stop();
    assert.ok(Date.now() - before < 100);
    assert.equal(rounds, 0);
  });
});
