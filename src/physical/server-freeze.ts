import type pg from 'pg';
import { quoteLiteral } from '../plumbing/index.js';

/**
 * The physical cut-over freezes the whole source server, every database at once, with
 * ALTER SYSTEM SET default_transaction_read_only = on and a reload. ALTER SYSTEM writes
 * postgresql.auto.conf on the source's disk and no WAL, so the freeze never reaches the
 * standby: the promoted server is the exact copy, with nothing of pgferry's to undo.
 * The freeze is recorded first, on the source itself, in a setting of pgferry's own that
 * holds what postgresql.auto.conf said before (or "unset"): a later cleanup, from any
 * machine, lifts it from that record.
 */
export const FREEZE_RECORD = 'pgferry.physical_freeze';
const UNSET = 'unset';

/** Freezes the server and returns the server's clock once the freeze holds (as text, microseconds kept). */
export async function freezeServer(source: pg.Client): Promise<string> {
  const previous = (await autoConfReadOnly(source)) ?? UNSET;
  await knowRecordSetting(source);
  await source.query(`ALTER SYSTEM SET ${FREEZE_RECORD} = ${quoteLiteral(previous)}`);
  await source.query(`ALTER SYSTEM SET default_transaction_read_only = on`);
  await source.query(`SELECT pg_reload_conf()`);
  const { rows } = await source.query<{ at: string }>('SELECT clock_timestamp()::text AS at');
  return rows[0]!.at;
}

/** What the record says, read from the configuration files (a session started before the freeze may not see it yet). */
export async function serverFreezeRecord(source: pg.Client): Promise<{ previous: string | null } | undefined> {
  const value = await autoConfValue(source, FREEZE_RECORD);
  if (value === undefined) return undefined;
  return { previous: value === UNSET ? null : value };
}

/** Lifts the freeze: the previous value back (or none), the record removed, the server reloaded. */
export async function liftServerFreeze(source: pg.Client, record: { previous: string | null }): Promise<void> {
  if (record.previous === null) await source.query(`ALTER SYSTEM RESET default_transaction_read_only`);
  else await source.query(`ALTER SYSTEM SET default_transaction_read_only = ${quoteLiteral(record.previous)}`);
  await knowRecordSetting(source);
  await source.query(`ALTER SYSTEM RESET ${FREEZE_RECORD}`);
  await source.query(`SELECT pg_reload_conf()`);
}

/**
 * Before PostgreSQL 17, ALTER SYSTEM takes a custom setting only when this session knows it:
 * setting it in the session (to nothing, for the session only) makes it known.
 */
async function knowRecordSetting(source: pg.Client): Promise<void> {
  await source.query(`SELECT set_config('${FREEZE_RECORD}', '', false)`);
}

async function autoConfReadOnly(source: pg.Client): Promise<string | undefined> {
  return autoConfValue(source, 'default_transaction_read_only');
}

/** A setting's value in postgresql.auto.conf (pg_file_settings: superusers, or pg_read_all_settings). */
async function autoConfValue(source: pg.Client, name: string): Promise<string | undefined> {
  const { rows } = await source.query<{ setting: string }>(
    `SELECT setting FROM pg_file_settings
      WHERE name = $1 AND sourcefile LIKE '%postgresql.auto.conf' AND error IS NULL
      ORDER BY seqno DESC LIMIT 1`,
    [name],
  );
  return rows[0]?.setting;
}
