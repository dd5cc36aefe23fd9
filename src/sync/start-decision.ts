import { usageError, type PgferryError } from '../errors.js';
import type { Lsn } from '../replication/index.js';
import type { CloneState, SyncState } from '../state/index.js';
import type { MigrationNames } from './source-setup.js';

/** What sync knows of the target when it starts, before it touches the source. */
export interface SyncStartFacts {
  /** The sync state the target records, if any. */
  readonly state: Pick<SyncState, 'name' | 'slot' | 'phase' | 'appliedLsn' | 'stopRequestedAt' | 'stopReason'> | undefined;
  /** The names this run goes by: --name, else the state's, else the default. */
  readonly names: MigrationNames;
  /** Whether --name was given (a name given by hand may be another target's). */
  readonly nameGiven: boolean;
  readonly dropExisting: boolean;
  /** The clone pgferry recorded on the target; read only when the target holds no sync state. */
  readonly targetClone: CloneState;
  /** The target, as the error for a clone made without sync names it. */
  readonly targetShown: string;
  /**
   * A copy at per-table snapshots this migration began and did not finish (its slot still
   * holds every change since it began): it continues, keeping what it finished.
   */
  readonly copyResumable: boolean;
}

/** How sync starts: copy at a new slot's snapshot, continue from the target's position, or refuse. */
export type SyncStart =
  | {
      readonly kind: 'clone';
      /** The target holds this migration's state from before: the copy replaces what it left. */
      readonly restarting: boolean;
      /** An earlier sync stopped during its copy: it is copied again from the start. */
      readonly copyInterrupted: boolean;
      /** Whether a slot of this name on the source may be this migration's own. */
      readonly ownsSlotName: boolean;
    }
  | { readonly kind: 'resume'; readonly appliedLsn: Lsn }
  /** Continue the copy an earlier run began: finished tables stay, the rest are copied, then the stream goes on. */
  | { readonly kind: 'resume-copy' }
  | { readonly kind: 'refuse'; readonly error: PgferryError };

/**
 * Pure: what the target's state says sync does. --drop-existing starts over whatever the target
 * holds; otherwise a target that follows another migration, or one that is over, is refused; a
 * target without sync state is cloned, unless it holds a clone made without sync (its rows
 * match no slot); a copy at per-table snapshots that stopped half-way continues; one at a
 * single snapshot (an earlier pgferry's) is made again; anything else continues.
 */
export function decideSyncStart(facts: SyncStartFacts): SyncStart {
  const { state, names, dropExisting } = facts;
  if (state && state.name !== names.name && !dropExisting) {
    return refuse(
      usageError(
        `the target already follows migration "${state.name}", not "${names.name}"`,
        `run with --name ${state.name}, or run pgferry cleanup first`,
        'wrong-migration',
      ),
    );
  }
  if (state?.stopRequestedAt && !dropExisting) {
    return refuse(
      usageError(
        `migration "${state.name}" is over: ${state.stopReason ?? 'a stop was requested'} at ${state.stopRequestedAt.toISOString()}, and the application may write to the target now`,
        'run pgferry cleanup to remove the slot, publication and state, or sync --drop-existing to start a new migration',
        'wrong-migration',
      ),
    );
  }
  if (state !== undefined && facts.copyResumable && !dropExisting) return { kind: 'resume-copy' };
  if (state !== undefined && state.phase !== 'cloning' && !dropExisting) return { kind: 'resume', appliedLsn: state.appliedLsn };
  if (state === undefined && !dropExisting && facts.targetClone !== 'none') {
    return refuse(
      usageError(
        `the target (${facts.targetShown}) holds a clone made without sync: its rows match no replication slot`,
        "pass --drop-existing to copy again at the slot's snapshot, or use an empty target database",
        'wrong-migration',
      ),
    );
  }
  return {
    kind: 'clone',
    restarting: state !== undefined,
    copyInterrupted: state?.phase === 'cloning',
    // The slot name is this migration's when the target's state records it, or when it is
    // the default (unique to this target); a name given by hand may be another target's.
    ownsSlotName: state?.slot === names.slot || !facts.nameGiven || dropExisting,
  };
}

function refuse(error: PgferryError): SyncStart {
  return { kind: 'refuse', error };
}
