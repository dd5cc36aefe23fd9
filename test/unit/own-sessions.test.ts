import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serverKeepalives } from '../../src/config/index.js';
import { isLostOwnSession, OWN_RUN, sessionMarkIn, sessionName, sessionNumberIn, type ServerSession } from '../../src/plumbing/index.js';
import { parseDuration } from '../../src/cli/options.js';
import { sortLockHolders } from '../../src/sync/lock-watch.js';
import { PgferryError } from '../../src/errors.js';

describe("pgferry's own sessions, by their application_name", () => {
  it('names the base, the run with the session number, and the migration, in what the server keeps', () => {
    assert.equal(sessionName('pgferry', { run: 'k3f9a2', number: 17 }, 'orders_3fa9c2e1'), 'pgferry k3f9a2/17 orders_3fa9c2e1');
    assert.equal(sessionName('pgferry', { run: 'k3f9a2', number: 1 }, undefined), 'pgferry k3f9a2/1', 'before the migration is known');
    const long = sessionName('pgferry', { run: 'k3f9a2', number: 12345 }, 'm'.repeat(50));
    assert.equal(long.length, 63, 'the server keeps 63 bytes: the migration is cut to fit');
    assert.ok(long.startsWith('pgferry k3f9a2/12345 mmm'));
    const user = sessionName('x'.repeat(80), { run: 'k3f9a2', number: 3 }, 'orders');
    assert.ok(user.length <= 63 && user.includes(' k3f9a2/3'), `a long base is cut, never the mark: ${user}`);
    assert.equal(
      sessionName('überführung', { run: 'k3f9a2', number: 3 }, undefined),
      '?berf?hrung k3f9a2/3',
      'printable ASCII only, one byte a character, as the server would keep it',
    );
  });

  it('reads the session number of a run back, and only of that run', () => {
    assert.equal(sessionNumberIn('pgferry k3f9a2/17 orders', 'k3f9a2'), 17);
    assert.equal(sessionNumberIn('my app k3f9a2/4', 'k3f9a2'), 4, 'a base of several words');
    assert.equal(sessionNumberIn('pgferry zzzzzz/17 orders', 'k3f9a2'), undefined, 'another run');
    assert.equal(sessionNumberIn('pgferry k3f9a2/x', 'k3f9a2'), undefined);
    assert.equal(sessionNumberIn('pgferry k3f9a2/017', 'k3f9a2'), undefined);
    assert.equal(sessionNumberIn('psql', 'k3f9a2'), undefined);
    assert.equal(sessionNumberIn(null, 'k3f9a2'), undefined, 'a background process has none');
  });

  it("reads any run's mark, for naming another pgferry's session", () => {
    assert.deepEqual(sessionMarkIn('pgferry zzzzzz/7 orders'), { run: 'zzzzzz', number: 7 });
    assert.equal(sessionMarkIn('pgferry'), undefined);
    assert.equal(sessionMarkIn('psql 12/3'), undefined);
    assert.equal(sessionMarkIn(null), undefined);
  });

  it('takes a backend for a lost session of ours only when it carries our run and a number no open session has', () => {
    const open = new Set([2, 5]);
    assert.equal(isLostOwnSession('pgferry k3f9a2/1 orders', 'k3f9a2', open), true, 'ours, closed on our side');
    assert.equal(isLostOwnSession('pgferry k3f9a2/2 orders', 'k3f9a2', open), false, 'ours and open: never');
    assert.equal(isLostOwnSession('pgferry zzzzzz/1 orders', 'k3f9a2', open), false, 'another run may be alive: never');
    assert.equal(isLostOwnSession('pgferry', 'k3f9a2', open), false, 'no mark');
    assert.equal(isLostOwnSession('psql', 'k3f9a2', open), false);
  });

  it("this process's run is a word of six lower-case letters and digits", () => {
    assert.match(OWN_RUN, /^[0-9a-z]{6}$/);
  });
});

describe("the server's keepalives for pgferry's sessions", () => {
  it('give up on a silent client within the peer timeout: three probes in its second half', () => {
    assert.deepEqual(serverKeepalives(60_000), { tcp_keepalives_idle: '30', tcp_keepalives_interval: '10', tcp_keepalives_count: '3' });
    assert.deepEqual(serverKeepalives(10_000), { tcp_keepalives_idle: '7', tcp_keepalives_interval: '1', tcp_keepalives_count: '3' });
    for (const ms of [5_000, 7_500, 60_000, 90_000, 600_000]) {
      const k = serverKeepalives(ms);
      const total = Number(k.tcp_keepalives_idle) + Number(k.tcp_keepalives_interval) * Number(k.tcp_keepalives_count);
      assert.equal(total, Math.ceil(ms / 1000), `${ms} ms: gone after ${total} s`);
    }
  });
});

describe('--peer-timeout', () => {
  it('takes a duration with its unit, a bare number as seconds, and refuses one too short or unreadable', () => {
    assert.equal(parseDuration('60s', '--peer-timeout', 5000), 60_000);
    assert.equal(parseDuration('2min', '--peer-timeout', 5000), 120_000);
    assert.equal(parseDuration('7500ms', '--peer-timeout', 5000), 7_500);
    assert.equal(parseDuration('90', '--peer-timeout', 5000), 90_000);
    for (const bad of ['1s', 'soon', '', '-5s', '10h']) {
      assert.throws(
        () => parseDuration(bad, '--peer-timeout', 5000),
        (error: unknown) => error instanceof PgferryError && error.kind === 'usage' && /--peer-timeout 60s/.test(error.fix ?? ''),
        bad,
      );
    }
  });
});

describe('what the apply waits on', () => {
  const session = (pid: number, application: string): ServerSession => ({
    pid,
    application,
    user: 'app',
    state: 'idle in transaction',
    backendType: 'client backend',
    since: new Date(0),
    query: 'UPDATE t SET v = $1',
  });

  it("ends the holders that are pgferry's own lost sessions and names the others", () => {
    const lost = session(1, 'pgferry k3f9a2/1 orders');
    const earlierRun = session(2, 'pgferry zzzzzz/7 orders');
    const app = session(3, 'psql');
    const { end, name } = sortLockHolders([lost, earlierRun, app], (h) => isLostOwnSession(h.application, 'k3f9a2', new Set([9])));
    assert.deepEqual(
      end.map((h) => h.pid),
      [1],
    );
    assert.deepEqual(
      name.map((h) => h.pid),
      [2, 3],
      "another run's session is named, not ended: that run may be alive",
    );
  });
});
