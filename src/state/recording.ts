import type pg from 'pg';
import { formatLsn, parseLsn, type Lsn } from '../replication/index.js';
import { stateTableExists } from './exists.js';
import { notifySync } from './notify.js';

/**
 * A cut-over's request that sync record the rows it applies (cutover/changes.ts tells why), and
 * what sync recorded. The request lives in pgferry.sync, the row both processes already read:
 * sync finds it in the poll that looks for a stop request. It carries a lease the cut-over
 * renews: a cut-over that dies leaves a request sync drops once the lease has run out, so no
 * recording outlives its cut-over by more than the lease.
 *
 * pgferry.changed_rows holds one row per key (or whole table) per request, with the end
 * position of the last batch that changed it: "what changed after position P" is read page by
 * page, each page one range of an index.
 */

/** What sync records for one table in one batch. */
export type ChangedRow =
  /**
   * Rows by their key (`key`): `columns` names the key columns, `key` their values as the source
   * printed them; or, where no key names them (`row`), by their whole image: every column sent.
   */
  | {
      readonly table: string;
      readonly kind: 'key' | 'row';
      readonly columns: readonly string[];
      readonly key: ReadonlyArray<string | null>;
    }
  /** The whole table: TRUNCATE, no key to name rows by, a key value not sent. */
  | { readonly table: string; readonly kind: 'table'; readonly reason: string }
  /** Every table: a schema change ran, whose reach over the rows is not known row by row. */
  | { readonly kind: 'everything'; readonly reason: string };

/** A request as sync's poll reads it. */
export interface RecordingRequest {
  readonly id: string;
  /** Its lease ran out: the cut-over that made it is gone (or stuck), and sync drops it. */
  readonly expired: boolean;
  /** Sync recorded the position from which it records: it need not say so again after a restart. */
  readonly acknowledged: boolean;
}

/** The columns of the request in pgferry.sync (sync's run adds them with the others, state/sync.ts). */
export const RECORDING_COLUMNS: ReadonlyArray<readonly [string, string]> = [
  ['recording_id', 'text'],
  ['recording_lease_until', 'timestamptz'],
  ['recording_from_lsn', 'pg_lsn'],
];

/**
 * pgferry.changed_rows, made by sync as it starts (ensureSyncState), before any batch runs. Each
 * statement is its own transaction where a cut-over must make it (a sync started by an earlier
 * pgferry): one transaction altering both pgferry.sync and changed_rows deadlocked with a batch
 * that updates pgferry.sync and then records into changed_rows.
 */
