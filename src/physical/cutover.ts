import type pg from 'pg';
import { connect, type ConnectionSpec } from '../config/index.js';
import { drainSessions } from '../cutover/index.js';
import { messageOf, PgferryError } from '../errors.js';
import type { Logger } from '../log/index.js';
import { closeClient, sleep } from '../plumbing/index.js';
import { formatLsn, parseLsn } from '../replication/index.js';
import { freezeServer, liftServerFreeze, serverFreezeRecord } from './server-freeze.js';
import { physicalSlotName } from './slot.js';
import { readStandbyLag } from './standby-lag.js';
import { PoolSwitch, type PoolOptions, type PoolReport } from '../pgbouncer/index.js';

export interface PhysicalCutoverOptions {
  readonly source: ConnectionSpec;
  /** The standby, to be promoted. */
  readonly target: ConnectionSpec;
  readonly name: string;
  /** How long sessions begun before the freeze may take to finish. */
  readonly drainTimeoutMs: number;
  /** How long the standby may take to replay the source's last WAL (and to catch up before the freeze). */
  readonly catchUpTimeoutMs: number;
  /** PgBouncer in front of the source: paused before the freeze, repointed to the new primary, resumed. */
  readonly pgbouncer?: PoolOptions;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
}

export interface PhysicalCutoverStep {
  readonly name: 'catch up' | 'pause' | 'freeze' | 'drain' | 'last WAL' | 'replay' | 'promote' | 'writes' | 'repoint' | 'resume' | 'tidy';
  readonly ms: number;
}

export interface PhysicalCutoverReport {
  /** From the freeze taking hold to the promoted server committing a write. */
  readonly downtimeMs: number;
  /** The source's last WAL position, all of it replayed on the standby before promotion. */
  readonly lastLsn: string;
  readonly sessionsEnded: number;
  readonly pgbouncer: PoolReport | null;
  readonly steps: readonly PhysicalCutoverStep[];
  readonly notes: readonly string[];
}

/**
 * `cutover --physical`: the source frozen (every database), sessions begun before drained,
 * the standby waited for until it has replayed every byte of WAL the source wrote, promoted,
 * and made to commit a write. The copy is exact: nothing else is set on it. A failure before
 * the promotion lifts the freeze and leaves the standby streaming; after it, the source stays
 * frozen (cleanup --physical --unfreeze-source lifts it on request).
 */
export async function cutoverPhysical(options: PhysicalCutoverOptions): Promise<PhysicalCutoverReport> {
  const slot = physicalSlotName(options.name);
  const steps: PhysicalCutoverStep[] = [];
  const notes: string[] = [];
  const log = options.logger;
  const step = async <T>(name: PhysicalCutoverStep['name'], work: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    const result = await work();
    steps.push({ name, ms: Math.round(performance.now() - started) });
    log.info({ step: name, ms: steps.at(-1)!.ms }, 'cut-over step');
    return result;
  };
  const { client: source } = await connect(options.source);
  let target: pg.Client | undefined;
  let pool: PoolSwitch | undefined;
  try {
    target = (await connect(options.target)).client;
    const standby = target;
    await assertStandbyOf(source, standby, slot);
    // PgBouncer's console, pooled database and file are checked before anything changes.
    // The whole server moves: the pooled database keeps its name, on the new host and port.
    pool = options.pgbouncer
      ? await PoolSwitch.prepare(options.pgbouncer, [{ source: options.source, target: options.target, keepDatabase: true }])
      : undefined;
    await step('catch up', () => catchUp(source, slot, options));

    // Clients wait in PgBouncer's pause from its start: no step may keep them past --max-pause.
    const pauseLimit = pool ? AbortSignal.timeout(pool.maxPauseMs) : undefined;
    const signal = pauseLimit ? AbortSignal.any([pauseLimit, ...(options.signal ? [options.signal] : [])]) : options.signal;
    const paused = pool;
    if (paused) {
      try {
        await step('pause', () => paused.pause(options.drainTimeoutMs, log));
      } catch (error) {
        await paused.undo(log);
        throw error;
      }
    }
    const freezeStarted = performance.now();
    let lastLsn: bigint;
    let sessionsEnded = 0;
    try {
      const frozenAt = await step('freeze', () => freezeServer(source));
      const { rows: own } = await source.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const drained = await step('drain', () =>
        drainSessions(source, {
          mode: 'read-only',
          frozenAt,
          spare: [own[0]!.pid],
          roles: [],
          timeoutMs: options.drainTimeoutMs,
          signal,
          allDatabases: true,
        }),
      );
      sessionsEnded = drained.sessionsEnded;
      lastLsn = await step('last WAL', () => flushLastWal(source));
      await step('replay', () => waitForReplay(standby, lastLsn, options, signal));
    } catch (error) {
      await liftAfterFailure(source, log);
      // Lifted first: clients resumed on a frozen source would fail.
      await pool?.undo(log);
      throw pauseLimit?.aborted && !options.signal?.aborted ? pauseTooLong(pool!) : error;
    }
    // Once the promotion is asked for, the freeze stays whatever happens: lifting it while the
    // standby may still finish promoting would leave two writable servers.
    let pgbouncer: PoolReport | null = null;
    try {
      await step('promote', () => promote(standby));
      await step('writes', () => assertWrites(standby));
      if (paused) {
        await step('repoint', () => paused.repoint());
        pgbouncer = await step('resume', () => paused.resume());
      }
    } catch (error) {
      // Never left paused (DESIGN decision 12): resumed on the source, which stays frozen.
      const problem = await pool?.undo(log);
      if (pool) log.warn({ problem }, 'PgBouncer was resumed on the source, which stays frozen: point it at the new primary by hand');
      throw error;
    }
    const downtimeMs = Math.round(performance.now() - freezeStarted);
    await step('tidy', async () => {
      try {
        // Recovery settings only a standby reads; the promoted server no longer needs them.
        await standby.query('ALTER SYSTEM RESET primary_conninfo');
        await standby.query('ALTER SYSTEM RESET primary_slot_name');
        await standby.query('SELECT pg_reload_conf()');
      } catch (error) {
        notes.push(
          `the promoted server keeps primary_conninfo and primary_slot_name (${messageOf(error)}): harmless, ALTER SYSTEM RESET them as a superuser`,
        );
      }
    });
    notes.push(
      `the old primary stays frozen (read-only) and keeps the slot ${slot}: pgferry cleanup --physical drops it (--unfreeze-source lifts the freeze)`,
    );
    return { downtimeMs, lastLsn: formatLsn(lastLsn), sessionsEnded, pgbouncer, steps, notes };
  } finally {
    await closeClient(source);
    if (target) await closeClient(target);
    await pool?.close();
  }
}

