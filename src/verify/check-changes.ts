import { OWN_INDEX_PREFIX, Scope, type ScopeFilter } from '../catalog/index.js';
import type { ConnectionSpec } from '../config/index.js';
import { openAll } from '../plumbing/index.js';
import type { Logger } from '../log/index.js';
import type { Lsn } from '../replication/index.js';
import { describePlans, narrowImages, planChangeCheck, type TablePlan } from './change-plan.js';
import type { ChangedRow } from '../state/index.js';
import { checkTable, type CheckSettings, type TableCheck } from './check-table.js';
import {
  changedColumns,
  copiesOf,
  diffKeyedRows,
  keyString,
  persistingKeyed,
  persistingMultiset,
  type KeyedDifference,
  type KeyedRow,
} from './differences.js';
import { chooseHashFunction, rowHashSql, type HashFunction } from './hash-sql.js';
import { recheckTable, waitForTarget } from './recheck.js';
import { sourcePosition } from './snapshots.js';
import { keyRecord, tableResult } from './report.js';
import { onLanes, side } from './run.js';
import { compareSequences, sequenceDiffers } from './sequences.js';
import { leadingIndexes, type LeadingIndex } from './keyless-indexes.js';
import { closeLane, openLane, type Lane, type SideSession } from './session.js';
import { matchTargetTypes, readTablesToVerify, tableNamesOnTarget, type TableToVerify } from './tables.js';
import type { KeyValues } from './ranges.js';
import type { Difference, SequenceResult, TableResult } from './types.js';

export interface ChangeCheckOptions {
  readonly source: ConnectionSpec;
  readonly target: ConnectionSpec;
  readonly filter: ScopeFilter;
  readonly logger: Logger;
  /** Lanes tables are compared on at once (besides the control lane). Default 4. */
  readonly jobs?: number;
  /** Rows named per table. Default 100. */
  readonly maxDifferences?: number;
}

/** What a check of changed rows compared, and what differs. */
export interface ChangeCheckReport {
  readonly identical: boolean;
  readonly seconds: number;
  /** Rows compared by their key on both sides. */
  readonly keysChecked: number;
  /** Tables compared row by row in full, and why. */
  readonly wholeTables: ReadonlyArray<{ readonly table: string; readonly reason: string }>;
  /** Tables without a key whose changed rows were counted by their images, and how each side found them. */
  readonly keyless: readonly KeylessRead[];
  /** Each table compared: by key (rows counts are the rows found by those keys) or whole. */
  readonly tables: TableResult[];
  /** Only when asked (inside the freeze, where the cut-over has just set them). */
  readonly sequences: SequenceResult[];
  readonly notes: string[];
}

/**
 * How a keyless table's changed rows were counted on each side: through the index named (the
 * rows read are those sharing the images' values in its first column), or, null, by reading
 * the table through (no index could narrow it).
 */
export interface KeylessRead {
  readonly table: string;
  readonly images: number;
  readonly index: { readonly source: string | null; readonly target: string | null };
}

/** Each lane waits on a round trip more than on a core: more lanes than cores shorten the check. */
const DEFAULT_JOBS = 4;
const DEFAULT_MAX_DIFFERENCES = 100;
const ROWS_PER_RANGE = 1_000_000;
/** How long a check while sync streams waits for the target to pass a position before it rechecks. */
const RECHECK_TIMEOUT_MS = 60_000;
const RECHECK_POLL_MS = 5;

/**
 * Compares the rows sync recorded as changed (state/recording.ts), by content, on both sides:
 * a keyed table's rows fetched by those keys in one statement per side (their row hashes, as
 * verify computes them), a table marked whole compared in full. The sessions, the table
 * definitions and the hash function are made ready when it opens, so a check run inside the
 * cut-over's write freeze costs only its queries.
 *
 * While sync streams (`streaming`), the source moves during the check: a difference is
 * checked again once the target has applied past the source's position at the first look, and
 * only one whose source row stayed as it was and whose target row still disagrees is kept (as
 * verify does). A row that moved meanwhile was changed again, so sync records it again.
 */
export class ChangeChecker {
  private constructor(
    private readonly options: ChangeCheckOptions,
    private readonly scope: Scope,
    private readonly control: Lane,
    private readonly lanes: readonly Lane[],
    private hash: HashFunction,
    private tables: readonly TableToVerify[],
    private onTarget: ReadonlySet<string>,
    private indexes: Indexes,
    /** The backends of its sessions on the source: a cut-over's drain must leave them be. */
    readonly sourcePids: readonly number[],
  ) {}

