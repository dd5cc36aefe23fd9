import type pg from 'pg';
import { LaterColumns, stateTableExists } from './exists.js';
import { inTransaction } from '../plumbing/index.js';
import { formatLsn, parseLsn, type Lsn } from '../replication/index.js';

/**
 * The copy's plan and progress on the target. The plan is stored once, so a resumed clone
 * copies exactly the units that did not finish; a unit is marked done in the transaction
 * that loads its rows, so "done" and "its rows are there" can never disagree.
 */
export interface StoredUnit {
  readonly table: string;
  readonly unit: string;
  readonly done: boolean;
}

export type CloneState = 'none' | 'interrupted' | 'finished';

/**
 * `snapshot_lsn`: the position of the snapshot a unit was copied at, when a change stream
 * completes the copy (sync): the stream applies the table's changes from there on.
 */
const LATER_UNIT_COLUMNS = new LaterColumns('copy_units', [
  ['snapshot_lsn', 'pg_lsn'],
  ['source_oid', 'oid'],
]);

/** The schema a copy that a stream completes planned with (JSON), for its resumption. */
const LATER_CLONE_COLUMNS = new LaterColumns('clone', [['planned_schema', 'text']]);

export async function ensureCopyState(client: pg.Client): Promise<void> {
  await client.query(`
    CREATE TABLE IF NOT EXISTS pgferry.clone (
      only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
      started_at  timestamptz NOT NULL DEFAULT now(),
      finished_at timestamptz
    );
    CREATE TABLE IF NOT EXISTS pgferry.copy_units (
      table_name text NOT NULL,
      unit       text NOT NULL,
      position   int NOT NULL,
      predicate  text,
      done       boolean NOT NULL DEFAULT false,
      rows       bigint,
      bytes      bigint,
      seconds    float8,
      PRIMARY KEY (table_name, unit)
    );
    ${LATER_UNIT_COLUMNS.add}
    ${LATER_CLONE_COLUMNS.add}
    CREATE TABLE IF NOT EXISTS pgferry.copy_snapshots (
      name        text PRIMARY KEY,
      position    pg_lsn NOT NULL,
      taken_at    timestamptz NOT NULL DEFAULT now()
    );`);
}

export async function cloneState(client: pg.Client): Promise<CloneState> {
  if (!(await stateTableExists(client, 'clone'))) return 'none';
  const { rows } = await client.query<{ finished: boolean }>(`SELECT finished_at IS NOT NULL AS finished FROM pgferry.clone`);
  if (rows.length === 0) return 'none';
  return rows[0]!.finished ? 'finished' : 'interrupted';
}

export interface PlannedUnitRow {
  readonly table: string;
  /** The table's OID on the source: the change stream names relations by it, and it survives a rename. */
  readonly oid: number | null;
  readonly unit: string;
  readonly position: number;
  readonly predicate: string | null;
}

export async function startClone(client: pg.Client, units: readonly PlannedUnitRow[], plannedSchema?: string): Promise<void> {
  await inTransaction(client, async () => {
    await client.query(`INSERT INTO pgferry.clone (planned_schema) VALUES ($1)`, [plannedSchema ?? null]);
    await client.query(
      `INSERT INTO pgferry.copy_units (table_name, unit, position, predicate, source_oid)
       SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::oid[])`,
      [
        units.map((u) => u.table),
        units.map((u) => u.unit),
        units.map((u) => u.position),
        units.map((u) => u.predicate),
        units.map((u) => u.oid),
      ],
    );
  });
}

/** A copy at per-table snapshots (it stored its schema) began and did not finish: it can continue. */
export async function copyIsResumable(client: pg.Client): Promise<boolean> {
  return (await cloneState(client)) === 'interrupted' && (await plannedSchema(client)) !== undefined;
}

/** The schema an interrupted copy planned with, when it stored one. */
export async function plannedSchema(client: pg.Client): Promise<string | undefined> {
  if (!(await stateTableExists(client, 'clone'))) return undefined;
  const { rows } = await client.query<{ planned_schema: string | null }>(
    `SELECT ${await LATER_CLONE_COLUMNS.selectList(client)} FROM pgferry.clone`,
  );
  return rows[0]?.planned_schema ?? undefined;
}

export async function storedPlan(client: pg.Client): Promise<Array<PlannedUnitRow & { done: boolean }>> {
  const later = await LATER_UNIT_COLUMNS.selectList(client);
  const { rows } = await client.query<{
    table: string;
    unit: string;
    position: number;
    predicate: string | null;
    done: boolean;
    oid: number | null;
  }>(
    `SELECT table_name AS table, unit, position, predicate, done, source_oid::int8 AS oid FROM (SELECT table_name, unit, position, predicate, done, ${later} FROM pgferry.copy_units) u ORDER BY position`,
  );
  return rows.map((r) => ({ ...r, oid: r.oid === null ? null : Number(r.oid) }));
}

