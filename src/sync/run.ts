import type pg from 'pg';
import { assertStreamableSource, Scope, serverMajor } from '../catalog/index.js';
import { connect, describeConnection, forMigration, type Connection, type ConnectionSpec } from '../config/index.js';
import { clone, type CloneSummary } from '../copy/index.js';
import { PgferryError } from '../errors.js';
import type { Logger } from '../log/index.js';
import { formatLsn, removeAbandonedSpools, ReplicationSession, type Lsn } from '../replication/index.js';
import {
  cloneState,
  copyFinishedState,
  copyIsResumable,
  ensureSyncState,
  forgetHeldSnapshots,
  readSyncState,
  startSyncState,
} from '../state/index.js';
import { TemporarySlotSnapshots } from './copy-snapshots.js';
import { followRenamedTables } from './renamed-tables.js';
import { readSlot } from './source-setup.js';
import { claimSlotName, createSlotNamingBlockers, DEFAULT_SLOT_TIMEOUT_MS } from './slot-creation.js';
import { defaultMigrationName, migrationNames, systemIdentifier, type MigrationNames } from './source-setup.js';
import { publishScope } from './publish.js';
import { prepareCapture } from './schema-capture.js';
import { decideSyncStart } from './start-decision.js';
import { streamWithRetries } from './retry.js';
import type { SyncOptions, SyncSummary } from './options.js';
import { closeClient } from '../plumbing/index.js';

/**
 * `pgferry sync`: the publication and slot on the source, the copy (each table at a snapshot
 * of its own) when the target has none yet or an interrupted one, then every committed change,
 * applied in batches, until asked to stop (or caught up). Started again, it continues from what
 * the target recorded: the tables copied, and the position applied.
 */
export async function sync(given: SyncOptions): Promise<SyncSummary> {
  let options = given;
  const scope = new Scope(options.filter);
  let cloned: CloneSummary | undefined;
  let names: MigrationNames;
  let log = options.logger;
  let copy: { readonly resume: false; readonly slot: MigrationSlot } | { readonly resume: true } | undefined;
  let restarting = false;

  const admin = await connect(options.target);
  let source: Connection | undefined;
  try {
    const state = await readSyncState(admin.client);
    names = migrationNames(options.name ?? state?.name ?? (await defaultMigrationName(admin.client)));
    // From here on, every session names the migration it serves (plumbing/own-sessions.ts).
    options = { ...options, source: forMigration(options.source, names.name), target: forMigration(options.target, names.name) };
    log = options.logger.child({ migration: names.name });
    // What pgferry's clone left on the target decides something only where no sync state is.
    const targetClone = state === undefined && !options.dropExisting ? await cloneState(admin.client) : 'none';
    const start = decideSyncStart({
      state,
      names,
      nameGiven: options.name !== undefined,
      dropExisting: options.dropExisting,
      targetClone,
      targetShown: describeConnection(options.target),
      copyResumable: state !== undefined && state.consistentLsn !== null && (await copyIsResumable(admin.client)),
    });
    if (start.kind === 'refuse') throw start.error;
    source = await connect(options.source);
    if (start.kind === 'resume-copy') {
      // The slot must still hold every change since the copy began; else the copy starts over.
      const slot = await readSlot(source.client, names.slot, await serverMajor(source.client));
      if (slot.exists && !slot.lost) {
        log.info({ slot: names.slot }, 'an earlier sync stopped during its copy: tables it finished are kept, the rest are copied');
        await prepareCapture(source.client, names, options.filter, log, { resuming: true });
        copy = { resume: true };
      } else {
        log.warn({ slot: names.slot }, 'an earlier sync stopped during its copy and its slot is gone: copying again from the start');
        restarting = true;
      }
    }
    if (start.kind === 'clone' || (start.kind === 'resume-copy' && copy === undefined)) {
      await assertStreamableSource(source.client);
      if (start.kind === 'clone' && start.copyInterrupted)
        log.warn('an earlier sync stopped during its copy: copying again from the start');
      const ownsSlotName = start.kind === 'clone' ? start.ownsSlotName : true;
      restarting ||= start.kind === 'clone' && start.restarting;
      copy = { resume: false, slot: await createMigrationSlot(options, names, source.client, scope, ownsSlotName, log) };
    } else if (start.kind === 'resume') {
      // Whether the slot is still usable is checked as streaming starts, on every (re)connect.
      log.info({ appliedLsn: formatLsn(start.appliedLsn) }, 'continuing from the position the target recorded');
      await prepareCapture(source.client, names, options.filter, log, { resuming: true });
    }
  } finally {
    await closeClient(admin.client);
    if (source) await closeClient(source.client);
  }

  if (copy !== undefined) cloned = await copyUntilFinished(options, names, copy, restarting, log);
  // Row data a killed sync left in its spool: nobody reads it again.
  removeAbandonedSpools();
  const totals = await streamWithRetries(options, names, undefined, log);
  return { name: names.name, slot: names.slot, cloned, ...totals };
}

/**
 * The migration's slot, made before anything is copied: every change from its consistent point
 * on is in it, and every table's snapshot is taken after it. It exports no snapshot: each table is copied at a snapshot of
 * its own (copyUntilFinished), so nothing holds the source's vacuum horizon for the whole copy.
 */