  static async open(options: ChangeCheckOptions): Promise<ChangeChecker> {
    const scope = new Scope(options.filter);
    const lanes = await openAll(
      Array.from({ length: (options.jobs ?? DEFAULT_JOBS) + 1 }, () => openLane(options.source, options.target)),
      closeLane,
    );
    try {
      const [control, ...work] = lanes;
      if (!control) throw new Error('no lane opened');
      const pid = async (lane: Lane) => Number((await lane.source.arrays('reading its backend', 'SELECT pg_backend_pid()'))[0]![0]);
      const [{ hash, tables, onTarget, indexes }, workPids] = await Promise.all([
        readDefinitions(control, scope),
        Promise.all(work.map(pid)),
      ]);
      const pids = [await pid(control), ...workPids];
      return new ChangeChecker(options, scope, control, work, hash, tables, onTarget, indexes, pids);
    } catch (error) {
      await Promise.all(lanes.map(closeLane));
      throw error;
    }
  }

  /**
   * The keyless tables in scope that no index of a side can narrow, by side: counting their
   * changed rows there reads them through (the cut-over indexes them for its check).
   */
  unindexedKeyless(): { readonly source: readonly TableToVerify[]; readonly target: readonly TableToVerify[] } {
    const keyless = this.tables.filter((t) => t.key.length === 0);
    // One a killed cut-over made does not count: this cut-over takes it over, and drops it when it ends.
    const theirs = (list: readonly LeadingIndex[] | undefined) => (list ?? []).filter((l) => !l.index.startsWith(OWN_INDEX_PREFIX));
    const lacking = (indexes: ReadonlyMap<string, readonly LeadingIndex[]>) =>
      keyless.filter((t) => theirs(indexes.get(t.name)).length === 0);
    return { source: lacking(this.indexes.source), target: lacking(this.indexes.target) };
  }

  /** Each side's indexes read again: the cut-over made some for its check. */
  async readIndexesAgain(): Promise<void> {
    const [source, target] = await Promise.all([
      side('source', 'reading the indexes', () => leadingIndexes(this.control.source, this.tables)),
      side('target', 'reading the indexes', () => leadingIndexes(this.control.target, this.tables)),
    ]);
    this.indexes = { ...this.indexes, source, target };
  }

  async check(
    changed: readonly ChangedRow[],
    how: { readonly streaming: boolean; readonly sequences: boolean; readonly signal?: AbortSignal },
  ): Promise<ChangeCheckReport> {
    const started = performance.now();
    const notes: string[] = [];
    if (changed.some((c) => c.kind === 'everything')) {
      // A schema change ran: the tables are read again, and each is compared whole.
      const fresh = await readDefinitions(this.control, this.scope);
      this.hash = fresh.hash;
      this.tables = fresh.tables;
      this.onTarget = fresh.onTarget;
      this.indexes = fresh.indexes;
    }
    const plans = planChangeCheck(changed, this.tables);
    const sequences = how.sequences ? compareSequences(this.control.source, this.control.target, this.scope) : Promise.resolve([]);
    const settings: CheckSettings = {
      mode: 'full',
      hash: this.hash,
      rowsPerRange: ROWS_PER_RANGE,
      maxDifferences: this.options.maxDifferences ?? DEFAULT_MAX_DIFFERENCES,
      signal: how.signal,
    };
    const results = await onLanes(this.lanes, plans, (lane, plan) => this.checkPlan(lane, plan, settings, how.streaming), how.signal);
    for (const plan of plans)
      if (plan.kind === 'unknown') notes.push(`${plan.name}: changed, but not a table in scope on the source: it could not be compared`);
    const sequenceResults = await sequences;
    const { keys, whole } = describePlans(plans);
    return {
      identical: results.every((r) => r.status === 'identical') && !sequenceResults.some(sequenceDiffers),
      seconds: Number(((performance.now() - started) / 1000).toFixed(3)),
      keysChecked: keys,
      wholeTables: whole,
      keyless: plans.flatMap((plan) =>
        plan.kind === 'images' ? [{ table: plan.table.name, images: plan.images.length, index: this.indexesUsed(plan) }] : [],
      ),
      tables: results.sort((a, b) => a.name.localeCompare(b.name)),
      sequences: sequenceResults,
      notes,
    };
  }

