import type pg from 'pg';
import { Scope, displayName, serverMajor, tablesOnTarget, type QualifiedName, type ScopeFilter } from '../catalog/index.js';
import { connect, describeConnection, type ConnectionSpec } from '../config/index.js';
import { PgferryError, messageOf, usageError } from '../errors.js';
import type { Logger } from '../log/index.js';
import { closeClient, inTransaction, openAll, serverDetail, setConfigSql, sleep, sqlState, SQLSTATE, TEXT_VALUE_SETTINGS, quoteLiteral, quoteQualified } from '../plumbing/index.js';
import { readSourceSchema, SchemaApplier, extractSchema, type ExtractedSchema, type SchemaObject } from '../schema/index.js';
import { cloneState, dropStateSchema, ensureCopyState, finishClone, halfDoneSplitTables, resetTableUnits, startClone, storedPlan } from '../state/index.js';
import { chooseFormat, copyUnit, type UnitCopy } from './pipe.js';
import { checkedPredicate, EXTENSION_ROWS_UNIT, extensionRowsUnit, partsFor, planUnits, type CopyUnit, type TableToCopy } from './plan.js';
import type { CopyProgress } from './progress.js';
import { readSequenceValues, setSequenceValues } from './sequences.js';
import { readExtensionConfigTables, readPartitionParents, readSourceTables, readTargetColumns, splitFor, type SourceTable } from './source-tables.js';

export interface CloneOptions {
  readonly source: ConnectionSpec;
  readonly target: ConnectionSpec;
  readonly filter: ScopeFilter;
  /** Parallel COPY pipes. */
  readonly jobs: number;
  /** Parallel index and constraint builds (and ANALYZE). */
  readonly indexJobs: number;
  /** Tables larger than this many bytes are split into ranges of about this size. */
  readonly splitThreshold: number;
  readonly resume: boolean;
  readonly dropExisting: boolean;
  readonly noOwner: boolean;
  readonly noAcl: boolean;
  readonly progress: CopyProgress;
  readonly logger: Logger;
  /**
   * Copy at this exported snapshot (a replication slot's, for sync) instead of one of the
   * clone's own. Its exporter must stay open and idle until the clone returns.
   */
  readonly snapshot?: string;
  /** Runs on the target once pre-data and pgferry's copy state exist, before any row is copied. */
  readonly onCopyStarting?: (target: pg.Client) => Promise<void>;
}

export interface TableSummary {
  readonly table: string;
  readonly rows: number;
  readonly bytes: number;
  readonly seconds: number;
  readonly format: 'binary' | 'text';
  readonly units: number;
}

export interface CloneSummary {
  readonly tables: readonly TableSummary[];
  readonly phases: ReadonlyArray<{ readonly phase: string; readonly seconds: number }>;
  readonly sequences: number;
  readonly notes: readonly string[];
  readonly unsupported: ExtractedSchema['unsupported'];
  readonly skipped: ExtractedSchema['skipped'];
  readonly resumed: boolean;
}

const tableKey = (t: QualifiedName) => `${t.schema}\u0000${t.name}`;

/**
 * `pgferry clone`: pre-data, then every table's rows at one snapshot through parallel COPY
 * pipes, each table's indexes and keys built as soon as its last range lands, then sequences,
 * materialized views, the rest of post-data, and ANALYZE.
 */
