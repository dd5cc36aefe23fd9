import { messageOf, PgferryError } from '../errors.js';
import { describeSchemaDifference, sequenceDiffers, type VerifyReport } from '../verify/index.js';
import type { FreezeMode } from './freeze.js';
import { describeLateWrites, type LateWrites } from './late-writes.js';
import type { CutoverStepName } from './steps.js';

/** Whether a failed cut-over could lift its freeze, and if not, why. */
export type Lifted = { readonly ok: true } | { readonly ok: false; readonly problem: string };

/**
 * A step from the freeze to the stop failed: the error says which step, and where that left the
 * source and sync. The cause's code, side and fix stay, so "the drain timed out" is still
 * 'drain-timeout' to a caller.
 */
export function failedAt(
  step: CutoverStepName,
  error: unknown,
  freeze: FreezeMode,
  lifted: Lifted,
  sync: { readonly syncStopped: boolean; readonly reopenProblem: string | undefined } = { syncStopped: false, reopenProblem: undefined },
): PgferryError {
  const cause = error instanceof PgferryError ? error : undefined;
  const syncNow = !sync.syncStopped
    ? 'sync keeps running'
    : sync.reopenProblem === undefined
      ? "sync stopped: start it again (it continues from the target's position)"
      : `sync stopped, and its stop request could NOT be withdrawn (${sync.reopenProblem}): run UPDATE pgferry.sync SET stop_requested_at = NULL, stop_reason = NULL on the target before starting sync again`;
  const unfrozen =
    freeze === 'none'
      ? syncNow
      : lifted.ok
        ? `the source is writable again and ${syncNow}`
        : `the source could NOT be unfrozen (${lifted.problem}): run pgferry cleanup --unfreeze-source; ${syncNow}`;
  return new PgferryError(cause?.code ?? 'query', `cut-over failed at the ${step} step: ${messageOf(error)}; ${unfrozen}`, {
    side: cause?.side,
    fix: cause?.fix ?? 'fix the cause above and run pgferry cutover again',
    cause: error,
  });
}

/**
 * Writes past sync's final position undid the cut-over: the error says what they were, and
 * where that left the source and sync (`reopenProblem`: why sync's stop request could not be
 * withdrawn, if it could not).
 */
export function lateWritesFailure(late: LateWrites, freeze: FreezeMode, lifted: Lifted, reopenProblem: string | undefined): PgferryError {
  const source =
    freeze === 'none'
      ? 'the source was not frozen (--freeze none)'
      : lifted.ok
        ? 'the freeze is lifted'
        : `the source could NOT be unfrozen (${lifted.problem}): run pgferry cleanup --unfreeze-source`;
  const sync =
    reopenProblem === undefined
      ? 'sync may run again'
      : `sync's stop request could NOT be withdrawn (${reopenProblem}): run UPDATE pgferry.sync SET stop_requested_at = NULL, stop_reason = NULL on the target before starting sync again`;
  return new PgferryError(
    'query',
    `cut-over undone: the source committed ${describeLateWrites(late)} after sync's final position, so the target lacks them; ${source}, and ${sync}`,
    {
      side: 'source',
      fix:
        'something still writes to the source: a session that set default_transaction_read_only off or ran BEGIN READ WRITE, or, with --freeze none, the application itself. ' +
        "Start pgferry sync again (it continues from the target's position and carries those writes), stop that writer, and cut over again, with --freeze revoke --roles <its role> to hold it",
    },
  );
}

export function verifyFailed(report: VerifyReport): PgferryError {
  const different = report.tables.filter((t) => t.status !== 'identical');
  const tables = different
    .slice(0, 5)
    .map((t) => `${t.name} (${t.status}: ${t.sourceRows} rows on the source, ${t.targetRows} on the target)`);
  const sequences = report.sequences.filter(sequenceDiffers).map((s) => `sequence ${s.name} ${s.status}`);
  // A schema difference alone fails the check too (a partition left unattached holds the same
  // rows as the source's): it must be named, or the message lists nothing.
  const schema = report.schema.slice(0, 5).map(describeSchemaDifference);
  const more = [
    ...(different.length > 5 ? [`${different.length - 5} more tables`] : []),
    ...(report.schema.length > 5 ? [`${report.schema.length - 5} more schema objects`] : []),
  ];
  return new PgferryError(
    'target-differs',
    `the target differs from the source at the fence: ${[...tables, ...sequences, ...schema].join(', ')}${more.length > 0 ? ` and ${more.join(' and ')}` : ''}`,
    {
      side: 'target',
      fix: 'run pgferry verify --source … --target … to see the rows and schema objects that differ; do not point the application at the target',
    },
  );
}

