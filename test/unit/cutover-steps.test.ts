import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PgferryError } from '../../src/errors.js';
import { failedAt, failedInInstance, interrupted, lateWritesFailure, verifyFailed } from '../../src/cutover/failures.js';
import { failedIn } from '../../src/instance/index.js';
import { CutoverSteps } from '../../src/cutover/steps.js';
import type { TableResult, VerifyReport } from '../../src/verify/index.js';

/** A clock that moves only when told. */
function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let at = 0;
  return { now: () => at, advance: (ms) => (at += ms) };
}

describe('cut-over steps: each timed, and the current one known', () => {
  it('times every step it runs, in order, a failed one too, and remembers where it failed', async () => {
    const clock = manualClock();
    const steps = new CutoverSteps(clock.now);
    assert.equal(steps.current, 'catch up', 'a cut-over starts by catching up');
    const frozenAt = await steps.run('freeze', async () => {
      clock.advance(1.2345678);
      return '2026-12-01 10:00:00.123456+00';
    });
    assert.equal(frozenAt, '2026-12-01 10:00:00.123456+00', 'a step gives back what its work did');
    assert.equal(steps.current, 'freeze');
    await assert.rejects(
      steps.run('drain', async () => {
        clock.advance(10);
        throw new Error('drain timed out');
      }),
      /drain timed out/,
    );
    assert.equal(steps.current, 'drain', 'the failed step stays current');
    assert.deepEqual(steps.timed, [
      { step: 'freeze', ms: 1.235 },
      { step: 'drain', ms: 10 },
    ]);
  });

  it('a step the options leave out is current but not timed', async () => {
    const steps = new CutoverSteps(manualClock().now);
    await steps.run('sequences', async () => []);
    steps.skip('verify');
    assert.equal(steps.current, 'verify');
    assert.deepEqual(
      steps.timed.map((s) => s.step),
      ['sequences'],
    );
  });
});

describe('cut-over steps of several databases', () => {
  it("a step taken once for all (the pool's pause) is timed into each database's steps, and current in each", async () => {
    const clock = manualClock();
    const [a, b] = [new CutoverSteps(clock.now), new CutoverSteps(clock.now)];
    await a.run('freeze', async () => clock.advance(1));
    await assert.rejects(
      CutoverSteps.together([a, b], 'pause', async () => {
        clock.advance(2);
        throw new Error('PAUSE timed out');
      }),
      /PAUSE timed out/,
    );
    assert.equal(a.current, 'pause');
    assert.equal(b.current, 'pause');
    assert.deepEqual(a.timed, [
      { step: 'freeze', ms: 1 },
      { step: 'pause', ms: 2 },
    ]);
    assert.deepEqual(b.timed, [{ step: 'pause', ms: 2 }]);
  });
});