export async function clone(options: CloneOptions): Promise<CloneSummary> {
  const phases: Array<{ phase: string; seconds: number }> = [];
  const timed = async <T>(phase: string, work: () => Promise<T>): Promise<T> => {
    options.progress.phase(phase);
    const started = performance.now();
    const result = await work();
    phases.push({ phase, seconds: (performance.now() - started) / 1000 });
    return result;
  };
  const scope = new Scope(options.filter);
  // Every session the clone opens is closed at its end, whatever happened.
  const opened: pg.Client[] = [];
  const open = async (spec: ConnectionSpec, setup: string) => {
    const { client } = await connect(spec);
    opened.push(client);
    await client.query(setup);
    return client;
  };
  // Text COPY (tables with types binary COPY can't carry) prints values on the source and
  // parses them on the target: both sessions pin the settings that text depends on.
  // Row security off: a policy must never filter what is copied; a role subject to one gets
  // an error naming the table instead (pgferry check names them beforehand).
  const TARGET_SESSION = setConfigSql({ ...TEXT_VALUE_SETTINGS, search_path: '', synchronous_commit: 'off', row_security: 'off' });
  const SOURCE_SESSION = setConfigSql({ ...TEXT_VALUE_SETTINGS, search_path: '', row_security: 'off' });

  try {
    const schema = await timed('read schema', () => readSourceSchema(options.source, scope));
    const admin = await open(options.target, TARGET_SESSION);
    const planner = await open(options.source, SOURCE_SESSION);
    const sourceTables = await readSourceTables(planner, scope);
    scope.assertPatternsMatch(sourceTables, 'the source database');

    const state = await decideStart(admin, options, sourceTables, scope);
    const resumed = state === 'interrupted';

    const applier = new SchemaApplier(schema, {
      noOwner: options.noOwner,
      noAcl: options.noAcl,
      readTargetSchema: async () => extractSchema(await open(options.target, TARGET_SESSION), scope),
    });
    await applier.prepare(admin);
    await timed('pre-data', () => applier.applySection(admin, 'pre-data'));
    await ensureCopyState(admin);
    await options.onCopyStarting?.(admin);

    // The snapshot every copy job reads at: held open by this transaction until the copy ends.
    await planner.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    let snapshot: string;
    if (options.snapshot === undefined) {
      snapshot = (await planner.query<{ id: string }>('SELECT pg_export_snapshot() AS id')).rows[0]!.id;
    } else {
      snapshot = options.snapshot;
      await planner.query(`SET TRANSACTION SNAPSHOT ${quoteLiteral(snapshot)}`);
    }

    // The user's rows of extensions' configuration tables travel too (CREATE EXTENSION made the tables).
    const copied = [...sourceTables, ...(await readExtensionConfigTables(planner, scope))];
    const units = await planOrResume(admin, planner, copied, options, resumed);
    const byTable = new Map(copied.map((t) => [t.qname, t]));
    const targetColumns = await readTargetColumns(admin, copied.map((t) => t.qname));
    const jobsByTable = new Map<string, Omit<UnitCopy, 'unit'>>();
    for (const t of copied) {
      const onTarget = targetColumns.get(t.qname);
      if (!onTarget) throw new PgferryError('query', `target: table ${t.qname} is missing after pre-data`, { side: 'target' });
      const missing = t.columns.filter((c) => !onTarget.has(c.name));
      if (missing.length > 0) {
        throw new PgferryError('query', `target: table ${t.qname} has no column ${missing.map((c) => c.name).join(', ')}`, {
          side: 'target',
          fix: 'add the columns on the target, or leave the table out with --exclude-table',
        });
      }
      jobsByTable.set(t.qname, { columns: t.columns.map((c) => c.name), binary: chooseFormat(t.columns, onTarget) });
    }

    const copyResults = new Map<string, { rows: number; bytes: number; seconds: number; units: number }>();
    const partitionParents = await readPartitionParents(planner);
    const postData = new PostDataScheduler(applier, schema, copied, partitionParents, options.logger);
    await timed('copy and indexes', async () => {
      const targets = await openAll(Array.from({ length: options.indexJobs }, () => open(options.target, INDEX_SESSION)), closeClient);
      postData.start(targets);
      const pending = units.filter((u) => !u.done);
      const remaining = new Map<string, number>();
      for (const u of pending) remaining.set(u.table, (remaining.get(u.table) ?? 0) + 1);
      for (const t of copied) if (!remaining.has(t.qname)) postData.tableLoaded(t);
      options.progress.start(pending.reduce((sum, u) => sum + u.estimatedBytes, 0), pending.length);
      const queue = [...pending];
      // A failed index or key stops the copy too: there is no point copying for hours first.
      postData.onFailure = () => (queue.length = 0);
      const worker = async () => {
        const [source, target] = await openAll([open(options.source, SOURCE_SESSION), open(options.target, TARGET_SESSION)], closeClient);
        for (let unit = queue.shift(); unit; unit = queue.shift()) {
          options.progress.unitStarted(unit.table, unit.unit, unit.estimatedBytes);
          const job = { unit, ...jobsByTable.get(unit.table)! };
          let result;
          try {
            result = await copyUnit(source, target, job, snapshot, (n) => options.progress.bytes(unit!.table, unit!.unit, n));
          } catch (error) {
            queue.length = 0;
            const side = (error as { side?: 'source' | 'target' }).side ?? 'target';
            throw new PgferryError('query', `${side}: copying ${unit.table}${unit.unit === 'whole' ? '' : ` (${unit.unit})`} failed: ${messageOf(error)}`, {
              side,
              fix: isRowSecurityError(error)
                ? `the ${side} role is subject to the table's row-level security, which would hide rows: ALTER ROLE … BYPASSRLS (as a superuser), or ALTER TABLE ${unit.table} NO FORCE ROW LEVEL SECURITY if the role owns it; then run pgferry clone again with --resume`
                : 'fix the cause and run pgferry clone again with --resume: finished tables are kept',
              cause: error,
            });
          }
          options.progress.unitDone(unit.table, unit.unit, result.rows);
          const sum = copyResults.get(unit.table) ?? { rows: 0, bytes: 0, seconds: 0, units: 0 };
          copyResults.set(unit.table, { rows: sum.rows + result.rows, bytes: sum.bytes + result.bytes, seconds: sum.seconds + result.seconds, units: sum.units + 1 });
          const left = remaining.get(unit.table)! - 1;
          remaining.set(unit.table, left);
          if (left === 0) postData.tableLoaded(byTable.get(unit.table)!);
        }
      };
      const workers = Array.from({ length: Math.max(1, options.jobs) }, worker);
      const outcome = await Promise.allSettled(workers);
      const failed = outcome.find((o): o is PromiseRejectedResult => o.status === 'rejected');
      if (failed) {
        await postData.cancel(POST_DATA_SETTLE_MS);
        throw failed.reason;
      }
      await postData.drain();
    });
    options.progress.stop();

    const sequences = await timed('sequences', async () => {
      const created = new Set(schema.objects.filter((o) => o.kind === 'sequence').map((o) => o.name));
      const values = await readSequenceValues(planner, created, new Set(sourceTables.map((t) => t.qname)));
      await planner.query('COMMIT');
      return setSequenceValues(admin, values);
    });
    await timed('materialized views', async () => {
      for (const view of schema.materializedViews) await admin.query(`REFRESH MATERIALIZED VIEW ${view}`);
    });
    await timed('post-data', () => applier.applySection(admin, 'post-data'));
    await timed('analyze', async () => {
      // Tables are analyzed by the index jobs as soon as their indexes exist; this catches
      // whatever those jobs did not get to.
      const rest = sourceTables.filter((t) => !postData.analyzed.has(tableKey(t)));
      for (const t of rest) await admin.query(`ANALYZE ${t.qname}`);
    });
    await finishClone(admin);

    const stored = await storedPlan(admin);
    const tables = sourceTables.map((t) => {
      const mine = stored.filter((u) => u.table === t.qname);
      const now = copyResults.get(t.qname);
      return {
        table: t.qname,
        rows: now?.rows ?? 0,
        bytes: now?.bytes ?? 0,
        seconds: now?.seconds ?? 0,
        format: jobsByTable.get(t.qname)!.binary ? ('binary' as const) : ('text' as const),
        units: mine.length,
      };
    });
    return {
      tables,
      phases,
      sequences,
      notes: [...applier.result().notes, ...(resumed ? [RESUME_NOTE] : [])],
      unsupported: schema.unsupported,
      skipped: schema.skipped,
      resumed,
    };
  } finally {
    options.progress.stop();
    await Promise.all(opened.map((client) => closeClient(client)));
  }
}