/** Interrupted mid-freeze, the cut-over unfreezes like any failure; past the stop request it finishes. */
export function throwIfInterrupted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw interrupted();
}

export function interrupted(): PgferryError {
  return new PgferryError('interrupted', 'interrupted', { fix: 'run pgferry cutover again when ready' });
}

/** Clients waited in PgBouncer's pause as long as --max-pause allows. */
export function pauseTooLong(pool: { readonly name: string; readonly maxPauseMs: number }, step: CutoverStepName): PgferryError {
  return new PgferryError(
    'pause-limit',
    `clients had waited ${Math.round(pool.maxPauseMs / 100) / 10} s in PgBouncer's pause of "${pool.name}" (--max-pause) at the ${step} step`,
    { fix: 'find what made that step slow (the log says), or allow a longer pause with --max-pause; then cut over again' },
  );
}

/** A failed cut-over's error, saying too what became of PgBouncer (resumed on the source, or not). */
export function withPoolOutcome(
  error: PgferryError,
  pool: { readonly name: string } | undefined,
  problem: string | undefined,
): PgferryError {
  if (!pool) return error;
  const outcome =
    problem === undefined
      ? `; PgBouncer is resumed, pointing at the source`
      : `; PgBouncer could NOT be resumed on the source (${problem}): run RESUME ${pool.name} on its console, and check its [databases] entry`;
  return new PgferryError(error.code, `${error.message}${outcome}`, { side: error.side, fix: error.fix, cause: error.cause ?? error });
}

/** Where an instance's cut-over left one database after a failure. */
export interface DatabaseOutcome {
  readonly database: string;
  readonly lifted: Lifted;
  /** Sync was asked to stop before the failure; `reopenProblem` says why the request could not be withdrawn, if it could not. */
  readonly pastStop: boolean;
  readonly reopenProblem: string | undefined;
}

/**
 * An instance's cut-over failed inside its one freeze (in `database`, or in a step taken for all,
 * like PgBouncer's pause): the freeze was lifted on every database, and the error says which
 * step failed where, and where that left each source database and each sync.
 */
export function failedInInstance(
  failure: { readonly database: string | undefined; readonly step: CutoverStepName; readonly error: unknown; readonly late?: LateWrites },
  freeze: FreezeMode,
  outcomes: readonly DatabaseOutcome[],
): PgferryError {
  const cause = failure.error instanceof PgferryError ? failure.error : undefined;
  const where = failure.database === undefined ? '' : ` of database ${failure.database}`;
  const what =
    failure.late !== undefined
      ? `cut-over of ${outcomes.length} databases undone: database ${failure.database}'s source committed ${describeLateWrites(failure.late)} after sync's final position, so its target lacks them`
      : `cut-over of ${outcomes.length} databases failed at the ${failure.step} step${where}: ${messageOf(failure.error)}`;
  const stuck = outcomes.filter((o) => !o.lifted.ok);
  const sources =
    freeze === 'none'
      ? 'no source database was frozen (--freeze none)'
      : stuck.length === 0
        ? `every source database is writable again`
        : `${stuck.map((o) => `database ${o.database}`).join(', ')} could NOT be unfrozen (${stuck.map((o) => (o.lifted.ok ? '' : o.lifted.problem)).join('; ')}): run pgferry cleanup --unfreeze-source there; the other source databases are writable again`;
  const stopped = outcomes.filter((o) => o.pastStop);
  const unreopened = stopped.filter((o) => o.reopenProblem !== undefined);
  const syncs =
    stopped.length === 0
      ? 'every sync keeps running'
      : `sync stopped in ${stopped.map((o) => o.database).join(', ')}: start it again there (it continues from the target's position)${
          unreopened.length === 0
            ? ''
            : `; the stop request could NOT be withdrawn in ${unreopened.map((o) => `${o.database} (${o.reopenProblem})`).join(', ')}: run UPDATE pgferry.sync SET stop_requested_at = NULL, stop_reason = NULL on those targets before starting sync again`
        }; the others keep running`;
  return new PgferryError(failure.late !== undefined ? 'query' : (cause?.code ?? 'query'), `${what}; ${sources}, and ${syncs}`, {
    side: failure.late !== undefined ? 'source' : cause?.side,
    fix:
      failure.late !== undefined
        ? `something still writes to database ${failure.database} of the source: stop that writer (--freeze revoke --roles <its role> holds it) and cut over again`
        : (cause?.fix ?? 'fix the cause above and run pgferry cutover --all-databases again'),
    cause: failure.error,
  });
}
