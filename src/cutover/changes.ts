import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { connect } from '../config/index.js';
import { messageOf, PgferryError } from '../errors.js';
import type { Logger } from '../log/index.js';
import { closeClient, sleep } from '../plumbing/index.js';
import { formatLsn, type Lsn } from '../replication/index.js';
import {
  endRecording,
  readRecordedPage,
  readSyncState,
  recordingPosition,
  recordingStart,
  renewRecording,
  requestRecording,
  syncIsStreaming,
  type RecordedCursor,
  type RecordedPage,
} from '../state/index.js';
import {
  ChangeChecker,
  mergeChangeReports,
  sequenceDiffers,
  verify,
  type ChangeCheckReport,
  type KeylessRead,
  type VerifyReport,
} from '../verify/index.js';
import type { CutoverOptions } from './context.js';
import { flushSourceWal } from './fence.js';
import { CheckIndexes } from './narrowing-indexes.js';
import { round } from './steps.js';

/**
 * `--verify changes` (the default): the content check whose cost inside the freeze does not
 * grow with the database.
 *
 * Before the freeze, while writes go on: sync is asked to record the keys of the rows it
 * applies, in the same target transaction as the rows (state/recording.ts), from a position
 * it writes down. Then `verify --mode full` runs while sync streams, and must find the sides
 * identical: a row applied wrongly before recording began is caught there. Every row applied
 * after is in the record. Then the rows recorded so far are compared by key, again while sync
 * streams, in passes, each covering what the one before left: each pass is shorter than the
 * last, so the record left for the freeze covers only the last moments before it.
 *
 * Inside the freeze, once the fence is applied: the rows recorded since the last pass are
 * compared on both sides by content, exactly (the source no longer moves). A table without a key
 * is compared by the copies each side holds of its changed rows' images: through an index led
 * by one of its columns where it has one, else by reading it through (only reading the target's
 * rows shows one damaged there; the passes warn of such a table). A table sync could not name
 * rows of (a TRUNCATE, a definition change) is compared whole. Either costs in proportion to that
 * table alone. Every pass, and the check inside the freeze, reads the record page by page.
 *
 * The request carries a lease, renewed while the cut-over runs: killed, it leaves a request
 * that sync drops once the lease runs out. Ended or failed, the cut-over removes it itself.
 */

/** How long a request stands without being renewed. */
const LEASE_MS = 30_000;
const RENEW_EVERY_MS = 5_000;
/** Sync may have seen nothing to apply: a message on the source gives it a batch to say it records from. */
const NUDGE_EVERY_MS = 250;
/** While waiting for sync to start recording, how often its state is read for a problem. */
const SYNC_LOOK_EVERY_MS = 1_000;
/**
 * Passes over the recorded rows before the freeze: at most this many; fewer once one is this
 * quick, or once the rows left stop shrinking (the writes of one pass's own duration: a source
 * committing asynchronously sends its changes only as its WAL writer flushes them, every 200 ms
 * by default, so a pass that rechecks a row in motion lasts about that long whatever it holds).
 */
const MAX_PASSES = 4;
const QUICK_PASS_MS = 150;
const SHRINKING = 0.75;
/** The lease inside the freeze, beyond the drain and the fence: the check comes right after them. */
const FREEZE_LEASE_MARGIN_MS = 60_000;
/**
 * Recorded rows read and compared at a time: a verify that ran an hour under heavy writes leaves
 * millions, which must not be one query's answer nor one check's memory. The environment can
 * lower it (tests make a few rows span several pages).
 */
const PAGE_ROWS = 5_000;
const PAGE_ROWS_VARIABLE = 'PGFERRY_RECORDED_PAGE_ROWS';

function pageRows(): number {
  const given = process.env[PAGE_ROWS_VARIABLE];
  if (given === undefined || given === '') return PAGE_ROWS;
  const rows = Number(given);
  if (!Number.isInteger(rows) || rows < 1)
    throw new PgferryError('usage', `${PAGE_ROWS_VARIABLE}=${given} is not a whole number of rows`, {
      fix: `unset ${PAGE_ROWS_VARIABLE}, or set it to a positive whole number`,
    });
  return rows;
}

/** What was compared before the freeze. */
export interface ChangesAhead {
  /** The position sync recorded from. */
  readonly recordedFrom: string;
  /** The full verify while sync streamed. */
  readonly verify: { readonly identical: boolean; readonly seconds: number; readonly tables: number; readonly notes: readonly string[] };
  /** Each pass over the rows recorded since the one before. */
  readonly passes: ReadonlyArray<{
    readonly keys: number;
    /** Pages of recorded rows the pass read and compared, one after another. */
    readonly pages: number;
    readonly wholeTables: readonly string[];
    readonly ms: number;
  }>;
}

