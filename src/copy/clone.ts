import type pg from 'pg';
import { Scope, type ScopeFilter } from '../catalog/index.js';
import { connect, type ConnectionSpec } from '../config/index.js';
import { messageOf, PgferryError } from '../errors.js';
import type { Logger } from '../log/index.js';
import { closeClient, inTransaction, openAll, quoteLiteral, setConfigSql, TEXT_VALUE_SETTINGS, type Permits } from '../plumbing/index.js';
import {
  carryRoles,
  readSourceSchema,
  rolesTheSchemaNeeds,
  roleNotes,
  SchemaApplier,
  extractSchema,
  schemaFromJson,
  schemaToJson,
  type ExtractedSchema,
} from '../schema/index.js';
import { ensureCopyState, finishClone, plannedSchema } from '../state/index.js';
import { tableColumns } from './table-columns.js';
import { SnapshotLeases, type SnapshotSource } from './snapshot-leases.js';
import { PostDataScheduler } from './post-data-scheduler.js';
import { copyUnits, type TableCopied } from './copy-units.js';
import { copyLargeObjects } from './large-objects.js';
import type { CopyProgress } from './progress.js';
import { decideStart, planOrResume, type PlannedUnit } from './resume.js';
import { readSequenceValues, setSequenceValues } from './sequences.js';
import { readExtensionConfigTables, readPartitionParents, readSourceTables, readTargetColumns, type SourceTable } from './source-tables.js';

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
  /** Make the roles the schema needs that the target lacks, before the schema (--create-roles). */
  readonly createRoles?: boolean;
  /**
   * SQL run on the target after pre-data and before any row is copied (--target-setup-sql):
   * distributing tables on a Citus coordinator, say. Not run again when a copy is resumed.
   */
  readonly targetSetup?: { readonly file: string; readonly sql: string };
  readonly progress: CopyProgress;
  readonly logger: Logger;
  /**
   * Copy at this exported snapshot (a replication slot's, for sync) instead of one of the
   * clone's own. Its exporter must stay open and idle until the clone returns.
   */
  readonly snapshot?: string;
  /**
   * Copy each table at a snapshot of its own, taken from here, whose position is recorded with
   * the table (sync: the change stream applies each table's changes from its position on). A
   * snapshot is held only while tables copy at it; a resumed copy keeps finished tables; a
   * table changed on the source since the plan is deferred (see CloneSummary.deferred).
   */
  readonly snapshots?: { readonly source: SnapshotSource; readonly reuseMs?: number };
  /** Runs on the target once pre-data and pgferry's copy state exist, before any row is copied. */
  readonly onCopyStarting?: (target: pg.Client) => Promise<void>;
  /** COPY jobs shared with the copies of other databases running at once (sync --all-databases). */
  readonly permits?: Permits;
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
  /** Large objects made on the target at the snapshot, and their bytes. */
  readonly largeObjects: { readonly objects: number; readonly bytes: number };
  readonly notes: readonly string[];
  readonly unsupported: ExtractedSchema['unsupported'];
  readonly skipped: ExtractedSchema['skipped'];
  readonly resumed: boolean;
  /**
   * Tables not copied because their schema changed on the source since the plan (per-table
   * snapshots only): the change stream must first bring the target's schema up to the source's,
   * then a resumed copy copies them. The copy is not finished while any is listed.
   */
  readonly deferred: ReadonlyArray<{ readonly table: string; readonly why: string }>;
}

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

  let closeLeases: SnapshotLeases | undefined;
  try {
    let schema = await timed('read schema', () => readSourceSchema(options.source, scope));
    const admin = await open(options.target, TARGET_SESSION);
    const planner = await open(options.source, SOURCE_SESSION);
    const sourceTables = await readSourceTables(planner, scope);
    scope.assertPatternsMatch(sourceTables, 'the source database');

    const state = await decideStart(admin, options, sourceTables, scope);
    const resumed = state === 'interrupted';
    // A stream completes this copy: objects made on the source since the copy began are the
    // stream's to replay, so a resumed copy builds what it planned with, not what the source holds now.
    const following = options.snapshots !== undefined;
    const planned = following && resumed ? await plannedSchema(admin) : undefined;
    if (planned !== undefined) schema = schemaFromJson(planned);

    const roles = options.createRoles ? await timed('roles', () => carryRoles(planner, admin, rolesTheSchemaNeeds(schema))) : undefined;
    const applier = new SchemaApplier(schema, {
      noOwner: options.noOwner,
      noAcl: options.noAcl,
      readTargetSchema: async () => extractSchema(await open(options.target, TARGET_SESSION), scope),
    });
    await applier.prepare(admin);
    await timed('pre-data', () => applier.applySection(admin, 'pre-data'));
    const setup = options.targetSetup;
    if (setup && !resumed) await timed('target setup', () => runTargetSetup(admin, setup));
    await ensureCopyState(admin);
    await options.onCopyStarting?.(admin);

    // One snapshot for the whole copy, held open by the planner's transaction until the copy
    // ends; or (sync) a snapshot per table, taken as its copy starts and let go after it.
    const leases = options.snapshots ? new SnapshotLeases(options.snapshots.source, options.snapshots.reuseMs) : undefined;
    let snapshot: string | undefined;
    if (!leases) {
      await planner.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      if (options.snapshot === undefined) {
        snapshot = (await planner.query<{ id: string }>('SELECT pg_export_snapshot() AS id')).rows[0]!.id;
      } else {
        snapshot = options.snapshot;
        await planner.query(`SET TRANSACTION SNAPSHOT ${quoteLiteral(snapshot)}`);
      }
    }
    closeLeases = leases;

    // The user's rows of extensions' configuration tables travel too (CREATE EXTENSION made the tables).
    const onSource = [...sourceTables, ...(await readExtensionConfigTables(planner, scope))];
    const units = await planOrResume(
      admin,
      planner,
      onSource,
      options.splitThreshold,
      resumed,
      following ? schemaToJson(schema) : undefined,
    );
    // A resumed copy that a stream completes copies what it planned: tables made since are the
    // stream's, and a planned table gone by its name is found by its OID when its turn comes.
    const copied = following && resumed ? plannedTables(units, onSource) : onSource;
    const absent = new Set(copied.filter((t) => !onSource.includes(t)).map((t) => t.qname));
    if (resumed) {
      const pendingTables = new Set(units.filter((u) => !u.done).map((u) => u.table));
      const kept = [...new Set(units.map((u) => u.table))].filter((t) => !pendingTables.has(t));
      options.logger.info(
        { kept: kept.length, copying: pendingTables.size, keptTables: kept.slice(0, 50), copyingTables: [...pendingTables].slice(0, 50) },
        `continuing the interrupted copy: ${kept.length} table(s) finished before are kept, ${pendingTables.size} are copied${following ? ' at new snapshots' : ''}`,
      );
    }
    const byTable = new Map(copied.map((t) => [t.qname, t]));
    const onTarget = await readTargetColumns(
      admin,
      copied.map((t) => t.qname),
    );
    const { jobsByTable, deferred } = tableColumns(copied, absent, onTarget, { following, resumed });

    let copyResults = new Map<string, TableCopied>();
    const partitionParents = await readPartitionParents(planner);
    const postData = new PostDataScheduler(applier, schema, copied, partitionParents, options.logger);
    await timed('copy and indexes', async () => {
      const targets = await openAll(
        Array.from({ length: options.indexJobs }, () => open(options.target, INDEX_SESSION)),
        closeClient,
      );
      postData.start(targets);
      const pending = units.filter((u) => !u.done && !deferred.has(u.table));
      const toCopy = new Set(pending.map((u) => u.table));
      for (const t of copied) if (!toCopy.has(t.qname) && !deferred.has(t.qname)) postData.tableLoaded(t);
      copyResults = await copyUnits({
        pending,
        jobs: options.jobs,
        permits: options.permits,
        tables: byTable,
        jobsByTable,
        at: leases ? { leases } : { snapshot: snapshot! },
        progress: options.progress,
        postData,
        openPair: () => openAll([open(options.source, SOURCE_SESSION), open(options.target, TARGET_SESSION)], closeClient),
        deferred,
      });
      await postData.drain();
    });
    options.progress.stop();
    await leases?.close();
    // Tables, as the summary and ANALYZE know them: what was planned and is on the source.
    const copiedTables = copied.filter((t) => t.extensionRows === undefined && !absent.has(t.qname));
    const unitCounts = new Map<string, number>();
    for (const u of units) unitCounts.set(u.table, (unitCounts.get(u.table) ?? 0) + 1);
    const summarize = () =>
      copiedTables.map((t) => {
        const now = copyResults.get(t.qname);
        return {
          table: t.qname,
          rows: now?.rows ?? 0,
          bytes: now?.bytes ?? 0,
          seconds: now?.seconds ?? 0,
          format: jobsByTable.get(t.qname)!.binary ? ('binary' as const) : ('text' as const),
          units: unitCounts.get(t.qname) ?? 0,
        };
      });
    if (deferred.size > 0) {
      // Not finished: the rest of post-data waits for the deferred tables (a resumed copy does it).
      return {
        tables: summarize(),
        phases,
        sequences: 0,
        notes: applier.result().notes,
        largeObjects: { objects: 0, bytes: 0 },
        unsupported: schema.unsupported,
        skipped: schema.skipped,
        resumed,
        deferred: [...deferred].map(([table, why]) => ({ table, why })),
      };
    }

    // At the one snapshot still (the planner's transaction holds it until the sequences are
    // read); with per-table snapshots, at one taken now (the cut-over carries later changes).
    if (leases) await planner.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const largeObjects = await timed('large objects', () => copyLargeObjects(planner, admin));
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
      const rest = copiedTables.filter((t) => !postData.wasAnalyzed(t));
      for (const t of rest) await admin.query(`ANALYZE ${t.qname}`);
    });
    await finishClone(admin);

    const tables = summarize();
    return {
      tables,
      phases,
      sequences,
      notes: [
        ...(roles ? roleNotes(roles) : []),
        ...applier.result().notes,
        ...(resumed && !following ? [RESUME_NOTE] : []),
        ...(largeObjects.missingRoles.length > 0
          ? [
              `roles missing on the target, so their large objects' ownership and grants were left out: ${largeObjects.missingRoles.join(', ')}`,
            ]
          : []),
      ],
      largeObjects: { objects: largeObjects.objects, bytes: largeObjects.bytes },
      unsupported: schema.unsupported,
      skipped: schema.skipped,
      resumed,
      deferred: [],
    };
  } finally {
    options.progress.stop();
    await closeLeases?.close();
    await Promise.all(opened.map((client) => closeClient(client)));
  }
}

