import { messageOf, PgferryError } from '../errors.js';
import { formatLsn, type Lsn } from '../replication/index.js';
import { recordCutoverOutcome, recordUnfrozen, type FreezeMode } from '../state/index.js';
import type { VerifyReport } from '../verify/index.js';
import type { FreezeContext } from './context.js';
import { liftFreeze } from './freeze.js';
import type { SequenceSync } from './sequences.js';
import type { LargeObjectReconcile } from '../copy/index.js';
import type { CutoverStep } from './steps.js';
import type { ChangesAhead, ChangesInFreeze } from './changes.js';
import type { VerifyLevel } from './context.js';
import { retireOldDirection, type WayBack, type WayBackSides } from './way-back.js';
import type { MigrationNames } from '../sync/index.js';
import type { PoolReport } from '../pgbouncer/index.js';

export interface CutoverReport {
  /** From the freeze taking hold until sync stopped and the slot was read for late writes. */
  readonly downtimeMs: number;
  readonly fenceLsn: string;
  readonly freeze: FreezeMode;
  readonly sessionsEnded: number;
  readonly sequences: readonly SequenceSync[];
  /** Large objects made equal inside the freeze (created, changed, removed since the pass before it). */
  readonly largeObjects: LargeObjectReconcile;
  /**
   * The verify that ran: inside the freeze with `--verify counts` or `full`; with `changes`, the
   * full one before the freeze, while sync streamed (`checked` says what was compared inside).
   */
  readonly verified: VerifyReport | null;
  /** What was compared, and when: before the freeze (while writes went on) and inside it. */
  readonly checked: {
    readonly level: VerifyLevel;
    readonly beforeFreeze: ChangesAhead | null;
    readonly insideFreeze: ChangesInFreeze | null;
  };
  readonly syncStopped: boolean;
  /**
   * Transactions the source committed past sync's final position (0: none), or null when that
   * could not be checked (sync did not confirm its stop; the slot could not be read).
   */
  readonly lateTransactions: number | null;
  readonly sourceUnfrozen: boolean;
  readonly lagAtStartSeconds: number;
  /**
   * The way back: its slot on the target and the position both sides were equal at (sync with
   * the sides swapped starts there), or null, with the reason in `wayBackSkipped`.
   */
  readonly wayBack: { readonly slot: string; readonly from: string } | null;
  readonly wayBackSkipped: string | null;
  /** Freezes a cut-over away from the target had left on it, lifted now that the application returns to it. */
  readonly targetFreezesLifted: number;
  /** PgBouncer's pause as clients saw it, and where the pool points now (null without --pgbouncer). */
  readonly pgbouncer: PoolReport | null;
  readonly steps: readonly CutoverStep[];
}

/** What the steps established with the source frozen: the report, less what finishing adds. */
export type Frozen = Omit<CutoverReport, 'freeze' | 'sourceUnfrozen' | 'steps' | 'fenceLsn' | 'wayBack'> & {
  readonly fenceLsn: Lsn;
  readonly wayBack: WayBack | null;
};

/**
 * The cut-over's last act: lifts the freeze if asked (`--unfreeze-source`) and records the
 * outcome on the target. Past the stop request sync is gone for good: what fails here is
 * reported as such, never as "sync keeps running".
 */
export async function finishCutover(
  cut: FreezeContext,
  done: Frozen,
  steps: readonly CutoverStep[],
  sides: WayBackSides,
  names: MigrationNames,
): Promise<CutoverReport> {
  const { plan, cutoverId } = cut;
  if (!done.syncStopped) cut.log.warn('sync did not confirm it stopped; it will stop when it next reads the target (or stop it yourself)');
  let sourceUnfrozen = false;
  try {
    if (cut.options.unfreezeSource && plan.mode !== 'none') {
      await liftFreeze(cut.source, plan);
      await recordUnfrozen(cut.target, cutoverId);
      sourceUnfrozen = true;
    }
    // A write with synchronous_commit on (the target's default for this session): its commit
    // flushes the target's WAL, and with it every batch sync committed asynchronously.
    await recordCutoverOutcome(cut.target, cutoverId, { outcome: 'done', fenceLsn: done.fenceLsn, downtimeMs: done.downtimeMs });
  } catch (error) {
    throw new PgferryError(
      'cutover-unfinished',
      `the cut-over is done (everything up to fence ${formatLsn(done.fenceLsn)} is on the target, sync stopped) but finishing failed: ${messageOf(error)}`,
      {
        fix: 'point the application at the target; run pgferry cleanup (with --unfreeze-source if you wanted the source writable)',
        cause: error,
      },
    );
  }
  if (done.wayBack) {
    // The source follows the target now: its own slot would hold its WAL for as long as it does.
    await retireOldDirection(sides, names).then(
      (removed) => cut.log.info({ removed }, 'the source no longer streams: its slot, publication and capture are removed'),
      (error: unknown) =>
        cut.log.warn(
          { error: messageOf(error) },
          "could not remove the source's slot, publication or capture: pgferry cleanup removes them",
        ),
    );
  }
  // Built field by field, in this order: it is the order of `--json`.
  return {
    downtimeMs: done.downtimeMs,
    fenceLsn: formatLsn(done.fenceLsn),
    freeze: plan.mode,
    sessionsEnded: done.sessionsEnded,
    sequences: done.sequences,
    largeObjects: done.largeObjects,
    verified: done.verified,
    checked: done.checked,
    syncStopped: done.syncStopped,
    lateTransactions: done.lateTransactions,
    sourceUnfrozen,
    lagAtStartSeconds: done.lagAtStartSeconds,
    wayBack: done.wayBack ? { slot: done.wayBack.slot, from: formatLsn(done.wayBack.from) } : null,
    wayBackSkipped: done.wayBackSkipped,
    targetFreezesLifted: done.targetFreezesLifted,
    pgbouncer: done.pgbouncer,
    steps,
  };
}
