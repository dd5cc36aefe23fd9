import { messageOf } from '../errors.js';
import type { Lsn } from '../replication/index.js';
import { compareKeyed } from './compare-keyed.js';
import { compareKeyless, rowsByHash } from './compare-keyless.js';
import { changedColumns, type HashCount, type KeyedDifference } from './differences.js';
import type { HashFunction } from './hash-sql.js';
import { rowsByKey } from './keyed-queries.js';
import { both, type Lane, type SideSession, type TextRow } from './session.js';
import { inSnapshots } from './snapshots.js';
import type { TableToVerify } from './tables.js';
import type { TableStatus, VerifyMode } from './types.js';

export interface NamedKeyed extends KeyedDifference {
  readonly columns?: string[];
}

export interface NamedKeyless extends HashCount {
  /** The row's column values, read from the side holding the surplus copies. */
  readonly row: TextRow | null;
}

/** One table's comparison, with what a recheck needs (hashes, the source position). */
export interface TableCheck {
  readonly table: TableToVerify;
  readonly status: TableStatus;
  readonly sourceRows: number;
  readonly targetRows: number;
  readonly seconds: number;
  readonly keyed: NamedKeyed[];
  readonly keyless: NamedKeyless[];
  readonly truncated: boolean;
  /** The source's WAL position when its snapshot was taken: the target must pass it before a recheck. */
  readonly position: Lsn | null;
  readonly error?: string;
}

export interface CheckSettings {
  readonly mode: VerifyMode;
  readonly hash: HashFunction;
  readonly rowsPerRange: number;
  readonly maxDifferences: number;
  readonly signal: AbortSignal | undefined;
}

/**
 * Compares one table: each side in one REPEATABLE READ, READ ONLY transaction, so every range of
 * the table is read from one snapshot per side; both sides are asked each question at once.
 */
export async function checkTable(
  lane: Lane,
  table: TableToVerify,
  settings: CheckSettings,
  /** False where nothing moves (a cut-over's freeze): each query reads the present, no transaction around them. */
  snapshots = true,
): Promise<TableCheck> {
  const started = performance.now();
  const base = { table, keyed: [], keyless: [], truncated: false, position: null, sourceRows: 0, targetRows: 0 };
  if (!table.readable) {
    return {
      ...base,
      status: 'error',
      seconds: 0,
      error: `source: the role may not read ${table.name} (SELECT on it and USAGE on its schema)`,
    };
  }
  try {
    const { position, result: outcome } = snapshots
      ? await inSnapshots(lane, table.name, () => compare(lane, table, settings))
      : { position: null, result: await compare(lane, table, settings) };
    const differs =
      outcome.keyed.length > 0 || outcome.keyless.length > 0 || outcome.truncated || outcome.sourceRows !== outcome.targetRows;
    return { ...base, ...outcome, position, status: differs ? 'different' : 'identical', seconds: seconds(started) };
  } catch (error) {
    if (settings.signal?.aborted) throw error;
    return { ...base, status: 'error', seconds: seconds(started), error: messageOf(error) };
  }
}

type Outcome = Pick<TableCheck, 'sourceRows' | 'targetRows' | 'keyed' | 'keyless' | 'truncated'>;

async function compare(lane: Lane, table: TableToVerify, settings: CheckSettings): Promise<Outcome> {
  if (settings.mode === 'counts') {
    const [s, t] = await both(lane, (side) => countRows(side, table));
    return { sourceRows: s, targetRows: t, keyed: [], keyless: [], truncated: false };
  }
  if (table.key.length === 0) {
    const outcome = await compareKeyless(lane, table, settings.hash, settings.maxDifferences);
    return { ...outcome, keyed: [], keyless: await nameKeyless(lane, table, settings.hash, outcome.differing) };
  }
  const outcome = await compareKeyed(lane, table, settings);
  return { ...outcome, keyless: [], keyed: await nameChangedColumns(lane, table, settings.hash, outcome.differences) };
}

export async function countRows(side: SideSession, table: TableToVerify): Promise<number> {
  const [row] = await side.arrays(`counting the rows of ${table.name}`, `SELECT count(*) FROM ONLY ${table.sql}`);
  return Number(row![0]);
}

/** The columns that differ in each changed row, from both sides' text output. */
export async function nameChangedColumns(
  lane: Lane,
  table: TableToVerify,
  hash: HashFunction,
  differences: readonly KeyedDifference[],
): Promise<NamedKeyed[]> {
  const changed = differences.filter((d) => d.kind === 'changed').map((d) => d.key);
  if (changed.length === 0) return [...differences];
  const [s, t] = await both(lane, (side) => rowsByKey(side, table, hash, changed));
  const names = table.columns.map((c) => c.name);
  return differences.map((d) => {
    if (d.kind !== 'changed') return d;
    const id = JSON.stringify(d.key);
    const sourceRow = s.get(id);
    const targetRow = t.get(id);
    return sourceRow && targetRow ? { ...d, columns: changedColumns(names, sourceRow.values, targetRow.values) } : d;
  });
}

export async function nameKeyless(
  lane: Lane,
  table: TableToVerify,
  hash: HashFunction,
  differing: readonly HashCount[],
): Promise<NamedKeyless[]> {
  const onSource = differing.filter((d) => d.source > d.target).map((d) => d.hash);
  const onTarget = differing.filter((d) => d.target > d.source).map((d) => d.hash);
  const [s, t] = await Promise.all([rowsByHash(lane.source, table, hash, onSource), rowsByHash(lane.target, table, hash, onTarget)]);
  return differing.map((d) => ({ ...d, row: (d.source > d.target ? s.get(d.hash) : t.get(d.hash)) ?? null }));
}

function seconds(started: number): number {
  return (performance.now() - started) / 1000;
}
