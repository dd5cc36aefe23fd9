import type pg from 'pg';
import { connect, type ConnectionSpec } from '../config/index.js';
import { PgferryError } from '../errors.js';
import { closeClient, withDeadline } from '../plumbing/index.js';

/**
 * The slot keeps every WAL segment the target has not confirmed: while the apply is stuck (a
 * rejected change, a target that is down), the source's disk fills. Past --max-retained-wal a
 * moving apply is only warned about (it is catching up); a stuck one ends sync, loudly, with
 * what to do, while there is still room to decide.
 */

/** Nothing applied for this long counts as stuck. */
export const STALLED_AFTER_MS = 60_000;

/** Pure: the error to stop with, or undefined to go on. */
export function walGuardVerdict(
  slot: string,
  retainedBytes: number | undefined,
  limitBytes: number,
  stalledForMs: number,
): PgferryError | undefined {
  if (retainedBytes === undefined || retainedBytes <= limitBytes || stalledForMs < STALLED_AFTER_MS) return undefined;
  const mb = (bytes: number) => `${Math.round(bytes / 1048576)} MB`;
  return new PgferryError(
    'wal-limit',
    `source: replication slot ${slot} holds ${mb(retainedBytes)} of WAL, above --max-retained-wal (${mb(limitBytes)}), and nothing was applied for ${Math.round(stalledForMs / 1000)} s: sync stops before the source's disk fills`,
    {
      side: 'source',
      fix: "find what holds the apply (pgferry status, the log above: the target down, a change it rejects), fix it and run pgferry sync again; or, to free the source's disk at once, run pgferry cleanup (the migration then starts over)",
    },
  );
}

/** Bytes of WAL the slot holds on the source now. */
export async function retainedWal(source: pg.Client, slot: string): Promise<number | undefined> {
  const { rows } = await source.query<{ retained: string | null }>(
    `SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), restart_lsn)::bigint::text AS retained FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  return rows[0]?.retained == null ? undefined : Number(rows[0].retained);
}

/** The same, through a session of its own, for when the streaming run is down; undefined when the source does not answer. */
export async function retainedWalNow(spec: ConnectionSpec, slot: string): Promise<number | undefined> {
  try {
    const { client } = await connect(spec);
    try {
      return await withDeadline(retainedWal(client, slot), 10_000, 'reading the slot');
    } finally {
      await closeClient(client);
    }
  } catch {
    return undefined;
  }
}
