import { performance } from 'node:perf_hooks';
import type { ConnectionSpec } from '../config/index.js';
import { messageOf, usageError } from '../errors.js';
import { failedIn } from '../instance/index.js';
import type { Logger } from '../log/index.js';
import { PoolSwitch, type PoolReport } from '../pgbouncer/index.js';
import type { CutoverOptions } from './context.js';
import { DatabaseCutover, LateWritesSignal } from './database.js';
import {
  failedAt,
  failedInInstance,
  lateWritesFailure,
  pauseTooLong,
  throwIfInterrupted,
  withPoolOutcome,
  type DatabaseOutcome,
} from './failures.js';
import type { CutoverReport } from './finish.js';
import { CutoverSteps, round } from './steps.js';

/**
 * Databases prepared at once before the freeze: each verifies every row while its sync streams,
 * on as many sessions per side as verify takes; more at once would crowd the servers.
 */
const PREPARE_AT_ONCE = 4;

/**
 * `pgferry cutover`, while `pgferry sync` streams in another process, for one database or for
 * several under one freeze (database.ts has each step):
 *  1. make the way back on the target (way-back.ts), unless `--no-fallback`; with `--verify
 *     changes` (the default), have sync record the rows it applies, verify every row while sync
 *     streams, and compare the rows recorded since, until little is left (changes.ts); then
 *     wait until sync is within `--max-lag` of the source;
 *  2. freeze writes on the source and drain the sessions that could still write;
 *  3. emit a fence into the change stream and wait until sync has applied it: the target now
 *     holds every transaction the source committed;
 *  4. set the target's sequences to the source's values (plus the margin; read while the fence
 *     travels), and make its large objects the source's (they are in no stream; most changes
 *     were carried just before the freeze);
 *  5. verify: the rows sync recorded since the last look before the freeze (changes), or the
 *     counts of every table, or every row (full);
 *  6. stop sync;
 *  7. read the slot for writes committed past sync's final position (late-writes.ts): a
 *     session that escaped the freeze. If there are any, the cut-over is undone: the stop
 *     request is withdrawn so sync can carry them, and the freeze is lifted;
 *  8. hand over: the way back starts at the target's position now, when both sides are equal
 *     (at once with 7: a late write undoes the hand-over with the rest).
 * What a freeze changes is written on the target before the source is touched. If any step
 * from 2 to 5 fails, the freeze is lifted, sync keeps running, and the error says which step;
 * the way back made in step 1 is removed again whenever the cut-over does not complete.
 *
 * Several databases (an instance): step 1 for each, a few at once; then one freeze: each step
 * from 2 to 8 taken in every database at once, and the next only once all have taken it. A
 * failure in any database at any step lifts the freeze on all of them, withdraws every stop
 * request made, and removes every way back prepared; the error names the database and the step.
 */
export async function cutover(options: CutoverOptions): Promise<CutoverReport> {
  const { reports } = await cutOver([{ database: undefined, options }]);
  return reports[0]!;
}

export interface InstanceCutoverOptions extends Omit<CutoverOptions, 'source' | 'target'> {
  /** Each database, with both sides' connections to it (instance/: inDatabase). */
  readonly databases: ReadonlyArray<{ readonly database: string; readonly source: ConnectionSpec; readonly target: ConnectionSpec }>;
}

export type DatabaseCutoverReport = { readonly database: string } & CutoverReport;

export interface InstanceCutoverReport {
  /** From the first freeze (or PgBouncer's pause) until the last database was handed over: every database was frozen for at most this. */
  readonly downtimeMs: number;
  readonly databases: readonly DatabaseCutoverReport[];
}

/** `pgferry cutover --all-databases`: the databases given, under one freeze; each has its own sync and state on its target. */
export async function cutoverDatabases(options: InstanceCutoverOptions): Promise<InstanceCutoverReport> {
  const { databases, ...settings } = options;
  if (databases.length === 0) throw usageError('no database to cut over', 'name at least one database');
  const { downtimeMs, reports } = await cutOver(
    databases.map((d) => ({ database: d.database, options: { ...settings, source: d.source, target: d.target } })),
  );
  return { downtimeMs, databases: reports.map((report, i) => ({ database: databases[i]!.database, ...report })) };
}

