import type pg from 'pg';
import { PgferryError } from '../errors.js';
import type { Logger } from '../log/index.js';
import {
  describeSession,
  endLostOwnSessions,
  endSessions,
  isLostOwn,
  lockHolders,
  OWN_RUN,
  sessionMarkIn,
  SQLSTATE,
  sqlState,
  type ServerSession,
  type SessionsEnded,
} from '../plumbing/index.js';
import type { Side } from '../errors.js';

/*
 * What the apply waits on. A session of this run whose connection was lost (stranded by a NAT,
 * say) keeps its transaction's row locks on the server for as long as the server believes its
 * client is there; the apply after the reconnect needs the same rows. pgferry ends such sessions
 * of its own; anybody else's lock is named in the log, and in the error when the apply gives up
 * on it (lock_timeout), so that a person can decide.
 */

/** Holders seen this recently still explain a lock timeout. */
const SEEN_RECENTLY_MS = 5_000;

/** Which holders pgferry ends (its own lost sessions) and which it names (anybody else's). Pure. */
export function sortLockHolders(
  holders: readonly ServerSession[],
  isLostOwnSession: (holder: ServerSession) => boolean,
): { readonly end: ServerSession[]; readonly name: ServerSession[] } {
  return { end: holders.filter(isLostOwnSession), name: holders.filter((h) => !isLostOwnSession(h)) };
}

/** Watches the apply session's lock waits, once a monitor round, when the round sees it waiting on one. */
export class LockWatch {
  /** Holders already named in the log: each is named once. */
  private readonly named = new Set<number>();
  private seen: { readonly at: number; readonly holders: readonly ServerSession[] } | undefined;

  constructor(
    private readonly target: pg.Client,
    private readonly applyPid: number,
    private readonly logger: Logger,
  ) {}

  /** The apply waits on a lock: ends the holders that are pgferry's own lost sessions, names the others. */
  async look(now: number): Promise<void> {
    const { end, name } = sortLockHolders(await lockHolders(this.target, this.applyPid), isLostOwn);
    if (end.length > 0) {
      logEnded('target', await endSessions(this.target, end), this.logger, 'the apply waited on a lock it holds');
    }
    this.seen = name.length > 0 ? { at: now, holders: name } : undefined;
    for (const holder of name) {
      if (this.named.has(holder.pid)) continue;
      this.named.add(holder.pid);
      this.logger.warn(
        { pid: holder.pid, application: holder.application, user: holder.user, state: holder.state, since: holder.since?.toISOString() },
        `target: the apply waits on a lock held by ${describeSession(holder)}${fromAnotherRun(holder)}`,
      );
    }
  }

  /**
   * `error` with the holders of the lock it gave up on, when it is the apply's lock timeout and
   * the watch saw them; else `error` as it is. Still a lock timeout (its cause): sync retries it.
   */
  explain(error: unknown, now: number): unknown {
    if (sqlState(error) !== SQLSTATE.lockNotAvailable || this.seen === undefined || now - this.seen.at > SEEN_RECENTLY_MS) return error;
    const holders = this.seen.holders;
    const named = holders.map((h) => `${describeSession(h)}${fromAnotherRun(h)}`).join('; ');
    return new PgferryError('query', `target: the apply gave up waiting on a lock held by ${named}`, {
      side: 'target',
      fix: `sync tries again by itself; if that session should not hold its transaction open, end it (SELECT pg_terminate_backend(${holders[0]!.pid}) on the target)`,
      cause: error,
    });
  }
}

/** What a holder that carries another pgferry run's mark is, in words; nothing for any other session. */
function fromAnotherRun(holder: ServerSession): string {
  const mark = sessionMarkIn(holder.application);
  if (mark === undefined || mark.run === OWN_RUN) return '';
  return ` (a session of pgferry run ${mark.run}: one still running, or an earlier one whose connection was lost, which pgferry does not end for it)`;
}

/**
 * Ends the backends of this run's lost connections on a server, after a reconnect and before
 * any work that could wait on them, and says what it did.
 */
export async function endOwnLostSessions(client: pg.Client, side: Side, logger: Logger): Promise<void> {
  logEnded(side, await endLostOwnSessions(client), logger, 'its connection was lost');
}

function logEnded(side: Side, outcome: SessionsEnded, logger: Logger, why: string): void {
  for (const session of outcome.ended) {
    logger.warn(
      { side, pid: session.pid, application: session.application, state: session.state, since: session.since?.toISOString() },
      `${side}: ended pgferry's own session ${describeSession(session)}: ${why}, and it could hold what sync needs (locks, the slot)`,
    );
  }
  for (const { session, reason } of outcome.refused) {
    logger.warn(
      { side, pid: session.pid, application: session.application, error: reason },
      `${side}: cannot end pgferry's own session ${describeSession(session)} (${reason}): its connection was lost, and it keeps what it holds until the server notices (its TCP keepalives); end it with SELECT pg_terminate_backend(${session.pid}) as a superuser or a member of pg_signal_backend`,
    );
  }
}