const INDEX_SESSION = `SELECT set_config('search_path', '', false), set_config('synchronous_commit', 'off', false), set_config('row_security', 'off', false),
                              set_config('maintenance_work_mem', '256MB', false)`;

const RESUME_NOTE =
  'resumed: tables finished before the interruption were copied at the earlier snapshot; rows changed on the source in between may differ (run pgferry verify)';

type StartState = 'fresh' | 'interrupted';

/** Whether this run starts afresh or continues, and the refusals that protect data already on the target. */
async function decideStart(admin: pg.Client, options: CloneOptions, tables: readonly SourceTable[], scope: Scope): Promise<StartState> {
  let state = await cloneState(admin);
  if (options.dropExisting) {
    await dropExisting(admin, tables, scope);
    state = 'none';
  }
  if (state === 'finished') {
    throw usageError(
      `the target (${describeConnection(options.target)}) already holds a finished clone`,
      'use an empty target database, or pass --drop-existing to drop the tables in scope and copy again',
    );
  }
  if (state === 'interrupted') {
    if (!options.resume) {
      throw usageError('the target holds an interrupted clone', 'pass --resume to continue it (finished tables and ranges are kept), or --drop-existing to start over');
    }
    return 'interrupted';
  }
  const { nonEmptyTables, unreadableTables } = await tablesOnTarget(admin, tables);
  if (unreadableTables.length > 0) {
    throw usageError(
      `the target role cannot read ${unreadableTables.length} table(s) in scope: ${unreadableTables.slice(0, 10).map(displayName).join(', ')}`,
      'GRANT SELECT (and INSERT, TRUNCATE) on them to the target role, or leave them out with --exclude-table',
    );
  }
  const nonEmpty = nonEmptyTables.map(displayName);
  if (nonEmpty.length > 0) {
    throw usageError(
      `${nonEmpty.length} table(s) in scope already hold rows on the target: ${nonEmpty.slice(0, 10).join(', ')}${nonEmpty.length > 10 ? ', …' : ''}`,
      'use an empty target database, leave them out with --exclude-table, or pass --drop-existing to drop the tables in scope and copy again',
    );
  }
  return 'fresh';
}

