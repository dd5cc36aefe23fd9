import type pg from 'pg';
import { stateTableExists } from './exists.js';
import { inTransaction } from '../plumbing/index.js';

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
  readonly unit: string;
  readonly position: number;
  readonly predicate: string | null;
}

export async function startClone(client: pg.Client, units: readonly PlannedUnitRow[]): Promise<void> {
  await inTransaction(client, async () => {
    await client.query(`INSERT INTO pgferry.clone DEFAULT VALUES`);
    await client.query(
      `INSERT INTO pgferry.copy_units (table_name, unit, position, predicate)
       SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[])`,
      [units.map((u) => u.table), units.map((u) => u.unit), units.map((u) => u.position), units.map((u) => u.predicate)],
    );
  });
}

export async function storedPlan(client: pg.Client): Promise<Array<PlannedUnitRow & { done: boolean }>> {
  const { rows } = await client.query<{ table: string; unit: string; position: number; predicate: string | null; done: boolean }>(
    `SELECT table_name AS table, unit, position, predicate, done FROM pgferry.copy_units ORDER BY position`,
  );
  return rows;
}

/** Inside the unit's own transaction, after its COPY. */
export async function markUnitDone(
  client: pg.Client,
  table: string,
  unit: string,
  rows: number,
  bytes: number,
  seconds: number,
): Promise<void> {
  await client.query(`UPDATE pgferry.copy_units SET done = true, rows = $3, bytes = $4, seconds = $5 WHERE table_name = $1 AND unit = $2`, [
    table,
    unit,
    rows,
    bytes,
    seconds,
  ]);
}

export async function finishClone(client: pg.Client): Promise<void> {
  await client.query(`UPDATE pgferry.clone SET finished_at = now()`);
}

/** Tables split into ranges of which some are done and some not: a resume copies them again whole. */
export async function halfDoneSplitTables(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ table: string }>(
    `SELECT table_name AS table FROM pgferry.copy_units
      GROUP BY table_name
     HAVING bool_or(done) AND NOT bool_and(done) AND bool_or(unit <> 'whole')`,
  );
  return rows.map((r) => r.table);
}

/** Marks every unit of `table` not done (inside the transaction that empties it). */
export async function resetTableUnits(client: pg.Client, table: string): Promise<void> {
  await client.query(`UPDATE pgferry.copy_units SET done = false, rows = NULL, bytes = NULL, seconds = NULL WHERE table_name = $1`, [
    table,
  ]);
}
