import type { Lsn } from '../replication/index.js';
import { checkTable, type CheckSettings, type TableCheck } from './check-table.js';
import { rowHashSql } from './hash-sql.js';
import { both, type Lane, type SideSession } from './session.js';
import { inSnapshots } from './snapshots.js';
import type { TableToVerify } from './tables.js';

/**
 * Small tables are compared in groups: one snapshot per side and one query per side for the
 * whole group, instead of four round trips per side and table. A database of a hundred small
 * tables spent nearly all of its verify in those round trips, and so did the cut-over's
 * count check, which runs while writes are frozen.
 */
export const SMALL_TABLE_BYTES = 8 * 1024 * 1024;
const GROUP_TABLES = 64;
const GROUP_BYTES = 64 * 1024 * 1024;

/** Cuts the small tables into groups of at most GROUP_TABLES tables and about GROUP_BYTES. */
export function groupSmallTables(tables: readonly TableToVerify[]): TableToVerify[][] {
  const groups: TableToVerify[][] = [];
  let current: TableToVerify[] = [];
  let bytes = 0;
  for (const table of tables) {
    if (current.length > 0 && (current.length >= GROUP_TABLES || bytes + table.bytes > GROUP_BYTES)) {
      groups.push(current);
      current = [];
      bytes = 0;
    }
    current.push(table);
    bytes += table.bytes;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

interface Print {
  readonly rows: number;
  /** Sum of row hashes; null in counts mode. */
  readonly sum: string | null;
}

/**
 * Fingerprints every table of the group in one snapshot per side: a table whose count and hash
 * sum agree is identical at those snapshots (as checkTable would find). In counts mode the
 * count is the whole comparison. In full mode, a table that differs is compared again on its
 * own by checkTable, in a snapshot of its own, down to the rows. If the group's query fails
 * (a table dropped meanwhile), each table is compared on its own, so the error names one.
 */
export async function checkGroup(lane: Lane, tables: readonly TableToVerify[], settings: CheckSettings): Promise<TableCheck[]> {
  const started = performance.now();
  let prints: [Print[], Print[]];
  let position: Lsn | null;
  try {
    ({ position, result: prints } = await inSnapshots(lane, 'a group of small tables', () =>
      both(lane, (side) => groupPrints(side, tables, settings)),
    ));
  } catch (error) {
    if (settings.signal?.aborted) throw error;
    const one: TableCheck[] = [];
    for (const table of tables) one.push(await checkTable(lane, table, settings));
    return one;
  }
  const each = (performance.now() - started) / 1000 / tables.length;
  const checks: TableCheck[] = [];
  for (const [i, table] of tables.entries()) {
    const s = prints[0][i]!;
    const t = prints[1][i]!;
    const same = s.rows === t.rows && s.sum === t.sum;
    if (!same && settings.mode === 'full') {
      settings.signal?.throwIfAborted();
      checks.push(await checkTable(lane, table, settings));
      continue;
    }
    checks.push({
      table,
      status: same ? 'identical' : 'different',
      sourceRows: s.rows,
      targetRows: t.rows,
      seconds: each,
      keyed: [],
      keyless: [],
      truncated: false,
      position,
    });
  }
  return checks;
}

/** One statement for the group: a row per table with its count (and hash sum), by position. */
async function groupPrints(side: SideSession, tables: readonly TableToVerify[], settings: CheckSettings): Promise<Print[]> {
  const parts = tables.map((table, i) =>
    settings.mode === 'full'
      ? `SELECT ${i}, count(*), coalesce(sum(${rowHashSql(table.columns, settings.hash)}), 0) FROM ONLY ${table.sql}`
      : `SELECT ${i}, count(*), NULL::numeric FROM ONLY ${table.sql}`,
  );
  const rows = await side.arrays(
    `${settings.mode === 'full' ? 'hashing' : 'counting'} ${tables.length} small tables`,
    parts.join('\nUNION ALL\n'),
  );
  const prints: Print[] = new Array<Print>(tables.length);
  for (const r of rows) prints[Number(r[0])] = { rows: Number(r[1]), sum: r[2] ?? null };
  for (let i = 0; i < tables.length; i++) {
    if (prints[i] === undefined) throw new Error(`${side.side}: the group query returned no row for ${tables[i]!.name}`);
  }
  return prints;
}