interface Unit {
  /** Named in messages when the cut-over spans several databases. */
  readonly database: string | undefined;
  readonly options: CutoverOptions;
}

async function cutOver(units: readonly Unit[]): Promise<{ downtimeMs: number; reports: CutoverReport[] }> {
  const first = units[0]!.options;
  const log = first.logger.child({ step: 'cutover' });
  // A database that fails before the freeze stops the others' waits too.
  const halt = new AbortController();
  const signal = AbortSignal.any([halt.signal, ...(first.signal ? [first.signal] : [])]);
  const opened: Array<DatabaseCutover | undefined> = units.map(() => undefined);
  let pool: PoolSwitch | undefined;
  const name = (database: string | undefined, error: unknown): unknown =>
    database === undefined || units.length === 1 ? error : failedIn(database, error);
  try {
    const refused = await eachAtOnce(
      units.map((unit, i) => ({ unit, i })),
      units.length,
      async ({ unit, i }) => {
        opened[i] = await DatabaseCutover.open({ ...unit.options, signal }, unit.database);
      },
      halt,
    );
    if (refused) throw name(refused.item.unit.database, refused.error);
    const cuts = opened.map((c) => c!);
    // PgBouncer's console, pooled database and file are checked before anything is made.
    pool = first.pgbouncer
      ? await PoolSwitch.prepare(
          first.pgbouncer,
          units.map((u) => ({ source: u.options.source, target: u.options.target })),
        )
      : undefined;
    let done: { downtimeMs: number; pgbouncer: PoolReport | null };
    try {
      for (const [step, atOnce] of [
        [(c: DatabaseCutover) => c.prepare(), PREPARE_AT_ONCE],
        [(c: DatabaseCutover) => c.approach(), cuts.length],
        [(c: DatabaseCutover) => c.recordIntent(), cuts.length],
      ] as const) {
        const failed = await eachAtOnce(cuts, atOnce, step, halt);
        if (failed) {
          // A database whose freeze was recorded while another failed: its record says it failed.
          await Promise.all(cuts.filter((c) => c.frozenIntent).map((c) => c.unfreeze()));
          throw name(failed.item.database, failed.error);
        }
      }
      done = await whileFrozen(cuts, pool, first, log);
    } catch (error) {
      await Promise.all(cuts.map((c) => c.withdrawWayBack()));
      throw error;
    }
    const finished = await Promise.allSettled(cuts.map((c) => c.finish(done.downtimeMs, done.pgbouncer)));
    const unfinished = finished.flatMap((f, i) => (f.status === 'rejected' ? [{ cut: cuts[i]!, error: f.reason as unknown }] : []));
    for (const { cut, error } of unfinished.slice(1))
      cut.log.error({ error: messageOf(error) }, 'the cut-over of this database is done but finishing it failed');
    if (unfinished[0]) throw name(unfinished[0].cut.database, unfinished[0].error);
    return { downtimeMs: done.downtimeMs, reports: finished.flatMap((f) => (f.status === 'fulfilled' ? [f.value] : [])) };
  } finally {
    await Promise.all(opened.map((c) => c?.close()));
    await pool?.close();
  }
}

/** A step failed in one database (or, with none named, in a step taken for all). */
class StepFailure extends Error {
  constructor(
    readonly cut: DatabaseCutover | undefined,
    readonly failure: unknown,
  ) {
    super(messageOf(failure));
    this.name = 'StepFailure';
  }
}

/**
 * Steps 2 to 8, with the sources frozen: the one downtime and PgBouncer's report, or, on any
 * failure, the freeze lifted everywhere and an error saying at which step of which database
 * (and, past the stop, every sync's stop withdrawn).
 */
