import type pg from 'pg';
import { withCaptureSuspended } from '../ddl/index.js';
import { serverMajor } from '../catalog/index.js';
import { connect, type ConnectionSpec } from '../config/index.js';
import { messageOf, PgferryError, type Side } from '../errors.js';
import type { Logger } from '../log/index.js';
import {
  dropStateSchema,
  freezesInPlace,
  readSyncState,
  recordUnfrozen,
  stateSchemaExists,
  stateSchemaIsEmpty,
  type FreezeRecord,
  type SyncState,
} from '../state/index.js';
import { defaultMigrationName, migrationNames, readSlot, type MigrationNames } from '../sync/index.js';
import { dropNarrowingIndexes } from './narrowing-indexes.js';
import { dropSourceObjects } from './source-objects.js';
import { liftFreeze } from './freeze.js';
import { describeLateWrites, lateWrites, type LateWrites } from './late-writes.js';
import { writableSession } from './read-only.js';
import { closeClient } from '../plumbing/index.js';

export interface CleanupOptions {
  readonly source: ConnectionSpec;
  readonly target: ConnectionSpec;
  /** The migration name when the target holds no state to say it (default: sync's default for this target). */
  readonly name?: string;
  readonly unfreezeSource: boolean;
  /** Drop the slot even when it holds writes committed after the cut-over. */
  readonly force?: boolean;
  readonly logger: Logger;
}

export interface CleanupReport {
  /** What was removed or undone, one line each; empty when there was nothing left. */
  readonly removed: readonly string[];
  /** Freezes still on the source because `--unfreeze-source` was not given. */
  readonly stillFrozen: readonly string[];
}

/**
 * `pgferry cleanup`: removes what a migration left, in both directions. The direction from the
 * source to the target: the source's slot (which holds WAL until dropped), publication and
 * capture, and the target's `pgferry` schema. The way back a cut-over prepared, from the target
 * to the source: the target's slot, publication and capture, and the source's `pgferry` schema;
 * that one only with `--force`, since the application could not return without it. With
 * `--unfreeze-source`, the cut-over's freeze is lifted. The freeze records live in the target's
 * schema, so freezes are lifted after everything that may refuse, and the schema dropped last.
 * Running it again finds nothing and says so.
 */
export async function cleanup(options: CleanupOptions): Promise<CleanupReport> {
  const target = await connect(options.target);
  const source = await connect(options.source).catch(async (error: unknown) => {
    await closeClient(target.client);
    throw error;
  });
  const removed: string[] = [];
  try {
    await writableSession(source.client);
    const state = await readSyncState(target.client);
    const back = await readSyncState(source.client);
    const names = state
      ? namesOf(state)
      : back
        ? namesOf(back)
        : migrationNames(options.name ?? (await defaultMigrationName(target.client)));
    // The source's state is this migration's way back only when it carries the same name.
    const wayBack = back?.name === names.name ? back : undefined;
    if (!options.force) {
      if (state) refuseIfWayKept(state, 'source', 'target');
      if (wayBack) refuseIfWayKept(wayBack, 'target', 'source');
      if (state?.stopRequestedAt) await refuseIfWrittenAfterCutover(source.client, state);
    }
    removed.push(...(await dropSourceObjects(source.client, 'source', names)));
    // Also a way back half made by a cut-over that was killed: a slot there holds the target's WAL.
    removed.push(...(await dropSourceObjects(target.client, 'target', names)));
    // And the indexes a killed cut-over made for its check (narrowing-indexes.ts).
    for (const [side, client] of [
      ['source', source.client],
      ['target', target.client],
    ] as const)
      removed.push(...(await dropNarrowingIndexes(client)).map((index) => `${side}: dropped index ${index} (made for a cut-over's check)`));
    const stillFrozen: string[] = [];
    for (const freeze of await freezesInPlace(target.client)) {
      if (!options.unfreezeSource) {
        stillFrozen.push(describeFreeze(freeze));
        continue;
      }
      await liftFreeze(source.client, freeze);
      await recordUnfrozen(target.client, freeze.id);
      removed.push(`source: lifted the ${describeFreeze(freeze)}`);
    }
    if (stillFrozen.length === 0 && (await stateSchemaExists(target.client))) {
      await dropStateSchema(target.client);
      removed.push('target: dropped schema pgferry (migration state)');
    }
    // The way back's state, unless it records a freeze of the target (a cut-over back made it).
    const leftOnSource = wayBack ? (await freezesInPlace(source.client)).length === 0 : await stateSchemaIsEmpty(source.client);
    if (leftOnSource) {
      await withCaptureSuspended(source.client, () => dropStateSchema(source.client));
      removed.push("source: dropped schema pgferry (the way back's state)");
    }
    options.logger.debug({ removed }, 'cleanup done');
    return { removed, stillFrozen };
  } finally {
    await closeClient(source.client);
    await closeClient(target.client);
  }
}

