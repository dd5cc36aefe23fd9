import pg from 'pg';
import { registerSecret } from '../config/index.js';
import { messageOf, PgferryError } from '../errors.js';
import { destroyClient, closeClient, DeadlineExceeded, withDeadline } from '../plumbing/index.js';

/** How long any console command but PAUSE may take: PgBouncer answers at once or not at all. */
const COMMAND_TIMEOUT_MS = 10_000;

/** One row of SHOW DATABASES, as much as a cut-over reads. */
export interface PooledDatabase {
  readonly name: string;
  readonly host: string | null;
  readonly port: number;
  readonly database: string;
  readonly poolMode: string | null;
  readonly paused: boolean;
}

/**
 * PgBouncer's admin console (the `pgbouncer` database): simple-protocol commands only, and no
 * start-up settings (it refuses any it does not know), so it is not opened like a PostgreSQL
 * session. Every command has a deadline; a PAUSE that outlives its own is cancelled from a
 * second console session, the only way PgBouncer offers.
 */
export class PoolConsole {
  private constructor(
    private readonly url: string,
    private client: pg.Client,
  ) {}

  static async open(url: string): Promise<PoolConsole> {
    registerSecret(passwordOf(url));
    return new PoolConsole(url, await openConsole(url));
  }

  async databases(): Promise<PooledDatabase[]> {
    const rows = await this.command<{
      name: string;
      host: string | null;
      port: number | string;
      database: string;
      pool_mode: string | null;
      paused: number | string;
    }>('SHOW DATABASES');
    return rows.map((r) => ({
      name: r.name,
      host: r.host,
      port: Number(r.port),
      database: r.database,
      poolMode: r.pool_mode,
      paused: Number(r.paused) === 1,
    }));
  }

  /** The pool mode PgBouncer applies by default (a database may set its own). */
  async defaultPoolMode(): Promise<string> {
    return (await this.setting('pool_mode')) ?? 'session';
  }

  /** A [pgbouncer] setting as PgBouncer applies it now (SHOW CONFIG), or undefined if it has none of that name. */
  async setting(key: string): Promise<string | undefined> {
    const rows = await this.command<{ key: string; value: string }>('SHOW CONFIG');
    return rows.find((r) => r.key === key)?.value;
  }

  /** SET on the console: a [pgbouncer] setting changed until the next RELOAD or SET. */
  async set(key: string, value: string): Promise<void> {
    await this.command(`SET ${key} = '${value.replace(/'/g, "''")}'`);
  }

  /** Clients of `databases` waiting for a server now: during a pause, those held by it. */
  async waitingClients(databases: readonly string[]): Promise<number> {
    const rows = await this.command<{ database: string; cl_waiting: number | string }>('SHOW POOLS');
    return rows.filter((r) => databases.includes(r.database)).reduce((sum, r) => sum + Number(r.cl_waiting), 0);
  }

  /**
   * PAUSE: new transactions wait, those running finish, server connections close. Returns once
   * paused; past `timeoutMs` the pause is called off (RESUME from another session, this one's
   * pending PAUSE dropped with its connection) and PgferryError says so.
   */
  async pause(database: string, timeoutMs: number): Promise<void> {
    const pausing = this.client.query(`PAUSE ${identifier(database)}`);
    try {
      await withDeadline(pausing, timeoutMs, `PAUSE ${database}`);
    } catch (error) {
      if (error instanceof DeadlineExceeded) {
        await this.callOff(database);
        throw new PgferryError(
          'drain-timeout',
          `pgbouncer: PAUSE ${database} waited ${Math.round(timeoutMs / 100) / 10} s for transactions running through the pool to end; the pause is called off and clients go on against the source`,
          {
            fix: 'find the long transaction (SHOW CLIENTS on the console, pg_stat_activity on the source), end it, and cut over again; --drain-timeout sets the wait',
          },
        );
      }
      throw consoleError(`PAUSE ${database}`, error);
    }
  }

  async reload(): Promise<void> {
    await this.command('RELOAD');
  }

  /** RESUME; a database that is not paused is no error (an undo may resume what was never paused). */
  async resume(database: string): Promise<void> {
    try {
      await this.command(`RESUME ${identifier(database)}`);
    } catch (error) {
      if (/not paused|already running/i.test(messageOf(error))) return;
      throw error;
    }
  }

  async close(): Promise<void> {
    await closeClient(this.client);
  }

  /** A pending PAUSE never returns once RESUMEd: its session is replaced. */
  private async callOff(database: string): Promise<void> {
    const other = await openConsole(this.url);
    try {
      await withDeadline(other.query(`RESUME ${identifier(database)}`), COMMAND_TIMEOUT_MS, `RESUME ${database}`);
    } finally {
      destroyClient(this.client);
      this.client = other;
    }
  }

  private async command<R extends pg.QueryResultRow>(text: string): Promise<R[]> {
    try {
      return (await withDeadline(this.client.query<R>(text), COMMAND_TIMEOUT_MS, text, () => destroyClient(this.client))).rows;
    } catch (error) {
      throw consoleError(text, error);
    }
  }
}

async function openConsole(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000, keepAlive: true });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return client;
  } catch (error) {
    await closeClient(client);
    throw new PgferryError('pgbouncer', `pgbouncer: cannot log in to the admin console: ${messageOf(error)}`, {
      fix: 'check --pgbouncer (postgres://user:password@host:6432/pgbouncer; the user must be in admin_users) and that PgBouncer runs there',
      cause: error,
    });
  }
}

function consoleError(command: string, error: unknown): PgferryError {
  return new PgferryError('pgbouncer', `pgbouncer: ${command.split(' ')[0]} failed: ${messageOf(error)}`, {
    fix: 'check that the --pgbouncer user is in admin_users (not only stats_users) and that PgBouncer is up',
    cause: error,
  });
}

/** Database names in console commands: PgBouncer takes bare words, and quoted ones with "". */
function identifier(name: string): string {
  return /^[A-Za-z0-9_]+$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

function passwordOf(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).password) || undefined;
  } catch {
    return undefined;
  }
}