  private async checkPlan(lane: Lane, plan: TablePlan, settings: CheckSettings, streaming: boolean): Promise<TableResult> {
    if (plan.kind === 'unknown')
      return { name: plan.name, status: 'error', sourceRows: 0, targetRows: 0, seconds: 0, differences: [], error: 'not in scope' };
    if (!this.onTarget.has(`${plan.table.schema}\u0000${plan.table.table}`))
      return { name: plan.table.name, status: 'missing-on-target', sourceRows: 0, targetRows: 0, seconds: 0, differences: [] };
    if (plan.kind === 'whole') return tableResult(await this.checkWhole(lane, plan.table, settings, streaming), settings.maxDifferences);
    if (plan.kind === 'images') return this.checkImages(lane, plan, settings, streaming);
    return this.checkKeys(lane, plan, settings, streaming);
  }

  private async checkWhole(lane: Lane, table: TableToVerify, settings: CheckSettings, streaming: boolean): Promise<TableCheck> {
    const first = await checkTable(lane, table, settings, streaming);
    if (!streaming || first.status !== 'different' || first.position === null) return first;
    await this.waitForTarget(first.position, settings.signal);
    return recheckTable(lane, first, settings.hash);
  }

  private async checkKeys(
    lane: Lane,
    plan: Extract<TablePlan, { kind: 'keys' }>,
    settings: CheckSettings,
    streaming: boolean,
  ): Promise<TableResult> {
    const started = performance.now();
    const { table, columns } = plan;
    const [[sourceRows, position], targetRows] = await Promise.all([
      rowsByKeys(lane.source, table, columns, settings.hash, plan.keys).then(
        async (rows) => [rows, streaming ? await sourcePosition(lane.source) : null] as const,
      ),
      rowsByKeys(lane.target, table, columns, settings.hash, plan.keys),
    ]);
    let differences = diffKeyedRows(sourceRows, targetRows);
    if (streaming && differences.length > 0) {
      await this.waitForTarget(position, settings.signal);
      const again = differences.map((d) => d.key);
      const [s, t] = await Promise.all([
        rowsByKeys(lane.source, table, columns, settings.hash, again),
        rowsByKeys(lane.target, table, columns, settings.hash, again),
      ]);
      const hashOf = (rows: readonly KeyedRow[]) => new Map(rows.map((r) => [keyString(r.key), r.hash]));
      const [sh, th] = [hashOf(s), hashOf(t)];
      differences = differences.flatMap((d) => {
        const still = persistingKeyed(d, sh.get(keyString(d.key)) ?? null, th.get(keyString(d.key)) ?? null);
        return still ? [still] : [];
      });
    }
    const names = columns.map((i) => table.columns[i]!.name);
    const shown = differences.slice(0, settings.maxDifferences);
    const changedNames = await this.changedColumnNames(lane, table, columns, shown);
    const reported: Difference[] = shown.map((d) => {
      const differing = changedNames.get(keyString(d.key));
      return { kind: d.kind, key: keyRecord(names, d.key), ...(differing ? { columns: differing } : {}) };
    });
    return {
      name: table.name,
      status: differences.length > 0 ? 'different' : 'identical',
      sourceRows: sourceRows.length,
      targetRows: targetRows.length,
      seconds: Number(((performance.now() - started) / 1000).toFixed(3)),
      differences: reported,
      ...(differences.length > shown.length ? { truncated: true } : {}),
    };
  }

