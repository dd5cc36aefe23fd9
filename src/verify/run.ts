import { Scope } from '../catalog/index.js';
import { PgferryError, messageOf, type Side } from '../errors.js';
import { DEFAULT_JOBS, openAll } from '../plumbing/index.js';
import { formatLsn, type Lsn } from '../replication/index.js';
import { checkGroup, groupSmallTables, SMALL_TABLE_BYTES } from './check-group.js';
import { checkTable, countRows, type CheckSettings, type TableCheck } from './check-table.js';
import { chooseHashFunction } from './hash-sql.js';
import { laterPosition, readFollowing, recheckTable, waitForTarget, type Following } from './recheck.js';
import { tableResult } from './report.js';
import { compareSchema } from './schema-diff.js';
import { compareSequences, sequenceDiffers, setByTheStep } from './sequences.js';
import { closeLane, openLane, type Lane } from './session.js';
import { matchTargetTypes, readTablesToVerify, tableNamesOnTarget, type TableToVerify } from './tables.js';
import type { SchemaDifference, VerifyOptions, VerifyReport } from './types.js';

/** Like clone's default: one lane per core, at least two, at most eight. */
const DEFAULT_MAX_DIFFERENCES = 100;
const DEFAULT_ROWS_PER_RANGE = 1_000_000;
const DEFAULT_RECHECK_TIMEOUT_SECONDS = 60;
/** Round 1 re-reads tables whose differences were cut at maxDifferences; round 2 rechecks by key. */
const RECHECK_ROUNDS = 2;

/**
 * Compares the target with the source: every table in scope by content (or by count), the
 * sequences, and (in full mode) the schema. Bad input (a pattern naming no table, a side that
 * can't be reached) throws a PgferryError; a table that can't be compared is reported with
 * status 'error' and the rest are still compared.
 */
