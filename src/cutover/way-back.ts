import type pg from 'pg';
import type { Scope, ScopeFilter } from '../catalog/index.js';
import { withCaptureSuspended } from '../ddl/index.js';
import { messageOf, PgferryError } from '../errors.js';
import type { Logger } from '../log/index.js';
import { parseLsn, type Lsn } from '../replication/index.js';
import {
  ensureSyncState,
  forgetFollowingState,
  freezesInPlace,
  prepareFollowingState,
  stateTableExists,
  recordUnfrozen,
  recordWayBack,
  type FreezeRecord,
} from '../state/index.js';
import { createSlotBySql, publishScope, republishScope, systemIdentifier, type CaptureMode, type MigrationNames } from '../sync/index.js';
import { endSessionsOpenedDuringFreeze, liftFreeze } from './freeze.js';
import { dropSourceObjects } from './source-objects.js';

/**
 * The way back (DESIGN decision 11). A cut-over leaves the old primary frozen and equal to the
 * new one; the way back keeps it so: on the new primary, the migration's publication, capture
 * and a logical slot; on the old one, a sync state that starts streaming at the position where
 * both held the same rows. `pgferry sync` with the sides swapped then finds that state and
 * continues from it, with no copy, and `pgferry cutover` with the sides swapped returns.
 *
 * The slot is made before the freeze, so the freeze does not wait for it: a slot decodes
 * nothing before the position its stream asks for, and that position, read once sync has
 * stopped writing to the new primary, is what the freeze pays for (with the publication's
 * refresh and one row on the old primary).
 */

/** How long the way back's slot may wait for transactions running on the new primary. */
const SLOT_TIMEOUT_MS = 60_000;

/** The way back, made before the freeze: what the hand-over completes. */
export interface WayBackReady {
  readonly names: MigrationNames;
  readonly capture: CaptureMode;
  /** The new primary's identity: the only server the way back may stream from. */
  readonly systemId: string;
}

/** Where the way back starts: its slot on the new primary, and the position of equality there. */
export interface WayBack {
  readonly slot: string;
  readonly from: Lsn;
}

export interface WayBackSides {
  /** The old primary: the cut-over's source, the way back's target. */
  readonly source: pg.Client;
  /** The new primary: the cut-over's target, the way back's source. */
  readonly target: pg.Client;
  readonly filter: ScopeFilter;
  readonly scope: Scope;
  readonly log: Logger;
}

/**
 * Before the freeze: checks that the target can be streamed from, then makes the capture, the
 * publication and the slot there, and the state tables on the source. A requirement not met is
 * refused before anything is frozen, with `--no-fallback` in the fix; whatever was made is
 * removed again on failure.
 */
export async function prepareWayBack(sides: WayBackSides, names: MigrationNames): Promise<WayBackReady> {
  const { source, target } = sides;
  await requireStreamable(target, names);
  try {
    const capture = await publishScope(target, names, sides.filter, sides.scope, sides.log).catch((error: unknown) => {
      throw unpreparable(error);
    });
    await createSlotBySql(target, names.slot, 'target', SLOT_TIMEOUT_MS);
    // The source's capture would carry pgferry's state tables into the stream it still feeds.
    await withCaptureSuspended(source, () => ensureSyncState(source));
    return { names, capture, systemId: await systemIdentifier(target) };
  } catch (error) {
    await withdrawWayBack(sides, names).catch((problem: unknown) =>
      sides.log.warn({ error: messageOf(problem) }, 'could not remove the half-made way back from the target'),
    );
    throw error;
  }
}

/**
 * With writes frozen, sync stopped and no late write: the target holds exactly the source's rows,
 * and nothing has written to it since. The publication is refreshed, the target's insert
 * position read, and the source's state made to start there; the target's cut-over record says
 * where the way back is.
 */
export async function handOver(sides: WayBackSides, ready: WayBackReady, cutoverId: number): Promise<WayBack> {
  const { source, target } = sides;
  await republishScope(target, ready.names, sides.scope, ready.capture, sides.log);
  // The insert position, not the write position: sync's last batches were committed
  // asynchronously and may not be written yet, and each of them must lie before the start.
  const { rows } = await target.query<{ lsn: string }>(`SELECT pg_current_wal_insert_lsn()::text AS lsn`);
  const from = parseLsn(rows[0]!.lsn);
  // One side each: written at once, as the freeze waits on both.
  await Promise.all([
    prepareFollowingState(source, { ...ready.names, sourceSystemId: ready.systemId }, from),
    recordWayBack(target, cutoverId, ready.names.slot, from),
  ]);
  return { slot: ready.names.slot, from };
}

