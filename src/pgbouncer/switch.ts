import { performance } from 'node:perf_hooks';
import type { ConnectionSpec } from '../config/index.js';
import { messageOf, PgferryError } from '../errors.js';
import type { Logger } from '../log/index.js';
import { PoolConfigFile, type FileSignature } from './config-file.js';
import { PoolConsole, type PooledDatabase } from './console.js';
import { startWatchdog, type Watchdog } from './watchdog.js';
import { findDatabaseEntry, pointsTo, repoint, type PoolTarget } from './ini.js';

/** `--pgbouncer`, `--pgbouncer-ini`, `--pgbouncer-database`, `--max-pause`. */
export interface PoolOptions {
  /** The admin console's URL. */
  readonly admin: string;
  /** The configuration file PgBouncer reads, on this machine. */
  readonly ini: string;
  /** The pooled database to move (one move only); found by where it points when not given. */
  readonly database?: string;
  /** Longest the clients may wait in the pause before the cut-over is undone. */
  readonly maxPauseMs: number;
}

/** One pooled database to move: the one pointing at `source`, to point at `target`. */
export interface PoolMove {
  readonly source: ConnectionSpec;
  readonly target: ConnectionSpec;
  /** The whole server moves (physical mode): the entry keeps its dbname, only its host and port change. */
  readonly keepDatabase?: boolean;
}

/** The pause's parts as pgferry timed them, in ms (`staged` is before the clients wait). */
export interface PoolTimings {
  /** The new file written and flushed beside the old one, the watchdog started. */
  readonly staged: number;
  /** PAUSE sent to PAUSE answered: running transactions finishing. */
  readonly paused: number;
  /** The new file renamed over the old one: in the pause, alongside the freeze. */
  readonly rename: number;
  /** RELOAD, alongside the freeze too. */
  readonly reload: number;
  /** SHOW DATABASES (PgBouncer points where the file says) and SET server_login_retry = 0, alongside the freeze too. */
  readonly check: number;
  /** What the repoint step itself waited for the three above, once the target was ready. */
  readonly repoint: number;
  /** The RESUMEs (SHOW POOLS, for the waiting clients, meanwhile on another session). */
  readonly resume: number;
}

/** What the report says of PgBouncer. */
export interface PoolReport {
  /** The pooled databases moved, comma-separated (one in a one-database cut-over). */
  readonly database: string;
  /** From PAUSE sent to RESUME answered: the longest any client waited. */
  readonly pausedMs: number;
  /** Clients waiting in the pause when it was lifted. */
  readonly waitingClients: number;
  /** Where they point now, comma-separated in the same order. */
  readonly pointsTo: string;
  /** Each pooled database moved, and where it points now. */
  readonly pools: ReadonlyArray<{ readonly database: string; readonly pointsTo: string }>;
  /**
   * Pooled databases whose RESUME PgBouncer refused while another's was accepted: they point at
   * the target, still paused, for the operator to resume (`RESUME <name>;` on the console). The
   * cut-over stands: the resumed pools' clients may already have written to the target.
   */
  readonly unresumed: readonly string[];
  readonly timings: PoolTimings;
}

/** One pooled database of the switch: its entry's line, where it points, where it is to point. */
interface Pool {
  readonly name: string;
  readonly from: PoolTarget;
  readonly to: PoolTarget;
  /** Its own console session, so that every PAUSE is sent at once. */
  readonly console: PoolConsole;
}

type Stage = { readonly kind: 'ready' } | { readonly kind: 'staged'; readonly signature: FileSignature } | { readonly kind: 'replaced' };

/**
 * PgBouncer in a cut-over (DESIGN decision 12: a pause, not an error): the pooled databases that
 * point at the source are paused before the freeze, so clients wait instead of failing, and,
 * once the target holds everything, their entries in the configuration file point at the
 * target, reloaded, and they are resumed. Everything the repoint needs is computed when the
 * switch is prepared and written beside the file before the pause; the rename, the RELOAD and
 * the check that PgBouncer follows it run as soon as the databases are paused, alongside the
 * freeze (a paused database opens no server connection, so no client reaches the target before
 * RESUME); the repoint step only waits for them, and the clients' wait ends with the RESUMEs.
 * Whatever fails, `undo` leaves them resumed on the source, with the file as it was (as does the
 * watchdog if this process dies): the pool is never left paused or resumed on a target that is
 * not ready.
 */