async function dropExisting(admin: pg.Client, tables: readonly SourceTable[], scope: Scope): Promise<void> {
  const { rows } = await admin.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgferry')`,
  );
  const inScope = rows.filter((r) => scope.includes(r) || tables.some((t) => t.schema === r.schema && t.name === r.name));
  try {
    await inTransaction(admin, async () => {
      // No CASCADE: a view or a foreign key of a table out of scope is not pgferry's to drop.
      if (inScope.length > 0) await admin.query(`DROP TABLE IF EXISTS ${inScope.map(quoteQualified).join(', ')}`);
      await dropStateSchema(admin);
    });
  } catch (error) {
    if (sqlState(error) === SQLSTATE.dependentObjectsStillExist) {
      throw usageError(`--drop-existing: other objects on the target depend on tables in scope (${messageOf(error)}; ${serverDetail(error) ?? ''})`, 'drop those objects first, or widen the scope to include them');
    }
    throw error;
  }
}

/**
 * Ranges of one table copied at two snapshots don't add up: an UPDATE in between moves a row
 * to a page range (or changes its key into a range) not copied yet, and keeping the finished
 * ranges would copy it twice. A half-done split table is therefore emptied and its ranges
 * copied again at the new snapshot; finished tables are kept.
 */
async function planOrResumeFromStore(admin: pg.Client, tables: ReadonlyMap<string, SourceTable>): Promise<PlannedUnit[]> {
  const stored = await storedPlan(admin);
  const counts = new Map<string, number>();
  for (const u of stored) counts.set(u.table, (counts.get(u.table) ?? 0) + 1);
  return stored.map((u) => ({
    table: u.table,
    unit: u.unit,
    predicate: storedRange(u.predicate, tables.get(u.table)?.intKey),
    whole: u.unit === 'whole',
    // Taken from the source again, never from the stored plan.
    ...(u.unit === EXTENSION_ROWS_UNIT ? { rowFilter: tables.get(u.table)?.extensionRows?.filter ?? '' } : {}),
    estimatedBytes: (tables.get(u.table)?.bytes ?? 0) / (counts.get(u.table) ?? 1),
    done: u.done,
  }));
}

function storedRange(predicate: string | null, intKey: string | undefined): string | null {
  try {
    return checkedPredicate(predicate, intKey);
  } catch (error) {
    throw new PgferryError('usage', `target: ${messageOf(error)} (pgferry.copy_units was changed by hand?)`, {
      side: 'target',
      fix: 'run pgferry clone --drop-existing to copy again with a new plan',
    });
  }
}

async function restartHalfDoneSplitTables(admin: pg.Client): Promise<void> {
  const tables = await halfDoneSplitTables(admin);
  if (tables.length === 0) return;
  await inTransaction(admin, async () => {
    for (const table of tables) {
      await admin.query(`TRUNCATE ONLY ${table}`);
      await resetTableUnits(admin, table);
    }
  });
}