  /**
   * A table no key names rows of: each recorded row image must be there as many times on the
   * target as on the source. Each side counts, in one statement, its rows hashed as the images
   * are; only rows that could be one of them are hashed (each typed column's value among the
   * images'), though without an index the table is still read through.
   */
  private async checkImages(
    lane: Lane,
    plan: Extract<TablePlan, { kind: 'images' }>,
    settings: CheckSettings,
    streaming: boolean,
  ): Promise<TableResult> {
    const started = performance.now();
    const { table, columns } = plan;
    const narrowing = this.narrowing(plan);
    const count = async (side: SideSession, images: ReadonlyArray<ReadonlyArray<string | null>>): Promise<number[]> => {
      if (images.length === 0) return [];
      const [text, values] = imageCountQuery(table, columns, settings.hash, images, narrowing[side.side].columns);
      const rows = await side.arrays(`counting ${images.length} changed rows of ${table.name}`, text, values);
      return rows.map((r) => Number(r[1]));
    };
    const [[s, position], t] = await Promise.all([
      count(lane.source, plan.images).then(async (found) => [found, streaming ? await sourcePosition(lane.source) : null] as const),
      count(lane.target, plan.images),
    ]);
    let differing = plan.images.flatMap((image, i) =>
      s[i] !== t[i] ? [{ image, first: { hash: String(i), source: s[i]!, target: t[i]! } }] : [],
    );
    if (streaming && differing.length > 0) {
      await this.waitForTarget(position, settings.signal);
      const again = differing.map((d) => d.image);
      const [sNow, tNow] = await Promise.all([count(lane.source, again), count(lane.target, again)]);
      differing = differing.flatMap((d, i) => {
        const still = persistingMultiset(d.first, sNow[i]!, tNow[i]!);
        return still ? [{ image: d.image, first: still }] : [];
      });
    }
    const names = columns.map((i) => table.columns[i]!.name);
    const reported: Difference[] = [];
    for (const d of differing) {
      const { kind, copies } = copiesOf(d.first);
      for (let i = 0; i < copies && reported.length < settings.maxDifferences; i++)
        reported.push({ kind, key: imageRecord(names, d.image) });
    }
    const sum = (counts: readonly number[]) => counts.reduce((a, b) => a + b, 0);
    return {
      name: table.name,
      status: differing.length > 0 ? 'different' : 'identical',
      sourceRows: sum(s),
      targetRows: sum(t),
      seconds: Number(((performance.now() - started) / 1000).toFixed(3)),
      differences: reported,
      ...(reported.length < sum(differing.map((d) => copiesOf(d.first).copies)) ? { truncated: true } : {}),
    };
  }

  private narrowing(plan: Extract<TablePlan, { kind: 'images' }>): ReturnType<typeof narrowImages> {
    const name = plan.table.name;
    return narrowImages(plan, { source: this.indexes.source.get(name), target: this.indexes.target.get(name) }, this.indexes.hashedLists);
  }

  private indexesUsed(plan: Extract<TablePlan, { kind: 'images' }>): KeylessRead['index'] {
    const { source, target } = this.narrowing(plan);
    return { source: source.index, target: target.index };
  }

  /** For rows that differ in content: which columns, from both sides' text output. */
  private async changedColumnNames(
    lane: Lane,
    table: TableToVerify,
    columns: readonly number[],
    differences: readonly KeyedDifference[],
  ): Promise<Map<string, string[]>> {
    const changed = differences.filter((d) => d.kind === 'changed').map((d) => d.key);
    if (changed.length === 0) return new Map();
    const [s, t] = await Promise.all([
      rowValuesByKeys(lane.source, table, columns, changed),
      rowValuesByKeys(lane.target, table, columns, changed),
    ]);
    const names = table.columns.map((c) => c.name);
    const out = new Map<string, string[]>();
    for (const [id, row] of s) {
      const other = t.get(id);
      if (other) out.set(id, changedColumns(names, row, other));
    }
    return out;
  }

  /**
   * Until the target has applied past `position` (or RECHECK_TIMEOUT_MS: what still differs
   * then is reported). Sync applies within milliseconds: looked at often, so a check while
   * it streams takes little longer than its queries.
   */
  private async waitForTarget(position: Lsn | null, signal: AbortSignal | undefined): Promise<void> {
    if (position === null) return;
    await waitForTarget(this.control.target, position, RECHECK_TIMEOUT_MS, signal, RECHECK_POLL_MS);
  }

  async close(): Promise<void> {
    await Promise.all([closeLane(this.control), ...this.lanes.map(closeLane)]);
  }
}

/**
 * One report of checks run page by page over the recorded rows: a table checked in several
 * pages is one entry (its rows and differences summed), a table compared whole is named once.
 */