/** What was compared inside the freeze. */
export interface ChangesInFreeze {
  /** The rows recorded past this position (where the last pass before the freeze ended). */
  readonly after: string;
  readonly keysChecked: number;
  /** Tables with rows compared by key. */
  readonly tables: readonly string[];
  /** Tables compared whole, and why. */
  readonly wholeTables: ReadonlyArray<{ readonly table: string; readonly reason: string }>;
  /**
   * Tables without a key whose changed rows were counted by their images: through an index on
   * each side (reading the rows that share the images' values in its first column), or, where
   * an index is null, by reading that side's table through.
   */
  readonly keyless: readonly KeylessRead[];
  readonly pages: number;
  readonly sequences: number;
  readonly ms: number;
}

export class ChangeRecord {
  private renewal: NodeJS.Timeout | undefined;
  private lost: string | undefined;
  private checkedUpTo: Lsn;
  private ended = false;
  private readonly warned = new Set<string>();
  /** Made for the check by indexKeyless, dropped by end. */
  private indexes: CheckIndexes | undefined;
  /** The control session's queries, one after another: the lease's renewals run beside the passes. */
  private controlQueue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly id: string,
    private readonly control: pg.Client,
    private readonly checker: ChangeChecker,
    private readonly from: Lsn,
    private readonly log: Logger,
  ) {
    this.checkedUpTo = from;
  }

  /**
   * Asks sync to record, and waits until it says from where (within `timeoutMs`); meanwhile the
   * checker's sessions open and read the tables.
   */
  static async begin(options: CutoverOptions, source: pg.Client, log: Logger): Promise<ChangeRecord> {
    const id = randomUUID();
    const control = (await connect(options.target)).client;
    let checker: ChangeChecker | undefined;
    const opening = ChangeChecker.open({ source: options.source, target: options.target, filter: options.filter, logger: log });
    opening.catch(() => undefined);
    try {
      await requestRecording(control, id, LEASE_MS);
      const from = await acknowledged(control, source, id, options.fenceTimeoutMs, options.signal);
      checker = await opening;
      log.info({ from: formatLsn(from) }, 'sync records the rows it applies');
      const record = new ChangeRecord(id, control, checker, from, log);
      record.keepRenewing();
      return record;
    } catch (error) {
      await opening.then(
        (c) => c.close(),
        () => undefined,
      );
      await endRecording(control, id).catch(() => undefined);
      await closeClient(control);
      throw error;
    }
  }

  private onControl<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    const next = this.controlQueue.then(() => work(this.control));
    this.controlQueue = next.catch(() => undefined);
    return next;
  }

  /** Renews the lease until the freeze; a renewal that finds the request gone marks it lost. */
  private keepRenewing(): void {
    this.renewal = setInterval(() => {
      this.onControl((client) => renewRecording(client, this.id, LEASE_MS)).then(
        (held) => {
          if (!held) this.lost ??= 'sync dropped the request to record (its lease ran out)';
        },
        (error: unknown) => this.log.warn({ error: messageOf(error) }, 'could not renew the request to record; trying again'),
      );
    }, RENEW_EVERY_MS);
  }

  private assertHeld(): void {
    if (this.lost !== undefined) throw recordingLost(this.lost);
  }

  /**
   * Indexes the keyless tables no index of a side can narrow, on that side, for the check inside
   * the freeze (narrowing-indexes.ts); dropped by `end`. While the lease is renewed: a build
   * lasts as long as its table. Returns how many were made.
   */
  async indexKeyless(options: CutoverOptions): Promise<number> {
    this.indexes = await CheckIndexes.make(options.source, options.target, this.checker, this.log);
    this.assertHeld();
    return this.indexes.made.length;
  }

  /** `verify --mode full` while sync streams: the sides must be identical before anything is frozen. */
  async verifyAhead(options: CutoverOptions): Promise<VerifyReport> {
    const report = await verify({
      source: options.source,
      target: options.target,
      filter: options.filter,
      mode: 'full',
      logger: options.logger,
      recheckWhileSyncing: true,
      // Rows, as `counts` did (by content now): the schema is `--verify full`'s and `pgferry verify`'s to compare.
      compareSchema: false,
      signal: options.signal,
    });
    this.assertHeld();
    if (!report.identical) throw differsAhead(report);
    return report;
  }

  /** Passes over the rows recorded since the last, while sync streams, until one is quick. */
  async narrow(signal: AbortSignal | undefined): Promise<Array<ChangesAhead['passes'][number]>> {
    const passes: Array<ChangesAhead['passes'][number]> = [];
    for (let pass = 1; pass <= MAX_PASSES; pass++) {
      const started = performance.now();
      const { report, upTo, pages } = await this.checkRecorded({ streaming: true, sequences: false, signal });
      this.assertHeld();
      if (!report.identical) throw changesDiffer(report, 'before the freeze');
      this.checkedUpTo = upTo;
      const ms = round(performance.now() - started);
      passes.push({ keys: report.keysChecked, pages, wholeTables: report.wholeTables.map((w) => w.table), ms });
      this.log.info(
        { pass, keys: report.keysChecked, pages, wholeTables: report.wholeTables.length, ms },
        'rows changed since the last look are equal',
      );
      this.warnOfTableReads(report.keyless);
      const before = passes.length > 1 ? passes[passes.length - 2]!.keys : Infinity;
      if (ms < QUICK_PASS_MS || report.keysChecked > before * SHRINKING) break;
    }
    return passes;
  }

  /** Just before the freeze: renewals stop (nothing may share the freeze's sessions), the lease covers the freeze. */
  async holdThroughFreeze(freezeLimitMs: number): Promise<void> {
    clearInterval(this.renewal);
    this.renewal = undefined;
    this.assertHeld();
    if (!(await this.onControl((client) => renewRecording(client, this.id, freezeLimitMs + FREEZE_LEASE_MARGIN_MS))))
      throw recordingLost('sync dropped the request to record (its lease ran out)');
  }

  /** Inside the freeze, the fence applied: the rows recorded since the last pass, compared exactly; and the sequences. */
  async checkInFreeze(signal: AbortSignal | undefined): Promise<{ report: ChangeCheckReport; summary: ChangesInFreeze }> {
    const started = performance.now();
    const after = this.checkedUpTo;
    const { report, pages } = await this.checkRecorded({ streaming: false, sequences: true, signal });
    const summary: ChangesInFreeze = {
      after: formatLsn(after),
      keysChecked: report.keysChecked,
      tables: report.tables.filter((t) => !report.wholeTables.some((w) => w.table === t.name)).map((t) => t.name),
      wholeTables: report.wholeTables,
      keyless: report.keyless,
      pages,
      sequences: report.sequences.length,
      ms: round(performance.now() - started),
    };
    if (!report.identical) throw changesDiffer(report, 'at the fence');
    return { report, summary };
  }

  /**
   * The rows recorded past the last look, up to the target's applied position read first, page by
   * page in the order they were recorded: each page is compared before the next is read, so memory
   * and each query stay bounded however much was recorded. A page that differs ends the check (its
   * report says where); the sequences, when asked, are compared with the last page.
   */
  private async checkRecorded(how: {
    readonly streaming: boolean;
    readonly sequences: boolean;
    readonly signal: AbortSignal | undefined;
  }): Promise<{ report: ChangeCheckReport; upTo: Lsn; pages: number }> {
    const after = this.checkedUpTo;
    const position = await this.onControl((client) => recordingPosition(client, this.id));
    if (!position?.present) throw recordingLost('the request to record is gone from the target');
    const limit = pageRows();
    const reports: ChangeCheckReport[] = [];
    let cursor: RecordedCursor | null = null;
    do {
      const range = { after, upTo: position.appliedLsn, cursor, limit };
      const page: RecordedPage = await this.onControl((client) => readRecordedPage(client, this.id, range));
      if (!page.present) throw recordingLost('the request to record is gone from the target');
      cursor = page.next;
      const report = await this.checker.check(page.rows, { ...how, sequences: how.sequences && cursor === null });
      reports.push(report);
      if (!report.identical) break;
    } while (cursor !== null);
    return { report: mergeChangeReports(reports), upTo: position.appliedLsn, pages: reports.length };
  }

  /** Said once per table, before the freeze: what the check inside it will read whole. */
  private warnOfTableReads(keyless: readonly KeylessRead[]): void {
    for (const k of keyless) {
      const sides = (['source', 'target'] as const).filter((side) => k.index[side] === null);
      if (sides.length === 0 || this.warned.has(k.table)) continue;
      this.warned.add(k.table);
      this.log.warn(
        { table: k.table, sides },
        `${k.table} has no key and no index on the ${sides.join(' and the ')} to find its changed rows by: inside the freeze, ` +
          `counting them reads that table through, in proportion to its size; an index on one of its columns ` +
          `(the more distinct its values the better), on both sides, keeps that read to the rows that changed`,
      );
    }
  }

  /** Its sessions on the source: the drain must not end them. */
  get sourcePids(): readonly number[] {
    return this.checker.sourcePids;
  }

  /** The position sync records from. */
  get recordedFrom(): string {
    return formatLsn(this.from);
  }

  /** The request is withdrawn and what sync recorded removed; sync stops recording at once. Never throws. */
  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.renewal);
    await this.onControl((client) => endRecording(client, this.id)).catch((error: unknown) =>
      this.log.warn(
        { error: messageOf(error) },
        'could not withdraw the request to record the rows applied: sync drops it itself once its lease runs out',
      ),
    );
    await Promise.all([this.checker.close().catch(() => undefined), closeClient(this.control)]);
    await this.indexes?.drop();
  }
}