/** The target is in recovery, is a copy of this very source, and streams from this migration's slot. */
async function assertStandbyOf(source: pg.Client, target: pg.Client, slot: string): Promise<void> {
  const ids = async (client: pg.Client) =>
    (
      await client.query<{ id: string; recovering: boolean }>(
        'SELECT system_identifier::text AS id, pg_is_in_recovery() AS recovering FROM pg_control_system()',
      )
    ).rows[0]!;
  const [s, t] = [await ids(source), await ids(target)];
  const { rows: version } = await target.query<{ num: number }>(`SELECT current_setting('server_version_num')::int AS num`);
  if (version[0]!.num < 120000) {
    throw new PgferryError('usage', 'target: PostgreSQL before 12 has no pg_promote(); nothing was changed', {
      side: 'target',
      fix: 'freeze the source yourself, wait until the standby has replayed pg_current_wal_lsn(), and run pg_ctl promote on the new host',
    });
  }
  if (!t.recovering) {
    throw new PgferryError('usage', 'target: the server is not a standby (pg_is_in_recovery() is false); nothing was changed', {
      side: 'target',
      fix: 'give --target the standby pgferry sync --physical made; if it was promoted already, the cut-over is over',
    });
  }
  if (s.id !== t.id) {
    throw new PgferryError('usage', `target: the standby is a copy of another server (system identifier ${t.id}, the source's ${s.id})`, {
      side: 'target',
      fix: 'check --source and --target',
    });
  }
  if ((await readStandbyLag(source, slot)) === undefined) {
    throw new PgferryError('standby', `source: no standby streams from the slot ${slot}; nothing was changed`, {
      side: 'source',
      fix: 'start the standby (or check --name), wait for pgferry status --physical to show it streaming, and run the cut-over again',
    });
  }
}

/** Before the freeze: the standby has replayed what the source had written when the cut-over began. */
async function catchUp(source: pg.Client, slot: string, options: PhysicalCutoverOptions): Promise<void> {
  const deadline = Date.now() + options.catchUpTimeoutMs;
  let goal: bigint | undefined;
  for (;;) {
    const lag = await readStandbyLag(source, slot);
    if (lag?.replayLsn != null) {
      goal ??= lag.currentLsn;
      if (lag.replayLsn >= goal) return;
    }
    if (options.signal?.aborted) throw new PgferryError('interrupted', 'interrupted while the standby caught up; nothing was frozen');
    if (Date.now() > deadline) {
      throw new PgferryError(
        'lag-timeout',
        `the standby did not catch up within ${options.catchUpTimeoutMs / 1000} s; nothing was frozen`,
        {
          side: 'target',
          fix: 'watch pgferry status --physical until the replay lag is small, then run the cut-over again (or give --catch-up-timeout more)',
        },
      );
    }
    await sleep(50, options.signal);
  }
}

