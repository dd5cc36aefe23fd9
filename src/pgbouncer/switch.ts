import { performance } from 'node:perf_hooks';
import type { ConnectionSpec } from '../config/index.js';
import { messageOf, PgferryError } from '../errors.js';
import type { Logger } from '../log/index.js';
import { PoolConfigFile } from './config-file.js';
import { PoolConsole, type PooledDatabase } from './console.js';
import { startWatchdog, type Watchdog } from './watchdog.js';
import { findDatabaseEntry, pointsTo, repoint, type DatabaseEntry, type PoolTarget } from './ini.js';

/** `--pgbouncer`, `--pgbouncer-ini`, `--pgbouncer-database`, `--max-pause`. */
export interface PoolOptions {
  /** The admin console's URL. */
  readonly admin: string;
  /** The configuration file PgBouncer reads, on this machine. */
  readonly ini: string;
  /** The pooled database to move; found by where it points when not given. */
  readonly database?: string;
  /** Longest the clients may wait in the pause before the cut-over is undone. */
  readonly maxPauseMs: number;
}

/** What the report says of PgBouncer. */
export interface PoolReport {
  readonly database: string;
  /** From PAUSE sent to RESUME answered: the longest any client waited. */
  readonly pausedMs: number;
  /** Clients waiting in the pause when it was lifted. */
  readonly waitingClients: number;
  readonly pointsTo: string;
}

/**
 * PgBouncer in a cut-over (DESIGN decision 12: a pause, not an error): the pooled database that
 * points at the source is paused before the freeze, so clients wait instead of failing, and,
 * once the target holds everything, its entry in the configuration file is rewritten to the
 * target, reloaded and resumed. Whatever fails, `undo` leaves it resumed on the source, with the
 * file as it was: the pool is never left paused or pointed at a half-ready target.
 */
export class PoolSwitch {
  private pausedFrom: number | undefined;
  private watchdog: Watchdog | undefined;
  private original: string | undefined;
  private pointed: PoolTarget;

  private constructor(
    private readonly console: PoolConsole,
    private readonly file: PoolConfigFile,
    private readonly database: string,
    private readonly entry: DatabaseEntry,
    private readonly text: string,
    readonly maxPauseMs: number,
    /** transaction, session or statement: how clients hold servers, and so what a PAUSE waits for. */
    readonly poolMode: string,
    private readonly adminUrl: string,
  ) {
    const now = pointsTo(entry);
    this.pointed = { host: now.host ?? '(socket)', port: now.port, dbname: now.dbname };
  }

  /**
   * Before anything changes: the console answers, the pooled database that points at the
   * source is found (or the one named), the file defines it the way PgBouncer shows it, and the
   * file can be replaced. Each refusal names its fix.
   */
  static async prepare(options: PoolOptions, source: ConnectionSpec): Promise<PoolSwitch> {
    // (The console's URL is kept for the watchdog, which opens its own session.)
    const console = await PoolConsole.open(options.admin);
    try {
      const pooled = choose(await console.databases(), options.database, source);
      const file = new PoolConfigFile(options.ini);
      const text = file.read();
      const entry = findDatabaseEntry(text, pooled.name);
      if (!entry) {
        throw new PgferryError('pgbouncer', `pgbouncer: ${options.ini} has no [databases] entry "${pooled.name}"`, {
          fix: 'give --pgbouncer-ini the file PgBouncer was started with (an entry in an %include file is not rewritten)',
        });
      }
      const inFile = pointsTo(entry);
      if (inFile.port !== pooled.port || inFile.dbname !== pooled.database) {
        throw new PgferryError(
          'pgbouncer',
          `pgbouncer: ${options.ini} says "${pooled.name}" goes to port ${inFile.port}, database ${inFile.dbname}, but PgBouncer sends it to port ${pooled.port}, database ${pooled.database}`,
          { fix: 'give --pgbouncer-ini the file PgBouncer was started with, or RELOAD it first' },
        );
      }
      file.probeWritable();
      const poolMode = pooled.poolMode ?? (await console.defaultPoolMode());
      return new PoolSwitch(console, file, pooled.name, entry, text, options.maxPauseMs, poolMode, options.admin);
    } catch (error) {
      await console.close();
      throw error;
    }
  }

  get name(): string {
    return this.database;
  }

