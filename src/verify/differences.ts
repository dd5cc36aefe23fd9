/**
 * Pure logic that turns hashes and rows fetched from both sides into named differences, and
 * decides which differences survive a recheck. No SQL here: the unit tests drive it directly.
 */
import type { KeyValues } from './ranges.js';
import type { DifferenceKind } from './types.js';

/** A row of a keyed table reduced to its key and its row hash. */
export interface KeyedRow {
  readonly key: KeyValues;
  readonly hash: string;
}

/** A difference of a keyed table before it is reported: with both hashes, for rechecks. */
export interface KeyedDifference {
  readonly kind: DifferenceKind;
  readonly key: KeyValues;
  /** The row's hash on the source, null when the source has no such key. */
  readonly sourceHash: string | null;
  readonly targetHash: string | null;
}

export function keyString(key: KeyValues): string {
  return JSON.stringify(key);
}

function classify(key: KeyValues, sourceHash: string | null, targetHash: string | null): KeyedDifference | null {
  if (sourceHash === targetHash) return null;
  const kind: DifferenceKind = targetHash === null ? 'missing' : sourceHash === null ? 'extra' : 'changed';
  return { kind, key, sourceHash, targetHash };
}

/** The rows of one range on each side, compared by key: missing, extra, changed; source key order kept. */
export function diffKeyedRows(source: readonly KeyedRow[], target: readonly KeyedRow[]): KeyedDifference[] {
  const onTarget = new Map(target.map((r) => [keyString(r.key), r]));
  const differences: KeyedDifference[] = [];
  for (const s of source) {
    const id = keyString(s.key);
    const t = onTarget.get(id);
    onTarget.delete(id);
    const d = classify(s.key, s.hash, t?.hash ?? null);
    if (d) differences.push(d);
  }
  for (const t of onTarget.values()) differences.push({ kind: 'extra', key: t.key, sourceHash: null, targetHash: t.hash });
  return differences;
}

/**
 * Differences found in different ranges of one table, merged. The two sides place a row in a
 * range by comparing keys, and with text keys under collations that sort differently (another
 * libc, another ICU) one row can fall into one range on the source and another on the target:
 * it then shows as missing in one and extra in the other. The pair is one row: the same
 * content is no difference, other content is a change.
 */
export function mergeAcrossRanges(differences: readonly KeyedDifference[]): KeyedDifference[] {
  const missing = new Map<string, KeyedDifference>();
  const extra = new Map<string, KeyedDifference>();
  for (const d of differences) {
    if (d.kind === 'missing') missing.set(keyString(d.key), d);
    if (d.kind === 'extra') extra.set(keyString(d.key), d);
  }
  const merged: KeyedDifference[] = [];
  for (const d of differences) {
    const id = keyString(d.key);
    if (d.kind === 'extra' && missing.has(id)) continue;
    if (d.kind === 'missing' && extra.has(id)) {
      const other = extra.get(id)!;
      const pair = classify(d.key, d.sourceHash, other.targetHash);
      if (pair) merged.push(pair);
      continue;
    }
    merged.push(d);
  }
  return merged;
}

/** The columns whose text output differs between a row and its counterpart. */
export function changedColumns(
  columns: readonly string[],
  source: Readonly<Record<string, string | null>>,
  target: Readonly<Record<string, string | null>>,
): string[] {
  return columns.filter((c) => source[c] !== target[c]);
}

/**
 * A difference seen at the first check, checked again after the target applied past the
 * source's position at that check. It persists when the source row is as it was (same hash,
 * or still absent) and the target still disagrees with it. A source row that changed in
 * between is in motion: what the target has can't be judged against it, and sync's next
 * changes to the row will overwrite it anyway, so it is not reported.
 */
export function persistingKeyed(
  first: KeyedDifference,
  sourceHashNow: string | null,
  targetHashNow: string | null,
): KeyedDifference | null {
  if (sourceHashNow !== first.sourceHash) return null;
  return classify(first.key, sourceHashNow, targetHashNow);
}

/** A keyless table's rows with one hash: how many copies each side holds. */
export interface HashCount {
  readonly hash: string;
  readonly source: number;
  readonly target: number;
}

/** Row hashes whose number of copies differs between the sides. */
export function diffMultisets(source: ReadonlyMap<string, number>, target: ReadonlyMap<string, number>): HashCount[] {
  const differing: HashCount[] = [];
  for (const [hash, count] of source) {
    const other = target.get(hash) ?? 0;
    if (other !== count) differing.push({ hash, source: count, target: other });
  }
  for (const [hash, count] of target) if (!source.has(hash)) differing.push({ hash, source: 0, target: count });
  return differing;
}

/** The keyless counterpart of persistingKeyed: the source's copies unchanged, the target's still other. */
export function persistingMultiset(first: HashCount, sourceNow: number, targetNow: number): HashCount | null {
  if (sourceNow !== first.source || targetNow === sourceNow) return null;
  return { hash: first.hash, source: sourceNow, target: targetNow };
}

/** One difference per missing or extra copy, as reported for keyless tables. */
export function copiesOf(count: HashCount): { kind: 'missing' | 'extra'; copies: number } {
  return count.source > count.target
    ? { kind: 'missing', copies: count.source - count.target }
    : { kind: 'extra', copies: count.target - count.source };
}