export const CHANGED_ROWS_STATEMENTS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS pgferry.changed_rows (
    recording_id text NOT NULL,
    table_name   text NOT NULL,
    -- 'key', 'row', 'table' or 'everything'; a key's (a row image's) column names and values are JSON arrays ('' otherwise).
    kind         text NOT NULL,
    columns      text NOT NULL,
    key          text NOT NULL,
    reason       text,
    lsn          pg_lsn NOT NULL
  );`,
  `-- One row per key: by the keys' md5, as a key (a keyless row's whole image) can be wider than an
  -- index entry may be (2.7 kB); a primary key over the text itself ended sync at such a row.
  -- Two keys merge only if their md5 collide, which takes a pair crafted for it.
  ALTER TABLE pgferry.changed_rows DROP CONSTRAINT IF EXISTS changed_rows_pkey;`,
  `CREATE UNIQUE INDEX IF NOT EXISTS changed_rows_once
      ON pgferry.changed_rows (recording_id, table_name, kind, pg_catalog.md5(columns), pg_catalog.md5(key));`,
  `-- The order the cut-over pages through them in: by position, then by when each was first recorded
  -- (a row recorded again keeps its number and takes the later position).
  ALTER TABLE pgferry.changed_rows ADD COLUMN IF NOT EXISTS seq bigint GENERATED ALWAYS AS IDENTITY;`,
  `CREATE INDEX IF NOT EXISTS changed_rows_in_order ON pgferry.changed_rows (recording_id, lsn, seq);`,
  `DROP INDEX IF EXISTS pgferry.changed_rows_by_position;`,
];

/**
 * The cut-over asks sync to record: any earlier request and its rows are replaced (a cut-over
 * that died left them), and sync is woken to read it.
 */
export async function requestRecording(client: pg.Client, id: string, leaseMs: number): Promise<void> {
  if (!(await recordingTablesReady(client))) {
    const columns = RECORDING_COLUMNS.map(([name, type]) => `ALTER TABLE pgferry.sync ADD COLUMN IF NOT EXISTS ${name} ${type}`);
    for (const statement of [...CHANGED_ROWS_STATEMENTS, ...columns]) await client.query(statement);
  }
  // Two statements, each its own transaction, so neither waits on a batch while holding what the
  // batch waits for: the request (the row of pgferry.sync), then the rows an earlier request left
  // (no batch records under this id before it reads the request).
  await client.query(
    `UPDATE pgferry.sync SET recording_id = $1, recording_from_lsn = NULL,
            recording_lease_until = clock_timestamp() + $2 * interval '1 millisecond'`,
    [id, leaseMs],
  );
  await client.query('DELETE FROM pgferry.changed_rows WHERE recording_id IS DISTINCT FROM $1', [id]);
  await notifySync(client);
}

/** Whether sync made the record's table as this version has it, so the cut-over alters nothing. */
async function recordingTablesReady(client: pg.Client): Promise<boolean> {
  const { rows } = await client.query<{ ready: boolean }>(
    `SELECT to_regclass('pgferry.changed_rows_in_order') IS NOT NULL
            AND to_regclass('pgferry.changed_rows_once') IS NOT NULL
            AND (SELECT count(*) FROM pg_catalog.pg_attribute
                  WHERE attrelid = 'pgferry.sync'::regclass AND attname = ANY($1) AND NOT attisdropped) = cardinality($1) AS ready`,
    [RECORDING_COLUMNS.map(([name]) => name)],
  );
  return rows[0]?.ready === true;
}

/**
 * Extends the lease. False when the request is gone: sync dropped it (the lease had run out)
 * and stopped recording, so what it recorded no longer covers everything since it began.
 */
export async function renewRecording(client: pg.Client, id: string, leaseMs: number): Promise<boolean> {
  const { rowCount } = await client.query(
    `UPDATE pgferry.sync SET recording_lease_until = clock_timestamp() + $2 * interval '1 millisecond' WHERE recording_id = $1`,
    [id, leaseMs],
  );
  return rowCount === 1;
}

/** Where sync began recording for this request, once it has said so (null: not yet). */
export async function recordingStart(client: pg.Client, id: string): Promise<{ readonly present: boolean; readonly from: Lsn | null }> {
  const { rows } = await client.query<{ from_lsn: string | null }>(
    `SELECT recording_from_lsn::text AS from_lsn FROM pgferry.sync WHERE recording_id = $1`,
    [id],
  );
  const row = rows[0];
  return { present: row !== undefined, from: row?.from_lsn ? parseLsn(row.from_lsn) : null };
}

/** The request ends: sync stops recording at its next poll, and what it recorded is removed. */
export async function endRecording(client: pg.Client, id: string): Promise<void> {
  if (!(await stateTableExists(client, 'changed_rows'))) return;
  // Two statements, each its own transaction, as for the request: one statement deleted the rows
  // first and then waited on a batch holding pgferry.sync's row, and the batch, recording a key
  // again, waited on a deleted row: a deadlock. The request goes first, so no batch after it
  // records under it; then its rows.
  await client.query(
    `UPDATE pgferry.sync SET recording_id = NULL, recording_lease_until = NULL, recording_from_lsn = NULL WHERE recording_id = $1`,
    [id],
  );
  await client.query('DELETE FROM pgferry.changed_rows WHERE recording_id = $1', [id]);
  await notifySync(client);
}

/**
 * Sync drops a request whose lease ran out, unless the cut-over renewed it meanwhile: true when
 * it was dropped (and its rows with it), and only then does sync stop recording.
 */
export async function dropExpiredRecording(client: pg.Client, id: string): Promise<boolean> {
  const { rows } = await client.query<{ dropped: boolean }>(
    `WITH request AS (UPDATE pgferry.sync SET recording_id = NULL, recording_lease_until = NULL, recording_from_lsn = NULL
                       WHERE recording_id = $1 AND recording_lease_until < clock_timestamp() RETURNING 1),
          changed AS (DELETE FROM pgferry.changed_rows WHERE recording_id = $1 AND EXISTS (SELECT 1 FROM request))
     SELECT EXISTS (SELECT 1 FROM request) AS dropped`,
    [id],
  );
  return rows[0]?.dropped === true;
}

/**
 * Inside a batch's transaction: the rows it changed, with its end position; and, the first time,
 * the position the recording starts from (everything the batch holds lies past it). Rows are
 * written only while the request is still there: a batch that overlaps the request's end
 * leaves nothing behind.
 */
export async function recordChangedRows(
  client: pg.Client,
  id: string,
  batch: { readonly lsn: Lsn; readonly startsAt: Lsn | undefined; readonly rows: readonly ChangedRow[] },
): Promise<void> {
  const tables: string[] = [];
  const kinds: string[] = [];
  const columns: string[] = [];
  const keys: string[] = [];
  const reasons: Array<string | null> = [];
  for (const row of batch.rows) {
    tables.push(row.kind === 'everything' ? '' : row.table);
    kinds.push(row.kind);
    if (row.kind === 'table' || row.kind === 'everything') {
      columns.push('');
      keys.push('');
      reasons.push(row.reason);
    } else {
      columns.push(JSON.stringify(row.columns));
      keys.push(JSON.stringify(row.key));
      reasons.push(null);
    }
  }
  await client.query(
    `WITH started AS (UPDATE pgferry.sync SET recording_from_lsn = $3::pg_lsn
                       WHERE $3::pg_lsn IS NOT NULL AND recording_id = $1 AND recording_from_lsn IS NULL)
     INSERT INTO pgferry.changed_rows AS c (recording_id, table_name, kind, columns, key, reason, lsn)
     SELECT $1, t, k, c, v, r, $2::pg_lsn FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) AS u(t, k, c, v, r)
      WHERE EXISTS (SELECT 1 FROM pgferry.sync WHERE recording_id = $1)
     ON CONFLICT (recording_id, table_name, kind, pg_catalog.md5(columns), pg_catalog.md5(key)) DO UPDATE SET lsn = EXCLUDED.lsn, reason = EXCLUDED.reason`,
    [id, formatLsn(batch.lsn), batch.startsAt === undefined ? null : formatLsn(batch.startsAt), tables, kinds, columns, keys, reasons],
  );
}

/** Where the rows recorded for a request stand, read at one moment. */
export interface RecordingPosition {
  /** The request is still in place: sync has recorded without a break since it began. */
  readonly present: boolean;
  readonly from: Lsn | null;
  /** The target's applied position: every row changed up to it is recorded (at a position up to it). */
  readonly appliedLsn: Lsn;
}

/** Whether request `id` stands, and the target's applied position. */
export async function recordingPosition(client: pg.Client, id: string): Promise<RecordingPosition | null> {
  const { rows } = await client.query<{ applied: string; from_lsn: string | null; present: boolean }>(
    `SELECT s.applied_lsn::text AS applied, s.recording_from_lsn::text AS from_lsn, s.recording_id IS NOT DISTINCT FROM $1 AS present
       FROM pgferry.sync s`,
    [id],
  );
  const row = rows[0];
  if (!row) return null;
  return { present: row.present, from: row.from_lsn === null ? null : parseLsn(row.from_lsn), appliedLsn: parseLsn(row.applied) };
}

/** Where a page of recorded rows ended: the next page starts past it. */
export interface RecordedCursor {
  readonly lsn: string;
  readonly seq: string;
}

/** One page of the rows recorded for a request. */
export interface RecordedPage {
  /** The request still stood when the page was read. */
  readonly present: boolean;
  readonly rows: readonly ChangedRow[];
  /** Past the page's last row; null once no row is left. */
  readonly next: RecordedCursor | null;
}

/**
 * At most `limit` rows recorded for request `id` at a position in (`after`, `upTo`], past
 * `cursor`, in the order of the index that serves it (position, then first recording): each page
 * is one short index range, whatever was recorded before. Sync writes each row in the same
 * transaction as the applied position, so the rows up to an applied position read earlier are all
 * there; one recorded again meanwhile moves past `upTo`, where the next pass finds it.
 */
export async function readRecordedPage(
  client: pg.Client,
  id: string,
  range: { readonly after: Lsn; readonly upTo: Lsn; readonly cursor: RecordedCursor | null; readonly limit: number },
): Promise<RecordedPage> {
  const { rows } = await client.query<{
    present: boolean;
    changed: Array<{ t: string; k: string; c: string; v: string; r: string | null; l: string; s: string }> | null;
  }>(
    `SELECT EXISTS (SELECT 1 FROM pgferry.sync WHERE recording_id = $1) AS present,
            (SELECT json_agg(json_build_object('t', table_name, 'k', kind, 'c', columns, 'v', key, 'r', reason, 'l', lsn::text, 's', seq::text)
                             ORDER BY lsn, seq)
               FROM (SELECT * FROM pgferry.changed_rows
                      WHERE recording_id = $1 AND lsn > $2::pg_lsn AND lsn <= $3::pg_lsn
                        AND ($4::pg_lsn IS NULL OR (lsn, seq) > ($4::pg_lsn, $5::bigint))
                      ORDER BY lsn, seq LIMIT $6) page) AS changed`,
    [id, formatLsn(range.after), formatLsn(range.upTo), range.cursor?.lsn ?? null, range.cursor?.seq ?? null, range.limit],
  );
  const row = rows[0];
  const changed = row?.changed ?? [];
  const last = changed[changed.length - 1];
  return {
    present: row?.present === true,
    rows: changed.map((c): ChangedRow => {
      if (c.k === 'key' || c.k === 'row')
        return { table: c.t, kind: c.k, columns: textArray(c.c).map((name) => name ?? ''), key: textArray(c.v) };
      if (c.k === 'table') return { table: c.t, kind: 'table', reason: c.r ?? 'changed' };
      return { kind: 'everything', reason: c.r ?? 'changed' };
    }),
    next: last !== undefined && changed.length >= range.limit ? { lsn: last.l, seq: last.s } : null,
  };
}

/** A JSON array of strings and nulls, as recordChangedRows wrote it. */
function textArray(json: string): Array<string | null> {
  const parsed: unknown = JSON.parse(json);
  if (!Array.isArray(parsed)) throw new Error(`pgferry.changed_rows holds ${json} where a JSON array belongs`);
  return parsed.map((v: unknown) => (typeof v === 'string' ? v : v === null ? null : String(v)));
}
