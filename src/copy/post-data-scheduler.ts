import type pg from 'pg';
import type { QualifiedName } from '../catalog/index.js';
import type { Logger } from '../log/index.js';
import { sleep, sqlState, SQLSTATE } from '../plumbing/index.js';
import type { ExtractedSchema, SchemaApplier, SchemaObject } from '../schema/index.js';
import type { SourceTable } from './source-tables.js';

const tableKey = (t: QualifiedName) => `${t.schema}\u0000${t.name}`;

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

/** How long a failed copy waits for the index builds in flight before it closes their sessions. */
export const POST_DATA_SETTLE_MS = 10_000;

/**
 * Builds a table's post-data objects (indexes, keys, triggers…) on the index jobs as soon as
 * the table is loaded, in dependency order: an object runs once its table is loaded and every
 * post-data object it depends on exists. Objects that belong to no copied table (materialized
 * view indexes, grants, statistics) wait for the final post-data pass.
 */
export class PostDataScheduler {
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
  private readonly analyzed = new Set<string>();

  /** Called once when a post-data object fails, so the copy can stop early. */
  onFailure: () => void = () => undefined;
  /** Partitioned parent → its partitions still to load. */
  private readonly waitingChildren = new Map<string, Set<string>>();
  private readonly parentOf = new Map<string, string>();
  /** Catalog id of each table → its key: an object that depends on a table waits for its rows. */
  private readonly tableIds = new Map<string, string>();

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
    for (const o of schema.objects) if (o.kind === 'table' && o.table) this.tableIds.set(o.id, tableKey(o.table));
    const created = new Set(this.tableIds.values());
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

  /** Whether the index jobs have analyzed the table already. */
  wasAnalyzed(table: QualifiedName): boolean {
    return this.analyzed.has(tableKey(table));
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

  /**
   * An object runs once its own table is loaded, every table it depends on is too (a foreign
   * key checks the rows of the table it references: built into a table not copied yet, as a
   * deferred one, it would refuse every row), and every post-data object it needs exists.
   */
  private ready(o: SchemaObject): boolean {
    if (!o.table || !this.loaded.has(tableKey(o.table))) return false;
    for (const d of o.dependsOn) {
      const table = this.tableIds.get(d);
      if (table !== undefined && !this.loaded.has(table)) return false;
      if (this.postIds.has(d) && !this.finished.has(d)) return false;
    }
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
      const table = [...this.toAnalyze.keys()].find(
        (key) => !this.pending.some((o) => o.kind === 'index' && o.table && tableKey(o.table) === key),
      );
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