export function mergeChangeReports(reports: readonly ChangeCheckReport[]): ChangeCheckReport {
  const tables = new Map<string, TableResult>();
  for (const report of reports)
    for (const t of report.tables) {
      const seen = tables.get(t.name);
      if (!seen) {
        tables.set(t.name, t);
        continue;
      }
      const worse = seen.status !== 'identical' ? seen : t;
      const truncated = seen.truncated === true || t.truncated === true;
      tables.set(t.name, {
        ...worse,
        sourceRows: seen.sourceRows + t.sourceRows,
        targetRows: seen.targetRows + t.targetRows,
        seconds: Number((seen.seconds + t.seconds).toFixed(3)),
        differences: [...seen.differences, ...t.differences],
        ...(truncated ? { truncated } : {}),
      });
    }
  const whole = new Map<string, string>();
  for (const report of reports) for (const w of report.wholeTables) if (!whole.has(w.table)) whole.set(w.table, w.reason);
  const keyless = new Map<string, KeylessRead>();
  for (const report of reports)
    for (const k of report.keyless) {
      const seen = keyless.get(k.table);
      // The indexes of the last page: they change between pages only with the schema.
      keyless.set(k.table, seen ? { ...k, images: seen.images + k.images } : k);
    }
  return {
    identical: reports.every((r) => r.identical),
    seconds: Number(reports.reduce((sum, r) => sum + r.seconds, 0).toFixed(3)),
    keysChecked: reports.reduce((sum, r) => sum + r.keysChecked, 0),
    wholeTables: [...whole].map(([table, reason]) => ({ table, reason })),
    keyless: [...keyless.values()].sort((a, b) => a.table.localeCompare(b.table)),
    tables: [...tables.values()].sort((a, b) => a.name.localeCompare(b.name)),
    sequences: reports.flatMap((r) => r.sequences),
    notes: [...new Set(reports.flatMap((r) => r.notes))],
  };
}

/** Each side's indexes that can narrow a keyless table, by table name, and whether it hashes a list of values. */
interface Indexes {
  readonly source: ReadonlyMap<string, readonly LeadingIndex[]>;
  readonly target: ReadonlyMap<string, readonly LeadingIndex[]>;
  readonly hashedLists: { readonly source: boolean; readonly target: boolean };
}

/** PostgreSQL 14 looks a value up in a constant list by hashing it (before: value by value). */
const HASHED_LISTS_FROM = 140_000;

async function hashesLists(side: SideSession): Promise<boolean> {
  const rows = await side.arrays('reading the server version', `SELECT pg_catalog.current_setting('server_version_num')`);
  return Number(rows[0]![0]) >= HASHED_LISTS_FROM;
}

async function readDefinitions(
  control: Lane,
  scope: Scope,
): Promise<{ hash: HashFunction; tables: TableToVerify[]; onTarget: ReadonlySet<string>; indexes: Indexes }> {
  const [hash, { tables: listed }, onTarget] = await Promise.all([
    chooseHashFunction(control),
    side('source', 'listing the tables in scope', () => readTablesToVerify(control.source, scope)),
    side('target', 'listing the tables in scope', () => tableNamesOnTarget(control.target, scope)),
  ]);
  const [tables, source, target, sourceHashes, targetHashes] = await Promise.all([
    hash === 'typed' ? side('target', 'reading the column types', () => matchTargetTypes(control.target, listed)) : listed,
    side('source', 'reading the indexes', () => leadingIndexes(control.source, listed)),
    side('target', 'reading the indexes', () => leadingIndexes(control.target, listed)),
    hashesLists(control.source),
    hashesLists(control.target),
  ]);
  return { hash, tables, onTarget, indexes: { source, target, hashedLists: { source: sourceHashes, target: targetHashes } } };
}

/** The key columns and the WHERE that picks the rows of the keys given as one text array per key column. */
function byKeys(table: TableToVerify, columns: readonly number[]): { keys: string; where: string } {
  const keyColumns = columns.map((i) => table.columns[i]!);
  const inputs = keyColumns.map((_, j) => `a${j}`).join(', ');
  // Several arrays side by side: ROWS FROM, as the form unnest(a, b) is not a function a schema can qualify.
  const params = keyColumns.map((_, j) => `pg_catalog.unnest($${j + 1}::pg_catalog.text[])`).join(', ');
  const casts = keyColumns.map((c, j) => `u.a${j}::${c.type}`).join(', ');
  const list = keyColumns.map((c) => c.sql).join(', ');
  const lhs = keyColumns.length === 1 ? list : `(${list})`;
  return { keys: list, where: `${lhs} IN (SELECT ${casts} FROM ROWS FROM (${params}) AS u(${inputs}))` };
}

const asParams = (keys: readonly KeyValues[], width: number): string[][] => Array.from({ length: width }, (_, j) => keys.map((k) => k[j]!));

/** Key and row hash of the rows with these keys, in one statement; keys not there are absent. */
async function rowsByKeys(
  side: SideSession,
  table: TableToVerify,
  columns: readonly number[],
  fn: HashFunction,
  keys: readonly KeyValues[],
): Promise<KeyedRow[]> {
  if (keys.length === 0) return [];
  const { keys: list, where } = byKeys(table, columns);
  const rows = await side.arrays(
    `reading ${keys.length} changed rows of ${table.name} by key`,
    `SELECT ${rowHashSql(table.columns, fn)}, ${list} FROM ONLY ${table.sql} WHERE ${where}`,
    asParams(keys, columns.length),
  );
  return rows.map((r) => ({ hash: r[0]!, key: r.slice(1).map((v) => v ?? '') }));
}

