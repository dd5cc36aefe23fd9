import type pg from 'pg';
import { serverMajor } from '../catalog/index.js';
import { formatLsn, type Lsn } from '../replication/index.js';
import {
  followedThrough,
  lastCutover,
  oldestHeldSnapshot,
  readSyncState,
  readSyncTables,
  stateTableExists,
  storedPlan,
  syncIsStreaming,
  type CutoverRecord,
  type SyncState,
} from '../state/index.js';
import { readSlot, type SlotInfo } from '../sync/index.js';

/**
 * Where a migration stands, as the target records it: what `pgferry status --json` prints and
 * the status page's `/status.json` serves. Undefined when the target holds no migration.
 */
export async function readStatusReport(client: pg.Client) {
  const state = await readSyncState(client);
  const units = (await stateTableExists(client, 'copy_units')) ? await storedPlan(client) : [];
  const streamed = await readSyncTables(client);
  const cutover = await lastCutover(client);
  const snapshot = await oldestHeldSnapshot(client);
  const wayBackSlot = cutover?.wayBack ? await readSlot(client, cutover.wayBack.slot, await serverMajor(client)) : undefined;
  if (!state && units.length === 0) return undefined;
  const tables = new Map<
    string,
    { name: string; copy: string; unitsDone: number; units: number; inserted: number; updated: number; deleted: number; truncated: number }
  >();
  const entry = (name: string) => {
    let t = tables.get(name);
    if (!t) tables.set(name, (t = { name, copy: 'pending', unitsDone: 0, units: 0, inserted: 0, updated: 0, deleted: 0, truncated: 0 }));
    return t;
  };
  for (const u of units) {
    const t = entry(u.table.replace(/"/g, ''));
    t.units++;
    if (u.done) t.unitsDone++;
  }
  for (const t of tables.values()) t.copy = t.unitsDone === t.units ? 'copied' : t.unitsDone > 0 ? 'copying' : 'pending';
  for (const s of streamed)
    Object.assign(entry(s.table), { inserted: s.inserted, updated: s.updated, deleted: s.deleted, truncated: s.truncated });

  const heartbeatAge = state?.heartbeatAgeSeconds ?? undefined;
  const live = syncIsStreaming(state);
  const phase = state ? state.phase : units.every((u) => u.done) ? 'cloned' : 'cloning';
  const direction = directionOf(state, cutover, wayBackSlot);
  const json = {
    phase,
    direction,
    name: state?.name ?? null,
    slot: state?.slot ?? null,
    syncRunning: live,
    appliedLsn: lsnText(state?.appliedLsn),
    appliedAt: state?.appliedAt?.toISOString() ?? null,
    sourceLsn: lsnText(state?.sourceLsn),
    lagBytes: state?.lagBytes ?? null,
    lagSeconds: state?.lagSeconds ?? null,
    // The stream's own lag, to the millisecond (sync/stream-lag.ts), as sync last recorded it
    // (each batch's commit, and each heartbeat): 0 when nothing the walsender sent waits.
    lagMs: state?.lagMs ?? null,
    lagMeasuredAt: state?.lagAt?.toISOString() ?? null,
    walsenderLsn: lsnText(state?.walsenderLsn),
    transactionsPerSecond: live ? (state?.transactionsPerSecond ?? null) : 0,
    rowsPerSecond: live ? (state?.rowsPerSecond ?? null) : 0,
    appliedTransactions: state?.appliedTransactions ?? 0,
    appliedRows: state?.appliedRows ?? 0,
    heartbeatAt: state?.heartbeatAt?.toISOString() ?? null,
    problem: state?.problem ? { message: state.problem.text, at: state.problem.at.toISOString() } : null,
    fenceLsn: lsnText(state?.fenceLsn),
    // The copy's oldest snapshot on the source: it holds back the source's vacuum horizon while held.
    copySnapshot: snapshot
      ? { name: snapshot.name, position: formatLsn(snapshot.position), ageSeconds: Math.round(snapshot.ageSeconds), held: snapshot.held }
      : null,
    cutover: cutover
      ? {
          outcome: cutover.outcome ?? 'unfinished',
          freeze: cutover.mode,
          sourceFrozen: cutover.frozen,
          startedAt: cutover.startedAt.toISOString(),
          finishedAt: cutover.finishedAt?.toISOString() ?? null,
          fenceLsn: lsnText(cutover.fenceLsn),
          downtimeMs: cutover.downtimeMs,
        }
      : null,
    tables: [...tables.values()].sort((a, b) => a.name.localeCompare(b.name)),
  };
  // What a person reads besides the JSON: how old the heartbeat and the lag are by the target's clock, the cut-over in words.
  return {
    json,
    heartbeatAgeSeconds: heartbeatAge,
    lagAgeMs: state?.lagAgeMs ?? undefined,
    cutoverText: cutover ? describeCutover(cutover) : undefined,
  };
}

export type StatusReport = NonNullable<Awaited<ReturnType<typeof readStatusReport>>>;
/** What `status --json` prints and `/status.json` serves. */
export type StatusJson = StatusReport['json'];

/**
 * Which side the application writes to, as far as this database can tell: it follows its source
 * (a migration under way, or a way back a cut-over prepared), or it is live (cut over to), with
 * the way back it keeps for the application's return.
 */
interface Direction {
  readonly role: 'following' | 'live' | 'none';
  readonly wayBack: { readonly slot: string; readonly from: string; readonly streaming: boolean; readonly exists: boolean } | null;
  readonly text: string;
}

function directionOf(state: SyncState | undefined, cutover: CutoverRecord | undefined, slot: SlotInfo | undefined): Direction {
  const through = followedThrough(state);
  if (state && through !== null) {
    return {
      role: 'following',
      wayBack: null,
      text:
        through === 'way back' && state.preparedAt
          ? `this database follows its source (the way back a cut-over prepared at ${state.preparedAt.toISOString()}): the application writes to the source; pgferry cutover with this database as --target returns to it`
          : 'this database follows its source (a migration under way): the application writes to the source',
    };
  }
  if (cutover?.outcome === 'done') {
    const way = cutover.wayBack;
    const wayBack =
      way === null ? null : { slot: way.slot, from: formatLsn(way.from), streaming: slot?.active === true, exists: slot?.exists === true };
    const back =
      wayBack === null
        ? 'no way back was prepared'
        : !wayBack.exists
          ? `the way back's slot ${wayBack.slot} is gone: the old primary can no longer follow`
          : `the way back: slot ${wayBack.slot} on this database, from ${wayBack.from}; ${wayBack.streaming ? 'pgferry sync streams it to the old primary' : 'pgferry sync with the sides swapped is not running, so the old primary falls behind'}`;
    return { role: 'live', wayBack, text: `this database is live: the application writes here since the cut-over; ${back}` };
  }
  return { role: 'none', wayBack: null, text: 'no direction recorded yet' };
}

/** Positions are shown, and printed as JSON, in PostgreSQL's X/Y text. */
function lsnText(lsn: Lsn | null | undefined): string | null {
  return lsn === null || lsn === undefined ? null : formatLsn(lsn);
}

function describeCutover(c: CutoverRecord): string {
  const frozen =
    c.mode === 'none'
      ? ''
      : c.frozen
        ? `; the source is still frozen (${c.mode}): pgferry cleanup --unfreeze-source lifts it`
        : '; the source is writable';
  if (c.outcome === null) return `started at ${c.startedAt.toISOString()} and not finished${frozen}`;
  if (c.outcome === 'failed') return `failed at ${(c.finishedAt ?? c.startedAt).toISOString()}${frozen}`;
  const downtime = c.downtimeMs === null ? '' : `, writes frozen for ${Math.round(c.downtimeMs)} ms`;
  return `done at ${(c.finishedAt ?? c.startedAt).toISOString()}${downtime}, fence ${lsnText(c.fenceLsn) ?? '?'}${frozen}`;
}