const INDEX_SESSION = `SELECT set_config('search_path', '', false), set_config('synchronous_commit', 'off', false), set_config('row_security', 'off', false),
                              set_config('maintenance_work_mem', '256MB', false)`;

const RESUME_NOTE =
  'resumed without a replication slot: tables finished before the interruption hold the source as of the earlier snapshot, the rest as of this one, so the copy is consistent per table only (pgferry verify shows what differs; pgferry sync resumes to a consistent copy)';

/**
 * The tables a resumed copy that a stream completes copies: those it planned, as the source
 * shows them now by name, or (gone by that name: dropped or renamed) known by the plan's OID
 * only, for the check at their snapshot to tell which.
 */
function plannedTables(units: readonly PlannedUnit[], onSource: readonly SourceTable[]): SourceTable[] {
  const byName = new Map(onSource.map((t) => [t.qname, t]));
  const tables = new Map<string, SourceTable>();
  for (const u of units) {
    if (tables.has(u.table)) continue;
    tables.set(
      u.table,
      byName.get(u.table) ?? { oid: u.oid ?? 0, schema: '', name: '', qname: u.table, bytes: 0, pages: 0, columns: [], intKey: undefined },
    );
  }
  return [...tables.values()];
}

/** The user's --target-setup-sql, in one transaction: it worked or it changed nothing. */
async function runTargetSetup(target: pg.Client, setup: { readonly file: string; readonly sql: string }): Promise<void> {
  try {
    await inTransaction(target, async () => {
      // The copy's session pins an empty search_path; the file is written for the usual one.
      await target.query('SET LOCAL search_path TO DEFAULT');
      await target.query(setup.sql);
    });
  } catch (error) {
    throw new PgferryError('query', `target: ${setup.file} failed: ${messageOf(error)}`, {
      side: 'target',
      fix: `fix ${setup.file} (it runs after the tables exist and before any row is copied, in one transaction) and run again`,
      cause: error,
    });
  }
}