/** Inside the unit's own transaction, after its COPY. */
export async function markUnitDone(
  client: pg.Client,
  table: string,
  unit: string,
  rows: number,
  bytes: number,
  seconds: number,
  position: Lsn | undefined,
): Promise<void> {
  await client.query(
    `UPDATE pgferry.copy_units SET done = true, rows = $3, bytes = $4, seconds = $5, snapshot_lsn = $6::pg_lsn WHERE table_name = $1 AND unit = $2`,
    [table, unit, rows, bytes, seconds, position === undefined ? null : formatLsn(position)],
  );
}

/**
 * The copy's units with the position each was copied at (null while not done, or copied at the
 * migration's one snapshot by an earlier pgferry), for the change stream to tell which changes
 * a table's copy holds already. Units of tables the plan could not name by OID are left out.
 */
export interface UnitPosition {
  readonly oid: number;
  /** As format('%I.%I') writes it. */
  readonly table: string;
  readonly unit: string;
  readonly predicate: string | null;
  readonly done: boolean;
  readonly position: Lsn | null;
}

export async function copyPositions(client: pg.Client): Promise<UnitPosition[]> {
  if (!(await stateTableExists(client, 'copy_units'))) return [];
  const { rows } = await client.query<{
    oid: string;
    table: string;
    unit: string;
    predicate: string | null;
    done: boolean;
    position: string | null;
  }>(
    `SELECT source_oid::int8::text AS oid, table_name AS table, unit, predicate, done, snapshot_lsn::text AS position
       FROM (SELECT table_name, unit, predicate, done, ${await LATER_UNIT_COLUMNS.selectList(client)} FROM pgferry.copy_units) u
      WHERE source_oid IS NOT NULL`,
  );
  return rows.map((r) => ({ ...r, oid: Number(r.oid), position: r.position === null ? null : parseLsn(r.position) }));
}

/** A planned table renamed on the source (and by the stream on the target) is copied under its new name. */
export async function renamePlannedTable(client: pg.Client, oid: number, table: string): Promise<void> {
  await client.query(`UPDATE pgferry.copy_units SET table_name = $2 WHERE source_oid = $1`, [oid, table]);
}

/** A snapshot the copy holds on the source, for status: taken and released as the copy goes. */
export async function recordSnapshotHeld(client: pg.Client, name: string, position: Lsn): Promise<void> {
  await client.query(`INSERT INTO pgferry.copy_snapshots (name, position) VALUES ($1, $2::pg_lsn) ON CONFLICT (name) DO NOTHING`, [
    name,
    formatLsn(position),
  ]);
}

export async function recordSnapshotReleased(client: pg.Client, name: string): Promise<void> {
  await client.query(`DELETE FROM pgferry.copy_snapshots WHERE name = $1`, [name]);
}

/** A copy starting: snapshots an earlier, killed, run recorded are gone with its sessions. */
export async function forgetHeldSnapshots(client: pg.Client): Promise<void> {
  if (await stateTableExists(client, 'copy_snapshots')) await client.query(`DELETE FROM pgferry.copy_snapshots`);
}

/** The oldest snapshot the copy holds on the source, and its age by the target's clock. */
export async function oldestHeldSnapshot(
  client: pg.Client,
): Promise<{ readonly name: string; readonly position: Lsn; readonly ageSeconds: number; readonly held: number } | undefined> {
  if (!(await stateTableExists(client, 'copy_snapshots'))) return undefined;
  const { rows } = await client.query<{ name: string; position: string; age: number; held: string }>(
    `SELECT name, position::text, extract(epoch FROM now() - taken_at)::float8 AS age, count(*) OVER ()::text AS held
       FROM pgferry.copy_snapshots ORDER BY taken_at LIMIT 1`,
  );
  const row = rows[0];
  return row ? { name: row.name, position: parseLsn(row.position), ageSeconds: row.age, held: Number(row.held) } : undefined;
}

export async function finishClone(client: pg.Client): Promise<void> {
  await client.query(`UPDATE pgferry.clone SET finished_at = now()`);
}

/** Marks every unit of `table` not done (inside the transaction that empties it). */
export async function resetTableUnits(client: pg.Client, table: string): Promise<void> {
  await client.query(`UPDATE pgferry.copy_units SET done = false, rows = NULL, bytes = NULL, seconds = NULL WHERE table_name = $1`, [
    table,
  ]);
}