async function waitForReplay(standby: pg.Client, lastLsn: bigint, options: PhysicalCutoverOptions, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + options.catchUpTimeoutMs;
  for (;;) {
    const { rows } = await standby.query<{ lsn: string | null }>('SELECT pg_last_wal_replay_lsn()::text AS lsn');
    const replayed = rows[0]?.lsn;
    if (replayed != null && parseLsn(replayed) >= lastLsn) return;
    if (signal?.aborted) throw new PgferryError('interrupted', 'interrupted while the standby replayed the last WAL');
    if (Date.now() > deadline) {
      throw new PgferryError(
        'lag-timeout',
        `the standby had replayed ${replayed ?? 'nothing'} of the source's ${formatLsn(lastLsn)} after ${options.catchUpTimeoutMs / 1000} s; the freeze was lifted`,
        { side: 'target', fix: "check the standby's log and pgferry status --physical, then run the cut-over again" },
      );
    }
    await sleep(2);
  }
}

/**
 * The source's last WAL, flushed: a transaction that writes a record (a logical message, read
 * by no one) committed with a local flush writes everything inserted before it to disk, so the
 * walsender sends it now rather than when the WAL writer next wakes (wal_writer_delay, 200 ms
 * by default, when commits are asynchronous). A transaction writing nothing would not flush.
 * Returns the position after it.
 */
async function flushLastWal(source: pg.Client): Promise<bigint> {
  try {
    await source.query(
      `BEGIN; SET LOCAL synchronous_commit = local; SELECT pg_logical_emit_message(true, 'pgferry', 'physical cut-over'); COMMIT`,
    );
  } catch {
    // A role that may not emit messages: the WAL writer's next round flushes the WAL instead.
    await source.query('ROLLBACK').catch(() => undefined);
  }
  const { rows } = await source.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
  return parseLsn(rows[0]!.lsn);
}

/** Signals the promotion and watches for its end every 2 ms (pg_promote's own wait looks every 100 ms). */
async function promote(standby: pg.Client): Promise<void> {
  await standby.query('SELECT pg_promote(false)');
  const deadline = Date.now() + PROMOTE_TIMEOUT_MS;
  for (;;) {
    const { rows } = await standby.query<{ recovering: boolean }>('SELECT pg_is_in_recovery() AS recovering');
    if (rows[0]?.recovering === false) return;
    if (Date.now() > deadline) {
      throw new PgferryError('promote-failed', `target: the standby did not finish its promotion within ${PROMOTE_TIMEOUT_MS / 1000} s`, {
        side: 'target',
        fix: "read the standby's log; it may still finish promoting: the source stays frozen until pg_is_in_recovery() is false there, or until cleanup --physical --unfreeze-source",
      });
    }
    await sleep(2);
  }
}

const PROMOTE_TIMEOUT_MS = 60_000;

/** The promoted server commits a write: a transaction id assigned and committed. */
async function assertWrites(target: pg.Client): Promise<void> {
  try {
    await target.query('BEGIN READ WRITE');
    await target.query('SELECT txid_current()');
    await target.query('COMMIT');
  } catch (error) {
    await target.query('ROLLBACK').catch(() => undefined);
    throw new PgferryError('promote-failed', `target: promoted, but a write failed: ${messageOf(error)}`, {
      side: 'target',
      fix: "read the new primary's log; the source stays frozen",
    });
  }
}

function pauseTooLong(pool: PoolSwitch): PgferryError {
  return new PgferryError(
    'pause-limit',
    `pgbouncer: clients waited ${Math.round(pool.pausedMs)} ms in the pause, past --max-pause; the cut-over was undone`,
    {
      fix: 'PgBouncer is resumed on the source and the freeze lifted; run the cut-over again when the standby is closer, or give --max-pause more',
    },
  );
}

async function liftAfterFailure(source: pg.Client, log: Logger): Promise<void> {
  try {
    const record = await serverFreezeRecord(source);
    if (record) await liftServerFreeze(source, record);
    log.warn('the cut-over failed before the promotion: the freeze is lifted, the standby keeps streaming');
  } catch (error) {
    log.error({ error: messageOf(error) }, 'the freeze could not be lifted: run pgferry cleanup --physical --unfreeze-source');
  }
}
