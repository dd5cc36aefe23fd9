import { diffKeyedRows, mergeAcrossRanges, type KeyedDifference } from './differences.js';
import type { HashFunction } from './hash-sql.js';
import { fingerprint, rangeBounds, rowsOfRange, sameFingerprint, sampleKeys, type Fingerprint } from './keyed-queries.js';
import { WHOLE, initialRangeCount, pickBounds, samplePercent, splitRange, splitStep, type KeyRange } from './ranges.js';
import { both, type Lane } from './session.js';
import type { TableToVerify } from './tables.js';

/** A range this small is read row by row (key and hash) from both sides instead of split again. */
export const LEAF_ROWS = 2_000;
/** Parts a differing range is cut into: 16 narrows a million rows to a leaf in three steps. */
export const FANOUT = 16;

export interface KeyedOutcome {
  readonly sourceRows: number;
  readonly targetRows: number;
  readonly differences: KeyedDifference[];
  readonly truncated: boolean;
}

export interface KeyedSettings {
  readonly hash: HashFunction;
  readonly rowsPerRange: number;
  readonly maxDifferences: number;
  readonly signal: AbortSignal | undefined;
}

/**
 * Compares a keyed table inside the lane's transactions (one snapshot per side): the table's
 * ranges are hashed on both sides; a range whose hashes differ is cut into FANOUT parts at keys
 * of the side holding more of its rows, and so on down to LEAF_ROWS, where the rows' keys and
 * hashes are read from both sides and matched by key.
 */
export async function compareKeyed(lane: Lane, table: TableToVerify, settings: KeyedSettings): Promise<KeyedOutcome> {
  const ranges = await firstRanges(lane, table, settings.rowsPerRange);
  const found: KeyedDifference[] = [];
  let truncated = false;
  let sourceRows = 0;
  let targetRows = 0;

  const descend = async (range: KeyRange, [s, t]: [Fingerprint, Fingerprint]): Promise<void> => {
    settings.signal?.throwIfAborted();
    if (sameFingerprint(s, t)) return;
    if (found.length >= settings.maxDifferences) {
      truncated = true;
      return;
    }
    const rows = Math.max(s.rows, t.rows);
    const bounds =
      rows > LEAF_ROWS ? await rangeBounds(s.rows >= t.rows ? lane.source : lane.target, table, range, splitStep(rows, FANOUT)) : [];
    if (bounds.length === 0) {
      const [sourceLeaf, targetLeaf] = await both(lane, (side) => rowsOfRange(side, table, settings.hash, range));
      const differences = diffKeyedRows(sourceLeaf, targetLeaf);
      const room = settings.maxDifferences - found.length;
      if (differences.length > room) truncated = true;
      found.push(...differences.slice(0, room));
      return;
    }
    for (const part of splitRange(range, bounds)) {
      await descend(part, await both(lane, (side) => fingerprint(side, table, settings.hash, part)));
    }
  };

  for (const range of ranges) {
    settings.signal?.throwIfAborted();
    const prints = await both(lane, (side) => fingerprint(side, table, settings.hash, range));
    sourceRows += prints[0].rows;
    targetRows += prints[1].rows;
    await descend(range, prints);
  }
  return { sourceRows, targetRows, differences: mergeAcrossRanges(found), truncated };
}

/** One range for most tables; big ones cut at keys sampled from the source's pages. */
async function firstRanges(lane: Lane, table: TableToVerify, rowsPerRange: number): Promise<KeyRange[]> {
  const count = initialRangeCount(table.estimatedRows, rowsPerRange);
  if (count === 1) return [WHOLE];
  const sample = await sampleKeys(lane.source, table, samplePercent(table.estimatedRows, count));
  return splitRange(WHOLE, pickBounds(sample, count));
}