/** Waits for sync to write where it records from; nudges it with a message on the source, as an idle source gives it no batch. */
async function acknowledged(control: pg.Client, source: pg.Client, id: string, timeoutMs: number, signal?: AbortSignal): Promise<Lsn> {
  const deadline = Date.now() + timeoutMs;
  let nudged = 0;
  let looked = Date.now();
  for (;;) {
    const { present, from } = await recordingStart(control, id);
    if (from !== null) return from;
    if (!present) throw recordingLost('the request to record is gone from the target (another cut-over replaced it?)');
    if (Date.now() - looked >= SYNC_LOOK_EVERY_MS) {
      looked = Date.now();
      await assertSyncApplies(control);
    }
    if (signal?.aborted) throw new PgferryError('interrupted', 'interrupted', { fix: 'run pgferry cutover again when ready' });
    if (Date.now() > deadline)
      throw new PgferryError(
        'fence-timeout',
        `target: sync did not start recording the rows it applies within ${(timeoutMs / 1000).toFixed(1)} s (nothing was frozen)`,
        {
          side: 'target',
          fix: 'check that pgferry sync is running, of this version, and not stuck (pgferry status, its log); then run the cut-over again, or use --verify counts',
        },
      );
    if (Date.now() - nudged >= NUDGE_EVERY_MS) {
      nudged = Date.now();
      await flushSourceWal(source);
    }
    await sleep(10);
  }
}

