import type pg from 'pg';
import { SQLSTATE, sqlState } from './error-codes.js';
import { isLostOwnSession, openOwnSessions, OWN_RUN } from './own-sessions.js';
import { pollUntil } from './time.js';

/** A backend as pg_stat_activity shows it: enough to end it, or to name it to a person. */
export interface ServerSession {
  readonly pid: number;
  readonly application: string;
  readonly user: string | null;
  readonly state: string | null;
  readonly backendType: string | null;
  /** Since when it is in its transaction; outside one, since its state last changed. */
  readonly since: Date | null;
  readonly query: string;
}

/** What ending sessions came to: those ended, and those the server would not let pgferry end. */
export interface SessionsEnded {
  readonly ended: readonly ServerSession[];
  readonly refused: ReadonlyArray<{ readonly session: ServerSession; readonly reason: string }>;
}

const COLUMNS = `pid, application_name AS application, usename AS "user", state, backend_type AS "backendType",
  coalesce(xact_start, state_change) AS since, left(coalesce(query, ''), 300) AS query`;

/** How long the ended backends get to exit (and so release their locks and slots) before work goes on. */
const EXIT_WITHIN_MS = 5_000;

/**
 * Ends this process's own backends on `client`'s server whose client is gone (own-sessions.ts):
 * what a connection lost without a word left behind, holding its locks (or its replication
 * slot) until the server notices, which may be never. Call it after a reconnect, before work
 * that could wait on them.
 */
export async function endLostOwnSessions(client: pg.Client): Promise<SessionsEnded> {
  const { rows } = await client.query<ServerSession>(
    `SELECT ${COLUMNS} FROM pg_stat_activity WHERE application_name LIKE $1 AND pid <> pg_backend_pid()`,
    [`%${OWN_RUN}/%`],
  );
  // Read after the backends: a session that closed in between is ended again, harmlessly.
  const open = openOwnSessions();
  return endSessions(
    client,
    rows.filter((row) => isLostOwnSession(row.application, OWN_RUN, open)),
  );
}

/** Whether a backend seen on the server is one of this process's sessions whose client is gone. */
export function isLostOwn(session: Pick<ServerSession, 'application'>): boolean {
  return isLostOwnSession(session.application, OWN_RUN, openOwnSessions());
}

/**
 * Ends `sessions` (pg_terminate_backend: a role may end its own sessions, a member of
 * pg_signal_backend any but a superuser's) and waits a little for them to exit. A backend that
 * went meanwhile is skipped, and one whose pid now serves another session is left alone.
 */
export async function endSessions(client: pg.Client, sessions: readonly ServerSession[]): Promise<SessionsEnded> {
  const ended: ServerSession[] = [];
  const refused: Array<{ session: ServerSession; reason: string }> = [];
  for (const session of sessions) {
    try {
      const { rows } = await client.query<{ ended: boolean }>(
        `SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE pid = $1 AND application_name = $2`,
        [session.pid, session.application],
      );
      if (rows[0]?.ended === true) ended.push(session);
    } catch (error) {
      if (sqlState(error) !== SQLSTATE.insufficientPrivilege) throw error;
      refused.push({ session, reason: error instanceof Error ? error.message : String(error) });
    }
  }
  if (ended.length > 0) {
    const pids = ended.map((s) => s.pid);
    await pollUntil(
      async () => {
        const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])`, [
          pids,
        ]);
        return rows[0]!.n === 0;
      },
      { timeoutMs: EXIT_WITHIN_MS, everyMs: 50, what: 'the ended sessions to exit' },
    ).catch(() => undefined);
  }
  return { ended, refused };
}

/** The backends holding the locks that backend `pid` waits for (none when it waits for none). */
export async function lockHolders(client: pg.Client, pid: number): Promise<ServerSession[]> {
  const { rows } = await client.query<ServerSession>(`SELECT ${COLUMNS} FROM pg_stat_activity WHERE pid = ANY(pg_blocking_pids($1))`, [
    pid,
  ]);
  return rows;
}

/** A backend in words, for a log line or a message: who, doing what, since when. */
export function describeSession(session: ServerSession): string {
  const state = session.state ?? session.backendType ?? 'unknown state';
  const since = session.since === null ? '' : ` since ${session.since.toISOString()}`;
  const query = session.query.replace(/\s+/g, ' ').trim();
  return `pid ${session.pid} (application "${session.application}", user "${session.user ?? '?'}", ${state}${since}${query === '' ? '' : `, last query "${query.length > 200 ? `${query.slice(0, 200)}…` : query}"`})`;
}