export class PoolSwitch {
  private pausedFrom: number | undefined;
  private watchdog: Watchdog | undefined;
  private stage: Stage = { kind: 'ready' };
  private pointed: 'source' | 'target' = 'source';
  private readonly timings: { -readonly [K in keyof PoolTimings]: number } = {
    staged: 0,
    paused: 0,
    rename: 0,
    reload: 0,
    check: 0,
    repoint: 0,
    resume: 0,
  };
  /** The file renamed, reloaded and checked, started as soon as every database is paused. */
  private repointing: Promise<void> | undefined;

  private constructor(
    private readonly console: PoolConsole,
    private readonly file: PoolConfigFile,
    private readonly pools: readonly Pool[],
    /** The file as it was, and as it is to be. */
    private readonly text: { readonly original: string; readonly repointed: string },
    readonly maxPauseMs: number,
    /** transaction, session or statement: how clients hold servers, and so what a PAUSE waits for (session if any pool is). */
    readonly poolMode: string,
    private readonly adminUrl: string,
    /** server_login_retry as PgBouncer had it (SHOW CONFIG), put back after each RESUME. */
    private readonly loginRetry: string | undefined,
  ) {}

  /**
   * Before anything changes: the console answers, the pooled database that points at each
   * move's source is found (or the one named), the file defines each the way PgBouncer shows
   * it, and the file can be replaced. Each refusal names its fix.
   */
  static async prepare(options: PoolOptions, moves: readonly PoolMove[]): Promise<PoolSwitch> {
    if (moves.length === 0) throw new Error('PoolSwitch.prepare: no pooled database to move');
    if (options.database !== undefined && moves.length > 1) {
      throw new PgferryError(
        'pgbouncer',
        `pgbouncer: --pgbouncer-database names one pooled database; this cut-over moves ${moves.length}`,
        {
          fix: 'leave --pgbouncer-database out: each database is found by where it points',
        },
      );
    }
    // (The console's URL is kept for the watchdog, which opens its own session.)
    const console = await PoolConsole.open(options.admin);
    const sessions: PoolConsole[] = [];
    try {
      const databases = await console.databases();
      // Of several databases (a whole server), those the pool does not serve are not its to move.
      const served = moves.length === 1 ? moves : moves.filter((move) => databases.some((d) => pointsAtSource(d, move.source)));
      if (served.length === 0)
        throw new PgferryError('pgbouncer', `pgbouncer: no pooled database points at any of the ${moves.length} source databases moved`, {
          fix: 'give --pgbouncer the console of the PgBouncer the application uses, or cut over without --pgbouncer',
        });
      const chosen = served.map((move) => ({ move, pooled: choose(databases, options.database, move.source) }));
      const twice = chosen.find((c, i) => chosen.findIndex((d) => d.pooled.name === c.pooled.name) !== i);
      if (twice) {
        throw new PgferryError('pgbouncer', `pgbouncer: two of the databases moved are pooled as the one "${twice.pooled.name}"`, {
          fix: 'move the databases a pooled database serves together, or cut over without --pgbouncer',
        });
      }
      const file = new PoolConfigFile(options.ini);
      const original = file.read();
      let repointed = original;
      const pools: Pool[] = [];
      for (const { move, pooled } of chosen) {
        const entry = findDatabaseEntry(original, pooled.name);
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
        const to: PoolTarget = {
          host: move.target.hostaddr ?? move.target.host,
          port: move.target.port,
          dbname: move.keepDatabase ? inFile.dbname : move.target.database,
        };
        // Each entry is one line, rewritten in place: the others' line numbers stay.
        repointed = repoint(repointed, entry, to);
        // The first console reloads and counts while the pools' own pause and resume.
        sessions.push(await PoolConsole.open(options.admin));
        pools.push({
          name: pooled.name,
          from: { host: inFile.host ?? '(socket)', port: inFile.port, dbname: inFile.dbname },
          to,
          console: sessions.at(-1)!,
        });
      }
      file.probeWritable();
      const modes = await Promise.all(chosen.map(async ({ pooled }) => pooled.poolMode ?? (await console.defaultPoolMode())));
      const poolMode = modes.includes('session') ? 'session' : modes[0]!;
      const loginRetry = await console.setting('server_login_retry');
      return new PoolSwitch(console, file, pools, { original, repointed }, options.maxPauseMs, poolMode, options.admin, loginRetry);
    } catch (error) {
      await Promise.all([console, ...sessions].map((s) => s.close()));
      throw error;
    }
  }

  /** The pooled databases moved, comma-separated. */
  get name(): string {
    return this.pools.map((p) => p.name).join(', ');
  }