  /** Clients' new transactions wait from here; running ones finish within `timeoutMs`. */
  async pause(timeoutMs: number, log: Logger): Promise<void> {
    // Watching before the PAUSE is sent: this process may be killed while it waits for it.
    this.watchdog = startWatchdog(this.adminUrl, this.database, log);
    this.pausedFrom = performance.now();
    try {
      await this.console.pause(this.database, timeoutMs);
    } catch (error) {
      // Called off by the console itself, or failed: nothing is paused.
      this.pausedFrom = undefined;
      this.release();
      throw error;
    }
  }

  private release(): void {
    this.watchdog?.release();
    this.watchdog = undefined;
  }

  /** Milliseconds the clients have waited so far. */
  get pausedMs(): number {
    return this.pausedFrom === undefined ? 0 : performance.now() - this.pausedFrom;
  }

  /**
   * The entry rewritten to the target and reloaded; PgBouncer must then show the target. A
   * physical cut-over moves the whole server: the entry keeps its database (`keepDatabase`).
   */
  async repoint(target: ConnectionSpec, keepDatabase = false): Promise<void> {
    const to: PoolTarget = {
      host: target.hostaddr ?? target.host,
      port: target.port,
      dbname: keepDatabase ? this.pointed.dbname : target.database,
    };
    this.original = this.text;
    this.file.replace(repoint(this.text, this.entry, to));
    await this.console.reload();
    const now = (await this.console.databases()).find((d) => d.name === this.database);
    if (!now || now.port !== to.port || now.database !== to.dbname) {
      throw new PgferryError('pgbouncer', `pgbouncer: after RELOAD, "${this.database}" does not point at the target`, {
        fix: `check PgBouncer's log; the file it was given is ${this.file.path}`,
      });
    }
    this.pointed = to;
  }

  /** RESUME: the waiting clients go on, against wherever the entry points now. */
  async resume(): Promise<PoolReport> {
    const waitingClients = await this.console.waitingClients(this.database).catch(() => 0);
    await this.console.resume(this.database);
    this.release();
    const report = { database: this.database, pausedMs: Math.round(this.pausedMs), waitingClients, pointsTo: describe(this.pointed) };
    this.pausedFrom = undefined;
    return report;
  }

  /**
   * After a failure: the file as it was (reloaded) and the database resumed, on the source.
   * Returns what could not be done, for the error to say.
   */
  async undo(log: Logger): Promise<string | undefined> {
    try {
      if (this.original !== undefined) {
        this.file.replace(this.original);
        await this.console.reload();
        this.original = undefined;
      }
      await this.console.resume(this.database);
      this.pausedFrom = undefined;
      this.release();
      return undefined;
    } catch (error) {
      log.error({ error: messageOf(error) }, 'PgBouncer could not be resumed on the source');
      return messageOf(error);
    }
  }

  async close(): Promise<void> {
    await this.console.close();
  }
}

/** The pooled database to move: the one named, or the only one pointing at the source's port and database. */
function choose(databases: readonly PooledDatabase[], named: string | undefined, source: ConnectionSpec): PooledDatabase {
  const pooled = databases.filter((d) => d.name !== 'pgbouncer');
  if (named !== undefined) {
    const found = pooled.find((d) => d.name === named);
    if (found) return found;
    throw new PgferryError('pgbouncer', `pgbouncer: no pooled database "${named}" (SHOW DATABASES lists ${list(pooled)})`, {
      fix: 'give --pgbouncer-database one of those',
    });
  }
  const matching = pooled.filter((d) => d.port === source.port && d.database === source.database);
  if (matching.length === 1) return matching[0]!;
  throw new PgferryError(
    'pgbouncer',
    matching.length === 0
      ? `pgbouncer: no pooled database points at the source (port ${source.port}, database ${source.database}); SHOW DATABASES lists ${list(pooled)}`
      : `pgbouncer: several pooled databases point at the source: ${list(matching)}`,
    { fix: 'name the one the application uses with --pgbouncer-database' },
  );
}

function list(databases: readonly PooledDatabase[]): string {
  return databases.length === 0 ? 'none' : databases.map((d) => `${d.name} (→ ${d.host ?? 'socket'}:${d.port}/${d.database})`).join(', ');
}

function describe(to: PoolTarget): string {
  return `${to.host}:${to.port}/${to.dbname}`;
}
