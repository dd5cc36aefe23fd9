import type pg from 'pg';
import { assertStreamableSource, Scope } from '../catalog/index.js';
import { connect, describeConnection, type Connection, type ConnectionSpec } from '../config/index.js';
import { clone, type CloneSummary } from '../copy/index.js';
import { PgferryError } from '../errors.js';
import type { Logger } from '../log/index.js';
import { formatLsn, removeAbandonedSpools, ReplicationSession } from '../replication/index.js';
import { cloneState, ensureSyncState, readSyncState, startStreamingState, startSyncState } from '../state/index.js';
import { claimSlotName, createSlotNamingBlockers, DEFAULT_SLOT_TIMEOUT_MS } from './slot-creation.js';
import { defaultMigrationName, migrationNames, systemIdentifier, type MigrationNames } from './source-setup.js';
import { publishScope } from './publish.js';
import { prepareCapture } from './schema-capture.js';
import { decideSyncStart } from './start-decision.js';
import { streamWithRetries } from './retry.js';
import type { SyncOptions, SyncSummary } from './options.js';
import { closeClient } from '../plumbing/index.js';

/**
 * `pgferry sync`: the publication and slot on the source, the clone at the slot's snapshot
 * when the target has none yet, then every committed change, applied in batches, until asked
 * to stop (or caught up). Started again, it continues from the position the target recorded.
 */
export async function sync(options: SyncOptions): Promise<SyncSummary> {
  const scope = new Scope(options.filter);
  let cloned: CloneSummary | undefined;
  let firstSession: ReplicationSession | undefined;
  let names: MigrationNames;
  let log = options.logger;

  const admin = await connect(options.target);
  let source: Connection | undefined;
  try {
    const state = await readSyncState(admin.client);
    names = migrationNames(options.name ?? state?.name ?? (await defaultMigrationName(admin.client)));
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
    });
    if (start.kind === 'refuse') throw start.error;
    if (start.kind === 'clone') {
      source = await connect(options.source);
      await assertStreamableSource(source.client);
      if (start.copyInterrupted) log.warn('an earlier sync stopped during its copy: copying again from the start at a new snapshot');
      const started = await startFromClone(options, names, source.client, scope, start, log);
      cloned = started.cloned;
      firstSession = started.session;
    } else {
      // Whether the slot is still usable is checked as streaming starts, on every (re)connect.
      log.info({ appliedLsn: formatLsn(start.appliedLsn) }, 'continuing from the position the target recorded');
      source = await connect(options.source);
      await prepareCapture(source.client, names, options.filter, log, { resuming: true });
    }
  } catch (error) {
    firstSession?.destroy();
    throw error;
  } finally {
    await closeClient(admin.client);
    if (source) await closeClient(source.client);
  }

  // Row data a killed sync left in its spool: nobody reads it again.
  removeAbandonedSpools();
  const totals = await streamWithRetries(options, names, firstSession, log);
  return { name: names.name, slot: names.slot, cloned, ...totals };
}

/**
 * Decision 3: the slot is created first and exports its snapshot; the clone copies at that
 * snapshot; the stream starts at the slot's consistent point. Nothing missed, nothing twice.
 */
async function startFromClone(
  options: SyncOptions,
  names: MigrationNames,
  source: pg.Client,
  scope: Scope,
  { restarting, ownsSlotName }: { readonly restarting: boolean; readonly ownsSlotName: boolean },
  log: Logger,
): Promise<{ cloned: CloneSummary; session: ReplicationSession }> {
  await claimSlotName(source, names.slot, ownsSlotName);
  // Before the slot: every schema change after its snapshot is in the stream.
  await publishScope(source, names, options.filter, scope, log);
  const sourceSystemId = await systemIdentifier(source);
  const session = await ReplicationSession.open(options.source);
  try {
    log.info({ slot: names.slot }, 'creating the replication slot (waits for transactions running on the source to end)');
    const slot = await createSlotNamingBlockers(session, names.slot, source, options.slotTimeoutMs ?? DEFAULT_SLOT_TIMEOUT_MS, log);
    if (slot.snapshot === undefined)
      throw new PgferryError('query', 'source: the new replication slot exported no snapshot', { side: 'source' });
    log.info({ slot: names.slot, consistentLsn: formatLsn(slot.consistentPoint) }, 'slot created; copying at its snapshot');
    const cloned = await clone({
      source: options.source,
      target: options.target,
      filter: options.filter,
      ...options.clone,
      resume: false,
      dropExisting: options.dropExisting || restarting,
      logger: options.logger,
      snapshot: slot.snapshot,
      onCopyStarting: async (target) => {
        await ensureSyncState(target);
        await startSyncState(target, { ...names, sourceSystemId });
      },
    });
    await withTarget(options.target, (target) => startStreamingState(target, slot.consistentPoint));
    return { cloned, session };
  } catch (error) {
    session.destroy();
    throw error;
  }
}

async function withTarget<T>(spec: ConnectionSpec, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const { client } = await connect(spec);
  try {
    return await work(client);
  } finally {
    await closeClient(client);
  }
}
