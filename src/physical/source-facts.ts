import type pg from 'pg';
import { readSourceSettings, type SourceSettings } from './source-settings.js';

/** What the source says about serving a base backup and a standby. */
export interface PhysicalSourceFacts {
  readonly version: string;
  readonly major: number;
  readonly currentUser: string;
  readonly walLevel: string;
  readonly maxWalSenders: number;
  readonly walSendersInUse: number;
  readonly maxReplicationSlots: number;
  readonly slotsInUse: number;
  readonly canReplicate: boolean;
  /** ALTER SYSTEM on default_transaction_read_only: the cut-over's freeze of the whole server. */
  readonly canFreeze: boolean;
  /** Every database's size (those this role may not size are counted as 0 and named). */
  readonly clusterBytes: number;
  readonly unsized: readonly string[];
  readonly dataChecksums: boolean;
  /** The physical slot of this migration, if it exists already, and whether a standby streams from it. */
  readonly slot: { readonly exists: boolean; readonly active: boolean };
  /** The settings a copy of the data directory might lack, and where they come from. */
  readonly settings: SourceSettings;
}

export async function readPhysicalSourceFacts(source: pg.Client, slot: string): Promise<PhysicalSourceFacts> {
  const { rows } = await source.query<{
    version: string;
    num: number;
    usr: string;
    wal_level: string;
    max_senders: number;
    senders: number;
    max_slots: number;
    slots: number;
    can_replicate: boolean;
    superuser: boolean;
    checksums: boolean;
  }>(
    `SELECT current_setting('server_version') AS version, current_setting('server_version_num')::int AS num,
            current_user AS usr, current_setting('wal_level') AS wal_level,
            current_setting('max_wal_senders')::int AS max_senders,
            (SELECT count(*) FROM pg_stat_replication)::int AS senders,
            current_setting('max_replication_slots')::int AS max_slots,
            (SELECT count(*) FROM pg_replication_slots)::int AS slots,
            r.rolreplication OR r.rolsuper AS can_replicate, r.rolsuper AS superuser,
            current_setting('data_checksums') = 'on' AS checksums
       FROM pg_roles r WHERE r.rolname = current_user`,
  );
  const row = rows[0]!;
  const major = row.num >= 100000 ? Math.floor(row.num / 10000) : Math.floor(row.num / 100) / 100;
  // From 15 the privilege can be granted without superuser (GRANT ALTER SYSTEM ON PARAMETER).
  const canFreeze =
    row.superuser ||
    (major >= 15 &&
      (
        await source.query<{ ok: boolean }>(
          // The freeze's record is read back from pg_file_settings (pg_read_all_settings).
          `SELECT has_parameter_privilege('default_transaction_read_only', 'ALTER SYSTEM')
                  AND pg_has_role('pg_read_all_settings', 'MEMBER') AS ok`,
        )
      ).rows[0]!.ok);
  const sizes = await source.query<{ name: string; bytes: string | null }>(
    `SELECT datname AS name,
            CASE WHEN has_database_privilege(oid, 'CONNECT') OR pg_has_role('pg_read_all_stats', 'MEMBER')
                 THEN pg_database_size(oid)::text END AS bytes
       FROM pg_database`,
  );
  const found = await source.query<{ active: boolean }>(`SELECT active FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
  return {
    version: row.version,
    major,
    currentUser: row.usr,
    walLevel: row.wal_level,
    maxWalSenders: row.max_senders,
    walSendersInUse: row.senders,
    maxReplicationSlots: row.max_slots,
    slotsInUse: row.slots,
    canReplicate: row.can_replicate,
    canFreeze,
    clusterBytes: sizes.rows.reduce((sum, r) => sum + Number(r.bytes ?? 0), 0),
    unsized: sizes.rows.filter((r) => r.bytes === null).map((r) => r.name),
    dataChecksums: row.checksums,
    slot: { exists: found.rows.length > 0, active: found.rows[0]?.active ?? false },
    settings: await readSourceSettings(source),
  };
}