async function createMigrationSlot(
  options: SyncOptions,
  names: MigrationNames,
  source: pg.Client,
  scope: Scope,
  ownsSlotName: boolean,
  log: Logger,
): Promise<MigrationSlot> {
  await claimSlotName(source, names.slot, ownsSlotName);
  // Before the slot: every schema change after its consistent point is in the stream.
  await publishScope(source, names, options.filter, scope, log);
  const sourceSystemId = await systemIdentifier(source);
  const session = await ReplicationSession.open(options.source);
  try {
    log.info({ slot: names.slot }, 'creating the replication slot (waits for transactions running on the source to end)');
    const slot = await createSlotNamingBlockers(session, names.slot, source, options.slotTimeoutMs ?? DEFAULT_SLOT_TIMEOUT_MS, log, {
      temporary: false,
      snapshot: 'none',
    });
    log.info(
      { slot: names.slot, consistentLsn: formatLsn(slot.consistentPoint) },
      'slot created; copying each table at a snapshot of its own',
    );
    return { consistentPoint: slot.consistentPoint, sourceSystemId };
  } finally {
    await session.close().catch(() => session.destroy());
  }
}

/**
 * The copy, each table at a snapshot of its own whose position the target records with it;
 * started afresh or continued. A table whose schema changed on the source since the copy's plan
 * is deferred: the stream runs until the target has every schema change up to now, and the
 * copy continues with it. Returns once every table is copied.
 */
async function copyUntilFinished(
  options: SyncOptions,
  names: MigrationNames,
  start: { readonly resume: false; readonly slot: MigrationSlot } | { readonly resume: true },
  restarting: boolean,
  log: Logger,
): Promise<CloneSummary> {
  let resume = start.resume;
  const firstSlot = start.resume ? undefined : start.slot;
  const snapshots = new TemporarySlotSnapshots(options.source, options.target, options.slotTimeoutMs ?? DEFAULT_SLOT_TIMEOUT_MS, log);
  // Snapshots a killed run recorded went with its sessions.
  if (resume) await withTarget(options.target, (target) => forgetHeldSnapshots(target));
  try {
    for (let round = 1; ; round++) {
      const cloned = await clone({
        source: options.source,
        target: options.target,
        filter: options.filter,
        ...options.clone,
        resume,
        dropExisting: !resume && (options.dropExisting || restarting),
        logger: options.logger,
        snapshots: { source: snapshots, reuseMs: options.snapshotReuseMs },
        // A fresh copy records the migration once its state tables exist (after pre-data); a
        // later round continues it (recording it again would move the stream back to the start).
        onCopyStarting:
          resume || firstSlot === undefined
            ? undefined
            : async (target) => {
                await ensureSyncState(target);
                await startSyncState(target, { ...names, sourceSystemId: firstSlot.sourceSystemId }, firstSlot.consistentPoint);
              },
      });
      if (cloned.deferred.length === 0) {
        await withTarget(options.target, async (target) => {
          await forgetHeldSnapshots(target);
          await copyFinishedState(target);
        });
        return cloned;
      }
      if (round >= MAX_DEFERRED_ROUNDS) throw keepsChanging(cloned.deferred);
      log.warn(
        { deferred: cloned.deferred, round },
        'tables changed on the source during the copy: streaming until the target has those schema changes, then copying them',
      );
      await streamWithRetries({ ...options, untilCaughtUp: true }, names, undefined, log);
      // A stop asked for while the stream caught up: the next round would copy again first.
      if (options.signal?.aborted) throw stoppedDuringCopy(cloned.deferred);
      await withTarget(options.target, (target) =>
        withSource(options.source, (source) =>
          followRenamedTables(
            source,
            target,
            cloned.deferred.map((d) => d.table),
          ),
        ),
      );
      resume = true;
    }
  } finally {
    await snapshots.close();
  }
}

function stoppedDuringCopy(deferred: CloneSummary['deferred']): PgferryError {
  return new PgferryError(
    'interrupted',
    `stopped before ${deferred.length} deferred table(s) were copied: ${deferred.map((d) => d.table).join(', ')}`,
    {
      fix: 'nothing is lost: the next pgferry sync keeps the tables copied so far and copies the rest',
    },
  );
}

/** Rounds of "stream, then copy the deferred tables" before sync gives up on tables whose schema keeps changing. */
const MAX_DEFERRED_ROUNDS = 5;

function keepsChanging(deferred: CloneSummary['deferred']): PgferryError {
  return new PgferryError(
    'schema-change',
    `source: ${deferred.length} table(s) changed their schema again each time sync was about to copy them: ${deferred
      .slice(0, 5)
      .map((d) => `${d.table} (${d.why})`)
      .join('; ')}`,
    {
      side: 'source',
      fix: 'pause the schema changes on those tables until sync has copied them, then run pgferry sync again: the tables it finished are kept',
    },
  );
}

async function withTarget<T>(spec: ConnectionSpec, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const { client } = await connect(spec);
  try {
    return await work(client);
  } finally {
    await closeClient(client);
  }
}

const withSource = withTarget;

/** The migration's slot as made: where its changes begin, and the source it is on. */
interface MigrationSlot {
  readonly consistentPoint: Lsn;
  readonly sourceSystemId: string;
}