async function whileFrozen(
  cuts: readonly DatabaseCutover[],
  pool: PoolSwitch | undefined,
  options: CutoverOptions,
  log: Logger,
): Promise<{ downtimeMs: number; pgbouncer: PoolReport | null }> {
  // Clients wait in PgBouncer's pause from its start: no step may take them past --max-pause.
  const pauseLimit = pool ? AbortSignal.timeout(pool.maxPauseMs) : undefined;
  // The first database to fail stops the others' waits: the freeze is lifted without waiting out their deadlines.
  const halt = new AbortController();
  const signal = AbortSignal.any([halt.signal, ...(pauseLimit ? [pauseLimit] : []), ...(options.signal ? [options.signal] : [])]);
  const every = async (work: (cut: DatabaseCutover) => Promise<void>): Promise<void> => {
    const failed = await eachAtOnce(cuts, cuts.length, work, halt);
    if (failed) throw new StepFailure(failed.item, failed.error);
  };
  const steps = cuts.map((c) => c.steps);
  let frozenFrom = performance.now();
  try {
    if (pool) {
      log.info({ database: pool.name }, 'pausing PgBouncer: new transactions wait, running ones finish');
      await CutoverSteps.together(steps, 'pause', () => pool.pause(options.drainTimeoutMs, log));
      frozenFrom = performance.now();
    }
    await every((c) => c.freeze());
    await every((c) => c.drain(signal));
    await every((c) => c.fence(signal));
    await every((c) => c.carryLargeObjects());
    await every((c) => c.verify(signal));
    await every((c) => c.stopSync());
    await every((c) => c.checkLateWritesAndHandOver());
    let pgbouncer: PoolReport | null = null;
    if (pool) {
      throwIfInterrupted(signal);
      await CutoverSteps.together(steps, 'repoint', () => pool.repoint());
    }
    await every((c) => c.unfreezeTarget());
    if (pool) {
      pgbouncer = await CutoverSteps.together(steps, 'resume', () => pool.resume());
      log.info(
        { database: pgbouncer.database, pausedMs: pgbouncer.pausedMs, pointsTo: pgbouncer.pointsTo },
        'PgBouncer resumed on the target',
      );
      if (pgbouncer.unresumed.length > 0)
        log.error(
          { unresumed: pgbouncer.unresumed },
          `PgBouncer refused to resume ${pgbouncer.unresumed.join(', ')} (pointing at the target, paused): run RESUME on its console for each; the cut-over stands, as the other pools' clients already reach the target`,
        );
    }
    // The sources stayed frozen through the check and the hand-over: both are part of the downtime.
    return { downtimeMs: round(performance.now() - frozenFrom), pgbouncer };
  } catch (thrown) {
    const lifted = await Promise.all(cuts.map((c) => c.unfreeze()));
    // Lifted first: clients resumed on a frozen source would fail.
    const poolProblem = pool ? await pool.undo(log) : undefined;
    const reopened = await Promise.all(cuts.map((c) => c.reopenSync()));
    const { cut, failure } = thrown instanceof StepFailure ? thrown : { cut: undefined, failure: thrown };
    const step = (cut ?? cuts[0]!).steps.current;
    const error = pauseLimit?.aborted && !options.signal?.aborted ? pauseTooLong(pool!, step) : failure;
    const mode = cuts[0]!.plan.mode;
    if (cuts.length === 1) {
      const [only] = reopened;
      if (error instanceof LateWritesSignal)
        throw withPoolOutcome(lateWritesFailure(error.late, mode, lifted[0]!, only!.problem), pool, poolProblem);
      throw withPoolOutcome(
        failedAt(step, error, mode, lifted[0]!, { syncStopped: only!.pastStop, reopenProblem: only!.problem }),
        pool,
        poolProblem,
      );
    }
    const outcomes: DatabaseOutcome[] = cuts.map((c, i) => ({
      database: c.database!,
      lifted: lifted[i]!,
      pastStop: reopened[i]!.pastStop,
      reopenProblem: reopened[i]!.problem,
    }));
    const late = error instanceof LateWritesSignal ? error.late : undefined;
    throw withPoolOutcome(failedInInstance({ database: cut?.database, step, error, late }, mode, outcomes), pool, poolProblem);
  }
}

/**
 * Runs `work` for every item, at most `atOnce` at a time. The first failure stops new items
 * from starting and aborts `halt` (what the others wait on gives up); the rest are let finish.
 * Returns the first failure, if any.
 */
async function eachAtOnce<T>(
  items: readonly T[],
  atOnce: number,
  work: (item: T) => Promise<void>,
  halt: AbortController,
): Promise<{ item: T; error: unknown } | undefined> {
  let first: { item: T; error: unknown } | undefined;
  let next = 0;
  const lane = async (): Promise<void> => {
    while (first === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        if (first === undefined) {
          first = { item, error };
          halt.abort();
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(atOnce, items.length) }, lane));
  return first;
}