export async function verify(options: VerifyOptions): Promise<VerifyReport> {
  const started = performance.now();
  const log = options.logger;
  const scope = new Scope(options.filter);
  const jobs = options.jobs ?? DEFAULT_JOBS;
  const maxDifferences = options.maxDifferences ?? DEFAULT_MAX_DIFFERENCES;
  const notes: string[] = [];
  // Every connection is opened at once, while the control lane reads the catalogs: each one
  // costs a round of authentication, and the cut-over runs this with writes frozen.
  const working = settle(openLanes(options, jobs));
  const control = await openLane(options.source, options.target).catch(async (error: unknown) => {
    await working().then(
      (lanes) => Promise.all(lanes.map(closeLane)),
      () => undefined,
    );
    throw error;
  });
  try {
    // Started now, awaited at the end: the schema is read on sessions of its own meanwhile.
    const schema = settle(
      options.mode === 'full' && options.compareSchema !== false
        ? compareSchema(options.source, options.target, scope)
        : Promise.resolve([] as SchemaDifference[]),
    );
    const [hash, { tables: listed, all }, onTarget] = await Promise.all([
      options.mode === 'full' ? chooseHashFunction(control) : Promise.resolve('md5' as const),
      side('source', 'listing the tables in scope', () => readTablesToVerify(control.source, scope)),
      side('target', 'listing the tables in scope', () => tableNamesOnTarget(control.target, scope)),
    ]);
    if (options.mode === 'full' && hash === 'md5')
      notes.push('the servers hash text differently (another byte order?): rows were hashed with md5, which is slower');
    scope.assertPatternsMatch(all, 'the source database');
    const [tables, following] = await Promise.all([
      hash === 'typed'
        ? side('target', 'reading the column types', () => matchTargetTypes(control.target, listed))
        : Promise.resolve(listed),
      // The cut-over verifies with writes frozen and its sequences just set: exact, sequences included.
      options.recheckWhileSyncing === false
        ? Promise.resolve<Following>({ streaming: false, sequencesSetAt: null })
        : readFollowing(control.target),
    ]);
    const syncing = following.streaming;
    log.info({ tables: tables.length, mode: options.mode, hash, jobs, syncing }, 'verifying');
    const sequences = settle(compareSequences(control.source, control.target, scope));

    const settings: CheckSettings = {
      mode: options.mode,
      hash,
      rowsPerRange: options.rowsPerRange ?? DEFAULT_ROWS_PER_RANGE,
      maxDifferences,
      signal: options.signal,
    };
    const present = (t: TableToVerify) => onTarget.has(`${t.schema}\u0000${t.table}`);
    // Big tables one by one, the biggest first; small ones in groups of one snapshot and query each (check-group.ts).
    const byLargest = [...tables].sort((a, b) => b.bytes - a.bytes);
    const groupable = (t: TableToVerify) => present(t) && t.readable && t.bytes <= SMALL_TABLE_BYTES;
    const work: TableToVerify[][] = [
      ...byLargest.filter((t) => !groupable(t)).map((t) => [t]),
      ...groupSmallTables(byLargest.filter(groupable)),
    ];
    let checks = (
      await onLanes(
        await working(),
        work,
        async (lane, group) => {
          const done =
            group.length > 1
              ? await checkGroup(lane, group, settings)
              : [present(group[0]!) ? await checkTable(lane, group[0]!, settings) : await missingOnTarget(lane, group[0]!)];
          for (const check of done) {
            log.debug(
              {
                table: check.table.name,
                status: check.status,
                sourceRows: check.sourceRows,
                targetRows: check.targetRows,
                seconds: check.seconds,
              },
              'table compared',
            );
          }
          return done;
        },
        options.signal,
      )
    ).flat();

    if (syncing) {
      const outcome = await recheck(options, control, jobs, checks, settings);
      checks = outcome.checks;
      notes.push(...outcome.notes);
    }

    // On a target that follows its source, a sequence behind is what the cut-over (or the return) sets, not a difference.
    const sequenceResults = setByTheStep(await sequences(), following.sequencesSetAt);
    const deferred = sequenceResults.filter((s) => s.setAt !== undefined).length;
    if (deferred > 0)
      notes.push(
        following.sequencesSetAt === 'return'
          ? `${deferred} sequence(s) behind are set at the return: this database follows the new primary through the way back, whose stream carries no sequence values; pgferry cutover with the sides swapped sets them`
          : `${deferred} sequence(s) behind are set at the cut-over: sync carries no sequence values; pgferry cutover sets them on the target`,
      );
    const schemaResults = await schema();
    const results = checks.map((c) => tableResult(c, maxDifferences)).sort((a, b) => a.name.localeCompare(b.name));
    for (const r of results)
      if (r.truncated) notes.push(`${r.name}: more than ${maxDifferences} rows differ; the first ${maxDifferences} are named`);
    const identical =
      results.every((t) => t.status === 'identical') && !sequenceResults.some(sequenceDiffers) && schemaResults.length === 0;
    return {
      identical,
      mode: options.mode,
      seconds: Number(((performance.now() - started) / 1000).toFixed(3)),
      tables: results,
      sequences: sequenceResults,
      schema: schemaResults,
      notes,
    };
  } finally {
    await Promise.all([
      closeLane(control),
      working().then(
        (lanes) => Promise.all(lanes.map(closeLane)),
        () => undefined,
      ),
    ]);
  }
}

async function missingOnTarget(lane: Lane, table: TableToVerify): Promise<TableCheck> {
  const started = performance.now();
  const rows = await countRows(lane.source, table);
  return {
    table,
    status: 'missing-on-target',
    sourceRows: rows,
    targetRows: 0,
    seconds: (performance.now() - started) / 1000,
    keyed: [],
    keyless: [],
    truncated: false,
    position: null,
  };
}

/**
 * While sync streams, the source moves during the check: a difference may be a change the
 * target has not applied yet. Wait until the target has applied past the source position of
 * the first check, then look again; only what persists is a difference.
 */
