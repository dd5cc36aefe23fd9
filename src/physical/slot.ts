import type pg from 'pg';
import { connect, type ConnectionSpec } from '../config/index.js';
import { messageOf, PgferryError } from '../errors.js';
import { closeClient, pollUntil } from '../plumbing/index.js';

/** The physical slot a migration's standby streams from: pgferry_phys_<name>. */
export function physicalSlotName(name: string): string {
  return `pgferry_phys_${name}`;
}

/** The application name of the base backup's connections: how a later run finds one an interrupted run left. */
export function backupApplicationName(slot: string): string {
  return slot.replace(/^pgferry_phys_/, 'pgferry_backup_');
}

/**
 * Stops the base backup an interrupted run left behind: pgferry killed, its pg_basebackup's
 * WAL-streaming process lives on (nothing tells it to stop) and holds the slot. Its walsenders
 * are ended; true when there was one. Waits (up to 30 s) for the slot to be let go.
 */
export async function stopOrphanedBackup(source: pg.Client, slot: string): Promise<boolean> {
  const { rows } = await source.query<{ n: number }>(
    `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
      WHERE backend_type = 'walsender' AND application_name = $1`,
    [backupApplicationName(slot)],
  );
  if ((rows[0]?.n ?? 0) === 0) return false;
  await pollUntil(
    async () => (await source.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active`, [slot])).rows.length === 0,
    { timeoutMs: 30_000, everyMs: 100, what: `the slot ${slot} to be let go by the base backup an interrupted run left` },
  );
  return true;
}

/** Names a slot may carry: lower-case letters, digits and underscores, as PostgreSQL allows. */
export function checkedMigrationName(name: string): string {
  if (!/^[a-z0-9_]{1,48}$/.test(name)) {
    throw new PgferryError('usage', `--name "${name}" is not a valid migration name`, {
      fix: 'use up to 48 lower-case letters, digits and underscores',
    });
  }
  return name;
}

/**
 * Makes the slot with its WAL reserved at once: from this moment the source keeps every WAL
 * segment the standby has not received, the base backup's included.
 */
export async function createPhysicalSlot(source: pg.Client, slot: string): Promise<void> {
  await source.query(`SELECT pg_create_physical_replication_slot($1, true)`, [slot]);
}

export async function dropPhysicalSlot(source: pg.Client, slot: string): Promise<'dropped' | 'absent'> {
  const { rows } = await source.query<{ dropped: boolean }>(
    `SELECT pg_drop_replication_slot(slot_name) IS NULL AS dropped FROM pg_replication_slots WHERE slot_name = $1 AND slot_type = 'physical'`,
    [slot],
  );
  return rows.length > 0 ? 'dropped' : 'absent';
}

/** Opens a physical replication connection and asks IDENTIFY_SYSTEM: pg_hba.conf, role and TLS all answer. */
export async function tryReplicationConnection(spec: ConnectionSpec): Promise<{ ok: true } | { ok: false; message: string }> {
  try {
    const { client } = await connect(spec, { replication: 'physical' });
    try {
      await client.query('IDENTIFY_SYSTEM');
      return { ok: true };
    } finally {
      await closeClient(client);
    }
  } catch (error) {
    return { ok: false, message: messageOf(error) };
  }
}
