import type pg from 'pg';
import { connect } from '../config/index.js';
import { messageOf } from '../errors.js';
import type { Logger } from '../log/index.js';
import { closeClient, destroyClient, sleep, withDeadline } from '../plumbing/index.js';
import { recordCutoverOutcome, recordUnfrozen } from '../state/index.js';
import type { CutoverOptions, FreezeContext } from './context.js';
import type { Lifted } from './failures.js';
import { endSessionsOpenedDuringFreeze, liftFreeze } from './freeze.js';
import { writableSession } from './read-only.js';

/** How long a failed cut-over keeps trying to lift its freeze (the source may be restarting). */
const LIFT_WITHIN_MS = 30_000;

/** How long the sessions opened during a lifted freeze are waited for, to end them once idle. */
const SESSIONS_SETTLE_MS = 10_000;

/**
 * Lifts the freeze after a failure, whatever broke: the session the cut-over used may be the
 * thing that failed (a network cut, a terminated backend, a failover), so each try after the
 * first opens a fresh session, until LIFT_WITHIN_MS. The outcome is recorded on the target the
 * same way, through a fresh session if need be; then sessions opened during the freeze are
 * ended as they become idle, so they reconnect writable.
 */
export async function unfreezeAfterFailure(cut: FreezeContext, frozenAt: string | undefined): Promise<Lifted> {
  const { options, plan, log } = cut;
  const lifted: Lifted =
    plan.mode === 'none'
      ? { ok: true }
      : await onSourceUntilDone(options, cut.source, log, async (client) => {
          // A transaction left open by the failed step would hold the lift.
          await client.query('ROLLBACK').catch(() => undefined);
          await liftFreeze(client, plan);
          if (plan.mode === 'read-only' && frozenAt !== undefined) {
            const { ended, left } = await endSessionsOpenedDuringFreeze(client, frozenAt, cut.spare, SESSIONS_SETTLE_MS);
            if (ended > 0) log.info({ sessions: ended }, 'ended sessions opened during the freeze, so they reconnect writable');
            if (left > 0)
              log.warn(
                { sessions: left },
                'sessions opened during the freeze are still in a transaction: they stay read-only until they reconnect',
              );
          }
        });
  await onTargetOnce(options, cut.target, async (client) => {
    if (lifted.ok) await recordUnfrozen(client, cut.cutoverId);
    await recordCutoverOutcome(client, cut.cutoverId, { outcome: 'failed', fenceLsn: undefined, downtimeMs: undefined });
  }).catch((error: unknown) => log.warn({ error: messageOf(error) }, 'could not record the failed cut-over on the target'));
  return lifted;
}

async function onSourceUntilDone(
  options: CutoverOptions,
  first: pg.Client,
  log: Logger,
  work: (client: pg.Client) => Promise<void>,
): Promise<Lifted> {
  const deadline = Date.now() + LIFT_WITHIN_MS;
  let problem = '';
  for (let attempt = 1; ; attempt++) {
    let fresh: pg.Client | undefined;
    try {
      if (attempt === 1) await withDeadline(work(first), 10_000, 'lifting the freeze', () => destroyClient(first));
      else {
        fresh = (await connect(options.source)).client;
        await writableSession(fresh);
        await withDeadline(work(fresh), 10_000, 'lifting the freeze');
      }
      return { ok: true };
    } catch (error) {
      problem = messageOf(error);
      log.warn({ error: problem, attempt }, 'could not lift the freeze yet; trying again on a fresh session');
    } finally {
      if (fresh) await closeClient(fresh);
    }
    if (Date.now() >= deadline) return { ok: false, problem };
    await sleep(Math.min(2000, 250 * attempt));
  }
}

async function onTargetOnce(options: CutoverOptions, first: pg.Client, work: (client: pg.Client) => Promise<void>): Promise<void> {
  try {
    await withDeadline(work(first), 10_000, 'recording on the target', () => destroyClient(first));
  } catch {
    const fresh = (await connect(options.target)).client;
    try {
      await withDeadline(work(fresh), 10_000, 'recording on the target');
    } finally {
      await closeClient(fresh);
    }
  }
}
