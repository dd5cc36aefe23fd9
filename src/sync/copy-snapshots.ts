import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { connect, type ConnectionSpec } from '../config/index.js';
import type { PositionedSnapshot, SnapshotSource } from '../copy/index.js';
import { PgferryError, messageOf } from '../errors.js';
import type { Logger } from '../log/index.js';
import { closeClient, sleep, SQLSTATE, sqlState } from '../plumbing/index.js';
import { formatLsn, ReplicationSession } from '../replication/index.js';
import { recordSnapshotHeld, recordSnapshotReleased } from '../state/index.js';
import { createSlotNamingBlockers } from './slot-creation.js';

/** Prefix of the copy's temporary slots: `pgferry_copy_<run>_<n>`, gone with their sessions. */
export const COPY_SLOT_PREFIX = 'pgferry_copy_';

/**
 * Sync's per-table snapshots: each is a temporary logical slot's exported snapshot, whose
 * consistent point is exactly the position the snapshot stands at (the way PostgreSQL's own
 * table synchronisation takes them). The slot is never streamed from and goes with its
 * session; the snapshot lasts while the session stays idle. Each is recorded on the target
 * while held, for `status`.
 */
export class TemporarySlotSnapshots implements SnapshotSource {
  private readonly run = randomBytes(4).toString('hex');
  private made = 0;
  private held = 0;
  private sessions: { source: pg.Client; target: pg.Client } | undefined;

  constructor(
    private readonly source: ConnectionSpec,
    private readonly target: ConnectionSpec,
    private readonly slotTimeoutMs: number,
    private readonly log: Logger,
  ) {}

  async take(): Promise<PositionedSnapshot> {
    const sessions = (this.sessions ??= await this.open());
    const name = `${COPY_SLOT_PREFIX}${this.run}_${++this.made}`;
    for (;;) {
      const replication = await ReplicationSession.open(this.source).catch((error: unknown) => error);
      try {
        if (replication instanceof ReplicationSession) {
          const slot = await createSlotNamingBlockers(replication, name, sessions.source, this.slotTimeoutMs, this.log, {
            temporary: true,
            snapshot: 'export',
          });
          if (slot.snapshot === undefined)
            throw new PgferryError('query', `source: temporary slot ${name} exported no snapshot`, { side: 'source' });
          this.held++;
          await recordSnapshotHeld(sessions.target, name, slot.consistentPoint);
          this.log.debug({ slot: name, position: formatLsn(slot.consistentPoint) }, 'snapshot taken for the copy');
          return {
            name,
            snapshot: slot.snapshot,
            position: slot.consistentPoint,
            release: async () => {
              this.held--;
              await replication.close().catch(() => replication.destroy());
              await recordSnapshotReleased(sessions.target, name).catch(() => undefined);
            },
          };
        }
        throw replication;
      } catch (error) {
        if (replication instanceof ReplicationSession) replication.destroy();
        // The source's slots or WAL senders are all taken: another snapshot of this copy ends
        // when its table is copied, and frees one. With none of ours held, waiting is pointless.
        if (!outOfSlots(error) || this.held === 0) throw outOfSlots(error) ? noSlotLeft(error) : error;
        await sleep(1000);
      }
    }
  }

  async close(): Promise<void> {
    const sessions = this.sessions;
    this.sessions = undefined;
    if (sessions) await Promise.all([closeClient(sessions.source), closeClient(sessions.target)]);
  }

  private async open(): Promise<{ source: pg.Client; target: pg.Client }> {
    const [source, target] = await Promise.all([connect(this.source), connect(this.target)]);
    return { source: source.client, target: target.client };
  }
}

function outOfSlots(error: unknown): boolean {
  const code = sqlState(error);
  return code === SQLSTATE.configurationLimitExceeded || code === SQLSTATE.tooManyConnections;
}

function noSlotLeft(error: unknown): PgferryError {
  return new PgferryError('query', `source: no replication slot or WAL sender is free for the copy's snapshots: ${messageOf(error)}`, {
    side: 'source',
    fix: "the copy takes a temporary slot per table being copied (up to --jobs at once) beside the migration's own: raise max_replication_slots and max_wal_senders on the source by --jobs, or lower --jobs",
    cause: error,
  });
}
