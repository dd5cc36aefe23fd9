import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { withConnection, type ConnectionSpec } from '../config/index.js';
import { PgferryError } from '../errors.js';
import { liftServerFreeze, serverFreezeRecord } from './server-freeze.js';
import { dropPhysicalSlot, physicalSlotName, stopOrphanedBackup } from './slot.js';
import { STANDBY_PASSFILE } from './standby.js';
import { readStandbyLag } from './standby-lag.js';

export interface PhysicalCleanupOptions {
  readonly source: ConnectionSpec;
  readonly name: string;
  readonly unfreezeSource: boolean;
  /** The promoted server's data directory, on this host: its copy of the source's password is removed. */
  readonly pgdata: string | undefined;
}

export interface PhysicalCleanupReport {
  /** Kept while a standby streams from it: the migration is not over (the freeze can still be lifted). */
  readonly slot: 'dropped' | 'absent' | 'kept';
  readonly freeze: 'lifted' | 'kept' | 'none';
  readonly passwordFile: 'removed' | 'not asked';
}

/**
 * `cleanup --physical`: the slot dropped on the old primary, its freeze lifted on request. A
 * slot a standby still streams from is kept (the migration is not over: a cut-over killed
 * after its freeze leaves exactly that); without --unfreeze-source that is refused, as there
 * would be nothing to do.
 */
export async function cleanupPhysical(options: PhysicalCleanupOptions): Promise<PhysicalCleanupReport> {
  const slot = physicalSlotName(options.name);
  return withConnection(options.source, async ({ client }) => {
    await stopOrphanedBackup(client, slot);
    const streaming = (await readStandbyLag(client, slot)) !== undefined;
    if (streaming && !options.unfreezeSource) {
      throw new PgferryError('usage', `source: a standby still streams from the slot ${slot}; nothing was removed`, {
        side: 'source',
        fix: 'run pgferry cutover --physical first, or stop the standby if the migration is abandoned, then clean up (--unfreeze-source alone lifts a freeze and keeps the slot)',
      });
    }
    const dropped = streaming ? 'kept' : await dropPhysicalSlot(client, slot);
    const record = await serverFreezeRecord(client);
    let freeze: PhysicalCleanupReport['freeze'] = 'none';
    if (record && options.unfreezeSource) {
      await liftServerFreeze(client, record);
      freeze = 'lifted';
    } else if (record) freeze = 'kept';
    if (options.pgdata !== undefined) await rm(join(resolve(options.pgdata), STANDBY_PASSFILE), { force: true });
    return { slot: dropped, freeze, passwordFile: options.pgdata === undefined ? 'not asked' : 'removed' };
  });
}