/**
 * After the hand-over, the source no longer streams: its slot (which would hold the source's
 * WAL for as long as the way back feeds it), publication and capture go. A failure is reported
 * as a warning by the caller: `pgferry cleanup` removes them too.
 */
export async function retireOldDirection(sides: WayBackSides, names: MigrationNames): Promise<string[]> {
  return dropSourceObjects(sides.source, 'source', names);
}

/** Undoes `prepareWayBack` (and a hand-over, if one was recorded): the cut-over failed. */
export async function withdrawWayBack(sides: WayBackSides, names: MigrationNames): Promise<void> {
  await dropSourceObjects(sides.target, 'target', names);
  if (await stateTableExists(sides.source, 'sync')) await forgetFollowingState(sides.source, names.slot);
}

/**
 * A cut-over back: the freezes the cut-over away from this target left on it (their records are
 * on this cut-over's source), read before the freeze. Only a freeze of this very server and
 * database counts.
 */
export async function freezesLeftOnTarget(sides: WayBackSides): Promise<FreezeRecord[]> {
  const { source, target } = sides;
  const { rows } = await target.query<{ db: string }>('SELECT current_database() AS db');
  const identity = { database: rows[0]!.db, systemId: await systemIdentifier(target) };
  return (await freezesInPlace(source)).filter((f) => f.database === identity.database && f.systemId === identity.systemId);
}

/**
 * Lifts them, so the application can write to the target again, and ends the sessions opened
 * while it was frozen once idle, so they reconnect writable.
 */
export async function liftFreezesOfTarget(sides: WayBackSides, freezes: readonly FreezeRecord[]): Promise<number> {
  for (const freeze of freezes) {
    await liftFreeze(sides.target, freeze);
    await recordUnfrozen(sides.source, freeze.id);
    const { ended } = await endSessionsOpenedDuringFreeze(sides.target, freeze.startedAt.toISOString(), [], 0);
    if (ended > 0)
      sides.log.info({ sessions: ended }, 'ended sessions opened on the target while it was frozen, so they reconnect writable');
  }
  return freezes.length;
}

/** What streaming from the target needs, checked before anything is made or frozen. */
async function requireStreamable(target: pg.Client, names: MigrationNames): Promise<void> {
  const { rows } = await target.query<{
    wal_level: string;
    free_slots: number;
    senders: number;
    slot_elsewhere: string | null;
    slot_active: boolean | null;
  }>(
    `SELECT current_setting('wal_level') AS wal_level,
            current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots WHERE NOT (slot_name = $1 AND database = current_database()))::int AS free_slots,
            current_setting('max_wal_senders')::int AS senders,
            (SELECT database FROM pg_replication_slots WHERE slot_name = $1 AND database IS DISTINCT FROM current_database()) AS slot_elsewhere,
            (SELECT active FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()) AS slot_active`,
    [names.slot],
  );
  const facts = rows[0]!;
  const refuse = (what: string, fix: string) =>
    new PgferryError('way-back', `target: the way back cannot be prepared: ${what}; nothing was frozen`, {
      side: 'target',
      fix: `${fix}, or cut over without a way back: --no-fallback`,
    });
  if (facts.wal_level !== 'logical')
    throw refuse(`wal_level is "${facts.wal_level}" on the target`, 'set wal_level = logical in its postgresql.conf and restart it');
  if (facts.senders < 1)
    throw refuse('max_wal_senders is 0 on the target', 'set max_wal_senders = 10 in its postgresql.conf and restart it');
  if (facts.slot_elsewhere !== null)
    throw refuse(
      `replication slot ${names.slot} exists in database ${facts.slot_elsewhere} of the target's server (source and target share a server?)`,
      'run the migration under another --name',
    );
  if (facts.slot_active === true) throw refuse(`replication slot ${names.slot} is in use on the target`, 'stop whatever streams from it');
  if (facts.free_slots < 1)
    throw refuse(
      'every replication slot of the target is taken (max_replication_slots)',
      'drop an unused slot or raise max_replication_slots',
    );
  // A slot of this name in this database is the remains of an earlier attempt: made again.
  if (facts.slot_active === false) await target.query('SELECT pg_drop_replication_slot($1)', [names.slot]);
}

/** A refusal while publishing on the target (a table without a key, a privilege) says it is about the way back. */
function unpreparable(error: unknown): PgferryError {
  const cause = error instanceof PgferryError ? error : undefined;
  return new PgferryError(
    'way-back',
    `target: the way back cannot be prepared: ${messageOf(error).replace(/^source: /, '')}; nothing was frozen`,
    {
      side: 'target',
      fix: `${cause?.fix ?? 'see pgferry check'}, on the target; or cut over without a way back: --no-fallback`,
      cause: error,
    },
  );
}
