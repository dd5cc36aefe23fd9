import type pg from 'pg';
import { connect, type ConnectionSpec } from '../config/index.js';
import { messageOf, PgferryError } from '../errors.js';
import { closeClient } from '../plumbing/index.js';

/** The physical slot a migration's standby streams from: pgferry_phys_<name>. */
export function physicalSlotName(name: string): string {
  return `pgferry_phys_${name}`;
}

/** Names a slot may carry: lower-case letters, digits and underscores, as PostgreSQL allows. */
export function checkedMigrationName(name: string): string {
  if (!/^[a-z0-9_]{1,49}$/.test(name)) {
    throw new PgferryError('usage', `--name "${name}" is not a valid migration name`, {
      fix: 'use up to 49 lower-case letters, digits and underscores',
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
