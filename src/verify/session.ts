import type pg from 'pg';
import { connect, type Connection, type ConnectionSpec } from '../config/index.js';
import { PgferryError, messageOf, type Side } from '../errors.js';
import { closeClient, oneLine, openAll } from '../plumbing/index.js';

/**
 * Values are compared by their text output, and text output depends on session settings: the
 * same timestamptz prints differently under another TimeZone, a float with fewer digits under
 * an older extra_float_digits default, a bytea as escape instead of hex. Both sides get these,
 * so equal data on different major versions prints, and hashes, the same.
 */
export const PINNED_SETTINGS: Readonly<Record<string, string>> = {
  TimeZone: 'UTC',
  DateStyle: 'ISO, MDY',
  IntervalStyle: 'postgres',
  extra_float_digits: '3',
  bytea_output: 'hex',
  lc_monetary: 'C',
  // Every name verify writes is qualified; an empty path keeps a user's objects from shadowing
  // the built-in functions it calls.
  search_path: 'pg_catalog',
  // Both sides seen whole: a policy hiding the same rows on both would make them look equal.
  row_security: 'off',
  // A long check must not be cut by a server default meant for application queries.
  statement_timeout: '0',
  idle_in_transaction_session_timeout: '0',
};

/** Every value arrives as the server's text, unparsed: it is compared as text, never as a JS value. */
const RAW_TEXT: pg.CustomTypesConfig = { getTypeParser: () => (value: string) => value };

export type TextRow = Record<string, string | null>;

/** One side's session, settings pinned, whose every query error says which side and what it was doing. */
export class SideSession {
  private constructor(
    readonly side: Side,
    private readonly connection: Connection,
  ) {}

  static async open(side: Side, spec: ConnectionSpec): Promise<SideSession> {
    const connection = await connect(spec);
    const session = new SideSession(side, connection);
    const names = Object.keys(PINNED_SETTINGS);
    try {
      await session.query(
        'pinning session settings',
        `SELECT ${names.map((_, i) => `pg_catalog.set_config($${2 * i + 1}, $${2 * i + 2}, false)`).join(', ')}`,
        names.flatMap((name) => [name, PINNED_SETTINGS[name]!]),
      );
    } catch (error) {
      // The caller never gets this session to close.
      await session.close();
      throw error;
    }
    return session;
  }

  get client(): pg.Client {
    return this.connection.client;
  }

  /** Runs `text`; rows come back as text. `what` names the work for the error message. */
  async query(what: string, text: string, values: readonly unknown[] = []): Promise<TextRow[]> {
    try {
      const result = await this.connection.client.query<TextRow>({ text, values: [...values], types: RAW_TEXT });
      return result.rows;
    } catch (error) {
      throw this.failure(what, text, error);
    }
  }

  /** Runs another room's work on this session (the state's queries), its failure named like a query's. */
  async run<T>(what: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
    try {
      return await work(this.connection.client);
    } catch (error) {
      throw this.failure(what, '', error);
    }
  }

  /** As query, rows as arrays: user columns can have any name, positions can't clash. */
  async arrays(what: string, text: string, values: readonly unknown[] = []): Promise<Array<Array<string | null>>> {
    try {
      const result = await this.connection.client.query<Array<string | null>>({
        text,
        values: [...values],
        types: RAW_TEXT,
        rowMode: 'array',
      });
      return result.rows;
    } catch (error) {
      throw this.failure(what, text, error);
    }
  }

  private failure(what: string, text: string, error: unknown): PgferryError {
    return new PgferryError('query', `${this.side}: ${what} failed: ${messageOf(error)}`, {
      side: this.side,
      fix: text === '' ? undefined : `the query was: ${oneLine(text, 400)}`,
      cause: error,
    });
  }

  async close(): Promise<void> {
    await closeClient(this.connection.client);
  }
}

/** Source and target sessions used together: one lane of work. */
export interface Lane {
  readonly source: SideSession;
  readonly target: SideSession;
}

export async function openLane(source: ConnectionSpec, target: ConnectionSpec): Promise<Lane> {
  const [s, t] = await openAll([SideSession.open('source', source), SideSession.open('target', target)], (session) => session.close());
  return { source: s, target: t };
}

export async function closeLane(lane: Lane): Promise<void> {
  await Promise.all([lane.source.close(), lane.target.close()]);
}

/** The same question asked of both sides at once. */
export async function both<T>(lane: Lane, ask: (session: SideSession) => Promise<T>): Promise<[T, T]> {
  return Promise.all([ask(lane.source), ask(lane.target)]);
}
