import type { Lsn } from '../replication/index.js';
import { appliedPast, followedThrough, readSyncState, syncIsStreaming as streaming } from '../state/index.js';
import { changedColumns, persistingKeyed, persistingMultiset } from './differences.js';
import { countRows, type NamedKeyed, type NamedKeyless, type TableCheck } from './check-table.js';
import { hashCounts } from './compare-keyless.js';
import type { HashFunction } from './hash-sql.js';
import { rowsByKey } from './keyed-queries.js';
import { both, type Lane, type SideSession } from './session.js';
import { sleep } from '../plumbing/index.js';
import type { SequenceSetAt } from './types.js';

/** How the target stands toward its source, as pgferry's state on it says. */
export interface Following {
  /** pgferry sync applies changes to it now: a difference may be a change in flight. */
  readonly streaming: boolean;
  /**
   * It follows its source (status: direction 'following'), whose stream carries no sequence
   * values: what sets them. 'return' for a state a cut-over prepared (an old primary following
   * the new one), 'cutover' for a migration under way; null when it follows nothing.
   */
  readonly sequencesSetAt: SequenceSetAt | null;
}

const NOT_FOLLOWING: Following = { streaming: false, sequencesSetAt: null };

export async function readFollowing(target: SideSession): Promise<Following> {
  try {
    const state = await readSyncState(target.client);
    const through = followedThrough(state);
    if (through === null) return { ...NOT_FOLLOWING, streaming: streaming(state) };
    return { streaming: streaming(state), sequencesSetAt: through === 'migration' ? 'cutover' : 'return' };
  } catch {
    // No pgferry state we can read: nothing follows that we know of.
    return NOT_FOLLOWING;
  }
}

const POLL_MS = 200;

/**
 * Waits until the target's applied_lsn (written by sync in the same transaction as the changes
 * it covers) is at or past `position`, looked at every `pollMs`. False when it did not get there in time.
 */
export async function waitForTarget(
  target: SideSession,
  position: Lsn,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  pollMs = POLL_MS,
): Promise<{ passed: boolean; applied: Lsn | null }> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    const { passed, applied } = await target.run('reading the applied position of pgferry sync', (client) => appliedPast(client, position));
    if (passed) return { passed: true, applied };
    if (performance.now() >= deadline) return { passed: false, applied };
    await sleep(pollMs);
  }
}

/** The later of two positions (null counts as the earliest). */
export function laterPosition(a: Lsn | null, b: Lsn | null): Lsn | null {
  if (a === null) return b;
  if (b === null) return a;
  return a >= b ? a : b;
}

/**
 * Reads the rows of a check's named differences again, each side in one statement, and keeps
 * those that persist (see persistingKeyed): the source row as it was, the target still not.
 */
export async function recheckTable(lane: Lane, check: TableCheck, hash: HashFunction): Promise<TableCheck> {
  const started = performance.now();
  let keyed: NamedKeyed[] = [];
  let keyless: NamedKeyless[] = [];
  if (check.keyed.length > 0) {
    const keys = check.keyed.map((d) => d.key);
    const [s, t] = await both(lane, (side) => rowsByKey(side, check.table, hash, keys));
    const names = check.table.columns.map((c) => c.name);
    keyed = check.keyed.flatMap((first) => {
      const id = JSON.stringify(first.key);
      const sourceRow = s.get(id);
      const targetRow = t.get(id);
      const still = persistingKeyed(first, sourceRow?.hash ?? null, targetRow?.hash ?? null);
      if (!still) return [];
      return [
        still.kind === 'changed' && sourceRow && targetRow
          ? { ...still, columns: changedColumns(names, sourceRow.values, targetRow.values) }
          : still,
      ];
    });
  } else if (check.keyless.length > 0) {
    const hashes = check.keyless.map((d) => d.hash);
    const [s, t] = await both(lane, (side) => hashCounts(side, check.table, hash, { hashes }));
    keyless = check.keyless.flatMap((first) => {
      const still = persistingMultiset(first, s.get(first.hash) ?? 0, t.get(first.hash) ?? 0);
      return still ? [{ ...still, row: first.row }] : [];
    });
  } else {
    // Counts only: equal counts now settle it; unequal ones stay a difference, even when the
    // source's count moved in between (a busy table): counts taken at two moments can't tell a
    // change in flight from a lost row, and only equality may clear a difference.
    const [s, t] = await both(lane, (side) => countRows(side, check.table));
    const persists = s !== t;
    return {
      ...check,
      status: persists ? 'different' : 'identical',
      sourceRows: s,
      targetRows: t,
      seconds: check.seconds + (performance.now() - started) / 1000,
    };
  }
  const differs = keyed.length > 0 || keyless.length > 0;
  return {
    ...check,
    keyed,
    keyless,
    status: differs ? 'different' : 'identical',
    seconds: check.seconds + (performance.now() - started) / 1000,
  };
}