/** Every column's text output of the rows with these keys, by key. */
async function rowValuesByKeys(
  side: SideSession,
  table: TableToVerify,
  columns: readonly number[],
  keys: readonly KeyValues[],
): Promise<Map<string, Record<string, string | null>>> {
  const { keys: list, where } = byKeys(table, columns);
  const rows = await side.arrays(
    `reading ${keys.length} rows of ${table.name} by key`,
    `SELECT ${list}, ${table.columns.map((c) => c.sql).join(', ')} FROM ONLY ${table.sql} WHERE ${where}`,
    asParams(keys, columns.length),
  );
  const out = new Map<string, Record<string, string | null>>();
  for (const r of rows) {
    const values: Record<string, string | null> = {};
    table.columns.forEach((c, i) => (values[c.name] = r[columns.length + i] ?? null));
    out.set(keyString(r.slice(0, columns.length).map((v) => v ?? '')), values);
  }
  return out;
}

/**
 * The statement that counts how many rows of the table equal each image (by the row hash over
 * the image's columns), in the images' order, and its parameters. The images are cast to the
 * columns' types and hashed as the rows are; the rows are narrowed first by the values the
 * images hold in the `narrowBy` columns (a superset of the matching rows: only the hash
 * decides), which an index on one of them turns into a read of those rows alone.
 *
 * A typed column is narrowed by a constant list (`= ANY`): a filter, or an index's look-up of
 * each value, never a join, so no misjudged size of the table can make the plan repeat a scan
 * per image. Another column (an index leads with it; its type may have no array type) is
 * narrowed by a semi-join on its values, which the planner answers through that index.
 */
export function imageCountQuery(
  table: TableToVerify,
  columns: readonly number[],
  fn: HashFunction,
  images: ReadonlyArray<ReadonlyArray<string | null>>,
  narrowBy: readonly number[],
): [string, unknown[]] {
  // The names verify gives its own columns ("pgferry: n") cannot clash with a table's: no sane table has them.
  const imageColumns = columns.map((i) => table.columns[i]!);
  const hash = rowHashSql(imageColumns, fn);
  const values: unknown[] = imageColumns.map((_, j) => images.map((image) => image[j] ?? null));
  const inputs = imageColumns.map((_, j) => `a${j}`).join(', ');
  const params = imageColumns.map((_, j) => `pg_catalog.unnest($${j + 1}::pg_catalog.text[])`).join(', ');
  const casts = imageColumns.map((c, j) => `o.a${j}::${c.type} AS ${c.sql}`).join(', ');
  const narrow: string[] = [];
  imageColumns.forEach((c, j) => {
    if (!narrowBy.includes(columns[j]!)) return;
    const present = [...new Set(images.flatMap((image) => (image[j] === null ? [] : [image[j]!])))];
    const hasNull = images.some((image) => image[j] === null);
    values.push(present);
    const list = `$${values.length}::pg_catalog.text[]`;
    const among =
      c.hashed !== null
        ? `${c.sql} = ANY (${list}::${c.type}[])`
        : `${c.sql} IN (SELECT v::${c.type} FROM pg_catalog.unnest(${list}) AS v)`;
    narrow.push(hasNull ? `(${among} OR ${c.sql} IS NULL)` : among);
  });
  const text = `WITH image AS (
       SELECT i."pgferry: n" AS n, ${hash} AS h
         FROM (SELECT o."pgferry: n", ${casts} FROM ROWS FROM (${params}) WITH ORDINALITY AS o(${inputs}, "pgferry: n")) i
     ), found AS (
       SELECT ${hash} AS h, count(*) AS copies FROM ONLY ${table.sql} ${narrow.length > 0 ? `WHERE ${narrow.join(' AND ')}` : ''} GROUP BY 1
     )
     SELECT image.n, coalesce(found.copies, 0) FROM image LEFT JOIN found ON found.h = image.h ORDER BY image.n`;
  return [text, values];
}

function imageRecord(names: readonly string[], image: ReadonlyArray<string | null>): Record<string, string | null> {
  const record: Record<string, string | null> = {};
  names.forEach((name, i) => (record[name] = image[i] ?? null));
  return record;
}