interface PlannedUnit extends CopyUnit {
  readonly done: boolean;
}

async function planOrResume(
  admin: pg.Client,
  planner: pg.Client,
  tables: readonly SourceTable[],
  options: CloneOptions,
  resumed: boolean,
): Promise<PlannedUnit[]> {
  if (resumed) {
    const stored = await storedPlan(admin);
    const planned = new Set(stored.map((u) => u.table));
    const now = new Set(tables.map((t) => t.qname));
    const added = [...now].filter((t) => !planned.has(t));
    const gone = [...planned].filter((t) => !now.has(t));
    if (added.length > 0 || gone.length > 0) {
      throw usageError(
        `the interrupted clone covered other tables than this run (${[...added.map((t) => `new: ${t}`), ...gone.map((t) => `gone: ${t}`)].slice(0, 5).join(', ')})`,
        'resume with the same --include/--exclude filters, or pass --drop-existing to start over',
      );
    }
    await restartHalfDoneSplitTables(admin);
    return planOrResumeFromStore(admin, new Map(tables.map((t) => [t.qname, t])));
  }

  const major = await serverMajor(planner);
  const toCopy: TableToCopy[] = [];
  for (const t of tables.filter((t) => t.extensionRows === undefined)) {
    const parts = partsFor(t.bytes, options.splitThreshold);
    toCopy.push({ qname: t.qname, bytes: t.bytes, splitBy: await splitFor(planner, t, parts, major) });
  }
  const units = [
    ...planUnits(toCopy, options.splitThreshold),
    ...tables.flatMap((t) => (t.extensionRows ? [extensionRowsUnit(t.qname, t.extensionRows.filter, t.bytes)] : [])),
  ];
  await startClone(admin, units.map((u, position) => ({ table: u.table, unit: u.unit, position, predicate: u.predicate })));
  return units.map((u) => ({ ...u, done: false }));
}

/** Deadlock, and a lock given up on: both mean "try again". */
const TRANSIENT_LOCK_ERRORS = new Set<string>([SQLSTATE.deadlockDetected, SQLSTATE.lockNotAvailable]);

/**
 * Post-data objects of different tables run side by side, and a foreign key locks both its
 * tables: two such statements can deadlock, and PostgreSQL then cancels one. Its transaction
 * was rolled back whole, so running it again is safe.
 */
async function retryOnDeadlock(work: () => Promise<void>, attempts = 5): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      const code = sqlState(error);
      if (attempt >= attempts || code === undefined || !TRANSIENT_LOCK_ERRORS.has(code)) throw error;
      await sleep(50 * attempt);
    }
  }
}

/**
 * Builds a table's post-data objects (indexes, keys, triggers…) on the index jobs as soon as
 * the table is loaded, in dependency order: an object runs once its table is loaded and every
 * post-data object it depends on exists. Objects that belong to no copied table (materialized
 * view indexes, grants, statistics) wait for the final post-data pass.
 */
/** How long a failed copy waits for the index builds in flight before it closes their sessions. */
const POST_DATA_SETTLE_MS = 10_000;

class PostDataScheduler {
  private readonly loaded = new Set<string>();
  private readonly pending: SchemaObject[];
  private readonly postIds: Set<string>;
  private readonly finished = new Set<string>();
  private readonly running = new Set<string>();
  private clients: pg.Client[] = [];
  private failure: unknown;
  private cancelled = false;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly busy = new Set<pg.Client>();
  /** Loaded tables waiting for ANALYZE, run once their indexes exist (expression indexes get statistics too). */
  private readonly toAnalyze = new Map<string, string>();
  readonly analyzed = new Set<string>();

  /** Called once when a post-data object fails, so the copy can stop early. */
  onFailure: () => void = () => undefined;
  /** Partitioned parent → its partitions still to load. */
  private readonly waitingChildren = new Map<string, Set<string>>();
  private readonly parentOf = new Map<string, string>();

