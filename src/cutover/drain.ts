import type pg from 'pg';
import { messageOf, PgferryError } from '../errors.js';
import { oneLine, sleep, sqlState, SQLSTATE } from '../plumbing/index.js';

/** A session that could still commit a write after the freeze began. */
interface Holder {
  readonly pid: number;
  readonly user: string;
  readonly application: string;
  readonly state: string;
  readonly transactionSeconds: number | null;
  readonly query: string;
  /** Inside a transaction that began before the freeze: the one thing worth waiting for. */
  readonly inOldTransaction: boolean;
}

export interface DrainReport {
  /** Idle sessions ended so they reconnect under the freeze. */
  readonly sessionsEnded: number;
  readonly waitedMs: number;
}

export interface DrainOptions {
  /** Which freeze the sessions are drained for: what "could still write" means differs. */
  readonly mode: 'read-only' | 'revoke';
  /** Server time the freeze took effect, as the server printed it (microseconds kept). */
  readonly frozenAt: string;
  /** Backends never touched: this session's own, and sync's. */
  readonly spare: readonly number[];
  /** `--freeze revoke`: only these roles' sessions matter. */
  readonly roles: readonly string[];
  readonly timeoutMs: number;
  readonly pollMs?: number;
  /** Interrupting gives up like a timeout, so the freeze is lifted. */
  readonly signal?: AbortSignal;
  /** Every database of the server, not only this session's (a physical cut-over moves them all). */
  readonly allDatabases?: boolean;
}

/**
 * Waits until no session that started before the freeze can still write.
 * - read-only: sessions opened before the freeze kept a read-write default. Those between
 *   transactions, or inside one begun after the freeze, are ended (their clients reconnect,
 *   read-only; an ended transaction was not committed, so nothing is lost); those inside a
 *   transaction begun before the freeze are left to finish it, then ended. Waiting for an
 *   idle moment instead would let a busy client keep committing through the freeze.
 * - revoke: privileges are checked per statement, so only a transaction begun before the
 *   revoke can still commit a write; it is waited for, never ended.
 * Prepared transactions can be committed by any session later: they hold the drain too.
 * At the timeout the error names every session still holding it.
 */
export async function drainSessions(source: pg.Client, options: DrainOptions): Promise<DrainReport> {
  const started = Date.now();
  const ended = new Set<number>();
  for (;;) {
    const { holders, prepared } = await look(source, options, ended);
    if (holders.length === 0 && prepared.length === 0) return { sessionsEnded: ended.size, waitedMs: Date.now() - started };
    if (options.signal?.aborted)
      throw new PgferryError('interrupted', 'interrupted during the drain', { fix: 'run pgferry cutover again when ready' });
    if (Date.now() - started > options.timeoutMs)
      throw drainTimeout(
        holders.filter((h) => h.inOldTransaction),
        prepared,
        options.timeoutMs,
      );
    // Ended sessions leave pg_stat_activity within milliseconds; the freeze waits on this.
    await sleep(options.pollMs ?? 2);
  }
}

/**
 * One look, one round trip: the sessions that could still write, the prepared transactions, and
 * (read-only) the sessions among them that are ended now, those between transactions or inside
 * one begun after the freeze; checked as they are ended, so a transaction begun before the
 * freeze is never cut short. An ended session shows until its backend has exited.
 */
async function look(source: pg.Client, options: DrainOptions, ended: Set<number>): Promise<{ holders: Holder[]; prepared: string[] }> {
  const since = options.mode === 'read-only' ? 'backend_start' : 'xact_start';
  let rows: Array<{
    pid: number | null;
    user: string | null;
    application: string | null;
    state: string | null;
    transaction_seconds: number | null;
    query: string | null;
    in_old_transaction: boolean | null;
    ended: boolean | null;
    prepared: string | null;
  }>;
  try {
    ({ rows } = await source.query(
      `WITH holder AS (
         SELECT pid, usename, application_name, state, xact_start,
                extract(epoch FROM clock_timestamp() - xact_start)::float8 AS transaction_seconds, query,
                coalesce(xact_start < $2::timestamptz, false) AS in_old_transaction
           FROM pg_stat_activity
          WHERE ($4 OR datname = current_database()) AND backend_type = 'client backend'
            AND pid <> pg_backend_pid() AND pid <> ALL($1::int[])
            AND ${since} < $2::timestamptz
            AND ($3::text[] = '{}' OR usename = ANY($3::text[]))
       ), ended AS (
         -- Not inlined (it calls a volatile function), so evaluated once, whole.
         SELECT pid FROM holder
          WHERE $5 AND (xact_start IS NULL OR xact_start >= $2::timestamptz) AND pg_terminate_backend(pid)
       )
       SELECT pid, usename AS user, application_name AS application, state, transaction_seconds, query, in_old_transaction,
              pid IN (SELECT pid FROM ended) AS ended, NULL::text AS prepared
         FROM holder
       UNION ALL
       SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, format('prepared transaction "%s" of %s', gid, owner)
         FROM pg_prepared_xacts WHERE $4 OR database = current_database()`,
      [
        options.spare,
        options.frozenAt,
        options.mode === 'revoke' ? options.roles : [],
        options.allDatabases === true,
        options.mode === 'read-only',
      ],
    ));
  } catch (error) {
    if (options.mode === 'read-only' && sqlState(error) === SQLSTATE.insufficientPrivilege) throw cannotEndSessions(error);
    throw error;
  }
  const holders: Holder[] = [];
  const prepared: string[] = [];
  for (const r of rows) {
    if (r.prepared !== null) {
      prepared.push(r.prepared);
      continue;
    }
    if (r.ended === true) ended.add(r.pid!);
    holders.push({
      pid: r.pid!,
      user: r.user ?? '?',
      application: r.application ?? '',
      state: r.state ?? 'unknown',
      transactionSeconds: r.transaction_seconds,
      query: r.query ?? '',
      inOldTransaction: r.in_old_transaction === true,
    });
  }
  return { holders, prepared };
}

function cannotEndSessions(error: unknown): PgferryError {
  return new PgferryError('query', `source: cannot end the sessions opened before the freeze: ${messageOf(error)}`, {
    side: 'source',
    fix: 'run the cut-over as a superuser or a member of pg_signal_backend, or stop the application and use --freeze none',
    cause: error,
  });
}

function drainTimeout(holders: readonly Holder[], prepared: readonly string[], timeoutMs: number): PgferryError {
  const described = holders.map(
    (h) =>
      `pid ${h.pid} (user ${h.user}${h.application ? `, application ${h.application}` : ''}, ${h.state}` +
      `${h.transactionSeconds === null ? '' : `, transaction open ${h.transactionSeconds.toFixed(1)} s`}): ${oneLine(h.query, 120)}`,
  );
  return new PgferryError(
    'drain-timeout',
    `source: the drain timed out after ${(timeoutMs / 1000).toFixed(1)} s; still running: ${[...described, ...prepared].join('; ')}`,
    {
      side: 'source',
      fix: 'end or finish those transactions (pg_terminate_backend(pid), COMMIT/ROLLBACK PREPARED) and run the cut-over again, or give it a longer --drain-timeout',
    },
  );
}
