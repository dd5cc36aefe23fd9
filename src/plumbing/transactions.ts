import type pg from 'pg';
import { quoteLiteral } from './quote.js';

export interface TransactionOptions {
  /** What follows BEGIN: 'READ WRITE', 'ISOLATION LEVEL REPEATABLE READ READ ONLY', … */
  readonly mode?: string;
  /** Settings for this transaction only (SET LOCAL), made before `work`. */
  readonly local?: Readonly<Record<string, string>>;
  /** Roll back even when `work` succeeds: a probe that must leave nothing behind. */
  readonly rollback?: boolean;
}

/**
 * Runs `work` in one transaction on `client`: COMMIT when it succeeds, ROLLBACK when it fails
 * (the rollback's own failure, on a session already broken, is not allowed to hide the first
 * error). The one place pgferry writes BEGIN, COMMIT and ROLLBACK for such work.
 */
export async function inTransaction<T>(client: pg.Client, work: () => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  await client.query(options.mode ? `BEGIN ${options.mode}` : 'BEGIN');
  try {
    if (options.local && Object.keys(options.local).length > 0) {
      await client.query(
        `SELECT ${Object.keys(options.local)
          .map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, true)`)
          .join(', ')}`,
        Object.entries(options.local).flat(),
      );
    }
    const result = await work();
    await client.query(options.rollback ? 'ROLLBACK' : 'COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * One statement in a transaction of its own, sent with its BEGIN, settings and COMMIT in a single
 * round trip (a simple query of several statements): for the cut-over's few writes inside the
 * freeze, where each round trip is time the application waits. `statement` takes no parameters:
 * what it holds is quoted by the caller. Its result is returned; on failure the transaction is
 * rolled back before the error is thrown.
 */
export async function inOneRoundTrip<R extends pg.QueryResultRow>(
  client: pg.Client,
  statement: string,
  options: Pick<TransactionOptions, 'mode' | 'local'> = {},
): Promise<pg.QueryResult<R>> {
  const settings = Object.entries(options.local ?? {}).map(
    ([name, value]) => `SELECT pg_catalog.set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, true)`,
  );
  const parts = [options.mode ? `BEGIN ${options.mode}` : 'BEGIN', ...settings, statement, 'COMMIT'];
  try {
    // Several statements in one simple query: the driver answers with one result per statement.
    const results: unknown = await client.query<R>(parts.join(';\n'));
    if (!Array.isArray(results)) throw new Error('expected one result per statement');
    const result: unknown = results[parts.length - 2];
    if (!isResult<R>(result)) throw new Error('the statement returned no result');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

function isResult<R extends pg.QueryResultRow>(value: unknown): value is pg.QueryResult<R> {
  return typeof value === 'object' && value !== null && 'rows' in value && Array.isArray(value.rows);
}
