import type pg from 'pg';

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