  /**
   * The new file staged beside the old one and the watchdog started (before the clients wait),
   * then every pooled database paused at once: clients' new transactions wait from here; running
   * ones finish within `timeoutMs`. If any pause fails, none is left paused.
   */
  async pause(timeoutMs: number, log: Logger): Promise<void> {
    const staging = performance.now();
    if (this.file.read() !== this.text.original) {
      throw new PgferryError('pgbouncer', `pgbouncer: ${this.file.path} changed since the cut-over began; nothing is paused`, {
        fix: 'make the change to the file before or after a cut-over, not during it, and cut over again',
      });
    }
    this.stage = { kind: 'staged', signature: this.file.stage(this.text.repointed) };
    // Watching before the PAUSE is sent: this process may be killed while it waits for it.
    this.watchdog = startWatchdog(
      { admin: this.adminUrl, databases: this.pools.map((p) => p.name), ini: this.file.path, original: this.text.original },
      log,
    );
    this.timings.staged = performance.now() - staging;
    this.pausedFrom = performance.now();
    // One session each: PgBouncer answers a database's PAUSE once every paused database is idle,
    // so sent together they all wait for the slowest once, not one after the other.
    const pausing = await Promise.allSettled(this.pools.map((p) => p.console.pause(p.name, timeoutMs)));
    this.timings.paused = performance.now() - this.pausedFrom;
    const failed = pausing.find((p): p is PromiseRejectedResult => p.status === 'rejected');
    if (failed) {
      // A pause called off by its console is resumed already; the others are resumed here.
      await Promise.allSettled(this.pools.map((p) => p.console.resume(p.name)));
      this.pausedFrom = undefined;
      this.file.discard();
      this.stage = { kind: 'ready' };
      this.release();
      throw failed.reason;
    }
    const switching = this.switchOver();
    // Awaited by repoint or undo; a failure before then is theirs to report.
    switching.catch(() => undefined);
    this.repointing = switching;
  }

  /** The staged file renamed over the old one and reloaded; PgBouncer must then show every entry pointing at its target. */
  private async switchOver(): Promise<void> {
    if (this.stage.kind !== 'staged') throw new Error('PoolSwitch: nothing staged');
    let started = performance.now();
    this.file.commit(this.stage.signature);
    this.stage = { kind: 'replaced' };
    this.timings.rename = performance.now() - started;
    started = performance.now();
    await this.console.reload();
    this.timings.reload = performance.now() - started;
    started = performance.now();
    const now = await this.console.databases();
    const astray = this.pools.filter((p) => {
      const shown = now.find((d) => d.name === p.name);
      return !shown || shown.port !== p.to.port || shown.database !== p.to.dbname;
    });
    if (astray.length > 0) {
      throw new PgferryError(
        'pgbouncer',
        `pgbouncer: after RELOAD, ${astray.map((p) => `"${p.name}"`).join(', ')} ${astray.length === 1 ? 'does' : 'do'} not point at the target`,
        { fix: `check PgBouncer's log; the file it was given is ${this.file.path}` },
      );
    }
    await this.lowerLoginRetry();
    this.timings.check = performance.now() - started;
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
   * In the pause, once the target is ready: the entries point at it (renamed and reloaded since
   * the pause began; this waits for that, and fails if it failed).
   */
  async repoint(): Promise<void> {
    if (this.repointing === undefined) throw new Error('PoolSwitch.repoint: not paused');
    const started = performance.now();
    await this.repointing;
    this.timings.repoint = performance.now() - started;
    this.pointed = 'target';
    this.watchdog?.targetReady();
  }

  /** RESUME: the waiting clients go on, against wherever the entries point now. */
  async resume(): Promise<PoolReport> {
    const started = performance.now();
    // Counted on the first console while the pools' own sessions resume: resumed clients still
    // wait for PgBouncer's login to the target, so they are counted as waiting all the same.
    const [waitingClients, refused] = await Promise.all([
      this.console.waitingClients(this.pools.map((p) => p.name)).catch(() => 0),
      resumeEach(this.pools),
    ]);
    this.timings.resume = performance.now() - started;
    // None resumed: no client reached the target, so undoing the cut-over loses nothing.
    if (refused.length === this.pools.length) throw refused[0]!.error;
    // Some resumed: their clients now write to the target, and undoing would lose that. Each
    // refused one is asked once more; one still refused is left for the operator, and said.
    const unresumed = (await resumeEach(refused.map((r) => r.pool))).map((r) => r.pool.name);
    await this.restoreLoginRetry();
    this.release();
    const pools = this.pools.map((p) => ({ database: p.name, pointsTo: describe(this.pointed === 'target' ? p.to : p.from) }));
    const report: PoolReport = {
      database: this.name,
      pausedMs: Math.round(this.pausedMs),
      waitingClients,
      pointsTo: pools.map((p) => p.pointsTo).join(', '),
      pools,
      unresumed,
      timings: roundAll(this.timings),
    };
    this.pausedFrom = undefined;
    this.repointing = undefined;
    return report;
  }

  /**
   * After a failure: the file as it was (reloaded) and every database resumed, on the source.
   * Returns what could not be done, for the error to say.
   */
  async undo(log: Logger): Promise<string | undefined> {
    try {
      // A switch under way is let finish, so that what it did is what is put back.
      await this.repointing?.catch(() => undefined);
      this.repointing = undefined;
      if (this.stage.kind === 'staged') this.file.discard();
      if (this.stage.kind === 'replaced') {
        this.file.replace(this.text.original);
        await this.console.reload();
      }
      this.stage = { kind: 'ready' };
      this.pointed = 'source';
      // (A RELOAD put PgBouncer's own retry back.) Lowering it only spares the clients a wait:
      // a console that refuses it must not keep them paused.
      const lowered = await this.lowerLoginRetry().then(
        () => true,
        (error: unknown) => {
          log.warn({ error: messageOf(error) }, "PgBouncer's server_login_retry could not be lowered for the resume");
          return false;
        },
      );
      await resumeAll(this.pools);
      if (lowered) await this.restoreLoginRetry();
      this.pausedFrom = undefined;
      this.release();
      return undefined;
    } catch (error) {
      log.error({ error: messageOf(error) }, 'PgBouncer could not be resumed on the source');
      return messageOf(error);
    }
  }

  /**
   * For the RESUME: a server connection PgBouncer was still logging in when the PAUSE closed it
   * (one opened for min_pool_size is, each janitor round of the pause) marks the pool as failing
   * to connect: once resumed, PgBouncer then opens none for server_login_retry (15 s by default)
   * while its clients wait. So the retry is 0 from the switch (after its RELOAD, which would put
   * it back) to the RESUME, and put back once PgBouncer has begun its logins (it does in the loop
   * that answers the RESUME). In between, a min_pool_size login tried in the pause is tried up
   * to three times a second instead of once per retry.
   */
  private async lowerLoginRetry(): Promise<void> {
    if (this.loginRetry !== undefined) await this.console.set('server_login_retry', '0');
  }

  private async restoreLoginRetry(): Promise<void> {
    // Once the clients are resumed, a failure here is no reason to undo: a 0 retry only lasts until the next RELOAD.
    if (this.loginRetry !== undefined) await this.console.set('server_login_retry', this.loginRetry).catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.stage.kind === 'staged') this.file.discard();
    await Promise.all([this.console, ...this.pools.map((p) => p.console)].map((c) => c.close()));
  }
}

