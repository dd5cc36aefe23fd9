import type pg from 'pg';
import { PgferryError, messageOf, type Side } from '../errors.js';
import type { Logger } from '../log/index.js';
import { pollUntil, SQLSTATE, sqlState } from '../plumbing/index.js';
import { parseLsn, type CreatedSlot, type Lsn, type ReplicationSession, type SlotKind } from '../replication/index.js';

/** How long creating the slot may wait for the transactions running on the source, by default. */
export const DEFAULT_SLOT_TIMEOUT_MS = 10 * 60_000;
/** How often, while it waits, the log names what it waits for. */
const REPORT_EVERY_MS = 10_000;

/**
 * Makes room for this migration's slot: a slot of that name left by an earlier attempt of this
 * migration is dropped; one that may be another migration's (a name given by hand that this
 * target has no record of) is refused rather than taken: dropping it would make that
 * migration skip every change between its position and the new slot's.
 */
export async function claimSlotName(source: pg.Client, slot: string, ownsName: boolean): Promise<void> {
  const { rows } = await source.query<{ active: boolean; pid: number | null; database: string | null }>(
    `SELECT active, active_pid AS pid, database FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const existing = rows[0];
  if (!existing) return;
  if (existing.active) {
    throw new PgferryError(
      'slot-taken',
      `source: replication slot ${slot} is in use by another process (pid ${existing.pid ?? '?'}): another pgferry sync of this migration is running`,
      {
        side: 'source',
        fix: 'stop the other sync first; if it belongs to another migration, give this one its own --name',
      },
    );
  }
  if (!ownsName) {
    throw new PgferryError(
      'slot-taken',
      `source: replication slot ${slot} already exists (database ${existing.database ?? '?'}) and this target has no record of it: it may be another migration's`,
      {
        side: 'source',
        fix: 'give this migration its own --name (or leave --name out: the default is unique per target), or pass --drop-existing to replace that slot',
      },
    );
  }
  await source.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active`, [slot]);
}

/**
 * CREATE_REPLICATION_SLOT waits until every transaction running on the source when it starts
 * has ended, prepared ones included, however long that takes. While it waits, the log names
 * them every few seconds; past `timeoutMs` the creation is abandoned (the half-made slot goes
 * with its session) and the error names them with the way to end them.
 */
export async function createSlotNamingBlockers(
  session: ReplicationSession,
  slot: string,
  source: pg.Client,
  timeoutMs: number,
  log: Logger,
  kind?: SlotKind,
): Promise<CreatedSlot> {
  const creating = session.createSlot(slot, kind);
  let timer: NodeJS.Timeout | undefined;
  let reporting: Promise<void> = Promise.resolve();
  const waited = Date.now();
  const expired = new Promise<'expired'>((resolve) => {
    const tick = () => {
      if (Date.now() - waited >= timeoutMs) return resolve('expired');
      reporting = slotCreationBlockers(source)
        .then((blockers) => {
          if (blockers.length > 0)
            log.warn(
              { slot, waitedSeconds: Math.round((Date.now() - waited) / 1000), blockers },
              'creating the replication slot waits for these transactions on the source to end',
            );
        })
        .catch((error: unknown) => log.debug({ error: messageOf(error) }, 'could not list the transactions the slot waits for'));
      timer = setTimeout(tick, Math.min(REPORT_EVERY_MS, Math.max(0, timeoutMs - (Date.now() - waited))));
    };
    timer = setTimeout(tick, Math.min(REPORT_EVERY_MS, timeoutMs));
  });
  try {
    const outcome = await Promise.race([creating, expired]);
    if (outcome !== 'expired') return outcome;
    creating.catch(() => undefined);
    await reporting;
    const blockers = await slotCreationBlockers(source).catch(() => []);
    await abandonSlotCreation(session, slot, source);
    throw slotBlocked('source', slot, timeoutMs, blockers, 'or wait for them and run sync again; --slot-timeout sets how long to wait');
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The walsender waiting to create the slot does not notice its client leaving until the wait
 * ends, and its half-made slot stays until then: it is ended from the other session, and the
 * slot is gone when it is.
 */
async function abandonSlotCreation(session: ReplicationSession, slot: string, source: pg.Client): Promise<void> {
  await source
    .query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, [slot])
    .catch(() => undefined);
  session.destroy();
  await pollUntil(async () => (await source.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [slot])).rowCount === 0, {
    timeoutMs: 10_000,
    everyMs: 100,
  }).catch(() => undefined);
}

/**
 * Transactions that hold back a new logical slot: prepared transactions, and sessions with a
 * transaction id (roles without pg_read_all_stats see only their own sessions' ids).
 */
export async function slotCreationBlockers(source: pg.Client): Promise<string[]> {
  const { rows } = await source.query<{ blocker: string }>(
    `SELECT format('prepared transaction %L (database %s, owner %s, prepared at %s)', gid, database, owner, prepared) AS blocker
       FROM pg_prepared_xacts
     UNION ALL
     SELECT format('pid %s (%s on database %s, transaction open since %s, %s: %s)', pid, usename, datname, xact_start, state, left(query, 60))
       FROM pg_stat_activity
      WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
  );
  return rows.map((r) => r.blocker);
}

/**
 * A logical slot made through SQL, on a server where nothing needs its snapshot (the way back's
 * slot on a cut-over's target): returns the position from which it decodes. The creation waits
 * for the transactions running there, like CREATE_REPLICATION_SLOT; past `timeoutMs` it is
 * cancelled, which leaves no slot, and the error names what it waited for.
 */
export async function createSlotBySql(client: pg.Client, slot: string, side: Side, timeoutMs: number): Promise<Lsn> {
  await client.query(`SELECT set_config('statement_timeout', $1, false)`, [String(timeoutMs)]);
  try {
    const { rows } = await client.query<{ lsn: string }>(`SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')`, [
      slot,
    ]);
    return parseLsn(rows[0]!.lsn);
  } catch (error) {
    if (sqlState(error) === SQLSTATE.queryCanceled) {
      const blockers = await slotCreationBlockers(client).catch(() => []);
      throw slotBlocked(side, slot, timeoutMs, blockers, 'then try again', error);
    }
    throw new PgferryError('query', `${side}: cannot create replication slot ${slot}: ${messageOf(error)}`, {
      side,
      fix:
        sqlState(error) === SQLSTATE.insufficientPrivilege
          ? `the ${side} role needs the REPLICATION attribute (ALTER ROLE … REPLICATION), or the managed service's replication role`
          : `see pgferry check for what the ${side} needs`,
      cause: error,
    });
  } finally {
    await client.query('RESET statement_timeout').catch(() => undefined);
  }
}

/** A slot's creation waited its whole deadline for running transactions: the error names them and how to end them. */
function slotBlocked(
  side: Side,
  slot: string,
  timeoutMs: number,
  blockers: readonly string[],
  then: string,
  cause?: unknown,
): PgferryError {
  return new PgferryError(
    'slot-blocked',
    `${side}: creating replication slot ${slot} waited ${Math.round(timeoutMs / 1000)} s for transactions running on the ${side} to end${blockers.length > 0 ? `: ${blockers.join('; ')}` : ''}`,
    {
      side,
      fix: `end them (COMMIT PREPARED or ROLLBACK PREPARED for prepared transactions, pg_terminate_backend(pid) for sessions), ${then}`,
      cause,
    },
  );
}
