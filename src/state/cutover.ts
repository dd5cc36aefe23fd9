import type pg from 'pg';
import { formatLsn, parseLsn, type Lsn } from '../replication/index.js';
import { LaterColumns, stateTableExists } from './exists.js';

/**
 * What a cut-over did to the source, written on the target before it is done: a cut-over
 * that dies half-way leaves the source frozen, and `pgferry cleanup --unfreeze-source` (from
 * any machine) finds here exactly what to undo.
 */
export type FreezeMode = 'read-only' | 'revoke' | 'none';

/** One privilege a `--freeze revoke` took away, to be given back exactly. */
export interface RevokedPrivilege {
  readonly role: string;
  /** `table` or `sequence`; the object is schema-qualified and quoted. */
  readonly kind: 'table' | 'sequence';
  readonly object: string;
  readonly privileges: readonly string[];
}

export interface FreezeRecord {
  readonly id: number;
  /** When the cut-over began: sessions opened from then on may carry the freeze's read-only default. */
  readonly startedAt: Date;
  /**
   * The frozen server's system identifier (null in records of earlier versions): a cut-over
   * back lifts only a freeze of the very server it returns to.
   */
  readonly systemId: string | null;
  readonly mode: FreezeMode;
  readonly database: string;
  /** The database's own `default_transaction_read_only` setting before the freeze, if it had one. */
  readonly previousReadOnly: string | null;
  readonly revoked: readonly RevokedPrivilege[];
}

/** Columns later versions added to pgferry.cutover. */
const LATER_COLUMNS = new LaterColumns('cutover', [
  ['source_system_id', 'text'],
  ['way_back_slot', 'text'],
  ['way_back_lsn', 'pg_lsn'],
]);

export async function ensureCutoverState(client: pg.Client): Promise<void> {
  await client.query(`
    CREATE SCHEMA IF NOT EXISTS pgferry;
    CREATE TABLE IF NOT EXISTS pgferry.cutover (
      id                 bigserial PRIMARY KEY,
      started_at         timestamptz NOT NULL DEFAULT now(),
      freeze_mode        text NOT NULL,
      source_database    text NOT NULL,
      previous_read_only text,
      revoked            jsonb NOT NULL DEFAULT '[]',
      frozen             boolean NOT NULL DEFAULT false,
      outcome            text,
      fence_lsn          pg_lsn,
      downtime_ms        float8,
      finished_at        timestamptz
    );
    ${LATER_COLUMNS.add}`);
}

/** Written before the source is touched, so a crash mid-freeze is always undoable. */
export async function recordFreezeIntent(client: pg.Client, freeze: Omit<FreezeRecord, 'id' | 'startedAt'>): Promise<number> {
  const { rows } = await client.query<{ id: string }>(
    `INSERT INTO pgferry.cutover (freeze_mode, source_database, previous_read_only, revoked, frozen, source_system_id)
     VALUES ($1, $2, $3, $4::jsonb, $5, $6) RETURNING id::text`,
    [freeze.mode, freeze.database, freeze.previousReadOnly, JSON.stringify(freeze.revoked), freeze.mode !== 'none', freeze.systemId],
  );
  return Number(rows[0]!.id);
}

export async function recordUnfrozen(client: pg.Client, id: number): Promise<void> {
  await client.query(`UPDATE pgferry.cutover SET frozen = false WHERE id = $1`, [id]);
}

export async function recordCutoverOutcome(
  client: pg.Client,
  id: number,
  outcome: { readonly outcome: 'done' | 'failed'; readonly fenceLsn: Lsn | undefined; readonly downtimeMs: number | undefined },
): Promise<void> {
  await client.query(
    `UPDATE pgferry.cutover SET outcome = $2, fence_lsn = $3::pg_lsn, downtime_ms = $4, finished_at = now() WHERE id = $1`,
    [id, outcome.outcome, outcome.fenceLsn === undefined ? null : formatLsn(outcome.fenceLsn), outcome.downtimeMs ?? null],
  );
}

/** The way back this cut-over prepared: its slot on this (the target's) server, and where it starts. */
export async function recordWayBack(client: pg.Client, id: number, slot: string, from: Lsn): Promise<void> {
  await client.query(`UPDATE pgferry.cutover SET way_back_slot = $2, way_back_lsn = $3::pg_lsn WHERE id = $1`, [id, slot, formatLsn(from)]);
}

/** Freezes a cut-over left on the source (it died, or it kept the source read-only as asked). */
export async function freezesInPlace(client: pg.Client): Promise<FreezeRecord[]> {
  if (!(await stateTableExists(client, 'cutover'))) return [];
  const later = await LATER_COLUMNS.selectList(client);
  const { rows } = await client.query<{
    id: string;
    started_at: Date;
    freeze_mode: FreezeMode;
    source_database: string;
    previous_read_only: string | null;
    revoked: RevokedPrivilege[];
    source_system_id: string | null;
  }>(
    `SELECT id::text, started_at, freeze_mode, source_database, previous_read_only, revoked, ${later} FROM pgferry.cutover WHERE frozen ORDER BY id DESC`,
  );
  return rows.map((r) => ({
    id: Number(r.id),
    startedAt: r.started_at,
    systemId: r.source_system_id,
    mode: r.freeze_mode,
    database: r.source_database,
    previousReadOnly: r.previous_read_only,
    revoked: r.revoked,
  }));
}

/** The newest cut-over as `status` shows it. */
export interface CutoverRecord {
  readonly startedAt: Date;
  readonly mode: FreezeMode;
  /** Whether the source is still frozen by it. */
  readonly frozen: boolean;
  /** Null while it runs (or if it died before recording how it ended). */
  readonly outcome: 'done' | 'failed' | null;
  readonly fenceLsn: Lsn | null;
  readonly downtimeMs: number | null;
  readonly finishedAt: Date | null;
  /** The way back it prepared on this server (null: none, with --no-fallback or before this existed). */
  readonly wayBack: { readonly slot: string; readonly from: Lsn } | null;
}

export async function lastCutover(client: pg.Client): Promise<CutoverRecord | undefined> {
  if (!(await stateTableExists(client, 'cutover'))) return undefined;
  const later = await LATER_COLUMNS.selectList(client);
  const { rows } = await client.query<{
    started_at: Date;
    freeze_mode: FreezeMode;
    frozen: boolean;
    outcome: 'done' | 'failed' | null;
    fence_lsn: string | null;
    downtime_ms: number | null;
    finished_at: Date | null;
    way_back_slot: string | null;
    way_back_lsn: string | null;
  }>(
    `SELECT started_at, freeze_mode, frozen, outcome, fence_lsn::text, downtime_ms, finished_at, ${later} FROM pgferry.cutover ORDER BY id DESC LIMIT 1`,
  );
  const r = rows[0];
  if (!r) return undefined;
  return {
    startedAt: r.started_at,
    mode: r.freeze_mode,
    frozen: r.frozen,
    outcome: r.outcome,
    fenceLsn: r.fence_lsn === null ? null : parseLsn(r.fence_lsn),
    downtimeMs: r.downtime_ms,
    finishedAt: r.finished_at,
    wayBack: r.way_back_slot === null || r.way_back_lsn === null ? null : { slot: r.way_back_slot, from: parseLsn(r.way_back_lsn) },
  };
}