/** Every database resumed at once, each on its own session; the first failure is thrown once all are tried. */
/** Every pool's RESUME sent at once; the pools PgBouncer refused, with why. */
async function resumeEach(pools: readonly Pool[]): Promise<Array<{ readonly pool: Pool; readonly error: unknown }>> {
  const resumed = await Promise.allSettled(pools.map((p) => p.console.resume(p.name)));
  return resumed.flatMap((r, i) => (r.status === 'rejected' ? [{ pool: pools[i]!, error: r.reason as unknown }] : []));
}

async function resumeAll(pools: readonly Pool[]): Promise<void> {
  const refused = await resumeEach(pools);
  if (refused.length > 0) throw refused[0]!.error;
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
  const matching = pooled.filter((d) => pointsAtSource(d, source));
  if (matching.length === 1) return matching[0]!;
  throw new PgferryError(
    'pgbouncer',
    matching.length === 0
      ? `pgbouncer: no pooled database points at the source (port ${source.port}, database ${source.database}); SHOW DATABASES lists ${list(pooled)}`
      : `pgbouncer: several pooled databases point at the source: ${list(matching)}`,
    { fix: 'name the one the application uses with --pgbouncer-database' },
  );
}

function pointsAtSource(pooled: PooledDatabase, source: ConnectionSpec): boolean {
  return pooled.name !== 'pgbouncer' && pooled.port === source.port && pooled.database === source.database;
}

function list(databases: readonly PooledDatabase[]): string {
  return databases.length === 0 ? 'none' : databases.map((d) => `${d.name} (→ ${d.host ?? 'socket'}:${d.port}/${d.database})`).join(', ');
}

function describe(to: PoolTarget): string {
  return `${to.host}:${to.port}/${to.dbname}`;
}

function roundAll(timings: PoolTimings): PoolTimings {
  const round = (ms: number) => Math.round(ms * 10) / 10;
  return {
    staged: round(timings.staged),
    paused: round(timings.paused),
    rename: round(timings.rename),
    reload: round(timings.reload),
    check: round(timings.check),
    repoint: round(timings.repoint),
    resume: round(timings.resume),
  };
}