function namesOf(state: SyncState): MigrationNames {
  return { name: state.name, slot: state.slot, publication: state.publication };
}

/**
 * A direction a cut-over prepared (the way back, or forward again) that no cut-over has ended
 * yet: the application's way to return. Cleanup removes it only when told to.
 */
function refuseIfWayKept(state: SyncState, from: Side, to: Side): void {
  if (state.preparedAt === null || state.stopRequestedAt !== null) return;
  throw new PgferryError(
    'way-back',
    `the way back from the ${from} to the ${to} is kept (a cut-over prepared it at ${state.preparedAt.toISOString()}; slot ${state.slot} on the ${from}): cleanup would remove it, and the application could not return to the ${to} without a new copy`,
    {
      side: from,
      fix: `keep it while the application may need to return; pass --force to give it up (stop pgferry sync from the ${from} to the ${to} first)`,
    },
  );
}

/** How long cleanup reads the slot for writes after the cut-over before it gives up. */
const LATE_WRITES_READ_TIMEOUT = '30s';

/**
 * After a cut-over the slot is the only record of what the source committed since: writes that
 * went to the old source by mistake (a job still pointed at it, a session past the freeze).
 * Dropping the slot would forget them, so cleanup refuses while the slot holds any, or while it
 * cannot tell, before it changes anything; `--force` drops it anyway.
 */
async function refuseIfWrittenAfterCutover(source: pg.Client, state: SyncState): Promise<void> {
  const slot = await readSlot(source, state.slot, await serverMajor(source));
  // No slot, or one the server invalidated: nothing left to read. In use: dropSourceObjects refuses and says why.
  if (!slot.exists || slot.active || slot.lost) return;
  let late: LateWrites;
  await source.query(`SELECT set_config('statement_timeout', $1, false)`, [LATE_WRITES_READ_TIMEOUT]);
  try {
    late = await lateWrites(source, state.slot, state.publication, state.appliedLsn);
  } catch (error) {
    throw new PgferryError(
      'query',
      `source: cannot tell whether slot ${state.slot} holds writes committed after the cut-over: ${messageOf(error)}`,
      {
        side: 'source',
        fix: 'dropping the slot would forget any such writes; fix the cause and run cleanup again, or run it with --force to drop the slot anyway',
        cause: error,
      },
    );
  } finally {
    await source.query('RESET statement_timeout');
  }
  if (late.transactions === 0) return;
  throw new PgferryError(
    'late-writes',
    `source: ${describeLateWrites(late)} committed on the source after the cut-over; the target lacks them, and dropping slot ${state.slot} would forget they exist`,
    {
      side: 'source',
      fix: 'find what still writes to the source and stop it; compare those tables on both sides and carry the rows over; then run cleanup again with --force',
    },
  );
}

function describeFreeze(freeze: FreezeRecord): string {
  return freeze.mode === 'read-only'
    ? `read-only freeze of database ${freeze.database}`
    : `revoke freeze (${freeze.revoked.length} grants to ${[...new Set(freeze.revoked.map((r) => r.role))].join(', ') || 'no role'})`;
}