/** A sync that stopped, or that cannot apply (it says why on the target), will not start recording: said at once. */
async function assertSyncApplies(control: pg.Client): Promise<void> {
  const state = await readSyncState(control);
  if (state?.problem)
    throw new PgferryError(
      'not-syncing',
      `target: sync cannot apply changes, so it cannot record them: ${state.problem.text} (nothing was frozen)`,
      {
        side: 'target',
        fix: 'fix what sync reports (pgferry status, its log), then run the cut-over again',
      },
    );
  if (!syncIsStreaming(state))
    throw new PgferryError('not-syncing', 'target: pgferry sync stopped streaming before it started recording (nothing was frozen)', {
      side: 'target',
      fix: 'start pgferry sync again, and run the cut-over while it streams',
    });
}

function recordingLost(why: string): PgferryError {
  return new PgferryError('query', `target: ${why}, so the rows applied since are not all known`, {
    side: 'target',
    fix: 'run the cut-over again (nothing was left frozen by this)',
  });
}

function differsAhead(report: VerifyReport): PgferryError {
  const different = report.tables.filter((t) => t.status !== 'identical');
  const shown = [
    ...different.slice(0, 5).map((t) => `${t.name} (${t.status}${t.error ? `: ${t.error}` : describeRows(t.differences)})`),
    ...report.sequences.filter((s) => s.status === 'missing-on-target').map((s) => `sequence ${s.name} missing on the target`),
    ...report.schema.slice(0, 5).map((s) => `${s.object} ${s.kind}`),
  ];
  return new PgferryError(
    'target-differs',
    `the target differs from the source before the freeze (verify --mode full while sync streams): ${shown.join(', ')}${different.length > 5 ? ` and ${different.length - 5} more tables` : ''}; nothing was frozen`,
    {
      side: 'target',
      fix: 'run pgferry verify --source … --target … to see the rows; find what wrote to the target besides sync; do not point the application at the target',
    },
  );
}

function changesDiffer(report: ChangeCheckReport, when: string): PgferryError {
  const different = report.tables.filter((t) => t.status !== 'identical');
  const shown = different.slice(0, 5).map((t) => `${t.name} (${t.status}${describeRows(t.differences)})`);
  const sequences = report.sequences.filter(sequenceDiffers).map((s) => `sequence ${s.name} ${s.status}`);
  return new PgferryError(
    'target-differs',
    `the target differs from the source ${when}, in rows sync applied: ${[...shown, ...sequences, ...report.notes].join(', ')}${different.length > 5 ? ` and ${different.length - 5} more tables` : ''}`,
    {
      side: 'target',
      fix: 'run pgferry verify --source … --target … to see the rows; find what wrote to the target besides sync; do not point the application at the target',
    },
  );
}

function describeRows(differences: ReadonlyArray<{ kind: string; key: Record<string, string | null> | null; columns?: string[] }>): string {
  if (differences.length === 0) return '';
  const shown = differences
    .slice(0, 3)
    .map((d) => `${d.kind} ${JSON.stringify(d.key)}${d.columns && d.columns.length > 0 ? ` (${d.columns.join(', ')})` : ''}`);
  return `: ${shown.join('; ')}${differences.length > 3 ? ` and ${differences.length - 3} more` : ''}`;
}