  constructor(
    private readonly applier: SchemaApplier,
    schema: ExtractedSchema,
    tables: readonly SourceTable[],
    partitionParents: ReadonlyArray<{ child: QualifiedName; parent: QualifiedName }>,
    private readonly log: Logger,
  ) {
    const post = applier.objectsOf('post-data');
    this.postIds = new Set(post.map((o) => o.id));
    for (const o of post) if (applier.isDone(o)) this.finished.add(o.id);
    this.pending = post.filter((o) => !applier.isDone(o) && o.table !== undefined);
    // A partitioned parent holds no rows of its own: it counts as loaded once every partition
    // in scope is (its triggers and foreign keys must not act on partitions still copying).
    const created = new Set(schema.objects.filter((o) => o.kind === 'table' && o.table).map((o) => tableKey(o.table!)));
    for (const { child, parent } of partitionParents) {
      if (!created.has(tableKey(child)) || !created.has(tableKey(parent))) continue;
      this.parentOf.set(tableKey(child), tableKey(parent));
      const waiting = this.waitingChildren.get(tableKey(parent)) ?? new Set<string>();
      waiting.add(tableKey(child));
      this.waitingChildren.set(tableKey(parent), waiting);
    }
    const withRows = new Set(tables.map((t) => tableKey(t)));
    for (const key of created) if (!withRows.has(key) && !this.waitingChildren.has(key)) this.loaded.add(key);
  }

  private markLoaded(key: string): void {
    this.loaded.add(key);
    const parent = this.parentOf.get(key);
    if (parent === undefined) return;
    const waiting = this.waitingChildren.get(parent)!;
    waiting.delete(key);
    if (waiting.size === 0) this.markLoaded(parent);
  }

  start(clients: pg.Client[]): void {
    this.clients = clients;
  }

  tableLoaded(table: SourceTable): void {
    this.markLoaded(tableKey(table));
    this.toAnalyze.set(tableKey(table), table.qname);
    this.dispatch();
  }

  /**
   * Starts nothing more, and waits for what runs (at most `withinMs`): their sessions are
   * closed next, and a statement cut off by that would only add noise to the real failure.
   */
  async cancel(withinMs: number): Promise<void> {
    this.cancelled = true;
    await Promise.race([Promise.allSettled([...this.inFlight]), sleep(withinMs)]);
  }

  /** Waits for every object that can run now to finish; rethrows the first failure. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
  }

  private ready(o: SchemaObject): boolean {
    if (!o.table || !this.loaded.has(tableKey(o.table))) return false;
    for (const d of o.dependsOn) if (this.postIds.has(d) && !this.finished.has(d)) return false;
    return true;
  }

  private dispatch(): void {
    if (this.cancelled || this.failure) return;
    for (const client of this.clients.filter((c) => !this.busy.has(c))) {
      const next = this.pending.find((o) => !this.running.has(o.id) && this.ready(o));
      if (next) {
        this.run(client, next);
        continue;
      }
      const table = [...this.toAnalyze.keys()].find((key) => !this.pending.some((o) => o.kind === 'index' && o.table && tableKey(o.table) === key));
      if (table === undefined) return;
      const qname = this.toAnalyze.get(table)!;
      this.toAnalyze.delete(table);
      this.track(client, `ANALYZE ${qname}`, async () => {
        await client.query(`ANALYZE ${qname}`);
        this.analyzed.add(table);
      });
    }
  }

  private run(client: pg.Client, object: SchemaObject): void {
    this.running.add(object.id);
    this.track(client, `${object.kind} ${object.name}`, async () => {
      try {
        await this.applier.applyOne(client, object);
        this.finished.add(object.id);
        this.pending.splice(this.pending.indexOf(object), 1);
      } finally {
        this.running.delete(object.id);
      }
    });
  }

  /** Runs one task on a client, keeps the first failure, and looks for more work when done. */
  private track(client: pg.Client, what: string, work: () => Promise<void>): void {
    this.busy.add(client);
    const task = retryOnDeadlock(work)
      .then(() => this.log.debug({ task: what }, 'done'))
      .catch((error: unknown) => {
        if (this.failure === undefined) {
          this.failure = error;
          this.onFailure();
        }
      })
      .finally(() => {
        this.busy.delete(client);
        this.inFlight.delete(task);
        this.dispatch();
      });
    this.inFlight.add(task);
  }
}

/** The server refused a query because row-level security would have filtered it (row_security = off). */
export function isRowSecurityError(error: unknown): boolean {
  return sqlState(error) === SQLSTATE.insufficientPrivilege && /row-level security/.test(messageOf(error) + messageOf((error as Error).cause ?? ''));
}