describe('cut-over failures: which step, and where it left the source and sync', () => {
  const cause = new PgferryError('drain-timeout', 'source: the drain timed out after 10.0 s; still running: pid 7', {
    side: 'source',
    fix: 'end those transactions',
  });

  it("keeps the cause's code, side and fix, and says the freeze was lifted", () => {
    const error = failedAt('drain', cause, 'read-only', { ok: true });
    assert.equal(error.code, 'drain-timeout');
    assert.equal(error.kind, 'query');
    assert.equal(error.side, 'source');
    assert.equal(error.fix, 'end those transactions');
    assert.equal(error.cause, cause);
    assert.equal(
      error.message,
      'cut-over failed at the drain step: source: the drain timed out after 10.0 s; still running: pid 7; the source is writable again and sync keeps running',
    );
  });

  it('says when the freeze could not be lifted, and says nothing of a freeze with --freeze none', () => {
    assert.match(
      failedAt('fence', cause, 'revoke', { ok: false, problem: 'connection refused' }).message,
      /; the source could NOT be unfrozen \(connection refused\): run pgferry cleanup --unfreeze-source; sync keeps running$/,
    );
    assert.match(failedAt('fence', cause, 'none', { ok: true }).message, /: pid 7; sync keeps running$/);
  });

  it('a foreign error is a query failure with the generic fix', () => {
    const error = failedAt('sequences', new Error('relation does not exist'), 'read-only', { ok: true });
    assert.equal(error.code, 'query');
    assert.equal(error.side, undefined);
    assert.equal(error.fix, 'fix the cause above and run pgferry cutover again');
    assert.match(error.message, /^cut-over failed at the sequences step: relation does not exist; /);
  });

  it("late writes undo the cut-over and say what they were, what became of the freeze and of sync's stop", () => {
    const late = { transactions: 2, tables: new Map([['public.items', 3]]) };
    const undone = lateWritesFailure(late, 'read-only', { ok: true }, undefined);
    assert.equal(undone.code, 'query');
    assert.equal(undone.side, 'source');
    assert.equal(
      undone.message,
      "cut-over undone: the source committed 2 transactions changing public.items (3 changes) after sync's final position, so the target lacks them; the freeze is lifted, and sync may run again",
    );
    const stuck = lateWritesFailure(late, 'revoke', { ok: false, problem: 'timeout' }, 'target gone');
    assert.match(
      stuck.message,
      /; the source could NOT be unfrozen \(timeout\): run pgferry cleanup --unfreeze-source, and sync's stop request could NOT be withdrawn \(target gone\): /,
    );
    assert.match(
      lateWritesFailure(late, 'none', { ok: true }, undefined).message,
      /; the source was not frozen \(--freeze none\), and sync may run again$/,
    );
  });

  it('a target that differs at the fence names up to five tables and the sequences behind', () => {
    const table = (name: string, status: TableResult['status']): TableResult => ({
      name,
      status,
      sourceRows: 10,
      targetRows: 9,
      seconds: 0,
      differences: [],
    });
    const report: VerifyReport = {
      identical: false,
      mode: 'counts',
      seconds: 0,
      tables: [table('public.ok', 'identical'), ...['a', 'b', 'c', 'd', 'e', 'f'].map((n) => table(`public.${n}`, 'different'))],
      sequences: [{ name: 'public.s', source: '5', target: '4', status: 'behind' }],
      schema: [],
      notes: [],
    };
    const error = verifyFailed(report);
    assert.equal(error.code, 'target-differs');
    assert.equal(error.side, 'target');
    assert.match(
      error.message,
      /^the target differs from the source at the fence: public\.a \(different: 10 rows on the source, 9 on the target\), /,
    );
    assert.match(error.message, /public\.e \(different: [^)]*\), sequence public\.s behind and 1 more tables$/);
    assert.doesNotMatch(error.message, /public\.ok/);
  });

  it('a target that differs at the fence in its schema only names the objects, never an empty list', () => {
    const report: VerifyReport = {
      identical: false,
      mode: 'full',
      seconds: 0,
      tables: [{ name: 'public.readings_p2026_12_11', status: 'identical', sourceRows: 3, targetRows: 3, seconds: 0, differences: [] }],
      sequences: [],
      schema: [
        { object: 'table public.readings_p2026_12_11', kind: 'changed' },
        { object: 'index public.readings_p2026_12_11_pkey', kind: 'missing' },
        { object: 'index public.stray', kind: 'extra' },
        ...['a', 'b', 'c', 'd'].map((n) => ({ object: `view public.${n}`, kind: 'changed' as const })),
      ],
      notes: [],
    };
    const error = verifyFailed(report);
    assert.equal(error.code, 'target-differs');
    assert.equal(
      error.message,
      'the target differs from the source at the fence: table public.readings_p2026_12_11 (defined differently), ' +
        'index public.readings_p2026_12_11_pkey (missing on the target), index public.stray (only on the target), ' +
        'view public.a (defined differently), view public.b (defined differently) and 2 more schema objects',
    );
    assert.match(error.fix ?? '', /pgferry verify/);
  });

  it('an interruption is its own code, of the usage kind', () => {
    assert.equal(interrupted().code, 'interrupted');
    assert.equal(interrupted().kind, 'usage');
    assert.equal(interrupted().message, 'interrupted');
  });

  it('in an instance, names the database and the step, and says where every database and sync was left', () => {
    const outcome = (database: string, pastStop = false, reopenProblem?: string) => ({
      database,
      lifted: { ok: true } as const,
      pastStop,
      reopenProblem,
    });
    const error = failedInInstance({ database: 'crm', step: 'drain', error: cause }, 'read-only', [
      outcome('analytics'),
      outcome('crm'),
      outcome('shop'),
    ]);
    assert.equal(error.code, 'drain-timeout');
    assert.equal(error.side, 'source');
    assert.equal(error.fix, 'end those transactions');
    assert.equal(
      error.message,
      'cut-over of 3 databases failed at the drain step of database crm: source: the drain timed out after 10.0 s; still running: pid 7; every source database is writable again, and every sync keeps running',
    );
    const stuck = failedInInstance({ database: 'shop', step: 'hand over', error: new Error('gone') }, 'read-only', [
      { ...outcome('crm', true), lifted: { ok: false, problem: 'timeout' } },
      outcome('shop', true, 'target gone'),
    ]);
    assert.match(stuck.message, /; database crm could NOT be unfrozen \(timeout\): run pgferry cleanup --unfreeze-source there; /);
    assert.match(stuck.message, /sync stopped in crm, shop: start it again there .*could NOT be withdrawn in shop \(target gone\)/);
    const late = failedInInstance(
      {
        database: 'shop',
        step: 'late writes',
        error: new Error('late'),
        late: { transactions: 1, tables: new Map([['public.items', 1]]) },
      },
      'read-only',
      [outcome('crm', true), outcome('shop', true)],
    );
    assert.match(late.message, /^cut-over of 2 databases undone: database shop's source committed 1 transaction changing public\.items/);
    assert.equal(late.side, 'source');
  });

  it('before the freeze, names the database and keeps the cause', () => {
    const error = failedIn('crm', cause);
    assert.equal(error.code, 'drain-timeout');
    assert.equal(error.fix, 'end those transactions');
    assert.match(error.message, /^database "crm": source: the drain timed out/);
  });
});
