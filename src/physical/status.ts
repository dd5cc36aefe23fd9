import { withConnection, type ConnectionSpec } from '../config/index.js';
import { formatLsn } from '../replication/index.js';
import { serverFreezeRecord } from './server-freeze.js';
import { physicalSlotName } from './slot.js';
import { lagBytes, readStandbyLag } from './standby-lag.js';

export interface PhysicalStatus {
  readonly slot: string;
  readonly slotExists: boolean;
  /** WAL the source keeps for the slot, in bytes. */
  readonly retainedBytes: string | null;
  readonly standby: {
    readonly state: string;
    readonly sourceLsn: string;
    readonly lagBytes: Record<'sent' | 'written' | 'flushed' | 'replayed', string | null>;
    readonly lagSeconds: { readonly written: number | null; readonly flushed: number | null; readonly replayed: number | null };
  } | null;
  readonly sourceFrozen: boolean;
}

/** `status --physical`: the standby as the source sees it (sent, written, flushed, replayed), and the slot. */
export async function physicalStatus(source: ConnectionSpec, name: string): Promise<PhysicalStatus> {
  const slot = physicalSlotName(name);
  return withConnection(source, async ({ client }) => {
    const { rows } = await client.query<{ retained: string | null }>(
      `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text AS retained FROM pg_replication_slots WHERE slot_name = $1`,
      [slot],
    );
    const lag = await readStandbyLag(client, slot);
    return {
      slot,
      slotExists: rows.length > 0,
      retainedBytes: rows[0]?.retained ?? null,
      standby:
        lag === undefined
          ? null
          : {
              state: lag.state,
              sourceLsn: formatLsn(lag.currentLsn),
              lagBytes: lagBytes(lag),
              lagSeconds: { written: lag.writeLagSeconds, flushed: lag.flushLagSeconds, replayed: lag.replayLagSeconds },
            },
      sourceFrozen: (await serverFreezeRecord(client).catch(() => undefined)) !== undefined,
    };
  });
}
