import { messageOf, PgferryError } from '../errors.js';

/**
 * A failure in one database of an `--all-databases` command, said with the database's name and
 * keeping its code (so its exit status), side and fix; `also` is added to the fix.
 */
export function failedIn(database: string, error: unknown, also?: string): PgferryError {
  const fix = (own: string | undefined) => (also === undefined ? own : own === undefined ? also : `${own}\n(${also})`);
  if (error instanceof PgferryError) {
    return new PgferryError(error.code, `database "${database}": ${error.message}`, {
      side: error.side,
      fix: fix(error.fix),
      detail: error.detail,
      cause: error,
    });
  }
  return new PgferryError('query', `database "${database}": ${messageOf(error)}`, { fix: fix(undefined), cause: error });
}
