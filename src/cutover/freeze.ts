import type pg from 'pg';
import type { Scope } from '../catalog/index.js';
import { sleep } from '../plumbing/index.js';
import type { FreezeMode, FreezeRecord } from '../state/index.js';
import { drainSessions, type DrainReport } from './drain.js';
import { freezeReadOnly, liftReadOnly, previousReadOnly, readOnlyEscapes } from './read-only.js';
import { PgferryError } from '../errors.js';
import { systemIdentifier } from '../sync/index.js';
import { applyRevoke, liftRevoke, planRevoke } from './revoke.js';

export type { FreezeMode } from '../state/index.js';

/** What a freeze will change on the source, known before anything changes, so it can be recorded first. */
export type FreezePlan = Omit<FreezeRecord, 'id' | 'startedAt'> & { readonly roles: readonly string[] };

export async function planFreeze(source: pg.Client, mode: FreezeMode, roles: readonly string[], scope: Scope): Promise<FreezePlan> {
  const { rows } = await source.query<{ db: string }>('SELECT current_database() AS db');
  const database = rows[0]!.db;
  const systemId = await systemIdentifier(source);
  switch (mode) {
    case 'read-only': {
      const escapes = await readOnlyEscapes(source);
      if (escapes.length > 0) {
        throw new PgferryError('freeze-would-not-hold', `source: a read-only freeze would not hold: ${escapes.join('; ')}`, {
          side: 'source',
          fix: 'apply the fixes named, or use --freeze revoke --roles <the application roles>; nothing was frozen',
        });
      }
      return { mode, database, systemId, previousReadOnly: await previousReadOnly(source), revoked: [], roles };
    }
    case 'revoke': {
      const revoked = await planRevoke(source, roles, scope);
      // Tried now and rolled back: a hole is refused before the cut-over waits or compares anything.
      await applyRevoke(source, roles, revoked, scope, true);
      return { mode, database, systemId, previousReadOnly: null, revoked, roles };
    }
    case 'none':
      return { mode, database, systemId, previousReadOnly: null, revoked: [], roles };
  }
}

/**
 * Stops writes and returns the server's clock at the moment the freeze took hold (as text,
 * microseconds kept): the drain compares session and transaction starts with it.
 */
export async function applyFreeze(source: pg.Client, plan: FreezePlan, scope: Scope): Promise<string> {
  if (plan.mode === 'read-only') await freezeReadOnly(source, plan.database);
  if (plan.mode === 'revoke') await applyRevoke(source, plan.roles, plan.revoked, scope);
  const { rows } = await source.query<{ at: string }>('SELECT clock_timestamp()::text AS at');
  return rows[0]!.at;
}

export async function drainForFreeze(
  source: pg.Client,
  plan: FreezePlan,
  frozenAt: string,
  spare: readonly number[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<DrainReport> {
  if (plan.mode === 'none') return { sessionsEnded: 0, waitedMs: 0 };
  return drainSessions(source, { mode: plan.mode, frozenAt, spare, roles: plan.roles, timeoutMs, signal });
}

/**
 * Undoes a freeze from its record alone: a later `cleanup --unfreeze-source`, on another
 * machine, can do it as well as the cut-over that made it.
 */
export async function liftFreeze(
  source: pg.Client,
  record: Pick<FreezeRecord, 'mode' | 'database' | 'previousReadOnly' | 'revoked'>,
): Promise<void> {
  if (record.mode === 'read-only') await liftReadOnly(source, record.database, record.previousReadOnly);
  if (record.mode === 'revoke') await liftRevoke(source, record.revoked);
}

/**
 * Sessions opened during a read-only freeze keep their read-only default after it is lifted.
 * Ending them makes pools reconnect writable. One inside a transaction is not cut off: it is
 * waited for (up to `withinMs`) and ended once idle. Returns how many were ended, and how many
 * were still inside a transaction at the end.
 */
export async function endSessionsOpenedDuringFreeze(
  source: pg.Client,
  frozenAt: string,
  spare: readonly number[],
  withinMs = 0,
): Promise<{ ended: number; left: number }> {
  const deadline = Date.now() + withinMs;
  let ended = 0;
  for (;;) {
    const { rows } = await source.query<{ ended: number; left: number }>(
      `SELECT count(*) FILTER (WHERE state = 'idle' AND pg_terminate_backend(pid))::int AS ended,
              count(*) FILTER (WHERE state IS DISTINCT FROM 'idle')::int AS left
         FROM pg_stat_activity
        WHERE datname = current_database() AND backend_type = 'client backend'
          AND pid <> pg_backend_pid() AND pid <> ALL($2::int[]) AND backend_start >= $1::timestamptz`,
      [frozenAt, spare],
    );
    ended += rows[0]?.ended ?? 0;
    const left = rows[0]?.left ?? 0;
    if (left === 0 || Date.now() >= deadline) return { ended, left };
    await sleep(200);
  }
}