async function recheck(
  options: VerifyOptions,
  control: Lane,
  jobs: number,
  first: TableCheck[],
  settings: CheckSettings,
): Promise<{ checks: TableCheck[]; notes: string[] }> {
  const notes: string[] = [];
  const checks = new Map(first.map((c) => [c.table.name, c]));
  const timeoutMs = (options.recheckTimeoutSeconds ?? DEFAULT_RECHECK_TIMEOUT_SECONDS) * 1000;
  const deadline = performance.now() + timeoutMs;
  const seen = first.filter((c) => c.status === 'different').length;
  let pending = first.filter((c) => c.status === 'different');
  for (let round = 1; round <= RECHECK_ROUNDS && pending.length > 0; round++) {
    const position = pending.reduce<Lsn | null>((p, c) => laterPosition(p, c.position), null);
    if (position === null) break;
    const waited = await waitForTarget(control.target, position, Math.max(0, deadline - performance.now()), options.signal);
    if (!waited.passed) {
      notes.push(
        `sync is streaming, but the target (applied ${waited.applied === null ? 'nothing' : formatLsn(waited.applied)}) did not pass the source position ${formatLsn(position)} within ${timeoutMs / 1000} s: ` +
          `${pending.map((c) => c.table.name).join(', ')} reported as first seen, not rechecked`,
      );
      break;
    }
    const lanes = await openLanes(options, Math.min(jobs, pending.length));
    const again = await onLanes(
      lanes,
      pending,
      (lane, check) =>
        round === 1 && check.truncated ? checkTable(lane, check.table, settings) : recheckTable(lane, check, settings.hash),
      options.signal,
    ).finally(() => Promise.all(lanes.map(closeLane)));
    for (const [i, c] of again.entries()) {
      const before = pending[i]!;
      if (c.status === 'different' && c.keyed.length === 0 && c.keyless.length === 0 && c.sourceRows !== before.sourceRows) {
        notes.push(
          `${c.table.name}: the source kept writing during the check, so its row counts were never taken at one position; verify again with writes stopped (the cut-over does) or with --mode full`,
        );
      }
      checks.set(c.table.name, c);
    }
    // A table read afresh (its differences were cut short) has its new differences rechecked next round.
    pending = again.filter((c, i) => c.status === 'different' && round === 1 && pending[i]!.truncated);
  }
  const left = [...checks.values()].filter((c) => c.status === 'different').length;
  if (seen > 0) {
    notes.push(
      `sync is streaming: ${seen} table(s) differed at the first check; after the target applied past the source's position, ${left} still differ`,
    );
  }
  return { checks: [...checks.values()], notes };
}

/** Opens `count` lanes at once; if any fails, closes those that opened and throws its error. */
async function openLanes(options: VerifyOptions, count: number): Promise<Lane[]> {
  return openAll(
    Array.from({ length: count }, () => openLane(options.source, options.target)),
    closeLane,
  );
}

/** Runs `work` over `items` on the lanes given, each lane taking item after item; the caller closes them. */
export async function onLanes<T, R>(
  lanes: readonly Lane[],
  items: readonly T[],
  work: (lane: Lane, item: T) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (lane: Lane) => {
    while (next < items.length) {
      signal?.throwIfAborted();
      const index = next++;
      results[index] = await work(lane, items[index]!);
    }
  };
  await Promise.all(lanes.slice(0, Math.max(1, Math.min(lanes.length, items.length))).map(worker));
  return results;
}

/** A promise whose failure is held until it is awaited, so an early rejection is not "unhandled". */
function settle<T>(promise: Promise<T>): () => Promise<T> {
  const held = promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  return async () => {
    const outcome = await held;
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  };
}

export async function side<T>(which: Side, what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof PgferryError) throw error;
    throw new PgferryError('query', `${which}: ${what} failed: ${messageOf(error)}`, {
      side: which,
      fix: "check the role's privileges on the system catalogs; run with --debug for details",
      cause: error,
    });
  }
}
