import type pg from 'pg';
import { captureNames, removeCapture } from '../ddl/index.js';
import { serverMajor } from '../catalog/index.js';
import { connect, type ConnectionSpec } from '../config/index.js';
import { messageOf, PgferryError } from '../errors.js';
import type { Logger } from '../log/index.js';
import {
  dropStateSchema,
  freezesInPlace,
  readSyncState,
  recordUnfrozen,
  stateSchemaExists,
  type FreezeRecord,
  type SyncState,
} from '../state/index.js';
import { defaultMigrationName, migrationNames, readSlot } from '../sync/index.js';
import { liftFreeze } from './freeze.js';
import { describeLateWrites, lateWrites, type LateWrites } from './late-writes.js';
import { writableSession } from './read-only.js';
import { closeClient, quoteIdent } from '../plumbing/index.js';

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
 * `pgferry cleanup`: removes what a migration left: on the source the slot (which holds WAL
 * until dropped) and the publication, on the target the `pgferry` schema; with
 * `--unfreeze-source`, the cut-over's freeze. The freeze records live in that schema, so
 * freezes are lifted first and the schema dropped last. Running it again finds nothing and
 * says so.
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
    const names = state
      ? { name: state.name, slot: state.slot, publication: state.publication }
      : migrationNames(options.name ?? (await defaultMigrationName(target.client)));
    if (state?.stopRequestedAt && !options.force) await refuseIfWrittenAfterCutover(source.client, state);
    const freezes = await freezesInPlace(target.client);
    const stillFrozen: string[] = [];
    for (const freeze of freezes) {
      if (!options.unfreezeSource) {
        stillFrozen.push(describeFreeze(freeze));
        continue;
      }
      await liftFreeze(source.client, freeze);
      await recordUnfrozen(target.client, freeze.id);
      removed.push(`source: lifted the ${describeFreeze(freeze)}`);
    }
    removed.push(...(await dropSourceObjects(source.client, names)));
    if (stillFrozen.length === 0) {
      if (await stateSchemaExists(target.client)) {
        await dropStateSchema(target.client);
        removed.push('target: dropped schema pgferry (migration state)');
      }
    }
    options.logger.debug({ removed }, 'cleanup done');
    return { removed, stillFrozen };
  } finally {
    await closeClient(source.client);
    await closeClient(target.client);
  }
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

async function dropSourceObjects(
  source: pg.Client,
  { name, slot, publication }: { readonly name: string; readonly slot: string; readonly publication: string },
): Promise<string[]> {
  const removed: string[] = [];
  const { rows } = await source.query<{ active_pid: number | null }>(`SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1`, [
    slot,
  ]);
  const found = rows[0];
  if (found) {
    if (found.active_pid !== null) {
      throw new PgferryError(
        'slot-taken',
        `source: replication slot ${slot} is in use by pid ${found.active_pid}: pgferry sync is still running`,
        {
          side: 'source',
          fix: 'stop pgferry sync (Ctrl-C, or let pgferry cutover stop it) and run cleanup again',
        },
      );
    }
    try {
      await source.query('SELECT pg_drop_replication_slot($1)', [slot]);
    } catch (error) {
      throw new PgferryError('query', `source: cannot drop replication slot ${slot}: ${messageOf(error)}`, {
        side: 'source',
        cause: error,
      });
    }
    removed.push(`source: dropped replication slot ${slot}`);
  }
  const publications = await source.query<{ present: boolean }>(
    `SELECT EXISTS (SELECT FROM pg_publication WHERE pubname = $1) AS present`,
    [publication],
  );
  if (publications.rows[0]?.present) {
    await source.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(publication)}`);
    removed.push(`source: dropped publication ${publication}`);
  }
  if (await removeCapture(source, name))
    removed.push(`source: dropped the schema-change capture (event triggers ${captureNames(name).endTrigger}, …)`);
  return removed;
}
